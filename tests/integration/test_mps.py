# SPDX-License-Identifier: Apache-2.0
"""nvdp mps-control-daemon on the simulated node, with a stand-in nvidia-cuda-mps-control
(mock/mps/nvidia-cuda-mps-control.c, built into build/mock-mps) that records the commands it receives in
its control.log."""
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import BUILD, MOCK_DIR, NVDP, fixture_env
from test_kube import api, apiserver, standin_bin  # noqa: F401  (pytest fixtures)

STANDIN = os.path.join(BUILD, "mock-mps")
# dgx-h100 fixture, GPUs 0 and 1 (81559 MiB each)
GPU0 = "GPU-6a3f5c1e-2b7d-4e90-8c11-0f2a9b3d4e01"
GPU1 = "GPU-1c8e7a42-93d5-4f6b-a0e2-5d7c6b8a9f12"
KLOG = re.compile(r"^[IWE]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ [\w.-]+:\d+\] ")

MPS_2X4 = """version: v1
sharing:
  mps:
    resources:
    - name: nvidia.com/gpu
      rename: gpu.mps
      replicas: 4
      devices: [0, 1]
"""

TIME_SLICING = """version: v1
sharing:
  timeSlicing:
    resources:
    - name: nvidia.com/gpu
      replicas: 4
"""


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def wait_for(predicate, timeout=15, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + (what() if callable(what) else what))


def alive(pid):
    """Exists and is not a zombie (an orphan's new parent may not reap it at once)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


class MpsDaemon:
    """nvdp mps-control-daemon with the stand-in first in PATH (or none: standin=False)."""

    def __init__(self, workdir, config_text=MPS_2X4, args=(), standin=True, fixture="dgx-h100", env=None):
        self.dir = workdir
        self.root = os.path.join(workdir, "mps")
        os.makedirs(self.root, exist_ok=True)
        self.config = os.path.join(workdir, "mps-config.yaml")
        if config_text is not None:
            write(self.config, config_text)
        self.log_path = os.path.join(workdir, "mps-daemon.log")
        e = fixture_env(fixture)
        e["PATH"] = (STANDIN + ":" if standin else "") + "/usr/local/bin:/usr/bin:/bin"
        if env:
            e.update(env)
        self.log = open(self.log_path, "w")
        argv = [NVDP, "mps-control-daemon", "--mps-root", self.root] + list(args)
        if config_text is not None:
            argv += ["--config-file", self.config]
        self.proc = subprocess.Popen(argv, env=e, stdout=self.log, stderr=subprocess.STDOUT)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def control_log(self, resource="nvidia.com/gpu.mps"):
        try:
            with open(self.path(resource, "log", "control.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def commands(self, resource="nvidia.com/gpu.mps"):
        return re.findall(r"\] Cmd:(.*)", self.control_log(resource))

    def pid(self, resource="nvidia.com/gpu.mps"):
        try:
            with open(self.path(resource, "pipe", "nvidia-cuda-mps-control.pid")) as f:
                return int(f.read())
        except (FileNotFoundError, ValueError):
            return None

    def state(self, resource="nvidia.com/gpu.mps"):
        try:
            with open(self.path(resource, ".state")) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def wait_ready(self, resource="nvidia.com/gpu.mps", timeout=20):
        """The daemon's pid once nvdp announced it ready (its last step, after .started and .ready)."""
        def ready():
            pid = self.pid(resource)
            return pid if pid and str(pid) in ready_lines(self.output(), resource) else None
        return wait_for(ready, timeout,
                        lambda: "the MPS daemon of %s to be ready; log:\n%s" % (resource, self.output()))

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("mps-control-daemon did not stop on SIGTERM:\n" + self.output())
        self.log.close()
        return rc


