# SPDX-License-Identifier: Apache-2.0
"""The plugin writes the CDI spec its CDI strategies name: every CDI name Allocate returns is a device of
the spec in --cdi-spec-dir, at start and after a reload; an unwritable spec directory is one error line
and the plugin keeps serving; IMEX channels without a device node are left out as upstream does.

The node is a fixture filesystem with the driver's files and device nodes (tests/unit/cdi-fixture.h,
through conftest.cdi_node) under the simulated NVML's GPUs."""
import json
import os
import signal
import time

import grpc
import pytest

from conftest import cdi_node
from test_plugin import H100, registered
from test_sharing import A100_MIG, write

KIND = "k8s.device-plugin.nvidia.com/gpu"
IMEX_KIND = "k8s.device-plugin.nvidia.com/imex-channel"
GPU_SPEC = "k8s.device-plugin.nvidia.com-gpu.json"
IMEX_SPEC = "k8s.device-plugin.nvidia.com-imex-channel.json"


def read_specs(spec_dir):
    """{file name: spec} of the directory, and every qualified name its specs define."""
    specs = {}
    for name in sorted(os.listdir(spec_dir)):
        with open(os.path.join(spec_dir, name)) as f:
            specs[name] = json.load(f)
    names = {f"{s['kind']}={d['name']}" for s in specs.values() for d in s["devices"]}
    return specs, names


def device(spec, name):
    return next(d for d in spec["devices"] if d["name"] == name)


