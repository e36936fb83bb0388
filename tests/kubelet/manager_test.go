// Conformance test: the real kubelet device manager (k8s.io/kubernetes/pkg/kubelet/cm/devicemanager, the
// code a kubelet runs) against the real nvdp binary on the simulated 8x H100 node.
//
// The manager's registration server listens on <tmp>/kubelet.sock; nvdp registers there, the manager dials
// it back, reads ListAndWatch, and allocates for a pod through the same Allocate and
// GetDeviceRunContainerOptions calls kubelet makes during pod admission and container start.
package kubelet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/kubernetes/pkg/kubelet/cm/containermap"
	"k8s.io/kubernetes/pkg/kubelet/cm/devicemanager"
	"k8s.io/kubernetes/pkg/kubelet/cm/topologymanager"
	"k8s.io/kubernetes/pkg/kubelet/config"
	"k8s.io/kubernetes/pkg/kubelet/lifecycle"
)

const resourceGPU = "nvidia.com/gpu"

// The fixture has 8 GPUs; a real kubelet waits at most this long for node status, we wait for registration.
const (
	fixtureGPUs     = 8
	registerTimeout = 20 * time.Second
)

// pods is what the manager's activePods callback returns: the pods "running" on this node.
type pods struct{ list []*v1.Pod }

func (p *pods) active() []*v1.Pod { return p.list }

func gpuPod(name string, gpus int64) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name:  "cuda",
			Image: "cuda-sample",
			Resources: v1.ResourceRequirements{
				Limits: v1.ResourceList{resourceGPU: *resource.NewQuantity(gpus, resource.DecimalSI)},
			},
		}}},
	}
}

