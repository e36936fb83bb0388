//go:build tools

// Package upstream pins NVIDIA's k8s-device-plugin and gpu-feature-discovery, the programs nvdp is
// benchmarked against (bench/) and compared with (tests/compat/). Both build from this one module.
package upstream

import (
	_ "github.com/NVIDIA/k8s-device-plugin/cmd/gpu-feature-discovery"
	_ "github.com/NVIDIA/k8s-device-plugin/cmd/nvidia-device-plugin"
)
