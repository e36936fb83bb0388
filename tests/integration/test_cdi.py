# SPDX-License-Identifier: Apache-2.0
"""nvdp cdi generate / list and nvdp cdi-hook as a user and a container runtime run them.

generate runs on fixture driver roots (tests/helpers/cdi-fixture-root) with the simulated NVML in
the place of the driver's libnvidia-ml. The update-ldcache hook is checked with the real dynamic
linker: a program whose library lives in a folder the linker does not search runs in a chroot only
after the hook wrote the root's ld.so.cache (the root has no ldconfig, like a busybox image)."""
import json
import os
import shutil
import struct
import subprocess

import pytest

from conftest import BUILD, MOCK_DIR, NVDP, FIXTURES

HELPER = os.path.join(BUILD, "tests", "helpers", "cdi-fixture-root")


def fixture_root(tmp_path, layout, version, mock="dgx-h100", gpus=8):
    root = tmp_path / "root"
    subprocess.run([HELPER, layout, str(root), "--version", version, "--gpus", str(gpus)], check=True)
    libdir = {"fhs": "usr/lib/x86_64-linux-gnu", "usr-local-nvidia": "usr/local/nvidia/lib64"}[layout]
    shutil.copyfile(os.path.join(MOCK_DIR, "libnvidia-ml.so.1"), root / libdir / f"libnvidia-ml.so.{version}")
    env = dict(os.environ)
    env["MOCK_NVML_FIXTURE"] = os.path.join(FIXTURES, mock + ".yaml")
    return root, env


def nvdp(env, *args, stdin=None):
    return subprocess.run([NVDP, *args], env=env, input=stdin, capture_output=True, text=True, timeout=30)


def test_generate_names_every_gpu_by_index_uuid_and_all(tmp_path):
    root, env = fixture_root(tmp_path, "fhs", "580.105.08")
    p = nvdp(env, "cdi", "generate", "--driver-root", str(root), "--dev-root", str(root), "--root", str(root),
             "--format", "json", "--nvidia-cdi-hook-path", "/usr/local/bin/nvdp")
    assert p.returncode == 0, p.stderr
    spec = json.loads(p.stdout)
    assert spec["cdiVersion"] == "0.6.0"
    assert spec["kind"] == "k8s.device-plugin.nvidia.com/gpu"
    names = [d["name"] for d in spec["devices"]]
    # dgx-h100.yaml's GPUs: index, then UUID, for each; then all.
    assert names[0] == "0" and names[1].startswith("GPU-") and names[-1] == "all"
    assert len(names) == 8 * 2 + 1
    assert spec["annotations"]["nvdp.nvidia.com/driver-version"] == "580.105.08"
    assert p.stderr == (f"nvdp cdi generate: driver 580.105.08 from the driver root {root}, device nodes from "
                        f"the dev root {root}: 17 devices, 19 mounts, 2 hooks\n")


def test_generate_finds_device_nodes_in_slash_for_usr_local_nvidia(tmp_path):
    # The GPU test host's layout: the driver root has no dev/ nodes; the host's /dev (here under --root)
    # has them. nvidia-ctk needs --dev-root=/ there; nvdp falls back by itself and says so.
    root, env = fixture_root(tmp_path, "usr-local-nvidia", "580.105.08")
    out = tmp_path / "spec.yaml"
    p = nvdp(env, "cdi", "generate", "--driver-root", f"{root}/usr/local/nvidia", "--root", str(root),
             "--output", str(out), "--kind", "nvidia.com/gpu")
    assert p.returncode == 0, p.stderr
    assert "device nodes from the dev root /:" in p.stderr
    text = out.read_text()
    assert "kind: nvidia.com/gpu\n" in text
    assert "        - path: /dev/nvidia7\n" in text  # no hostPath: the dev root is /
    assert f"    - hostPath: {root}/usr/local/nvidia/lib64/libcuda.so.580.105.08\n" \
           "      containerPath: /lib64/libcuda.so.580.105.08\n" in text


def test_generate_without_a_driver_names_the_roots(tmp_path):
    # NVML loads (the simulated one, from the loader path), but the driver root holds no libraries.
    _, env = fixture_root(tmp_path, "fhs", "580.105.08")
    env["LD_LIBRARY_PATH"] = MOCK_DIR
    empty = tmp_path / "empty"
    (empty / "dev").mkdir(parents=True)
    (empty / "dev" / "nvidiactl").write_text("")
    p = nvdp(env, "cdi", "generate", "--driver-root", str(empty))
    assert p.returncode == 1
    assert p.stderr.startswith(
        f"nvdp cdi generate: no libraries of NVIDIA driver 580.105.08 (libcuda.so.580.105.08, "
        f"libnvidia-ml.so.580.105.08) under the driver root {empty} (seen at {empty}): looked in "
        f"{empty}/etc/ld.so.cache and /usr/lib64, /usr/lib/x86_64-linux-gnu, "), p.stderr


