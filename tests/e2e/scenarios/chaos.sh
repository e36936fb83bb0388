# shellcheck shell=bash
# Chaos (issue 20): the plugin, GFD in node mode and the cluster's own parts failing under load, on the
# simulated 8x H100 node. nvdp runs as host daemons here (quicker than the chart; the same binary): the
# plugin with per-node config (CONFIG_FILE_SRCDIR, the node label), Node events and a loopback health
# listener; `nvdp gfd --output=node`. Steps, each timed:
#   ch:start        plugin and GFD up: allocatable 8, GFD's labels on the Node
#   ch:kill-burst   5 pods of 1 GPU created in a burst; the plugin killed with SIGKILL in the middle of
#                   it and started again 2 s later (as its DaemonSet would)
#   ch:containerd   containerd restarted under the running pods; one more pod starts
#   ch:kubelet      the kubelet restarted while a pod starts (and given a static pod directory)
#   ch:apiserver    the API server killed for NVDP_E2E_CHAOS_API_DOWN seconds (default 60): the plugin
#                   stays registered (`nvdp healthz`); a static pod asking for a GPU is admitted, so
#                   Allocate works without the API; an XID on one GPU; then, with the API server back:
#                   the Node event arrives (posted again), a new node config label is followed, a GFD
#                   label removed meanwhile is put back
# and throughout: every pod ends Running (none Pending, none failed admission), no GPU is held by two
# running containers (NVIDIA_VISIBLE_DEVICES of each container, read from containerd), allocatable
# returns to 8.
# Needs build/nvdp and build/mock-nvml (make all); NVDP_BUILD points elsewhere.

ch_build=${NVDP_BUILD:-$REPO/build}
ch_fixture=$REPO/mock/nvml/fixtures/dgx-h100.yaml
ch_down=${NVDP_E2E_CHAOS_API_DOWN:-60}
for f in "$ch_build/nvdp" "$ch_build/mock-nvml/libnvidia-ml.so.1" "$ch_fixture"; do
        [ -e "$f" ] || die "chaos: $f is missing (run make first)"
