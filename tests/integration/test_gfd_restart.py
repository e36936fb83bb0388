# SPDX-License-Identifier: Apache-2.0
"""nvdp gfd against the simulated NVML: restarts never remove or needlessly rewrite the labels file.

Upstream deletes its features.d file on exit (issue #796), so the node's nvidia.com/ labels vanish during
every restart. Here: run gfd, stop it, start it again, and check that the file was there all along and,
its content being the same, is the very same file (inode and mtime).
"""
import os
import signal
import subprocess
import threading
import time

import pytest

BUILD = os.environ.get("NVDP_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NVDP = os.path.join(BUILD, "nvdp")
MOCK_DIR = os.path.join(BUILD, "mock-nvml")
MOCK_LIB = os.path.join(MOCK_DIR, "libnvidia-ml.so.1")
FIXTURE = os.path.join(SRC, "mock", "nvml", "fixtures", "dgx-h100.yaml")
FIXTURE_ROOT = os.path.join(SRC, "mock", "nvml", "fixtures", "dgx-h100.root")  # sysfs PCI class, NUMA
FIXTURE_ENV = "MOCK_NVML_FIXTURE"


def mock_ready():
    """The simulated NVML exists and exports what the loader needs."""
    if not os.path.exists(MOCK_LIB):
        return False, "build/mock-nvml/libnvidia-ml.so.1 is not built (the simulated NVML has not landed)"
    # Read its symbol table rather than load it here: under `make asan` the library is built with ASan,
    # and loading it into this (unsanitized) Python aborts the whole test run.
    syms = subprocess.run(["nm", "-D", "--defined-only", MOCK_LIB], capture_output=True, text=True).stdout
    if not any(line.split()[-1:] == ["nvmlInit_v2"] for line in syms.splitlines()):
        return False, "the simulated NVML does not provide nvmlInit_v2 yet"
    if not os.path.exists(FIXTURE):
        return False, f"the 8x H100 fixture {os.path.relpath(FIXTURE, SRC)} does not exist yet"
    return True, ""


READY, WHY = mock_ready()
pytestmark = pytest.mark.skipif(not READY, reason=WHY)


def env():
    e = dict(os.environ)
    e["GFD_USE_NODE_FEATURE_API"] = "false"   # file mode (NodeFeature mode: test_gfd_nodefeature.py)
    e["LD_LIBRARY_PATH"] = os.path.abspath(MOCK_DIR)
    e[FIXTURE_ENV] = FIXTURE
    e["NVDP_ROOT"] = FIXTURE_ROOT
    return e


def start(tmp_path, out, *extra):
    log = open(tmp_path / f"gfd-{time.monotonic_ns()}.log", "w+")
    machine = tmp_path / "product_name"
    machine.write_text("DGX H100\n")
    p = subprocess.Popen(
        [NVDP, "gfd", "--output-file", str(out), "--machine-type-file", str(machine), *extra],
        env=env(), stdout=log, stderr=subprocess.STDOUT)
    return p, log


def wait_log(log, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        if text in log.read():
            return
        time.sleep(0.05)
    log.seek(0)
    raise AssertionError(f"no '{text}' in the log within {timeout}s:\n{log.read()}")


def identity(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


class Watcher:
    """Checks, as often as it can, that the file exists (NFD may read it at any moment)."""

    def __init__(self, path):
        self.path, self.missing, self.checks = path, 0, 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            self.checks += 1
            try:
                with open(self.path) as f:
                    if "nvidia.com/gpu.count=8\n" not in f.read():
                        self.missing += 1
            except FileNotFoundError:
                self.missing += 1
            time.sleep(0.002)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        self.t.join()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL])
def test_restart_keeps_file(tmp_path, stop_signal):
    out = tmp_path / "features.d" / "gfd"
    p, log = start(tmp_path, out, "--no-timestamp", "--sleep-interval", "1h")
    try:
        wait_log(log, "wrote ")
        content = out.read_text()
        assert "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3\n" in content
        assert "nvidia.com/gpu.count=8\n" in content
        assert "nvidia.com/gpu.mode=compute\n" in content
        assert "nvidia.com/gpu.machine=DGX-H100\n" in content
        before = identity(out)

        with Watcher(out) as w:
            time.sleep(0.2)  # the watcher reads before, during and after the restart
            p.send_signal(stop_signal)
            rc = p.wait(timeout=10)
            if stop_signal == signal.SIGTERM:
                assert rc == 0
            assert out.exists(), "gfd removed its labels file on exit"
            assert identity(out) == before

            p, log = start(tmp_path, out, "--no-timestamp", "--sleep-interval", "1h")
            wait_log(log, "labels unchanged")
            time.sleep(0.2)
        assert w.checks > 10 and w.missing == 0, f"file missing or partial in {w.missing} of {w.checks} reads"
        assert out.read_text() == content
        assert identity(out) == before, "same labels, yet the file was rewritten"
        assert sorted(os.listdir(out.parent)) == ["gfd"], "temp files left behind"
    finally:
        p.kill()
        p.wait()


def test_sighup_new_timestamp_and_sleep_rerun(tmp_path):
    out = tmp_path / "gfd"
    p, log = start(tmp_path, out, "--sleep-interval", "200ms")
    try:
        wait_log(log, "wrote ")
        first = identity(out)
        # Sleep reruns keep the timestamp of the start, so the file stays as it is.
        wait_log(log, "labels unchanged")
        assert identity(out) == first
        ts = [l for l in out.read_text().splitlines() if l.startswith("nvidia.com/gfd.timestamp=")]
        assert len(ts) == 1
        time.sleep(1.1)  # a new second, so the reloaded timestamp differs
        p.send_signal(signal.SIGHUP)
        wait_log(log, "configuration reloaded")
        deadline = time.monotonic() + 10
        while identity(out) == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert identity(out) != first
        ts2 = [l for l in out.read_text().splitlines() if l.startswith("nvidia.com/gfd.timestamp=")]
        assert ts2 != ts
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
        assert out.exists()
    finally:
        p.kill()
        p.wait()


def test_oneshot_stdout_as_gpu_feature_discovery(tmp_path):
    link = tmp_path / "gpu-feature-discovery"
    link.symlink_to(os.path.abspath(NVDP))
    r = subprocess.run([str(link), "--oneshot", "--no-timestamp", "--output-file", "",
                        "--machine-type-file", str(tmp_path / "missing")],
                       env=env(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == sorted(lines, key=lambda l: l.split("=", 1)[0])
    assert "nvidia.com/gpu.count=8" in lines
    assert "nvidia.com/gpu.machine=unknown" in lines
    assert not any(l.startswith("nvidia.com/gfd.timestamp=") for l in lines)




def test_nvml_from_the_driver_root_mount(tmp_path):
    """A node without the NVIDIA runtime: the chart mounts the host's driver root at /driver-root
    (DRIVER_ROOT_CTR_PATH) and GFD must load NVML from there; nothing on the loader's path."""
    root = tmp_path / "driver-root"
    (root / "lib64").mkdir(parents=True)
    (root / "lib64" / "libnvidia-ml.so.1").symlink_to(os.path.abspath(MOCK_LIB))
    e = env()
    e.pop("LD_LIBRARY_PATH", None)
    e["DRIVER_ROOT_CTR_PATH"] = str(root)
    r = subprocess.run([NVDP, "gfd", "--oneshot", "--no-timestamp", "--output-file", ""], env=e,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "nvidia.com/gpu.count=8" in r.stdout.splitlines()
    # No mount there (DRIVER_ROOT_CTR_PATH defaults to /driver-root even on nodes with the runtime):
    # the loader's own path is searched, and the error says so.
    e["DRIVER_ROOT_CTR_PATH"] = str(tmp_path / "no-such-root")
    r = subprocess.run([NVDP, "gfd", "--oneshot", "--fail-on-init-error=true", "--output-file", ""], env=e,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "NVML library libnvidia-ml.so.1 not found" in r.stderr
    assert "looked in the dynamic loader's path" in r.stderr