def test_generate_spec_dir_and_list(tmp_path):
    root, env = fixture_root(tmp_path, "fhs", "580.105.08")
    specs = tmp_path / "cdi"
    specs.mkdir()
    (specs / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: all\n"
                                       "  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n")
    (specs / "broken.json").write_text("{")
    p = nvdp(env, "cdi", "generate", "--driver-root", str(root), "--dev-root", str(root), "--root", str(root),
             "--spec-dir", str(specs))
    assert p.returncode == 0, p.stderr
    assert p.stderr.endswith(f"nvdp cdi generate: wrote {specs}/k8s.device-plugin.nvidia.com-gpu.json\n")
    p = nvdp(env, "cdi", "list", "--spec-dir", str(specs))
    assert p.returncode == 1  # the broken file is reported
    assert f"nvdp cdi list: {specs}/broken.json: not JSON\n" in p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "k8s.device-plugin.nvidia.com/gpu=0"
    assert lines[-2:] == ["k8s.device-plugin.nvidia.com/gpu=all", "nvidia.com/gpu=all"]
    assert len(lines) == 17 + 1
    # Uninstall: only nvdp's file goes.
    p = nvdp(env, "cdi", "remove", "--spec-dir", str(specs))
    assert p.returncode == 0, p.stderr
    assert p.stderr == f"nvdp cdi remove: removed 1 spec file of nvdp from {specs}\n"
    assert sorted(os.listdir(specs)) == ["broken.json", "nvidia.yaml"]


def test_hook_unknown_hook_is_a_warning_and_bad_flags_an_error(tmp_path):
    p = nvdp(os.environ, "cdi-hook", "enable-cuda-compat", "--host-driver-version=580.159.04", stdin="{}")
    assert p.returncode == 0
    assert "Unsupported hook enable-cuda-compat" in p.stderr
    p = nvdp(os.environ, "cdi-hook", "create-symlinks", "--lnk", "a::/b", stdin="{}")
    assert p.returncode == 1
    assert "flag provided but not defined: --lnk" in p.stderr
    p = nvdp(os.environ, "cdi-hook", "create-symlinks", "--link", "a::/b", stdin="{")
    assert p.returncode == 1
    assert "the container state on stdin is not JSON" in p.stderr


def _ldd_paths(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False).stdout
    paths = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and parts[parts.index("=>") + 1].startswith("/"):
            paths.append(parts[parts.index("=>") + 1])
        elif parts and parts[0].startswith("/"):
            paths.append(parts[0])
    return paths


def _run_in_root(rootfs, prog):
    if os.geteuid() == 0:
        return subprocess.run([prog], preexec_fn=lambda: (os.chroot(rootfs), os.chdir("/")),
                              capture_output=True, text=True, timeout=20)
    if not shutil.which("unshare"):
        pytest.skip("needs root or unshare for a chroot")
    return subprocess.run(["unshare", "-r", "chroot", str(rootfs), prog], capture_output=True, text=True,
                          timeout=20)