@pytest.fixture
def start_mps(workdir):
    daemons = []

    def start(**kw):
        d = MpsDaemon(workdir, **kw)
        daemons.append(d)
        return d

    yield start
    for d in daemons:
        if d.proc.poll() is None:
            d.stop()
        # a stand-in daemon a test left behind (nvdp killed with SIGKILL)
        for dirpath, _, files in os.walk(d.root):
            if "nvidia-cuda-mps-control.pid" in files:
                with open(os.path.join(dirpath, "nvidia-cuda-mps-control.pid")) as f:
                    try:
                        os.kill(int(f.read()), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass


def ready_lines(output, resource="nvidia.com/gpu.mps"):
    return re.findall(r"MPS control daemon for %s: ready \(pid (\d+)\)" % re.escape(resource), output)


def test_two_gpus_four_replicas(start_mps):
    d = start_mps()
    pid = d.wait_ready()
    # launched with -d on the resource's two GPUs, by UUID
    assert "Invoked: -d CUDA_VISIBLE_DEVICES=%s,%s" % (GPU0, GPU1) in d.control_log()
    # 81559 MiB / 4 replicas = 20389 MiB per client on each GPU; 100 / 4 = 25 % of the threads
    assert d.commands() == [
        "set_default_device_pinned_mem_limit %s 20389M (started=no ready=no)" % GPU0,
        "set_default_device_pinned_mem_limit %s 20389M (started=no ready=no)" % GPU1,
        "set_default_active_thread_percentage 25 (started=no ready=no)",
    ]
    # .started after the last limit (the stand-in saw neither file while the limits were set), .ready
    # once every daemon is ready
    assert os.path.exists(d.path(".ready"))
    assert d.state() == "ready: pid %d" % pid
    assert alive(pid)
    out = d.output()
    assert ready_lines(out) == [str(pid)]
    assert "MPS control daemon for nvidia.com/gpu.mps: starting" in out
    # the daemon's parent is nvdp (the subreaper), so its death arrives as SIGCHLD
    with open("/proc/%d/stat" % pid) as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == d.proc.pid
    for line in out.splitlines():
        assert KLOG.match(line), line


def test_sigkill_restarts_the_daemon(start_mps):
    d = start_mps()
    first = d.wait_ready()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: d.pid() and d.pid() != first, 20, lambda: "a new daemon; log:\n" + d.output())
    second = d.wait_ready()
    assert alive(second) and not alive(first)
    out = d.output()
    assert ("MPS control daemon for nvidia.com/gpu.mps: failed: the control daemon (pid %d) exited: "
            "killed by signal 9" % first) in out
    assert ready_lines(out) == [str(first), str(second)]
    # the new daemon got its limits again, before it was announced
    cmds = d.commands()
    assert len(cmds) == 6 and cmds[3:] == cmds[:3]
    assert all("(started=no ready=no)" in c for c in cmds)


def test_config_change_to_time_slicing_stops_the_daemon(start_mps):
    d = start_mps()
    pid = d.wait_ready()
    write(d.config, TIME_SLICING)
    wait_for(lambda: d.state() == "stopped", 15, lambda: "the daemon to stop; log:\n" + d.output())
    assert not alive(pid)
    assert d.commands()[-1] == "quit"
    assert not os.path.exists(d.path("nvidia.com/gpu.mps", ".started"))
    out = d.output()
    assert "MPS control daemon for nvidia.com/gpu.mps: stopping" in out
    assert "MPS control daemon for nvidia.com/gpu.mps: stopped" in out
    assert d.proc.poll() is None  # nvdp keeps running, waiting for an MPS config
    # back to MPS: a new daemon
    write(d.config, MPS_2X4)
    wait_for(lambda: d.pid() and d.pid() != pid, 20, lambda: "a new daemon; log:\n" + d.output())
    assert d.wait_ready() != pid
    assert d.stop() == 0


def test_sighup_with_the_same_config_keeps_the_daemon(start_mps):
    d = start_mps()
    pid = d.wait_ready()
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "Received SIGHUP, reloading" in d.output(), 5, "the reload")
    time.sleep(1)
    assert d.pid() == pid and alive(pid)
    assert "quit" not in d.commands()


def test_sigterm_quits_the_daemons(start_mps):
    d = start_mps()
    pid = d.wait_ready()
    assert d.stop() == 0
    assert not alive(pid)
    assert d.commands()[-1] == "quit"
    assert not os.path.exists(d.path("nvidia.com/gpu.mps", ".started"))
    assert not os.path.exists(d.path(".ready"))


