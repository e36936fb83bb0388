// SPDX-License-Identifier: Apache-2.0

// nvdp's CDI spec read by the CDI project's own library (tags.cncf.io/container-device-interface,
// what containerd and CRI-O use): `nvdp cdi generate` on fixture nodes (real character devices,
// the simulated NVML), the spec loaded into the library's cache without errors, at the lowest
// cdiVersion the library accepts for it, every CDI name the plugin's Allocate returns (under each
// device-id and MIG strategy, by tests/helpers/cdi-allocate-names) resolved and injected into an
// OCI spec, and the injected device nodes, mounts and hooks checked.
package cdi

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	oci "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	cdispec "tags.cncf.io/container-device-interface/specs-go"
)

type env struct {
	nvdp, fixtureRoot, allocateNames, mock, mockFixtures string
}

func setup(t *testing.T) env {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Dir(filepath.Dir(wd))
	build := os.Getenv("NVDP_BUILD")
	if build == "" {
		build = filepath.Join(repo, "build")
	}
	e := env{
		nvdp:          filepath.Join(build, "nvdp"),
		fixtureRoot:   filepath.Join(build, "tests", "helpers", "cdi-fixture-root"),
		allocateNames: filepath.Join(build, "tests", "helpers", "cdi-allocate-names"),
		mock:          filepath.Join(build, "mock-nvml", "libnvidia-ml.so.1"),
		mockFixtures:  filepath.Join(repo, "mock", "nvml", "fixtures"),
	}
	for _, p := range []string{e.nvdp, e.fixtureRoot, e.allocateNames, e.mock} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("missing build output %s (run `make` first)", p)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("the fixture's device nodes are real character devices: run as root (CI does)")
	}
	return e
}

