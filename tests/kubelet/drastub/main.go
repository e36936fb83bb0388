// drastub stands in for `nvdp dra` to check the DRA test harness itself (NVDP_KUBELET_SELFTEST=1): a DRA
// driver built on Kubernetes' own kubelet plugin helper (k8s.io/dynamic-resource-allocation/kubeletplugin),
// with nvdp's command line. It publishes one ResourceSlice of 8 devices "gpu-0".."gpu-7" carrying the
// fixture's GPU UUIDs, and prepares claims as nvdp names them: CDI device
// "k8s.gpu.nvidia.com/claim=<claim UID>-<device>". It writes no CDI specs. It is not a test of nvdp.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"

	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/utils/ptr"
)

const driver = "gpu.nvidia.com"

type stub struct{ node string }

func (s *stub) PrepareResourceClaims(_ context.Context, claims []*resourceapi.ResourceClaim) (map[types.UID]kubeletplugin.PrepareResult, error) {
	out := map[types.UID]kubeletplugin.PrepareResult{}
	for _, c := range claims {
		var res kubeletplugin.PrepareResult
		for _, r := range c.Status.Allocation.Devices.Results {
			if r.Driver != driver {
				continue
			}
			res.Devices = append(res.Devices, kubeletplugin.Device{
				Requests:     []string{r.Request},
				PoolName:     r.Pool,
				DeviceName:   r.Device,
				CDIDeviceIDs: []string{fmt.Sprintf("k8s.gpu.nvidia.com/claim=%s-%s", c.UID, r.Device)},
			})
		}
		out[c.UID] = res
	}
	return out, nil
}

func (s *stub) UnprepareResourceClaims(_ context.Context, claims []kubeletplugin.NamespacedObject) (map[types.UID]error, error) {
	out := map[types.UID]error{}
	for _, c := range claims {
		out[c.UID] = nil
	}
	return out, nil
}

func (s *stub) HandleError(_ context.Context, err error, msg string) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", msg, err)
}

func (s *stub) WatchHealthStatus(context.Context, chan<- kubeletplugin.DeviceHealthReport) error {
	return kubeletplugin.ErrHealthNotSupported
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "drastub:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "dra" {
		fail(fmt.Errorf("usage: drastub dra --node-name N --kubeconfig F --kubelet-registrar-directory-path D " +
			"--kubelet-plugins-directory-path D --cdi-root D"))
	}
	fs := flag.NewFlagSet("dra", flag.ExitOnError)
	node := fs.String("node-name", "", "")
	kubeconfig := fs.String("kubeconfig", "", "")
	registry := fs.String("kubelet-registrar-directory-path", "", "")
	plugins := fs.String("kubelet-plugins-directory-path", "", "")
	fs.String("cdi-root", "", "")
	_ = fs.Parse(os.Args[2:])

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	// The test's API server stand-in speaks JSON only.
	cfg.ContentType, cfg.AcceptContentTypes = "application/json", "application/json"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail(err)
	}
	data, err := os.ReadFile(os.Getenv("MOCK_NVML_FIXTURE"))
	if err != nil {
		fail(err)
	}
	slice := &resourceapi.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: *node + "-" + driver + "-0"},
		Spec: resourceapi.ResourceSliceSpec{
			Driver:   driver,
			NodeName: node,
			Pool:     resourceapi.ResourcePool{Name: *node, Generation: 1, ResourceSliceCount: 1},
		},
	}
	for i, m := range regexp.MustCompile(`(?m)uuid:\s*"?(GPU-[0-9a-fA-F-]+)`).FindAllSubmatch(data, -1) {
		slice.Spec.Devices = append(slice.Spec.Devices, resourceapi.Device{
			Name: fmt.Sprintf("gpu-%d", i),
			Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
				"type": {StringValue: ptr.To("gpu")}, "uuid": {StringValue: ptr.To(string(m[1]))},
			},
		})
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if _, err := client.ResourceV1().ResourceSlices().Create(ctx, slice, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		fail(err)
	}
	helper, err := kubeletplugin.Start(ctx, &stub{node: *node},
		kubeletplugin.DriverName(driver),
		kubeletplugin.NodeName(*node),
		kubeletplugin.KubeClient(client),
		kubeletplugin.RegistrarDirectoryPath(*registry),
		kubeletplugin.PluginDataDirectoryPath(filepath.Join(*plugins, driver)),
		kubeletplugin.HealthService(false),
	)
	if err != nil {
		fail(err)
	}
	<-ctx.Done()
	helper.Stop()
}
