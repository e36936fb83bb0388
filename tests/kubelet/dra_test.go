// Conformance test for nvdp as a DRA driver: the real kubelet DRA manager (k8s.io/kubernetes/pkg/kubelet/cm/
// dra) and plugin manager (pkg/kubelet/pluginmanager: the plugin watcher on plugins_registry) against the
// driver binary, with a kube-apiserver stand-in (dra_apiserver_test.go) holding the Node, the ResourceClaims
// and the driver's ResourceSlices.
package kubelet

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const claimUID = "6b1e3a8c-2d4f-4e5a-9b7c-0d1e2f3a4b5c"

// draStubEnv builds tests/kubelet/drastub and uses a fixture of 8 made-up GPUs for it.
func draStubEnv(t *testing.T) env {
	t.Helper()
	e := stubEnv(t)
	bin := filepath.Join(filepath.Dir(e.nvdp), "drastub")
	if out, err := exec.Command("go", "build", "-o", bin, "./drastub").CombinedOutput(); err != nil {
		t.Fatalf("building drastub: %v\n%s", err, out)
	}
	e.nvdp = bin
	return e
}

// TestDRAHarnessSelfCheck runs the DRA scenario against a driver built on Kubernetes' own kubelet plugin
// helper (tests/kubelet/drastub), to show the harness passes with a driver known to follow the contract.
// Opt-in (NVDP_KUBELET_SELFTEST=1): it tests the harness, not nvdp.
func TestDRAHarnessSelfCheck(t *testing.T) {
	if os.Getenv("NVDP_KUBELET_SELFTEST") != "1" {
		t.Skip("set NVDP_KUBELET_SELFTEST=1 to check the DRA harness against a kubeletplugin-based driver")
	}
	draScenario(t, draStubEnv(t), false)
}

func gpuNames(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("gpu-%d", i))
	}
	slices.Sort(out)
	return out
}

func cdiIDs(uid string, devices ...string) []string {
	var out []string
	for _, d := range devices {
		out = append(out, "k8s.gpu.nvidia.com/claim="+uid+"-"+d)
	}
	slices.Sort(out)
	return out
}

