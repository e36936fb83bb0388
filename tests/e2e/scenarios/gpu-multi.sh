# shellcheck shell=bash
# The gpu scenario's multi-GPU step (gpu:multi; sourced by gpu.sh with the chart installed, whole GPUs, the
# default config; docs/testing-gpu.md). On a node with N >= 4 GPUs, two pods of N/2 GPUs each run at once:
#   - their GPU sets are disjoint host GPUs, N/2 each (`nvidia-smi -L` in each pod);
#   - inside each pod every GPU pair is NVLink-connected (`nvidia-smi topo -m` in the pod, judged by
#     tests/gpu/topology --check-nvlink): the plugin's preferred allocation gave each pod a linked set;
#   - a CUDA peer-to-peer copy between every ordered pair of the pod's GPUs succeeds (cuda-check --p2p:
#     cuDeviceCanAccessPeer, cuCtxEnablePeerAccess, 64 MiB cuMemcpyPeer, every word checked).
# With fewer GPUs it logs one SKIP line naming the count. The pods run with NVLink multicast off
# (NCCL_NVLS_ENABLE=0 and its siblings), as on every shared GPU host; cuda-check uses none.
# Uses the scenario's g_count, g_uuids, g_class, g_show, g_report_add and g_phase.

gm_check() {
        local half=$((g_count / 2)) p out
        if [ "$g_count" -lt 4 ]; then
                log "gpu: SKIP multi-GPU pods: the node has $g_count GPU(s); two pods of N/2 NVLink-connected GPUs need 4 or more"
                g_report_add "multi-GPU pods" "SKIP: $g_count GPU(s) on the node, 4 or more needed"
                return 0
        fi
        for p in multi-a multi-b; do
                kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $p}
spec:
  ${g_class:+runtimeClassName: $g_class}
  restartPolicy: Never
  containers:
  - name: main
    image: localhost/nvdp-e2e/gpu-test:1
    imagePullPolicy: Never
    command: ["/usr/bin/cuda-check", "--p2p", "--hold", "300"]
    env:
    - {name: NCCL_NVLS_ENABLE, value: "0"}
    - {name: TORCH_SYMM_MEM_DISABLE_MULTICAST, value: "1"}
    - {name: NVSHMEM_DISABLE_NVLS, value: "1"}
    resources: {limits: {nvidia.com/gpu: $half}}
YAML
        done
        gm_holding() {
                check_alive
                local q
                for q in multi-a multi-b; do
                        [ "$(g_phase "$q")" != Failed ] || { kubectl logs "$q" >&3; die "gpu: pod $q failed"; }
                        kubectl logs "$q" 2>/dev/null | grep -q '^cuda-check: holding the context' || return 1
                done
        }
        wait_for 240 "pods multi-a and multi-b ($half GPUs each) through their peer-to-peer copies" gm_holding

        local -A owner=()
        local -a mine
        local u n list pairs=$((half * (half - 1))) topo
        for p in multi-a multi-b; do
                out=$(kubectl logs "$p")
                g_show "$out"
                grep -qx 'cuda-check: PASS' <<<"$out" || die "gpu: cuda-check --p2p did not pass in $p"
                n=$(grep -c '^cuda-check: p2p: device [0-9]* -> device [0-9]*: peer access, .* verified' <<<"$out" || true)
                [ "$n" = "$pairs" ] || die "gpu: $p copied $n peer-to-peer pairs, want $pairs ($half GPUs)"
                list=$(kubectl exec "$p" -- nvidia-smi -L) || die "gpu: nvidia-smi -L failed in $p"
                g_show "$list"
                mapfile -t mine < <(grep -o 'GPU-[0-9a-f-]*' <<<"$list")
                [ ${#mine[@]} = "$half" ] || die "gpu: $p sees ${#mine[@]} GPUs, want $half"
                for u in "${mine[@]}"; do
                        one_of "$u" "${g_uuids[@]}" || die "gpu: $p sees $u, not a GPU of the host"
                        [ -z "${owner[$u]:-}" ] || die "gpu: $u is in both ${owner[$u]} and $p"
                        owner[$u]=$p
                done
                topo=$(kubectl exec "$p" -- nvidia-smi topo -m) || die "gpu: nvidia-smi topo -m failed in $p"
                g_show "$topo"
                printf '%s\n' "$topo" >"$D/$p-topo.txt"
                out=$("$REPO/tests/gpu/topology" --check-nvlink "$D/$p-topo.txt" 2>&1) || { g_show "$out"; die "gpu: $p's GPUs are not all NVLink-connected"; }
                g_show "$out"
                g_report_add "multi-GPU pod $p: nvidia.com/gpu: $half" \
                        "$(printf '%s\n\n%s\n\n%s\n\n%s\n' "$list" "$topo" "$out" "$(kubectl logs "$p")")"
                log "gpu: $p: ${mine[*]}: NVLink-connected, $pairs peer-to-peer copies verified"
        done
        [ ${#owner[@]} = $((2 * half)) ] || die "gpu: the two pods hold ${#owner[@]} distinct GPUs, want $((2 * half))"
        kubectl delete pod multi-a multi-b --wait=true --timeout=60s >/dev/null
        log "gpu: two pods of $half GPUs: disjoint, NVLink-connected, peer-to-peer copies verified in each"
}
gm_check
