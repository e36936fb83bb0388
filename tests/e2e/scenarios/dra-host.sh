# shellcheck shell=bash
# nvdp dra as a host daemon on the node (as a systemd unit would run it; the chart's DaemonSet is
# dra.enabled), on the simulated 8x H100 node (mock NVML), with the cluster's real API server,
# scheduler (DRA allocation), kubelet (DRA manager, plugin watcher) and runtime. Checks:
#   - the node's ResourceSlice is published, and read back with the attributes NVIDIA's driver names;
#   - a pod whose ResourceClaim picks a GPU by a CEL selector is allocated exactly that GPU, is prepared
#     by nvdp and runs; the CDI device the kubelet hands the runtime (its DRA checkpoint) is the claim's,
#     and nvdp wrote the claim's CDI spec naming it;
#   - a container that uses its claim gets exactly that GPU's device node and the driver's files from the
#     claim's spec (containerd 2.x resolves the CDI device; the hooks run);
#   - a claim shared by two pods is prepared once, both run;
#   - nvdp killed while a pod holds a claim, its spec removed (a rebooted tmpfs), restarted: the spec is
#     written again, the pod's end unprepares the claim (nvdp's checkpoint carried it over), the spec goes;
#   - XID 79 on a GPU taints its device in the slice (NoSchedule);
#   - bad input reaches the pod's events as nvdp's sentence: a claim allocated (by hand) a device that is
#     not on this node, a claim with an unknown opaque config.
# Needs build/nvdp, build/nvdp-cdi-hook, build/mock-nvml and build/tests/helpers/cdi-fixture-root (make all).
#
# The node's driver is a fixture filesystem (cdi-fixture-root: real character devices, ELF libraries of
# the mock's driver version, the mock NVML as its libnvidia-ml), given as --driver-root; the claims' specs
# name build/nvdp-cdi-hook. NVDP_E2E_DRA_CDI=0 keeps the pods' claims at pod level (no device in the
# containers but the one of the device check), for bisecting a runtime problem.

build=${NVDP_BUILD:-$REPO/build}
fixture=$REPO/mock/nvml/fixtures/dgx-h100.yaml
for f in "$build/nvdp" "$build/nvdp-cdi-hook" "$build/mock-nvml/libnvidia-ml.so.1" "$fixture" \
        "$build/tests/helpers/cdi-fixture-root"; do
        [ -e "$f" ] || die "dra-host: $f is missing (run make first)"
done
dra_cdi=${NVDP_E2E_DRA_CDI:-1}
dra_node=$D/dra-node
rm -rf "$dra_node"
"$build/tests/helpers/cdi-fixture-root" fhs "$dra_node" --mknod --version 580.105.08 --gpus 8 ||
        die "dra-host: cdi-fixture-root failed"
cp "$build/mock-nvml/libnvidia-ml.so.1" "$dra_node/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.105.08"
dra_cdi_root=/var/run/cdi
dra_events=$D/dra-nvml-events
[ -p "$dra_events" ] || mkfifo "$dra_events"

start_dra() {
        start nvdp-dra env LD_LIBRARY_PATH="$build/mock-nvml" MOCK_NVML_FIXTURE="$fixture" \
                NVDP_ROOT="$REPO/mock/nvml/fixtures/dgx-h100.root" MOCK_NVML_EVENTS="$dra_events" \
                "$build/nvdp" dra --node-name "$NODE_NAME" --kubeconfig "$KUBECONFIG" --cdi-root "$dra_cdi_root" \
                --driver-root "$dra_node" --driver-root-ctr-path "$dra_node" --nvidia-cdi-hook-path "$build/nvdp-cdi-hook"
}
dra_log() { cat "$LOGS/nvdp-dra.log"; }
slices_json() {
        kubectl get resourceslices --field-selector "spec.nodeName=$NODE_NAME,spec.driver=gpu.nvidia.com" -o json
}
slice_devices() { slices_json | jq -r '[.items[].spec.devices[]?.name] | sort | join(" ")'; }
devices_are() { check_alive && [ "$(slice_devices)" = "$1" ]; }
# attr DEVICE NAME: an attribute's value (string, version or int) as published.
attr() {
        slices_json | jq -r --arg d "$1" --arg a "$2" \
                '.items[].spec.devices[]? | select(.name == $d) | .attributes[$a] | (.string // .version // .int // "missing")'
}

