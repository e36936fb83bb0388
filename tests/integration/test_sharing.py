# SPDX-License-Identifier: Apache-2.0
"""Sharing, MIG and the config file, through the real binary and the grpcio kubelet."""
import os
import signal

import grpc
import pytest

from test_plugin import H100, registered

A100_MIG = {
    "nvidia.com/mig-1g.5gb": ["MIG-a1b2c3d4-0003-5e6f-8a9b-0c1d2e3f4a03", "MIG-a1b2c3d4-0004-5e6f-8a9b-0c1d2e3f4a04"],
    "nvidia.com/mig-2g.10gb": ["MIG-a1b2c3d4-0002-5e6f-8a9b-0c1d2e3f4a02", "MIG-f0e1d2c3-0011-4b5a-9687-a5b4c3d2e111",
                               "MIG-f0e1d2c3-0012-4b5a-9687-a5b4c3d2e112"],
    "nvidia.com/mig-3g.20gb": ["MIG-a1b2c3d4-0001-5e6f-8a9b-0c1d2e3f4a01", "MIG-f0e1d2c3-0013-4b5a-9687-a5b4c3d2e113"],
}


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


TIME_SLICING = """version: v1
sharing:
  timeSlicing:
    failRequestsGreaterThanOne: {fail}
    resources:
    - name: nvidia.com/gpu
      replicas: {replicas}
"""

TWO_SHARED = """version: v1
sharing:
  timeSlicing:
    resources:
    - name: nvidia.com/gpu
      rename: gpu.shared
      replicas: {replicas}
      devices: [0, 1]
"""


def ids(msg):
    return [d.ID for d in msg.devices]


def test_time_slicing_replicas_4(kubelet, start_plugin, workdir):
    cfg = os.path.join(workdir, "config.yaml")
    write(cfg, TIME_SLICING.format(fail="false", replicas=4))
    _, client = registered(kubelet, start_plugin, args=["--config-file", cfg])
    assert ids(client.lists[0]) == [f"{u}::{n}" for u in H100 for n in range(4)]
    # two replicas of one GPU name it once; replicas of two GPUs name both
    c = client.allocate([f"{H100[2]}::1", f"{H100[2]}::3", f"{H100[6]}::0"]).container_responses[0]
    assert dict(c.envs) == {"NVIDIA_VISIBLE_DEVICES": f"{H100[2]},{H100[6]}"}
    # several replicas are preferred on distinct GPUs
    assert client.preferred(ids(client.lists[0]), [], 3) == [f"{H100[0]}::0", f"{H100[1]}::0", f"{H100[2]}::0"]


def test_fail_requests_greater_than_one(kubelet, start_plugin, workdir):
    cfg = os.path.join(workdir, "config.yaml")
    write(cfg, TIME_SLICING.format(fail="true", replicas=4))
    _, client = registered(kubelet, start_plugin, args=["--config-file", cfg])
    with pytest.raises(grpc.RpcError) as e:
        client.allocate([f"{H100[0]}::0", f"{H100[1]}::0"])
    assert e.value.code() == grpc.StatusCode.UNKNOWN     # as NVIDIA's plugin
    assert e.value.details() == ('invalid allocation request for "nvidia.com/gpu": invalid request: '
                                 'maximum request size for shared resources is 1; found 2')
    c = client.allocate([f"{H100[1]}::2"]).container_responses[0]
    assert dict(c.envs) == {"NVIDIA_VISIBLE_DEVICES": H100[1]}


def test_two_gpus_shared_six_whole(kubelet, start_plugin, workdir):
    cfg = os.path.join(workdir, "config.yaml")
    write(cfg, TWO_SHARED.format(replicas=4))
    start_plugin(args=["--config-file", cfg])
    kubelet.wait_registrations(2)
    names = sorted(r.resource_name for r, _ in kubelet.registrations)
    assert names == ["nvidia.com/gpu", "nvidia.com/gpu.shared"]
    whole = kubelet.client("nvidia.com/gpu").wait_lists(1)
    shared = kubelet.client("nvidia.com/gpu.shared").wait_lists(1)
    assert ids(whole) == H100[2:]
    assert ids(shared) == [f"{u}::{n}" for u in H100[:2] for n in range(4)]
    eps = sorted(r.endpoint for r, _ in kubelet.registrations)
    assert eps == ["nvidia-gpu.shared.sock", "nvidia-gpu.sock"]


