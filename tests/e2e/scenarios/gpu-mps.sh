# shellcheck shell=bash
# The gpu scenario's MPS step (gpu:mps; sourced by gpu.sh with the chart installed, after time-slicing;
# docs/testing-gpu.md, docs/mps.md). On the real driver, either way (toolkit or CDI):
#   - `::install` again with an MPS config (replicas 2) and mps.root under the scratch directory: GFD
#     labels the node nvidia.com/mps.capable=true, the chart's MPS control daemon DaemonSet runs there
#     (mount-shm, then nvdp's daemon starting NVIDIA's nvidia-cuda-mps-control) and becomes Ready, and the
#     plugin advertises 2 replicas per GPU once the daemon is ready;
#   - two pods, each with one replica, run cuda-check at the same time and hold their contexts: both
#     PASS, and the MPS server (asked on the node with nvidia-cuda-mps-control) lists both as clients;
#   - a pod allocating device memory in 1 GiB steps (cuda-mem-client) is refused with
#     CUDA_ERROR_OUT_OF_MEMORY at its pinned limit, total memory / 2, well below the GPU's size.
# Uses the scenario's g_just, g_pod, g_phase, g_show, g_report_add, g_gpus_are, g_count, g_class, g_ns.

gmps_root=$D/mps
gmps_pipe=$gmps_root/nvidia.com/gpu/pipe
# mount-shm's tmpfs must reach the node (Bidirectional): the MPS root as a shared mount (lib.sh).
shared_mount "$gmps_root"
mps_values "$gmps_root" >"$D/gpu-mps.yaml"
g_report_add "MPS values" "$(cat "$D/gpu-mps.yaml")"
out=$(g_just nvidia-device-plugin::install -f "$D/gpu-values.yaml" -f "$D/gpu-mps.yaml" 2>&1) ||
        { g_show "$out"; die "gpu: install with MPS failed"; }
gmps_capable() { [ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.metadata.labels.nvidia\.com/mps\.capable}')" = true ]; }
wait_for 90 "GFD's nvidia.com/mps.capable=true on the node (the MPS config)" gmps_capable
wait_mps_daemonset "$g_ns" 180
# Until the MPS daemon is ready the plugin holds its replicas back; when they never come, both logs say why.
gmps_deadline=$((SECONDS + 120))
until g_gpus_are "$((2 * g_count))" "$((2 * g_count))" >/dev/null 2>&1; do
        if [ $SECONDS -ge $gmps_deadline ]; then
                g_show "$(kubectl -n "$g_ns" logs -l app.kubernetes.io/component=device-plugin --tail=60 2>&1)"
                g_show "$(kubectl -n "$g_ns" logs -l app.kubernetes.io/component=mps-control-daemon --tail=40 2>&1)"
                g_show "$(ls -laR "$gmps_root" 2>&1 | head -40)"
                die "allocatable nvidia.com/gpu $((2 * g_count)) (MPS replicas 2): not reached within 120s" \
                        "(capacity $(g_gpus capacity), allocatable $(g_gpus allocatable))"
        fi
        sleep 0.5
done
gmps_log=$(kubectl -n "$g_ns" logs -l app.kubernetes.io/component=mps-control-daemon --tail=40)
g_show "$gmps_log"
g_report_add "the MPS control daemon's log" "$gmps_log"
grep -q 'MPS control daemon for nvidia.com/gpu: ready' <<<"$gmps_log" || die "gpu: the MPS daemon did not say it is ready"
gmps_total=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1 | tr -d ' ')
gmps_limit=$((gmps_total / 2))
grep -q "set_default_device_pinned_mem_limit ${g_uuids[0]} ${gmps_limit}M" "$gmps_root/nvidia.com/gpu/log/control.log" ||
        die "gpu: control.log lacks set_default_device_pinned_mem_limit ${g_uuids[0]} ${gmps_limit}M"