def wait_output(plugin, text, count=1, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if plugin.output().count(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not {count} times in the plugin's log:\n{plugin.output()}")


@pytest.mark.parametrize("id_strategy", ["uuid", "index"])
def test_h100_every_name_allocate_returns_is_in_the_spec(kubelet, start_plugin, workdir, id_strategy):
    _, env, args = cdi_node(workdir)
    plugin, client = registered(kubelet, start_plugin, env=env,
                                args=["--device-list-strategy", "cdi-cri", "--device-id-strategy", id_strategy,
                                      *args])
    spec_dir = os.path.join(workdir, "cdi")
    specs, in_spec = read_specs(spec_dir)
    assert list(specs) == [GPU_SPEC]            # no IMEX channel configured: no IMEX spec
    spec = specs[GPU_SPEC]
    assert spec["kind"] == KIND
    assert spec["annotations"]["nvdp.nvidia.com/driver-version"] == "580.105.08"
    ids = [d.ID for d in client.lists[0].devices]
    assert ids == H100
    for i, device_id in enumerate(ids):
        names = [d.name for d in client.allocate([device_id]).container_responses[0].cdi_devices]
        assert names == [f"{KIND}={H100[i] if id_strategy == 'uuid' else i}"]
        assert names[0] in in_spec
    # Each name brings its GPU's node; the rest of the driver comes with every device.
    assert device(spec, "3")["containerEdits"]["deviceNodes"] == [{"path": "/dev/nvidia3"}]
    assert device(spec, H100[3])["containerEdits"]["deviceNodes"] == [{"path": "/dev/nvidia3"}]
    assert {"path": "/dev/nvidiactl"} in spec["containerEdits"]["deviceNodes"]
    wait_output(plugin, f"Wrote the CDI spec {spec_dir}/{GPU_SPEC} (17 devices; driver 580.105.08")
    # SIGTERM leaves the spec: containers created during a rolling update still resolve their names.
    assert plugin.stop() == 0
    assert os.listdir(spec_dir) == [GPU_SPEC]


def test_a100_mig_mixed_and_imex_names_are_in_the_specs(kubelet, start_plugin, workdir):
    _, env, args = cdi_node(workdir, "mig", "570.172.08", gpus=2)   # its /dev has IMEX channel 0
    start_plugin(fixture="a100-mig", env=env,
                 args=["--mig-strategy", "mixed", "--device-list-strategy", "envvar,cdi-annotations",
                       "--imex-channel-ids", "0", *args])
    kubelet.wait_registrations(3)
    specs, in_spec = read_specs(os.path.join(workdir, "cdi"))
    assert list(specs) == [GPU_SPEC, IMEX_SPEC]
    assert [d["name"] for d in specs[IMEX_SPEC]["devices"]] == ["0"]
    assert specs[IMEX_SPEC]["devices"][0]["containerEdits"]["deviceNodes"] == [
        {"path": "/dev/nvidia-caps-imex-channels/channel0"}]
    for resource, uuids in A100_MIG.items():
        client = kubelet.client(resource)
        assert sorted(d.ID for d in client.wait_lists(1).devices) == sorted(uuids)
        for u in uuids:
            c = client.allocate([u]).container_responses[0]
            (_, value), = dict(c.annotations).items()
            assert value.split(",") == [f"{KIND}={u}", f"{IMEX_KIND}=0"]
            assert set(value.split(",")) <= in_spec
            assert dict(c.envs) == {"NVIDIA_VISIBLE_DEVICES": u, "NVIDIA_IMEX_CHANNELS": "0"}
    # MIG device 0:2 is GPU 0's GPU instance 13: capability nodes 3 + 13 * 9 and the next (mig-minors).
    mig = device(specs[GPU_SPEC], "MIG-a1b2c3d4-0003-5e6f-8a9b-0c1d2e3f4a03")
    assert mig["containerEdits"]["deviceNodes"] == [
        {"path": "/dev/nvidia0"}, {"path": "/dev/nvidia-caps/nvidia-cap120"},
        {"path": "/dev/nvidia-caps/nvidia-cap121"}]
    assert device(specs[GPU_SPEC], "0:2") == {**mig, "name": "0:2"}


CONFIG = """version: v1
flags:
  plugin:
    deviceListStrategy: {strategy}
    nvidiaCDIHookPath: {hook}
sharing:
  timeSlicing:
    resources:
    - name: nvidia.com/gpu
      replicas: {replicas}
"""


def test_a_reload_that_changes_the_plan_rewrites_the_spec(kubelet, start_plugin, workdir):
    _, env, args = cdi_node(workdir)
    spec_file = os.path.join(workdir, "cdi", GPU_SPEC)
    cfg = os.path.join(workdir, "config.yaml")
    write(cfg, CONFIG.format(strategy="envvar", hook="/usr/bin/nvidia-ctk", replicas=2))
    plugin, _ = registered(kubelet, start_plugin, env=env, args=["--config-file", cfg, *args])
    assert not os.path.exists(spec_file)        # no CDI strategy: no spec

    # The ConfigMap changes: CDI on, nvdp's own hook, 3 replicas (a new plan, registered again).
    write(cfg, CONFIG.format(strategy="cdi-cri", hook="/var/lib/nvdp/bin/nvdp-cdi-hook", replicas=3))
    kubelet.wait_registrations(2)
    client = kubelet.client()
    assert [d.ID for d in client.wait_lists(1).devices][:3] == [f"{H100[0]}::{n}" for n in range(3)]
    specs, in_spec = read_specs(os.path.dirname(spec_file))
    hook = specs[GPU_SPEC]["containerEdits"]["hooks"][0]
    assert (hook["path"], hook["args"][:2]) == ("/var/lib/nvdp/bin/nvdp-cdi-hook",
                                                ["nvdp-cdi-hook", "create-symlinks"])
    names = [d.name for d in client.allocate([f"{H100[6]}::2"]).container_responses[0].cdi_devices]
    assert names == [f"{KIND}={H100[6]}"] and names[0] in in_spec

    # Back to NVIDIA's hook, 4 replicas: the file is rewritten.
    write(cfg, CONFIG.format(strategy="cdi-cri", hook="/usr/bin/nvidia-ctk", replicas=4))
    kubelet.wait_registrations(3)
    specs, in_spec = read_specs(os.path.dirname(spec_file))
    hook = specs[GPU_SPEC]["containerEdits"]["hooks"][0]
    assert (hook["path"], hook["args"][:3]) == ("/usr/bin/nvidia-ctk", ["nvidia-ctk", "hook", "create-symlinks"])
    client = kubelet.client()
    client.wait_lists(1)
    names = [d.name for d in client.allocate([f"{H100[1]}::3"]).container_responses[0].cdi_devices]
    assert names == [f"{KIND}={H100[1]}"] and names[0] in in_spec
    wait_output(plugin, f"Wrote the CDI spec {spec_file}", count=2)

    # A plan change that leaves the spec's content alone leaves the file alone (the runtime's watch
    # sees nothing).
    before = os.stat(spec_file)
    write(cfg, CONFIG.format(strategy="cdi-cri", hook="/usr/bin/nvidia-ctk", replicas=5))
    kubelet.wait_registrations(4)
    after = os.stat(spec_file)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert plugin.output().count(f"Wrote the CDI spec {spec_file}") == 2


def test_an_unwritable_spec_dir_is_one_error_and_the_plugin_serves(kubelet, start_plugin, workdir):
    _, env, _ = cdi_node(workdir)
    blocker = os.path.join(workdir, "not-a-directory")
    write(blocker, "")
    spec_dir = os.path.join(blocker, "cdi")
    plugin, client = registered(kubelet, start_plugin, env=env,
                                args=["--device-list-strategy", "envvar,cdi-cri", "--cdi-spec-dir", spec_dir])
    # The CDI names would resolve nowhere: Allocate passes the devices by the other strategy.
    c = client.allocate([H100[0]]).container_responses[0]
    assert dict(c.envs) == {"NVIDIA_VISIBLE_DEVICES": H100[0]}
    assert list(c.cdi_devices) == []
    # A reload meets the same error: it is not logged again.
    plugin.proc.send_signal(signal.SIGHUP)
    wait_output(plugin, "Received SIGHUP, reloading the configuration")
    client.allocate([H100[1]])                  # answered after the reload
    errors = [line for line in plugin.output().splitlines() if "CDI spec not written" in line]
    assert len(errors) == 1, plugin.output()
    assert errors[0].startswith("E")            # klog's error level
    assert errors[0].endswith(f"] CDI spec not written: cannot create the CDI spec directory {spec_dir}: "
                              "Not a directory; Allocate leaves the CDI device-list strategies out until it is")
    assert plugin.proc.poll() is None


def test_cdi_only_without_its_spec_fails_allocate_with_the_reason(kubelet, start_plugin, workdir):
    _, env, _ = cdi_node(workdir)
    blocker = os.path.join(workdir, "not-a-directory")
    write(blocker, "")
    _, client = registered(kubelet, start_plugin, env=env,
                           args=["--device-list-strategy", "cdi-cri", "--cdi-spec-dir", blocker + "/cdi"])
    assert [d.ID for d in client.lists[0].devices] == H100    # still listed
    with pytest.raises(grpc.RpcError) as e:
        client.allocate([H100[0]])
    assert e.value.details() == (
        f'cannot allocate "nvidia.com/gpu": its devices are passed by CDI and the CDI spec is not written: '
        f"cannot create the CDI spec directory {blocker}/cdi: Not a directory")


def test_an_imex_channel_without_its_node_is_left_out(kubelet, start_plugin, workdir):
    root, env, args = cdi_node(workdir)         # fhs: no /dev/nvidia-caps-imex-channels
    plugin, client = registered(kubelet, start_plugin, env=env,
                                args=["--device-list-strategy", "envvar,cdi-cri", "--imex-channel-ids", "0", *args])
    c = client.allocate([H100[0]]).container_responses[0]
    assert dict(c.envs) == {"NVIDIA_VISIBLE_DEVICES": H100[0]}            # no NVIDIA_IMEX_CHANNELS
    assert [d.name for d in c.cdi_devices] == [f"{KIND}={H100[0]}"]      # no imex-channel=0
    assert os.listdir(os.path.join(workdir, "cdi")) == [GPU_SPEC]         # no IMEX spec
    assert ("Ignoring requested IMEX channel 0: it does not exist (looked at "
            f"{root}/dev/nvidia-caps-imex-channels/channel0)") in plugin.output()


def test_a_required_imex_channel_without_its_node_fails_the_start(start_plugin, workdir):
    root, env, args = cdi_node(workdir)
    plugin = start_plugin(env=env, register=False,
                          args=["--imex-channel-ids", "0", "--imex-required", "--kubelet-socket", "", *args])
    assert plugin.proc.wait(10) == 1
    assert ("requested IMEX channel 0 does not exist (looked at "
            f"{root}/dev/nvidia-caps-imex-channels/channel0) and --imex-required is set") in plugin.output()


def test_names_that_resolve_in_a_spec_already_there_are_kept(kubelet, start_plugin, workdir):
    # No driver files on this node (the plain dgx-h100 fixture): the plugin cannot write its spec. A spec
    # someone else wrote under the plugin's kind (nvidia-ctk cdi generate --vendor
    # k8s.device-plugin.nvidia.com --class gpu; the e2e's hand-written one) is used while it names every
    # device Allocate can return.
    spec_dir = os.path.join(workdir, "cdi")
    os.mkdir(spec_dir)
    other = os.path.join(spec_dir, "other.json")

    def write_other(uuids):
        write(other, json.dumps({"cdiVersion": "0.5.0", "kind": KIND, "devices": [
            {"name": u, "containerEdits": {"deviceNodes": [{"path": "/dev/null"}]}} for u in uuids]}))

    write_other(H100[:7])                       # GPU 7 missing
    plugin, client = registered(kubelet, start_plugin,
                                args=["--device-list-strategy", "cdi-cri", "--cdi-spec-dir", spec_dir])
    with pytest.raises(grpc.RpcError) as e:
        client.allocate([H100[0]])
    assert e.value.details().startswith(
        'cannot allocate "nvidia.com/gpu": its devices are passed by CDI and the CDI spec is not written: no '
        "/dev/nvidiactl under the dev root /")
    write_other(H100)
    plugin.proc.send_signal(signal.SIGHUP)
    wait_output(plugin, "resolve in the specs already in")
    names = [d.name for d in client.allocate([H100[7]]).container_responses[0].cdi_devices]
    assert names == [f"{KIND}={H100[7]}"]
    lines = [line for line in plugin.output().splitlines() if "CDI spec not written" in line]
    assert len(lines) == 2
    assert lines[1].endswith(f"; the CDI names Allocate returns resolve in the specs already in {spec_dir}: "
                             "Allocate keeps them")
    assert os.listdir(spec_dir) == ["other.json"]          # never touched
