# shellcheck shell=bash
# The DRA step of the gpu scenario (sourced by gpu.sh, which defines g_just, g_uuids, g_class, ...): the
# chart again with dra.enabled on the real driver (docs/dra.md), either way (toolkit or CDI):
#   - the node's ResourceSlice lists exactly the host's GPUs (their UUIDs as nvidia-smi on the host says),
#     with the host's product name;
#   - a pod with a ResourceClaim for one GPU (DeviceClass gpu.nvidia.com) is allocated one of them, nvdp
#     prepares the claim and writes its CDI spec into the node's /var/run/cdi (nvidiaDriverRoot: the
#     host's driver root, found from nvidia-smi's path; cdi.installHook: the hook the spec names);
#     containerd injects it, and the container's `nvidia-smi -L` (gpu-probe) names exactly the allocated
#     GPU, with one GPU device node;
#   - the claim's spec goes when the pod is gone (NodeUnprepareResources).
# NVDP_E2E_DRA_CDI=0 keeps the claim at pod level (allocation and prepare only).
gd_cdi=${NVDP_E2E_DRA_CDI:-1}
# The host's driver root: /usr/local/nvidia for .../usr/local/nvidia/bin/nvidia-smi, / for /usr/bin.
gd_smi=$(readlink -f "$(command -v nvidia-smi)")
case $gd_smi in
/usr/bin/nvidia-smi | /bin/nvidia-smi | /usr/sbin/nvidia-smi) gd_root=/ ;;
*/bin/nvidia-smi) gd_root=${gd_smi%/bin/nvidia-smi} ;;
*) gd_root=/ ;;
esac
cat >"$D/gpu-dra.yaml" <<YAML
dra:
  enabled: true
nvidiaDriverRoot: $gd_root
cdi:
  installHook: true
  hookDir: $D/cdi-hook
YAML
g_report_add "dra.enabled: values on top" "$(cat "$D/gpu-dra.yaml")"
out=$(g_just nvidia-device-plugin::install -f "$D/gpu-values.yaml" -f "$D/gpu-dra.yaml" 2>&1) ||
        { g_show "$out"; die "gpu: install with dra.enabled failed"; }
gd_slices() {
        kubectl get resourceslices --field-selector "spec.nodeName=$NODE_NAME,spec.driver=gpu.nvidia.com" -o json
}
gd_want=$(printf '%s\n' "${g_uuids[@]}" | sort | paste -sd' ')
gd_uuids_are_host() {
        check_alive
        [ "$(gd_slices | jq -r '[.items[].spec.devices[]?.attributes.uuid.string] | sort | join(" ")')" = "$gd_want" ]
}
wait_for 90 "the ResourceSlice lists the host's GPUs ($gd_want)" gd_uuids_are_host
gd_names=$(gd_slices | jq -r '[.items[].spec.devices[]?.attributes.productName.string] | unique | join(",")')
[ "$gd_names" = "$g_name" ] || die "gpu: the ResourceSlice says productName $gd_names, nvidia-smi on the host $g_name"
g_report_add "dra.enabled: the node's ResourceSlice" "$(gd_slices | jq '.items[].spec.devices')"

gd_uses=""
[ "$gd_cdi" = 1 ] && gd_uses="resources: {claims: [{name: gpu}]}"
kubectl apply -f - >/dev/null <<YAML
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: one-gpu}
spec:
  devices:
    requests:
    - name: gpu
      exactly: {deviceClassName: gpu.nvidia.com}
---
apiVersion: v1
kind: Pod
metadata: {name: dra-smi}
spec:
  ${g_class:+runtimeClassName: $g_class}
  restartPolicy: Never
  resourceClaims: [{name: gpu, resourceClaimName: one-gpu}]
  containers:
  - name: main
    image: localhost/nvdp-e2e/gpu-test:1
    imagePullPolicy: Never
    command: ["/usr/bin/gpu-probe"]
    $gd_uses
YAML
gd_allocated() { kubectl get resourceclaim one-gpu -o jsonpath='{.status.allocation.devices.results[0].device}'; }
gd_has_allocation() { check_alive && [ -n "$(gd_allocated)" ]; }
wait_for 90 "claim one-gpu allocated" gd_has_allocation
gd_dev=$(gd_allocated)
gd_uuid=$(gd_slices | jq -r --arg d "$gd_dev" '.items[].spec.devices[]? | select(.name == $d) | .attributes.uuid.string')
gd_claim_uid=$(kubectl get resourceclaim one-gpu -o jsonpath='{.metadata.uid}')
gd_prepared() {
        check_alive
        kubectl -n "$g_ns" logs -l app.kubernetes.io/component=dra-kubelet-plugin --tail=-1 |
                grep -q "ResourceClaim default/one-gpu ($gd_claim_uid) prepared: $gd_dev"
}
wait_for 90 "nvdp prepares claim one-gpu ($gd_dev)" gd_prepared
gd_spec=/var/run/cdi/k8s.gpu.nvidia.com-claim_$gd_claim_uid.json
if [ "$gd_cdi" = 1 ]; then
        [ -s "$gd_spec" ] || die "gpu: nvdp prepared claim one-gpu but wrote no CDI spec $gd_spec"
        g_report_add "dra.enabled: the claim's CDI spec $gd_spec" "$(jq . "$gd_spec")"
fi
wait_for 120 "pod dra-smi finished" g_finished dra-smi
out=$(kubectl logs dra-smi 2>&1)
[ "$(g_phase dra-smi)" = Succeeded ] || { g_show "$out" >&3; kubectl describe pod dra-smi >&3; die "gpu: pod dra-smi failed"; }
if [ "$gd_cdi" = 1 ]; then
        g_show "$out"
        g_report_add "dra.enabled: nvidia-smi -L in a pod with a ResourceClaim ($gd_dev)" "$out"
        grep -qx 'nvidia-smi: exit 0' <<<"$out" || die "gpu: nvidia-smi -L failed in the pod with claim one-gpu"
        [ "$(g_one_host_uuid "$out")" = "$gd_uuid" ] ||
                die "gpu: the pod with claim one-gpu ($gd_dev, $gd_uuid) sees: $out"
        [ "$(grep -cE '^dev /dev/nvidia[0-9]+$' <<<"$out")" = 1 ] ||
                die "gpu: the pod with claim one-gpu has $(grep -cE '^dev /dev/nvidia[0-9]+$' <<<"$out") GPU device nodes, want 1"
        log "gpu: dra: a pod with a ResourceClaim ran nvidia-smi on $gd_dev ($gd_uuid) through nvdp's claim spec"
else
        log "gpu: dra: claim one-gpu allocated $gd_dev ($gd_uuid) and prepared by nvdp (NVDP_E2E_DRA_CDI=0: not used in the container)"
fi
kubectl delete pod dra-smi --wait=true --timeout=60s >/dev/null
gd_spec_gone() { check_alive && [ ! -e "$gd_spec" ]; }
wait_for 60 "nvdp removes $gd_spec once the pod is gone" gd_spec_gone
kubectl delete resourceclaim one-gpu >/dev/null
