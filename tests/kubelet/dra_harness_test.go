package kubelet

// The kubelet side of the DRA test: the kubelet's plugin manager (pkg/kubelet/pluginmanager, the plugin
// watcher on the registry directory) feeding the kubelet's DRA manager (pkg/kubelet/cm/dra), both the code a
// kubelet runs, in temporary directories.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
	"k8s.io/kubernetes/pkg/kubelet/cm/dra"
	draplugin "k8s.io/kubernetes/pkg/kubelet/cm/dra/plugin"
	"k8s.io/kubernetes/pkg/kubelet/config"
	"k8s.io/kubernetes/pkg/kubelet/pluginmanager"
	"k8s.io/utils/ptr"
)

const (
	draDriver = "gpu.nvidia.com"
	draNode   = "node-a"
	// Registration goes through the plugin watcher (inotify) and the plugin manager's reconciler, which runs
	// once a second; publishing through the API server stand-in. A few seconds each; these are generous.
	draTimeout = 20 * time.Second
)

// draDirs are the host paths a DRA driver's DaemonSet mounts, under one temp dir.
type draDirs struct {
	registry string // /var/lib/kubelet/plugins_registry
	plugins  string // /var/lib/kubelet/plugins
	cdi      string // /var/run/cdi
	state    string // the kubelet's own state (its DRA checkpoint)
}

