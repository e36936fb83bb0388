# SPDX-License-Identifier: Apache-2.0
"""What a pod in the cluster or a bad day on the node can do to the plugin (issue 20), each finding as
it was reproduced, with the bound the plugin now keeps:

- the metrics port hammered by one pod: /healthz probes stay answered, on the metrics port and on the
  loopback health listener that `nvdp healthz` (the chart's exec probe) asks;
- 64 silent connections on a resource socket: the kubelet still registers and allocates;
- large and unfinished requests: peak RSS under 16 MiB for one request and under 32 MiB for a mix, and
  RSS back near its idle value afterwards;
- a FIFO swapped in at the config path: the loop keeps answering, the reload fails with a reason.
"""
import os
import re
import socket
import struct
import subprocess
import threading
import time

import grpc
import pytest

from conftest import BUILD, NVDP, Kubelet, pb
from test_plugin import H100

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8


def sanitized():
    """RSS means nothing under ASan (shadow memory, quarantine)."""
    out = subprocess.run(["ldd", NVDP], capture_output=True, text=True).stdout
    return "libasan" in out or "/asan" in BUILD


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


def wait_log(plugin, pattern, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, plugin.output())
        if m:
            return m
        assert plugin.proc.poll() is None, plugin.output()
        time.sleep(0.02)
    raise AssertionError(f"no /{pattern}/ in the log:\n" + plugin.output())


# ---- a raw HTTP/2 client: what grpcio cannot do (stall, leave a message unfinished) -------------------

def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    """HPACK literal header field without indexing, new name, no Huffman (lengths < 127)."""
    n, v = name.encode(), value.encode()
    return bytes([0, len(n)]) + n + bytes([len(v)]) + v


class RawH2:
    """One HTTP/2 connection to a unix socket that keeps to flow control and reads what comes back."""

    def __init__(self, path, handshake=True):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(5)
        self.s.connect(path)
        self.buf = b""
        self.conn_window = 65535
        self.initial_window = 65535
        self.windows = {}
        self.closed = False
        self.goaway = False
        self.reset = set()  # streams the server reset
        self.next_stream = 1
        if handshake:
            self.s.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def pump(self, timeout=0.0):
        """Reads and handles what arrived (WINDOW_UPDATE, SETTINGS, PING, GOAWAY)."""
        self.s.settimeout(timeout if timeout > 0 else 0.000001)
        try:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                self.closed = True
            self.buf += chunk
        except (socket.timeout, BlockingIOError):
            pass
        except (ConnectionResetError, BrokenPipeError):
            self.closed = True
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + n:
                break
            t, fl, sid = self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = self.buf[9:9 + n]
            self.buf = self.buf[9 + n:]
            if t == SETTINGS and not fl & 1:
                for i in range(0, len(payload), 6):
                    key, val = struct.unpack(">HI", payload[i:i + 6])
                    if key == 4:
                        for k in self.windows:
                            self.windows[k] += val - self.initial_window
                        self.initial_window = val
                self.send(frame(SETTINGS, 1, 0))
            elif t == WINDOW_UPDATE:
                inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                if sid == 0:
                    self.conn_window += inc
                elif sid in self.windows:
                    self.windows[sid] += inc
            elif t == PING and not fl & 1:
                self.send(frame(PING, 1, 0, payload))
            elif t == GOAWAY:
                self.goaway = True
            elif t == RST_STREAM:
                self.reset.add(sid)

    def send(self, data):
        try:
            self.s.settimeout(5)
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def start(self, path):
        sid = self.next_stream
        self.next_stream += 2
        block = (literal(":method", "POST") + literal(":scheme", "http") + literal(":path", path) +
                 literal(":authority", "localhost") + literal("content-type", "application/grpc") +
                 literal("te", "trailers"))
        self.windows[sid] = self.initial_window
        self.send(frame(HEADERS, 4, sid, block))
        return sid

    def data(self, sid, data, end=False, timeout=10):
        """Sends data on stream sid as fast as the windows allow."""
        deadline = time.monotonic() + timeout
        off = 0
        while off < len(data) and not self.closed and not self.goaway and sid not in self.reset:
            room = min(self.conn_window, self.windows[sid], 16384, len(data) - off)
            if room <= 0:
                assert time.monotonic() < deadline, "the server never opened its window"
                self.pump(0.05)
                continue
            self.send(frame(DATA, 0, sid, data[off:off + room]))
            self.conn_window -= room
            self.windows[sid] -= room
            off += room
            self.pump()
        if end:
            self.send(frame(DATA, 1, sid))

    def close(self):
        self.s.close()


