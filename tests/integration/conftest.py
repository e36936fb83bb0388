# SPDX-License-Identifier: Apache-2.0
"""pytest fixtures: a kubelet played by grpcio, and the real nvdp binary on the simulated NVML.

The kubelet stand-in behaves like the real one (reference: kubelet-device-plugin-contract.md section 3):
inside its Register handler it dials the plugin's socket, calls GetDevicePluginOptions, starts
ListAndWatch in the background, and only then answers Register.
"""
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("NVDP_BUILD", os.path.join(REPO, "build"))
NVDP = os.environ.get("NVDP_BIN", os.path.join(BUILD, "nvdp"))
MOCK_DIR = os.path.join(BUILD, "mock-nvml")
FIXTURES = os.path.join(REPO, "mock", "nvml", "fixtures")


def _load_pb():
    # NVDP_PB_DIR: a directory with a deviceplugin_pb2.py generated elsewhere (hosts without protoc).
    out = os.environ.get("NVDP_PB_DIR")
    if not out:
        out = tempfile.mkdtemp(prefix="nvdp-pb-")
        subprocess.run(["protoc", "--proto_path", os.path.join(REPO, "proto"), "--python_out", out,
                        "deviceplugin.proto"], check=True)
    sys.path.insert(0, out)
    return importlib.import_module("deviceplugin_pb2")


pb = _load_pb()


def fixture_env(name):
    """Environment that makes nvdp see the simulated node `name` (dgx-h100, a100-mig, rtx4070ti)."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = MOCK_DIR
    env["MOCK_NVML_FIXTURE"] = os.path.join(FIXTURES, name + ".yaml")
    env["NVDP_ROOT"] = os.path.join(FIXTURES, name + ".root")
    return env


def unary(channel, method, request, response_type, timeout=5):
    call = channel.unary_unary("/v1beta1.DevicePlugin/" + method,
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=response_type.FromString)
    return call(request, timeout=timeout)


class PluginClient:
    """The kubelet's client side of one plugin endpoint."""

    def __init__(self, socket_path):
        self.socket_path = socket_path
        self.channel = grpc.insecure_channel("unix:" + socket_path, options=[("grpc.default_authority", "localhost")])
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.lists = []           # every ListAndWatchResponse received, in order
        self.list_times = []      # monotonic time each arrived
        self.cond = threading.Condition()
        self.stream = None
        self.stream_error = None

    def options(self):
        return unary(self.channel, "GetDevicePluginOptions", pb.Empty(), pb.DevicePluginOptions)

    def start_list_and_watch(self):
        call = self.channel.unary_stream("/v1beta1.DevicePlugin/ListAndWatch",
                                         request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=pb.ListAndWatchResponse.FromString)
        self.stream = call(pb.Empty())

        def pump():
            try:
                for msg in self.stream:
                    with self.cond:
                        self.lists.append(msg)
                        self.list_times.append(time.monotonic())
                        self.cond.notify_all()
            except grpc.RpcError as e:
                with self.cond:
                    self.stream_error = e
                    self.cond.notify_all()

        threading.Thread(target=pump, daemon=True).start()

    def wait_lists(self, n, timeout=5):
        """Waits until at least n lists arrived; returns the last."""
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.lists) >= n or self.stream_error, timeout)
            assert ok and len(self.lists) >= n, f"expected {n} ListAndWatch responses, got {len(self.lists)}"
            return self.lists[-1]

    def wait_list(self, predicate, timeout=5):
        with self.cond:
            ok = self.cond.wait_for(lambda: self.lists and predicate(self.lists[-1]), timeout)
            assert ok, "no ListAndWatch response matched; last: %r" % (self.lists[-1] if self.lists else None)
            return self.lists[-1]

    def allocate(self, *containers, timeout=5):
        req = pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=list(c))
                                                     for c in containers])
        return unary(self.channel, "Allocate", req, pb.AllocateResponse, timeout)

    def preferred(self, available, must_include=(), size=1):
        req = pb.PreferredAllocationRequest(container_requests=[pb.ContainerPreferredAllocationRequest(
            available_deviceIDs=list(available), must_include_deviceIDs=list(must_include), allocation_size=size)])
        return list(unary(self.channel, "GetPreferredAllocation", req,
                          pb.PreferredAllocationResponse).container_responses[0].deviceIDs)

    def close(self):
        if self.stream is not None:
            self.stream.cancel()
        self.channel.close()


class Kubelet:
    """The kubelet's Registration service on <dir>/kubelet.sock."""

    def __init__(self, directory):
        self.dir = directory
        self.socket = os.path.join(directory, "kubelet.sock")
        self.registrations = []   # (RegisterRequest, monotonic time)
        self.clients = {}         # resource name -> PluginClient (latest registration)
        self.cond = threading.Condition()
        self.server = None
        self.fail_with = None     # a message: Register answers with an error
        self.start()

    def start(self):
        handler = grpc.method_handlers_generic_handler("v1beta1.Registration", {
            "Register": grpc.unary_unary_rpc_method_handler(
                self._register, request_deserializer=pb.RegisterRequest.FromString,
                response_serializer=lambda m: m.SerializeToString()),
        })
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port("unix:" + self.socket)
        self.server.start()

    def stop(self):
        """The kubelet going away: its socket disappears with it."""
        self.server.stop(None).wait()
        try:
            os.unlink(self.socket)
        except FileNotFoundError:
            pass

    def restart(self):
        """As a real kubelet restart: remove every socket in the directory, then create kubelet.sock."""
        self.stop()
        for name in os.listdir(self.dir):
            path = os.path.join(self.dir, name)
            if name.endswith(".sock"):
                os.unlink(path)
        self.start()

    def _register(self, request, context):
        now = time.monotonic()
        if self.fail_with:
            context.abort(grpc.StatusCode.UNKNOWN, self.fail_with)
        client = PluginClient(os.path.join(self.dir, request.endpoint))
        client.options_at_register = client.options()
        client.start_list_and_watch()
        with self.cond:
            old = self.clients.get(request.resource_name)
            self.clients[request.resource_name] = client
            self.registrations.append((request, now))
            self.cond.notify_all()
        if old is not None:
            old.close()
        return pb.Empty()

    def wait_registrations(self, n, timeout=10):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.registrations) >= n, timeout)
            assert ok, f"expected {n} registrations, got {len(self.registrations)}"
            return self.registrations[n - 1]

    def client(self, resource="nvidia.com/gpu"):
        with self.cond:
            return self.clients[resource]

    def close(self):
        for c in self.clients.values():
            c.close()
        self.stop()


class Plugin:
    def __init__(self, directory, fixture="dgx-h100", args=(), env=None, register=True):
        self.dir = directory
        self.log_path = os.path.join(directory, "plugin.log")
        e = fixture_env(fixture)
        if env:
            e.update(env)
        argv = [NVDP, "plugin"]
        if register:
            argv += ["--kubelet-socket", os.path.join(directory, "kubelet.sock")]
        argv += list(args)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, env=e, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout=5):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("plugin did not stop on SIGTERM:\n" + self.output())
        self.log.close()
        return rc


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="nvdp-it-") as d:
        yield d


@pytest.fixture
def kubelet(workdir):
    k = Kubelet(workdir)
    yield k
    k.close()


@pytest.fixture
def start_plugin(workdir):
    plugins = []

    def start(**kw):
        p = Plugin(workdir, **kw)
        plugins.append(p)
        return p

    yield start
    for p in plugins:
        if p.proc.poll() is None:
            p.stop()