start_dra
all="gpu-0 gpu-1 gpu-2 gpu-3 gpu-4 gpu-5 gpu-6 gpu-7"
wait_for 60 "the node's ResourceSlice with the 8 GPUs" devices_are "$all"
for kv in "type=gpu" "productName=NVIDIA H100 80GB HBM3" "architecture=Hopper" "brand=Nvidia" \
        "cudaComputeCapability=9.0.0" "driverVersion=580.105.8" "cudaDriverVersion=13.0.0" "index=5" "minor=5" \
        "resource.kubernetes.io/numaNode=1"; do
        got=$(attr gpu-5 "${kv%%=*}")
        [ "$got" = "${kv#*=}" ] || die "dra-host: gpu-5 attribute ${kv%%=*} is \"$got\", want \"${kv#*=}\""
done
memory=$(slices_json | jq -r '.items[].spec.devices[]? | select(.name == "gpu-5") | .capacity.memory.value')
[ "$memory" = 81559Mi ] || die "dra-host: gpu-5 memory capacity $memory, want 81559Mi"
uuid5=$(attr gpu-5 uuid)
log "dra-host: ResourceSlice read back: $all; gpu-5 is $uuid5 (NUMA 1, 81559Mi, cc 9.0.0)"

wait_for 60 "ServiceAccount default/default" kubectl get serviceaccount default
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata: {name: gpu.nvidia.com}
spec:
  selectors:
  - cel: {expression: "device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == 'gpu'"}
YAML

# claim NAME SELECTOR [CONFIG-YAML]: a ResourceClaim for one GPU matching the CEL selector.
claim() {
        kubectl apply -f - >/dev/null <<YAML
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: $1}
spec:
  devices:
    requests:
    - name: gpu
      exactly:
        deviceClassName: gpu.nvidia.com
        selectors:
        - cel: {expression: "$2"}
${3:-}
YAML
}
# claim_pod NAME CLAIM IMAGE: a pod with the claim (smoke runs and exits, pause keeps running); its
# container uses it (unless NVDP_E2E_DRA_CDI=0).
claim_pod() {
        local uses=""
        [ "$dra_cdi" = 1 ] && uses="resources: {claims: [{name: gpu}]}"
        kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  restartPolicy: Never
  resourceClaims: [{name: gpu, resourceClaimName: $2}]
  containers:
  - name: cuda
    image: localhost/nvdp-e2e/$3:1
    imagePullPolicy: Never
    $uses
YAML
}
pod_phase() { kubectl get pod "$1" -o jsonpath='{.status.phase}'; }
pod_is() {
        check_alive
        local p
        p=$(pod_phase "$1")
        [ "$p" = Failed ] && [ "$2" != Failed ] && { kubectl describe pod "$1" >&3; die "pod $1 failed"; }
        [ "$p" = "$2" ]
}
claim_uid() { kubectl get resourceclaim "$1" -o jsonpath='{.metadata.uid}'; }
allocated() { kubectl get resourceclaim "$1" -o jsonpath='{.status.allocation.devices.results[*].device}'; }
# The CDI devices the kubelet gives the runtime, from its DRA checkpoint (this runtime has no CDI).
kubelet_cdi() { grep -o "k8s\.gpu\.nvidia\.com/claim=$1-[a-z0-9-]*" /var/lib/kubelet/dra_manager_state | sort -u; }

# A GPU chosen by attributes: the H100 on NUMA node 1 with index 5.
claim pick-5 "device.attributes['gpu.nvidia.com'].productName == 'NVIDIA H100 80GB HBM3' && device.attributes['resource.kubernetes.io'].numaNode == 1 && device.attributes['gpu.nvidia.com'].index == 5"
# pause keeps running: the claim stays allocated while it does (a claim without users is deallocated).
claim_pod pick-5 pick-5 pause
wait_for 90 "pod pick-5 Running" pod_is pick-5 Running
[ "$(allocated pick-5)" = gpu-5 ] || die "dra-host: claim pick-5 allocated '$(allocated pick-5)', want gpu-5"
uid=$(claim_uid pick-5)
dra_log | grep -q "ResourceClaim default/pick-5 ($uid) prepared: gpu-5" ||
        die "dra-host: nvdp did not log preparing pick-5 with gpu-5"
[ "$(kubelet_cdi "$uid")" = "k8s.gpu.nvidia.com/claim=$uid-gpu-5" ] ||
        die "dra-host: the kubelet holds CDI devices '$(kubelet_cdi "$uid")' for pick-5, want k8s.gpu.nvidia.com/claim=$uid-gpu-5"
