# Helpers shared by tests/e2e/run (host side) and tests/e2e/inside (inside the cluster's namespaces).
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the scripts that source this file

E2E_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_SRC/../.." && pwd)
K8S_VERSION=v1.37.2        # the k8s.io/kubernetes release of tests/e2e/cluster/go.mod (and tests/kubelet)
CONTAINERD_VERSION=v2.4.2  # github.com/containerd/containerd/v2 of tests/e2e/containerd/go.mod
TOOLKIT_VERSION=v1.18.2    # github.com/NVIDIA/nvidia-container-toolkit, for the real-GPU toolkit way
NODE_NAME=nvdp-e2e
CGROUP_ROOT=nvdp-e2e # kubelet's --cgroup-root, one directory per cgroup v1 hierarchy
# Host paths kubelet, containerd and libcni hard-code: the inside process bind-mounts scratch
# directories over them, visible to its mount namespace only (run creates missing mount points).
# /etc/kubernetes: GFD's features.d hostPath (file output mode) lands there.
# /etc/cdi, /var/run/cdi: containerd's CDI spec directories; /etc/nvidia-container-runtime: the NVIDIA
# runtime's config (real-GPU toolkit way).
PRIVATE_DIRS=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /run/containerd /etc/kubernetes
        /etc/cdi /var/run/cdi /etc/nvidia-container-runtime)
# Default scenarios (NVDP_E2E_SCENARIOS overrides): on the simulated node, and with a real GPU
# (NVDP_E2E_GPU=toolkit or cdi).
E2E_DEFAULT_SCENARIOS="smoke dra-host dra-chart plugin-host device-plugin upgrade-from-nvidia chaos"
E2E_GPU_SCENARIOS="smoke gpu"
TOOLS_BIN=${NVDP_TOOLS_BIN:-$REPO/.tools/bin} # just and helm (scripts/install-deps; the GPU bundle's bin/)

# fd 3: the real stderr, also inside wait_for (which silences the command it polls).
exec 3>&2

log() { printf '[e2e %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() {
        printf '[e2e %(%H:%M:%S)T] FAIL: %s\n' -1 "$*" >&3
        exit 1
}

# Phase timing: `phase NAME` starts a phase (ending the previous one); times go to $E2E_TIMES.
_phase_name='' _phase_start=''
phase() {
        local now
        now=$(date +%s.%N)
        if [ -n "$_phase_name" ]; then
                local took
                took=$(awk -v a="$now" -v b="$_phase_start" 'BEGIN { printf "%.1f", a - b }')
                printf '%-22s %7s s\n' "$_phase_name" "$took" >>"$E2E_TIMES"
                log "phase $_phase_name done (${took} s)"
        fi
        _phase_name=$1 _phase_start=$now
        [ -n "$1" ] && log "phase $1"
        return 0
}

# Steps inside a phase (a scenario's parts): `step NAME` starts one (ending the previous one), `step ""`
# ends the last; their times go to $E2E_TIMES indented under the phase.
_step_name='' _step_start=''
step() {
        local now
        now=$(date +%s.%N)
        if [ -n "$_step_name" ]; then
                local took
                took=$(awk -v a="$now" -v b="$_step_start" 'BEGIN { printf "%.1f", a - b }')
                printf '  %-20s %7s s\n' "$_step_name" "$took" >>"$E2E_TIMES"
                log "step $_step_name done (${took} s)"
        fi
        _step_name=$1 _step_start=$now
        [ -n "$1" ] && log "step $1"
        return 0
}

# one_of WORD LIST...: WORD is one of LIST. (Not `printf ... | grep -q` under pipefail: grep exits at
# the first match and printf's SIGPIPE fails the pipeline, which made a found word look missing.)
one_of() {
        local w=$1 x
        shift
        for x in "$@"; do [ "$x" = "$w" ] && return 0; done
        return 1
}

