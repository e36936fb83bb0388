# shellcheck shell=bash
# Real GPUs in real pods (NVDP_E2E_GPU=toolkit or cdi; docs/testing-gpu.md): the chart, the plain nvdp
# image and the `just nvidia-device-plugin::` recipes, as an admin runs them, on a node with the NVIDIA
# driver. Each step is timed:
#   prepare     label the node nvidia.com/gpu.present=true (no NFD offline), the chart copy without its
#               NFD dependency, the values on top of the module's own (nvidia-device-plugin/values.yaml)
#   install     `just nvidia-device-plugin::install`: both DaemonSets Ready on the real driver
#   verify      `::verify` prints "<node>: N GPUs", N = what nvidia-smi on the host counts
#   test        `::test` (NVIDIA_RUNTIME_CLASS nvidia, or empty without the toolkit): the pod's real
#               nvidia-smi table shows the host's driver version and GPU name
#   uuid        a pod with 1 GPU: `nvidia-smi -L` in it names a GPU UUID of the host, /dev/nvidia<minor>
#   cuda        a pod with 1 GPU runs cuda-check (driver API: PTX kernel, checked): PASS on a host UUID
#   no-gpu      a pod asking for no GPU: no /dev/nvidia* and no working nvidia-smi in it
#   gpu-info    `::gpu-info`: capacity, allocatable and GFD's labels from the real driver
#   multi       with 4 or more GPUs, two pods of N/2 GPUs at once: disjoint, NVLink-connected sets and a
#               CUDA peer-to-peer copy in each (tests/e2e/scenarios/gpu-multi.sh); else one SKIP line
#   timeslice   the chart again with time-slicing replicas 2: allocatable 2N; two pods hold a CUDA
#               context on the same GPU at the same time
#   mps         the chart with an MPS config (tests/e2e/scenarios/gpu-mps.sh): the MPS control daemon's
#               DaemonSet Ready, two pods share a GPU through MPS at once, one is refused memory past its
#               pinned limit
#   dra         tests/e2e/scenarios/gpu-dra.sh: the chart with dra.enabled, the ResourceSlice against the
#               host's GPUs, a pod with a ResourceClaim running nvidia-smi -L through nvdp's claim CDI spec
#   uninstall   `::uninstall`: namespace gone, allocatable 0
# The two ways:
#   toolkit  runtimeClassName nvidia everywhere (the module's values and test pod): NVIDIA's
#            nvidia-container-runtime gives the pods the devices and driver files
#   cdi      no runtimeClassName anywhere: deviceListStrategy cdi-cri, the plugin writes its CDI spec
#            into /var/run/cdi through the chart's mount, cdi.installHook copies nvdp-cdi-hook to the
#            node and the spec names it, containerd injects the spec
# XID health events cannot be injected into a real GPU: that step stays on the simulated node
# (device-plugin scenario). NVDP_E2E_REPORT names a directory for the outputs docs/testing-gpu.md quotes.

g_way=${NVDP_E2E_GPU:?the gpu scenario needs NVDP_E2E_GPU=toolkit or cdi}
g_build=${NVDP_BUILD:-$REPO/build}
g_version=$(cat "$REPO/VERSION")
g_archive=$g_build/image/nvdp-$g_version.oci.tar
g_ns=nvidia-device-plugin
g_report=${NVDP_E2E_REPORT:-$D/report}
mkdir -p "$g_report"
[ -f "$g_archive" ] || die "gpu: $g_archive is missing (make image; or the bundle's nvdp/image)"
[ -x "$TOOLS_BIN/just" ] && [ -x "$TOOLS_BIN/helm" ] || die "gpu: just or helm is missing in $TOOLS_BIN"

