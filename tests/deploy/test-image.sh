#!/usr/bin/env bash
# The image archive imports into Debian's containerd and `nvdp version` runs in it under runc.
# Uses a private containerd (own root, state and socket in a temp dir), stopped and removed at the end.
# Usage: tests/deploy/test-image.sh [OCI_ARCHIVE]   (default: builds it with scripts/make-image)
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
        echo "image: $pass passed, $fail failed"
        [ "$fail" -eq 0 ]
        exit
}

for tool in containerd ctr runc; do
        if ! command -v "$tool" >/dev/null; then
                not_ok "$tool is not installed (scripts/install-deps installs it)"
                finish
        fi
done
if [ "$(id -u)" -ne 0 ]; then
        not_ok "running containerd and runc needs root"
        finish
fi

version=$(cat VERSION)
archive=${1:-}
if [ -z "$archive" ]; then
        if ! out=$(scripts/make-image 2>&1); then
                echo "$out"
                not_ok "scripts/make-image failed"
                finish
        fi
        archive=build/image/nvdp-$version.oci.tar
fi
size=$(stat -c %s "$archive")
echo "# $archive: $size bytes"
blob() { tar -xOf "$archive" "./blobs/sha256/${1#sha256:}"; }
# index.json names one image index; it holds one manifest per platform.
index=$(tar -xOf "$archive" ./index.json | jq -r '.manifests[0] | select(.mediaType == "application/vnd.oci.image.index.v1+json") | .digest')
manifest_of() { blob "$index" | jq -r --arg a "$1" '.manifests[] | select(.platform.os == "linux" and .platform.architecture == $a) | .digest'; }
platforms=$(blob "$index" 2>/dev/null | jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | join(" ")')
if [ "$platforms" = "linux/amd64 linux/arm64" ]; then ok "one OCI image index with linux/amd64 and linux/arm64"; else not_ok "image index platforms: '$platforms'"; fi
# An image of a few MiB is a design goal; fail loudly if one platform's layers grow past 4 MiB.
for arch in amd64 arm64; do
        m=$(manifest_of "$arch")
        layers=$(blob "$m" | jq -r '[.layers[].size] | add')
        if [ -n "$m" ] && [ "$layers" -lt $((4 * 1024 * 1024)) ]; then ok "linux/$arch: compressed layers under 4 MiB ($layers bytes)"; else not_ok "linux/$arch: layers $layers bytes"; fi
        conf=$(blob "$(blob "$m" | jq -r .config.digest)" | jq -r '"\(.os)/\(.architecture)"')
        if [ "$conf" = "linux/$arch" ]; then ok "linux/$arch: config says $conf"; else not_ok "linux/$arch manifest's config says $conf"; fi
done
# The arm64 image's binary is an aarch64 ELF and runs, with the image's own loader and glibc, under
# qemu-user (-L: the image's root is where the guest's absolute paths resolve).
root64=$(mktemp -d /tmp/nvdp-arm64root.XXXXXX)
for l in $(blob "$(manifest_of arm64)" | jq -r '.layers[].digest'); do blob "$l" | tar -xzf - -C "$root64"; done
machine=$(readelf -h "$root64/usr/bin/nvdp" 2>/dev/null | sed -n 's/^ *Machine: *//p')
interp=$(readelf -l "$root64/usr/bin/nvdp" 2>/dev/null | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
if [ "$machine" = AArch64 ] && [ -e "$root64$interp" ] && [ -e "$root64/lib/aarch64-linux-gnu/libc.so.6" ]; then
        ok "linux/arm64: /usr/bin/nvdp is an AArch64 ELF; its interpreter $interp and libc.so.6 are in the image"
else not_ok "linux/arm64: machine '$machine', interpreter '$interp'"; fi
if command -v qemu-aarch64 >/dev/null; then
        out=$(qemu-aarch64 -L "$root64" "$root64/usr/bin/nvdp" version 2>&1)
        if [ "$out" = "nvdp $version" ]; then ok "linux/arm64: nvdp version under qemu-aarch64: $out"; else not_ok "linux/arm64 nvdp version: '$out'"; fi
else
        not_ok "qemu-aarch64 is not installed (scripts/install-deps installs qemu-user)"
fi
rm -rf "$root64"

tmp=$(mktemp -d /tmp/nvdp-ctd.XXXXXX)
sock=$tmp/containerd.sock
cat >"$tmp/config.toml" <<EOF
version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]
root = "$tmp/root"
state = "$tmp/state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
containerd --config "$tmp/config.toml" \
        >"$tmp/containerd.log" 2>&1 &
ctd=$!
cleanup() {
        ctr --address "$sock" -n nvdp-test tasks kill -s KILL nvdp-version >/dev/null 2>&1
        kill "$ctd" 2>/dev/null && wait "$ctd" 2>/dev/null
        umount -R "$tmp/state" 2>/dev/null
        grep -o "$tmp/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null; done
        rm -rf "$tmp"
}
trap cleanup EXIT

for _ in $(seq 1 50); do
        ctr --address "$sock" version >/dev/null 2>&1 && break
        sleep 0.1
done
c() { ctr --address "$sock" -n nvdp-test "$@"; }

if out=$(c images import "$archive" 2>&1); then ok "ctr images import accepts $archive"; else
        echo "$out"
        not_ok "ctr images import failed"
        tail -5 "$tmp/containerd.log"
        finish
fi
ref=docker.io/library/nvdp:$version
if c images ls -q | grep -qx "$ref"; then ok "image is named $ref"; else not_ok "image $ref not listed: $(c images ls -q)"; fi

snap=overlayfs
out=$(c run --rm --snapshotter "$snap" "$ref" nvdp-version /usr/bin/nvdp version 2>&1) || {
        snap=native
        out=$(c run --rm --snapshotter "$snap" "$ref" nvdp-version /usr/bin/nvdp version 2>&1)
}
if [ "$out" = "nvdp $version" ]; then ok "nvdp version runs under runc: $out"; else not_ok "nvdp version printed '$out'"; fi

# The default user is nobody; no shell in the image.
out=$(c run --rm --snapshotter "$snap" "$ref" nvdp-sh /bin/sh -c true 2>&1)
if [[ "$out" == *"no such file"* ]]; then ok "no /bin/sh in the image"; else not_ok "/bin/sh in the image: '$out'"; fi
manifest=$(manifest_of amd64)
config=$(blob "$manifest" | jq -r .config.digest)
user=$(blob "$config" | jq -r .config.User)
if [ "$user" = 65534:65534 ]; then ok "default user is 65534:65534"; else not_ok "default user: $user"; fi
labels=$(blob "$config" | jq -r '.config.Labels | "\(.["org.opencontainers.image.title"]) \(.["org.opencontainers.image.version"])"')
if [ "$labels" = "nvdp $version" ]; then ok "labels title/version: $labels"; else not_ok "labels: $labels"; fi
envs=$(blob "$config" | jq -r '.config.Env | sort | join(" ")')
want="NVIDIA_DISABLE_REQUIRE=true NVIDIA_DRIVER_CAPABILITIES=compute,utility NVIDIA_VISIBLE_DEVICES=all PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
if [ "$envs" = "$want" ]; then ok "image env as upstream's"; else not_ok "image env: $envs"; fi

# MOCK=1: the simulated NVML and its fixtures ride along, found through LD_LIBRARY_PATH.
if [ -z "${1:-}" ] && [ -f build/mock-nvml/libnvidia-ml.so.1 ]; then
        if out=$(MOCK=1 scripts/make-image 2>&1); then
                mock=build/image/nvdp-$version-mock.oci.tar
                archive=$mock
                index=$(tar -xOf "$mock" ./index.json | jq -r '.manifests[0].digest')
                manifest=$(manifest_of amd64)
                config=$(blob "$manifest" | jq -r .config.digest)
                files=$(for l in $(blob "$manifest" | jq -r '.layers[].digest'); do blob "$l" | tar -tzf -; done)
                if echo "$files" | grep -qx 'usr/lib/nvdp-mock/libnvidia-ml.so.1' &&
                        blob "$config" | jq -e '.config.Env | index("LD_LIBRARY_PATH=/usr/lib/nvdp-mock")' >/dev/null &&
                        blob "$config" | jq -e '.config.Env | index("MOCK_NVML_FIXTURE=/usr/share/nvdp/fixtures/dgx-h100.yaml")' >/dev/null &&
                        echo "$files" | grep -qx 'usr/share/nvdp/fixtures/dgx-h100.yaml'; then
                        ok "MOCK=1 image has usr/lib/nvdp-mock/libnvidia-ml.so.1, LD_LIBRARY_PATH=/usr/lib/nvdp-mock and the dgx-h100 fixture by default"
                else
                        not_ok "MOCK=1 image lacks the mock NVML or its LD_LIBRARY_PATH"
                fi
                if [ "$(tar -xOf "$mock" ./index.json | jq -r '.manifests[0].annotations["io.containerd.image.name"]')" = "docker.io/library/nvdp:$version-mock" ]; then
                        ok "MOCK=1 image is named nvdp:$version-mock"
                else not_ok "MOCK=1 image name"; fi
        else
                echo "$out"
                not_ok "MOCK=1 scripts/make-image failed"
        fi
fi

finish
