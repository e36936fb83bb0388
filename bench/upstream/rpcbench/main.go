// SPDX-License-Identifier: Apache-2.0

// rpcbench is the kubelet's side of the latency measurements: the same client stack the kubelet uses
// (grpc-go with the generated v1beta1 DevicePlugin client from k8s.io/kubelet), one connection kept
// open, calls made one after another as the kubelet's device manager makes them. It prints one line
// per call: the call's wall time in nanoseconds. The same binary measures both plugins.
//
//	rpcbench allocate SOCKET N ID[,ID...]            N Allocate calls for one container with these IDs
//	rpcbench preferred SOCKET N SIZE ID[,ID...]      N GetPreferredAllocation calls of SIZE out of these IDs
//	rpcbench kubelet DIR                             the kubelet's Registration service on DIR/kubelet.sock:
//	                                                 on Register it dials the plugin, calls
//	                                                 GetDevicePluginOptions, starts ListAndWatch, then
//	                                                 answers (as the kubelet does); prints one JSON line per
//	                                                 event with its CLOCK_MONOTONIC time in ns (a list:
//	                                                 its devices and its size in bytes)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: rpcbench allocate|preferred SOCKET N [SIZE] IDS | rpcbench kubelet DIR")
	os.Exit(2)
}

// monotonic is CLOCK_MONOTONIC in ns: the clock the bench's other timestamps use.
func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

type event struct {
	Ev       string      `json:"ev"`
	Resource string      `json:"res"`
	Endpoint string      `json:"ep,omitempty"`
	T        int64       `json:"t"`
	Devices  [][2]string `json:"devs,omitempty"`
	Size     int         `json:"size,omitempty"`
	Error    string      `json:"err,omitempty"`
}

type kubelet struct {
	pluginapi.UnimplementedRegistrationServer
	dir string
	mu  sync.Mutex
}

func (k *kubelet) emit(e event) {
	b, _ := json.Marshal(e)
	k.mu.Lock()
	defer k.mu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

func (k *kubelet) Register(ctx context.Context, r *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	k.emit(event{Ev: "register", Resource: r.ResourceName, Endpoint: r.Endpoint, T: monotonic()})
	conn, err := grpc.NewClient("unix:"+filepath.Join(k.dir, r.Endpoint),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	client := pluginapi.NewDevicePluginClient(conn)
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.GetDevicePluginOptions(c, &pluginapi.Empty{}); err != nil {
		return nil, err
	}
	stream, err := client.ListAndWatch(context.Background(), &pluginapi.Empty{})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				k.emit(event{Ev: "end", Resource: r.ResourceName, T: monotonic(), Error: err.Error()})
				return
			}
			e := event{Ev: "list", Resource: r.ResourceName, T: monotonic(), Devices: [][2]string{},
				Size: proto.Size(resp)}
			for _, d := range resp.Devices {
				e.Devices = append(e.Devices, [2]string{d.ID, d.Health})
			}
			k.emit(e)
		}
	}()
	return &pluginapi.Empty{}, nil
}

func serveKubelet(dir string) {
	socket := filepath.Join(dir, "kubelet.sock")
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	k := &kubelet{dir: dir}
	pluginapi.RegisterRegistrationServer(s, k)
	// The socket file appears at bind, before listen: "ready" says connections are accepted now.
	k.emit(event{Ev: "ready", T: monotonic()})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; s.Stop() }()
	_ = s.Serve(l)
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	mode, socket := os.Args[1], os.Args[2]
	switch mode {
	case "kubelet":
		serveKubelet(socket)
		return
	}
	if len(os.Args) < 5 {
		usage()
	}
	n, err := strconv.Atoi(os.Args[3])
	if err != nil || n < 1 {
		usage()
	}
	conn, err := grpc.NewClient("unix:"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	client := pluginapi.NewDevicePluginClient(conn)
	ctx := context.Background()

	var call func() error
	switch mode {
	case "allocate":
		req := &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
			{DevicesIds: strings.Split(os.Args[4], ",")}}}
		call = func() error {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := client.Allocate(c, req)
			return err
		}
	case "preferred":
		if len(os.Args) < 6 {
			usage()
		}
		size, err := strconv.Atoi(os.Args[4])
		if err != nil {
			usage()
		}
		req := &pluginapi.PreferredAllocationRequest{ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{
			{AvailableDeviceIDs: strings.Split(os.Args[5], ","), AllocationSize: int32(size)}}}
		call = func() error {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := client.GetPreferredAllocation(c, req)
			return err
		}
	default:
		usage()
	}
	// The first call connects; it is made and not counted, as the kubelet's connection is long lived.
	if err := call(); err != nil {
		fmt.Fprintln(os.Stderr, "rpcbench:", err)
		os.Exit(1)
	}
	out := make([]int64, n)
	for i := range out {
		t := time.Now()
		if err := call(); err != nil {
			fmt.Fprintln(os.Stderr, "rpcbench:", err)
			os.Exit(1)
		}
		out[i] = time.Since(t).Nanoseconds()
	}
	var b strings.Builder
	for _, v := range out {
		b.WriteString(strconv.FormatInt(v, 10))
		b.WriteByte('\n')
	}
	os.Stdout.WriteString(b.String())
}
