# shellcheck shell=bash
# Device plugin scenario (NOT WRITTEN YET: waits for the Helm chart, the image and the justfile
# recipes). Select it with NVDP_E2E_SCENARIOS="smoke device-plugin". Planned steps, on this cluster:
#   1. import the nvdp image (an OCI tar from `make image`) into containerd's k8s.io namespace;
#   2. make the node look like a GPU node: the mock NVML library and the dgx-h100 fixture mounted
#      into the plugin pod (chart values for tests), RuntimeClass nvidia (the smoke scenario made it);
#   3. `just nvidia-device-plugin::install` (helm install into this cluster, KUBECONFIG exported);
#   4. `just nvidia-device-plugin::verify`: DaemonSet ready, node allocatable nvidia.com/gpu = 8;
#   5. `just nvidia-device-plugin::test`: a pod with nvidia.com/gpu: 2 and runtimeClassName nvidia
#      runs and logs NVIDIA_VISIBLE_DEVICES with 2 fixture UUIDs; a 9th GPU stays Pending;
#   6. restart the plugin pod and the kubelet: allocatable returns to 8, the first pod keeps its GPUs;
#   7. `just nvidia-device-plugin::uninstall`: allocatable drops, nothing of the chart is left.
die "scenario device-plugin is not written yet (needs the chart, the image and the just recipes)"
