#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""nvdp and NVIDIA's k8s-device-plugin side by side, in one invocation, on the same node, with the same
kubelet stand-in. See docs/bench.md.

Each plugin runs in a mount namespace of its own (bench/nsexec) in which /var/lib/kubelet/device-plugins
is a scratch directory of this run; the kubelet stand-in (tests/integration/conftest.py's grpcio Kubelet)
listens there. Runs alternate: nvdp, NVIDIA, nvdp, NVIDIA, ... Latencies are measured by rpcbench (grpc-go
with the kubelet's own generated client), or by the grpcio stand-in where rpcbench is not available.
"""
import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
try:
    import pytest  # noqa: F401  conftest imports it for its fixtures, which the bench does not use
except ImportError:  # a GPU host with only python3 + grpcio
    sys.modules["pytest"] = types.SimpleNamespace(fixture=lambda f=None, **kw: f if f else (lambda g: g))
from conftest import Kubelet  # noqa: E402

FIXTURES = os.path.join(REPO, "mock", "nvml", "fixtures")
NVIDIA = "NVIDIA"
# NVIDIA's image is not built here; its size is the one published for it. Found with a search of public
# pages: NVIDIA's own registry pages (nvcr.io / NGC, ghcr.io) were not in the index with sizes.
PUBLISHED_IMAGE = ("49.5,for nvcr.io/nvidia/k8s-device-plugin v0.19.x: 51.93 MB (10^6 bytes) compressed, "
                   "linux/amd64, v0.19.3, as listed on Docker Hub for a mirror of it "
                   "(https://hub.docker.com/r/aipity/k8s-device-plugin/tags); v0.17.x images (CUDA base) "
                   "were listed at 176-235 MB. nvdp's figure is the size of its OCI archive.")
NVDP = "nvdp"


# ---- small helpers -------------------------------------------------------------------------------
def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def proc_cpu(pid):
    """(utime+stime in ms from /proc/pid/stat, on-CPU ns summed over the live threads' schedstat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    ms = ticks * 1000.0 / os.sysconf("SC_CLK_TCK")
    ns = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return ms, ns


class PyKubelet(Kubelet):
    """conftest's grpcio Kubelet, seen through the interface the bench uses (that of GoKubelet too). Its
    Register handler takes the steps the real kubelet takes: dial the plugin, GetDevicePluginOptions,
    start ListAndWatch, then answer."""
    name = "grpcio (tests/integration/conftest.py)"

    def registered(self):
        """[(resource, endpoint, monotonic time Register arrived)]"""
        with self.cond:
            return [(r.resource_name, r.endpoint, t) for r, t in self.registrations]

    def lists(self, resource):
        """[(monotonic time, [(id, health)])] received so far on that resource's stream."""
        with self.cond:
            c = self.clients.get(resource)
        if c is None:
            return []
        with c.cond:
            return [(t, [(d.ID, d.health) for d in m.devices]) for t, m in zip(c.list_times, c.lists)]

    def wait(self, predicate, timeout):
        """Waits until predicate() holds (polled: events come from several threads)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True


class GoKubelet:
    """The kubelet stand-in built on the kubelet's own client stack (rpcbench kubelet: grpc-go and the
    generated k8s.io/kubelet v1beta1 code); it reports each event with its CLOCK_MONOTONIC time."""
    name = "rpcbench kubelet (grpc-go, k8s.io/kubelet v1beta1)"

    def __init__(self, rpcbench, directory):
        self.dir = directory
        self.events = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([rpcbench, "kubelet", directory], stdout=subprocess.PIPE)
        threading.Thread(target=self._pump, daemon=True).start()
        if not self.wait(lambda: any(e["ev"] == "ready" for e in self.events), 10):
            raise RuntimeError("rpcbench kubelet did not start")

    def _pump(self):
        for line in self.proc.stdout:
            e = json.loads(line)
            with self.cond:
                self.events.append(e)
                self.cond.notify_all()

    def registered(self):
        with self.cond:
            return [(e["res"], e["ep"], e["t"] / 1e9) for e in self.events if e["ev"] == "register"]

    def lists(self, resource):
        with self.cond:
            return [(e["t"] / 1e9, [tuple(d) for d in e["devs"]]) for e in self.events
                    if e["ev"] == "list" and e["res"] == resource]

    def wait(self, predicate, timeout):
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def mig_minors(gpus=8):
    """The driver's /proc/driver/nvidia-caps/mig-minors: a device minor per MIG capability."""
    lines, minor = ["config 1", "monitor 2"], 3
    for g in range(gpus):
        for gi in range(15):
            lines.append(f"gpu{g}/gi{gi}/access {minor}")
            minor += 1
            for ci in range(8):
                lines.append(f"gpu{g}/gi{gi}/ci{ci}/access {minor}")
                minor += 1
    return "\n".join(lines) + "\n"


class Run:
    """One plugin process on the (simulated or real) node, registered with its own kubelet stand-in."""

    def __init__(self, h, impl, fixture, args=(), config=None, resources=1):
        self.h, self.impl = h, impl
        self.dir = tempfile.mkdtemp(prefix=f"nvdp-bench-{impl}-")
        os.chmod(self.dir, 0o700)
        self.kubelet = GoKubelet(h.rpcbench, self.dir) if h.go_kubelet else PyKubelet(self.dir)
        self.events = os.path.join(self.dir, "nvml-events")
        env = dict(os.environ)
        if not h.real:
            env["LD_LIBRARY_PATH"] = h.mock_dir
            env["MOCK_NVML_FIXTURE"] = os.path.join(FIXTURES, fixture + ".yaml")
            env["NVDP_ROOT"] = os.path.join(FIXTURES, fixture + ".root")
            env["MOCK_NVML_EVENTS"] = self.events
            os.mkfifo(self.events)
        argv = [h.nvdp, "plugin"] if impl == NVDP else [h.upstream]
        argv += list(args)
        if config:
            path = os.path.join(self.dir, "config.yaml")
            with open(path, "w") as f:
                f.write(config)
            argv += ["--config-file", path]
        binds = []
        if not h.real:
            # What NVIDIA's plugin reads at fixed host paths, as the simulated node has it: the fixture's
            # sysfs (NUMA nodes; nvdp reads the same tree through NVDP_ROOT) and the driver's MIG
            # capability minors (/proc/driver/nvidia-caps/mig-minors, as the driver writes it).
            procdir = os.path.join(self.dir, "proc-driver")
            os.makedirs(os.path.join(procdir, "nvidia-caps"))
            with open(os.path.join(procdir, "nvidia-caps", "mig-minors"), "w") as f:
                f.write(mig_minors())
            binds += ["-b", procdir, "/proc/driver",
                      "-b", os.path.join(FIXTURES, fixture + ".root", "sys", "bus", "pci", "devices"),
                      "/sys/bus/pci/devices"]
        stamp = os.path.join(self.dir, "exec-time")
        self.log_path = os.path.join(self.dir, "plugin.log")
        self.log = open(self.log_path, "w")
        self.popen_time = time.monotonic()
        if h.nsexec:
            wrapped = [h.nsexec] + binds + [self.dir, stamp] + argv
        else:  # no compiled helper (a GPU host without a compiler): unshare(1) and a shell; the stamp is
            # CLOCK_REALTIME from date(1), converted below
            wrapped = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                       'set -e; d=/var/lib/kubelet/device-plugins; [ -d $d ] || '
                       '{ mount -t tmpfs -o size=1m tmpfs /var/lib; mkdir -p $d; }; mount --bind "$0" $d; '
                       'date +%s%N > "$1.realtime"; shift; exec "$@"', self.dir, stamp] + argv
        self.proc = subprocess.Popen(wrapped, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.stamp = stamp
        self.resources = resources
        self.allocates = 0

    def start_time(self):
        try:
            with open(self.stamp) as f:
                return int(f.read()) / 1e9
        except (FileNotFoundError, ValueError):
            pass
        try:
            with open(self.stamp + ".realtime") as f:
                return int(f.read()) / 1e9 - (time.time() - time.monotonic())
        except (FileNotFoundError, ValueError):
            return self.popen_time

    def wait_ready(self, timeout=30):
        """Waits for every resource's first ListAndWatch response; returns seconds from exec to the first."""
        k = self.kubelet

        def ready():
            regs = k.registered()
            return len(regs) >= self.resources and all(k.lists(res) for res, _, _ in regs)
        deadline = time.monotonic() + timeout
        while not k.wait(ready, 0.05):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{self.impl}: no ListAndWatch on every resource:\n{self.output()}")
        t0 = self.start_time()
        regs = k.registered()
        firsts = [k.lists(res)[0][0] for res, _, _ in regs]
        self.first_register = min(t for _, _, t in regs) - t0
        self.first_list = min(firsts) - t0
        self.all_lists = max(firsts) - t0
        return self.first_list

    def client(self, resource):
        """conftest's PluginClient (the grpcio stand-in only)."""
        return self.kubelet.client(resource)

    def socket(self, resource):
        for res, ep, _ in self.kubelet.registered():
            if res == resource:
                return os.path.join(self.dir, ep)
        raise KeyError(resource)

    def resources_registered(self):
        return sorted({res for res, _, _ in self.kubelet.registered()})

    def devices(self, resource):
        return [i for i, _ in self.kubelet.lists(resource)[-1][1]]

    def rss_kib(self):
        return proc_rss_kib(self.proc.pid)

    def output(self):
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        with open(self.log_path, errors="replace") as f:
            for line in f:  # klog's E/W lines (both plugins): worth a look, once each
                if not (line[:1] in "EW" and line[1:5].isdigit()) or "XID 79" in line:  # the bench's own XID
                    continue
                msg = line.split("] ", 1)[-1].strip()[:300]
                note = f"{self.impl} logged: {msg}"
                if note not in self.h.notes and len(self.h.notes) < 30:
                    self.h.notes.append(note)
        try:
            self.kubelet.close()
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- the measurements ----------------------------------------------------------------------------
class Harness:
    def __init__(self, a):
        self.a = a
        self.real = a.real
        self.nvdp, self.upstream = a.nvdp, a.upstream
        self.nsexec = a.nsexec if a.nsexec and os.access(a.nsexec, os.X_OK) else None
        self.rpcbench = a.rpcbench if a.rpcbench and os.access(a.rpcbench, os.X_OK) else None
        self.h2call = a.h2call if a.h2call and os.access(a.h2call, os.X_OK) else None
        self.go_kubelet = bool(self.rpcbench) and not a.py_kubelet
        self.mock_dir = os.path.join(a.build, "mock-nvml")
        self.samples = {}  # (metric, impl) -> [values]
        self.notes = []

    def add(self, metric, impl, value):
        self.samples.setdefault((metric, impl), []).append(value)

    def latencies(self, run, resource, kind, n, ids, size=0, client=None):
        """Per-call seconds for n calls, made by h2call (C, nghttp2) unless told otherwise."""
        sock = run.socket(resource)
        client = client or self.h2call or self.rpcbench
        if client:
            argv = [client, kind, sock, str(n)] + ([str(size)] if kind == "preferred" else []) + [",".join(ids)]
            out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600).stdout
            return [int(x) / 1e9 for x in out.split()]
        pc = run.client(resource)  # the grpcio stand-in, on the kubelet's own connection
        call = (lambda: pc.allocate(ids)) if kind == "allocate" else (lambda: pc.preferred(ids, (), size))
        call()
        res = []
        for _ in range(n):
            t = time.perf_counter()
            call()
            res.append(time.perf_counter() - t)
        return res

    def timed(self, run, metric, impl, *args, **kw):
        """latencies() plus the plugin's own CPU time per call (schedstat of its threads): what a call
        costs the node, which scheduling noise on a busy machine does not inflate."""
        before = proc_cpu(run.proc.pid)[1]
        lat = self.latencies(run, *args, **kw)
        after = proc_cpu(run.proc.pid)[1]
        self.record_latency(metric, impl, lat)
        self.add(metric + ", plugin CPU per call", impl, (after - before) / 1e9 / (len(lat) + 1))
        run.allocates += len(lat) + 1 if args[1] == "allocate" else 0
        return lat

    def record_latency(self, metric, impl, lat):
        self.add(metric + " p50", impl, pct(lat, 50))
        self.add(metric + " p99", impl, pct(lat, 99))

    def start(self, impl, fixture, **kw):
        r = Run(self, impl, fixture, **kw)
        try:
            r.wait_ready()
        except Exception:
            r.stop()
            raise
        return r

    # One run of the main scenario: 8 whole GPUs.
    def run_main(self, impl):
        a = self.a
        r = self.start(impl, "dgx-h100")
        try:
            self.add("first ListAndWatch after start", impl, r.first_list)
            self.add("  of which: Register reached the stand-in", impl, r.first_register)
            time.sleep(a.settle)
            self.add("RSS after start", impl, r.rss_kib())
            gpus = r.devices("nvidia.com/gpu")
            eight = gpus[:8]
            self.timed(r, "Allocate 1 GPU", impl, "nvidia.com/gpu", "allocate", a.allocs, gpus[:1])
            self.timed(r, f"Allocate {len(eight)} GPUs", impl, "nvidia.com/gpu", "allocate", a.allocs, eight)
            self.timed(r, f"GetPreferredAllocation {min(4, len(eight))} of {len(eight)}", impl,
                       "nvidia.com/gpu", "preferred", a.prefers, eight, min(4, len(eight)))
            if self.rpcbench and self.h2call:
                self.timed(r, "Allocate 1 GPU, kubelet's grpc-go client", impl, "nvidia.com/gpu",
                           "allocate", a.allocs // 5, gpus[:1], client=self.rpcbench)
            time.sleep(a.settle)
            self.add(f"RSS after {r.allocates:,} Allocates", impl, r.rss_kib())
            if not self.real:
                self.xid(r, impl, gpus[-1])
        finally:
            r.stop()

    def xid(self, r, impl, uuid):
        k = r.kubelet
        n = len(k.lists("nvidia.com/gpu"))
        fd = os.open(r.events, os.O_WRONLY | os.O_NONBLOCK)
        t = time.monotonic()
        os.write(fd, f"xid {uuid} 79\n".encode())
        os.close(fd)

        def unhealthy():
            return [lt for lt, devs in k.lists("nvidia.com/gpu")[n:] if (uuid, "Unhealthy") in devs]
        if k.wait(lambda: bool(unhealthy()), self.a.xid_timeout):
            self.add("XID 79 to Unhealthy on the stream", impl, unhealthy()[0] - t)
        else:
            self.add("XID 79 to Unhealthy on the stream", impl, None)

    def run_shared(self, impl, replicas, label):
        a = self.a
        config = ("version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
                  f"    - name: nvidia.com/gpu\n      replicas: {replicas}\n")
        r = self.start(impl, "dgx-h100", config=config)
        try:
            ids = r.devices("nvidia.com/gpu")
            n_gpus = len({i.split("::")[0] for i in ids})
            tag = f"{n_gpus}x{replicas}"
            self.add(f"first ListAndWatch after start, {tag} replicas", impl, r.first_list)
            time.sleep(a.settle)
            self.add(f"RSS after start, {tag} replicas", impl, r.rss_kib())
            self.timed(r, f"Allocate 1 replica of {tag}", impl, "nvidia.com/gpu", "allocate",
                       a.shared_allocs, ids[:1])
            if len(ids) != n_gpus * replicas:
                self.notes.append(f"{impl}: {len(ids)} devices listed with replicas {replicas}, "
                                  f"expected {n_gpus * replicas}")
        finally:
            r.stop()

    def run_mig(self, impl):
        a = self.a
        r = Run(self, impl, "a100-mig", args=["--mig-strategy", "mixed"], resources=3)
        try:
            r.wait_ready()
            self.add("first ListAndWatch after start, A100 MIG mixed", impl, r.first_list)
            self.add("every MIG resource listed, A100 MIG mixed", impl, r.all_lists)
            time.sleep(a.settle)
            self.add("RSS after start, A100 MIG mixed", impl, r.rss_kib())
            res = "nvidia.com/mig-1g.5gb"
            self.timed(r, "Allocate 1 MIG 1g.5gb", impl, res, "allocate", a.shared_allocs,
                       r.devices(res)[:1])
            self.mig_resources = r.resources_registered()
        finally:
            r.stop()

    def run_idle(self):
        """Every idle instance of both plugins at once, so the wait is paid once."""
        a = self.a
        runs = []
        try:
            for _ in range(a.idle_runs):
                for impl in (NVDP, NVIDIA):
                    runs.append(self.start(impl, "dgx-h100"))
            time.sleep(a.settle)
            before = [proc_cpu(r.proc.pid) for r in runs]
            time.sleep(a.idle)
            after = [proc_cpu(r.proc.pid) for r in runs]
            scale = 60.0 / a.idle
            for r, b, e in zip(runs, before, after):
                self.add("CPU while idle (utime+stime, per minute)", r.impl, (e[0] - b[0]) * scale / 1000.0)
                self.add("CPU while idle (schedstat, per minute)", r.impl, (e[1] - b[1]) * scale / 1e9)
        finally:
            for r in runs:
                r.stop()

    def stand_in_floor(self):
        """What the latency client costs by itself: the same calls against a null grpc-go server."""
        if not self.rpcbench:
            return
        clients = [("h2call", self.h2call), ("grpc-go client", self.rpcbench)]
        d = tempfile.mkdtemp(prefix="nvdp-bench-null-")
        sock = os.path.join(d, "null.sock")
        srv = subprocess.Popen([self.rpcbench, "null-server", sock])
        try:
            for _ in range(200):
                if os.path.exists(sock):
                    break
                time.sleep(0.01)
            ids = [f"GPU-{i}" for i in range(8)]
            for _ in range(self.a.runs):
                for name, c in clients:
                    if not c:
                        continue
                    out = subprocess.run([c, "allocate", sock, str(self.a.allocs // 5), "GPU-0"], check=True,
                                         capture_output=True, text=True).stdout
                    self.record_latency(f"stand-in floor: {name}, Allocate on a null grpc-go server", "floor",
                                        [int(x) / 1e9 for x in out.split()])
        finally:
            srv.terminate()
            srv.wait()
            shutil.rmtree(d, ignore_errors=True)
        # nvdp's own gRPC layer answering with no work (tests/helpers/rpc-test-server, /test.Test/Echo):
        # how much of nvdp's Allocate latency is transport, client and kernel.
        echo = os.path.join(self.a.build, "tests", "helpers", "rpc-test-server")
        if not (self.h2call and os.access(echo, os.X_OK)):
            return
        d = tempfile.mkdtemp(prefix="nvdp-bench-echo-")
        sock = os.path.join(d, "echo.sock")
        srv = subprocess.Popen([echo, sock], stdout=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if os.path.exists(sock):
                    break
                time.sleep(0.01)
            env = dict(os.environ, H2CALL_PATH="/test.Test/Echo")
            for _ in range(self.a.runs):
                out = subprocess.run([self.h2call, "allocate", sock, str(self.a.allocs // 5), "GPU-0"], check=True,
                                     capture_output=True, text=True, env=env).stdout
                self.record_latency("stand-in floor: h2call, echo on nvdp's gRPC layer (no handler work)",
                                    "floor", [int(x) / 1e9 for x in out.split()])
        finally:
            srv.terminate()
            srv.wait()
            shutil.rmtree(d, ignore_errors=True)

    def image(self):
        v = open(os.path.join(REPO, "VERSION")).read().strip()
        path = os.path.join(self.a.build, "image", f"nvdp-{v}.oci.tar")
        if os.path.exists(path):
            self.add("image size (compressed)", NVDP, os.path.getsize(path) / 2**20)
            self.image_path = os.path.relpath(path, REPO)
        self.add("binary size on disk", NVDP, os.path.getsize(self.nvdp) / 2**20)
        self.add("binary size on disk", NVIDIA, os.path.getsize(self.upstream) / 2**20)

    def go(self):
        a = self.a
        for i in range(a.runs):
            for impl in (NVDP, NVIDIA) if i % 2 == 0 else (NVIDIA, NVDP):
                log(f"run {i + 1}/{a.runs}: {impl}, 8 GPUs")
                self.run_main(impl)
                log(f"run {i + 1}/{a.runs}: {impl}, time-slicing 8x64")
                self.run_shared(impl, 64, "8x64")
                if not self.real or a.real_scale:
                    log(f"run {i + 1}/{a.runs}: {impl}, scale 8x128")
                    self.run_shared(impl, 128, "8x128")
                if not self.real:
                    log(f"run {i + 1}/{a.runs}: {impl}, A100 MIG mixed")
                    self.run_mig(impl)
        log(f"idle: {a.idle_runs} instances of each plugin for {a.idle:g} s")
        self.run_idle()
        log("stand-in floor")
        self.stand_in_floor()
        if not self.real:
            self.image()


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---- the report ----------------------------------------------------------------------------------
# metric prefix -> (unit, scale from the stored value, target for nvdp or None, "lower is better")
def unit_of(metric):
    if metric.startswith("RSS"):
        return "MiB", 1 / 1024.0, 4.0
    if "Register" in metric:
        return "ms", 1000.0, None
    if metric.startswith("first ListAndWatch") or metric.startswith("every MIG"):
        return "ms", 1000.0, 20.0
    if metric.startswith("XID"):
        return "ms", 1000.0, 50.0
    if metric.startswith("CPU while idle"):
        return "ms/min", 1000.0, 10.0
    if metric.startswith("image"):
        return "MiB", 1.0, 10.0
    if metric.startswith("binary"):
        return "MiB", 1.0, None
    if metric.startswith("stand-in floor"):
        return "us", 1e6, None
    if "grpc-go client" in metric:  # the client alone costs about the target: for reference only
        return "us", 1e6, None
    if "GetPreferredAllocation" in metric:
        return "us", 1e6, 1000.0 if metric.endswith(" p99") and not metric.startswith("stand-in") else None
    if "Allocate" in metric:
        return "us", 1e6, 200.0 if metric.endswith(" p99") and not metric.startswith("stand-in") else None
    return "", 1.0, None


def fmt(v):
    if v is None:
        return "n/a"
    if 0 < v < 1:
        return f"{v:.3f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summary(values, scale):
    vals = [v * scale for v in values if v is not None]
    if not vals:
        return None, "not available yet" if values else "n/a"
    med = statistics.median(vals)
    if len(vals) == 1:
        return med, fmt(med)
    return med, f"{fmt(med)} [{fmt(min(vals))}–{fmt(max(vals))}]"


def report(h, argv, started, published):
    a = h.a
    metrics = []
    for (m, _impl) in h.samples:
        if m not in metrics:
            metrics.append(m)
    lines = []
    lines.append("| figure | nvdp | NVIDIA v" + a.upstream_version + " | ratio | nvdp target | target met |")
    lines.append("|---|---|---|---|---|---|")
    missed_abs, missed_5x = [], []
    for m in metrics:
        if m.startswith("stand-in"):
            continue
        unit, scale, target = unit_of(m)
        ours_v, ours = summary(h.samples.get((m, NVDP), []), scale)
        theirs_v, theirs = summary(h.samples.get((m, NVIDIA), []), scale)
        if m.startswith("image") and published:
            theirs_v, theirs = published[0], f"{fmt(published[0])} (published, see below)"
        if ours_v is not None and theirs_v is not None and ours_v == 0 and theirs_v > 0:
            ratio, better = "∞ (nvdp: 0)", True
        elif ours_v and theirs_v is not None:
            ratio, better = f"{theirs_v / ours_v:.1f}x", theirs_v / ours_v >= 5
        else:
            ratio, better = "n/a", None
        met = []
        if target is not None and ours_v is None and ours == "not available yet":
            met.append("not measured")
        if target is not None and ours_v is not None:
            met.append("met" if ours_v < target else "MISSED")
            if ours_v >= target:
                missed_abs.append(m)
        if better is not None and not m.startswith("binary"):
            met.append("5x: met" if better else "5x: MISSED")
            if not better:
                missed_5x.append(m)
        tgt = f"< {fmt(target)} {unit}" if target is not None else ""
        lines.append(f"| {m} ({unit}) | {ours} | {theirs} | {ratio} | {tgt} | {', '.join(met) or '–'} |")
    floor = [m for m in metrics if m.startswith("stand-in")]
    if floor:
        lines.append("")
        lines.append("The latency clients' own cost: each against a grpc-go server that answers at once "
                     "(rpcbench null-server; an upper bound, as that server is itself grpc-go), and h2call "
                     "against nvdp's gRPC layer echoing (tests/helpers/rpc-test-server): transport, client and "
                     "kernel without any handler; median [min–max] over runs:")
        lines.append("")
        for m in floor:
            unit, scale, _ = unit_of(m)
            lines.append(f"- {m[len('stand-in floor: '):]}: {summary(h.samples[(m, 'floor')], scale)[1]} {unit}")
    return "\n".join(lines), (missed_abs, missed_5x)


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"nproc {os.cpu_count()}, {model}, kernel {platform.release()}, {platform.machine()}"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--build", default=os.environ.get("NVDP_BUILD", os.path.join(REPO, "build")))
    p.add_argument("--nvdp")
    p.add_argument("--upstream", required=True, help="NVIDIA's nvidia-device-plugin binary")
    p.add_argument("--upstream-version", default="0.19.1")
    p.add_argument("--rpcbench", help="the grpc-go latency client (bench/upstream/rpcbench)")
    p.add_argument("--h2call", help="the C latency client (bench/h2call.c)")
    p.add_argument("--nsexec")
    p.add_argument("--py-kubelet", action="store_true",
                   help="register with the grpcio stand-in even where rpcbench's grpc-go one is available")
    p.add_argument("--real", action="store_true", help="the real driver instead of the simulated node")
    p.add_argument("--real-scale", action="store_true", help="with --real: also the 8x128 replica run")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--runs", type=int)
    p.add_argument("--idle", type=float, help="seconds of idle CPU measurement (default 60, quick 5)")
    p.add_argument("--out", help="write the report (markdown) here")
    p.add_argument("--published-image", default=PUBLISHED_IMAGE, help="MiB,source of NVIDIA's published image size")
    a = p.parse_args()
    a.nvdp = a.nvdp or os.path.join(a.build, "nvdp")
    a.nsexec = a.nsexec or os.path.join(a.build, "bench", "nsexec")
    a.h2call = a.h2call or os.path.join(a.build, "bench", "h2call")
    if a.quick:
        a.runs = a.runs or 2
        a.idle = a.idle if a.idle is not None else 5.0
        a.allocs, a.prefers, a.shared_allocs, a.idle_runs, a.settle = 1000, 500, 500, 2, 0.3
    else:
        a.runs = a.runs or 5
        a.idle = a.idle if a.idle is not None else 60.0
        a.allocs, a.prefers, a.shared_allocs, a.idle_runs, a.settle = 5000, 2000, 2000, 3, 1.0
    a.xid_timeout = 2.0
    if os.geteuid() != 0:
        sys.exit("bench: needs root (a mount namespace per plugin, as the kubelet's socket directory is fixed)")
    published = None
    if a.published_image:
        mib, src = a.published_image.split(",", 1)
        published = (float(mib), src)

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    t0 = time.monotonic()
    h = Harness(a)
    h.go()
    table, misses = report(h, sys.argv, started, published)
    cmd = os.environ.get("BENCH_CMD") or " ".join(shlex.quote(x) for x in sys.argv)
    out = []
    out.append(f"# nvdp vs NVIDIA k8s-device-plugin v{a.upstream_version}\n")
    out.append(f"- run: {started}, {time.monotonic() - t0:.0f} s, {'quick' if a.quick else 'full'} mode, "
               f"{a.runs} runs of each plugin, alternating")
    out.append(f"- machine: {machine()}")
    out.append(f"- node: {'the real driver' if a.real else 'simulated (mock NVML: dgx-h100, a100-mig fixtures)'}")
    if h.h2call:
        lc = "h2call (C, libnghttp2, one connection, blocking calls one after another)"
    elif h.rpcbench:
        lc = "rpcbench (grpc-go, the kubelet's generated v1beta1 client, one connection)"
    else:
        lc = "the grpcio stand-in (Python; its own overhead dominates microsecond figures)"
    out.append(f"- kubelet stand-in (registration, ListAndWatch): {GoKubelet.name if h.go_kubelet else PyKubelet.name}")
    if h.h2call and h.rpcbench:
        lc += "; rows marked \"kubelet's grpc-go client\": rpcbench, the client stack the kubelet itself uses"
    out.append(f"- latency client: {lc}")
    out.append(f"- Allocate/GetPreferredAllocation: {a.allocs} calls per kind per run ({a.prefers} preferred, "
               f"{a.shared_allocs} for the replica and MIG runs); idle: {a.idle_runs} instances of each for {a.idle:g} s")
    out.append(f"- command: `{cmd}`")
    out.append("")
    out.append("Each cell: median [min–max] over runs (latencies: the run's own p50/p99 over its calls). "
               "Ratio: NVIDIA / nvdp (higher is better for nvdp).")
    out.append("")
    out.append(table)
    if published:
        out.append("")
        out.append(f"NVIDIA image size: {published[0]:g} MiB, {published[1]}")
    if h.notes:
        out.append("")
        out.extend("- " + n for n in h.notes)
    if getattr(h, "mig_resources", None):
        out.append("")
        out.append("MIG mixed resources (last run): " + ", ".join(h.mig_resources))
    missed_abs, missed_5x = misses
    out.append("")
    out.append("nvdp's absolute targets missed: " + ("; ".join(missed_abs) or "none") + ".")
    out.append("")
    out.append(f"5x better than NVIDIA's: {len(missed_5x)} figures short of it: " + ("; ".join(missed_5x) or "none")
               + ". Why, and what was profiled: docs/bench.md.")
    text = "\n".join(out) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