done
mapfile -t ch_uuids < <(sed -n 's/^ *uuid: *"\{0,1\}\(GPU-[0-9a-fA-F-]*\).*/\1/p' "$ch_fixture")
[ ${#ch_uuids[@]} -eq 8 ] || die "chaos: expected 8 GPU UUIDs in $ch_fixture, found ${#ch_uuids[@]}"
ch_cfg=$D/chaos-configs
ch_fifo=$D/chaos-nvml-events
ch_static=$D/static-pods
ch_pods=()
CTR=(ctr --address "$CTR_ADDRESS" --namespace k8s.io)

ch_mock_env=(LD_LIBRARY_PATH="$ch_build/mock-nvml" MOCK_NVML_FIXTURE="$ch_fixture"
        NVDP_ROOT="$REPO/mock/nvml/fixtures/dgx-h100.root")
ch_start_plugin() {
        start nvdp-chaos-plugin env "${ch_mock_env[@]}" MOCK_NVML_EVENTS="$ch_fifo" CONFIG_FILE_SRCDIR="$ch_cfg" \
                NODE_NAME="$NODE_NAME" KUBECONFIG="$D/admin.kubeconfig" HEALTH_ADDRESS=127.0.0.1:2113 \
                "$ch_build/nvdp" plugin --health-recovery-interval=20s --metrics-address=127.0.0.1:2112
}
ch_log() { cat "$LOGS/nvdp-chaos-plugin.log"; }
ch_gpus() { kubectl get node "$NODE_NAME" -o jsonpath="{.status.$1.nvidia\.com/gpu}"; }
ch_gpus_are() { check_alive && [ "$(ch_gpus capacity)" = "$1" ] && [ "$(ch_gpus allocatable)" = "$2" ]; }
ch_registrations() { grep -c 'Registered nvidia.com/gpu with the kubelet: 8 devices' "$LOGS/nvdp-chaos-plugin.log" || true; }

ch_pod() { # ch_pod NAME: a pod holding 1 GPU (the pause image sleeps) for as long as it runs
        ch_pods+=("$1")
        kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, labels: {nvdp-e2e: chaos}}
spec:
  runtimeClassName: nvidia
  restartPolicy: Never
  containers:
  - name: main
    image: localhost/nvdp-e2e/pause:1
    imagePullPolicy: Never
    resources: {limits: {nvidia.com/gpu: 1}}
YAML
}
# Every chaos pod Running. A pod the kubelet refused at admission while the plugin was away (Failed,
# UnexpectedAdmissionError: the kubelet's rule, reference section 5) is created again, as its controller
# would; any other failure fails the scenario; one still Pending when the wait ends does too.
ch_refused=0
ch_all_running() {
        check_alive
        local p phase reason all=0
        for p in "${ch_pods[@]}"; do
                [ -n "$p" ] || continue
                phase=$(kubectl get pod "$p" -o jsonpath='{.status.phase}' 2>/dev/null)
                if [ "$phase" = Failed ]; then
                        reason=$(kubectl get pod "$p" -o jsonpath='{.status.reason}: {.status.message}')
                        [[ $reason == UnexpectedAdmissionError:* ]] || die "chaos: pod $p failed: $reason"
                        log "chaos: pod $p refused at admission ($reason); created again"
                        ch_refused=$((ch_refused + 1))
                        kubectl delete pod "$p" --wait=true >/dev/null
                        ch_pods=("${ch_pods[@]/$p/}")
                        ch_pod "$p"
                        all=1
                        continue
                fi
                [ "$phase" = Running ] || all=1
        done
        return $all
}
# The GPUs of every running container of the node, one "container-id uuid" line per GPU, from the
# container specs containerd holds (what the device plugin's Allocate answer put there).
ch_held() {
        local id vis
        for id in $("${CTR[@]}" containers ls -q); do
                "${CTR[@]}" tasks ls 2>/dev/null | grep -q "^$id .*RUNNING" || continue
                vis=$("${CTR[@]}" containers info "$id" | grep -o '"NVIDIA_VISIBLE_DEVICES=[^"]*"' | head -1 |
                        sed 's/^"NVIDIA_VISIBLE_DEVICES=//; s/"$//')
                [ -n "$vis" ] || continue
                tr ',' '\n' <<<"$vis" | sed "s/^/${id:0:12} /"
        done
}
# No GPU held by two running containers; every held one is a fixture GPU. ch_n: how many are held.
ch_n=0
ch_check_exclusive() {
        local held dup u
        held=$(ch_held)
        dup=$(awk '{print $2}' <<<"$held" | sort | uniq -d)
        [ -z "$dup" ] || { printf '%s\n' "$held" >&3; die "chaos: GPU held by two running containers: $dup"; }
        ch_n=0
        while read -r _ u; do
                [ -n "$u" ] || continue
                one_of "$u" "${ch_uuids[@]}" || die "chaos: a container holds '$u', not a GPU of the fixture"
                ch_n=$((ch_n + 1))
        done <<<"$held"
}
ch_held_are() { ch_check_exclusive && [ "$ch_n" = "$1" ]; }

# ---- start ------------------------------------------------------------------------------------------
step ch:start
stop_component nvdp-plugin # plugin-host's, if still running
kubectl delete pod -l nvdp-e2e=chaos --ignore-not-found --wait=true >/dev/null
mkdir -p "$ch_cfg" "$ch_static"
printf 'version: v1\n' >"$ch_cfg/default"
printf 'version: v1\nflags:\n  plugin:\n    deviceListStrategy: [envvar, volume-mounts]\n' >"$ch_cfg/other"
rm -f "$ch_fifo"
mkfifo -m 0600 "$ch_fifo"
kubectl label node "$NODE_NAME" nvidia.com/device-plugin.config- >/dev/null 2>&1 || true
# The device-plugin scenario's uninstall took RuntimeClass nvidia with it.
ch_runtimeclass=false
if [ -z "$(kubectl get runtimeclass nvidia --ignore-not-found -o name)" ]; then
        printf 'apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: nvidia}\nhandler: nvidia\n' |
                kubectl apply -f - >/dev/null
        ch_runtimeclass=true
fi
wait_for 60 "ServiceAccount default/default" kubectl get serviceaccount default
ch_start_plugin
start nvdp-chaos-gfd env "${ch_mock_env[@]}" "$ch_build/nvdp" gfd --output=node --node-name "$NODE_NAME" \
        --kubeconfig "$D/admin.kubeconfig" --no-timestamp --sleep-interval=10s
wait_for 60 "allocatable nvidia.com/gpu 8 from the chaos plugin" ch_gpus_are 8 8
ch_gfd_label() { [ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.metadata.labels.nvidia\.com/gpu\.count}')" = 8 ]; }
wait_for 30 "GFD label nvidia.com/gpu.count=8 on the Node" ch_gfd_label
log "chaos: plugin and GFD up, allocatable 8"

# ---- kill -9 during a burst of pod creations ------------------------------------------------------
step ch:kill-burst
for i in 1 2 3 4 5; do
        ch_pod "chaos-$i"
        if [ "$i" = 3 ]; then
                stop_component nvdp-chaos-plugin KILL
                log "chaos: plugin killed (SIGKILL) after 3 of 5 pods were created"
        fi
done
sleep 2
ch_start_plugin
wait_for 90 "the 5 burst pods Running" ch_all_running
wait_for 30 "allocatable 8 after the plugin restart" ch_gpus_are 8 8
wait_for 30 "5 GPUs held by running containers after the burst, none twice" ch_held_are 5
log "chaos: burst across a plugin kill: 5 pods Running ($ch_refused refused at admission and created again), $ch_n GPUs held, none twice"

# ---- containerd restart -------------------------------------------------------------------------
step ch:containerd
stop_component containerd
start containerd containerd --config "$D/containerd/config.toml"
wait_for 30 "containerd back" "${CTR[@]}" version
ch_pod chaos-6
wait_for 90 "every chaos pod Running after the containerd restart" ch_all_running
wait_for 30 "6 GPUs held by running containers after the containerd restart, none twice" ch_held_are 6
log "chaos: containerd restarted; 6 pods Running, $ch_n GPUs held, none twice"

# ---- kubelet restart while a pod starts ---------------------------------------------------------------
step ch:kubelet
grep -q '^staticPodPath:' "$D/kubelet.yaml" || printf 'staticPodPath: %s\n' "$ch_static" >>"$D/kubelet.yaml"
before=$(ch_registrations)
ch_pod chaos-7
stop_component kubelet
start_kubelet
ch_reregistered() { check_alive && [ "$(ch_registrations)" -gt "$before" ]; }
wait_for 60 "the plugin registered again after the kubelet restart" ch_reregistered
wait_for 90 "every chaos pod Running after the kubelet restart" ch_all_running
wait_for 30 "allocatable 8 after the kubelet restart" ch_gpus_are 8 8
wait_for 30 "7 GPUs held by running containers after the kubelet restart, none twice" ch_held_are 7
log "chaos: kubelet restarted while chaos-7 started; 7 pods Running, $ch_n GPUs held, none twice"

# ---- the API server down ------------------------------------------------------------------------------
step ch:apiserver
ch_api_pid=
for i in "${!NAMES[@]}"; do [ "${NAMES[$i]}" = kube-apiserver ] && ch_api_pid=${PIDS[$i]}; done
[ -n "$ch_api_pid" ] || die "chaos: kube-apiserver is not running"
mapfile -d '' -t ch_api_cmd <"/proc/$ch_api_pid/cmdline"
events_before=$(kubectl get events -n default --field-selector "reason=GPUUnhealthy,involvedObject.name=$NODE_NAME" -o name | wc -l)
t_down=$SECONDS
stop_component kube-apiserver KILL
log "chaos: kube-apiserver killed for ${ch_down} s"
# Allocate without the API server: a static pod asking for a GPU is admitted by the kubelet alone.
cat >"$ch_static/chaos-static.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: chaos-static, namespace: default}
spec:
  runtimeClassName: nvidia
  containers:
  - name: main
    image: localhost/nvdp-e2e/pause:1
    imagePullPolicy: Never
    resources: {limits: {nvidia.com/gpu: 1}}
YAML
wait_for 60 "the static pod running with a GPU of its own while the API server is down" ch_held_are 8
log "chaos: static pod admitted and running with its GPU while the API server is down (Allocate works)"
timeout 5 bash -c 'echo "xid $1 95" >"$2"' _ "${ch_uuids[6]}" "$ch_fifo" ||
        die "chaos: could not write to the mock's event FIFO $ch_fifo"
ch_healthz() { env HEALTH_ADDRESS=127.0.0.1:2113 "$ch_build/nvdp" healthz --timeout 2s; }
while [ $((SECONDS - t_down)) -lt "$ch_down" ]; do
        out=$(ch_healthz 2>&1) || die "chaos: nvdp healthz failed while the API server was down: $out"
        sleep 5
done
grep -q 'Watching this node.s labels: .*(retrying)' "$LOGS/nvdp-chaos-plugin.log" ||
        die "chaos: the plugin's node label watch reported no retry while the API server was down"
grep -q 'cannot post (will retry) the GPUUnhealthy event' "$LOGS/nvdp-chaos-plugin.log" ||
        die "chaos: the plugin did not keep its GPUUnhealthy event for later: $(grep -i event "$LOGS/nvdp-chaos-plugin.log" | tail -3)"
start kube-apiserver "${ch_api_cmd[@]}"
wait_for 60 "kube-apiserver /readyz again" kubectl get --raw /readyz
log "chaos: kube-apiserver back after $((SECONDS - t_down)) s"
# The event held during the outage arrives (posted again: 1 s doubling to 60 s).
ch_event() {
        [ "$(kubectl get events -n default --field-selector "reason=GPUUnhealthy,involvedObject.name=$NODE_NAME" -o name | wc -l)" -gt "$events_before" ]
}
wait_for 90 "the GPUUnhealthy Node event of ${ch_uuids[6]} after the API server came back" ch_event
log "chaos: the GPUUnhealthy event held during the outage posted $((SECONDS - t_down)) s after the API server went down"
# The node config label is followed again (the watch retried with backoff).
kubectl label node "$NODE_NAME" nvidia.com/device-plugin.config=other --overwrite >/dev/null
ch_reloaded() {
        grep -q 'Node label nvidia.com/device-plugin.config is now "other"' "$LOGS/nvdp-chaos-plugin.log" &&
                curl -sf --max-time 5 http://127.0.0.1:2112/metrics | grep -qx 'nvdp_config_reloads_total{result="success"} 1'
}
wait_for 60 "the plugin following the node config label after the outage (reloaded)" ch_reloaded
log "chaos: the node config label followed $((SECONDS - t_down)) s after the API server went down"
# GFD puts back a label of its that someone removed.
kubectl label node "$NODE_NAME" nvidia.com/gpu.count- >/dev/null
wait_for 60 "GFD restoring nvidia.com/gpu.count after the outage" ch_gfd_label
log "chaos: GFD label restored $((SECONDS - t_down)) s after the API server went down"
ch_pods+=("chaos-static-$NODE_NAME")
wait_for 60 "every chaos pod Running (the static pod's mirror too)" ch_all_running
wait_for 60 "allocatable back to 8 (GPU 6 recovered)" ch_gpus_are 8 8
wait_for 30 "8 GPUs held by running containers at the end, none twice" ch_held_are 8
log "chaos: after the outage: event posted, config label followed, GFD label restored; 8 pods Running on 8 distinct GPUs, allocatable 8; $ch_refused pods refused at admission in all"

# ---- clean up -----------------------------------------------------------------------------------------
step ch:cleanup
rm -f "$ch_static/chaos-static.yaml"
kubectl delete pod -l nvdp-e2e=chaos --wait=true >/dev/null
kubectl label node "$NODE_NAME" nvidia.com/device-plugin.config- >/dev/null
stop_component nvdp-chaos-gfd
stop_component nvdp-chaos-plugin
[ "$ch_runtimeclass" = false ] || kubectl delete runtimeclass nvidia >/dev/null
rm -rf "$ch_cfg" "$ch_fifo"
step ""
