# shellcheck shell=bash
# Upgrade from NVIDIA's release, in place: an admin runs NVIDIA's chart today (release
# nvidia-device-plugin in namespace nvidia-device-plugin) and runs `just nvidia-device-plugin::install`
# over it. NVIDIA's chart is the vendored v0.19.3 archive (tests/deploy/testdata: the Go module proxy
# has no v0.20.0; its default selectors are the same), pointed at nvdp's MOCK=1 image so that it runs
# here (the image's default fixture is the dgx-h100 node). Steps, each timed:
#   nvidia    helm install of NVIDIA's chart (plugin + GFD, NFD off): allocatable nvidia.com/gpu 8
#   upgrade   `just ...::install` over the same release and namespace while allocatable is sampled:
#             it succeeds, no "field is immutable", the DaemonSets are the same objects (uid kept,
#             selector unchanged), their pods are nvdp's chart's; allocatable was short of 8 only
#             during the rollout and is 8 again
#   rbac      least privilege against the real API server: GFD's token (bound to its pod, so naming
#             its node) may set nvidia.com/ labels of its own node only (ValidatingAdmissionPolicy);
#             the plugin's account may create events in "default" and nothing else it was not given
#   uninstall `just ...::uninstall`
# Needs the MOCK=1 image archive (made here when the device-plugin scenario did not).

up_build=${NVDP_BUILD:-$REPO/build}
up_tag=$(cat "$REPO/VERSION")-mock
up_archive=$up_build/image/nvdp-$up_tag.oci.tar
up_ns=nvidia-device-plugin
up_release=nvidia-device-plugin
up_nvidia_chart=$REPO/tests/deploy/testdata/nvidia-device-plugin-0.19.3.tgz
up_helm() {
        HELM_CACHE_HOME="$D/helm/cache" HELM_CONFIG_HOME="$D/helm/config" HELM_DATA_HOME="$D/helm/data" \
                "$REPO/.tools/bin/helm" "$@"
}
up_just() {
        env NVIDIA_DEVICE_PLUGIN_IMAGE_TAG="$up_tag" NVIDIA_DEVICE_PLUGIN_IMAGE_ARCHIVE="$up_archive" \
                NVIDIA_DEVICE_PLUGIN_WAIT=180s NVIDIA_DEVICE_PLUGIN_PROGRESS=5 CONTAINERD_ADDRESS="$CTR_ADDRESS" \
                HELM_CACHE_HOME="$D/helm/cache" HELM_CONFIG_HOME="$D/helm/config" HELM_DATA_HOME="$D/helm/data" \
                "$REPO/.tools/bin/just" --justfile "$REPO/justfile" --dotenv-path /dev/null "$@"
}
up_gpus() { kubectl get node "$NODE_NAME" -o jsonpath="{.status.$1.nvidia\.com/gpu}"; }
up_gpus_are() { check_alive && [ "$(up_gpus capacity)" = "$1" ] && [ "$(up_gpus allocatable)" = "$2" ]; }
up_show() { printf '%s\n' "$1" | sed 's/^/  | /'; }

# ---- NVIDIA's release ---------------------------------------------------------------------------
step up:nvidia
[ -f "$up_nvidia_chart" ] || die "upgrade-from-nvidia: $up_nvidia_chart is missing"
if [ ! -f "$up_archive" ]; then
        BUILD=$up_build MOCK=1 "$REPO/scripts/make-image" >"$D/make-image-upgrade.log" 2>&1 ||
                die "upgrade-from-nvidia: make-image MOCK=1 failed: $(tail -3 "$D/make-image-upgrade.log")"
fi
"${CTR[@]}" images import "$up_archive" >/dev/null || die "upgrade-from-nvidia: cannot import $up_archive"
kubectl label node "$NODE_NAME" nvidia.com/gpu.present=true --overwrite >/dev/null
# GFD leaves its labels when it stops (they never flap): an earlier scenario's MPS config left
# nvidia.com/mps.capable=true, which would place NVIDIA's MPS DaemonSet here. An admin's node with
# NVIDIA's release and no MPS config has none.
kubectl label node "$NODE_NAME" nvidia.com/mps.capable- >/dev/null 2>&1 || true
kubectl delete runtimeclass nvidia --ignore-not-found >/dev/null
# GFD under NVIDIA's chart writes a NodeFeature (upstream's default output; its ClusterRole allows it):
# the CRD as a cluster with NFD has it.
apply_nodefeature_crd
# NVIDIA's chart mounts the host's /var/run/cdi (DirectoryOrCreate): removed again at the end if it
# creates it.
up_cdi_existed=0
[ -e /var/run/cdi ] && up_cdi_existed=1
mkdir -p "$D/helm" "$D/mps/shm"
# What makes NVIDIA's chart run nvdp's image here: the image, uid 0 (the image's default user is
# nobody; NVIDIA's image runs as root; GFD's default privileged: true merges in, so it is turned off
# explicitly), and MPS paths in the scratch directory.
cat >"$D/nvidia-values.yaml" <<YAML
image:
  repository: nvdp
  tag: "$up_tag"