def test_hook_update_ldcache_with_the_real_dynamic_linker(tmp_path):
    if not shutil.which("cc"):
        pytest.skip("needs a C compiler")
    src = tmp_path / "src"
    src.mkdir()
    (src / "lib.c").write_text("int nvdp_cdi_answer(void) { return 42; }\n")
    (src / "prog.c").write_text('#include <stdio.h>\nint nvdp_cdi_answer(void);\n'
                                'int main(void) { printf("nvdp-cdi-ok %d\\n", nvdp_cdi_answer()); return 0; }\n')
    lib = src / "libnvdpcdi.so.1.0.0"
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libnvdpcdi.so.1", "-o", str(lib), str(src / "lib.c")],
                   check=True)
    (src / "libnvdpcdi.so").symlink_to(lib.name)
    prog = src / "prog"
    subprocess.run(["cc", "-o", str(prog), str(src / "prog.c"), f"-L{src}", "-lnvdpcdi"], check=True)

    bundle = tmp_path / "bundle"
    rootfs = bundle / "rootfs"
    (bundle / "config.json").parent.mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps({"ociVersion": "1.0.2", "root": {"path": "rootfs"}}))
    # glibc from this machine (as a CUDA image brings its own), no ldconfig; the library in a folder the
    # linker does not search, without its SONAME link (the hook makes it, as ldconfig would).
    for p in _ldd_paths(str(prog)):
        if "libnvdpcdi" in p:
            continue
        dst = rootfs / p.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.path.realpath(p), dst)
        dst.chmod(0o755)
    (rootfs / "opt/nvidia/lib").mkdir(parents=True)
    shutil.copyfile(lib, rootfs / "opt/nvidia/lib" / lib.name)
    shutil.copyfile(prog, rootfs / "prog")
    (rootfs / "prog").chmod(0o755)
    # The image's own cache: this machine's, ~600 entries, so the linker's binary search has work.
    (rootfs / "etc").mkdir()
    shutil.copyfile("/etc/ld.so.cache", rootfs / "etc/ld.so.cache")

    before = _run_in_root(rootfs, "/prog")
    assert before.returncode != 0
    assert "libnvdpcdi.so.1: cannot open shared object file" in before.stderr

    state = json.dumps({"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 1, "bundle": str(bundle)})
    p = nvdp(os.environ, "cdi-hook", "update-ldcache", "--folder", "/opt/nvidia/lib", stdin=state)
    assert p.returncode == 0, p.stderr
    assert os.readlink(rootfs / "opt/nvidia/lib/libnvdpcdi.so.1") == "libnvdpcdi.so.1.0.0"

    after = _run_in_root(rootfs, "/prog")
    assert after.returncode == 0, after.stderr
    assert after.stdout == "nvdp-cdi-ok 42\n"


def _dynamic(binary):
    """Whether an ELF file asks for a program interpreter (PT_INTERP): it needs a C library to run."""
    with open(binary, "rb") as f:
        elf = f.read()
    assert elf[:4] == b"\x7fELF" and elf[4] == 2, binary          # 64-bit
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    return any(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == 3 for i in range(phnum))


def test_static_hook_runs_on_a_host_without_a_c_library(tmp_path):
    # The runtime runs the hook on the host: nvdp-cdi-hook needs nothing there, not even a C library
    # (a host whose glibc is older than ours, or musl). The sanitizer build links it dynamically.
    hook = os.path.join(BUILD, "nvdp-cdi-hook")
    if "libasan" in subprocess.run(["ldd", NVDP], capture_output=True, text=True).stdout:
        pytest.skip("the sanitizer build links nvdp-cdi-hook dynamically")
    assert not _dynamic(hook)
    assert _dynamic(NVDP)                   # the daemon binary does need one (glibc >= 2.34)
    host = tmp_path / "host"                # only the hook and one container bundle
    rootfs = host / "bundle" / "rootfs"
    rootfs.mkdir(parents=True)
    (host / "bundle" / "config.json").write_text(json.dumps({"ociVersion": "1.0.2", "root": {"path": "rootfs"}}))
    shutil.copyfile(hook, host / "nvdp-cdi-hook")
    (host / "nvdp-cdi-hook").chmod(0o755)
    state = json.dumps({"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 1, "bundle": "/bundle"})
    # nvidia-cdi-hook's arguments: the hook name first (what the spec writes for this program name).
    argv = ["/nvdp-cdi-hook", "create-symlinks", "--link", "libcuda.so.1::/usr/lib64/libcuda.so"]
    if os.geteuid() == 0:
        p = subprocess.run(argv, preexec_fn=lambda: (os.chroot(host), os.chdir("/")), input=state,
                           capture_output=True, text=True, timeout=20)
    elif shutil.which("unshare"):
        p = subprocess.run(["unshare", "-r", "chroot", str(host), *argv], input=state, capture_output=True,
                           text=True, timeout=20)
    else:
        pytest.skip("needs root or unshare for a chroot")
    assert p.returncode == 0, p.stderr
    assert os.readlink(rootfs / "usr/lib64/libcuda.so") == "libcuda.so.1"


def test_install_hook_copies_the_static_hook_atomically(tmp_path):
    # The chart's init container: the image has no shell and no cp.
    d = tmp_path / "var/lib/nvdp/bin"
    p = nvdp(os.environ, "cdi", "install-hook", str(d))
    assert p.returncode == 0, p.stderr
    hook = os.path.join(BUILD, "nvdp-cdi-hook")
    assert p.stderr == f"nvdp cdi install-hook: installed {d}/nvdp-cdi-hook (from {hook})\n"
    installed = d / "nvdp-cdi-hook"
    assert installed.read_bytes() == open(hook, "rb").read()
    assert installed.stat().st_mode & 0o777 == 0o755
    before = installed.stat()
    p = nvdp(os.environ, "cdi", "install-hook", str(d))      # a pod restart: the same file stays
    assert p.stderr == f"nvdp cdi install-hook: unchanged {d}/nvdp-cdi-hook (from {hook})\n"
    assert (installed.stat().st_ino, installed.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    r = subprocess.run([str(installed), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("Usage: nvdp cdi-hook")
    p = nvdp(os.environ, "cdi", "install-hook", "--from", str(tmp_path / "missing"), str(d))
    assert p.returncode == 1
    assert p.stderr == f"nvdp cdi install-hook: cannot read {tmp_path}/missing: No such file or directory\n"