// startManager runs the device manager's registration server on <dir>/kubelet.sock, as kubelet does
// at start-up with /var/lib/kubelet/device-plugins.
func startManager(t *testing.T, dir string, active *pods) *devicemanager.ManagerImpl {
	t.Helper()
	logger, _ := ktesting.NewTestContext(t)
	m, err := newManagerImpl(logger, filepath.Join(dir, "kubelet.sock"), nil, topologymanager.NewFakeManager(logger))
	if err != nil {
		t.Fatalf("creating the kubelet device manager: %v", err)
	}
	ready := config.NewSourcesReady(func(sets.Set[string]) bool { return true })
	if err := m.Start(logger, active.active, ready, containermap.NewContainerMap(), sets.New[string]()); err != nil {
		t.Fatalf("starting the kubelet device manager on %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = m.Stop(logger) })
	return m
}

// gpuCounts is the manager's view of nvidia.com/gpu as node status would publish it.
func gpuCounts(t *testing.T, m *devicemanager.ManagerImpl) (capacity, allocatable int64) {
	logger, _ := ktesting.NewTestContext(t)
	c, a, _ := m.GetCapacity(logger)
	q := c[resourceGPU]
	capacity = q.Value()
	q = a[resourceGPU]
	allocatable = q.Value()
	return capacity, allocatable
}

// waitCounts polls GetCapacity (kubelet calls it at every node status sync) until it reports the wanted
// numbers, failing early if the plugin process ends.
func waitCounts(t *testing.T, m *devicemanager.ManagerImpl, p *plugin, wantCap, wantAlloc int64, what string) {
	t.Helper()
	deadline := time.Now().Add(registerTimeout)
	var c, a int64
	for time.Now().Before(deadline) {
		c, a = gpuCounts(t, m)
		if c == wantCap && a == wantAlloc {
			return
		}
		if p != nil && p.exited() {
			t.Fatalf("%s: nvdp plugin exited (%v) before the manager saw capacity %d / allocatable %d "+
				"(it saw %d / %d).\n--- nvdp output ---\n%s", what, p.exitErr(), wantCap, wantAlloc, c, a, p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := ""
	if p != nil {
		out = "\n--- nvdp output ---\n" + p.output()
	}
	t.Fatalf("%s: after %v the kubelet device manager reports %s capacity %d, allocatable %d; want %d, %d.%s",
		what, registerTimeout, resourceGPU, c, a, wantCap, wantAlloc, out)
}

// allocate runs the admission path (Allocate) and the container-start path (GetDeviceRunContainerOptions)
// and returns the device IDs the manager assigned and the env the container would get.
func allocate(t *testing.T, m *devicemanager.ManagerImpl, active *pods, pod *v1.Pod) ([]string, map[string]string) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	active.list = append(active.list, pod)
	c := &pod.Spec.Containers[0]
	if err := m.Allocate(ctx, pod, c, lifecycle.AddOperation); err != nil {
		t.Fatalf("kubelet Allocate for pod %s (%s: %s): %v", pod.Name, resourceGPU,
			c.Resources.Limits.Name(resourceGPU, resource.DecimalSI), err)
	}
	opts, err := m.GetDeviceRunContainerOptions(ctx, pod, c)
	if err != nil {
		t.Fatalf("kubelet GetDeviceRunContainerOptions for pod %s: %v", pod.Name, err)
	}
	env := map[string]string{}
	for _, e := range opts.Envs {
		env[e.Name] = e.Value
	}
	var ids []string
	for id := range m.GetDevices(string(pod.UID), c.Name)[resourceGPU] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, env
}

// visible splits NVIDIA_VISIBLE_DEVICES and checks it names exactly the allocated devices, all of the fixture.
func visible(t *testing.T, env map[string]string, allocated []string, fixture []string, pod string) []string {
	t.Helper()
	val, ok := env["NVIDIA_VISIBLE_DEVICES"]
	if !ok {
		t.Fatalf("pod %s: the container env from Allocate has no NVIDIA_VISIBLE_DEVICES (env: %v)", pod, env)
	}
	got := strings.Split(val, ",")
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	if !slices.Equal(sorted, allocated) {
		t.Errorf("pod %s: NVIDIA_VISIBLE_DEVICES=%q, want the allocated devices %v", pod, val, allocated)
	}
	for _, u := range got {
		if !slices.Contains(fixture, u) {
			t.Errorf("pod %s: NVIDIA_VISIBLE_DEVICES names %q, which is not a GPU UUID of the fixture %v", pod, u, fixture)
		}
	}
	return got
}

// TestKubeletDeviceManager: nvdp registers, lists the fixture's 8 GPUs, allocates, survives a crash.
func TestKubeletDeviceManager(t *testing.T) {
	scenario(t, loadEnv(t))
}

// TestHarnessSelfCheck runs the same scenario against kubelet's own device plugin stub (tests/kubelet/
// stubplugin) on a made-up fixture, to show the harness passes with a plugin known to follow the
// contract. Opt-in (NVDP_KUBELET_SELFTEST=1): it tests the harness, not nvdp.
func TestHarnessSelfCheck(t *testing.T) {
	if os.Getenv("NVDP_KUBELET_SELFTEST") != "1" {
		t.Skip("set NVDP_KUBELET_SELFTEST=1 to check the harness against kubelet's device plugin stub")
	}
	scenario(t, stubEnv(t))
}

func scenario(t *testing.T, e env) {
	uuids := fixtureUUIDs(t, e.fixture)
	if len(uuids) != fixtureGPUs {
		t.Fatalf("fixture %s lists %d GPU UUIDs (%v), this test expects the 8x H100 node", e.fixture, len(uuids), uuids)
	}

	dir := t.TempDir()
	active := &pods{}
	m := startManager(t, dir, active)

	p := startPlugin(t, e, dir)
	waitCounts(t, m, p, fixtureGPUs, fixtureGPUs, "registration")

	// The IDs the plugin advertised are the fixture's GPU UUIDs (upstream: Device.ID is always the UUID).
	var advertised []string
	for id := range m.GetAllocatableDevices(ktesting.NewLogger(t, ktesting.NewConfig()))[resourceGPU] {
		advertised = append(advertised, id)
	}
	slices.Sort(advertised)
	if !slices.Equal(advertised, uuids) {
		t.Fatalf("the plugin advertised device IDs %v, want the fixture's GPU UUIDs %v", advertised, uuids)
	}

	// A pod with nvidia.com/gpu: 2 gets 2 of the fixture's GPUs, named in NVIDIA_VISIBLE_DEVICES.
	pod1 := gpuPod("two-gpus", 2)
	ids1, env1 := allocate(t, m, active, pod1)
	if len(ids1) != 2 {
		t.Fatalf("pod two-gpus: the manager allocated %v, want 2 devices", ids1)
	}
	vis1 := visible(t, env1, ids1, uuids, pod1.Name)
	if len(vis1) != 2 || vis1[0] == vis1[1] {
		t.Errorf("pod two-gpus: NVIDIA_VISIBLE_DEVICES=%q, want 2 distinct UUIDs", env1["NVIDIA_VISIBLE_DEVICES"])
	}

	// The other 6 go to a second pod; no UUID is handed out twice.
	pod2 := gpuPod("six-gpus", 6)
	ids2, env2 := allocate(t, m, active, pod2)
	vis2 := visible(t, env2, ids2, uuids, pod2.Name)
	if len(vis2) != 6 {
		t.Errorf("pod six-gpus: NVIDIA_VISIBLE_DEVICES=%q, want 6 UUIDs", env2["NVIDIA_VISIBLE_DEVICES"])
	}
	all := sets.New(ids1...).Union(sets.New(ids2...))
	if all.Len() != fixtureGPUs {
		t.Errorf("pods two-gpus %v and six-gpus %v share devices, want 8 distinct", ids1, ids2)
	}

	// Plugin crash: the stream ends, kubelet marks every device unhealthy (capacity stays, allocatable 0).
	p.kill(t)
	waitCounts(t, m, nil, fixtureGPUs, 0, "after killing the plugin")

	// Restarted, it registers again with the same IDs and the manager counts 8 allocatable again.
	p = startPlugin(t, e, dir)
	waitCounts(t, m, p, fixtureGPUs, fixtureGPUs, "after restarting the plugin")
	advertised = advertised[:0]
	for id := range m.GetAllocatableDevices(ktesting.NewLogger(t, ktesting.NewConfig()))[resourceGPU] {
		advertised = append(advertised, id)
	}
	slices.Sort(advertised)
	if !slices.Equal(advertised, uuids) {
		t.Errorf("after the restart the plugin advertised %v, want the same IDs as before %v", advertised, uuids)
	}

	// Re-starting pod two-gpus' container reuses its allocation: same env, no new Allocate needed.
	_, ctx := ktesting.NewTestContext(t)
	opts, err := m.GetDeviceRunContainerOptions(ctx, pod1, &pod1.Spec.Containers[0])
	if err != nil {
		t.Fatalf("GetDeviceRunContainerOptions for pod two-gpus after the plugin restart: %v", err)
	}
	for _, ev := range opts.Envs {
		if ev.Name == "NVIDIA_VISIBLE_DEVICES" && ev.Value != env1["NVIDIA_VISIBLE_DEVICES"] {
			t.Errorf("after the plugin restart pod two-gpus gets NVIDIA_VISIBLE_DEVICES=%q, before %q",
				ev.Value, env1["NVIDIA_VISIBLE_DEVICES"])
		}
	}

	// Kubelet restart: the new kubelet deletes every socket in the directory (the plugin's too) and
	// creates a fresh kubelet.sock; the running plugin must notice and register again by itself.
	logger, _ := ktesting.NewTestContext(t)
	if err := m.Stop(logger); err != nil {
		t.Fatalf("stopping the first kubelet device manager: %v", err)
	}
	m = startManager(t, dir, active)
	waitCounts(t, m, p, fixtureGPUs, fixtureGPUs, "after restarting the kubelet (plugin kept running)")
	// The running pods keep their devices: the new kubelet restores them from its checkpoint.
	opts, err = m.GetDeviceRunContainerOptions(ctx, pod1, &pod1.Spec.Containers[0])
	if err != nil {
		t.Fatalf("GetDeviceRunContainerOptions for pod two-gpus after the kubelet restart: %v", err)
	}
	var vis string
	for _, ev := range opts.Envs {
		if ev.Name == "NVIDIA_VISIBLE_DEVICES" {
			vis = ev.Value
		}
	}
	if vis != env1["NVIDIA_VISIBLE_DEVICES"] {
		t.Errorf("after the kubelet restart pod two-gpus gets NVIDIA_VISIBLE_DEVICES=%q, before %q",
			vis, env1["NVIDIA_VISIBLE_DEVICES"])
	}
}