func run(t *testing.T, extraEnv []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// node is one simulated GPU node: a fixture root whose NVML library is the simulated one.
type node struct {
	root, specDir string
	env           []string
}

func newNode(t *testing.T, e env, layout, mockFixture, version string, gpus int) node {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	run(t, nil, e.fixtureRoot, layout, root, "--mknod", "--version", version, "--gpus", strconv.Itoa(gpus))
	// The fixture's libnvidia-ml is a stand-in ELF; NVML is loaded from the driver root, so the
	// simulated library takes its place.
	copyFile(t, e.mock, filepath.Join(root, "usr/lib/x86_64-linux-gnu", "libnvidia-ml.so."+version))
	n := node{root: root, specDir: filepath.Join(dir, "cdi")}
	n.env = []string{"MOCK_NVML_FIXTURE=" + filepath.Join(e.mockFixtures, mockFixture+".yaml")}
	run(t, n.env, e.nvdp, "cdi", "generate", "--driver-root", root, "--dev-root", root, "--root", root,
		"--nvidia-cdi-hook-path", "/usr/local/bin/nvdp", "--spec-dir", n.specDir)
	return n
}

func loadCache(t *testing.T, dir string) *cdi.Cache {
	t.Helper()
	cache, err := cdi.NewCache(cdi.WithSpecDirs(dir), cdi.WithAutoRefresh(false))
	if err != nil {
		t.Fatalf("CDI cache: %v", err)
	}
	if errs := cache.GetErrors(); len(errs) > 0 {
		t.Fatalf("the CDI library refused the spec: %v", errs)
	}
	return cache
}

// The spec file says the lowest cdiVersion that the library computes for its content.
func checkVersion(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw cdispec.Spec
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	want, err := cdi.MinimumRequiredVersion(&raw)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Version != want {
		t.Errorf("%s: cdiVersion %s, the lowest that expresses it is %s", path, raw.Version, want)
	}
}

func allocateNames(t *testing.T, e env, n node, flags ...string) []string {
	t.Helper()
	env := append([]string{"LD_LIBRARY_PATH=" + filepath.Dir(e.mock), "NVDP_ROOT=" + n.root}, n.env...)
	out := run(t, env, e.allocateNames, flags...)
	return strings.Fields(out)
}

func inject(t *testing.T, cache *cdi.Cache, names ...string) *oci.Spec {
	t.Helper()
	spec := &oci.Spec{Process: &oci.Process{}, Linux: &oci.Linux{}}
	if unresolved, err := cache.InjectDevices(spec, names...); err != nil {
		t.Fatalf("inject %v: %v (unresolved %v)", names, err, unresolved)
	}
	return spec
}

func devicePaths(s *oci.Spec) []string {
	var p []string
	for _, d := range s.Linux.Devices {
		p = append(p, d.Path)
	}
	return p
}

func hookArgs(s *oci.Spec) [][]string {
	var a [][]string
	for _, h := range s.Hooks.CreateContainer {
		a = append(a, h.Args)
	}
	return a
}

func TestAllocateNamesResolveAndInject(t *testing.T) {
	e := setup(t)
	n := newNode(t, e, "fhs", "dgx-h100", "580.105.08", 8)
	checkVersion(t, filepath.Join(n.specDir, "k8s.device-plugin.nvidia.com-gpu.json"))
	cache := loadCache(t, n.specDir)

	var all []string
	for _, flags := range [][]string{
		{"--device-id-strategy=uuid"},
		{"--device-id-strategy=index"},
	} {
		names := allocateNames(t, e, n, flags...)
		if len(names) != 8 {
			t.Fatalf("%v: Allocate names %v, want 8", flags, names)
		}
		all = append(all, names...)
	}
	for _, name := range all {
		s := inject(t, cache, name)
		// One GPU: its node and the control nodes; the driver's files and the hooks.
		devs := devicePaths(s)
		for _, want := range []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
			"/dev/nvidia-modeset"} {
			if !slices.Contains(devs, want) {
				t.Errorf("%s: device nodes %v lack %s", name, devs, want)
			}
		}
		gpuNodes := 0
		for _, d := range s.Linux.Devices {
			if strings.HasPrefix(d.Path, "/dev/nvidia") && d.Path[len("/dev/nvidia")] >= '0' &&
				d.Path[len("/dev/nvidia")] <= '9' {
				gpuNodes++
				if d.Type != "c" || d.Major != 195 {
					t.Errorf("%s: %s is %s %d:%d, want a character device 195:N", name, d.Path, d.Type,
						d.Major, d.Minor)
				}
			}
		}
		if gpuNodes != 1 {
			t.Errorf("%s: %d GPU device nodes %v, want 1", name, gpuNodes, devs)
		}
		mounts := map[string]string{}
		for _, m := range s.Mounts {
			mounts[m.Destination] = m.Source
		}
		lib := "/usr/lib/x86_64-linux-gnu/libcuda.so.580.105.08"
		if mounts[lib] != filepath.Join(n.root, lib) {
			t.Errorf("%s: %s mounted from %q", name, lib, mounts[lib])
		}
		if mounts["/usr/bin/nvidia-smi"] != filepath.Join(n.root, "usr/bin/nvidia-smi") {
			t.Errorf("%s: nvidia-smi mounted from %q", name, mounts["/usr/bin/nvidia-smi"])
		}
		args := hookArgs(s)
		if len(args) != 2 || !slices.Equal(args[0][:3], []string{"nvdp", "cdi-hook", "create-symlinks"}) ||
			!slices.Equal(args[1], []string{"nvdp", "cdi-hook", "update-ldcache", "--folder",
				"/usr/lib/x86_64-linux-gnu", "--folder", "/usr/lib/x86_64-linux-gnu/vdpau"}) {
			t.Errorf("%s: hooks %v", name, args)
		}
		if !slices.Contains(s.Process.Env, "NVIDIA_VISIBLE_DEVICES=void") {
			t.Errorf("%s: env %v", name, s.Process.Env)
		}
	}
	// "all": the eight GPUs and the four control nodes (the fixture has nvidia-modeset).
	s := inject(t, cache, "k8s.device-plugin.nvidia.com/gpu=all")
	if got := len(devicePaths(s)); got != 8+4 {
		t.Errorf("all: %d device nodes %v, want 12", got, devicePaths(s))
	}
}