def test_daemon_left_by_a_killed_nvdp_is_replaced(start_mps):
    d = start_mps()
    old = d.wait_ready()
    d.proc.kill()  # nvdp gone without cleaning up; its daemon stays
    d.proc.wait()
    assert alive(old)
    d2 = start_mps()
    wait_for(lambda: d2.pid() and d2.pid() != old, 20, lambda: "a new daemon; log:\n" + d2.output())
    d2.wait_ready()
    assert not alive(old)
    cmds = d2.commands()
    assert cmds.index("quit") == 3  # the old daemon was told to quit before the new one started
    assert len(cmds) == 7


def test_metrics_and_healthz(start_mps):
    d = start_mps(args=["--metrics-address", "127.0.0.1:0"])
    d.wait_ready()
    port = int(wait_for(lambda: re.search(r"port (\d+)\)", d.output()), 5, "the metrics port").group(1))
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    assert 'nvdp_mps_daemon_ready{resource="nvidia.com/gpu.mps"} 1' in body
    assert 'nvdp_mps_daemon_state_changes_total{resource="nvidia.com/gpu.mps",state="starting"} 1' in body
    assert 'nvdp_mps_daemon_state_changes_total{resource="nvidia.com/gpu.mps",state="ready"} 1' in body
    assert urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5).status == 200


