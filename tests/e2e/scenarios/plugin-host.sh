# shellcheck shell=bash
# The nvdp plugin as a host daemon on the node (the way a systemd unit would run it; the DaemonSet
# from the chart comes with the device-plugin scenario), on the simulated 8x H100 node (mock NVML).
# Checks, through the real kubelet, scheduler and runtime:
#   - node capacity and allocatable nvidia.com/gpu = 8;
#   - a pod with nvidia.com/gpu: 2 and runtimeClassName nvidia runs and sees 2 fixture UUIDs in
#     NVIDIA_VISIBLE_DEVICES; a pod asking for 7 more stays Pending (Insufficient nvidia.com/gpu);
#   - plugin killed and restarted: allocatable returns to 8;
#   - deviceListStrategy cdi-cri: containerd applies a CDI spec to the pod's 2 GPUs (see below).
# Needs build/nvdp and build/mock-nvml (make all); NVDP_BUILD points elsewhere.

build=${NVDP_BUILD:-$REPO/build}
fixture=$REPO/mock/nvml/fixtures/dgx-h100.yaml
for f in "$build/nvdp" "$build/mock-nvml/libnvidia-ml.so.1" "$fixture"; do
        [ -e "$f" ] || die "plugin-host: $f is missing (run make first)"
done
mapfile -t uuids < <(sed -n 's/^ *uuid: *"\{0,1\}\(GPU-[0-9a-fA-F-]*\).*/\1/p' "$fixture")
[ ${#uuids[@]} -eq 8 ] || die "plugin-host: expected 8 GPU UUIDs in $fixture, found ${#uuids[@]}"

start_plugin() {
        start nvdp-plugin env LD_LIBRARY_PATH="$build/mock-nvml" MOCK_NVML_FIXTURE="$fixture" \
                NVDP_ROOT="$REPO/mock/nvml/fixtures/dgx-h100.root" "$build/nvdp" plugin
}
gpus() { # gpus capacity|allocatable
        kubectl get node "$NODE_NAME" -o jsonpath="{.status.$1.nvidia\.com/gpu}"
}
gpus_are() { check_alive && [ "$(gpus capacity)" = "$1" ] && [ "$(gpus allocatable)" = "$2" ]; }

start_plugin
wait_for 60 "node capacity/allocatable nvidia.com/gpu 8/8" gpus_are 8 8
log "plugin-host: node advertises nvidia.com/gpu capacity $(gpus capacity), allocatable $(gpus allocatable)"

gpu_pod() { # gpu_pod NAME COUNT
        kubectl apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  runtimeClassName: nvidia
  restartPolicy: Never
  containers:
  - name: cuda
    image: localhost/nvdp-e2e/smoke:1
    imagePullPolicy: Never
    resources: {limits: {nvidia.com/gpu: $2}}
YAML
}

gpu_pod two-gpus 2
wait_for 90 "pod two-gpus Succeeded" pod_done two-gpus
out=$(kubectl logs two-gpus)
printf '%s\n' "$out" | grep -v '^cgroup' | sed 's/^/  | /'
vis=$(sed -n 's/^NVIDIA_VISIBLE_DEVICES=//p' <<<"$out")
IFS=, read -r -a got <<<"$vis"
[ ${#got[@]} -eq 2 ] && [ "${got[0]}" != "${got[1]:-}" ] ||
        die "pod two-gpus: NVIDIA_VISIBLE_DEVICES=$vis, want 2 distinct UUIDs"
for u in "${got[@]}"; do
        one_of "$u" "${uuids[@]}" || die "pod two-gpus: $u is not a GPU UUID of $fixture"
done
log "plugin-host: pod two-gpus got ${got[*]}"

# A finished pod no longer holds its GPUs; a pod asking for all 8 plus one cannot be placed.
gpu_pod nine-gpus 9
unschedulable() {
        kubectl get pod nine-gpus -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].message}' |
                grep -q 'Insufficient nvidia.com/gpu'
}
wait_for 30 "pod nine-gpus reported unschedulable (Insufficient nvidia.com/gpu)" unschedulable
[ "$(pod_phase nine-gpus)" = Pending ] || die "pod nine-gpus: phase $(pod_phase nine-gpus), want Pending"
log "plugin-host: pod nine-gpus stays Pending: Insufficient nvidia.com/gpu"

# Plugin crash and restart: kubelet marks the devices unhealthy at once, then takes them back.
stop_component nvdp-plugin KILL
wait_for 30 "allocatable nvidia.com/gpu 0 after the plugin was killed" gpus_are 8 0
start_plugin
wait_for 60 "allocatable nvidia.com/gpu 8 after the plugin restart" gpus_are 8 8
log "plugin-host: plugin killed (allocatable 0) and restarted (allocatable 8)"
kubectl delete pod two-gpus nine-gpus --wait=false >/dev/null

# CDI through containerd 2.x (the kubelet's CDIDevices, deviceListStrategy cdi-cri): the plugin
# restarted with DEVICE_LIST_STRATEGY=cdi-cri answers Allocate with CDI device names
# k8s.device-plugin.nvidia.com/gpu=<uuid>, the kubelet hands them to containerd, and containerd applies
# the spec's edits. A hand-written spec in /var/run/cdi stands for the plugin's own: each fixture GPU
# gives an env NVDP_E2E_CDI_GPU_<index>=<uuid> and a device node /dev/nvidia<index> (the host's
# /dev/null). A pod without runtimeClassName asks for 2 GPUs and must see exactly those 2.
stop_component nvdp-plugin
wait_for 30 "allocatable nvidia.com/gpu 0 before the cdi-cri plugin" gpus_are 8 0
ph_spec=/var/run/cdi/nvdp-e2e-handwritten.json
{
        printf '{"cdiVersion": "0.6.0", "kind": "k8s.device-plugin.nvidia.com/gpu", "devices": ['
        for i in "${!uuids[@]}"; do
                [ "$i" = 0 ] || printf ','
                printf '\n  {"name": "%s", "containerEdits": {"env": ["NVDP_E2E_CDI_GPU_%d=%s"], ' "${uuids[$i]}" "$i" "${uuids[$i]}"
                printf '"deviceNodes": [{"path": "/dev/nvidia%d", "hostPath": "/dev/null"}]}}' "$i"
        done
        printf '\n]}\n'
} >"$ph_spec"
start nvdp-plugin env LD_LIBRARY_PATH="$build/mock-nvml" MOCK_NVML_FIXTURE="$fixture" DEVICE_LIST_STRATEGY=cdi-cri \
        NVDP_ROOT="$REPO/mock/nvml/fixtures/dgx-h100.root" "$build/nvdp" plugin
wait_for 60 "allocatable nvidia.com/gpu 8 from the cdi-cri plugin" gpus_are 8 8
# The plugin writes its own spec when it can (docs/cdi.md); it must not meet a second one for the same devices.
ph_own=/var/run/cdi/k8s.device-plugin.nvidia.com-gpu.json
[ -e "$ph_own" ] && rm -f "$ph_spec"
kubectl apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: cdi-two}
spec:
  restartPolicy: Never
  containers:
  - name: probe
    image: localhost/nvdp-e2e/gpu-test:1
    imagePullPolicy: Never
    resources: {limits: {nvidia.com/gpu: 2}}
YAML
wait_for 90 "pod cdi-two Succeeded" pod_done cdi-two
out=$(kubectl logs cdi-two)
printf '%s\n' "$out" | sed 's/^/  | /'
if [ -e "$ph_spec" ]; then
        mapfile -t got < <(sed -n 's/^env NVDP_E2E_CDI_GPU_\([0-9]*\)=\(.*\)$/\1 \2/p' <<<"$out")
        [ ${#got[@]} -eq 2 ] || die "plugin-host: pod cdi-two got ${#got[@]} CDI devices' edits, want 2"
        for g in "${got[@]}"; do
                i=${g%% *} u=${g#* }
                [ "${uuids[$i]}" = "$u" ] || die "plugin-host: CDI env $g does not match the fixture's GPU $i"
                grep -qx "dev /dev/nvidia$i" <<<"$out" || die "plugin-host: pod cdi-two lacks /dev/nvidia$i from the CDI spec"
        done
        [ "$(grep -c '^dev /dev/nvidia' <<<"$out")" = 2 ] || die "plugin-host: pod cdi-two has other NVIDIA device nodes than its 2"
        log "plugin-host: cdi-cri: containerd injected the CDI devices of ${got[*]}"
else
        log "plugin-host: cdi-cri: the plugin wrote its own spec $ph_own; pod cdi-two ran with it"
fi
kubectl delete pod cdi-two --wait=false >/dev/null
rm -f "$ph_spec"