def grpc_message(msg):
    return b"\x00" + struct.pack(">I", len(msg)) + msg


def tiny_ids_request(size):
    """An AllocateRequest (packed, about size bytes) of one container holding 1-byte device IDs, and
    how many IDs it holds."""
    one = b"\x0a\x01x"  # devices_ids: "x"
    n = (size - 8) // len(one)
    inner = one * n
    return b"\x0a" + encode_varint(len(inner)) + inner, n


def encode_varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


# ---- 1. the metrics port hammered ---------------------------------------------------------------------

def healthz(port, source="127.0.0.1", timeout=5.0):
    """GET /healthz from source; (status, seconds) or (None, seconds) on a timeout or reset."""
    t0 = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: probe\r\nUser-Agent: kube-probe/1.34\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        m = re.match(rb"HTTP/1\.1 (\d+) ", got)
        return (int(m.group(1)) if m else None), time.monotonic() - t0
    except OSError:
        return None, time.monotonic() - t0
    finally:
        s.close()


class Hammer:
    """One pod (127.0.0.2) that opens silent connections to a port as fast as it is let in, holding
    each until the server closes it."""

    def __init__(self, port, rate=20.0):
        self.port = port
        self.rate = rate
        self.stop = threading.Event()
        self.opened = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        held = []
        while not self.stop.is_set():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind(("127.0.0.2", 0))
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            held.append(s)
            self.opened += 1
            time.sleep(1.0 / self.rate)
            # forget the ones the server closed (EOF), keep the rest silent and open
            alive = []
            for h in held:
                try:
                    if h.recv(1, socket.MSG_PEEK) == b"":
                        h.close()
                        continue
                except (BlockingIOError, OSError) as e:
                    if not isinstance(e, BlockingIOError):
                        h.close()
                        continue
                alive.append(h)
            held = alive
        for h in held:
            h.close()

    def close(self):
        self.stop.set()
        self.thread.join(5)


def probe_while_hammered(plugin, port, probe, seconds=6):
    """Runs probe() every 0.3 s for seconds while one pod hammers port; returns the probe results."""
    deadline = time.monotonic() + 5
    while healthz(port)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    hammer = Hammer(port)
    results = []
    try:
        time.sleep(1.0)  # the pod holds every slot it can get by now
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            results.append(probe())
            time.sleep(0.3)
    finally:
        hammer.close()
    assert hammer.opened > 100
    return results


def test_metrics_port_probes_stay_green_while_a_pod_hammers_it(kubelet, start_plugin):
    plugin = start_plugin(args=["--metrics-address", "127.0.0.1:0"])
    kubelet.wait_registrations(1)
    port = int(wait_log(plugin, r"Serving /metrics and /healthz on \S+ \(port (\d+)\)").group(1))
    # the kubelet's httpGet probe comes from the node (another peer than the pod), with a 5 s timeout
    probes = probe_while_hammered(plugin, port, lambda: healthz(port, timeout=5))
    failed = [p for p in probes if p[0] != 200 or p[1] > 1.0]
    print(f"{len(probes)} probes, {len(failed)} failed or slower than 1 s; slowest {max(p[1] for p in probes):.3f} s")
    assert not failed, f"{len(failed)} of {len(probes)} metrics-port probes failed or took > 1 s: {failed[:5]}"


