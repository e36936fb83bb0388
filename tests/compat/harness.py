# SPDX-License-Identifier: Apache-2.0
"""Runs NVIDIA's device plugin and GFD and nvdp's, one after the other, on the same simulated node, in the
same mount namespace layout, with the same flags, and reduces what each one says to comparable values.

Each run happens in a mount namespace of its own (bench/nsexec) in which the fixed host paths both programs
read are the simulated node's:
  /var/lib/kubelet/device-plugins   the case's scratch directory, where the grpcio kubelet stand-in listens
  /sys/bus/pci/devices              the fixture's sysfs tree (<fixture>.root/sys/bus/pci/devices)
  /proc/driver                      nvidia-caps/mig-minors as the driver writes it
  /dev                              device nodes of the node's GPUs (nvidiactl, nvidia-uvm, nvidia<minor>,
                                    nvidia-caps/) and the usual null, zero, random, urandom
  /run                              scratch: NVIDIA's plugin writes its CDI specs to /var/run/cdi
NVML is the simulated one (LD_LIBRARY_PATH); CDI strategies get a driver root holding the fixture's
driver libraries (--driver-root-ctr-path); MPS gets a stand-in nvidia-cuda-mps-control on PATH that
answers like a running control daemon. Paths are the same for both programs, so their answers can be
compared as they are.
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from conftest import Kubelet, PluginClient, pb  # noqa: E402  (the integration tests' grpcio kubelet)

import grpc  # noqa: E402

BUILD = os.environ.get("NVDP_BUILD", os.path.join(REPO, "build"))
NVDP = os.path.join(BUILD, "nvdp")
MOCK_DIR = os.path.join(BUILD, "mock-nvml")
NSEXEC = os.environ.get("NVDP_NSEXEC", os.path.join(BUILD, "bench", "nsexec"))
FIXTURES = os.path.join(REPO, "mock", "nvml", "fixtures")
NVIDIA_PLUGIN = os.environ.get("NVIDIA_PLUGIN", "")
NVIDIA_GFD = os.environ.get("NVIDIA_GFD", "")

UPSTREAM, OURS = "nvidia", "nvdp"


def fixture(name):
    with open(os.path.join(FIXTURES, name + ".yaml")) as f:
        return yaml.safe_load(f)


def fixture_names():
    return sorted(f[:-5] for f in os.listdir(FIXTURES) if f.endswith(".yaml"))


# ---- the simulated node's files ------------------------------------------------------------------------


def mknod(path, major, minor):
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))


MPS_CONTROL = """#!/bin/sh
# A stand-in for nvidia-cuda-mps-control talking to a running control daemon: reads one command, answers
# get_default_active_thread_percentage as a daemon started by NVIDIA's mps-control-daemon would.
read -r cmd || true
case "$cmd" in
get_default_active_thread_percentage*) echo 100.0 ;;
*) echo "$cmd" >> "$(dirname "$0")/mps-commands" ;;
esac
"""


class Node:
    """The scratch tree of one case: the same paths serve both programs, one after the other."""

    def __init__(self, fixture_name):
        self.fixture = fixture_name
        self.spec = fixture(fixture_name)
        self.root = tempfile.mkdtemp(prefix="nvdp-compat-")
        os.chmod(self.root, 0o755)
        self.plugins = os.path.join(self.root, "device-plugins")
        self.proc = os.path.join(self.root, "proc-driver")
        self.dev = os.path.join(self.root, "dev")
        self.run = os.path.join(self.root, "run")
        self.driver = os.path.join(self.root, "driver")
        self.bin = os.path.join(self.root, "bin")
        self.mps = os.path.join(self.root, "mps")
        self.mps_sockets = []
        for d in (self.plugins, self.run, self.bin, self.mps):
            os.makedirs(d)
        os.makedirs(os.path.join(self.proc, "nvidia-caps"))
        own = os.path.join(FIXTURES, fixture_name + ".root", "proc", "driver", "nvidia-caps", "mig-minors")
        with open(os.path.join(self.proc, "nvidia-caps", "mig-minors"), "w") as f:
            f.write(open(own).read() if os.path.exists(own) else mig_minors(len(self.spec["gpus"])))
        self._dev()
        self._driver()
        with open(os.path.join(self.bin, "nvidia-cuda-mps-control"), "w") as f:
            f.write(MPS_CONTROL)
        os.chmod(os.path.join(self.bin, "nvidia-cuda-mps-control"), 0o755)
        self.machine_type = os.path.join(FIXTURES, fixture_name + ".root", "sys", "class", "dmi", "id",
                                         "product_name")
        if not os.path.exists(self.machine_type):
            self.machine_type = os.path.join(self.root, "no-product-name")

    def _dev(self):
        os.makedirs(os.path.join(self.dev, "nvidia-caps"))
        for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                                   ("urandom", 1, 9), ("nvidiactl", 195, 255), ("nvidia-modeset", 195, 254),
                                   ("nvidia-uvm", 510, 0), ("nvidia-uvm-tools", 510, 1)):
            mknod(os.path.join(self.dev, name), major, minor)
        for g in self.spec["gpus"]:
            mknod(os.path.join(self.dev, f"nvidia{g.get('minor', 0)}"), 195, g.get("minor", 0))
        for minor in range(1, 3 + 15 * 9 * len(self.spec["gpus"])):
            mknod(os.path.join(self.dev, "nvidia-caps", f"nvidia-cap{minor}"), 511, minor)

    def _driver(self):
        """What both CDI spec generators look for under the driver root: the driver's libraries (named by
        the driver version; nvdp also reads their ELF SONAME, so they are real shared objects, empty) and
        its device nodes."""
        lib = os.path.join(self.driver, "usr", "lib", "x86_64-linux-gnu")
        os.makedirs(lib)
        for name in ("libcuda.so", "libnvidia-ml.so"):
            subprocess.run([os.environ.get("CC", "cc"), "-shared", "-nostdlib", f"-Wl,-soname,{name}.1", "-o",
                            os.path.join(lib, f"{name}.{self.spec['driver_version']}"), "-x", "c", "/dev/null"],
                           check=True)
        os.symlink(self.dev, os.path.join(self.driver, "dev"))

    def reset(self):
        """Between the two programs: nothing one left behind is seen by the other."""
        for sock in self.mps_sockets:
            sock.close()
        self.mps_sockets = []
        for d in (self.plugins, self.run, self.mps):
            shutil.rmtree(d)
            os.makedirs(d)

    def mps_daemons_ready(self, config):
        """A running MPS control daemon for every resource the config shares with MPS, as each plugin checks
        for one before it registers the resource: NVIDIA's asks nvidia-cuda-mps-control (the stand-in on
        PATH answers), nvdp's looks for <mps root>/<resource>/.started and a listening pipe/control socket
        (docs/mps.md). The same state for both programs."""
        shared = (((yaml.safe_load(config or "") or {}).get("sharing") or {}).get("mps") or {}).get("resources")
        for r in shared or []:
            name = r["name"] if r["name"].startswith("nvidia.com/") else "nvidia.com/" + r["name"]
            pipe = os.path.join(self.mps, name, "pipe")
            os.makedirs(pipe)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(os.path.join(pipe, "control"))
            sock.listen(16)
            self.mps_sockets.append(sock)
            open(os.path.join(self.mps, name, ".started"), "w").close()

    def binds(self):
        sysfs = os.path.join(FIXTURES, self.fixture + ".root", "sys", "bus", "pci", "devices")
        return ["-b", self.proc, "/proc/driver", "-b", sysfs, "/sys/bus/pci/devices", "-b", self.dev, "/dev",
                "-b", self.run, "/run"]

    def env(self):
        e = dict(os.environ)
        e["LD_LIBRARY_PATH"] = MOCK_DIR
        e["MOCK_NVML_FIXTURE"] = os.path.join(FIXTURES, self.fixture + ".yaml")
        e["PATH"] = self.bin + ":" + e.get("PATH", "/usr/bin:/bin")
        for k in list(e):  # neither program may pick up this machine's settings
            if k in ("NVDP_ROOT", "CONFIG_FILE", "KUBECONFIG", "NODE_NAME", "MIG_STRATEGY") or k.startswith("GFD_"):
                del e[k]
        return e

    def close(self):
        for sock in self.mps_sockets:
            sock.close()
        shutil.rmtree(self.root, ignore_errors=True)


def nvidia_available():
    missing = [p for p in (NVIDIA_PLUGIN, NVIDIA_GFD, NSEXEC) if not p or not os.access(p, os.X_OK)]
    return not missing, "missing: " + ", ".join(missing or ["-"])


# ---- running the plugins -----------------------------------------------------------------------------
class PluginRun:
    """One plugin process in its namespace, registered with a grpcio kubelet in the case's directory."""

    def __init__(self, node, impl, args, config=None):
        self.node, self.impl = node, impl
        node.reset()
        node.mps_daemons_ready(config)
        argv = [NVIDIA_PLUGIN] if impl == UPSTREAM else [NVDP, "plugin"]
        argv += list(args)
        if config is not None:
            path = os.path.join(node.root, "config.yaml")
            with open(path, "w") as f:
                f.write(config)
            argv += ["--config-file", path]
        self.events = os.path.join(node.root, "nvml-events")
        if not os.path.exists(self.events):
            os.mkfifo(self.events)
        self.kubelet = Kubelet(node.plugins)
        self.log_path = os.path.join(node.root, f"{impl}.log")
        self.log = open(self.log_path, "w")
        env = node.env()
        env["MOCK_NVML_EVENTS"] = self.events
        self.proc = subprocess.Popen([NSEXEC] + node.binds() + [node.plugins, os.path.join(node.root, "stamp")] + argv,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def inject(self, line):
        """One event line for the simulated NVML (docs/mock-nvml.md), e.g. "xid <uuid> 79"."""
        fd = os.open(self.events, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def settle(self, timeout=15, quiet=0.5):
        """Waits until the plugin registered its resources (no new registration for `quiet` seconds) or
        exited. Returns the registrations, or None when it exited first."""
        deadline, last, seen = time.monotonic() + timeout, time.monotonic(), 0
        while time.monotonic() < deadline:
            n = len(self.kubelet.registrations)
            if n != seen:
                seen, last = n, time.monotonic()
            if self.proc.poll() is not None and n == 0:
                return None
            if n and time.monotonic() - last > quiet:
                break
            time.sleep(0.05)
        return [r for r, _ in self.kubelet.registrations]

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        try:
            self.kubelet.close()
        except Exception:
            pass
        return self.proc.returncode


def run_gfd(node, impl, args, config=None):
    """One oneshot GFD run: (exit status, labels dict or None, output)."""
    node.reset()
    out = os.path.join(node.run, "gfd-labels")
    argv = [NVIDIA_GFD] if impl == UPSTREAM else [NVDP, "gfd"]
    argv += ["--oneshot", "--no-timestamp", "--use-node-feature-api=false", "--output-file", out,
             "--machine-type-file", node.machine_type] + list(args)
    if config is not None:
        path = os.path.join(node.root, "config.yaml")
        with open(path, "w") as f:
            f.write(config)
        argv += ["--config-file", path]
    p = subprocess.run([NSEXEC] + node.binds() + [node.plugins, os.path.join(node.root, "stamp")] + argv,
                       env=node.env(), capture_output=True, text=True, timeout=60)
    labels = None
    if os.path.exists(out):
        labels = {}
        with open(out) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    labels[k] = v
    return p.returncode, labels, p.stdout + p.stderr


# ---- what is compared ---------------------------------------------------------------------------------
def norm_register(req):
    return {"version": req.version, "endpoint": req.endpoint,
            "get_preferred_allocation_available": req.options.get_preferred_allocation_available,
            "pre_start_required": req.options.pre_start_required}


def norm_list(msg):
    return sorted((d.ID, d.health, tuple(n.ID for n in d.topology.nodes) if d.HasField("topology") else None)
                  for d in msg.devices)


def norm_allocate(resp, unordered_ids=False):
    """A response as plain values. The CDI annotation key ends in a random UUID per response (upstream);
    the order of device specs is not compared (upstream's is random), nor with unordered_ids the order of
    IDs in NVIDIA_VISIBLE_DEVICES and of the per-ID mounts (upstream's index strategy walks a Go map)."""
    out = []
    for c in resp.container_responses:
        envs = dict(c.envs)
        if unordered_ids and "NVIDIA_VISIBLE_DEVICES" in envs:
            envs["NVIDIA_VISIBLE_DEVICES"] = ",".join(sorted(envs["NVIDIA_VISIBLE_DEVICES"].split(",")))
        mounts = [(m.container_path, m.host_path, m.read_only) for m in c.mounts]
        if unordered_ids:
            mounts.sort()
        ann = {}
        for k, v in c.annotations.items():
            if "_" in k and len(k.rsplit("_", 1)[1]) == 36:
                k = k.rsplit("_", 1)[0] + "_<uuid>"
            ann[k] = ",".join(sorted(v.split(","))) if unordered_ids else v
        # upstream collects the device nodes of the IDs through a Go map: their order is random; a node
        # listed more than once is reported apart
        specs = [(d.container_path, d.host_path, d.permissions) for d in c.devices]
        devices = sorted(set(specs))
        repeated = sorted({x[0] for x in specs if specs.count(x) > 1})
        out.append({"envs": envs, "mounts": mounts, "devices": devices, "devices-repeated": repeated,
                    "annotations": ann, "cdi_devices": [d.name for d in c.cdi_devices]})
    return out


def call(fn):
    """(value, None) or (None, (status code name, message))."""
    try:
        return fn(), None
    except grpc.RpcError as e:
        return None, (e.code().name, e.details())


# ---- upstream's metrics for GetPreferredAllocation (see docs/compat.md) --------------------------------
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import gpuallocator  # noqa: E402  (NVIDIA's whole-GPU measure: the one implementation of it in Python)
from migminors import mig_minors  # noqa: E402

_PAIR_SCORES = {}


def pair_scores(fixture_name):
    """go-gpuallocator's pair scores of a fixture node, from the simulated NVML's own answers
    (gpuallocator.node_pair_scores(nvml.read_node())), read in a child process: a process loads the
    simulated NVML, and so one fixture, once."""
    if fixture_name not in _PAIR_SCORES:
        code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import gpuallocator, nvml; "
                "s = gpuallocator.node_pair_scores(nvml.read_node(sys.argv[2])); "
                "print(json.dumps([[a, b, v] for (a, b), v in s.items()]))")
        env = dict(os.environ, MOCK_NVML_FIXTURE=os.path.join(FIXTURES, fixture_name + ".yaml"))
        p = subprocess.run([sys.executable, "-c", code, os.path.join(REPO, "tests", "lib"),
                            os.path.join(MOCK_DIR, "libnvidia-ml.so.1")], env=env, capture_output=True, text=True,
                           timeout=60, check=True)
        _PAIR_SCORES[fixture_name] = {(a, b): v for a, b, v in json.loads(p.stdout)}
    return _PAIR_SCORES[fixture_name]


class Scorer:
    """Scores a preferred allocation with upstream's own measure for that resource."""

    def __init__(self, fixture_name, spec, devices):
        self.scores = pair_scores(fixture_name)
        self.gpu_of = {}
        uuid_index = {g["uuid"]: i for i, g in enumerate(spec["gpus"])}
        for i, g in enumerate(spec["gpus"]):
            for m in g.get("mig_devices", []):
                uuid_index[m["uuid"]] = i
        self.devices = devices  # every ID of the resource
        self.whole = all(d.split("::")[0] in uuid_index and d.startswith("GPU-") and "::" not in d for d in devices)
        self.index = uuid_index

    def valid(self, answer, available, must, size):
        return (len(answer) == len(set(answer)) and set(answer) <= set(available) | set(must)
                and set(must) <= set(answer) and len(answer) == min(size, len(set(available) | set(must))))

    def score(self, answer, available, must):
        """Whole GPUs: the set's score (higher is better); replicas and MIG: minus the greedy cost."""
        if self.whole:
            return gpuallocator.set_score(self.scores, [self.index[d] for d in answer])
        total, unavail = {}, {}
        cand = set(available) - set(must)
        for d in self.devices:
            sd = d.split("::")[0]
            total[sd] = total.get(sd, 0) + 1
            unavail[sd] = unavail.get(sd, 0) + (d not in cand)
        cost = 0
        for d in answer:
            if d in must:
                continue
            sd = d.split("::")[0]
            cost += unavail[sd]
            unavail[sd] += 1
        return -cost


def preferred_requests(ids, seed):
    """A few requests the kubelet could make: everything available, random subsets, must-include."""
    rng = random.Random(seed)
    reqs = []
    for size in sorted({1, 2, 3, 4, len(ids) // 2, len(ids)}):
        if 0 < size <= len(ids):
            reqs.append((list(ids), [], size))
    for _ in range(6):
        avail = [i for i in ids if rng.random() < 0.6] or ids[:1]
        rng.shuffle(avail)
        must = rng.sample(avail, min(len(avail), rng.randint(0, 2)))
        size = rng.randint(max(1, len(must)), len(avail))
        reqs.append((avail, must, size))
    return reqs


# ---- intended differences -----------------------------------------------------------------------------
def load_intended():
    with open(os.path.join(HERE, "intended-differences.yaml")) as f:
        entries = yaml.safe_load(f) or []
    for e in entries:
        assert set(e) <= {"key", "ours", "theirs", "reason", "readme", "pending"}, e
        assert e.get("key") and e.get("reason") and e.get("readme"), f"incomplete entry: {e}"
        e["used"] = 0
    return entries


def glob(pattern, text):
    """'*' any run of characters, '?' one; everything else literal (values hold brackets)."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in str(pattern))
    return re.fullmatch(rx, str(text), re.S) is not None


def explain(entries, key, ours, theirs):
    for e in entries:
        if glob(e["key"], key) and (e.get("ours") is None or glob(e["ours"], ours)) and \
                (e.get("theirs") is None or glob(e["theirs"], theirs)):
            e["used"] += 1
            return e
    return None