// draScenario: registration through the plugin watcher, the published devices, a claim prepared for one
// pod and shared by a second, the driver killed between prepare and unprepare, unprepare after its restart.
// With nvdp set, also what only nvdp is asked to do: the published attributes, its checkpoint, a refused
// slice write retried, claims it must refuse, an XID tainting a device, a kubelet restart wiping the slices.
func draScenario(t *testing.T, e env, nvdp bool) {
	uuids := fixtureUUIDs(t, e.fixture)
	if len(uuids) != fixtureGPUs {
		t.Fatalf("fixture %s lists %d GPU UUIDs (%v), this test expects the 8x H100 node", e.fixture, len(uuids), uuids)
	}
	dir := t.TempDir()
	d := newDRADirs(t)
	api := startFakeAPI(t, draNodeObject())
	active := &pods{}
	k := startDRAKubelet(t, api, d, active)
	var events *os.File
	if nvdp {
		// The API server refuses the first two slice writes; the driver retries with backoff.
		api.refuseNextSliceWrites(2)
		events = nvmlEvents(t, &e, dir)
	}

	if nvdp {
		// The node's driver, for the claims' CDI specs: a fixture filesystem whose NVML is the simulated one.
		driverRoot(t, &e, dir)
	}
	p := startDRADriver(t, e, api, d, dir)
	waitRegistered(t, k, p, "registration")
	devs := waitDevices(t, api, p, gpuNames(fixtureGPUs), "first publication")

	// One device per GPU of the fixture, each with its UUID.
	var published []string
	for _, dev := range devs {
		if a, ok := dev.Attributes["uuid"]; ok && a.StringValue != nil {
			published = append(published, *a.StringValue)
		}
	}
	slices.Sort(published)
	if !slices.Equal(published, uuids) {
		t.Fatalf("the ResourceSlices publish GPU UUIDs %v, want the fixture's %v", published, uuids)
	}
	if nvdp {
		checkAttributes(t, devs["gpu-5"])
		// The slices are in the API server before the driver logs that they are.
		waitOutput(t, p, "after failed attempts", "the driver logs that publishing worked after the refusals")
		if n := strings.Count(p.output(), "Cannot publish this node's ResourceSlices"); n != 1 {
			t.Errorf("two refused slice writes were logged %d times, want once:\n%s", n, p.output())
		}
	}

	// A claim for gpu-1 and gpu-3, used by pod a: its container gets one CDI device per GPU.
	podA := claimPod("pod-a", "two-gpus")
	podB := claimPod("pod-b", "two-gpus")
	createClaim(t, api, allocatedClaim("two-gpus", claimUID, draNode, []string{"gpu-1", "gpu-3"}, nil, podA, podB))
	want := cdiIDs(claimUID, "gpu-1", "gpu-3")
	got, err := prepare(t, k, active, podA)
	if err != nil {
		t.Fatalf("kubelet PrepareResources for pod-a: %v\n--- driver output ---\n%s", err, p.output())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pod-a's container gets CDI devices %v, want %v", got, want)
	}
	checkpoint := filepath.Join(d.plugins, draDriver, "checkpoint.json")
	if nvdp && !fileContains(t, checkpoint, claimUID) {
		t.Errorf("after preparing claim two-gpus, %s does not record it", checkpoint)
	}
	spec := filepath.Join(d.cdi, "k8s.gpu.nvidia.com-claim_"+claimUID+".json")
	if nvdp {
		// The claim's CDI spec defines exactly the CDI devices the kubelet got.
		if got := claimSpecIDs(t, spec); !slices.Equal(got, want) {
			t.Errorf("the claim's CDI spec %s defines %v, want %v", spec, got, want)
		}
	}

	// Pod b shares the claim: the kubelet prepares it once; b gets the same devices without asking the driver.
	_, gets := api.counts()
	got, err = prepare(t, k, active, podB)
	if err != nil {
		t.Fatalf("kubelet PrepareResources for pod-b (sharing pod-a's claim): %v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("pod-b's container gets CDI devices %v, want the same as pod-a: %v", got, want)
	}
	if _, now := api.counts(); now != gets {
		t.Errorf("preparing the shared claim for pod-b made the driver read the claim again (%d reads, before %d)",
			now, gets)
	}

	if nvdp {
		badClaims(t, k, api, active, p)
		xidTaints(t, k, api, active, p, events)
		taintsDropped(t, api, p, events)
	}

	// The driver dies between prepare and unprepare, and comes back.
	p.kill(t)
	p = startDRADriver(t, e, api, d, dir)
	waitRegistered(t, k, p, "after restarting the driver")

	// Pod a ends: the claim is still pod b's, so nothing is unprepared. Pod b ends: the claim is unprepared.
	if err := unprepare(t, k, active, podA); err != nil {
		t.Fatalf("kubelet UnprepareResources for pod-a: %v", err)
	}
	if err := unprepare(t, k, active, podB); err != nil {
		t.Fatalf("kubelet UnprepareResources for pod-b after the driver restart: %v\n--- driver output ---\n%s", err,
			p.output())
	}
	if k.m.PodMightNeedToUnprepareResources(podB.UID) {
		t.Errorf("after unpreparing pod-b the kubelet still holds its claim")
	}
	if nvdp && fileContains(t, checkpoint, claimUID) {
		t.Errorf("after unpreparing claim two-gpus (across a driver restart), %s still records it", checkpoint)
	}
	if _, err := os.Stat(spec); nvdp && !os.IsNotExist(err) {
		t.Errorf("after unpreparing claim two-gpus, its CDI spec %s is still there (%v)", spec, err)
	}

	if nvdp {
		// A kubelet restart deletes the node's slices before any driver registered; the running driver is
		// registered again by the new kubelet's plugin watcher and must publish them again.
		k.stop()
		k = startDRAKubelet(t, api, d, active)
		waitRegistered(t, k, p, "after restarting the kubelet (driver kept running)")
		waitDevices(t, api, p, gpuNames(fixtureGPUs), "after the kubelet restart wiped the slices")
	}
	if nvdp {
		// SIGTERM: a clean exit (status 0; under a sanitizer build, no leak report) that removes both
		// sockets, so the kubelet deregisters the driver.
		p.stop(t)
		if err := p.exitErr(); err != nil && !strings.Contains(err.Error(), "exit status 0") {
			t.Errorf("the driver exited with %v after SIGTERM\n--- driver output ---\n%s", err, p.output())
		}
		for _, sock := range []string{filepath.Join(d.registry, draDriver+"-reg.sock"),
			filepath.Join(d.plugins, draDriver, "dra.sock")} {
			if _, err := os.Stat(sock); err == nil {
				t.Errorf("%s is still there after the driver stopped", sock)
			}
		}
	}
	if strings.Contains(p.output(), "panic") || strings.Contains(p.output(), "Sanitizer") {
		t.Errorf("the driver crashed or leaked:\n%s", p.output())
	}
	if testing.Verbose() {
		t.Logf("--- driver output (its last run) ---\n%s", p.output())
	}
}

// waitOutput waits until the driver's output holds s.
func waitOutput(t *testing.T, p *plugin, s, what string) {
	t.Helper()
	deadline := time.Now().Add(draTimeout)
	for !strings.Contains(p.output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v\n--- driver output ---\n%s", what, draTimeout, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// taintsDropped: where the API server drops device taints (DRADeviceTaints off), nvdp says so once and
// unhealthy devices leave the slice instead (gpu-2, lost before, and gpu-4 after a double-bit ECC error).
func taintsDropped(t *testing.T, api *fakeAPI, p *plugin, events *os.File) {
	t.Helper()
	api.dropDeviceTaints(true)
	defer api.dropDeviceTaints(false)
	uuid := ""
	for _, s := range nodeSlices(t, api) {
		for _, dev := range s.Spec.Devices {
			if dev.Name == "gpu-4" && dev.Attributes["uuid"].StringValue != nil {
				uuid = *dev.Attributes["uuid"].StringValue
			}
		}
	}
	if _, err := fmt.Fprintf(events, "dbe %s\n", uuid); err != nil {
		t.Fatal(err)
	}
	waitDevices(t, api, p, []string{"gpu-0", "gpu-1", "gpu-3", "gpu-5", "gpu-6", "gpu-7"},
		"unhealthy devices left out where the API server drops taints")
	if n := strings.Count(p.output(), "dropped the device taints"); n != 1 {
		t.Errorf("the dropped taints were logged %d times, want once:\n%s", n, p.output())
	}
}

// nvmlEvents makes a FIFO through which the test injects NVML events into the driver's mock NVML.
func nvmlEvents(t *testing.T, e *env, dir string) *os.File {
	t.Helper()
	fifo := filepath.Join(dir, "nvml-events")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	e.extra = append(e.extra, "MOCK_NVML_EVENTS="+fifo)
	// O_RDWR: opening does not wait for the driver to open its end.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func fileContains(t *testing.T, path, s string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Contains(string(b), s)
}

// driverRoot makes a node filesystem with a driver (tests/helpers/cdi-fixture-root, the simulated NVML as its
// libnvidia-ml) and points the driver at it, seen where it is.
func driverRoot(t *testing.T, e *env, dir string) {
	t.Helper()
	root := filepath.Join(dir, "driver-root")
	helper := filepath.Join(filepath.Dir(e.nvdp), "tests", "helpers", "cdi-fixture-root")
	if out, err := exec.Command(helper, "fhs", root, "--version", "580.105.08", "--gpus", "8").CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", helper, err, out)
	}
	lib, err := os.ReadFile(filepath.Join(e.mockLib, "libnvidia-ml.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.105.08"), lib, 0o755); err != nil {
		t.Fatal(err)
	}
	e.extra = append(e.extra, "NVIDIA_DRIVER_ROOT="+root, "DRIVER_ROOT_CTR_PATH="+root,
		"NVIDIA_CDI_HOOK_PATH=/usr/local/bin/nvdp-cdi-hook")
}

// claimSpecIDs reads a claim's CDI spec (JSON) and returns its devices as qualified CDI IDs, sorted.
func claimSpecIDs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the claim's CDI spec: %v", err)
	}
	var spec struct {
		Kind    string `json:"kind"`
		Devices []struct {
			Name  string `json:"name"`
			Edits struct {
				DeviceNodes []struct {
					Path string `json:"path"`
				} `json:"deviceNodes"`
			} `json:"containerEdits"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatalf("the claim's CDI spec %s: %v", path, err)
	}
	var ids []string
	for _, d := range spec.Devices {
		if len(d.Edits.DeviceNodes) != 1 {
			t.Errorf("%s: device %s has device nodes %v, want its GPU's", path, d.Name, d.Edits.DeviceNodes)
		}
		ids = append(ids, spec.Kind+"="+d.Name)
	}
	slices.Sort(ids)
	return ids
}

// checkAttributes: what nvdp publishes for an H100 of the fixture, named as NVIDIA's DRA driver names it.
func checkAttributes(t *testing.T, dev resourceapi.Device) {
	t.Helper()
	str := func(name string) string {
		if a, ok := dev.Attributes[resourceapi.QualifiedName(name)]; ok {
			switch {
			case a.StringValue != nil:
				return *a.StringValue
			case a.VersionValue != nil:
				return *a.VersionValue
			case a.IntValue != nil:
				return fmt.Sprint(*a.IntValue)
			}
		}
		return "(missing)"
	}
	want := map[string]string{
		"type": "gpu", "productName": "NVIDIA H100 80GB HBM3", "architecture": "Hopper", "brand": "Nvidia",
		"cudaComputeCapability": "9.0.0", "driverVersion": "580.105.8", "cudaDriverVersion": "13.0.0",
		"index": "5", "minor": "5",
	}
	for name, v := range want {
		if got := str(name); got != v {
			t.Errorf("device %s: attribute %s is %q, want %q", dev.Name, name, got, v)
		}
	}
	if str("resource.kubernetes.io/numaNode") == "(missing)" || str("resource.kubernetes.io/pciBusID") == "(missing)" ||
		str("pcieBusID") != str("resource.kubernetes.io/pciBusID") {
		t.Errorf("device %s: NUMA node %s, PCI bus IDs %s / %s", dev.Name, str("resource.kubernetes.io/numaNode"),
			str("pcieBusID"), str("resource.kubernetes.io/pciBusID"))
	}
	if c, ok := dev.Capacity["memory"]; !ok || c.Value.String() != "81559Mi" {
		t.Errorf("device %s: memory capacity %v, want 81559Mi", dev.Name, dev.Capacity["memory"])
	}
}

// badClaims: claims nvdp must refuse, each with a sentence the kubelet puts into the pod's events.
func badClaims(t *testing.T, k *draKubelet, api *fakeAPI, active *pods, p *plugin) {
	t.Helper()
	foo := []resourceapi.DeviceAllocationConfiguration{{
		Source: resourceapi.AllocationConfigSourceClaim,
		DeviceConfiguration: resourceapi.DeviceConfiguration{Opaque: &resourceapi.OpaqueDeviceConfiguration{
			Driver:     draDriver,
			Parameters: runtime.RawExtension{Raw: []byte(`{"apiVersion":"gpu.example.com/v1","kind":"FooConfig"}`)},
		}},
	}}
	cases := []struct {
		name, uid, pool, device string
		config                  []resourceapi.DeviceAllocationConfiguration
		want                    string
	}{
		{"not-here", "11111111-0000-4000-8000-000000000001", draNode, "gpu-9", nil,
			"device gpu-9 is not one of the 8 devices of node node-a"},
		{"other-pool", "11111111-0000-4000-8000-000000000002", "node-b", "gpu-1", nil,
			"device gpu-1 of pool node-b is not on this node (nvdp on node node-a serves pool node-a)"},
		{"foo-config", "11111111-0000-4000-8000-000000000003", draNode, "gpu-4", foo,
			"unknown opaque config for driver gpu.nvidia.com: apiVersion \"gpu.example.com/v1\", kind \"FooConfig\""},
	}
	for _, c := range cases {
		pod := claimPod("pod-"+c.name, c.name)
		createClaim(t, api, allocatedClaim(c.name, c.uid, c.pool, []string{c.device}, c.config, pod))
		_, err := prepare(t, k, active, pod)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("claim %s: PrepareResources returned %v, want an error containing %q", c.name, err, c.want)
		}
		if err := unprepare(t, k, active, pod); err != nil {
			t.Errorf("claim %s: UnprepareResources after the refused prepare: %v", c.name, err)
		}
	}
}

// xidTaints: XID 79 on the GPU behind gpu-2 taints that device in the slice, and a claim for it is refused.
func xidTaints(t *testing.T, k *draKubelet, api *fakeAPI, active *pods, p *plugin, events *os.File) {
	t.Helper()
	uuid := ""
	for _, s := range nodeSlices(t, api) {
		for _, dev := range s.Spec.Devices {
			if dev.Name == "gpu-2" && dev.Attributes["uuid"].StringValue != nil {
				uuid = *dev.Attributes["uuid"].StringValue
			}
		}
	}
	if _, err := fmt.Fprintf(events, "xid %s 79\n", uuid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(draTimeout)
	for {
		var taints []resourceapi.DeviceTaint
		for _, s := range nodeSlices(t, api) {
			for _, dev := range s.Spec.Devices {
				if dev.Name == "gpu-2" {
					taints = dev.Taints
				}
			}
		}
		if len(taints) == 1 && taints[0].Key == "gpu.nvidia.com/gpu-lost" && taints[0].Effect == "NoSchedule" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after XID 79 on %s, device gpu-2 has taints %v, want gpu.nvidia.com/gpu-lost:NoSchedule"+
				"\n--- driver output ---\n%s", uuid, taints, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	pod := claimPod("pod-lost", "lost-gpu")
	createClaim(t, api, allocatedClaim("lost-gpu", "11111111-0000-4000-8000-000000000004", draNode,
		[]string{"gpu-2"}, nil, pod))
	_, err := prepare(t, k, active, pod)
	if err == nil || !strings.Contains(err.Error(), "device gpu-2 is unhealthy: XID 79") {
		t.Errorf("a claim for the lost gpu-2: PrepareResources returned %v, want \"device gpu-2 is unhealthy: XID 79 ...\"",
			err)
	}
	if err := unprepare(t, k, active, pod); err != nil {
		t.Errorf("UnprepareResources after the refused prepare: %v", err)
	}
}

// TestKubeletDRA: nvdp dra registers through the plugin watcher, publishes the fixture's GPUs, prepares
// and unprepares claims for the real kubelet DRA manager, and survives a restart in between.
func TestKubeletDRA(t *testing.T) {
	draScenario(t, loadEnv(t), true)
}
