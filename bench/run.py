#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""nvdp and NVIDIA's k8s-device-plugin side by side, in one invocation, on the same node, with the same
kubelet stand-in and clients; see docs/bench.md.

Each plugin runs in a mount namespace of its own (bench/nsexec) in which /var/lib/kubelet/device-plugins is
a scratch directory of this run, where the kubelet stand-in (rpcbench kubelet: grpc-go and the kubelet's
generated client) listens. Runs alternate: nvdp, NVIDIA, NVIDIA, nvdp, ... The latency floor is measured in
the same run: the same requests to a server on nvdp's stack that answers with nvdp's own reply bytes and
does no work (floor-nvdp), and to one on grpc-go answering with NVIDIA's (floor-grpcgo).

Needs only python3 (matplotlib for the plots; without it the report says so, and --from-json redraws them
on another machine from the JSON the run leaves next to the report).
"""
import argparse
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURES = os.path.join(REPO, "mock", "nvml", "fixtures")
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
from migminors import mig_minors  # noqa: E402
NVDP, NVIDIA = "nvdp", "NVIDIA"
FLOOR_NVDP, FLOOR_GRPCGO = "floor-nvdp", "floor-grpcgo"
FLOOR_OF = {NVDP: FLOOR_NVDP, NVIDIA: FLOOR_GRPCGO}
ALLOCATE, PREFERRED = "/v1beta1.DevicePlugin/Allocate", "/v1beta1.DevicePlugin/GetPreferredAllocation"
# NVIDIA's image is not built here; its size is the one published for it. Found with a search of public
# pages: NVIDIA's own registry pages (nvcr.io / NGC, ghcr.io) were not in the index with sizes.
PUBLISHED_IMAGE = ("49.5,for nvcr.io/nvidia/k8s-device-plugin v0.19.x: 51.93 MB (10^6 bytes) compressed, "
                   "linux/amd64, v0.19.3, as listed on Docker Hub for a mirror of it "
                   "(https://hub.docker.com/r/aipity/k8s-device-plugin/tags); v0.17.x images (CUDA base) "
                   "were listed at 176-235 MB. nvdp's figure is the size of its OCI archive.")
# The scale points: devices advertised; on the simulated node 8 GPUs (dgx-h100) with time-slicing replicas,
# and the 16x7 MIG node. On a real host the replicas are devices / GPUs.
SCALE_DEVICES = (8, 64, 256, 1024)
SCALE_ALLOCATE = (1, 8, 64)
SCALE_PREFERRED = (1, 4, 16)
MIG_FIXTURE, MIG_RESOURCE = "mig-16x7", "nvidia.com/mig-1g.10gb"

MODES = {
    # runs, Allocates per kind, preferred calls, grpc-go client calls, replica/MIG calls, scale calls at most,
    # seconds per scale cell, idle seconds, idle instances of each, settle seconds
    "full": dict(runs=5, allocs=5000, prefers=2000, go_calls=1000, shared=2000, scale_max=2000, scale_budget=1.5,
                 idle=300.0, idle_runs=3, settle=1.0),
    "quick": dict(runs=2, allocs=1000, prefers=500, go_calls=200, shared=500, scale_max=300, scale_budget=0.4,
                  idle=30.0, idle_runs=2, settle=0.3),
    "smoke": dict(runs=1, allocs=40, prefers=20, go_calls=10, shared=20, scale_max=10, scale_budget=0.05,
                  idle=1.0, idle_runs=1, settle=0.1),
}


# ---- small helpers -------------------------------------------------------------------------------
def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


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
    ms = (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")
    ns = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return ms, ns


SYSTEM_LIBS = re.compile(r"/(ld-linux[^/]*|lib(c|m|dl|pthread|rt|resolv|gcc_s|stdc\+\+)[.-][^/]*)$")


def smaps_split(pid, binary):
    """RSS in KiB by kind of mapping: the plugin's binary, NVML (its library and the driver's device
    mappings), the system libraries (libc, ld.so, ...), the heap, the stack, other anonymous memory."""
    res = {k: 0 for k in ("binary", "NVML", "system libraries", "heap", "stack", "anonymous", "other files")}
    binary = os.path.realpath(binary)
    kind = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+$", parts[0]):
                path = parts[5] if len(parts) > 5 else ""
                if path == binary:
                    kind = "binary"
                elif "libnvidia-ml" in path or path.startswith("/dev/nvidia"):
                    kind = "NVML"
                elif SYSTEM_LIBS.search(path):
                    kind = "system libraries"
                elif path == "[heap]":
                    kind = "heap"
                elif path == "[stack]":
                    kind = "stack"
                elif not path or path.startswith("[anon"):
                    kind = "anonymous"
                else:
                    kind = "other files"
            elif parts[0] == "Rss:" and kind:
                res[kind] += int(parts[1])
    return res


def wait_for(predicate, timeout, step=0.005):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


class GoKubelet:
    """The kubelet stand-in on the kubelet's own client stack (rpcbench kubelet: grpc-go and the generated
    k8s.io/kubelet v1beta1 code). On Register it does what the kubelet does (dial the plugin,
    GetDevicePluginOptions, start ListAndWatch, then answer); it reports each event with its
    CLOCK_MONOTONIC time, and each list with its size in bytes."""
    name = "rpcbench kubelet (grpc-go, k8s.io/kubelet v1beta1)"

    def __init__(self, rpcbench, directory):
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
        """[(monotonic time, [(id, health)], size in bytes)] received so far on that resource's stream."""
        with self.cond:
            return [(e["t"] / 1e9, [tuple(d) for d in e["devs"]], e.get("size", 0)) for e in self.events
                    if e["ev"] == "list" and e["res"] == resource]

    def wait(self, predicate, timeout):
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def sharing_config(replicas):
    if not replicas or replicas == 1:
        return None
    return ("version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
            f"    - name: nvidia.com/gpu\n      replicas: {replicas}\n")