# The claim's CDI spec: one device, the name the kubelet holds, gpu-5's node from the driver root.
spec5=$dra_cdi_root/k8s.gpu.nvidia.com-claim_$uid.json
[ -s "$spec5" ] || die "dra-host: nvdp wrote no CDI spec $spec5 for claim pick-5"
got=$(jq -r '.kind + "=" + ([.devices[].name] | join(",")) + " " + ([.devices[].containerEdits.deviceNodes[].path] | join(","))' "$spec5")
[ "$got" = "k8s.gpu.nvidia.com/claim=$uid-gpu-5 /dev/nvidia5" ] ||
        die "dra-host: the claim spec $spec5 says '$got', want 'k8s.gpu.nvidia.com/claim=$uid-gpu-5 /dev/nvidia5'"
log "dra-host: pod pick-5 runs with gpu-5 ($uuid5), CDI device k8s.gpu.nvidia.com/claim=$uid-gpu-5 from $spec5"

# A container that uses its claim: containerd resolves the claim's CDI device from nvdp's spec, the
# container gets gpu-6's node only, the driver's libraries and the hooks' work.
claim uses-6 "device.attributes['gpu.nvidia.com'].index == 6"
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: uses-6}
spec:
  restartPolicy: Never
  resourceClaims: [{name: gpu, resourceClaimName: uses-6}]
  containers:
  - name: probe
    image: localhost/nvdp-e2e/gpu-test:1
    imagePullPolicy: Never
    command: [/usr/bin/gpu-probe, /usr/lib/x86_64-linux-gnu/libcuda.so.580.105.08, /usr/lib/x86_64-linux-gnu/libcuda.so.1,
      /etc/ld.so.conf.d/00-nvdp-cdi.conf]
    resources: {claims: [{name: gpu}]}
YAML
uid=$(claim_uid uses-6)
wait_for 90 "pod uses-6 Succeeded (its container uses claim uses-6)" pod_done uses-6
out=$(kubectl logs uses-6)
for want in "env NVIDIA_VISIBLE_DEVICES=void" "dev /dev/nvidia6" "dev /dev/nvidiactl" \
        "file /usr/lib/x86_64-linux-gnu/libcuda.so.580.105.08: regular" "file /usr/lib/x86_64-linux-gnu/libcuda.so.1: symlink" \
        "file /etc/ld.so.conf.d/00-nvdp-cdi.conf: regular"; do
        grep -qx "$want" <<<"$out" || { printf '%s\n' "$out" >&3; die "dra-host: pod uses-6 lacks '$want'"; }
done
[ "$(grep -cE '^dev /dev/nvidia[0-9]+$' <<<"$out")" = 1 ] ||
        die "dra-host: pod uses-6 has $(grep -cE '^dev /dev/nvidia[0-9]+$' <<<"$out") GPU device nodes, want 1 (nvidia6)"
kubectl delete pod uses-6 --wait=true --timeout=90s >/dev/null
spec6=$dra_cdi_root/k8s.gpu.nvidia.com-claim_$uid.json
spec_gone() { check_alive && [ ! -e "$spec6" ]; }
wait_for 60 "nvdp removes $spec6 when the claim is unprepared" spec_gone
log "dra-host: pod uses-6 ran with claim uses-6: /dev/nvidia6 only, the driver's libraries and the hooks' work from nvdp's claim spec; unprepared, the spec went"

# One claim, two pods: prepared once.
claim shared "device.attributes['gpu.nvidia.com'].index == 2"
claim_pod shared-a shared pause
claim_pod shared-b shared pause
wait_for 90 "pods shared-a and shared-b Running" bash -c "[ \"\$(kubectl get pod shared-a shared-b -o jsonpath='{.items[*].status.phase}')\" = 'Running Running' ]"
uid=$(claim_uid shared)
n=$(dra_log | grep -c "ResourceClaim default/shared ($uid) prepared")
[ "$n" = 1 ] || die "dra-host: the shared claim was prepared $n times, want once"
log "dra-host: claim shared ($(allocated shared)) used by shared-a and shared-b, prepared once"

