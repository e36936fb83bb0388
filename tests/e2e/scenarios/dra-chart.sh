# shellcheck shell=bash
# The chart with dra.enabled, installed with `just nvidia-device-plugin::install` as an admin does, the
# MOCK=1 image (simulated 8x H100 node) imported into this cluster's containerd by the recipe:
#   - DaemonSet <release>-dra Ready, no device plugin DaemonSet; DeviceClasses gpu.nvidia.com and
#     mig.nvidia.com; the node's ResourceSlice with the 8 GPUs;
#   - a pod written for the device plugin (limits nvidia.com/gpu: 1) runs on this DRA node: the
#     scheduler serves the extended resource through DRA (DeviceClass extendedResourceName), nvdp
#     prepares the claim it made and writes its CDI spec (the hook the chart installed, the GPU's node
#     from nvidiaDriverRoot), removed when the pod is gone;
#   - a pod with a ResourceClaimTemplate asking for 2 GPUs on one NUMA node gets them;
#   - uninstall removes the DaemonSet and DeviceClasses.
# Needs the MOCK=1 image archive (tests/e2e/run builds it).
# CDI: the node's driver is a fixture filesystem (cdi-fixture-root, as the device-plugin scenario's
# dp:cdi step) given as nvidiaDriverRoot, cdi.installHook copies nvdp-cdi-hook to the node; the driver
# writes each claim's CDI spec into the node's /var/run/cdi and containerd injects it, so the pods'
# containers use their claims and must run. NVDP_E2E_DRA_CDI=0 keeps the claims at pod level.

dc_build=${NVDP_BUILD:-$REPO/build}
dc_tag=$(cat "$REPO/VERSION")-mock
dc_archive=$dc_build/image/nvdp-$dc_tag.oci.tar
dc_ns=nvidia-device-plugin
dc_cdi=${NVDP_E2E_DRA_CDI:-1}
[ -e "$dc_archive" ] || die "dra-chart: $dc_archive is missing (make image MOCK=1)"
dc_just() {
        env NVIDIA_DEVICE_PLUGIN_CHART="$REPO/deploy/helm/nvidia-device-plugin" \
                NVIDIA_DEVICE_PLUGIN_IMAGE_TAG="$dc_tag" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE="$dc_archive" \
                NVIDIA_DEVICE_PLUGIN_WAIT=120s CONTAINERD_ADDRESS="$CTR_ADDRESS" \
                HELM_CACHE_HOME="$D/helm/cache" HELM_CONFIG_HOME="$D/helm/config" HELM_DATA_HOME="$D/helm/data" \
                "$REPO/.tools/bin/just" --justfile "$REPO/justfile" "$@"
}
dc_show() { printf '%s\n' "$1" | sed 's/^/  | /'; }

step dra:install
kubectl label node "$NODE_NAME" nvidia.com/gpu.present=true --overwrite >/dev/null
mkdir -p "$D/helm"
dc_node=$D/dra-chart-node
rm -rf "$dc_node"
"$dc_build/tests/helpers/cdi-fixture-root" fhs "$dc_node" --mknod --version 580.105.08 --gpus 8 ||
        die "dra-chart: cdi-fixture-root failed"
cp "$dc_build/mock-nvml/libnvidia-ml.so.1" "$dc_node/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.105.08"
cat >"$D/dra-values.yaml" <<YAML
nvidiaDriverRoot: $dc_node
cdi:
  installHook: true
  hookDir: $D/dra-cdi-hook
nfd: {enabled: false}
runtimeClass: {create: false}
dra:
  enabled: true
  env:
  - {name: LD_LIBRARY_PATH, value: /usr/lib/nvdp-mock}
  - {name: MOCK_NVML_FIXTURE, value: /usr/share/nvdp/fixtures/dgx-h100.yaml}
  - {name: NVDP_ROOT, value: /usr/share/nvdp/fixtures/dgx-h100.root}
YAML
wait_for 60 "ServiceAccount default/default" kubectl get serviceaccount default
if ! out=$(dc_just nvidia-device-plugin::install -f "$D/dra-values.yaml" 2>&1); then
        dc_show "$out"
        kubectl -n "$dc_ns" get all -o wide >&3 2>&1 || true
        kubectl -n "$dc_ns" describe pods >&3 2>&1 || true
        die "dra-chart: just nvidia-device-plugin::install with dra.enabled failed"
fi
ready=$(kubectl -n "$dc_ns" get daemonset nvidia-device-plugin-dra -o jsonpath='{.status.desiredNumberScheduled}/{.status.numberReady}')
[ "$ready" = 1/1 ] || die "dra-chart: DaemonSet nvidia-device-plugin-dra desired/ready = $ready, want 1/1"
[ -z "$(kubectl -n "$dc_ns" get daemonset nvidia-device-plugin --ignore-not-found -o name)" ] ||
        die "dra-chart: the device plugin DaemonSet runs next to the DRA driver"
for c in gpu.nvidia.com mig.nvidia.com; do
        kubectl get deviceclass "$c" >/dev/null || die "dra-chart: DeviceClass $c missing"
done
dc_devices() {
        kubectl get resourceslices --field-selector "spec.nodeName=$NODE_NAME,spec.driver=gpu.nvidia.com" -o json |
                jq -r '[.items[].spec.devices[]?.name] | sort | join(" ")'
}
dc_devices_are() { check_alive && [ "$(dc_devices)" = "$1" ]; }
wait_for 60 "the node's ResourceSlice from the chart's driver" dc_devices_are "gpu-0 gpu-1 gpu-2 gpu-3 gpu-4 gpu-5 gpu-6 gpu-7"
log "dra-chart: installed; DaemonSet nvidia-device-plugin-dra 1/1, DeviceClasses gpu.nvidia.com and mig.nvidia.com, 8 GPUs in the ResourceSlice"