log "gpu: MPS control daemon Ready; allocatable $((2 * g_count)); pinned limit ${gmps_limit} MiB per client"

# Two clients of the MPS server at once.
for p in mps-a mps-b; do g_pod "$p" 1 /usr/bin/cuda-check --hold 30; done
gmps_holding() {
        check_alive
        local p
        for p in mps-a mps-b; do
                [ "$(g_phase "$p")" != Failed ] || { kubectl logs "$p" >&3; kubectl describe pod "$p" >&3; die "gpu: pod $p failed"; }
                kubectl logs "$p" 2>/dev/null | grep -q '^cuda-check: holding the context' || return 1
        done
}
wait_for 120 "pods mps-a and mps-b both holding a CUDA context through MPS" gmps_holding
gmps_clients=$(
        server=$(echo get_server_list | CUDA_MPS_PIPE_DIRECTORY=$gmps_pipe nvidia-cuda-mps-control 2>&1 | head -1)
        echo "server $server"
        echo "get_client_list $server" | CUDA_MPS_PIPE_DIRECTORY=$gmps_pipe nvidia-cuda-mps-control 2>&1
)
g_show "$gmps_clients"
a=$(kubectl logs mps-a) b=$(kubectl logs mps-b)
g_report_add "MPS, replicas 2: two pods at once, each nvidia.com/gpu: 1" \
        "$(printf -- '--- mps-a\n%s\n--- mps-b\n%s\n--- the MPS server on the node\n%s\n' "$a" "$b" "$gmps_clients")"
grep -qx 'cuda-check: PASS' <<<"$a" && grep -qx 'cuda-check: PASS' <<<"$b" || die "gpu: cuda-check did not pass in an MPS pod"
[ "$(sed -n '2,$p' <<<"$gmps_clients" | grep -cE '^[0-9]+$')" -ge 2 ] ||
        die "gpu: the MPS server does not list both pods as clients: $gmps_clients"
kubectl delete pod mps-a mps-b --wait=true --timeout=60s >/dev/null
log "gpu: MPS: two pods ran cuda-check at once as clients of one MPS server"

# Past the pinned limit: CUDA_ERROR_OUT_OF_MEMORY (2) near total / 2, not at the GPU's size.
g_pod mps-oom 1 /usr/bin/cuda-mem-client --name oom --step-mib 1024 --max-mib "$gmps_total"
wait_for 180 "pod mps-oom finished" g_finished mps-oom
out=$(kubectl logs mps-oom)
g_show "$out"
g_report_add "MPS: cuda-mem-client allocating 1 GiB steps (limit ${gmps_limit} MiB, GPU ${gmps_total} MiB)" "$out"
[ "$(g_phase mps-oom)" = Succeeded ] || die "gpu: cuda-mem-client failed in pod mps-oom"
refused=$(sed -n 's/.*"event":"alloc_failed","allocated_mib":\([0-9]*\),.*"result":\([0-9]*\).*/\1 \2/p' <<<"$out")
[ -n "$refused" ] || die "gpu: pod mps-oom was never refused memory (no alloc_failed)"
read -r got code <<<"$refused"
[ "$code" = 2 ] || die "gpu: pod mps-oom was refused with CUDA error $code, want 2 (CUDA_ERROR_OUT_OF_MEMORY)"
[ "$got" -le "$gmps_limit" ] && [ "$got" -ge $((gmps_limit - 4096)) ] ||
        die "gpu: pod mps-oom was refused after $got MiB, want within 4 GiB below the limit $gmps_limit MiB"
[ "$got" -lt $((gmps_total * 3 / 4)) ] || die "gpu: pod mps-oom got $got MiB: not held back by the MPS limit"
kubectl delete pod mps-oom --wait=false >/dev/null
log "gpu: MPS: a pod was refused memory after $got MiB (limit $gmps_limit MiB of $gmps_total): CUDA_ERROR_OUT_OF_MEMORY"