class Run:
    """One plugin process on the (simulated or real) node, registered with its own kubelet stand-in."""

    def __init__(self, h, impl, fixture, args=(), config=None, resources=1):
        self.h, self.impl = h, impl
        self.dir = tempfile.mkdtemp(prefix=f"nvdp-bench-{impl}-")
        os.chmod(self.dir, 0o700)
        self.kubelet = GoKubelet(h.rpcbench, self.dir)
        self.events = os.path.join(self.dir, "nvml-events")
        self.binary = h.nvdp if impl == NVDP else h.upstream
        env = dict(os.environ)
        binds = []
        if not h.real:
            env.update(h.mock_env(fixture))
            env["MOCK_NVML_EVENTS"] = self.events
            os.mkfifo(self.events)
            # What NVIDIA's plugin reads at fixed host paths, as the simulated node has it: the fixture's
            # sysfs (NUMA nodes; nvdp reads the same tree through NVDP_ROOT) and the driver's MIG
            # capability minors (/proc/driver/nvidia-caps/mig-minors, as the driver writes it).
            procdir = os.path.join(self.dir, "proc-driver")
            os.makedirs(os.path.join(procdir, "nvidia-caps"))
            with open(os.path.join(procdir, "nvidia-caps", "mig-minors"), "w") as f:
                f.write(mig_minors(16))
            binds += ["-b", procdir, "/proc/driver",
                      "-b", os.path.join(FIXTURES, fixture + ".root", "sys", "bus", "pci", "devices"),
                      "/sys/bus/pci/devices"]
        argv = [self.binary] + (["plugin"] if impl == NVDP else []) + list(args)
        if config:
            path = os.path.join(self.dir, "config.yaml")
            with open(path, "w") as f:
                f.write(config)
            argv += ["--config-file", path]
        self.stamp = os.path.join(self.dir, "exec-time")
        self.log_path = os.path.join(self.dir, "plugin.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([h.nsexec] + binds + [self.dir, self.stamp] + argv, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.resources = resources
        self.allocates = 0

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
        with open(self.stamp) as f:
            t0 = int(f.read()) / 1e9
        regs = k.registered()
        firsts = [k.lists(res)[0][0] for res, _, _ in regs]
        self.first_register = min(t for _, _, t in regs) - t0
        self.first_list = min(firsts) - t0
        self.all_lists = max(firsts) - t0
        return self.first_list

    def socket(self, resource):
        for res, ep, _ in self.kubelet.registered():
            if res == resource:
                return os.path.join(self.dir, ep)
        raise KeyError(resource)

    def resources_registered(self):
        return sorted({res for res, _, _ in self.kubelet.registered()})

    def devices(self, resource):
        return [i for i, _ in self.kubelet.lists(resource)[-1][1]]

    def list_size(self, resource):
        return self.kubelet.lists(resource)[0][2]

    def rss_kib(self):
        return proc_rss_kib(self.proc.pid)

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-4000:]

    def stop(self):
        """SIGTERM; returns the seconds until the plugin had exited."""
        took = None
        if self.proc.poll() is None:
            t = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
                took = time.monotonic() - t
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        with open(self.log_path, errors="replace") as f:
            for line in f:  # klog's E/W lines (both plugins): worth a look, once each
                if not (line[:1] in "EW" and line[1:5].isdigit()) or "XID 79" in line:  # the bench's own XID
                    continue
                self.h.note(f"{self.impl} logged: {line.split('] ', 1)[-1].strip()[:300]}")
        self.kubelet.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return took


