//go:build tools

// Package upstream pins NVIDIA's k8s-device-plugin, the plugin nvdp is benchmarked against.
package upstream

import _ "github.com/NVIDIA/k8s-device-plugin/cmd/nvidia-device-plugin"