# The host's view, which every pod's view is checked against.
mapfile -t g_host < <(nvidia-smi --query-gpu=index,uuid,name,driver_version --format=csv,noheader)
[ ${#g_host[@]} -ge 1 ] || die "gpu: nvidia-smi on the host lists no GPU"
g_count=${#g_host[@]}
g_uuids=() g_name='' g_driver=''
for line in "${g_host[@]}"; do
        IFS=, read -r _ uuid name driver <<<"$line"
        g_uuids+=("${uuid# }")
        g_name=${name# } g_driver=${driver# }
done
log "gpu: host has $g_count GPU(s): ${g_uuids[*]} ($g_name, driver $g_driver); way: $g_way"

g_class=nvidia
[ "$g_way" = cdi ] && g_class=

# report TITLE TEXT: a section of the report (and of this log).
g_report_add() {
        printf '### %s\n\n```\n%s\n```\n\n' "$1" "$2" >>"$g_report/gpu-$g_way.md"
}
g_show() { printf '%s\n' "$1" | sed 's/^/  | /'; }
g_just() {
        env NVIDIA_DEVICE_PLUGIN_CHART="$D/chart/nvidia-device-plugin" \
                NVIDIA_DEVICE_PLUGIN_IMAGE_TAG="$g_version" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE="$g_archive" \
                NVIDIA_DEVICE_PLUGIN_WAIT=90s CONTAINERD_ADDRESS="$CTR_ADDRESS" NVDP_TOOLS_BIN="$TOOLS_BIN" \
                GPU_TEST_IMAGE=localhost/nvdp-e2e/gpu-test:1 GPU_TEST_TIMEOUT=120 NVIDIA_RUNTIME_CLASS="$g_class" \
                HELM_CACHE_HOME="$D/helm/cache" HELM_CONFIG_HOME="$D/helm/config" HELM_DATA_HOME="$D/helm/data" \
                "$TOOLS_BIN/just" --justfile "$REPO/justfile" "$@"
}
g_gpus() { kubectl get node "$NODE_NAME" -o jsonpath="{.status.$1.nvidia\.com/gpu}"; }
g_gpus_are() { check_alive && [ "$(g_gpus capacity)" = "$1" ] && [ "$(g_gpus allocatable)" = "$2" ]; }
# g_pod NAME GPUS IMAGE-ARGS...: a one-shot pod of the gpu-test image (GPUS 0: no GPU request).
g_pod() {
        local name=$1 gpus=$2 args='' a
        shift 2
        for a in "$@"; do args+="\"$a\", "; done
        kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $name}
spec:
  ${g_class:+runtimeClassName: $g_class}
  restartPolicy: Never
  containers:
  - name: main
    image: localhost/nvdp-e2e/gpu-test:1
    imagePullPolicy: Never
    command: [${args%, }]
$( [ "$gpus" = 0 ] || printf '    resources: {limits: {nvidia.com/gpu: %s}}' "$gpus")
YAML
}
g_phase() { kubectl get pod "$1" -o jsonpath='{.status.phase}'; }
g_finished() {
        check_alive
        case $(g_phase "$1") in Succeeded | Failed) return 0 ;; *) return 1 ;; esac
}
# g_run NAME GPUS ARGS...: run a pod to its end; prints its log; fails on a failed pod.
g_run() {
        local name=$1
        g_pod "$@"
        wait_for 120 "pod $name finished" g_finished "$name"
        local out
        out=$(kubectl logs "$name" 2>&1)
        if [ "$(g_phase "$name")" != Succeeded ]; then
                g_show "$out" >&3
                kubectl describe pod "$name" >&3
                die "gpu: pod $name failed"
        fi
        kubectl delete pod "$name" --wait=false >/dev/null
        printf '%s\n' "$out"
}
g_one_host_uuid() { # the pod's output names exactly one host UUID: prints it
        local u found=()
        for u in "${g_uuids[@]}"; do grep -q "$u" <<<"$1" && found+=("$u"); done
        [ ${#found[@]} -eq 1 ] || return 1
        echo "${found[0]}"
}

# ---- prepare ------------------------------------------------------------------------------------
step gpu:prepare
g_report_add "host: nvidia-smi --query-gpu=index,uuid,name,driver_version" "$(printf '%s\n' "${g_host[@]}")"
kubectl label node "$NODE_NAME" nvidia.com/gpu.present=true --overwrite >/dev/null
kubectl delete runtimeclass nvidia --ignore-not-found >/dev/null # the smoke scenario's; the chart makes its own
mkdir -p "$D/chart" "$D/helm"
rm -rf "$D/chart/nvidia-device-plugin"
cp -r "$REPO/deploy/helm/nvidia-device-plugin" "$D/chart/"
# On top of the module's values (runtimeClassName nvidia, GFD on, NFD on): no NFD (offline; the node
# is labelled by hand above) and GFD's labels straight onto the Node, so that gpu-info shows them.
if [ "$g_way" = toolkit ]; then
        cat >"$D/gpu-values.yaml" <<'YAML'
nfd:
  enabled: false
gfd:
  outputNode: true
YAML
else
        # No toolkit (docs/k3s.md, the toolkit-free path): no RuntimeClass, the plugin passes CDI
        # device names to the kubelet (cdi-cri) and writes the spec into the node's /var/run/cdi through
        # the chart's mount (cdi.specDir); cdi.installHook copies the static nvdp-cdi-hook to the node
        # (here under the scratch directory, not the host's /var/lib) and the spec names it; the plugin
        # and GFD load NVML from the driver root the chart mounts at /driver-root and open the device
        # nodes as privileged containers (uid 0, as the chart's own default: the socket directory
        # belongs to root).
        cat >"$D/gpu-values.yaml" <<YAML
nfd:
  enabled: false
runtimeClassName: null
runtimeClass:
  create: false
deviceListStrategy: cdi-cri
nvidiaDriverRoot: /usr/local/nvidia
cdi:
  installHook: true
  hookDir: $D/cdi-hook
securityContext:
  privileged: true
  runAsUser: 0
gfd:
  outputNode: true
  securityContext:
    privileged: true
    runAsUser: 0
YAML
fi
g_report_add "values on top of nvidia-device-plugin/values.yaml" "$(cat "$D/gpu-values.yaml")"
wait_for 60 "ServiceAccount default/default" kubectl get serviceaccount default

# ---- install ------------------------------------------------------------------------------------
step gpu:install
if ! out=$(g_just nvidia-device-plugin::install -f "$D/gpu-values.yaml" 2>&1); then
        g_show "$out"
        kubectl -n "$g_ns" get pods -o wide >&3 2>&1 || true
        kubectl -n "$g_ns" describe pods >&3 2>&1 || true
        for p in $(kubectl -n "$g_ns" get pods -o name 2>/dev/null); do
                echo "---- logs of $p" >&3
                kubectl -n "$g_ns" logs "$p" --all-containers >&3 2>&1 || true
        done
        tail -20 "$RUNTIME_LOG" >&3 2>/dev/null || true
        die "gpu: just nvidia-device-plugin::install failed"
fi
g_show "$out"
for ds in nvidia-device-plugin nvidia-device-plugin-gpu-feature-discovery; do
        ready=$(kubectl -n "$g_ns" get daemonset "$ds" -o jsonpath='{.status.desiredNumberScheduled}/{.status.numberReady}')
        [ "$ready" = 1/1 ] || die "gpu: DaemonSet $ds desired/ready = $ready, want 1/1"
done
kubectl -n "$g_ns" logs -l app.kubernetes.io/component=device-plugin --tail=20 | sed 's/^/  plugin | /'
if [ "$g_way" = cdi ]; then
        g_spec=/var/run/cdi/k8s.device-plugin.nvidia.com-gpu.json
        wait_for 30 "the plugin's CDI spec $g_spec" test -s "$g_spec"
        g_report_add "the plugin's CDI spec (head)" "$(head -c 3000 "$g_spec")"
        [ -x "$D/cdi-hook/nvdp-cdi-hook" ] || die "gpu: cdi.installHook did not put nvdp-cdi-hook into $D/cdi-hook"
        grep -q "\"$D/cdi-hook/nvdp-cdi-hook\"" "$g_spec" || die "gpu: the CDI spec does not name the installed hook $D/cdi-hook/nvdp-cdi-hook"
        ! grep -q nvidia-ctk "$g_spec" || die "gpu: the CDI spec names NVIDIA's nvidia-ctk, which this node does not have"
        log "gpu: the plugin wrote $g_spec through the chart's mount; its hook is $D/cdi-hook/nvdp-cdi-hook"
fi

# ---- verify -------------------------------------------------------------------------------------
step gpu:verify
wait_for 60 "allocatable nvidia.com/gpu $g_count from the chart's plugin" g_gpus_are "$g_count" "$g_count"
out=$(g_just nvidia-device-plugin::verify 2>&1) || { g_show "$out"; die "gpu: verify failed"; }
g_show "$out"
g_report_add "just nvidia-device-plugin::verify" "$out"
grep -qx "$NODE_NAME: $g_count GPUs" <<<"$out" || die "gpu: verify did not print '$NODE_NAME: $g_count GPUs'"

# ---- test ---------------------------------------------------------------------------------------
step gpu:test
# The module's test pod: runtimeClassName nvidia with the toolkit, none without (NVIDIA_RUNTIME_CLASS=).
out=$(g_just nvidia-device-plugin::test 2>&1) || { g_show "$out"; die "gpu: just nvidia-device-plugin::test failed"; }
g_show "$out"
g_report_add "just nvidia-device-plugin::test (NVIDIA_RUNTIME_CLASS=$g_class)" "$out"
grep -qx '=== GPU Test Output ===' <<<"$out" || die "gpu: test printed no '=== GPU Test Output ==='"
grep -q "NVIDIA-SMI .*Driver Version: $g_driver" <<<"$out" ||
        die "gpu: the test pod's nvidia-smi does not show the host's driver $g_driver"
grep -q "${g_name#NVIDIA }" <<<"$out" || die "gpu: the test pod's nvidia-smi does not show the host's $g_name"
log "gpu: ::test ran the real nvidia-smi in a pod (runtime class '${g_class:-none}'): $g_name, driver $g_driver"

# ---- uuid ---------------------------------------------------------------------------------------
step gpu:uuid
out=$(g_run gpu-probe 1 /usr/bin/gpu-probe)
g_show "$out"
g_report_add "gpu-probe in a pod with nvidia.com/gpu: 1" "$out"
u=$(g_one_host_uuid "$out") || die "gpu: the pod's nvidia-smi -L does not name exactly one host GPU UUID"
grep -qx 'nvidia-smi: exit 0' <<<"$out" || die "gpu: nvidia-smi -L failed in the pod"
grep -Eq '^dev /dev/nvidia[0-9]+$' <<<"$out" || die "gpu: the pod has no /dev/nvidia<N>"
log "gpu: the pod with 1 GPU sees $u"

# ---- cuda ---------------------------------------------------------------------------------------
step gpu:cuda
out=$(g_run cuda-check 1 /usr/bin/cuda-check)
g_show "$out"
g_report_add "cuda-check in a pod with nvidia.com/gpu: 1" "$out"
grep -qx 'cuda-check: PASS' <<<"$out" || die "gpu: cuda-check did not pass"
u=$(g_one_host_uuid "$out") || die "gpu: cuda-check does not name exactly one host GPU UUID"
log "gpu: CUDA driver API in a pod: PTX kernel ran and checked on $u"

# ---- no GPU -------------------------------------------------------------------------------------
step gpu:no-gpu
out=$(g_run no-gpu 0 /usr/bin/gpu-probe)
g_show "$out"
g_report_add "gpu-probe in a pod without a GPU request" "$out"
! grep -q '^dev /dev/nvidia' <<<"$out" || die "gpu: a pod without a GPU request has NVIDIA device nodes"
grep -qx 'nvidia-smi: not found' <<<"$out" || grep -Eq '^nvidia-smi: exit [1-9]' <<<"$out" ||
        die "gpu: nvidia-smi works in a pod without a GPU request"
log "gpu: a pod without a GPU request has no /dev/nvidia* and no working nvidia-smi"

# ---- gpu-info -----------------------------------------------------------------------------------
step gpu:gpu-info
g_labelled() { kubectl get node "$NODE_NAME" --show-labels --no-headers | grep -q 'nvidia.com/gpu.product='; }
wait_for 60 "GFD's nvidia.com/gpu.product label on the node" g_labelled
out=$(g_just nvidia-device-plugin::gpu-info 2>&1) || { g_show "$out"; die "gpu: gpu-info failed"; }
g_show "$out"
g_report_add "just nvidia-device-plugin::gpu-info" "$out"
grep -qx "nvidia.com/gpu.product=${g_name// /-}" <<<"$out" ||
        die "gpu: gpu-info lacks nvidia.com/gpu.product=${g_name// /-}"
grep -qx "nvidia.com/gpu.count=$g_count" <<<"$out" || die "gpu: gpu-info lacks nvidia.com/gpu.count=$g_count"

# ---- multi-GPU ----------------------------------------------------------------------------------
step gpu:multi
# shellcheck source=tests/e2e/scenarios/gpu-multi.sh
source "$E2E_SRC/scenarios/gpu-multi.sh"

# ---- time-slicing -------------------------------------------------------------------------------
step gpu:timeslice
cat >"$D/gpu-timeslice.yaml" <<'YAML'
config:
  map:
    default: |-
      version: v1
      sharing:
        timeSlicing:
          resources:
          - name: nvidia.com/gpu
            replicas: 2
YAML
out=$(g_just nvidia-device-plugin::install -f "$D/gpu-values.yaml" -f "$D/gpu-timeslice.yaml" 2>&1) ||
        { g_show "$out"; die "gpu: install with time-slicing failed"; }
wait_for 120 "allocatable nvidia.com/gpu $((2 * g_count)) with time-slicing replicas 2" \
        g_gpus_are "$((2 * g_count))" "$((2 * g_count))"
for p in shared-a shared-b; do g_pod "$p" 1 /usr/bin/cuda-check --hold 30; done
g_holding() {
        check_alive
        local p
        for p in shared-a shared-b; do
                [ "$(g_phase "$p")" != Failed ] || { kubectl logs "$p" >&3; die "gpu: pod $p failed"; }
                kubectl logs "$p" 2>/dev/null | grep -q '^cuda-check: holding the context' || return 1
        done
}
wait_for 120 "pods shared-a and shared-b both holding a CUDA context at once" g_holding
a=$(kubectl logs shared-a) b=$(kubectl logs shared-b)
g_show "$a"
g_show "$b"
g_report_add "time-slicing, replicas 2: two pods at once, each nvidia.com/gpu: 1" \
        "$(just_alloc=$(g_gpus allocatable); echo "allocatable nvidia.com/gpu: $just_alloc"; echo "--- shared-a"; echo "$a"; echo "--- shared-b"; echo "$b")"
ua=$(g_one_host_uuid "$a") && ub=$(g_one_host_uuid "$b") || die "gpu: a shared pod does not name a host GPU"
grep -qx 'cuda-check: PASS' <<<"$a" && grep -qx 'cuda-check: PASS' <<<"$b" || die "gpu: a shared pod's cuda-check did not pass"
if [ "$g_count" = 1 ]; then
        [ "$ua" = "$ub" ] || die "gpu: one GPU, but the shared pods saw $ua and $ub"
fi
log "gpu: time-slicing: two pods held CUDA contexts at once on $ua and $ub"
kubectl delete pod shared-a shared-b --wait=false >/dev/null
out=$(g_just nvidia-device-plugin::gpu-info 2>&1) || { g_show "$out"; die "gpu: gpu-info failed"; }
g_show "$out"
g_report_add "just nvidia-device-plugin::gpu-info with time-slicing" "$out"

# ---- MPS ----------------------------------------------------------------------------------------
step gpu:mps
# shellcheck source=tests/e2e/scenarios/gpu-mps.sh
source "$E2E_SRC/scenarios/gpu-mps.sh"

# ---- DRA ----------------------------------------------------------------------------------------
step gpu:dra
# shellcheck disable=SC1091
source "$E2E_SRC/scenarios/gpu-dra.sh"

# ---- uninstall ----------------------------------------------------------------------------------
step gpu:uninstall
out=$(g_just nvidia-device-plugin::uninstall 2>&1) || { g_show "$out"; die "gpu: uninstall failed"; }
g_show "$out"
[ -z "$(kubectl get namespace "$g_ns" --ignore-not-found -o name)" ] || die "gpu: namespace $g_ns still exists"
wait_for 60 "allocatable nvidia.com/gpu 0 after uninstall" g_gpus_are "$((2 * g_count))" 0
step ""
log "gpu: XID health events cannot be injected into a real GPU; that check runs on the simulated node (device-plugin scenario)"