def nvdp_healthz(address):
    """`nvdp healthz --address ADDRESS`, the chart's readiness probe: (exit status, stdout, stderr)."""
    r = subprocess.run([NVDP, "healthz", "--address", address, "--timeout", "5s"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=15)
    return r.returncode, r.stdout, r.stderr


def test_health_address_is_ready_with_the_daemon(start_mps, workdir):
    """The readiness probe of the chart (issue 20): /healthz alone on --health-address, which `nvdp healthz`
    asks; not ready while the MPS daemon is not, ok once it is, without the metrics port. The control
    binary is missing at first (a PATH folder of our own, empty), then fails, then is the stand-in: the
    next try starts it."""
    bin_dir = os.path.join(workdir, "mps-bin")
    os.makedirs(bin_dir)
    d = start_mps(standin=False, args=["--health-address", "127.0.0.1:0"],
                  env={"PATH": bin_dir + ":/usr/local/bin:/usr/bin:/bin"})
    port = int(wait_for(lambda: re.search(r"Serving /healthz on 127\.0\.0\.1:0 \(port (\d+)\) for probes", d.output()),
                        5, lambda: "the health listener; log:\n" + d.output()).group(1))
    address = "127.0.0.1:%d" % port
    assert "Serving /metrics" not in d.output()
    wait_for(lambda: d.state() and d.state().startswith("failed"), 10, "the failed state")
    rc, out, err = nvdp_healthz(address)
    assert (rc, out) == (1, "")
    assert err == ("nvdp healthz: 503 from http://%s/healthz: MPS control daemons not ready: nvidia.com/gpu.mps "
                   "(failed: nvidia-cuda-mps-control not found in %s:/usr/local/bin:/usr/bin:/bin:/usr/local/nvidia/bin)\n" % (address, bin_dir))
    # HEALTH_ADDRESS, as the chart's exec probe passes it, says the same
    r = subprocess.run([NVDP, "healthz"], env=dict(os.environ, HEALTH_ADDRESS=address), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=15)
    assert r.returncode == 1 and r.stderr == err
    # a control binary that fails with two lines of output: the answer stays one line, both in it
    control = os.path.join(bin_dir, "nvidia-cuda-mps-control")
    write(control, "#!/bin/sh\necho 'cannot start the MPS server'\necho 'see control.log'\nexit 3\n")
    os.chmod(control, 0o755)
    want = ("nvdp healthz: 503 from http://%s/healthz: MPS control daemons not ready: nvidia.com/gpu.mps (failed: "
            "%s -d: exit status 3: cannot start the MPS server see control.log)\n" % (address, control))
    wait_for(lambda: nvdp_healthz(address)[2] == want, 15,
             lambda: "healthz to name the failing binary; got %r" % (nvdp_healthz(address),))
    os.unlink(control)
    os.symlink(os.path.join(STANDIN, "nvidia-cuda-mps-control"), control)
    d.wait_ready(timeout=40)
    assert nvdp_healthz(address) == (0, "ok\n", "")
    # the daemon dies: not ready until nvdp has started it again
    os.kill(d.pid(), signal.SIGKILL)
    wait_for(lambda: nvdp_healthz(address)[0] == 1, 10, "healthz to fail after the daemon was killed")
    wait_for(lambda: nvdp_healthz(address) == (0, "ok\n", ""), 20, lambda: "healthz ok again; log:\n" + d.output())


def test_health_address_refused(start_mps):
    d = start_mps(args=["--health-address", "localhost"])
    assert d.proc.wait(10) == 1
    assert d.output().strip().splitlines()[-1].endswith(
        '] --health-address: invalid listen address "localhost": missing port (expected [host]:port, e.g. :2112, '
        "127.0.0.1:2112 or [::1]:2112)")


# ---- bad input ---------------------------------------------------------------------------------------

def test_mps_with_mixed_mig_strategy_is_refused(start_mps):
    d = start_mps(args=["--mig-strategy", "mixed"])
    assert d.proc.wait(10) == 1
    out = d.output().strip().splitlines()
    assert len(out) == 1 and KLOG.match(out[0]), out
    assert out[0].endswith("] nvdp mps-control-daemon: invalid --mig-strategy=mixed: MPS sharing (sharing.mps in %s) "
                           "does not support the mixed MIG strategy" % d.config)


@pytest.mark.skipif(os.path.isdir("/mps"), reason="this machine has an /mps directory")
def test_no_mps_root_is_a_clear_error(workdir):
    cfg = os.path.join(workdir, "c.yaml")
    write(cfg, MPS_2X4)
    p = subprocess.run([NVDP, "mps-control-daemon", "--config-file", cfg], env=fixture_env("dgx-h100"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
    assert p.returncode == 1
    last = p.stdout.strip().splitlines()[-1]
    assert KLOG.match(last) and last.startswith("E"), last
    assert last.endswith("] the MPS root /mps is not a directory: mount the host's MPS root there, or name it "
                         "with --mps-root (MPS_ROOT)")
    missing = os.path.join(workdir, "nowhere")
    p = subprocess.run([NVDP, "mps-control-daemon", "--config-file", cfg, "--mps-root", missing],
                       env=fixture_env("dgx-h100"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=10)
    assert p.returncode == 1
    assert p.stdout.strip().splitlines()[-1].endswith(
        "] the MPS root is not a directory here: neither %s (--mps-root, MPS_ROOT or flags.mpsRoot) nor /mps "
        "(where upstream's chart mounts it)" % missing)


def test_missing_binary_is_logged_once_and_shown_by_doctor(start_mps):
    d = start_mps(standin=False)
    # three attempts at least (after 1 s and 2 s)
    wait_for(lambda: d.state() and d.state().startswith("failed"), 10, "the failed state")
    time.sleep(3.5)
    lines = [l for l in d.output().splitlines() if "MPS control daemon for" in l]
    assert len(lines) == 1, lines
    assert lines[0].startswith("E")
    assert lines[0].endswith("] MPS control daemon for nvidia.com/gpu.mps: failed: nvidia-cuda-mps-control not "
                             "found in /usr/local/bin:/usr/bin:/bin:/usr/local/nvidia/bin")
    assert not os.path.exists(d.path("nvidia.com/gpu.mps", ".started"))
    assert not os.path.exists(d.path(".ready"))
    assert d.proc.poll() is None
    doc = subprocess.run([NVDP, "doctor", "--no-cluster", "--no-nvml", "--json"], env=dict(os.environ, MPS_ROOT=d.root),
                         stdout=subprocess.PIPE, text=True, timeout=30)
    import json
    checks = {c["id"]: c for c in json.loads(doc.stdout)["checks"]}
    assert checks["mps.daemons"]["verdict"] == "fail"
    assert checks["mps.daemons"]["evidence"] == (
        "nvidia.com/gpu.mps: not ready (failed: nvidia-cuda-mps-control not found in /usr/local/bin:/usr/bin:/bin:/usr/local/nvidia/bin)")


def test_doctor_sees_a_ready_daemon_and_a_stale_one(start_mps):
    d = start_mps()
    pid = d.wait_ready()
    env = dict(os.environ, MPS_ROOT=d.root)
    import json

    def daemons():
        doc = subprocess.run([NVDP, "doctor", "--no-cluster", "--no-nvml", "--json"], env=env,
                             stdout=subprocess.PIPE, text=True, timeout=30)
        return {c["id"]: c for c in json.loads(doc.stdout)["checks"]}["mps.daemons"]

    assert daemons() == {"id": "mps.daemons", "verdict": "ok", "evidence": "nvidia.com/gpu.mps: ready", "fix": None}
    # nvdp and its daemon killed without cleaning up: the files stay, nothing listens
    d.proc.kill()
    d.proc.wait()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), 5, "the daemon to die")
    c = daemons()
    assert c["verdict"] == "fail"
    assert c["evidence"] == ("nvidia.com/gpu.mps: .started is there but nothing listens on pipe/control (a daemon "
                             "that died without cleaning up)")


def test_mount_shm(workdir):
    root = os.path.join(workdir, "mps")
    os.makedirs(root)
    fake = os.path.join(workdir, "node")
    os.makedirs(os.path.join(fake, "proc"))
    write(os.path.join(fake, "proc", "meminfo"), "MemTotal:       16318412 kB\nMemFree:         1000 kB\n")
    p = subprocess.run([NVDP, "mps-control-daemon", "--mps-root", root, "--root", fake, "mount-shm"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
    if p.returncode != 0 and "Operation not permitted" in p.stdout:
        pytest.skip("no CAP_SYS_ADMIN here: " + p.stdout)
    try:
        assert p.returncode == 0, p.stdout
        shm = os.path.join(root, "shm")
        with open("/proc/self/mountinfo") as f:
            mounts = [l.split() for l in f if l.split()[4] == shm]
        assert len(mounts) == 1
        fields = mounts[0]
        opts = fields[5].split(",")
        assert {"rw", "nosuid", "nodev", "noexec", "relatime"} <= set(opts)
        sep = fields.index("-")
        assert fields[sep + 1] == "tmpfs"
        # half of MemTotal: 8159206 KiB, rounded up by the kernel to whole pages
        assert os.statvfs(shm).f_blocks * os.statvfs(shm).f_frsize == (8159206 * 1024 + 4095) // 4096 * 4096
        # again: the earlier mount goes first, so there is still exactly one
        p = subprocess.run([NVDP, "mps-control-daemon", "--mps-root", root, "--root", fake, "mount-shm"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
        assert p.returncode == 0, p.stdout
        with open("/proc/self/mountinfo") as f:
            assert len([l for l in f if l.split()[4] == shm]) == 1
    finally:
        subprocess.run(["umount", os.path.join(root, "shm")], stderr=subprocess.DEVNULL)


# ---- the plugin's side (issue 18 item 2) ---------------------------------------------------------------

def test_plugin_advertises_the_mps_resource_only_once_its_daemon_is_ready(kubelet, start_plugin, start_mps,
                                                                          workdir):
    root = os.path.join(workdir, "mps")
    os.makedirs(root, exist_ok=True)
    cfg = os.path.join(workdir, "plugin-config.yaml")
    write(cfg, MPS_2X4)
    start_plugin(args=["--config-file", cfg, "--mps-root", root])
    # the six whole GPUs serve at once; the MPS resource waits for its daemon
    kubelet.wait_registrations(1)
    time.sleep(2)
    assert [r.resource_name for r, _ in kubelet.registrations] == ["nvidia.com/gpu"]
    d = start_mps()
    d.wait_ready()
    kubelet.wait_registrations(2, timeout=10)
    assert kubelet.registrations[1][0].resource_name == "nvidia.com/gpu.mps"
    client = kubelet.client("nvidia.com/gpu.mps")
    c = client.allocate(["%s::2" % GPU1]).container_responses[0]
    assert c.envs["CUDA_MPS_PIPE_DIRECTORY"] == "/mps/nvidia.com/gpu.mps/pipe"
    assert {m.container_path: m.host_path for m in c.mounts} == {
        "/mps/nvidia.com/gpu.mps/pipe": root + "/nvidia.com/gpu.mps/pipe", "/dev/shm": root + "/shm"}
    # its daemon gone: the MPS devices turn Unhealthy until it is back
    os.kill(d.pid(), signal.SIGKILL)
    client.wait_list(lambda m: all(x.health == "Unhealthy" for x in m.devices), timeout=5)
    client.wait_list(lambda m: all(x.health == "Healthy" for x in m.devices), timeout=15)


def metrics_port(plugin):
    m = wait_for(lambda: re.search(r"Serving /metrics and /healthz on \S+ \(port (\d+)\)", plugin.output()), 10,
                 lambda: "the metrics server; log:\n" + plugin.output())
    return int(m.group(1))


def healthz(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_other_resources_serve_at_once_and_the_mps_one_follows_its_daemon(kubelet, start_plugin, start_mps,
                                                                          workdir):
    root = os.path.join(workdir, "mps")
    os.makedirs(root)
    cfg = os.path.join(workdir, "plugin-config.yaml")
    write(cfg, MPS_2X4)
    plugin = start_plugin(args=["--config-file", cfg, "--mps-root", root, "--metrics-address", "127.0.0.1:0"])
    started = os.path.join(root, "nvidia.com", "gpu.mps", ".started")

    # the six whole GPUs are served and healthy at once; the MPS resource has no socket yet
    kubelet.wait_registrations(1)
    gpu = kubelet.client("nvidia.com/gpu")
    assert len(gpu.wait_lists(1).devices) == 6
    assert all(x.health == "Healthy" for x in gpu.lists[-1].devices)
    wait_for(lambda: "nvidia.com/gpu.mps waits for its MPS control daemon" in plugin.output(), 5, plugin.output)
    assert ("] nvidia.com/gpu.mps waits for its MPS control daemon (%s is missing): it is advertised once the "
            "daemon is ready\n" % started) in plugin.output()
    assert not os.path.exists(os.path.join(workdir, "nvidia-gpu.mps.sock"))
    assert ("] Using config file %s (--config-file); advertising nvidia.com/gpu: 6 GPUs, nvidia.com/gpu.mps: 2 GPUs "
            "x 4 replicas (MPS)\n" % cfg) in plugin.output()
    # waiting on purpose is not a failure: /healthz is 200 once nvidia.com/gpu registered (the chart's liveness
    # probe); it would stay 503 if the held resource counted
    port = metrics_port(plugin)
    wait_for(lambda: healthz(port) == (200, "ok\n"), 5, lambda: "/healthz 200; got %r" % (healthz(port),))

    d = start_mps()
    d.wait_ready()
    kubelet.wait_registrations(2, timeout=10)
    assert kubelet.registrations[1][0].resource_name == "nvidia.com/gpu.mps"
    mps = kubelet.client("nvidia.com/gpu.mps")
    listed = mps.wait_list(lambda m: len(m.devices) == 8 and all(x.health == "Healthy" for x in m.devices))
    assert sorted(x.ID for x in listed.devices) == sorted("%s::%d" % (g, i) for g in (GPU0, GPU1) for i in range(4))
    assert "] The MPS control daemon of nvidia.com/gpu.mps is ready: advertising nvidia.com/gpu.mps\n" in \
        plugin.output()

    # the daemon stopped: every MPS device Unhealthy, still registered; the whole GPUs untouched
    assert d.stop() == 0
    mps.wait_list(lambda m: len(m.devices) == 8 and all(x.health == "Unhealthy" for x in m.devices), timeout=5)
    assert ("] The MPS control daemon of nvidia.com/gpu.mps is not ready (%s is missing): its 8 devices are "
            "Unhealthy until it is\n" % started) in plugin.output()
    # back: Healthy again, without registering anew
    d = start_mps()
    d.wait_ready()
    mps.wait_list(lambda m: len(m.devices) == 8 and all(x.health == "Healthy" for x in m.devices), timeout=5)
    assert "] The MPS control daemon of nvidia.com/gpu.mps is ready: its 8 devices are Healthy again\n" in \
        plugin.output()
    assert len(kubelet.registrations) == 2
    assert len(gpu.lists) == 1 and gpu.stream_error is None


def test_node_label_selects_the_mps_config(api, start_mps, workdir):
    """In the chart's per-node mode the daemon follows nvidia.com/device-plugin.config as the plugin does."""
    src = os.path.join(workdir, "available-configs")
    os.mkdir(src)
    write(os.path.join(src, "default"), "version: v1\n")
    write(os.path.join(src, "mps-4"), MPS_2X4)
    env = {"CONFIG_FILE_SRCDIR": src, "DEFAULT_CONFIG": "default", "NODE_NAME": "gpu-1", "KUBECONFIG": api.kubeconfig}
    d = start_mps(env=env, config_text=None)
    wait_for(lambda: "No devices are configured for MPS sharing" in d.output(), 10, lambda: d.output())
    api.control("label?node=gpu-1&key=nvidia.com/device-plugin.config&value=mps-4")
    pid = d.wait_ready()
    api.control("label?node=gpu-1&key=nvidia.com/device-plugin.config")
    wait_for(lambda: d.state() == "stopped", 15, lambda: "the daemon to stop; log:\n" + d.output())
    assert not alive(pid)


def test_plugin_without_mps_root_is_a_klog_error(workdir):
    cfg = os.path.join(workdir, "c.yaml")
    write(cfg, MPS_2X4)
    p = subprocess.run([NVDP, "plugin", "--config-file", cfg, "--kubelet-socket", ""], env=fixture_env("dgx-h100"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
    assert p.returncode != 0
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1 and KLOG.match(lines[0]) and lines[0].startswith("E"), lines
    assert lines[0].endswith("MPS sharing (sharing.mps in %s) requires --mps-root (MPS_ROOT)" % cfg)


def test_driver_root_without_the_nvidia_runtime(start_mps, workdir):
    # The toolkit-free (CDI) node: no runtime puts the driver's binaries on PATH or its libraries on the
    # loader's path. The chart mounts the driver root (NVIDIA_DRIVER_ROOT=/usr/local/nvidia at /driver-root);
    # the daemon finds nvidia-cuda-mps-control under it and runs it with the folder NVML came from first in
    # LD_LIBRARY_PATH, where libcuda.so.1 of the same driver is.
    driver = os.path.join(workdir, "driver")
    os.makedirs(os.path.join(driver, "bin"))
    os.makedirs(os.path.join(driver, "lib64"))
    shutil.copy(os.path.join(MOCK_DIR, "libnvidia-ml.so.1"), os.path.join(driver, "lib64"))
    shutil.copy(os.path.join(STANDIN, "nvidia-cuda-mps-control"), os.path.join(driver, "bin"))
    d = start_mps(standin=False, env={"NVIDIA_DRIVER_ROOT": "/usr/local/nvidia", "DRIVER_ROOT_CTR_PATH": driver,
                                      "LD_LIBRARY_PATH": ""})
    d.wait_ready()
    # ... and with the driver root's bin folders on its PATH, where the control daemon finds the server
    assert ("Invoked: -d CUDA_VISIBLE_DEVICES=%s,%s LD_LIBRARY_PATH=%s/lib64 PATH=/usr/local/bin:/usr/bin:/bin:"
            "/usr/local/nvidia/bin:%s/usr/bin:%s/bin" % (GPU0, GPU1, driver, driver, driver)) in d.control_log()
    assert ("The MPS control daemons get the driver's libraries from %s/lib64 (LD_LIBRARY_PATH)" % driver) in d.output()
    assert d.stop() == 0