def test_exec_probe_stays_green_while_a_pod_hammers_the_metrics_port(kubelet, start_plugin):
    plugin = start_plugin(args=["--metrics-address", "127.0.0.1:0", "--health-address", "127.0.0.1:0"])
    kubelet.wait_registrations(1)
    metrics = int(wait_log(plugin, r"Serving /metrics and /healthz on \S+ \(port (\d+)\)").group(1))
    health = int(wait_log(plugin, r"Serving /healthz on \S+ \(port (\d+)\) for probes").group(1))

    def probe():
        # the exec probe the chart uses: nvdp healthz against the loopback health listener
        t0 = time.monotonic()
        r = subprocess.run([NVDP, "healthz", "--address", f"127.0.0.1:{health}", "--timeout", "5s"],
                           capture_output=True, text=True, timeout=10)
        return r.returncode, r.stdout.strip(), time.monotonic() - t0

    execs = probe_while_hammered(plugin, metrics, probe)
    assert all(e[0] == 0 and e[1] == "ok" and e[2] < 2.0 for e in execs), execs


def test_healthz_verb_says_why_it_fails(kubelet, start_plugin, workdir):
    # nothing listens there: exit 1 and a sentence naming the address
    r = subprocess.run([NVDP, "healthz", "--address", "127.0.0.1:1", "--timeout", "2s"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "127.0.0.1:1" in r.stderr and "refused" in r.stderr.lower()
    # not registered (no kubelet answers): 503 and the plugin's reason, exit 1
    k = os.path.join(workdir, "nowhere", "kubelet.sock")
    os.makedirs(os.path.dirname(k))
    plugin = start_plugin(register=False, args=["--kubelet-socket", k, "--health-address", "127.0.0.1:0"])
    port = int(wait_log(plugin, r"Serving /healthz on \S+ \(port (\d+)\) for probes").group(1))
    r = subprocess.run([NVDP, "healthz"], env=dict(os.environ, HEALTH_ADDRESS=f"127.0.0.1:{port}"),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "503" in r.stderr and "not registered with the kubelet: nvidia.com/gpu" in r.stderr


# ---- 2. silent connections on a resource socket --------------------------------------------------------

def test_kubelet_registers_and_allocates_while_64_idle_connections_sit_on_its_socket(workdir, start_plugin):
    k = Kubelet(workdir)
    k.fail_with = "not yet"  # the first Register fails: the plugin retries, and the kubelet dials back then
    plugin = start_plugin()
    sock = os.path.join(workdir, "nvidia-gpu.sock")
    wait_log(plugin, r"Registering nvidia\.com/gpu with the kubelet .* failed")
    idle = []
    try:
        for _ in range(64):
            idle.append(RawH2(sock))  # preface and SETTINGS, then nothing
        for c in idle:
            c.pump(0.01)
        k.fail_with = None
        k.wait_registrations(1, timeout=20)
        client = k.client()
        client.wait_lists(1)
        resp = client.allocate([H100[5]])
        assert dict(resp.container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == H100[5]
        # more silent connections keep coming; the kubelet's connection (an open stream) stays
        for _ in range(64):
            idle.append(RawH2(sock))
        time.sleep(0.3)
        resp = client.allocate([H100[6]])
        assert dict(resp.container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == H100[6]
        assert client.stream_error is None
    finally:
        for c in idle:
            c.close()
        k.close()
    # the refusals are in the log, once for this peer however many there were
    lines = [l for l in plugin.output().splitlines() if f"pid {os.getpid()}" in l and "connection" in l]
    assert len(lines) == 1, lines


# ---- 3. memory --------------------------------------------------------------------------------------

def registered_plugin(kubelet, start_plugin):
    plugin = start_plugin()
    kubelet.wait_registrations(1)
    client = kubelet.client()
    client.wait_lists(1)
    return plugin, client


@pytest.mark.skipif(sanitized(), reason="RSS is meaningless under ASan")
@pytest.mark.parametrize("size", [(4 << 20) - 64, 1 << 20, 900 << 10])
def test_peak_rss_of_one_request_of_tiny_ids(kubelet, start_plugin, size):
    plugin, client = registered_plugin(kubelet, start_plugin)
    idle = status_kib(plugin.proc.pid, "VmRSS")
    request, n_ids = tiny_ids_request(size)
    call = client.channel.unary_unary("/v1beta1.DevicePlugin/Allocate")
    with pytest.raises(grpc.RpcError) as e:
        call(request, timeout=20)
    assert e.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT)
    peak = status_kib(plugin.proc.pid, "VmHWM")
    print(f"request {size} bytes ({n_ids} IDs): idle {idle} KiB, peak {peak} KiB, "
          f"after {status_kib(plugin.proc.pid, 'VmRSS')} KiB ({e.value.code().name})")
    assert peak < 16 * 1024, f"peak RSS {peak} KiB"
    resp = client.allocate([H100[1]])
    assert dict(resp.container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == H100[1]


@pytest.mark.skipif(sanitized(), reason="RSS is meaningless under ASan")
def test_peak_rss_of_unfinished_messages_and_stalled_streams(kubelet, start_plugin, workdir):
    plugin, client = registered_plugin(kubelet, start_plugin)
    pid = plugin.proc.pid
    sock = os.path.join(workdir, "nvidia-gpu.sock")
    idle = status_kib(pid, "VmRSS")
    conns = []
    # 8 connections, each with a message announced at 4 MiB and left unfinished one byte short
    for _ in range(8):
        c = RawH2(sock)
        c.pump(0.05)
        sid = c.start("/v1beta1.DevicePlugin/Allocate")
        c.data(sid, struct.pack(">BI", 0, 4 << 20) + b"\x0a" * ((4 << 20) - 1))
        conns.append(c)
    # 8 connections, each with 4 streams holding an unfinished message of 1 MiB (the request limit)
    for _ in range(8):
        c = RawH2(sock)
        c.pump(0.05)
        for _ in range(4):
            sid = c.start("/v1beta1.DevicePlugin/Allocate")
            c.data(sid, struct.pack(">BI", 0, 1 << 20) + b"\x0a" * ((1 << 20) - 1))
        conns.append(c)
    # 40 more connections, each with 100 ListAndWatch streams whose lists are never read
    for _ in range(40):
        c = RawH2(sock)
        c.pump(0.02)
        for _ in range(100):
            sid = c.start("/v1beta1.DevicePlugin/ListAndWatch")
            c.data(sid, grpc_message(b""), end=True)
        c.pump(0.01)
        conns.append(c)
    time.sleep(0.5)
    held = status_kib(pid, "VmRSS")
    # the kubelet is still served
    resp = client.allocate([H100[2]])
    assert dict(resp.container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == H100[2]
    for c in conns:
        c.close()
    deadline = time.monotonic() + 5
    while status_kib(pid, "VmRSS") > idle + 2048 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = status_kib(pid, "VmRSS")
    peak = status_kib(pid, "VmHWM")
    print(f"mix: idle {idle} KiB, held {held} KiB, peak {peak} KiB, after close {after} KiB")
    assert peak < 32 * 1024, f"peak RSS {peak} KiB"
    assert after < idle + 2048, f"RSS {after} KiB after the connections closed, {idle} KiB idle"


# ---- 4. a FIFO at the config path -------------------------------------------------------------------

def test_fifo_at_the_config_path_does_not_block_the_loop(kubelet, start_plugin, workdir):
    cfg = os.path.join(workdir, "config.yaml")
    with open(cfg, "w") as f:
        f.write("version: v1\nflags:\n  migStrategy: none\n")
    plugin = start_plugin(args=["--config-file", cfg, "--metrics-address", "127.0.0.1:0"])
    kubelet.wait_registrations(1)
    port = int(wait_log(plugin, r"Serving /metrics and /healthz on \S+ \(port (\d+)\)").group(1))
    tmp = cfg + ".fifo"
    os.mkfifo(tmp)
    os.rename(tmp, cfg)  # swapped in atomically, as a ConfigMap update would be
    wait_log(plugin, r"Configuration reload failed, keeping the running one: .*config\.yaml.*not a regular file")
    for _ in range(5):
        status, took = healthz(port, timeout=3)
        assert status == 200 and took < 1.0, (status, took)
    client = kubelet.client()
    resp = client.allocate([H100[0]])
    assert dict(resp.container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == H100[0]
    os.unlink(cfg)
