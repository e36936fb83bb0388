#!/usr/bin/env bash
# What the release workflow (.github/workflows/release.yml) runs, against a registry on this machine:
# `make chart` packages the chart; `scripts/release push` (make push) pushes the multi-arch image and
# the chart (OCI) to a local distribution registry (Debian's docker-registry, plain HTTP on
# 127.0.0.1), and both come back: the image index with its two platforms, the chart with its default
# image pointing at the registry.
# Usage: tests/deploy/test-release.sh   (needs build/image/nvdp-<version>.oci.tar: make image)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

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
finish() {
        echo "release: $pass passed, $fail failed"
        [ "$fail" -eq 0 ]
        exit
}

version=$(cat VERSION)
helm=$PWD/.tools/bin/helm
[ -x "$helm" ] || helm=$(command -v helm) || { not_ok "helm not found (scripts/install-deps)"; finish; }
for tool in docker-registry skopeo jq; do
        command -v "$tool" >/dev/null || { not_ok "$tool is not installed (scripts/install-deps installs it)"; finish; }
done
archive=build/image/nvdp-$version.oci.tar
[ -f "$archive" ] || { not_ok "$archive missing: run make image"; finish; }

tmp=$(mktemp -d /tmp/nvdp-release.XXXXXX)
export HELM_CACHE_HOME=$tmp/helm/cache HELM_CONFIG_HOME=$tmp/helm/config HELM_DATA_HOME=$tmp/helm/data
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $tmp/data}
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
reg=$!
cleanup() {
        kill "$reg" 2>/dev/null && wait "$reg" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 1 50); do
        curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break
        sleep 0.1
done

# make chart: the chart as a package, its default image unchanged; with IMAGE_REPOSITORY, that one.
if out=$(BUILD=$tmp/build scripts/release chart 2>&1) && [ "$out" = "chart: $tmp/build/chart/nvidia-device-plugin-$version.tgz (image.repository nvdp)" ] &&
        "$helm" show values "$tmp/build/chart/nvidia-device-plugin-$version.tgz" | grep -qx '  repository: nvdp'; then
        ok "make chart: nvidia-device-plugin-$version.tgz, image.repository nvdp"
else not_ok "make chart: $out"; fi

registry=127.0.0.1:$port/nvdp-test
mkdir -p "$tmp/build/image" && cp "$archive" "$tmp/build/image/"
if out=$(REGISTRY=$registry REGISTRY_INSECURE=1 BUILD=$tmp/build scripts/release push 2>&1); then
        ok "scripts/release push to $registry"
        echo "$out" | sed 's/^/    /'
else
        not_ok "scripts/release push: $out"
        tail -5 "$tmp/registry.log"
        finish
fi

# The image: an index with both platforms, each pulling its own architecture.
raw=$(skopeo inspect --tls-verify=false --raw "docker://$registry/nvdp:$version" 2>&1)
platforms=$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | sort | join(" ")' <<<"$raw" 2>/dev/null)
if [ "$(jq -r .mediaType <<<"$raw" 2>/dev/null)" = application/vnd.oci.image.index.v1+json ] && [ "$platforms" = "linux/amd64 linux/arm64" ]; then
        ok "registry has $registry/nvdp:$version: an OCI index of $platforms"
else not_ok "pushed image: $raw"; fi
for arch in amd64 arm64; do
        got=$(skopeo inspect --tls-verify=false --override-arch "$arch" --override-os linux "docker://$registry/nvdp:$version" 2>&1 | jq -r .Architecture 2>/dev/null)
        if [ "$got" = "$arch" ]; then ok "linux/$arch resolves to an $arch image"; else not_ok "linux/$arch resolves to '$got'"; fi
done

# The chart: pulled back over OCI, its default image is the pushed one.
if pulled=$(cd "$tmp" && "$helm" pull "oci://$registry/charts/nvidia-device-plugin" --version "$version" --plain-http 2>&1) &&
        [ -f "$tmp/nvidia-device-plugin-$version.tgz" ]; then
        ok "helm pull oci://$registry/charts/nvidia-device-plugin --version $version"
        image=$("$helm" template nvdp "$tmp/nvidia-device-plugin-$version.tgz" --namespace gpu | sed -n 's/^ *image: //p' | head -1)
        if [ "$image" = "$registry/nvdp:$version" ]; then ok "the pulled chart runs $image"; else not_ok "the pulled chart's image is '$image'"; fi
else not_ok "helm pull of the pushed chart failed: $pulled"; fi

# push without a registry named: one line.
out=$(BUILD=$tmp/build scripts/release push 2>&1)
if [ "$out" = "release: REGISTRY is not set (e.g. REGISTRY=ghcr.io/OWNER)." ]; then ok "push without REGISTRY: one line"; else not_ok "push without REGISTRY: $out"; fi

finish