securityContext:
  runAsUser: 0
  allowPrivilegeEscalation: false
  capabilities: {drop: [ALL]}
gfd:
  enabled: true
  securityContext:
    privileged: false
    runAsUser: 0
    allowPrivilegeEscalation: false
    capabilities: {drop: [ALL]}
nfd:
  enabled: false
mps:
  root: $D/mps
YAML
if ! out=$(up_helm install "$up_release" "$up_nvidia_chart" --namespace "$up_ns" --create-namespace \
        -f "$D/nvidia-values.yaml" --wait --timeout 180s 2>&1); then
        up_show "$out"
        kubectl -n "$up_ns" describe pods >&3 2>&1 || true
        die "upgrade-from-nvidia: helm install of NVIDIA's chart failed"
fi
wait_for 60 "allocatable nvidia.com/gpu 8 from NVIDIA's release" up_gpus_are 8 8
up_chart=$(up_helm list --namespace "$up_ns" -o json | jq -r '.[0].chart')
[ "$up_chart" = nvidia-device-plugin-0.19.3 ] || die "upgrade-from-nvidia: release chart is $up_chart"
declare -A up_uid up_selector
for ds in nvidia-device-plugin nvidia-device-plugin-gpu-feature-discovery; do
        up_uid[$ds]=$(kubectl -n "$up_ns" get daemonset "$ds" -o jsonpath='{.metadata.uid}')
        up_selector[$ds]=$(kubectl -n "$up_ns" get daemonset "$ds" -o jsonpath='{.spec.selector.matchLabels}')
done
kubectl -n "$up_ns" get daemonsets,pods -o wide
log "upgrade-from-nvidia: NVIDIA's chart 0.19.3 installed; allocatable 8; selector ${up_selector[nvidia-device-plugin]}"

# ---- upgrade in place ---------------------------------------------------------------------------
step up:upgrade
# Allocatable sampled every 0.2 s while the upgrade runs: "<seconds> <allocatable>".
(
        t0=$(date +%s.%N)
        while :; do
                printf '%s %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')" "$(up_gpus allocatable)"
                sleep 0.2
        done
) >"$D/upgrade-allocatable" 2>/dev/null &
up_sampler=$!
cat >"$D/upgrade-values.yaml" <<YAML
nfd:
  enabled: false
gfd:
  enabled: true
  outputNode: true
YAML
t0=$SECONDS
rc=0
out=$(up_just nvidia-device-plugin::install -f "$D/upgrade-values.yaml" 2>&1) || rc=$?
up_took=$((SECONDS - t0))
up_show "$out"
if [ $rc -ne 0 ]; then
        kill "$up_sampler" 2>/dev/null || true
        kubectl -n "$up_ns" describe pods >&3 2>&1 || true
        die "upgrade-from-nvidia: just nvidia-device-plugin::install over NVIDIA's release failed"