class Server:
    """A floor server (floor-nvdp or floor-grpcgo) answering each method with fixed reply bytes."""

    def __init__(self, binary, replies):
        self.dir = tempfile.mkdtemp(prefix="nvdp-bench-floor-")
        self.sock = os.path.join(self.dir, "floor.sock")
        args = []
        for i, (method, reply) in enumerate(replies.items()):
            path = os.path.join(self.dir, f"reply-{i}")
            with open(path, "wb") as f:
                f.write(reply)
            args.append(f"{method}={path}")
        self.proc = subprocess.Popen([binary, self.sock] + args, stdout=subprocess.PIPE)
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"{binary} did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- the measurements ----------------------------------------------------------------------------
class Harness:
    def __init__(self, a):
        self.a = a
        self.real = a.real
        self.nvdp, self.upstream = a.nvdp, a.upstream
        self.nsexec, self.h2call, self.rpcbench = a.nsexec, a.h2call, a.rpcbench
        self.floor_nvdp, self.floor_grpcgo, self.nvml_hold = a.floor_nvdp, a.floor_grpcgo, a.nvml_hold
        self.mock_dir = os.path.join(a.build, "mock-nvml")
        self.samples = {}  # (metric, impl) -> [value per run]
        self.scale = {}    # (figure, devices, impl) -> [value per run]
        self.notes = []
        self.replies = {}  # (impl, kind) -> reply bytes, for the floor servers
        self.n_gpus = None

    def mock_env(self, fixture):
        return {"LD_LIBRARY_PATH": self.mock_dir, "MOCK_NVML_FIXTURE": os.path.join(FIXTURES, fixture + ".yaml"),
                "NVDP_ROOT": os.path.join(FIXTURES, fixture + ".root")}

    def note(self, text):
        if text not in self.notes and len(self.notes) < 40:
            self.notes.append(text)

    def add(self, metric, impl, value):
        self.samples.setdefault((metric, impl), []).append(value)

    def add_scale(self, figure, devices, impl, value):
        self.scale.setdefault((figure, devices, impl), []).append(value)

    def calls(self, sock, kind, n, ids, size=0, client=None, dump=None):
        """Per-call seconds for n calls on one connection, made by h2call (C, nghttp2) unless told
        otherwise (rpcbench: the kubelet's grpc-go client). dump: a file for the first reply's message."""
        argv = [client or self.h2call, kind, sock, str(n)] + ([str(size)] if kind == "preferred" else []) \
            + [",".join(ids)]
        env = dict(os.environ, H2CALL_DUMP=dump) if dump else None
        out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600, env=env).stdout
        return [int(x) / 1e9 for x in out.split()]

    def reply(self, sock, kind, ids, size=0):
        with tempfile.NamedTemporaryFile(prefix="nvdp-bench-reply-") as f:
            self.calls(sock, kind, 1, ids, size, dump=f.name)
            return f.read()

    def timed(self, run, metric, impl, resource, kind, n, ids, size=0, client=None):
        """calls() plus the plugin's own CPU time per call (schedstat of its threads): what a call costs
        the node, which scheduling noise on a busy machine does not inflate."""
        before = proc_cpu(run.proc.pid)[1]
        lat = self.calls(run.socket(resource), kind, n, ids, size, client)
        after = proc_cpu(run.proc.pid)[1]
        self.record_latency(metric, impl, lat)
        self.add(metric + ", plugin CPU per call", impl, (after - before) / 1e9 / (len(lat) + 1))
        run.allocates += len(lat) + 1 if kind == "allocate" else 0
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

    # The main scenario: every GPU of the node (simulated: 8 H100s), default flags; then the floors.
    def run_main(self, impl):
        a = self.a
        r = self.start(impl, "dgx-h100")
        res = "nvidia.com/gpu"
        try:
            self.add("first ListAndWatch after start", impl, r.first_list)
            self.add("  of which: Register reached the stand-in", impl, r.first_register)
            time.sleep(a.settle)
            self.add("RSS after start", impl, r.rss_kib())
            for kind, kib in smaps_split(r.proc.pid, r.binary).items():
                self.add(f"RSS after start: {kind}", impl, kib)
            gpus = r.devices(res)
            self.n_gpus = len(gpus)
            sock = r.socket(res)
            for key, kind, ids, size, metric in self.main_calls(gpus):
                self.replies[(impl, key)] = self.reply(sock, kind, ids, size)
                self.timed(r, metric, impl, res, kind, a.allocs if kind == "allocate" else a.prefers, ids, size)
            self.timed(r, "Allocate 1 GPU, kubelet's grpc-go client", impl, res, "allocate", a.go_calls, gpus[:1],
                       client=self.rpcbench)
            time.sleep(a.settle)
            self.add(f"RSS after {r.allocates:,} Allocates", impl, r.rss_kib())
            if not self.real:
                self.xid(r, impl, res, gpus[-1], "XID 79 to Unhealthy on the stream")
        finally:
            self.add("SIGTERM to exit", impl, r.stop())
        self.run_floor(impl, gpus)

    def main_calls(self, gpus):
        """(key, kind, ids, size, metric) of the main scenario's latency loops."""
        n = len(gpus)
        return [("alloc1", "allocate", gpus[:1], 0, "Allocate 1 GPU"),
                ("allocN", "allocate", gpus, 0, f"Allocate {n} GPUs"),
                ("prefer", "preferred", gpus, min(4, n), f"GetPreferredAllocation {min(4, n)} of {n}")]

    def run_floor(self, impl, gpus):
        """The same requests to the plugin's own stack answering its own reply bytes with no work."""
        floor = FLOOR_OF[impl]
        binary = self.floor_nvdp if impl == NVDP else self.floor_grpcgo
        for key, kind, ids, size, metric in self.main_calls(gpus):
            s = Server(binary, {ALLOCATE if kind == "allocate" else PREFERRED: self.replies[(impl, key)]})
            try:
                n = self.a.allocs if kind == "allocate" else self.a.prefers
                self.record_latency(metric, floor, self.calls(s.sock, kind, n, ids, size))
                if key == "alloc1":
                    self.record_latency("Allocate 1 GPU, kubelet's grpc-go client", floor,
                                        self.calls(s.sock, kind, self.a.go_calls, ids, client=self.rpcbench))
            finally:
                s.stop()

    def xid(self, r, impl, res, device, metric, scale_devices=None):
        """An XID 79 on the device's GPU (or MIG device) to the first list that shows it Unhealthy."""
        k = r.kubelet
        n = len(k.lists(res))
        uuid = device.split("::")[0]

        def seen():
            return [lt for lt, devs, _ in k.lists(res)[n:]
                    if any(i.split("::")[0] == uuid and health == "Unhealthy" for i, health in devs)]
        value = None
        try:
            fd = os.open(r.events, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nothing reads the FIFO: the plugin has no NVML session open now
            self.note(f"{impl}: no NVML session open to deliver the XID to ({metric}, {device})")
        else:
            t = time.monotonic()
            os.write(fd, f"xid {uuid} 79\n".encode())
            os.close(fd)
            if k.wait(lambda: bool(seen()), self.a.xid_timeout):
                value = seen()[0] - t
        if scale_devices:
            self.add_scale(metric, scale_devices, impl, value)
        else:
            self.add(metric, impl, value)

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
            self.timed(r, "Allocate 1 MIG 1g.5gb", impl, res, "allocate", a.shared, r.devices(res)[:1])
            self.mig_resources = r.resources_registered()
        finally:
            r.stop()

    def scale_points(self):
        """(devices, label, fixture, args, config, resource) of each scale point."""
        pts = []
        gpus = self.n_gpus or 8
        for d in SCALE_DEVICES:
            if d % gpus:
                continue
            replicas = d // gpus
            pts.append((d, f"{gpus}x{replicas}" if replicas > 1 else f"{gpus} GPUs", "dgx-h100", [],
                        sharing_config(replicas), "nvidia.com/gpu"))
        if not self.real:
            pts.append((112, "16x7 MIG", MIG_FIXTURE, ["--mig-strategy", "mixed"], None, MIG_RESOURCE))
        return pts

    def scale_calls(self, run, sock, kind, ids, size):
        """(per-call seconds, the plugin's CPU seconds per call): as many calls as fit the mode's time budget
        per cell (at least 20, at most scale_max), so a plugin that takes milliseconds a call does not hold
        the run up."""
        a = self.a
        before = proc_cpu(run.proc.pid)[1]
        probe = self.calls(sock, kind, 3, ids, size)
        n = int(max(min(20, a.scale_max), min(a.scale_max, a.scale_budget / max(statistics.median(probe), 1e-6))))
        lat = self.calls(sock, kind, n, ids, size)
        cpu = (proc_cpu(run.proc.pid)[1] - before) / 1e9 / (len(probe) + len(lat) + 2)  # +1 uncounted call each
        return lat, cpu

    def run_scale(self, impl, point):
        a = self.a
        devices, label, fixture, args, config, res = point
        r = self.start(impl, fixture, args=args, config=config)
        try:
            ids = r.devices(res)
            if len(ids) != devices:
                self.note(f"{impl}: {len(ids)} devices listed at the scale point {label}, expected {devices}")
            self.add_scale("first ListAndWatch after start", devices, impl, r.first_list)
            self.add_scale("ListAndWatch message size", devices, impl, r.list_size(res))
            time.sleep(a.settle)
            self.add_scale("RSS after start", devices, impl, r.rss_kib())
            sock = r.socket(res)
            for k in SCALE_ALLOCATE:
                if k <= len(ids):
                    lat, _ = self.scale_calls(r, sock, "allocate", ids[:k], 0)
                    self.add_scale(f"Allocate {k} p99", devices, impl, pct(lat, 99))
            for k in SCALE_PREFERRED:
                if k <= len(ids):
                    lat, cpu = self.scale_calls(r, sock, "preferred", ids, k)
                    self.add_scale(f"GetPreferredAllocation {k} of all p99", devices, impl, pct(lat, 99))
                    self.add_scale(f"GetPreferredAllocation {k} of all p50", devices, impl, pct(lat, 50))
                    self.add_scale(f"GetPreferredAllocation {k} of all, plugin CPU per call", devices, impl, cpu)
            if not self.real:
                self.xid(r, impl, res, ids[-1], "XID 79 to Unhealthy on the stream", devices)
        finally:
            r.stop()

    def start_idle(self):
        """Idle instances of both plugins, started first and measured over the whole run: their own CPU
        time (schedstat) does not depend on what else the machine does meanwhile."""
        self.idle = []
        for _ in range(self.a.idle_runs):
            for impl in (NVDP, NVIDIA):
                self.idle.append(self.start(impl, "dgx-h100"))
        time.sleep(self.a.settle)
        self.idle_t0 = time.monotonic()
        self.idle_before = [proc_cpu(r.proc.pid) for r in self.idle]

    def finish_idle(self):
        try:
            rest = self.a.idle - (time.monotonic() - self.idle_t0)
            if rest > 0:
                log(f"idle: {rest:.0f} s more to reach the {self.a.idle:g} s window")
                time.sleep(rest)
            after = [proc_cpu(r.proc.pid) for r in self.idle]
            self.idle_window = time.monotonic() - self.idle_t0
            scale = 60.0 / self.idle_window
            for r, b, e in zip(self.idle, self.idle_before, after):
                self.add("CPU while idle (utime+stime, per minute)", r.impl, (e[0] - b[0]) * scale / 1000.0)
                self.add("CPU while idle (schedstat, per minute)", r.impl, (e[1] - b[1]) * scale / 1e9)
        finally:
            for r in self.idle:
                r.stop()

    def run_nvml_hold(self):
        """NVML's share of the memory: bench/nvml-hold's RSS with NVML loaded (and before, for reference)."""
        env = dict(os.environ)
        if not self.real:
            env.update(self.mock_env("dgx-h100"))
        p = subprocess.Popen([self.nvml_hold], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            if p.stdout.readline().strip() != "bare":
                raise RuntimeError("nvml-hold did not start")
            bare = proc_rss_kib(p.pid)
            p.stdin.write("\n")
            p.stdin.flush()
            if not p.stdout.readline().startswith("loaded"):
                raise RuntimeError("nvml-hold could not load NVML")
            time.sleep(self.a.settle)
            self.add("NVML's share: a process that only loads NVML (bench/nvml-hold)", "NVML", proc_rss_kib(p.pid))
            self.add("NVML's share: the same process before loading NVML", "NVML", bare)
        finally:
            p.stdin.close()
            p.wait()

    def image(self):
        v = open(os.path.join(REPO, "VERSION")).read().strip()
        path = os.path.join(self.a.build, "image", f"nvdp-{v}.oci.tar")
        if os.path.exists(path):
            self.add("image size (compressed)", NVDP, os.path.getsize(path) / 2**20)
        self.add("binary size on disk", NVDP, os.path.getsize(self.nvdp) / 2**20)
        self.add("binary size on disk", NVIDIA, os.path.getsize(self.upstream) / 2**20)

    def drop_page_cache(self):
        """RSS of a binary's text depends on how its pages came into the page cache: a file just written
        (copied to a GPU host, extracted from an image) is cached in large folios that a fault maps whole,
        up to 1 MiB more of nvdp's text here than when it is read by ordinary faults. Both plugins start
        from the latter: their binaries are dropped from the page cache once, before the first start."""
        os.sync()
        for f in (self.nvdp, self.upstream):
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def go(self):
        a = self.a
        self.drop_page_cache()
        log(f"idle: {a.idle_runs} instance(s) of each plugin, measured over the whole run (at least {a.idle:g} s)")
        self.start_idle()
        try:
            for i in range(a.runs):
                self.run_nvml_hold()
                for impl in (NVDP, NVIDIA) if i % 2 == 0 else (NVIDIA, NVDP):
                    log(f"run {i + 1}/{a.runs}: {impl}, every GPU, then its floor")
                    self.run_main(impl)
                    if not self.real:
                        log(f"run {i + 1}/{a.runs}: {impl}, A100 MIG mixed")
                        self.run_mig(impl)
                    for point in self.scale_points():
                        log(f"run {i + 1}/{a.runs}: {impl}, scale: {point[1]} ({point[0]} devices)")
                        self.run_scale(impl, point)
        finally:
            self.finish_idle()
        if not self.real:
            self.image()


# ---- the report ----------------------------------------------------------------------------------
def unit_of(metric, real):
    """(unit, scale from the stored value, nvdp's target or None)."""
    if metric.startswith("RSS") or metric.startswith("NVML's share"):
        return "MiB", 1 / 1024.0, 4.0 if metric.startswith("RSS after") and ":" not in metric else None
    if "Register" in metric:
        return "ms", 1000.0, None
    if metric.startswith("first ListAndWatch") or metric.startswith("every MIG"):
        return "ms", 1000.0, 20.0
    if metric.startswith("XID"):
        return "ms", 1000.0, 50.0
    if metric.startswith("SIGTERM"):
        return "ms", 1000.0, 100.0
    if metric.startswith("CPU while idle"):
        return "ms/min", 1000.0, (0.5 if real else 0.3) if "schedstat" in metric else None
    if metric.startswith("image"):
        return "MiB", 1.0, 10.0
    if metric.startswith("binary"):
        return "MiB", 1.0, None
    if metric.startswith("ListAndWatch message size"):
        return "KiB", 1 / 1024.0, None
    if "grpc-go client" in metric and "CPU" not in metric:  # the client alone costs about the target
        return "us", 1e6, None
    if "GetPreferredAllocation" in metric:
        return "us", 1e6, 1000.0 if metric.endswith(" p99") else None
    if "Allocate" in metric:
        return "us", 1e6, 200.0 if metric.endswith(" p99") else None
    return "", 1.0, None


def fmt(v):
    if v is None:
        return "n/a"
    if 0 < abs(v) < 1:
        return f"{v:.3f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
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


OVERHEAD_TARGET_US = 5.0  # nvdp's p50 over its own stack's floor
# (figure, devices, nvdp's target in the figure's unit)
SCALE_TARGETS = [("RSS after start", 1024, 4.0), ("GetPreferredAllocation 16 of all p99", 1024, 1000.0)]


class Report:
    def __init__(self, data):
        self.d = data
        self.real = data["meta"]["real"]
        self.samples = {(m, i): v for m, i, v in data["samples"]}
        self.scale = {(f, d, i): v for f, d, i, v in data["scale"]}
        self.missed = []

    def row(self, m, ours_values, theirs_values, target, unit, scale, judge=True, ratio=True):
        ours_v, ours = summary(ours_values, scale)
        theirs_v, theirs = summary(theirs_values, scale)
        r = ""
        if ratio and ours_v and theirs_v is not None:
            r = f"{theirs_v / ours_v:.1f}x"
        elif ratio and ours_v == 0 and theirs_v:
            r = "∞ (nvdp: 0)"
        met = ""
        if target is not None and judge:
            if ours_v is None:
                met = "not measured"
            else:
                met = "met" if ours_v <= target else "MISSED"
                if ours_v > target:
                    self.missed.append(f"{m.strip()} ({fmt(ours_v)} {unit}, target {fmt(target)})")
        tgt = f"≤ {fmt(target)} {unit}" if target is not None else ""
        return f"| {m} ({unit}) | {ours} | {theirs} | {r} | {tgt} | {met} |"

    def floor_row(self, metric, unit, scale, target):
        """nvdp's and NVIDIA's figure as floor + overhead, the floor being its own stack answering the same
        request with the same reply bytes and no work, measured in the same run."""
        cells = []
        over_med = None
        for impl in (NVDP, NVIDIA):
            plugin = self.samples.get((metric, impl), [])
            floor = self.samples.get((metric, FLOOR_OF[impl]), [])
            if not plugin or len(plugin) != len(floor):
                cells.append("n/a")
                continue
            over = [(p - f) * scale for p, f in zip(plugin, floor)]
            fl = statistics.median(floor) * scale
            o = statistics.median(over)
            spread = f" [{fmt(min(over))}–{fmt(max(over))}]" if len(over) > 1 else ""
            cells.append(f"{fmt(fl)} + {fmt(o)}{spread}")
            if impl == NVDP:
                over_med = o
        met = ""
        if target is not None and over_med is not None:
            met = "met" if over_med <= target else "MISSED"
            if over_med > target:
                self.missed.append(f"{metric}: overhead over the floor ({fmt(over_med)} {unit}, target "
                                   f"{fmt(target)})")
        tgt = f"overhead ≤ {fmt(target)} {unit}" if target is not None else ""
        return f"|   as floor + overhead ({unit}) | {cells[0]} | {cells[1]} |  | {tgt} | {met} |"

    def main_table(self):
        upstream = self.d["meta"]["upstream_version"]
        lines = [f"| figure | nvdp | NVIDIA v{upstream} | ratio NVIDIA/nvdp | nvdp target | target met |",
                 "|---|---|---|---|---|---|"]
        metrics = []
        for m, impl in self.samples:
            if impl in (NVDP, NVIDIA) and m not in metrics and not m.startswith("RSS after start:"):
                metrics.append(m)
        for m in metrics:
            unit, scale, target = unit_of(m, self.real)
            ours = self.samples.get((m, NVDP), [])
            theirs = self.samples.get((m, NVIDIA), [])
            if m.startswith("image") and self.d["meta"].get("published_image"):
                theirs = [self.d["meta"]["published_image"][0]]
            lines.append(self.row(m, ours, theirs, target, unit, scale))
            if (m, FLOOR_NVDP) in self.samples:
                lines.append(self.floor_row(m, unit, scale, OVERHEAD_TARGET_US if m.endswith(" p50") and
                                            "grpc-go" not in m else None))
        return "\n".join(lines)

    def rss_split(self):
        hold = self.samples.get(("NVML's share: a process that only loads NVML (bench/nvml-hold)", "NVML"))
        bare = self.samples.get(("NVML's share: the same process before loading NVML", "NVML"))
        if not hold:
            return ""
        share = statistics.median(hold)
        lines = ["| RSS after start, MiB | nvdp | NVIDIA | nvdp target |", "|---|---|---|---|"]
        totals = {impl: self.samples.get(("RSS after start", impl), []) for impl in (NVDP, NVIDIA)}
        ours = {impl: [v - share for v in totals[impl]] for impl in (NVDP, NVIDIA)}

        def cell(vals):
            return summary(vals, 1 / 1024.0)[1] if vals else "n/a"
        lines.append(f"| total | {cell(totals[NVDP])} | {cell(totals[NVIDIA])} | |")
        lines.append(f"| NVML's share: a process that loads NVML and nothing else (bench/nvml-hold) | "
                     f"{cell(hold)} | {cell(hold)} | |")
        ov, _ = summary(ours[NVDP], 1 / 1024.0)
        met = "" if ov is None else ("met" if ov <= 2.0 else "MISSED")
        if ov is not None and ov > 2.0:
            self.missed.append(f"RSS on top of NVML's share ({fmt(ov)} MiB, target 2.00)")
        lines.append(f"| the plugin's own: total minus NVML's share | {cell(ours[NVDP])} | {cell(ours[NVIDIA])} | "
                     f"≤ 2.00 MiB: {met} |")
        kinds = [m.split(": ", 1)[1] for m, impl in self.samples if m.startswith("RSS after start: ") and impl == NVDP]
        for k in kinds:
            lines.append(f"| smaps: {k} | {cell(self.samples.get(('RSS after start: ' + k, NVDP), []))} | "
                         f"{cell(self.samples.get(('RSS after start: ' + k, NVIDIA), []))} | |")
        text = "\n".join(lines)
        return (text + "\n\nNVML's share is the RSS of `bench/nvml-hold`, a process that loads NVML, initialises it, "
                f"takes every GPU's handle and UUID and watches their XIDs, and does nothing else ({cell(bare)} MiB "
                "before it loads NVML: libc and ld.so). The smaps rows split each plugin's own "
                "`/proc/<pid>/smaps` by mapping: its binary, NVML's library and the driver's device mappings, the "
                "system libraries (libc, ld.so, ...), heap, stack and other anonymous memory (thread stacks, "
                "NVML's and Go's allocations).")

    # ---- scale ---------------------------------------------------------------------------------------
    def scale_devices(self):
        return sorted({d for _, d, _ in self.scale})

    def scale_figures(self):
        """[(title, file stem, [(series label, figure key)], unit, scale)]"""
        figs = [("RSS after start", "rss", [("", "RSS after start")], "MiB", 1 / 1024.0),
                ("ListAndWatch message size", "list-size", [("", "ListAndWatch message size")], "KiB", 1 / 1024.0),
                ("first ListAndWatch after start", "list-time", [("", "first ListAndWatch after start")], "ms", 1e3)]
        if any(f.startswith("XID") for f, _, _ in self.scale):
            figs.append(("XID 79 to Unhealthy on the stream (the whole list sent again)", "xid",
                         [("", "XID 79 to Unhealthy on the stream")], "ms", 1e3))
        figs.append(("Allocate p99", "allocate", [(f"{k} devices", f"Allocate {k} p99") for k in SCALE_ALLOCATE],
                     "us", 1e6))
        figs.append(("GetPreferredAllocation p99, k of all devices", "preferred",
                     [(f"{k} of all", f"GetPreferredAllocation {k} of all p99") for k in SCALE_PREFERRED], "us", 1e6))
        figs.append(("GetPreferredAllocation p50, k of all devices", "preferred-p50",
                     [(f"{k} of all", f"GetPreferredAllocation {k} of all p50") for k in SCALE_PREFERRED], "us", 1e6))
        figs.append(("GetPreferredAllocation, the plugin's CPU time per call (schedstat), k of all devices",
                     "preferred-cpu", [(f"{k} of all", f"GetPreferredAllocation {k} of all, plugin CPU per call")
                                       for k in SCALE_PREFERRED], "us", 1e6))
        return figs

    def growth(self, key, impl, devs):
        """The exponent of the last step between replica points: log(v2/v1) / log(d2/d1); 1 is linear."""
        pts = [(d, summary(self.scale.get((key, d, impl), []), 1.0)[0]) for d in devs]
        pts = [(d, v) for d, v in pts if v]
        if len(pts) < 2:
            return None
        (d1, v1), (d2, v2) = pts[-2], pts[-1]
        return math.log(v2 / v1) / math.log(d2 / d1)

    def scale_section(self, plots_dir, stem):
        labels = self.d["meta"].get("scale_labels", {})
        devs = self.scale_devices()
        replica_devs = [d for d in devs if "MIG" not in labels.get(str(d), "")]
        out = []
        superlinear = []
        for title, fstem, series, unit, scale in self.scale_figures():
            if not any(f == key for f, _, _ in self.scale for _, key in series):
                continue
            lines = [f"#### {title} ({unit})", "",
                     "| devices | " + " | ".join(f"nvdp{(' ' + s) if s else ''} | NVIDIA{(' ' + s) if s else ''}"
                                                for s, _ in series) + " |",
                     "|---|" + "---|---|" * len(series)]
            for d in devs:
                cells = []
                for _, key in series:
                    for impl in (NVDP, NVIDIA):
                        cells.append(summary(self.scale.get((key, d, impl), []), scale)[1]
                                     if self.scale.get((key, d, impl)) else "–")
                lines.append(f"| {d} ({labels.get(str(d), '')}) | " + " | ".join(cells) + " |")
            for key, d, target in SCALE_TARGETS:
                if key in [k for _, k in series]:
                    v, _ = summary(self.scale.get((key, d, NVDP), []), scale)
                    verdict = "not measured" if v is None else ("met" if v <= target else "MISSED")
                    lines += ["", f"nvdp's target: {key} at {d} devices ≤ {fmt(target)} {unit}: {verdict}"
                              f"{'' if v is None else f' ({fmt(v)} {unit})'}."]
                    if v is not None and v > target:
                        self.missed.append(f"{key} at {d} devices ({fmt(v)} {unit}, target {fmt(target)})")
            exps = []
            for s, key in series:
                for impl in (NVDP, NVIDIA):
                    g = self.growth(key, impl, replica_devs)
                    if g is None:
                        continue
                    exps.append(f"{impl}{(' ' + s) if s else ''} {g:.2f}")
                    if g > 1.15:
                        superlinear.append(f"{title}{(', ' + s) if s else ''}: {impl} ({g:.2f})")
            if exps:
                lines += ["", f"Growth exponent of the last step ({replica_devs[-2]} → {replica_devs[-1]} devices; "
                          "1 is linear): " + ", ".join(exps) + "."]
            png = self.plot(plots_dir, stem, fstem, title, series, unit, scale, devs, labels)
            if png:
                lines += ["", f"![{title}]({png})"]
            out.append("\n".join(lines))
        text = "\n\n".join(out)
        if superlinear:
            self.missed.append("every scale curve at most linear in devices (" + "; ".join(
                x for x in superlinear if x.endswith(")") and f": {NVDP} (" in x) + ")")
        text += ("\n\nEvery curve at most linear in devices: " +
                 ("yes (no growth exponent above 1.15)." if not superlinear else
                  "no, above 1.15: " + "; ".join(superlinear) + " (docs/bench.md says why)."))
        return text

    def plot(self, plots_dir, stem, fstem, title, series, unit, scale, devs, labels):
        if not plots_dir:
            return None
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            self.d["meta"]["no_plots"] = "matplotlib is not installed where the report was written"
            return None
        os.makedirs(plots_dir, exist_ok=True)
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
        styles = {NVDP: "-", NVIDIA: "--"}
        markers = ["o", "s", "^"]
        mig = [d for d in devs if "MIG" in labels.get(str(d), "")]
        line_devs = [d for d in devs if d not in mig]
        for si, (s, key) in enumerate(series):
            color = f"C{si}"
            for impl in (NVDP, NVIDIA):
                pts = [(d, summary(self.scale.get((key, d, impl), []), scale)[0]) for d in line_devs]
                pts = [(d, v) for d, v in pts if v is not None]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], styles[impl], marker=markers[si % 3],
                            color=color, label=f"{impl}{(' ' + s) if s else ''}")
                for d in mig:
                    v = summary(self.scale.get((key, d, impl), []), scale)[0]
                    if v is not None:
                        ax.plot([d], [v], marker="*", markersize=12, linestyle="none", color=color,
                                markerfacecolor=color if impl == NVDP else "none")
        if mig:
            ax.plot([], [], marker="*", markersize=10, linestyle="none", color="gray",
                    label=f"{labels.get(str(mig[0]))} (filled: nvdp)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(devs)
        ax.set_xticklabels([str(d) for d in devs])
        ax.set_xlabel("devices advertised")
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        name = f"{stem}-{fstem}.png"
        fig.savefig(os.path.join(plots_dir, name))
        plt.close(fig)
        return os.path.join(os.path.basename(plots_dir), name)

    def render(self, plots_dir, stem):
        m = self.d["meta"]
        out = [f"# nvdp vs NVIDIA k8s-device-plugin v{m['upstream_version']}", ""]
        out.append(f"- run: {m['started']}, {m['seconds']:.0f} s, {m['mode']} mode, {m['runs']} runs of each plugin, "
                   "alternating")
        out.append(f"- machine: {m['machine']}")
        out.append(f"- node: {m['node']}")
        out.append(f"- kubelet stand-in (registration, ListAndWatch): {GoKubelet.name}")
        out.append("- latency client: h2call (C, libnghttp2, one connection, blocking calls one after another); rows "
                   "marked \"kubelet's grpc-go client\": rpcbench, the client stack the kubelet itself uses")
        out.append(f"- calls per run: {m['allocs']} per Allocate kind, {m['prefers']} preferred, {m['go_calls']} "
                   f"through grpc-go, {m['shared']} for the A100 MIG run; scale cells: as many as fit "
                   f"{m['scale_budget']} s, at least 20, at most {m['scale_max']}")
        out.append(f"- idle: {m['idle_runs']} instance(s) of each plugin, idle from start to end of the run "
                   f"({m.get('idle_window', 0):.0f} s) while the other runs went on: their own CPU time")
        out.append(f"- command: `{m['command']}`")
        out += ["", "Each cell: median [min–max] over runs (latencies: each run's own p50/p99 over its calls). "
                "\"as floor + overhead\": the same requests, in the same run, to a server on the plugin's own stack "
                "(nvdp: `bench/floor-nvdp.c` on nvdp's loop, HTTP/2 and gRPC code; NVIDIA: "
                "`bench/upstream/floor-grpcgo`, grpc-go) that answers with that plugin's reply bytes and does no "
                "work, then the plugin's figure minus it (median [min–max] of the per-run differences).", ""]
        out.append(self.main_table())
        split = self.rss_split()
        if split:
            out += ["", "### Memory: NVML's share and the plugin's own", "", split]
        out += ["", "### Cost as the node grows", "",
                "Devices advertised: " + ("the node's GPUs with time-slicing replicas" if self.real else
                                          "8 simulated H100s with time-slicing replicas (8 = no sharing), and "
                                          "16 A100s with 7 MIG devices each (`mock/nvml/fixtures/mig-16x7.yaml`, "
                                          "`--mig-strategy mixed`, shown as ★)") +
                ". Allocate asks for the first k devices of the list; GetPreferredAllocation for k out of every "
                "device. \"–\": the node has fewer devices than asked for.", ""]
        out.append(self.scale_section(plots_dir, stem))
        if m.get("no_plots"):
            out += ["", f"No plots: {m['no_plots']}; `bench/run.py --from-json` draws them from the JSON next to "
                    "this report."]
        if m.get("published_image"):
            out += ["", f"NVIDIA image size: {m['published_image'][0]:g} MiB, {m['published_image'][1]}"]
        if m.get("mig_resources"):
            out += ["", "MIG mixed resources (A100 MIG run): " + ", ".join(m["mig_resources"])]
        if self.d.get("notes"):
            out += [""] + ["- " + n for n in self.d["notes"]]
        out += ["", "nvdp's targets missed: " + ("; ".join(self.missed) or "none") +
                ". Why, and what was profiled: docs/bench.md."]
        return "\n".join(out) + "\n"


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


def gpu_names():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return None
    if not out:
        return None
    return f"{len(out)}x {out[0].split(',')[0].strip()} (driver {out[0].split(',')[-1].strip()})"


def write_report(data, out):
    stem = os.path.splitext(os.path.basename(out))[0] if out else None
    plots_dir = os.path.join(os.path.dirname(os.path.abspath(out)), "plots") if out else None
    text = Report(data).render(plots_dir, stem)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text)
        with open(os.path.splitext(out)[0] + ".json", "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.environ.get("NVDP_BUILD", os.path.join(REPO, "build")))
    p.add_argument("--nvdp")
    p.add_argument("--upstream", help="NVIDIA's nvidia-device-plugin binary")
    p.add_argument("--upstream-version", default="0.19.1")
    p.add_argument("--tools", help="where h2call, nsexec, floor-nvdp and nvml-hold are (default BUILD/bench)")
    p.add_argument("--rpcbench", help="the grpc-go kubelet stand-in and client (bench/upstream/rpcbench)")
    p.add_argument("--floor-grpcgo", help="the grpc-go floor server (bench/upstream/floor-grpcgo)")
    p.add_argument("--real", action="store_true", help="the real driver instead of the simulated node")
    p.add_argument("--mode", choices=sorted(MODES), default="full")
    p.add_argument("--runs", type=int)
    p.add_argument("--idle", type=float, help="seconds of idle CPU measurement (at least)")
    p.add_argument("--out", help="write the report (markdown) here, the data next to it (.json), plots in plots/")
    p.add_argument("--from-json", help="only write the report (and plots) from the data of an earlier run")
    p.add_argument("--published-image", default=PUBLISHED_IMAGE, help="MiB,source of NVIDIA's published image size")
    a = p.parse_args()
    if a.from_json:
        with open(a.from_json) as f:
            write_report(json.load(f), a.out)
        return

    cli_runs, cli_idle = a.runs, a.idle
    for k, v in MODES[a.mode].items():
        setattr(a, k, v)
    a.runs = cli_runs or a.runs
    a.idle = cli_idle if cli_idle is not None else a.idle
    a.xid_timeout = 2.0
    tools = a.tools or os.path.join(a.build, "bench")
    a.nvdp = a.nvdp or os.path.join(a.build, "nvdp")
    a.h2call, a.nsexec = os.path.join(tools, "h2call"), os.path.join(tools, "nsexec")
    a.floor_nvdp, a.nvml_hold = os.path.join(tools, "floor-nvdp"), os.path.join(tools, "nvml-hold")
    missing = [f for f in (a.nvdp, a.upstream, a.h2call, a.nsexec, a.floor_nvdp, a.nvml_hold, a.rpcbench,
                           a.floor_grpcgo) if not f or not os.access(f, os.X_OK)]
    if missing:
        sys.exit("bench: missing (make bench builds them): " + ", ".join(str(m) for m in missing))
    if os.geteuid() != 0:
        sys.exit("bench: needs root (a mount namespace per plugin, as the kubelet's socket directory is fixed)")

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    t0 = time.monotonic()
    h = Harness(a)
    h.go()
    node = "simulated (mock NVML: dgx-h100, a100-mig, mig-16x7 fixtures)"
    if a.real:
        node = "the real driver" + (f": {gpu_names()}" if gpu_names() else "")
    meta = dict(real=a.real, mode=a.mode, runs=a.runs, started=started, seconds=time.monotonic() - t0,
                machine=machine(), node=node, upstream_version=a.upstream_version,
                command=os.environ.get("BENCH_CMD") or " ".join(shlex.quote(x) for x in sys.argv),
                allocs=a.allocs, prefers=a.prefers, go_calls=a.go_calls, shared=a.shared, scale_max=a.scale_max,
                scale_budget=a.scale_budget, idle_runs=a.idle_runs, idle_window=getattr(h, "idle_window", 0),
                scale_labels={str(pt[0]): pt[1] for pt in h.scale_points()},
                mig_resources=getattr(h, "mig_resources", None))
    if a.published_image and not a.real:
        mib, src = a.published_image.split(",", 1)
        meta["published_image"] = (float(mib), src)
    data = dict(meta=meta, samples=[[m, i, v] for (m, i), v in h.samples.items()],
                scale=[[f, d, i, v] for (f, d, i), v in h.scale.items()], notes=h.notes)
    write_report(data, a.out)


if __name__ == "__main__":
    main()
