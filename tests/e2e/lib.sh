# Helpers shared by tests/e2e/run (host side) and tests/e2e/inside (inside the cluster's namespaces).
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the scripts that source this file

E2E_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_SRC/../.." && pwd)
K8S_VERSION=v1.37.2 # the k8s.io/kubernetes release of tests/e2e/cluster/go.mod (and tests/kubelet)
NODE_NAME=nvdp-e2e
CGROUP_ROOT=nvdp-e2e # kubelet's --cgroup-root, one directory per cgroup v1 hierarchy
# Host paths kubelet, containerd and libcni hard-code: the inside process bind-mounts scratch
# directories over them, visible to its mount namespace only (run creates missing mount points).
# /etc/kubernetes: GFD's features.d hostPath (file output mode) lands there.
PRIVATE_DIRS=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /run/containerd /etc/kubernetes)
E2E_DEFAULT_SCENARIOS="smoke dra-host dra-chart plugin-host device-plugin upgrade-from-nvidia" # NVDP_E2E_SCENARIOS overrides

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