fi
! grep -qi 'field is immutable' <<<"$out" || die "upgrade-from-nvidia: 'field is immutable' during the upgrade"
wait_for 60 "allocatable nvidia.com/gpu 8 after the upgrade" up_gpus_are 8 8
sleep 1
kill "$up_sampler" 2>/dev/null || true
wait "$up_sampler" 2>/dev/null || true
# The longest stretch without 8 allocatable GPUs, against the time the upgrade took.
up_gap=$(awk '$2 != "8" { if (start == "") start = $1; last = $1; next }
        { if (start != "" && last - start > gap) gap = last - start; start = "" }
        END { if (start != "" && last - start > gap) gap = last - start; printf "%.1f", gap + 0 }' "$D/upgrade-allocatable")
up_zero=$(awk '$2 != "8"' "$D/upgrade-allocatable" | wc -l)
log "upgrade-from-nvidia: upgrade took ${up_took}s; allocatable short of 8 in $up_zero of $(wc -l <"$D/upgrade-allocatable") samples, longest ${up_gap}s"
awk -v g="$up_gap" -v t="$up_took" 'BEGIN { exit !(g < t) }' ||
        die "upgrade-from-nvidia: allocatable stayed below 8 for ${up_gap}s, as long as the whole upgrade (${up_took}s)"
[ "$(tail -1 "$D/upgrade-allocatable" | cut -d' ' -f2)" = 8 ] || die "upgrade-from-nvidia: allocatable is not 8 at the end"
for ds in nvidia-device-plugin nvidia-device-plugin-gpu-feature-discovery; do
        [ "$(kubectl -n "$up_ns" get daemonset "$ds" -o jsonpath='{.metadata.uid}')" = "${up_uid[$ds]}" ] ||
                die "upgrade-from-nvidia: DaemonSet $ds was replaced, not upgraded in place"
        [ "$(kubectl -n "$up_ns" get daemonset "$ds" -o jsonpath='{.spec.selector.matchLabels}')" = "${up_selector[$ds]}" ] ||
                die "upgrade-from-nvidia: DaemonSet $ds selector changed"
        ready=$(kubectl -n "$up_ns" get daemonset "$ds" -o jsonpath='{.status.desiredNumberScheduled}/{.status.numberReady}/{.status.updatedNumberScheduled}')
        [ "$ready" = 1/1/1 ] || die "upgrade-from-nvidia: DaemonSet $ds desired/ready/updated = $ready"
done
up_pod=$(kubectl -n "$up_ns" get pods -l app.kubernetes.io/component=k8s-device-plugin -o jsonpath='{.items[0].metadata.name}')
[ -n "$up_pod" ] || die "upgrade-from-nvidia: no pod of nvdp's chart (app.kubernetes.io/component=k8s-device-plugin)"
revisions=$(up_helm history "$up_release" --namespace "$up_ns" -o json | jq -r '[.[].chart] | join(" ")')
[ "$revisions" = "nvidia-device-plugin-0.19.3 nvidia-device-plugin-$(cat "$REPO/VERSION")" ] ||
        die "upgrade-from-nvidia: release history is '$revisions'"
[ -z "$(kubectl -n "$up_ns" get daemonset nvidia-device-plugin-mps-control-daemon --ignore-not-found -o name)" ] ||
        die "upgrade-from-nvidia: NVIDIA's MPS DaemonSet was left behind"
kubectl -n "$up_ns" get daemonsets,pods -o wide
log "upgrade-from-nvidia: upgraded in place ($revisions); DaemonSets kept (uid, selector), pods are nvdp's chart's"

# ---- least privilege, against the API server ----------------------------------------------------
step up:rbac
# A client with only a token: the admin kubeconfig's server and CA, no client certificate.
up_ca=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')
if [ -z "$up_ca" ]; then
        up_ca=$D/ca-only.crt
        kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$up_ca"
fi
up_server=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
as_token() { kubectl --kubeconfig=/dev/null --server="$up_server" --certificate-authority="$up_ca" --token="$1" "${@:2}"; }
gfd_pod=$(kubectl -n "$up_ns" get pods -l app.kubernetes.io/component=gpu-feature-discovery -o jsonpath='{.items[0].metadata.name}')
gfd_sa=$(kubectl -n "$up_ns" get pod "$gfd_pod" -o jsonpath='{.spec.serviceAccountName}')
gfd_token=$(kubectl -n "$up_ns" create token "$gfd_sa" --bound-object-kind Pod --bound-object-name "$gfd_pod" --duration 10m)
# GFD labelled its node (GET + PATCH through the policy) ...
wait_for 60 "GFD's labels on node $NODE_NAME" sh -c "kubectl get node $NODE_NAME -o jsonpath='{.metadata.labels.nvidia\.com/gpu\.count}' | grep -qx 8"
# ... may set an nvidia.com/ label of its own node ...
out=$(as_token "$gfd_token" label node "$NODE_NAME" nvidia.com/e2e-check=1 --overwrite 2>&1) ||
        die "upgrade-from-nvidia: GFD's token cannot set an nvidia.com/ label on its own node: $out"
as_token "$gfd_token" label node "$NODE_NAME" nvidia.com/e2e-check- >/dev/null 2>&1 || true
# ... but no other label ...
out=$(as_token "$gfd_token" label node "$NODE_NAME" example.com/e2e-check=1 2>&1) &&
        die "upgrade-from-nvidia: GFD's token set example.com/e2e-check on node $NODE_NAME"
grep -q 'GFD may change only nvidia.com/ labels of a Node' <<<"$out" || die "upgrade-from-nvidia: refused for another reason: $out"
# ... and nothing on another node (a Node object without a kubelet stands in for one).
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata: {name: nvdp-e2e-other}
YAML
out=$(as_token "$gfd_token" label node nvdp-e2e-other nvidia.com/e2e-check=1 2>&1) &&
        die "upgrade-from-nvidia: GFD's token labelled another node"
kubectl delete node nvdp-e2e-other --wait=false >/dev/null
grep -q "GFD may label only the node its pod runs on ($NODE_NAME), not nvdp-e2e-other" <<<"$out" ||
        die "upgrade-from-nvidia: refused for another reason: $out"
# The plugin's account: events in "default" only, no Node access (no configs in this release).
plugin_sa=system:serviceaccount:$up_ns:nvidia-device-plugin-service-account
for check in "yes create events -n default" "no patch events -n default" "no create events -n kube-system" \
        "no patch nodes" "no list nodes" "no get nodes"; do
        read -r want verb what rest <<<"$check"
        # shellcheck disable=SC2086 # rest holds the namespace arguments
        got=$(kubectl auth can-i "$verb" "$what" $rest --as="$plugin_sa" 2>/dev/null || true)
        [ "$got" = "$want" ] || die "upgrade-from-nvidia: plugin account can-i $verb $what $rest: $got, want $want"
done
log "upgrade-from-nvidia: GFD may label only its own node, only nvidia.com/; the plugin may create events in default only"

# ---- uninstall ----------------------------------------------------------------------------------
step up:uninstall
out=$(up_just nvidia-device-plugin::uninstall 2>&1) || { up_show "$out"; die "upgrade-from-nvidia: uninstall failed"; }
wait_for 30 "allocatable nvidia.com/gpu 0 after uninstall" up_gpus_are 8 0
[ "$up_cdi_existed" = 1 ] || rmdir /var/run/cdi 2>/dev/null || true
step ""
