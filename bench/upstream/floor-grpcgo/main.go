// SPDX-License-Identifier: Apache-2.0

// floor-grpcgo is the latency floor of grpc-go, the stack NVIDIA's plugin serves on: a unary gRPC
// server that answers each method with fixed bytes and does no other work (no protobuf decoding: a
// codec that passes bytes through). The bench gives it the plugins' own replies, so the same request
// gets the same response bytes; a plugin's latency minus this one's is what its handlers cost.
//
//	floor-grpcgo SOCKET METHOD=REPLYFILE...
//
// METHOD is a gRPC path ("/v1beta1.DevicePlugin/Allocate"); REPLYFILE holds the reply message
// (protobuf bytes, without the 5-byte gRPC prefix). SIGTERM ends it.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/grpc"
)

// raw passes message bytes through untouched.
type raw struct{}

func (raw) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (raw) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (raw) Name() string { return "proto" }

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "floor-grpcgo: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: floor-grpcgo SOCKET METHOD=REPLYFILE...")
		os.Exit(2)
	}
	// One service description per service name, one unary method per path.
	services := map[string]*grpc.ServiceDesc{}
	var order []string
	for _, arg := range os.Args[2:] {
		method, file, ok := strings.Cut(arg, "=")
		slash := strings.LastIndex(method, "/")
		if !ok || !strings.HasPrefix(method, "/") || slash <= 0 {
			fail("%s: expected /SERVICE/METHOD=REPLYFILE", arg)
		}
		reply, err := os.ReadFile(file)
		if err != nil {
			fail("%v", err)
		}
		service, name := method[1:slash], method[slash+1:]
		desc := services[service]
		if desc == nil {
			desc = &grpc.ServiceDesc{ServiceName: service, HandlerType: (*any)(nil)}
			services[service] = desc
			order = append(order, service)
		}
		desc.Methods = append(desc.Methods, grpc.MethodDesc{
			MethodName: name,
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var in []byte
				if err := dec(&in); err != nil {
					return nil, err
				}
				return &reply, nil
			},
		})
	}
	_ = os.Remove(os.Args[1])
	l, err := net.Listen("unix", os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	s := grpc.NewServer(grpc.ForceServerCodec(raw{}))
	for _, name := range order {
		s.RegisterService(services[name], nil)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; s.Stop() }()
	fmt.Println("ready")
	_ = s.Serve(l)
}