step dra:extended-resource
# A pod written for the device plugin, unchanged.
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: classic}
spec:
  restartPolicy: Never
  containers:
  - name: cuda
    image: localhost/nvdp-e2e/pause:1
    imagePullPolicy: Never
    resources: {limits: {nvidia.com/gpu: 1}}
YAML
dc_running() { check_alive && [ "$(kubectl get pod "$1" -o jsonpath='{.status.phase}')" = Running ]; }
dc_claimed() { check_alive && [ -n "$(kubectl get pod classic -o jsonpath='{.status.extendedResourceClaimStatus.resourceClaimName}')" ]; }
wait_for 90 "pod classic (nvidia.com/gpu: 1) gets a claim from the scheduler (served through DRA)" dc_claimed
dc_claim=$(kubectl get pod classic -o jsonpath='{.status.extendedResourceClaimStatus.resourceClaimName}')
dc_uid=$(kubectl get resourceclaim "$dc_claim" -o jsonpath='{.metadata.uid}')
dc_dev=$(kubectl get resourceclaim "$dc_claim" -o jsonpath='{.status.allocation.devices.results[*].device}')
dc_driver_log() {
        kubectl -n "$dc_ns" logs -l app.kubernetes.io/component=dra-kubelet-plugin --tail=-1
}
dc_prepared() { check_alive && dc_driver_log | grep -q "ResourceClaim default/$dc_claim ($dc_uid) prepared: $dc_dev"; }
wait_for 60 "the driver prepares $dc_claim ($dc_dev)" dc_prepared
# A pod's extended resource is its container's: the container always uses the claim.
wait_for 90 "pod classic (nvidia.com/gpu: 1) Running through DRA" dc_running classic
dc_spec=/var/run/cdi/k8s.gpu.nvidia.com-claim_$dc_uid.json
[ -s "$dc_spec" ] || die "dra-chart: the driver wrote no CDI spec $dc_spec for claim $dc_claim"
dc_hooks=$(jq -r '[.containerEdits.hooks[].path] | unique | join(" ")' "$dc_spec")
[ "$dc_hooks" = "$D/dra-cdi-hook/nvdp-cdi-hook" ] || die "dra-chart: the claim spec's hooks run '$dc_hooks', want $D/dra-cdi-hook/nvdp-cdi-hook"
jq -e --arg p "$dc_node/dev/nvidia${dc_dev#gpu-}" '[.devices[].containerEdits.deviceNodes[]?.hostPath] == [$p]' "$dc_spec" >/dev/null ||
        die "dra-chart: the claim spec $dc_spec does not give $dc_dev's node from the driver root $dc_node"
log "dra-chart: pod classic (limits nvidia.com/gpu: 1) runs with $dc_dev through DRA (claim $dc_claim), its CDI spec $dc_spec written through the chart's mount"

step dra:claim-template
dc_uses=""
[ "$dc_cdi" = 1 ] && dc_uses="resources: {claims: [{name: gpus}]}"
kubectl apply -f - >/dev/null <<YAML
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: two-on-one-numa}
spec:
  spec:
    devices:
      requests:
      - name: gpus
        exactly: {deviceClassName: gpu.nvidia.com, count: 2}
      constraints:
      - {requests: [gpus], matchAttribute: resource.kubernetes.io/numaNode}
---
apiVersion: v1
kind: Pod
metadata: {name: two-on-one-numa}
spec:
  restartPolicy: Never
  resourceClaims: [{name: gpus, resourceClaimTemplateName: two-on-one-numa}]
  containers:
  - name: cuda
    image: localhost/nvdp-e2e/pause:1
    imagePullPolicy: Never
    $dc_uses
YAML
wait_for 90 "pod two-on-one-numa Running" dc_running two-on-one-numa
dc_claim=$(kubectl get pod two-on-one-numa -o jsonpath='{.status.resourceClaimStatuses[0].resourceClaimName}')
read -r -a dc_devs <<<"$(kubectl get resourceclaim "$dc_claim" -o jsonpath='{.status.allocation.devices.results[*].device}')"
[ ${#dc_devs[@]} -eq 2 ] || die "dra-chart: claim $dc_claim allocated ${dc_devs[*]}, want 2 GPUs"
# The fixture: gpu-0..3 on NUMA node 0, gpu-4..7 on 1.
numa() { echo $((${1#gpu-} / 4)); }
[ "$(numa "${dc_devs[0]}")" = "$(numa "${dc_devs[1]}")" ] || die "dra-chart: ${dc_devs[*]} are on different NUMA nodes"
log "dra-chart: pod two-on-one-numa runs with ${dc_devs[*]} (NUMA node $(numa "${dc_devs[0]}"))"

step dra:uninstall
kubectl delete pod classic two-on-one-numa --wait=true --timeout=90s >/dev/null
dc_spec_gone() { check_alive && [ ! -e "$dc_spec" ]; }
wait_for 60 "the driver removes $dc_spec once the pod is gone (unprepared)" dc_spec_gone
out=$(dc_just nvidia-device-plugin::uninstall 2>&1) || { dc_show "$out"; die "dra-chart: uninstall failed"; }
[ -z "$(kubectl get deviceclass gpu.nvidia.com --ignore-not-found -o name)" ] || die "dra-chart: DeviceClass gpu.nvidia.com left after uninstall"
kubectl delete resourceclaimtemplate two-on-one-numa --ignore-not-found >/dev/null
log "dra-chart: uninstalled; DeviceClasses gone"
step ""