func TestMIGNamesResolve(t *testing.T) {
	e := setup(t)
	n := newNode(t, e, "mig", "a100-mig", "570.172.08", 2)
	cache := loadCache(t, n.specDir)
	for _, flags := range [][]string{
		{"--mig-strategy=mixed", "--device-id-strategy=uuid"},
		{"--mig-strategy=mixed", "--device-id-strategy=index"},
		{"--mig-strategy=none", "--device-id-strategy=index"},
		{"--mig-strategy=none", "--device-id-strategy=uuid"},
	} {
		names := allocateNames(t, e, n, flags...)
		if len(names) == 0 {
			t.Fatalf("%v: no Allocate names", flags)
		}
		for _, name := range names {
			s := inject(t, cache, name)
			devs := devicePaths(s)
			caps := 0
			for _, d := range devs {
				if strings.HasPrefix(d, "/dev/nvidia-caps/nvidia-cap") {
					caps++
				}
			}
			// A MIG device gets its GPU instance and compute instance capabilities; a whole GPU none.
			want := 2
			if slices.Contains(flags, "--mig-strategy=none") {
				want = 0
			}
			if caps != want {
				t.Errorf("%v %s: %d capability nodes in %v, want %d", flags, name, caps, devs, want)
			}
		}
	}
	// The IMEX channel spec is written only when channels are configured; none here.
	if _, err := os.Stat(filepath.Join(n.specDir, "k8s.device-plugin.nvidia.com-imex-channel.json")); err == nil {
		t.Error("an IMEX spec without configured channels")
	}
}

// The DRA driver's claim spec (tests/helpers/dra-claim-spec prepares a claim for gpu-3 and gpu-5 through
// the driver's own functions): loaded by the library at its lowest cdiVersion, next to the plugin's spec
// in one directory; each CDI ID the driver hands the kubelet injects its GPU's node alone, with the
// driver's files and hooks; both at once give both nodes.
func TestDRAClaimSpec(t *testing.T) {
	e := setup(t)
	n := newNode(t, e, "fhs", "dgx-h100", "580.105.08", 8)
	const uid = "6b1e3a8c-2d4f-4e5a-9b7c-0d1e2f3a4b5c"
	helper := filepath.Join(filepath.Dir(e.fixtureRoot), "dra-claim-spec")
	env := append([]string{"NVDP_ROOT=" + n.root}, n.env...)
	ids := strings.Fields(run(t, env, helper, n.root, n.specDir, uid, "gpu-3", "gpu-5"))
	want := []string{"k8s.gpu.nvidia.com/claim=" + uid + "-gpu-3", "k8s.gpu.nvidia.com/claim=" + uid + "-gpu-5"}
	if !slices.Equal(ids, want) {
		t.Fatalf("the claim's CDI IDs are %v, want %v", ids, want)
	}
	checkVersion(t, filepath.Join(n.specDir, "k8s.gpu.nvidia.com-claim_"+uid+".json"))
	cache := loadCache(t, n.specDir)
	for i, id := range ids {
		s := inject(t, cache, id)
		node := []string{"/dev/nvidia3", "/dev/nvidia5"}[i]
		var gpus []string
		for _, d := range s.Linux.Devices {
			if strings.HasPrefix(d.Path, "/dev/nvidia") && d.Path[len("/dev/nvidia")] >= '0' &&
				d.Path[len("/dev/nvidia")] <= '9' {
				gpus = append(gpus, d.Path)
			}
		}
		if !slices.Equal(gpus, []string{node}) || !slices.Contains(devicePaths(s), "/dev/nvidiactl") {
			t.Errorf("%s: device nodes %v, want %s and the control nodes", id, devicePaths(s), node)
		}
		lib := "/usr/lib/x86_64-linux-gnu/libcuda.so.580.105.08"
		found := false
		for _, m := range s.Mounts {
			found = found || (m.Destination == lib && m.Source == filepath.Join(n.root, lib))
		}
		if !found {
			t.Errorf("%s: no mount of %s from the driver root", id, lib)
		}
		if args := hookArgs(s); len(args) != 2 || args[1][2] != "update-ldcache" {
			t.Errorf("%s: hooks %v", id, args)
		}
	}
	if got := len(devicePaths(inject(t, cache, ids...))); got != 2+4 {
		t.Errorf("both IDs: %d device nodes, want 2 GPUs and 4 control nodes", got)
	}
}
