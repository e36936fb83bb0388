# SPDX-License-Identifier: Apache-2.0
"""The device plugin against a kubelet played by grpcio, on the simulated 8x H100 node."""
import os
import socket
import struct
import time

import grpc
import pytest

from conftest import cdi_node, pb

# The simulated node (mock/nvml/fixtures/dgx-h100.yaml), written out by hand.
H100 = [
    "GPU-6a3f5c1e-2b7d-4e90-8c11-0f2a9b3d4e01", "GPU-1c8e7a42-93d5-4f6b-a0e2-5d7c6b8a9f12", "GPU-b42d9e07-5a16-4c3f-9e8d-7a1b2c3d4e23", "GPU-e7f01b38-64c2-4d5a-b7e9-8c0d1e2f3a34",
    "GPU-3d9a6c51-0e7f-4b82-9a4c-1b2c3d4e5f45", "GPU-8f2b4d63-7c19-4e0a-8b5d-2c3d4e5f6a56", "GPU-c51e8f74-2d3a-4b6c-9d0e-3d4e5f6a7b67", "GPU-0a7c3e85-9b4f-4d1e-a2c3-4e5f6a7b8c78",
]
H100_NUMA = [0, 0, 0, 0, 1, 1, 1, 1]


def registered(kubelet, start_plugin, **kw):
    plugin = start_plugin(**kw)
    kubelet.wait_registrations(1)
    client = kubelet.client()
    client.wait_lists(1)
    return plugin, client


def test_registration_fields(kubelet, start_plugin):
    start_plugin()
    req, _ = kubelet.wait_registrations(1)
    assert req.version == "v1beta1"
    assert req.endpoint == "nvidia-gpu.sock"
    assert req.resource_name == "nvidia.com/gpu"
    assert req.options.get_preferred_allocation_available is True
    assert req.options.pre_start_required is False
    # The options the kubelet reads from the plugin agree with the Register request.
    opts = kubelet.client().options_at_register
    assert opts.get_preferred_allocation_available is True
    assert opts.pre_start_required is False


def test_first_list_within_100ms_of_register(kubelet, start_plugin):
    start_plugin()
    _, registered_at = kubelet.wait_registrations(1)
    client = kubelet.client()
    client.wait_lists(1)
    assert client.list_times[0] - registered_at < 0.100


def test_list_has_every_gpu_healthy_with_numa(kubelet, start_plugin):
    _, client = registered(kubelet, start_plugin)
    devices = client.lists[0].devices
    assert [d.ID for d in devices] == H100
    assert [d.health for d in devices] == ["Healthy"] * 8
    assert [[n.ID for n in d.topology.nodes] for d in devices] == [[n] for n in H100_NUMA]


def test_allocate_envvar_keeps_order_and_dedups(kubelet, start_plugin):
    _, client = registered(kubelet, start_plugin)
    resp = client.allocate([H100[3], H100[1], H100[3]])
    assert len(resp.container_responses) == 1
    c = resp.container_responses[0]
    assert dict(c.envs) == {"NVIDIA_VISIBLE_DEVICES": f"{H100[3]},{H100[1]}"}
    assert list(c.mounts) == [] and list(c.devices) == [] and list(c.cdi_devices) == []
    assert dict(c.annotations) == {}


def test_allocate_one_response_per_container(kubelet, start_plugin):
    _, client = registered(kubelet, start_plugin)
    resp = client.allocate([H100[0]], [H100[6], H100[7]])
    assert [dict(c.envs)["NVIDIA_VISIBLE_DEVICES"] for c in resp.container_responses] == [
        H100[0], f"{H100[6]},{H100[7]}"]


def test_allocate_volume_mounts(kubelet, start_plugin):
    _, client = registered(kubelet, start_plugin, args=["--device-list-strategy", "volume-mounts"])
    c = client.allocate([H100[0], H100[2]]).container_responses[0]
    assert dict(c.envs) == {"NVIDIA_VISIBLE_DEVICES": "/var/run/nvidia-container-devices"}
    assert [(m.container_path, m.host_path, m.read_only) for m in c.mounts] == [
        (f"/var/run/nvidia-container-devices/{H100[0]}", "/dev/null", False),
        (f"/var/run/nvidia-container-devices/{H100[2]}", "/dev/null", False),
    ]


