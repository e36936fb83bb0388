// stubplugin stands in for nvdp to check the test harness itself (NVDP_KUBELET_SELFTEST=1): kubelet's
// own device plugin stub (pkg/kubelet/cm/devicemanager/plugin/v1beta1) serving the GPU UUIDs of a
// fixture file as nvidia.com/gpu, with nvdp's command line: `stubplugin plugin --kubelet-socket PATH`.
// It is not a test of nvdp.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"k8s.io/klog/v2"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	plugin "k8s.io/kubernetes/pkg/kubelet/cm/devicemanager/plugin/v1beta1"
)

func main() {
	if len(os.Args) != 4 || os.Args[1] != "plugin" || os.Args[2] != "--kubelet-socket" {
		fmt.Fprintln(os.Stderr, "usage: stubplugin plugin --kubelet-socket PATH")
		os.Exit(2)
	}
	kubeletSock := os.Args[3]
	data, err := os.ReadFile(os.Getenv("MOCK_NVML_FIXTURE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var devs []*pluginapi.Device
	for _, m := range regexp.MustCompile(`(?m)uuid:\s*"?(GPU-[0-9a-fA-F-]+)`).FindAllSubmatch(data, -1) {
		devs = append(devs, &pluginapi.Device{ID: string(m[1]), Health: pluginapi.Healthy})
	}
	logger := klog.Background()
	dir := filepath.Dir(kubeletSock)
	stub := plugin.NewDevicePluginStub(logger, devs, filepath.Join(dir, "nvidia-gpu.sock"), "nvidia.com/gpu", false, false)
	stub.SetAllocFunc(func(r *pluginapi.AllocateRequest, _ map[string]*pluginapi.Device) (*pluginapi.AllocateResponse, error) {
		var resp pluginapi.AllocateResponse
		for _, c := range r.ContainerRequests {
			resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerAllocateResponse{
				Envs: map[string]string{"NVIDIA_VISIBLE_DEVICES": strings.Join(c.DevicesIds, ",")},
			})
		}
		return &resp, nil
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := stub.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(1)
	}
	if err := stub.Register(ctx, kubeletSock, "nvidia.com/gpu", dir); err != nil {
		fmt.Fprintln(os.Stderr, "register:", err)
		os.Exit(1)
	}
	fmt.Println("stubplugin: registered", len(devs), "devices")
	// Re-register when kubelet restarts (the stub waits 10 s before it does).
	go stub.Watch(ctx, kubeletSock, "nvidia.com/gpu", dir)
	<-ctx.Done()
	_ = stub.Stop(logger)
}
