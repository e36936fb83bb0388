// SPDX-License-Identifier: Apache-2.0

// rpcbench is the kubelet's side of the latency measurements: the same client stack the kubelet uses
// (grpc-go with the generated v1beta1 DevicePlugin client from k8s.io/kubelet), one connection kept
// open, calls made one after another as the kubelet's device manager makes them. It prints one line
// per call: the call's wall time in nanoseconds. The same binary measures both plugins.
//
//	rpcbench allocate SOCKET N ID[,ID...]            N Allocate calls for one container with these IDs
//	rpcbench preferred SOCKET N SIZE ID[,ID...]      N GetPreferredAllocation calls of SIZE out of these IDs
//	rpcbench null-server SOCKET                      a DevicePlugin that answers at once with empty
//	                                                 messages: what the client itself costs
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: rpcbench allocate|preferred SOCKET N [SIZE] IDS | rpcbench null-server SOCKET")
	os.Exit(2)
}

type nullServer struct {
	pluginapi.UnimplementedDevicePluginServer
}

func (nullServer) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{GetPreferredAllocationAvailable: true}, nil
}

func (nullServer) Allocate(_ context.Context, r *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for range r.ContainerRequests {
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerAllocateResponse{})
	}
	return resp, nil
}

func (nullServer) GetPreferredAllocation(_ context.Context, r *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	resp := &pluginapi.PreferredAllocationResponse{}
	for _, c := range r.ContainerRequests {
		resp.ContainerResponses = append(resp.ContainerResponses,
			&pluginapi.ContainerPreferredAllocationResponse{DeviceIDs: c.AvailableDeviceIDs[:c.AllocationSize]})
	}
	return resp, nil
}

func serveNull(socket string) {
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(s, nullServer{})
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
	if mode == "null-server" {
		serveNull(socket)
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
