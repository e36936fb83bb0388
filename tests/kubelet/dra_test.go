// Conformance test for nvdp as a DRA driver: the real kubelet DRA manager (k8s.io/kubernetes/pkg/kubelet/cm/
// dra) and plugin manager (pkg/kubelet/pluginmanager: the plugin watcher on plugins_registry) against the
// driver binary, with a kube-apiserver stand-in (dra_apiserver_test.go) holding the Node, the ResourceClaims
// and the driver's ResourceSlices.
package kubelet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
	draScenario(t, draStubEnv(t))
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
func draScenario(t *testing.T, e env) {
	uuids := fixtureUUIDs(t, e.fixture)
	if len(uuids) != fixtureGPUs {
		t.Fatalf("fixture %s lists %d GPU UUIDs (%v), this test expects the 8x H100 node", e.fixture, len(uuids), uuids)
	}
	dir := t.TempDir()
	d := newDRADirs(t)
	api := startFakeAPI(t, draNodeObject())
	active := &pods{}
	k := startDRAKubelet(t, api, d, active)

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
	if strings.Contains(p.output(), "panic") {
		t.Errorf("the driver panicked:\n%s", p.output())
	}
}