def test_reload_keeps_the_unchanged_resource_streaming(kubelet, start_plugin, workdir):
    cfg = os.path.join(workdir, "config.yaml")
    write(cfg, TWO_SHARED.format(replicas=4))
    plugin = start_plugin(args=["--config-file", cfg])
    kubelet.wait_registrations(2)
    whole = kubelet.client("nvidia.com/gpu")
    whole.wait_lists(1)
    # replicas 4 -> 8: only the shared resource changes (the file is replaced, as a ConfigMap update does)
    write(cfg, TWO_SHARED.format(replicas=8))
    kubelet.wait_registrations(3)
    shared = kubelet.client("nvidia.com/gpu.shared")
    assert ids(shared.wait_lists(1)) == [f"{u}::{n}" for u in H100[:2] for n in range(8)]
    assert whole.stream_error is None and len(whole.lists) == 1
    assert kubelet.client("nvidia.com/gpu") is whole          # never re-registered
    assert dict(whole.allocate([H100[7]]).container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == H100[7]
    # a config that does not load is reported and the running plan stays
    write(cfg, "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: gpu\n      replicas: 1\n")
    plugin.proc.send_signal(signal.SIGHUP)
    import time
    time.sleep(0.5)
    assert "Configuration reload failed, keeping the running one" in plugin.output()
    assert "replicas" in plugin.output()
    assert len(kubelet.registrations) == 3 and plugin.proc.poll() is None


def test_list_over_16k_is_split_across_frames(kubelet, start_plugin, workdir):
    cfg = os.path.join(workdir, "config.yaml")
    write(cfg, TIME_SLICING.format(fail="false", replicas=64))
    _, client = registered(kubelet, start_plugin, args=["--config-file", cfg])
    msg = client.lists[0]
    assert len(msg.devices) == 512
    assert len(msg.SerializeToString()) > 16384
    assert msg.devices[511].ID == f"{H100[7]}::63"


def test_mig_mixed_one_socket_per_profile(kubelet, start_plugin):
    start_plugin(fixture="a100-mig", args=["--mig-strategy", "mixed", "--pass-device-specs"])
    kubelet.wait_registrations(3)
    got = {r.resource_name: r.endpoint for r, _ in kubelet.registrations}
    assert got == {
        "nvidia.com/mig-1g.5gb": "nvidia-mig-1g.5gb.sock",
        "nvidia.com/mig-2g.10gb": "nvidia-mig-2g.10gb.sock",
        "nvidia.com/mig-3g.20gb": "nvidia-mig-3g.20gb.sock",
    }
    for name, expected in A100_MIG.items():
        assert ids(kubelet.client(name).wait_lists(1)) == expected
    # MIG device on GPU 0, GI 1, CI 0: its parent node and both capability nodes (minors from mig-minors)
    c = kubelet.client("nvidia.com/mig-3g.20gb").allocate([A100_MIG["nvidia.com/mig-3g.20gb"][0]]).container_responses[0]
    assert dict(c.envs) == {"NVIDIA_VISIBLE_DEVICES": A100_MIG["nvidia.com/mig-3g.20gb"][0]}
    assert [d.container_path for d in c.devices] == [
        "/dev/nvidia0", "/dev/nvidia-caps/nvidia-cap12", "/dev/nvidia-caps/nvidia-cap13"]


def test_bad_config_file_is_a_clear_error(workdir, start_plugin):
    cfg = os.path.join(workdir, "config.yaml")
    write(cfg, "version: v1\nflags:\n  migStrategy: sometimes\n")
    plugin = start_plugin(args=["--config-file", cfg])
    assert plugin.proc.wait(5) == 1      # as NVIDIA's plugin
    out = plugin.output().strip()
    assert out.count("\n") == 0, out          # one line
    assert cfg in out and ":3:" in out and "migStrategy" in out and "sometimes" in out


def test_per_node_config_from_a_configmap_directory(kubelet, start_plugin, workdir):
    # the chart mounts its ConfigMap at CONFIG_FILE_SRCDIR: one file per named config
    src = os.path.join(workdir, "available-configs")
    os.mkdir(src)
    write(os.path.join(src, "default"), "version: v1\n")
    write(os.path.join(src, "shared"), TIME_SLICING.format(fail="false", replicas=2))
    env = {"CONFIG_FILE_SRCDIR": src, "DEFAULT_CONFIG": "shared", "FALLBACK_STRATEGIES": "named,single"}
    plugin, client = registered(kubelet, start_plugin, env=env)
    assert ids(client.lists[0]) == [f"{u}::{n}" for u in H100 for n in range(2)]
    # the ConfigMap changes: the selected config is reloaded
    write(os.path.join(src, "shared"), TIME_SLICING.format(fail="false", replicas=3))
    kubelet.wait_registrations(2)
    assert ids(kubelet.client().wait_lists(1)) == [f"{u}::{n}" for u in H100 for n in range(3)]
    assert plugin.proc.poll() is None
