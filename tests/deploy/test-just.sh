#!/usr/bin/env bash
# The just module's recipes, run by the real just with recording stand-ins for kubectl, helm and k3s
# (tests/deploy/fake/): each recipe's command lines and output are compared with ones written out by
# hand. PATH holds only the stand-ins and the basic tools the recipes use, so a missing tool is
# really missing.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
repo=$(pwd)
version=$(cat VERSION)
just=${JUST:-$repo/.tools/bin/just}
[ -x "$just" ] || just=$(command -v just) || {
        echo "FAIL - just not found (scripts/install-deps installs it)"
        echo "just: 0 passed, 1 failed"
        exit 1
}

# The npm package's `just` is a node launcher; run the native binary it wraps (the tests' PATH has no node).
native=$(ls "$repo"/.tools/npm/node_modules/rust-just-*/bin/just 2>/dev/null | head -1)
if [ -z "${JUST:-}" ] && [ -n "$native" ]; then just=$native; fi

pass=0
fail=0
ok() {
        echo "ok   - $*"
        pass=$((pass + 1))
}
not_ok() {
        echo "FAIL - $*"
        fail=$((fail + 1))
}

tmp=$(mktemp -d /tmp/nvdp-just.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# bin-full: stand-ins + basic tools; bin-bare: basic tools only (no kubectl, no helm).
mkdir -p "$tmp/bin-full" "$tmp/bin-bare"
for t in bash env sed awk tr grep xargs sleep cat ls dirname mkdir rm make mktemp seq; do
        p=$(command -v "$t") || continue
        ln -s "$p" "$tmp/bin-full/$t"
        ln -s "$p" "$tmp/bin-bare/$t"
done
for t in kubectl helm k3s; do ln -s "$repo/tests/deploy/fake/$t" "$tmp/bin-full/$t"; done

# run NAME PATHDIR [VAR=value...] -- just args: runs just, stdout+stderr in $tmp/NAME.out, log in $tmp/NAME.log
run() {
        local name=$1 bin=$2
        shift 2
        local vars=()
        while [ "$1" != -- ]; do
                vars+=("$1")
                shift
        done
        shift
        : >"$tmp/$name.log"
        env -i HOME="$tmp/home" PATH="$bin" NVDP_TOOLS_BIN=/nonexistent FAKE_LOG="$tmp/$name.log" "${vars[@]}" \
                "$just" --justfile "$repo/justfile" "$@" >"$tmp/$name.out" 2>&1
        echo $? >"$tmp/$name.rc"
}

# expect NAME RC what: compares $tmp/NAME.log with the expected lines on stdin (the log part) and,
# if given, $tmp/NAME.out with $tmp/NAME.want-out.
expect_log() {
        local name=$1 rc=$2 what=$3
        if [ "$(cat "$tmp/$name.rc")" != "$rc" ]; then
                not_ok "$what: exit code $(cat "$tmp/$name.rc"), want $rc"
                sed 's/^/    /' "$tmp/$name.out"
                return
        fi
        if diff -u - "$tmp/$name.log" >"$tmp/$name.diff"; then
                ok "$what: command lines"
        else
                not_ok "$what: command lines differ (- expected, + actual)"
                sed 's/^/    /' "$tmp/$name.diff"
        fi
}
expect_out() {
        local name=$1 what=$2
        if diff -u - "$tmp/$name.out" >"$tmp/$name.odiff"; then
                ok "$what: output"
        else
                not_ok "$what: output differs (- expected, + actual)"
                sed 's/^/    /' "$tmp/$name.odiff"
        fi
}

chart=$repo/deploy/helm/nvidia-device-plugin
values=$repo/nvidia-device-plugin/values.yaml
readyz="kubectl get --raw=/readyz --request-timeout=5s"

# --- just --list -------------------------------------------------------------------------------
out=$("$just" --justfile "$repo/justfile" --list nvidia-device-plugin 2>&1)
recipes=$(echo "$out" | awk 'NR > 1 { print $1 }' | tr '\n' ' ')
if [ "$recipes" = "doctor gpu-info image install test uninstall verify " ]; then ok "just --list shows the recipes: $recipes"; else not_ok "just --list: '$recipes'"; fi
out=$("$just" --justfile "$repo/justfile" --list --list-submodules 2>&1)
if echo "$out" | grep -q '^    nvidia-device-plugin:$' && echo "$out" | grep -q '^        verify '; then ok "root just --list --list-submodules shows the module"; else not_ok "root list: $out"; fi

for jf in justfile nvidia-device-plugin/justfile; do
        if "$just" --unstable --fmt --check --justfile "$repo/$jf" >/dev/null 2>&1; then ok "$jf is formatted (just --fmt)"; else not_ok "$jf is not formatted: run just --unstable --fmt --justfile $jf"; fi
done

# The recipes' bash, as just evaluates it, and the deploy scripts pass shellcheck (warnings and up).
if command -v shellcheck >/dev/null; then
        for recipe in install verify test gpu-info uninstall doctor; do
                "$just" --justfile "$repo/justfile" --dry-run "nvidia-device-plugin::$recipe" >"$tmp/sc-$recipe.sh" 2>&1
                if out=$(shellcheck -s bash -S warning "$tmp/sc-$recipe.sh" 2>&1); then ok "shellcheck: recipe $recipe"; else
                        not_ok "shellcheck: recipe $recipe"
                        echo "$out" | sed 's/^/    /'
                fi
        done
        if out=$(shellcheck -S warning scripts/make-image tests/deploy/*.sh tests/deploy/run tests/deploy/fake/* 2>&1); then
                ok "shellcheck: scripts/make-image and tests/deploy scripts"
        else
                not_ok "shellcheck: scripts"
                echo "$out" | sed 's/^/    /'
        fi
else
        echo "skip - shellcheck not installed (scripts/install-deps installs it)"
fi

# --- missing tools / cluster: one line, non-zero ------------------------------------------------
for recipe in install verify test gpu-info uninstall; do
        run "bare-$recipe" "$tmp/bin-bare" -- "nvidia-device-plugin::$recipe"
        lines=$(wc -l <"$tmp/bare-$recipe.out")
        first=$(head -1 "$tmp/bare-$recipe.out")
        if [ "$(cat "$tmp/bare-$recipe.rc")" != 0 ] && [ "$lines" = 1 ] &&
                [ "$first" = "error: kubectl is not installed or not on PATH; run scripts/install-deps (it puts kubectl and helm in .tools/bin)." ]; then
                ok "$recipe without kubectl: one line, exit $(cat "$tmp/bare-$recipe.rc")"
        else
                not_ok "$recipe without kubectl: rc $(cat "$tmp/bare-$recipe.rc"), $lines lines: $(cat "$tmp/bare-$recipe.out")"
        fi
done
run bare-doctor "$tmp/bin-bare" -- nvidia-device-plugin::doctor gpu-node-1
if [ "$(cat "$tmp/bare-doctor.rc")" != 0 ] && [ "$(cat "$tmp/bare-doctor.out")" = "error: kubectl is not installed or not on PATH; run scripts/install-deps (it puts kubectl and helm in .tools/bin)." ]; then
        ok "doctor NODE without kubectl: one line"
else not_ok "doctor NODE without kubectl: $(cat "$tmp/bare-doctor.out")"; fi
# helm missing but kubectl present (install needs both)
mkdir -p "$tmp/bin-nohelm" && cp -P "$tmp/bin-bare/"* "$tmp/bin-nohelm/" && ln -s "$repo/tests/deploy/fake/kubectl" "$tmp/bin-nohelm/kubectl"
run nohelm "$tmp/bin-nohelm" -- nvidia-device-plugin::install
if [ "$(cat "$tmp/nohelm.rc")" != 0 ] && [ "$(cat "$tmp/nohelm.out")" = "error: helm is not installed or not on PATH; run scripts/install-deps (it puts kubectl and helm in .tools/bin)." ]; then
        ok "install without helm: one line"
else not_ok "install without helm: $(cat "$tmp/nohelm.out")"; fi
run down "$tmp/bin-full" FAKE_CLUSTER=down -- nvidia-device-plugin::verify
if [ "$(cat "$tmp/down.rc")" != 0 ] && [ "$(cat "$tmp/down.out")" = "error: no Kubernetes cluster answers (KUBECONFIG=~/.kube/config); start k3s or point KUBECONFIG at the cluster." ]; then
        ok "verify without a cluster: one line"
else not_ok "verify without a cluster: $(cat "$tmp/down.out")"; fi

# --- install ------------------------------------------------------------------------------------
touch "$tmp/nvdp.oci.tar"
run install "$tmp/bin-full" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE="$tmp/nvdp.oci.tar" -- nvidia-device-plugin::install
expect_log install 0 "install (local archive, chart from the repo)" <<EOF
$readyz
k3s ctr images import $tmp/nvdp.oci.tar
helm upgrade --install nvidia-device-plugin $chart --namespace nvidia-device-plugin --create-namespace --values $values --set image.repository=nvdp --set image.tag=$version --wait --timeout 5m
EOF
expect_out install "install" <<EOF
Importing $tmp/nvdp.oci.tar into k3s's containerd
Installed nvidia-device-plugin (nvdp:$version) in namespace nvidia-device-plugin. Next: just nvidia-device-plugin::verify
EOF

# Settings from the environment, a chart from elsewhere, no archive, extra helm arguments.
mkdir -p "$tmp/otherchart"
echo "name: x" >"$tmp/otherchart/Chart.yaml"
run install2 "$tmp/bin-full" NVIDIA_DEVICE_PLUGIN_NAMESPACE=gpu-system NVIDIA_DEVICE_PLUGIN_RELEASE=nvdp \
        NVIDIA_DEVICE_PLUGIN_CHART="$tmp/otherchart" NVIDIA_DEVICE_PLUGIN_IMAGE_REPOSITORY=registry.example/nvdp \
        NVIDIA_DEVICE_PLUGIN_IMAGE_TAG=dev NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE= -- nvidia-device-plugin::install --set migStrategy=single
expect_log install2 0 "install (settings from the environment, extra helm args)" <<EOF
$readyz
helm upgrade --install nvdp $tmp/otherchart --namespace gpu-system --create-namespace --values $values --set image.repository=registry.example/nvdp --set image.tag=dev --wait --timeout 5m --set migStrategy=single
EOF

# A chart from a repository: NVIDIA_DEVICE_PLUGIN_VERSION picks its version; its own default image.
run install3 "$tmp/bin-full" NVIDIA_DEVICE_PLUGIN_CHART=nvdp/nvidia-device-plugin NVIDIA_DEVICE_PLUGIN_VERSION=0.2.0 \
        NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE= -- nvidia-device-plugin::install
expect_log install3 0 "install (chart from a repository, NVIDIA_DEVICE_PLUGIN_VERSION)" <<EOF
$readyz
helm upgrade --install nvidia-device-plugin nvdp/nvidia-device-plugin --version 0.2.0 --namespace nvidia-device-plugin --create-namespace --values $values --wait --timeout 5m
EOF
expect_out install3 "install (chart from a repository)" <<EOF
Installed nvidia-device-plugin (the chart's default image) in namespace nvidia-device-plugin. Next: just nvidia-device-plugin::verify
EOF
run install-fail "$tmp/bin-full" NVIDIA_DEVICE_PLUGIN_CHART="$tmp/otherchart" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE= \
        NVIDIA_DEVICE_PLUGIN_IMAGE_REPOSITORY=registry.example/nvdp FAKE_HELM_FAIL=upgrade -- nvidia-device-plugin::install
if [ "$(cat "$tmp/install-fail.rc")" = 1 ] && [ "$(tail -1 "$tmp/install-fail.out")" = "error: helm upgrade --install nvidia-device-plugin failed; see 'kubectl -n nvidia-device-plugin get pods' and 'just nvidia-device-plugin::doctor NODE'." ] &&
        grep -qx 'Error: UPGRADE FAILED: context deadline exceeded' "$tmp/install-fail.out"; then
        ok "install: a helm failure shows helm's error and ends with one line saying where to look"
else not_ok "install with failing helm: rc $(cat "$tmp/install-fail.rc"): $(cat "$tmp/install-fail.out")"; fi

# The module guide's .env.local (namespace, and NVIDIA_DEVICE_PLUGIN_VERSION=0.18.0 meaning the Helm
# chart version) against the chart in this repo: one line at once, nothing installed, no image guessed.
printf 'NVIDIA_DEVICE_PLUGIN_NAMESPACE=nvidia-device-plugin\nNVIDIA_DEVICE_PLUGIN_VERSION=0.18.0\n' >"$tmp/env.local"
run guide-env "$tmp/bin-full" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE="$tmp/nvdp.oci.tar" -- --dotenv-path "$tmp/env.local" nvidia-device-plugin::install
if [ "$(cat "$tmp/guide-env.rc")" = 1 ] && [ ! -s "$tmp/guide-env.log" ] &&
        [ "$(cat "$tmp/guide-env.out")" = "error: NVIDIA_DEVICE_PLUGIN_VERSION=0.18.0 (.env.local or the environment) is the Helm chart version to install, but the chart at $chart is version $version: remove the setting to install this chart, or set NVIDIA_DEVICE_PLUGIN_CHART to a repository chart of that version." ]; then
        ok "install with the module guide's .env.local (version 0.18.0): one line, nothing run"
else not_ok "install with the guide's .env.local: rc $(cat "$tmp/guide-env.rc"), calls: $(cat "$tmp/guide-env.log"), output: $(cat "$tmp/guide-env.out")"; fi
run same-version "$tmp/bin-full" NVIDIA_DEVICE_PLUGIN_VERSION="$version" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE="$tmp/nvdp.oci.tar" -- nvidia-device-plugin::install
if [ "$(cat "$tmp/same-version.rc")" = 0 ] && grep -q "^helm upgrade --install nvidia-device-plugin $chart --namespace" "$tmp/same-version.log"; then
        ok "install: NVIDIA_DEVICE_PLUGIN_VERSION equal to the local chart's version is accepted"
else not_ok "install with the chart's own version: rc $(cat "$tmp/same-version.rc"): $(cat "$tmp/same-version.out")"; fi

# No image: neither an archive to import nor a registry image. One line, before anything runs.
run no-image "$tmp/bin-full" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE= -- nvidia-device-plugin::install
if [ "$(cat "$tmp/no-image.rc")" = 1 ] && [ ! -s "$tmp/no-image.log" ] &&
        [ "$(cat "$tmp/no-image.out")" = "error: no image to install: no image archive (make image builds build/image/nvdp-$version.oci.tar) and NVIDIA_DEVICE_PLUGIN_IMAGE_REPOSITORY names no registry image." ]; then
        ok "install without an image archive or a registry image: one line, nothing run"
else not_ok "install without an image: rc $(cat "$tmp/no-image.rc"), calls: $(cat "$tmp/no-image.log"), output: $(cat "$tmp/no-image.out")"; fi
run no-archive "$tmp/bin-full" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE="$tmp/missing.oci.tar" -- nvidia-device-plugin::install
if [ "$(cat "$tmp/no-archive.rc")" = 1 ] && [ ! -s "$tmp/no-archive.log" ] &&
        [ "$(cat "$tmp/no-archive.out")" = "error: NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE=$tmp/missing.oci.tar does not exist; run make image, or set it empty and NVIDIA_DEVICE_PLUGIN_IMAGE_REPOSITORY to a registry image." ]; then
        ok "install with a missing NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE: one line"
else not_ok "install with a missing archive: rc $(cat "$tmp/no-archive.rc"): $(cat "$tmp/no-archive.out")"; fi

# Progress while helm waits: which pods are not Ready yet, every NVIDIA_DEVICE_PLUGIN_PROGRESS seconds.
run progress "$tmp/bin-full" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE="$tmp/nvdp.oci.tar" FAKE_HELM_SLEEP=3 NVIDIA_DEVICE_PLUGIN_PROGRESS=1 \
        FAKE_PODS='nvidia-device-plugin-x7k2p|Pending||ContainerCreating|\nnvidia-device-plugin-gpu-feature-discovery-q9|Running|false||\nnvidia-device-plugin-old|Running|true||2026-01-01T00:00:00Z\nnvidia-device-plugin-node-feature-discovery-master-5|Running|true||\n' \
        -- nvidia-device-plugin::install
want_progress="waiting for pods: nvidia-device-plugin-x7k2p (ContainerCreating), nvidia-device-plugin-gpu-feature-discovery-q9 (running, not ready), nvidia-device-plugin-old (terminating)"
polls=$(grep -c '^kubectl get pods --namespace nvidia-device-plugin -l app.kubernetes.io/instance=nvidia-device-plugin -o jsonpath=' "$tmp/progress.log")
if [ "$(cat "$tmp/progress.rc")" = 0 ] && [ "$polls" -ge 1 ] && grep -qxF "$want_progress" "$tmp/progress.out" &&
        [ "$(grep -c '^waiting for pods: ' "$tmp/progress.out")" = "$polls" ] && tail -1 "$tmp/progress.out" | grep -q '^Installed '; then
        ok "install: while helm waits, one progress line per poll names the pods not Ready ($polls polls in 3 s)"
else not_ok "install progress: rc $(cat "$tmp/progress.rc"), $polls polls: $(cat "$tmp/progress.out")"; fi

# Plain containerd (no k3s) whose socket is not at the default path: CONTAINERD_ADDRESS, which ctr reads.
mkdir -p "$tmp/bin-ctr" && cp -P "$tmp/bin-bare/"* "$tmp/bin-ctr/"
for t in kubectl helm ctr; do ln -s "$repo/tests/deploy/fake/$t" "$tmp/bin-ctr/$t"; done
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$tmp/containerd.sock"
run install-ctr "$tmp/bin-ctr" NVIDIA_DEVICE_PLUGIN_CHART="$tmp/otherchart" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE="$tmp/nvdp.oci.tar" \
        CONTAINERD_ADDRESS="$tmp/containerd.sock" -- nvidia-device-plugin::install
expect_log install-ctr 0 "install (containerd at CONTAINERD_ADDRESS)" <<EOF
$readyz
ctr -n k8s.io images import $tmp/nvdp.oci.tar (address $tmp/containerd.sock)
helm upgrade --install nvidia-device-plugin $tmp/otherchart --namespace nvidia-device-plugin --create-namespace --values $values --set image.repository=nvdp --set image.tag=$version --wait --timeout 5m
EOF
run install-noctr "$tmp/bin-ctr" NVIDIA_DEVICE_PLUGIN_CHART="$tmp/otherchart" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE="$tmp/nvdp.oci.tar" \
        CONTAINERD_ADDRESS="$tmp/no-such.sock" -- nvidia-device-plugin::install
if [ "$(cat "$tmp/install-noctr.rc")" = 0 ] && ! grep -q '^ctr ' "$tmp/install-noctr.log" &&
        grep -qx "note: $tmp/nvdp.oci.tar not imported (no k3s or containerd here); the nodes must be able to pull nvdp:$version." "$tmp/install-noctr.out"; then
        ok "install: no containerd socket at CONTAINERD_ADDRESS, no import, one note"
else not_ok "install with CONTAINERD_ADDRESS pointing nowhere: rc $(cat "$tmp/install-noctr.rc"): $(cat "$tmp/install-noctr.out")"; fi

# --- verify -------------------------------------------------------------------------------------
run verify "$tmp/bin-full" -- nvidia-device-plugin::verify
expect_log verify 0 "verify" <<EOF
$readyz
kubectl get nodes -o go-template={{range .items}}{{\$n := .metadata.name}}{{\$n}}{{"\t\t\n"}}{{range \$k, \$v := .status.allocatable}}{{\$n}}{{"\t"}}{{\$k}}{{"\t"}}{{\$v}}{{"\n"}}{{end}}{{end}}
kubectl get pods --namespace nvidia-device-plugin -o wide
EOF
expect_out verify "verify" <<EOF
=== GPU Resources per Node ===
gpu-node-1: 8 GPUs
cpu-node: 0 GPUs

=== Device Plugin Pods ===
NAME                         READY   STATUS    RESTARTS   AGE   NODE
nvidia-device-plugin-x7k2p   1/1     Running   0          2m    gpu-node-1
EOF

# MIG profiles and shared (renamed) resources are GPUs too: counted, and named.
run verify-mixed "$tmp/bin-full" FAKE_NODES=mixed -- nvidia-device-plugin::verify
expect_out verify-mixed "verify (MIG and shared resources)" <<EOF
=== GPU Resources per Node ===
mig-node: 16 GPUs (nvidia.com/gpu: 2, nvidia.com/mig-1g.10gb: 14)
shared-node: 16 GPUs (nvidia.com/gpu.shared: 16)
plain-node: 4 GPUs

=== Device Plugin Pods ===
NAME                         READY   STATUS    RESTARTS   AGE   NODE
nvidia-device-plugin-x7k2p   1/1     Running   0          2m    gpu-node-1
EOF

# --- test ---------------------------------------------------------------------------------------
run test "$tmp/bin-full" -- nvidia-device-plugin::test
expect_log test 0 "test (pod succeeds)" <<EOF
$readyz
kubectl delete pod gpu-test --namespace default --ignore-not-found --wait=true
kubectl apply --namespace default -f -
kubectl get pod gpu-test --namespace default -o jsonpath={.status.phase}{"|"}{.status.containerStatuses[0].state.waiting.reason}{"|"}{.status.conditions[?(@.type=="PodScheduled")].reason}
kubectl logs gpu-test --namespace default
kubectl delete pod gpu-test --namespace default --ignore-not-found --wait=false
EOF
expect_out test "test (pod succeeds)" <<EOF
=== GPU Test Output ===
| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4 |
EOF
pod=$(cat "$tmp/test.log.stdin" 2>/dev/null)
if echo "$pod" | grep -q '^  name: gpu-test$' && echo "$pod" | grep -q '^  runtimeClassName: nvidia$' &&
        echo "$pod" | grep -q '^    image: nvcr.io/nvidia/cuda:12.2.0-base-ubuntu22.04$' &&
        echo "$pod" | grep -q '^        nvidia.com/gpu: 1$' && echo "$pod" | grep -q '^  restartPolicy: Never$' &&
        echo "$pod" | grep -q '^    command: \["nvidia-smi"\]$'; then
        ok "test applies pod gpu-test: runtimeClassName nvidia, cuda 12.2.0 image, nvidia-smi, 1 GPU, restartPolicy Never"
else not_ok "applied pod: $pod"; fi

run test-reject "$tmp/bin-full" FAKE_APPLY_FAIL=1 -- nvidia-device-plugin::test
if [ "$(cat "$tmp/test-reject.rc")" = 1 ] && [ "$(cat "$tmp/test-reject.out")" = 'error: could not create pod gpu-test in namespace default: Error from server (Forbidden): pod rejected: RuntimeClass "nvidia" not found' ]; then
        ok "test: a rejected pod gives one line with the API server's reason"
else not_ok "test with rejected pod: rc $(cat "$tmp/test-reject.rc"): $(cat "$tmp/test-reject.out")"; fi

run test-image "$tmp/bin-full" GPU_TEST_IMAGE=registry.example/cuda:12.4.1-base GPU_TEST_NAMESPACE=gpu-test-ns -- nvidia-device-plugin::test
if grep -q '^    image: registry.example/cuda:12.4.1-base$' "$tmp/test-image.log.stdin" &&
        grep -q '^kubectl apply --namespace gpu-test-ns -f -$' "$tmp/test-image.log"; then
        ok "test uses GPU_TEST_IMAGE and GPU_TEST_NAMESPACE"
else not_ok "GPU_TEST_IMAGE not applied: $(grep image: "$tmp/test-image.log.stdin")"; fi

run test-pending "$tmp/bin-full" FAKE_PHASE=Pending FAKE_SCHED=Unschedulable GPU_TEST_TIMEOUT=1 -- nvidia-device-plugin::test
expect_log test-pending 1 "test (pod never scheduled, timeout)" <<EOF
$readyz
kubectl delete pod gpu-test --namespace default --ignore-not-found --wait=true
kubectl apply --namespace default -f -
kubectl get pod gpu-test --namespace default -o jsonpath={.status.phase}{"|"}{.status.containerStatuses[0].state.waiting.reason}{"|"}{.status.conditions[?(@.type=="PodScheduled")].reason}
kubectl get events --namespace default --field-selector involvedObject.name=gpu-test --sort-by=.lastTimestamp
kubectl get pod gpu-test --namespace default -o jsonpath={.status.conditions[?(@.type=="PodScheduled")].message}{" "}{.status.containerStatuses[0].state.waiting.reason}{" "}{.status.containerStatuses[0].state.waiting.message}
kubectl delete pod gpu-test --namespace default --ignore-not-found --wait=false
EOF
expect_out test-pending "test (pod never scheduled, timeout)" <<EOF
gpu-test: Pending (Unschedulable)
=== GPU Test Events ===
2m  Warning  FailedScheduling  pod/gpu-test  0/2 nodes are available: 2 Insufficient nvidia.com/gpu.
error: the GPU test pod did not finish within 1s (phase Pending: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu.).
EOF

run test-pulling "$tmp/bin-full" FAKE_PHASE=Pending FAKE_WAITING=ContainerCreating GPU_TEST_TIMEOUT=5 -- nvidia-device-plugin::test
if [ "$(grep -c '^kubectl get pod gpu-test --namespace default -o jsonpath={.status.phase}' "$tmp/test-pulling.log")" -ge 2 ] &&
        [ "$(grep -cx 'gpu-test: Pending (ContainerCreating)' "$tmp/test-pulling.out")" = 1 ]; then
        ok "test: progress while the pod starts, one line per change of state"
else not_ok "test progress: $(cat "$tmp/test-pulling.out")"; fi

run test-failed "$tmp/bin-full" FAKE_PHASE=Failed -- nvidia-device-plugin::test
expect_out test-failed "test (container fails)" <<EOF
=== GPU Test Events ===
2m  Warning  FailedScheduling  pod/gpu-test  0/2 nodes are available: 2 Insufficient nvidia.com/gpu.
=== GPU Test Output ===
| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4 |
error: the GPU test pod failed (exit code 9); its output is above.
EOF
if [ "$(cat "$tmp/test-failed.rc")" = 1 ] && [ "$(tail -1 "$tmp/test-failed.log")" = "kubectl delete pod gpu-test --namespace default --ignore-not-found --wait=false" ]; then
        ok "test (container fails): exit 1, pod deleted"
else not_ok "test (container fails): rc $(cat "$tmp/test-failed.rc"), last call $(tail -1 "$tmp/test-failed.log")"; fi

# --- gpu-info -----------------------------------------------------------------------------------
run gpu-info "$tmp/bin-full" -- nvidia-device-plugin::gpu-info
expect_log gpu-info 0 "gpu-info" <<EOF
$readyz
kubectl get nodes -o custom-columns=NODE:.metadata.name,CAPACITY:.status.capacity.nvidia\.com/gpu,ALLOCATABLE:.status.allocatable.nvidia\.com/gpu
kubectl get nodes -o jsonpath={.items[*].metadata.name}
kubectl get node gpu-node-1 --show-labels --no-headers
EOF
expect_out gpu-info "gpu-info" <<EOF
NODE         CAPACITY   ALLOCATABLE
gpu-node-1   8          8

=== GPU labels of gpu-node-1 ===
feature.node.kubernetes.io/pci-10de.present=true
nvidia.com/gpu.count=8
nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3
EOF

# --- uninstall ----------------------------------------------------------------------------------
run uninstall "$tmp/bin-full" FAKE_RC_OWNER_nvidia=nvidia-device-plugin FAKE_RC_EXISTS_nvidia=1 \
        FAKE_RC_EXISTS_nvidia_cdi=1 FAKE_RC_OWNER_nvidia_cdi= -- nvidia-device-plugin::uninstall
expect_log uninstall 0 "uninstall (our RuntimeClass removed, someone else's kept)" <<EOF
$readyz
helm status nvidia-device-plugin --namespace nvidia-device-plugin
helm uninstall nvidia-device-plugin --namespace nvidia-device-plugin --wait
kubectl get runtimeclass nvidia --ignore-not-found -o jsonpath={.metadata.annotations.meta\.helm\.sh/release-name}
kubectl delete runtimeclass nvidia --ignore-not-found
kubectl get runtimeclass nvidia-cdi --ignore-not-found -o jsonpath={.metadata.annotations.meta\.helm\.sh/release-name}
kubectl get runtimeclass nvidia-cdi --ignore-not-found -o name
kubectl delete namespace nvidia-device-plugin --ignore-not-found --wait=true
EOF
expect_out uninstall "uninstall" <<EOF
RuntimeClass nvidia-cdi was not created by nvidia-device-plugin: left in place.
Host components stay installed: the NVIDIA driver, the NVIDIA Container Toolkit and k3s's containerd runtime config.
EOF
run uninstall-none "$tmp/bin-full" FAKE_HELM_STATUS=1 -- nvidia-device-plugin::uninstall
if [ "$(cat "$tmp/uninstall-none.rc")" = 0 ] && ! grep -q '^helm uninstall' "$tmp/uninstall-none.log" &&
        head -1 "$tmp/uninstall-none.out" | grep -qx "Release nvidia-device-plugin is not installed in namespace nvidia-device-plugin."; then
        ok "uninstall without a release: says so, removes the namespace"
else not_ok "uninstall without a release: $(cat "$tmp/uninstall-none.out")"; fi

# --- doctor -------------------------------------------------------------------------------------
run doctor "$tmp/bin-full" -- nvidia-device-plugin::doctor gpu-node-1
expect_log doctor 0 "doctor NODE (a privileged pod on that node, host / read-only)" <<EOF
$readyz
kubectl get node gpu-node-1 -o name
kubectl get pods --namespace nvidia-device-plugin -l app.kubernetes.io/instance=nvidia-device-plugin,app.kubernetes.io/component=k8s-device-plugin -o jsonpath={.items[0].spec.containers[0].image}
kubectl delete pod nvdp-doctor-gpu-node-1 --namespace nvidia-device-plugin --ignore-not-found --wait=true
kubectl apply --namespace nvidia-device-plugin -f -
kubectl get pod nvdp-doctor-gpu-node-1 --namespace nvidia-device-plugin -o jsonpath={.status.phase}{"|"}{.status.containerStatuses[0].state.waiting.reason}
kubectl logs nvdp-doctor-gpu-node-1 --namespace nvidia-device-plugin
kubectl get pod nvdp-doctor-gpu-node-1 --namespace nvidia-device-plugin -o jsonpath={.status.containerStatuses[0].state.terminated.exitCode}
kubectl delete pod nvdp-doctor-gpu-node-1 --namespace nvidia-device-plugin --ignore-not-found --wait=false
EOF
expect_out doctor "doctor NODE" <<EOF
Running nvdp doctor on node gpu-node-1 (pod nvidia-device-plugin/nvdp-doctor-gpu-node-1, nvdp:0.1.0, host / read-only at /host)
ok    driver.nvml                    NVML loaded: 8 GPUs, driver 580.105.08, CUDA 13.0
15 ok, 0 warn, 0 fail, 1 skip
EOF
pod=$(cat "$tmp/doctor.log.stdin" 2>/dev/null)
if grep -qx '  nodeName: gpu-node-1' <<<"$pod" && grep -qx '    image: nvdp:0.1.0' <<<"$pod" &&
        grep -qx '    command: \[/usr/bin/nvdp, doctor, --root, /host, --no-cluster, --node, gpu-node-1\]' <<<"$pod" &&
        grep -qx '      privileged: true' <<<"$pod" && grep -qx '  restartPolicy: Never' <<<"$pod" &&
        grep -A1 -x '      mountPath: /host' <<<"$pod" | grep -qx '      readOnly: true' &&
        grep -A2 -x '  - name: host' <<<"$pod" | grep -qx '      path: /' && grep -qx '  automountServiceAccountToken: false' <<<"$pod"; then
        ok "doctor NODE applies a privileged, never-restarted pod on gpu-node-1: host / read-only at /host, doctor --root /host, no API token"
else not_ok "doctor pod manifest: $pod"; fi
run doctor-fail "$tmp/bin-full" FAKE_DOCTOR_PHASE=Failed FAKE_DOCTOR_RC=2 FAKE_POD_IMAGE= NVIDIA_DEVICE_PLUGIN_IMAGE_REPOSITORY=registry.example/nvdp -- nvidia-device-plugin::doctor gpu-node-1
if [ "$(cat "$tmp/doctor-fail.rc")" = 2 ] && grep -qx "    image: registry.example/nvdp:$version" "$tmp/doctor-fail.log.stdin" &&
        [ "$(tail -1 "$tmp/doctor-fail.log")" = "kubectl delete pod nvdp-doctor-gpu-node-1 --namespace nvidia-device-plugin --ignore-not-found --wait=false" ]; then
        ok "doctor NODE: doctor's exit status (2: failures) is the recipe's; no plugin installed: the configured image; pod removed"
else not_ok "doctor NODE with failures: rc $(cat "$tmp/doctor-fail.rc"): $(cat "$tmp/doctor-fail.out")"; fi
run doctor-nonode "$tmp/bin-full" -- nvidia-device-plugin::doctor gpu-node-9
if [ "$(cat "$tmp/doctor-nonode.rc")" = 1 ] && [ "$(cat "$tmp/doctor-nonode.out")" = "error: no node gpu-node-9 in the cluster (kubectl get nodes lists them)." ]; then
        ok "doctor with an unknown node: one line"
else not_ok "doctor unknown node: $(cat "$tmp/doctor-nonode.out")"; fi

# --- image --------------------------------------------------------------------------------------
run image "$tmp/bin-full" -- --dry-run nvidia-device-plugin::image 1
if grep -qx "make -C \"$repo\" image MOCK=1" "$tmp/image.out"; then ok "image MOCK=1 runs make image MOCK=1"; else not_ok "image: $(cat "$tmp/image.out")"; fi

echo "just: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
