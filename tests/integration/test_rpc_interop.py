# SPDX-License-Identifier: Apache-2.0
"""Interop of src/rpc with a real gRPC implementation (grpcio, C core), both directions.

Server direction: build/tests/helpers/rpc-test-server serves test methods, grpcio is the client.
Client direction: a grpcio server plays the kubelet's Registration service, and
build/tests/helpers/rpc-test-client calls Register through rpc_client_call_start.
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
import pytest

BUILD = os.environ.get("NVDP_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SERVER = os.path.join(BUILD, "tests", "helpers", "rpc-test-server")
CLIENT = os.path.join(BUILD, "tests", "helpers", "rpc-test-client")
PROTO_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "proto")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture
def server(tmp_path):
    sock = str(tmp_path / "plugin.sock")
    p = subprocess.Popen([SERVER, sock], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    yield sock
    p.terminate()
    assert p.wait(timeout=5) == 0
    assert not os.path.exists(sock), "socket left behind after SIGTERM"


@pytest.fixture
def channel(server):
    ch = grpc.insecure_channel("unix:" + server)
    yield ch
    ch.close()


def unary(ch, name):
    return ch.unary_unary("/test.Test/" + name)  # no serializers: raw bytes


def stream(ch, name):
    return ch.unary_stream("/test.Test/" + name)


def test_socket_mode_is_0600(server):
    assert os.stat(server).st_mode & 0o777 == 0o600


def test_unary_echo(channel):
    assert unary(channel, "Echo")(b"hello", timeout=5) == b"hello"
    assert unary(channel, "Echo")(b"", timeout=5) == b""


def test_unary_big_messages(channel):
    # > 16 KiB and ~1 MiB: split over many DATA frames in both directions.
    for size in (16385, 100000, 1 << 20):
        msg = bytes(i % 251 for i in range(size))
        assert unary(channel, "Echo")(msg, timeout=10) == msg


def test_request_over_4mib_is_resource_exhausted(channel):
    with pytest.raises(grpc.RpcError) as e:
        unary(channel, "Echo")(b"x" * (4 * 1024 * 1024 + 1), timeout=10)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # the connection is still fine
    assert unary(channel, "Echo")(b"after", timeout=5) == b"after"


def test_server_stream(channel):
    msgs = list(stream(channel, "Stream")(b"5 20000", timeout=10))
    assert [len(m) for m in msgs] == [20000] * 5
    assert [m[:1] for m in msgs] == [b"a", b"b", b"c", b"d", b"e"]
    assert all(m == m[:1] * 20000 for m in msgs)


def test_server_stream_big_messages(channel):
    msgs = list(stream(channel, "Stream")(b"3 1048576", timeout=20))
    assert [len(m) for m in msgs] == [1048576] * 3


def test_status_and_message(channel):
    with pytest.raises(grpc.RpcError) as e:
        unary(channel, "Fail")("9 GPU-0 is gone: 100% \u00fcber".encode(), timeout=5)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert e.value.details() == "GPU-0 is gone: 100% \u00fcber"


def test_unknown_method_is_unimplemented(channel):
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/test.Test/Nope")(b"", timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/test.Test/Nope" in e.value.details()


def test_concurrent_calls_while_a_stream_is_open(channel):
    held = stream(channel, "Hold")(b"", timeout=30)
    assert next(held) == b"hello"
    # The kubelet keeps ListAndWatch open and runs Allocate etc. next to it on the same connection.
    calls = [unary(channel, "Slow").future(b"slow%d" % i, timeout=10) for i in range(20)]
    calls += [unary(channel, "Echo").future(b"e%d" % i, timeout=10) for i in range(20)]
    got = [c.result() for c in calls]
    assert got == [b"slow%d" % i for i in range(20)] + [b"e%d" % i for i in range(20)]
    held.cancel()
    # The Hold handler's close handler runs when the client resets the stream.
    for _ in range(50):
        if unary(channel, "Stats")(b"", timeout=5).startswith(b"closed=1 "):
            break
        time.sleep(0.05)
    assert unary(channel, "Stats")(b"", timeout=5) == b"closed=1 connections=1"


def test_stream_pushes_over_time_next_to_unary_calls(channel):
    # Like ListAndWatch: updates trickle out on an open stream while other calls come and go.
    ticks = stream(channel, "Tick")(b"10", timeout=10)
    got = []
    for i, m in enumerate(ticks):
        got.append(m)
        assert unary(channel, "Echo")(b"between %d" % i, timeout=5) == b"between %d" % i
    assert got == [b"tick-%d" % i for i in range(10)]


def test_more_calls_than_max_concurrent_streams(channel):
    # We advertise 100 streams; grpcio queues the rest. All 150 complete.
    calls = [unary(channel, "Slow").future(b"%d" % i, timeout=20) for i in range(150)]
    assert [c.result() for c in calls] == [b"%d" % i for i in range(150)]


def test_cancelled_tick_stream_runs_close_handler(channel):
    ticks = stream(channel, "Tick")(b"1000", timeout=10)
    assert next(ticks) == b"tick-0"
    ticks.cancel()
    time.sleep(0.1)  # a tick timer left behind would send on a freed call; ASan builds catch that
    assert unary(channel, "Echo")(b"fine", timeout=5) == b"fine"


def test_client_deadline_cancels_slow_call(channel):
    with pytest.raises(grpc.RpcError) as e:
        unary(channel, "Slow")(b"x", timeout=0.05)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(0.4)  # the server's timer would have fired by now: it must not touch the freed call
    assert unary(channel, "Echo")(b"alive", timeout=5) == b"alive"


def frames(data):
    """Splits raw HTTP/2 bytes into (type, flags, stream, payload)."""
    out = []
    while len(data) >= 9:
        n = int.from_bytes(data[:3], "big")
        if len(data) < 9 + n:
            break
        out.append((data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF, data[9 : 9 + n]))
        data = data[9 + n :]
    return out


def raw_session(path, payload, wait_eof=True):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall(payload)
    got = b""
    while wait_eof:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        got += chunk
    s.close()
    return frames(got)


SETTINGS, GOAWAY = 4, 7


@pytest.mark.parametrize(
    "payload",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not HTTP/2 at all
        b"\x00" * 64,  # garbage
        PREFACE + b"\x00\x00\x00\x01\x04\x00\x00\x00\x01" + b"\x00" * 9,  # HEADERS before SETTINGS
        PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\x00\x40\x01\x04\x00\x00\x00\x00\x00",  # frame > 16384
        PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x00" * 5,  # SETTINGS length not a multiple of 6
    ],
    ids=["http1", "zeros", "headers-first", "oversized-frame", "bad-settings"],
)
def test_protocol_breakers_get_goaway_and_others_keep_working(channel, server, payload):
    held = stream(channel, "Hold")(b"", timeout=30)
    assert next(held) == b"hello"
    fr = raw_session(server, payload)
    assert fr and fr[0][0] == SETTINGS, "our SETTINGS must be the first frame"
    assert fr[-1][0] == GOAWAY
    error = int.from_bytes(fr[-1][3][4:8], "big")
    assert error in (1, 6)  # PROTOCOL_ERROR or FRAME_SIZE_ERROR
    assert unary(channel, "Echo")(b"still here", timeout=5) == b"still here"
    assert unary(channel, "Stats")(b"", timeout=5) == b"closed=0 connections=1"
    held.cancel()


def test_truncated_frame_then_eof(channel, server):
    fr = raw_session(server, PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\x00\x00\x20\x01\x04\x00\x00")
    assert fr[0][0] == SETTINGS
    assert unary(channel, "Echo")(b"ok", timeout=5) == b"ok"
    assert unary(channel, "Stats")(b"", timeout=5) == b"closed=0 connections=1"


def test_server_answers_ping_and_settings(server):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(server)
    s.sendall(PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"\x02\x04\x10\x10\x09\x0e\x07\x07")
    got = b""
    deadline = time.time() + 5
    while time.time() < deadline:
        got += s.recv(65536)
        fr = frames(got)
        if any(f[0] == 6 and f[1] & 1 for f in fr) and any(f[0] == 4 and f[1] & 1 for f in fr):
            break
    s.close()
    assert fr[0][0] == SETTINGS and fr[0][1] == 0
    settings = {int.from_bytes(fr[0][3][i : i + 2], "big"): int.from_bytes(fr[0][3][i + 2 : i + 6], "big") for i in range(0, len(fr[0][3]), 6)}
    assert settings.get(3, 0) >= 100  # MAX_CONCURRENT_STREAMS
    assert (6, 1, 0, b"\x02\x04\x10\x10\x09\x0e\x07\x07") in fr  # PING ACK with the same bytes
    assert any(f[0] == 4 and f[1] == 1 and f[3] == b"" for f in fr)  # SETTINGS ACK


# ---- client direction: grpcio plays the kubelet --------------------------------------------------

def load_deviceplugin_pb2(tmp_path):
    subprocess.check_call(["protoc", "--proto_path=" + PROTO_DIR, "--python_out=" + str(tmp_path), "deviceplugin.proto"])
    sys.path.insert(0, str(tmp_path))
    try:
        import deviceplugin_pb2
    finally:
        sys.path.pop(0)
    return deviceplugin_pb2


class Kubelet:
    def __init__(self, tmp_path, behaviour):
        self.pb = load_deviceplugin_pb2(tmp_path)
        self.requests = []
        self.metadata = []
        self.behaviour = behaviour
        self.path = str(tmp_path / "kubelet.sock")
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))

        def register(request_bytes, context):
            req = self.pb.RegisterRequest.FromString(request_bytes)
            self.requests.append(req)
            self.metadata.append(dict(context.invocation_metadata()))
            self.time_remaining = context.time_remaining()
            return self.behaviour(req, context)

        handler = grpc.method_handlers_generic_handler(
            "v1beta1.Registration", {"Register": grpc.unary_unary_rpc_method_handler(register)}
        )
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port("unix:" + self.path)
        self.server.start()

    def stop(self):
        self.server.stop(0)


def kubelet_register(req, context):
    if req.version != "v1beta1":
        context.abort(grpc.StatusCode.UNKNOWN, 'requested API version "%s" is not supported by kubelet. Supported version is ["v1beta1"]' % req.version)
    if "/" not in req.resource_name:
        context.abort(grpc.StatusCode.UNKNOWN, 'the ResourceName "%s" is invalid' % req.resource_name)
    return b""  # Empty


def run_client(*args):
    p = subprocess.run([CLIENT, *args], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_register_ok(tmp_path):
    k = Kubelet(tmp_path, kubelet_register)
    try:
        assert run_client(k.path, "nvidia.com/gpu", "5000") == "status=0 message= size=0"
        req = k.requests[0]
        assert (req.version, req.endpoint, req.resource_name) == ("v1beta1", "nvidia-gpu.sock", "nvidia.com/gpu")
        assert req.options.get_preferred_allocation_available and not req.options.pre_start_required
        # grpc-timeout arrived: grpcio turned it into the call's deadline
        assert 3 < k.time_remaining <= 5
    finally:
        k.stop()


def test_register_error_status_and_message(tmp_path):
    k = Kubelet(tmp_path, kubelet_register)
    try:
        out = run_client(k.path, "gpu", "5000")
        assert out == 'status=2 message=the ResourceName "gpu" is invalid size=0'
    finally:
        k.stop()


def test_register_timeout(tmp_path):
    def hang(req, context):
        time.sleep(1.5)
        return b""

    k = Kubelet(tmp_path, hang)
    try:
        t0 = time.monotonic()
        out = run_client(k.path, "nvidia.com/gpu", "300")
        elapsed = time.monotonic() - t0
        # Either side may notice first: grpcio enforces the grpc-timeout we sent, and we run a local timer.
        assert out.startswith("status=4 message=")
        assert elapsed < 1.2
    finally:
        k.stop()


def test_register_unknown_method_on_kubelet(tmp_path):
    k = Kubelet(tmp_path, kubelet_register)
    try:
        out = run_client(k.path, "nvidia.com/gpu", "5000", "/v1beta1.Registration/Nope")
        assert out.startswith("status=12 ")
    finally:
        k.stop()


def test_register_missing_socket(tmp_path):
    path = str(tmp_path / "kubelet.sock")
    out = run_client(path, "nvidia.com/gpu", "5000")
    assert out == "status=14 message=failed to connect to %s: No such file or directory size=0" % path


def test_client_against_own_server(server):
    # Our client and our server agree too (Echo returns the RegisterRequest bytes).
    out = run_client(server, "nvidia.com/gpu", "5000", "/test.Test/Echo")
    assert out.startswith("status=0 message= size=")
    assert int(out.rsplit("=", 1)[1]) > 30