def test_allocate_cdi_cri(kubelet, start_plugin, workdir):
    _, env, args = cdi_node(workdir)   # the spec the names resolve in: tests/integration/test_cdi_plugin.py
    _, client = registered(kubelet, start_plugin, env=env, args=["--device-list-strategy", "cdi-cri", *args])
    c = client.allocate([H100[5]]).container_responses[0]
    assert [d.name for d in c.cdi_devices] == [f"k8s.device-plugin.nvidia.com/gpu={H100[5]}"]
    assert dict(c.envs) == {}          # only CDI strategies: no NVIDIA_VISIBLE_DEVICES
    assert dict(c.annotations) == {}


def test_allocate_cdi_annotations_with_envvar(kubelet, start_plugin, workdir):
    _, env, args = cdi_node(workdir)
    _, client = registered(kubelet, start_plugin, env=env,
                           args=["--device-list-strategy", "envvar,cdi-annotations",
                                 "--cdi-annotation-prefix", "nvidia.cdi.k8s.io/", *args])
    c = client.allocate([H100[1], H100[2]]).container_responses[0]
    assert dict(c.envs) == {"NVIDIA_VISIBLE_DEVICES": f"{H100[1]},{H100[2]}"}
    (key, value), = dict(c.annotations).items()
    assert key.startswith("nvidia.cdi.k8s.io/nvidia-device-plugin_")
    assert len(key) - len("nvidia.cdi.k8s.io/nvidia-device-plugin_") == 36   # a UUID
    assert value == f"k8s.device-plugin.nvidia.com/gpu={H100[1]},k8s.device-plugin.nvidia.com/gpu={H100[2]}"


def test_allocate_index_strategy_with_device_specs(kubelet, start_plugin):
    _, client = registered(kubelet, start_plugin,
                           args=["--device-id-strategy", "index", "--pass-device-specs"])
    c = client.allocate([H100[4], H100[0]]).container_responses[0]
    assert dict(c.envs) == {"NVIDIA_VISIBLE_DEVICES": "4,0"}
    # No /dev/nvidiactl on this machine, so only the GPUs' own nodes (minors as in the fixture).
    assert [(d.container_path, d.host_path, d.permissions) for d in c.devices] == [
        ("/dev/nvidia4", "/dev/nvidia4", "rw"),
        ("/dev/nvidia0", "/dev/nvidia0", "rw"),
    ]


def test_allocate_unknown_id_is_an_error_naming_it(kubelet, start_plugin):
    _, client = registered(kubelet, start_plugin)
    with pytest.raises(grpc.RpcError) as e:
        client.allocate([H100[0], "GPU-does-not-exist"])
    assert e.value.code() == grpc.StatusCode.UNKNOWN     # as NVIDIA's plugin
    assert e.value.details() == ('invalid allocation request for "nvidia.com/gpu": invalid request: '
                                 'unknown device: GPU-does-not-exist')


@pytest.mark.parametrize("size,must,expected", [
    (2, [], [0, 1]),
    (4, [], [0, 1, 2, 3]),
    (8, [], [0, 1, 2, 3, 4, 5, 6, 7]),
    # every pair has 18 NVLinks: the NUMA node of the must-include GPU decides
    (2, [5], [5, 4]),
    (4, [6, 1], [6, 1, 0, 2]),
])
def test_preferred_allocation(kubelet, start_plugin, size, must, expected):
    _, client = registered(kubelet, start_plugin)
    got = client.preferred(H100, [H100[i] for i in must], size)
    assert got == [H100[i] for i in expected]


def test_preferred_allocation_only_from_available(kubelet, start_plugin):
    _, client = registered(kubelet, start_plugin)
    got = client.preferred([H100[7], H100[2], H100[5]], [], 2)
    assert got == [H100[5], H100[7]]   # same NUMA node beats the lower index