# nvdp dies while the claim is in use; restarted, it unprepares it when the last pod ends.
stop_component nvdp-dra KILL
# /var/run/cdi is a tmpfs: a node restart empties it. The restarted driver writes the specs of the
# claims it holds again.
shared_spec=$dra_cdi_root/k8s.gpu.nvidia.com-claim_$uid.json
[ -s "$shared_spec" ] || die "dra-host: no CDI spec $shared_spec for claim shared"
rm "$shared_spec"
start_dra
wait_for 30 "the restarted driver writes $shared_spec again" test -s "$shared_spec"
wait_for 60 "the ResourceSlice after the restart" devices_are "$all"
kubectl delete pod shared-a shared-b --wait=true --timeout=90s >/dev/null
unprepared() { check_alive && dra_log | grep -q "ResourceClaim default/shared ($uid) unprepared"; }
wait_for 90 "nvdp unprepares claim shared after its restart" unprepared
checkpoint=/var/lib/kubelet/plugins/gpu.nvidia.com/checkpoint.json
! grep -q "$uid" "$checkpoint" || die "dra-host: $checkpoint still lists claim shared"
[ ! -e "$shared_spec" ] || die "dra-host: $shared_spec is still there after unprepare"
log "dra-host: nvdp killed and restarted between prepare and unprepare (its claim spec rewritten at start); claim shared unprepared after it, its CDI spec removed"

# XID 79 on gpu-2's GPU: tainted in the slice.
echo "xid $(attr gpu-2 uuid) 79" >"$dra_events"
tainted() {
        check_alive
        [ "$(slices_json | jq -r '.items[].spec.devices[]? | select(.name == "gpu-2") | .taints[]? | "\(.key):\(.effect)"')" = \
                "gpu.nvidia.com/gpu-lost:NoSchedule" ]
}
wait_for 30 "gpu-2 tainted gpu.nvidia.com/gpu-lost:NoSchedule after XID 79" tainted
log "dra-host: XID 79 on gpu-2: tainted gpu.nvidia.com/gpu-lost:NoSchedule"

# Bad input. A claim allocated by hand to a device that is not on this node, used by a pod bound to the
# node without the scheduler: the kubelet asks nvdp, which refuses; the sentence lands in the pod's events.
kubectl apply -f - >/dev/null <<YAML
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: not-here}
spec:
  devices:
    requests:
    - name: gpu
      exactly: {deviceClassName: gpu.nvidia.com}
YAML
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: not-here}
spec:
  nodeName: $NODE_NAME
  restartPolicy: Never
  resourceClaims: [{name: gpu, resourceClaimName: not-here}]
  containers:
  - name: cuda
    image: localhost/nvdp-e2e/smoke:1
    imagePullPolicy: Never
    resources: {claims: [{name: gpu}]}
YAML
pod_uid=$(kubectl get pod not-here -o jsonpath='{.metadata.uid}')
kubectl patch resourceclaim not-here --subresource=status --type=merge -p "{\"status\":{
  \"allocation\":{\"devices\":{\"results\":[{\"request\":\"gpu\",\"driver\":\"gpu.nvidia.com\",\"pool\":\"$NODE_NAME\",\"device\":\"gpu-9\"}]}},
  \"reservedFor\":[{\"resource\":\"pods\",\"name\":\"not-here\",\"uid\":\"$pod_uid\"}]}}" >/dev/null
event_says() {
        check_alive
        kubectl get events --field-selector "involvedObject.name=$1" -o jsonpath='{.items[*].message}' | grep -qF "$2"
}
wait_for 60 "pod not-here's events name the device that is not here" \
        event_says not-here "device gpu-9 is not one of the 8 devices of node $NODE_NAME"
log "dra-host: a claim for gpu-9: the pod's event says 'device gpu-9 is not one of the 8 devices of node $NODE_NAME'"

claim foo-config "device.attributes['gpu.nvidia.com'].index == 4" "    config:
    - opaque:
        driver: gpu.nvidia.com
        parameters: {apiVersion: gpu.example.com/v1, kind: FooConfig}"
claim_pod foo-config foo-config smoke
wait_for 90 "pod foo-config's events name the unknown config" \
        event_says foo-config 'unknown opaque config for driver gpu.nvidia.com: apiVersion "gpu.example.com/v1", kind "FooConfig"'
log "dra-host: an unknown opaque config: the pod's event names it"

kubectl delete pod pick-5 not-here foo-config --wait=false >/dev/null
# pick-5's claim is unprepared before nvdp stops: no claim spec is left for the later scenarios.
spec5_gone() { check_alive && [ ! -e "$spec5" ]; }
wait_for 90 "nvdp unprepares claim pick-5 and removes $spec5" spec5_gone
kubectl delete resourceclaim pick-5 shared not-here foo-config --wait=false >/dev/null
kubectl delete resourceclaim uses-6 --wait=false >/dev/null
kubectl delete deviceclass gpu.nvidia.com >/dev/null # the chart (dra-chart) brings its own
stop_component nvdp-dra TERM