# pod_phase NAME: the pod's phase. pod_done NAME (for wait_for): true once the pod Succeeded; a Failed
# pod fails the test, its description on the real stderr.
pod_phase() { kubectl get pod "$1" -o jsonpath='{.status.phase}'; }
pod_done() {
        check_alive
        case $(pod_phase "$1") in
        Succeeded) return 0 ;;
        Failed) kubectl describe pod "$1" >&3; die "pod $1 failed" ;;
        *) return 1 ;;
        esac
}

# shared_mount DIR: DIR as a shared mount of its own. containerd gives a container Bidirectional mount
# propagation (the MPS DaemonSet's mount-shm) only from a shared mount, and this test's mount namespace
# is a slave of the host's (on a systemd host / is shared).
shared_mount() {
        mkdir -p "$1"
        mountpoint -q "$1" || mount --bind "$1" "$1"
        mount --make-rshared "$1"
}

# mps_values ROOT: chart values sharing every GPU with MPS (replicas 2), the MPS root at ROOT.
mps_values() {
        cat <<YAML
mps:
  root: $1
config:
  map:
    default: |-
      version: v1
      sharing:
        mps:
          resources:
          - name: nvidia.com/gpu
            replicas: 2
YAML
}

# wait_mps_daemonset NAMESPACE SECONDS: the chart's MPS control daemon DaemonSet 1/1 Ready; else its pods'
# description and logs (init container too) on the real stderr, and the test fails.
wait_mps_daemonset() {
        local ns=$1 deadline=$((SECONDS + $2)) ready
        while :; do
                check_alive
                ready=$(kubectl -n "$ns" get daemonset nvidia-device-plugin-mps-control-daemon \
                        -o jsonpath='{.status.desiredNumberScheduled}/{.status.numberReady}' 2>/dev/null || true)
                [ "$ready" = 1/1 ] && return 0
                if [ $SECONDS -ge "$deadline" ]; then
                        kubectl -n "$ns" describe pods -l app.kubernetes.io/component=mps-control-daemon >&3 2>&1 || true
                        kubectl -n "$ns" logs -l app.kubernetes.io/component=mps-control-daemon --all-containers >&3 2>&1 || true
                        die "the MPS control daemon DaemonSet did not become Ready within $2 s (desired/ready ${ready:-none})"
                fi
                sleep 1
        done
}

# wait_for SECONDS WHAT CMD...: run CMD every 0.5 s until it succeeds; fail naming WHAT after SECONDS.
wait_for() {
        local secs=$1 what=$2 deadline
        shift 2
        deadline=$((SECONDS + secs))
        until "$@" >/dev/null 2>&1; do
                [ $SECONDS -lt $deadline ] || die "$what: not reached within ${secs}s"
                sleep 0.5
        done
}

# The CRDs of Node Feature Discovery (NodeFeature, nfd.k8s-sigs.io/v1alpha1, and its siblings), from the NFD
# chart the nvdp chart vendors, as a cluster with NFD has them: GFD's NodeFeature output (upstream's
# default) writes NodeFeature objects. Left installed (cluster-scoped, as NFD's chart leaves them).
apply_nodefeature_crd() {
        local tgz
        tgz=$(ls "$REPO"/deploy/helm/nvidia-device-plugin/charts/node-feature-discovery-*.tgz 2>/dev/null | head -1)
        [ -n "$tgz" ] || die "no vendored NFD chart under deploy/helm/nvidia-device-plugin/charts"
        tar -xzOf "$tgz" node-feature-discovery/crds/nfd-api-crds.yaml | kubectl apply --server-side -f - >/dev/null ||
                die "cannot apply NFD's CRDs from $tgz"
        kubectl wait --for=condition=Established crd/nodefeatures.nfd.k8s-sigs.io --timeout=60s >/dev/null ||
                die "CRD nodefeatures.nfd.k8s-sigs.io not established"
}

# The cgroup v1 hierarchies kubelet and runc use; on a cgroup v2 host this is just the unified root.
cgroup_hierarchies() {
        if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
                echo /sys/fs/cgroup
                return
        fi
        local d
        for d in /sys/fs/cgroup/*/; do
                d=${d%/}
                case $d in */unified) continue ;; esac
                [ -f "$d/cgroup.procs" ] && echo "$d"
        done
}

