package kubelet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	_ "unsafe" // go:linkname

	cadvisorapi "github.com/google/cadvisor/lib/model"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/kubelet/cm/devicemanager"
	"k8s.io/kubernetes/pkg/kubelet/cm/topologymanager"
	"sigs.k8s.io/yaml"
)

// newManagerImpl is the constructor kubelet's own device manager tests use. The exported NewManagerImpl
// hard-codes /var/lib/kubelet/device-plugins/kubelet.sock (and puts its checkpoint there); this one takes
// the socket path, so the test runs unprivileged in a temp dir and touches nothing of the host.
// Signature as of k8s.io/kubernetes v1.37.2 (go.mod pins it); a mismatch after an upgrade fails to link.
//
//go:linkname newManagerImpl k8s.io/kubernetes/pkg/kubelet/cm/devicemanager.newManagerImpl
func newManagerImpl(logger klog.Logger, socketPath string, topology []cadvisorapi.Node,
	topologyAffinityStore topologymanager.Store) (*devicemanager.ManagerImpl, error)

// env is where the build and the simulated node are.
type env struct {
	nvdp    string   // the binary under test
	mockLib string   // directory holding the mock libnvidia-ml.so.1
	fixture string   // MOCK_NVML_FIXTURE
	root    string   // NVDP_ROOT: the node's /dev, /proc/driver/nvidia, sysfs as files
	extra   []string // more environment for the process, "NAME=value"
}

func loadEnv(t *testing.T) env {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	build := os.Getenv("NVDP_BUILD")
	if build == "" {
		build = filepath.Join(repo, "build")
	}
	e := env{
		nvdp:    filepath.Join(build, "nvdp"),
		mockLib: filepath.Join(build, "mock-nvml"),
		fixture: filepath.Join(repo, "mock/nvml/fixtures/dgx-h100.yaml"),
		root:    filepath.Join(repo, "mock/nvml/fixtures/dgx-h100.root"),
	}
	var missing []string
	for _, f := range []string{e.nvdp, filepath.Join(e.mockLib, "libnvidia-ml.so.1"), e.fixture, e.root} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("missing build outputs or fixtures (run `make` first; NVDP_BUILD=%s): %s",
			build, strings.Join(missing, ", "))
	}
	return e
}

// stubEnv builds tests/kubelet/stubplugin and writes a fixture of 8 made-up GPUs for it.
func stubEnv(t *testing.T) env {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "stubplugin")
	if out, err := exec.Command("go", "build", "-o", bin, "./stubplugin").CombinedOutput(); err != nil {
		t.Fatalf("building stubplugin: %v\n%s", err, out)
	}
	var b strings.Builder
	b.WriteString("gpus:\n")
	for i := 0; i < fixtureGPUs; i++ {
		fmt.Fprintf(&b, "- index: %d\n  uuid: GPU-5e1f7e57-0000-4000-8000-00000000000%d\n", i, i)
	}
	fixture := filepath.Join(dir, "selftest.yaml")
	if err := os.WriteFile(fixture, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return env{nvdp: bin, mockLib: dir, fixture: fixture, root: dir}
}

// fixtureUUIDs returns the sorted GPU UUIDs of the mock NVML fixture: every string value of a key named
// "uuid" that starts with "GPU-", wherever it sits in the YAML (the test does not depend on the layout).
func fixtureUUIDs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the fixture: %v", err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parsing the fixture %s: %v", path, err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && strings.EqualFold(k, "uuid") && strings.HasPrefix(s, "GPU-") {
					out = append(out, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	slices.Sort(out)
	return slices.Compact(out)
}

// plugin is one run of `nvdp plugin`.
type plugin struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
	once sync.Once
}

func startPlugin(t *testing.T, e env, dir string) *plugin {
	t.Helper()
	// The plugin serves its own socket next to kubelet.sock (nvdp takes the directory of --kubelet-socket).
	return startProcess(t, e, dir, "plugin", "--kubelet-socket", filepath.Join(dir, "kubelet.sock"))
}

// startProcess runs e.nvdp with args on the simulated node, its output in a log file in dir.
func startProcess(t *testing.T, e env, dir string, args ...string) *plugin {
	t.Helper()
	logf, err := os.CreateTemp(dir, "nvdp-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(e.nvdp, args...)
	cmd.Env = append(os.Environ(),
		"LD_LIBRARY_PATH="+e.mockLib,
		"MOCK_NVML_FIXTURE="+e.fixture,
		"NVDP_ROOT="+e.root,
	)
	cmd.Env = append(cmd.Env, e.extra...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", e.nvdp, err)
	}
	p := &plugin{cmd: cmd, log: logf.Name(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *plugin) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *plugin) exitErr() error {
	<-p.done
	if p.err == nil {
		return errors.New("exit status 0")
	}
	return p.err
}

func (p *plugin) output() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.log, err)
	}
	const tail = 8 << 10
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return string(b)
}

// kill ends the plugin the hard way (SIGKILL: no clean-up, its socket file stays behind).
func (p *plugin) kill(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Fatalf("nvdp plugin had already exited (%v).\n--- nvdp output ---\n%s", p.exitErr(), p.output())
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop ends the plugin the way kubelet's pod teardown does: SIGTERM, then SIGKILL after a grace period.
func (p *plugin) stop(t *testing.T) {
	p.once.Do(func() {
		if p.exited() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			t.Errorf("nvdp plugin did not exit within 5s of SIGTERM; killed.\n--- nvdp output ---\n%s", p.output())
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}