def test_kubelet_restart_twenty_times(kubelet, start_plugin):
    plugin = start_plugin()
    kubelet.wait_registrations(1)
    for i in range(2, 22):
        kubelet.restart()
        req, _ = kubelet.wait_registrations(i)
        assert req.resource_name == "nvidia.com/gpu"
        kubelet.client().wait_lists(1)
    assert plugin.proc.poll() is None
    # still serving after the last restart
    resp = kubelet.client().allocate([H100[0]])
    assert dict(resp.container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == H100[0]


def test_registers_when_the_kubelet_comes_later(workdir, start_plugin):
    from conftest import Kubelet
    plugin = start_plugin()
    time.sleep(1.0)                      # no kubelet.sock: the plugin keeps retrying, never exits
    assert plugin.proc.poll() is None
    k = Kubelet(workdir)
    try:
        req, _ = k.wait_registrations(1, timeout=15)
        assert req.resource_name == "nvidia.com/gpu"
    finally:
        k.close()


def test_failed_register_is_retried(kubelet, start_plugin):
    kubelet.fail_with = "the ResourceName \"x\" is invalid"
    plugin = start_plugin()
    time.sleep(1.5)
    assert plugin.proc.poll() is None
    assert "Registering nvidia.com/gpu with the kubelet" in plugin.output()
    kubelet.fail_with = None
    kubelet.wait_registrations(1, timeout=15)


def test_two_allocates_while_list_and_watch_is_open(kubelet, start_plugin):
    _, client = registered(kubelet, start_plugin)
    f1 = client.channel.unary_unary("/v1beta1.DevicePlugin/Allocate",
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=pb.AllocateResponse.FromString).future(
        pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=[H100[0]])]))
    f2 = client.channel.unary_unary("/v1beta1.DevicePlugin/Allocate",
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=pb.AllocateResponse.FromString).future(
        pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=[H100[1]])]))
    assert dict(f1.result(5).container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == H100[0]
    assert dict(f2.result(5).container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == H100[1]
    assert client.stream_error is None


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def raw_client(path, data):
    """Sends bytes, returns what came back before the plugin closed (or 2 s passed)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(path)
    s.sendall(data)
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    s.close()
    return got


def goaway_in(data):
    i = 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        if data[i + 3] == 0x7:
            return True
        i += 9 + length
    return False


@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                                   # not HTTP/2 at all
    PREFACE + b"\x00\x00\x40\x04\x00\x00\x00\x00\x00",                      # SETTINGS cut short
    PREFACE + frame(4, 0, 0, b"") + frame(1, 4, 1, b"\xff\xff\xff\xff"),    # undecodable header block
])
def test_garbage_client_is_dropped_and_others_are_served(kubelet, start_plugin, payload):
    _, client = registered(kubelet, start_plugin)
    got = raw_client(client.socket_path, payload)
    assert got == b"" or goaway_in(got)
    resp = client.allocate([H100[2]])
    assert dict(resp.container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == H100[2]


def test_oversized_message_is_rejected(kubelet, start_plugin):
    _, client = registered(kubelet, start_plugin)
    call = client.channel.unary_unary("/v1beta1.DevicePlugin/Allocate")
    with pytest.raises(grpc.RpcError) as e:
        call(b"\x0a" + b"\xff" * 8 + b"x" * (5 * 1024 * 1024), timeout=10)
    assert e.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT,
                              grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)
    resp = client.allocate([H100[3]])
    assert dict(resp.container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == H100[3]


def test_unknown_method_is_unimplemented(kubelet, start_plugin):
    _, client = registered(kubelet, start_plugin)
    call = client.channel.unary_unary("/v1beta1.DevicePlugin/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as e:
        call(b"", timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert client.stream_error is None


def test_sigterm_stops_cleanly_and_removes_the_socket(kubelet, start_plugin, workdir):
    plugin, client = registered(kubelet, start_plugin)
    sock = os.path.join(workdir, "nvidia-gpu.sock")
    assert os.path.exists(sock)
    assert plugin.stop() == 0
    assert not os.path.exists(sock)