# Remove the cgroup tree under $CGROUP_ROOT in every hierarchy (v1 ones and the hybrid "unified" v2
# one, where runc also creates directories), deepest first. Directories still holding tasks stay.
remove_cgroups() {
        local h left=0
        for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
                [ -d "$h/$CGROUP_ROOT" ] || continue
                find "$h/$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null || true
                [ -d "$h/$CGROUP_ROOT" ] && left=1
        done
        return $left
}

# ---- cached builds (tests/e2e/run; the GPU bundle, tests/gpu/make-bundle) ----------------------------
# Each prints the path of what it built. Cached in $1 by the hash of its sources and the Go version;
# a changed key rebuilds and removes the old one. Go's own build cache makes a rebuild cheap too.
_build_key() { (cat "$@"; go version) | sha256sum | cut -c1-16; }

# k8s-node: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kubectl in one binary.
build_k8s_node() {
        local cache=$1 key out
        key=$(_build_key "$E2E_SRC"/cluster/go.mod "$E2E_SRC"/cluster/go.sum "$E2E_SRC"/cluster/*.go)
        out=$cache/k8s-node-$K8S_VERSION-$key
        if [ ! -x "$out" ]; then
                log "building k8s-node $K8S_VERSION (cold: tens of minutes on 2 cores; cached in $cache)" >&2
                (cd "$E2E_SRC/cluster" && go build -ldflags "-s -w \
                        -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
                        -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${K8S_VERSION#v1.}" \
                        -o "$out.tmp.$$" .) >&2 || die "building tests/e2e/cluster failed"
                mv "$out.tmp.$$" "$out"
                find "$cache" -maxdepth 1 -name 'k8s-node-*' ! -name "${out##*/}" -delete
        fi
        echo "$out"
}

# containerd, ctr and containerd-shim-runc-v2 of one containerd 2.x release (tests/e2e/containerd):
# Debian's containerd 1.6 has no CDI; k3s ships 2.x. No btrfs, devmapper or zfs snapshotters.
build_containerd() {
        local cache=$1 key out
        key=$(_build_key "$E2E_SRC"/containerd/go.mod "$E2E_SRC"/containerd/go.sum "$E2E_SRC"/containerd/*/*.go)
        out=$cache/containerd-$CONTAINERD_VERSION-$key
        if [ ! -x "$out/containerd" ]; then
                log "building containerd $CONTAINERD_VERSION (cold: about 2 minutes; cached in $cache)" >&2
                rm -rf "$out.tmp.$$" && mkdir -p "$out.tmp.$$"
                (cd "$E2E_SRC/containerd" && go build -tags "no_btrfs no_devmapper no_zfs" -ldflags "-s -w \
                        -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
                        -o "$out.tmp.$$/" ./...) >&2 || die "building tests/e2e/containerd failed"
                rm -rf "$out" && mv "$out.tmp.$$" "$out"
                find "$cache" -maxdepth 1 -name 'containerd-*' ! -name "${out##*/}" -exec rm -rf {} +
        fi
        echo "$out"
}

# NVIDIA's container toolkit (nvidia-ctk, nvidia-container-runtime, nvidia-cdi-hook): the toolkit way
# of a real-GPU run, as a k3s node has it.
build_toolkit() {
        local cache=$1 out=$1/nvidia-container-toolkit-$TOOLKIT_VERSION c
        if [ ! -x "$out/nvidia-cdi-hook" ]; then
                log "building NVIDIA container toolkit $TOOLKIT_VERSION (about 1 minute; cached in $cache)" >&2
                rm -rf "$out.tmp.$$" && mkdir -p "$out.tmp.$$"
                for c in nvidia-ctk nvidia-container-runtime nvidia-cdi-hook; do
                        GOBIN=$out.tmp.$$ go install -ldflags "-s -w" \
                                "github.com/NVIDIA/nvidia-container-toolkit/cmd/$c@$TOOLKIT_VERSION" >&2 ||
                                die "building $c $TOOLKIT_VERSION failed"
                done
                rm -rf "$out" && mv "$out.tmp.$$" "$out"
        fi
        echo "$out"
}