func newDRADirs(t *testing.T) draDirs {
	t.Helper()
	root := t.TempDir()
	d := draDirs{
		registry: filepath.Join(root, "plugins_registry"),
		plugins:  filepath.Join(root, "plugins"),
		cdi:      filepath.Join(root, "cdi"),
		state:    filepath.Join(root, "kubelet"),
	}
	for _, p := range []string{d.registry, filepath.Join(d.plugins, draDriver), d.cdi, d.state} {
		if err := os.MkdirAll(p, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// draKubelet is one run of the kubelet's DRA manager and plugin manager.
type draKubelet struct {
	m      *dra.Manager
	cancel context.CancelFunc
	stopCh chan struct{}
}

// startDRAKubelet starts the DRA manager (with the stand-in's clientset as its API client) and the plugin
// manager watching d.registry, as kubelet start-up does. It returns once the DRA manager has wiped the
// node's ResourceSlices, which a starting kubelet does before any driver registers.
func startDRAKubelet(t *testing.T, api *fakeAPI, d draDirs, active *pods) *draKubelet {
	t.Helper()
	logger, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	m, err := dra.NewManager(logger, api.client, d.state)
	if err != nil {
		t.Fatalf("creating the kubelet DRA manager: %v", err)
	}
	before := wipes(api)
	ready := config.NewSourcesReady(func(sets.Set[string]) bool { return true })
	getNode := func(ctx context.Context) (*v1.Node, error) {
		return api.client.CoreV1().Nodes().Get(ctx, draNode, metav1.GetOptions{})
	}
	if err := m.Start(ctx, active.active, getNode, ready); err != nil {
		cancel()
		t.Fatalf("starting the kubelet DRA manager: %v", err)
	}
	pm := pluginmanager.NewPluginManager(d.registry, record.NewFakeRecorder(100))
	pm.AddHandler(registerapi.DRAPlugin, m.GetWatcherHandler())
	k := &draKubelet{m: m, cancel: cancel, stopCh: make(chan struct{})}
	go pm.Run(ctx, ready, k.stopCh)
	t.Cleanup(k.stop)

	deadline := time.Now().Add(draTimeout)
	for wipes(api) == before {
		if time.Now().After(deadline) {
			t.Fatalf("the kubelet DRA manager did not wipe the node's ResourceSlices within %v of starting", draTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return k
}

func (k *draKubelet) stop() {
	select {
	case <-k.stopCh:
		return
	default:
	}
	close(k.stopCh)
	k.m.Stop()
	k.cancel()
}

// wipes counts the DRA manager's DeleteCollection calls on ResourceSlices.
func wipes(api *fakeAPI) int {
	n := 0
	for _, a := range api.client.Actions() {
		if a.GetVerb() == "delete-collection" && a.GetResource().Resource == "resourceslices" {
			n++
		}
	}
	return n
}

// waitRegistered waits until the kubelet knows a plugin for the driver (it registered through the plugin
// watcher), failing early if the driver process ends.
func waitRegistered(t *testing.T, k *draKubelet, p *plugin, what string) {
	t.Helper()
	pm := k.m.GetWatcherHandler().(*draplugin.DRAPluginManager)
	deadline := time.Now().Add(draTimeout)
	var err error
	for time.Now().Before(deadline) {
		if _, err = pm.GetPlugin(draDriver); err == nil {
			return
		}
		if p.exited() {
			t.Fatalf("%s: the driver exited (%v) before it registered with the kubelet.\n--- driver output ---\n%s",
				what, p.exitErr(), p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: after %v the kubelet has no plugin for %s: %v\n--- driver output ---\n%s", what, draTimeout,
		draDriver, err, p.output())
}

// nodeSlices lists the ResourceSlices of driver gpu.nvidia.com for the node.
func nodeSlices(t *testing.T, api *fakeAPI) []resourceapi.ResourceSlice {
	t.Helper()
	list, err := api.client.ResourceV1().ResourceSlices().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []resourceapi.ResourceSlice
	for _, s := range list.Items {
		if s.Spec.Driver == draDriver && s.Spec.NodeName != nil && *s.Spec.NodeName == draNode {
			out = append(out, s)
		}
	}
	return out
}

// waitDevices waits until the node's slices publish exactly the named devices and returns them by name.
func waitDevices(t *testing.T, api *fakeAPI, p *plugin, want []string, what string) map[string]resourceapi.Device {
	t.Helper()
	deadline := time.Now().Add(draTimeout)
	var got []string
	for {
		devs := map[string]resourceapi.Device{}
		got = got[:0]
		for _, s := range nodeSlices(t, api) {
			for _, d := range s.Spec.Devices {
				devs[d.Name] = d
				got = append(got, d.Name)
			}
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return devs
		}
		if p != nil && p.exited() {
			t.Fatalf("%s: the driver exited (%v); its ResourceSlices hold %v, want %v.\n--- driver output ---\n%s",
				what, p.exitErr(), got, want, p.output())
		}
		if time.Now().After(deadline) {
			out := ""
			if p != nil {
				out = "\n--- driver output ---\n" + p.output()
			}
			t.Fatalf("%s: after %v the node's ResourceSlices hold devices %v, want %v%s", what, draTimeout, got,
				want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startDRADriver starts `<binary> dra` for the node with the stand-in's kubeconfig and the dirs.
func startDRADriver(t *testing.T, e env, api *fakeAPI, d draDirs, dir string) *plugin {
	t.Helper()
	return startProcess(t, e, dir, "dra",
		"--node-name", draNode,
		"--kubeconfig", api.kubeconfig(t, dir),
		"--kubelet-registrar-directory-path", d.registry,
		"--kubelet-plugins-directory-path", d.plugins,
		"--cdi-root", d.cdi)
}

func draNodeObject() *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: draNode, UID: "5d0a4e1c-0b7e-4d59-9d8c-2f5e7a1b3c4d"}}
}

// claimPod is a pod whose container "cuda" uses the claim under the pod-level name "gpus".
func claimPod(name, claim string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: v1.PodSpec{
			ResourceClaims: []v1.PodResourceClaim{{Name: "gpus", ResourceClaimName: ptr.To(claim)}},
			Containers: []v1.Container{{
				Name:      "cuda",
				Image:     "cuda-sample",
				Resources: v1.ResourceRequirements{Claims: []v1.ResourceClaim{{Name: "gpus"}}},
			}},
		},
	}
}

// allocatedClaim is a ResourceClaim as the scheduler leaves it: the devices allocated from pool (request
// "gpus"), optional opaque config, reserved for the pods.
func allocatedClaim(name, uid, pool string, devices []string, config []resourceapi.DeviceAllocationConfiguration,
	pods ...*v1.Pod) *resourceapi.ResourceClaim {
	c := &resourceapi.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(uid)},
		Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{Requests: []resourceapi.DeviceRequest{{
			Name:    "gpus",
			Exactly: &resourceapi.ExactDeviceRequest{DeviceClassName: draDriver, Count: int64(len(devices))},
		}}}},
		Status: resourceapi.ResourceClaimStatus{Allocation: &resourceapi.AllocationResult{
			Devices: resourceapi.DeviceAllocationResult{Config: config},
		}},
	}
	for _, d := range devices {
		c.Status.Allocation.Devices.Results = append(c.Status.Allocation.Devices.Results,
			resourceapi.DeviceRequestAllocationResult{Request: "gpus", Driver: draDriver, Pool: pool, Device: d})
	}
	for _, p := range pods {
		c.Status.ReservedFor = append(c.Status.ReservedFor,
			resourceapi.ResourceClaimConsumerReference{Resource: "pods", Name: p.Name, UID: p.UID})
	}
	return c
}

func createClaim(t *testing.T, api *fakeAPI, c *resourceapi.ResourceClaim) {
	t.Helper()
	if _, err := api.client.ResourceV1().ResourceClaims(c.Namespace).Create(context.Background(), c,
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// prepare runs the kubelet's PrepareResources for the pod (as before starting its containers) and returns
// the CDI devices its container "cuda" gets (GetResources, as at container creation), sorted.
func prepare(t *testing.T, k *draKubelet, active *pods, pod *v1.Pod) ([]string, error) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	if !slices.Contains(active.list, pod) {
		active.list = append(active.list, pod)
	}
	if err := k.m.PrepareResources(ctx, pod); err != nil {
		return nil, err
	}
	info, err := k.m.GetResources(pod, &pod.Spec.Containers[0])
	if err != nil {
		return nil, errors.New("GetResources after a successful PrepareResources: " + err.Error())
	}
	var ids []string
	for _, d := range info.CDIDevices {
		ids = append(ids, d.Name)
	}
	slices.Sort(ids)
	return ids, nil
}

// unprepare runs the kubelet's UnprepareResources for the pod, as when it ends. Like the kubelet, which
// retries in its reconcile loop, it tries again while the driver is away (just restarted: the plugin watcher
// deregisters the old socket and registers the new one, the kubelet's gRPC connection comes back by
// itself), for at most draTimeout.
func unprepare(t *testing.T, k *draKubelet, active *pods, pod *v1.Pod) error {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	active.list = slices.DeleteFunc(active.list, func(p *v1.Pod) bool { return p == pod })
	deadline := time.Now().Add(draTimeout)
	for {
		err := k.m.UnprepareResources(ctx, pod)
		away := err != nil && (strings.Contains(err.Error(), "code = Unavailable") ||
			strings.Contains(err.Error(), "DRA driver "+draDriver+" is not registered"))
		if !away || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
