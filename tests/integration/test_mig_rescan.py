# SPDX-License-Identifier: Apache-2.0
"""A MIG layout changed while the plugin runs (issue 22 item 8; NVIDIA's plugin needs a restart, #992/#389):
on SIGHUP, on `nvdp plugin --rescan`, and when NVIDIA's MIG manager sets the Node label
nvidia.com/mig.config.state to "success", the plugin reads the GPUs again and re-registers only the
resources whose devices changed. The simulated node changes its layout when its fixture file is replaced
(the mock reads it again at the next nvmlInit, docs/mock-nvml.md).

The node: the 2x A100 fixture under --mig-strategy=mixed. GPU 1 is repartitioned from 2g.10gb (GI 3),
2g.10gb (GI 4), 3g.20gb (GI 2) to 2g.10gb (GI 3), 2g.10gb (GI 4), 1g.5gb (GI 11), 1g.5gb (GI 12): its two
2g.10gb devices stay where they were, so nvidia.com/mig-2g.10gb does not change, while mig-1g.5gb grows from
2 to 4 devices and mig-3g.20gb shrinks from 2 to 1."""
import os
import signal
import subprocess
import time

from conftest import FIXTURES, NVDP, fixture_env
from test_kube import api, apiserver, standin_bin  # noqa: F401  (pytest fixtures)

GPU1_BEFORE = """      - {uuid: MIG-f0e1d2c3-0011-4b5a-9687-a5b4c3d2e111, gi: 3, ci: 0, profile: 1}   # 2g.10gb
      - {uuid: MIG-f0e1d2c3-0012-4b5a-9687-a5b4c3d2e112, gi: 4, ci: 0, profile: 1}   # 2g.10gb
      - {uuid: MIG-f0e1d2c3-0013-4b5a-9687-a5b4c3d2e113, gi: 2, ci: 0, profile: 2}   # 3g.20gb
"""
GPU1_AFTER = """      - {uuid: MIG-f0e1d2c3-0011-4b5a-9687-a5b4c3d2e111, gi: 3, ci: 0, profile: 1}   # 2g.10gb
      - {uuid: MIG-f0e1d2c3-0012-4b5a-9687-a5b4c3d2e112, gi: 4, ci: 0, profile: 1}   # 2g.10gb
      - {uuid: MIG-77777777-0001-4b5a-9687-a5b4c3d2e201, gi: 11, ci: 0, profile: 0}  # 1g.5gb
      - {uuid: MIG-77777777-0002-4b5a-9687-a5b4c3d2e202, gi: 12, ci: 0, profile: 0}  # 1g.5gb
"""
# GPU 0's MIG devices (unchanged throughout)
GPU0_1G = ["MIG-a1b2c3d4-0003-5e6f-8a9b-0c1d2e3f4a03", "MIG-a1b2c3d4-0004-5e6f-8a9b-0c1d2e3f4a04"]
GPU0_2G = "MIG-a1b2c3d4-0002-5e6f-8a9b-0c1d2e3f4a02"
GPU0_3G = "MIG-a1b2c3d4-0001-5e6f-8a9b-0c1d2e3f4a01"
GPU1_2G = ["MIG-f0e1d2c3-0011-4b5a-9687-a5b4c3d2e111", "MIG-f0e1d2c3-0012-4b5a-9687-a5b4c3d2e112"]
GPU1_1G_NEW = ["MIG-77777777-0001-4b5a-9687-a5b4c3d2e201", "MIG-77777777-0002-4b5a-9687-a5b4c3d2e202"]

R1G, R2G, R3G = "nvidia.com/mig-1g.5gb", "nvidia.com/mig-2g.10gb", "nvidia.com/mig-3g.20gb"


class Node:
    """The A100 fixture through a copy whose GPU 1 the test repartitions."""

    def __init__(self, workdir):
        with open(os.path.join(FIXTURES, "a100-mig.yaml")) as f:
            self.text = f.read()
        assert GPU1_BEFORE in self.text
        self.path = os.path.join(workdir, "node.yaml")
        self.write(GPU1_BEFORE)

    def write(self, gpu1):
        tmp = self.path + ".new"
        with open(tmp, "w") as f:
            f.write(self.text.replace(GPU1_BEFORE, gpu1))
        os.rename(tmp, self.path)   # a new file: the mock reads it at the next nvmlInit

    def env(self, **extra):
        e = fixture_env("a100-mig")
        e["MOCK_NVML_FIXTURE"] = self.path
        e.update(extra)
        return e


def ids(msg):
    return sorted(d.ID for d in msg.devices)


def names(kubelet):
    return [r.resource_name for r, _ in kubelet.registrations]


def start(kubelet, start_plugin, node, env=None):
    plugin = start_plugin(fixture=None, args=["--mig-strategy=mixed"], env=node.env(**(env or {})))
    kubelet.wait_registrations(3)
    assert sorted(names(kubelet)) == [R1G, R2G, R3G]
    assert ids(kubelet.client(R1G).wait_lists(1)) == GPU0_1G
    assert ids(kubelet.client(R3G).wait_lists(1)) == sorted([GPU0_3G, "MIG-f0e1d2c3-0013-4b5a-9687-a5b4c3d2e113"])
    return plugin


def wait_for(predicate, what, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what())


def changed_layout_served(kubelet, plugin):
    """After the rescan: mig-1g.5gb and mig-3g.20gb registered again with their new devices, mig-2g.10gb
    untouched (same registration, same stream)."""
    kubelet.wait_registrations(5)
    assert sorted(names(kubelet)[3:]) == [R1G, R3G]
    assert ids(kubelet.client(R1G).wait_lists(1)) == sorted(GPU0_1G + GPU1_1G_NEW)
    assert ids(kubelet.client(R3G).wait_lists(1)) == [GPU0_3G]
    two = kubelet.client(R2G)
    assert ids(two.lists[-1]) == sorted([GPU0_2G] + GPU1_2G)
    assert two.stream_error is None
    out = plugin.output()
    assert "The GPUs or MIG devices changed: 2 GPUs, 8 MIG devices (were 2 GPUs, 7 MIG devices)" in out
    assert "Resource nvidia.com/mig-1g.5gb changed from 2 to 4 devices: serving the new list" in out
    assert "Resource nvidia.com/mig-3g.20gb changed from 2 to 1 devices: serving the new list" in out
    assert "mig-2g.10gb changed" not in out
    # Allocate answers from the new layout
    c = kubelet.client(R1G).allocate([GPU1_1G_NEW[0]]).container_responses[0]
    assert dict(c.envs) == {"NVIDIA_VISIBLE_DEVICES": GPU1_1G_NEW[0]}


def test_sighup_reads_the_gpus_again(kubelet, start_plugin, workdir):
    node = Node(workdir)
    plugin = start(kubelet, start_plugin, node)
    # nothing changed: nothing registers again
    plugin.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "The GPUs and MIG devices are as they were (2 GPUs, 7 MIG devices)" in plugin.output(),
             lambda: "the unchanged rescan; log:\n" + plugin.output())
    time.sleep(0.5)
    assert len(kubelet.registrations) == 3
    node.write(GPU1_AFTER)
    plugin.proc.send_signal(signal.SIGHUP)
    changed_layout_served(kubelet, plugin)


def test_rescan_flag_signals_the_running_plugin(kubelet, start_plugin, workdir):
    node = Node(workdir)
    plugin = start(kubelet, start_plugin, node)
    pid_file = os.path.join(workdir, "nvdp", "plugin.pid")
    with open(pid_file) as f:
        assert f.read().split()[0] == str(plugin.proc.pid)
    node.write(GPU1_AFTER)
    r = subprocess.run([NVDP, "plugin", "--rescan", "--kubelet-socket", kubelet.socket], env=node.env(),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"Asked the device plugin (pid {plugin.proc.pid}) to read the GPUs again; its log says "
                        "what changed.\n")
    changed_layout_served(kubelet, plugin)
    assert plugin.stop() == 0
    assert not os.path.exists(pid_file)                 # removed at exit
    # nobody runs there any more: a clear error
    r = subprocess.run([NVDP, "plugin", "--rescan", "--kubelet-socket", kubelet.socket], env=node.env(),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert (f"nvdp plugin --rescan: no device plugin runs with this socket directory ({pid_file} does not exist; "
            "--kubelet-socket names the directory)") in r.stderr


def test_a_stale_pid_file_is_not_taken_for_a_plugin(kubelet, workdir):
    os.makedirs(os.path.join(workdir, "nvdp"))
    pid_file = os.path.join(workdir, "nvdp", "plugin.pid")
    with open(pid_file, "w") as f:
        f.write(f"{os.getpid()} 1\n")           # this process, but not started at tick 1: not the plugin
    r = subprocess.run([NVDP, "plugin", "--rescan", "--kubelet-socket", kubelet.socket],
                       env=fixture_env("a100-mig"), capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert f"({pid_file} names a process that is gone;" in r.stderr


def test_mig_manager_success_label(kubelet, start_plugin, workdir, api):
    node = Node(workdir)
    api.control("label?node=gpu-1&key=nvidia.com/mig.config.state&value=success")   # the layout at start
    plugin = start(kubelet, start_plugin, node, env={"NODE_NAME": "gpu-1", "KUBECONFIG": api.kubeconfig})
    wait_for(lambda: api.stats().get("watch", 0) >= 1 or "Watching" in plugin.output(),
             lambda: "the node watch; log:\n" + plugin.output(), timeout=5)
    time.sleep(0.5)
    assert "reading the GPUs again" not in plugin.output()     # "success" at start is the layout read
    # NVIDIA's MIG manager at work: pending, the new layout, then success
    api.control("label?node=gpu-1&key=nvidia.com/mig.config.state&value=pending")
    node.write(GPU1_AFTER)
    time.sleep(0.3)
    assert len(kubelet.registrations) == 3
    api.control("label?node=gpu-1&key=nvidia.com/mig.config.state&value=success")
    wait_for(lambda: "Node label nvidia.com/mig.config.state is now \"success\", reloading the configuration "
                     "and reading the GPUs again" in plugin.output(),
             lambda: "the label's rescan; log:\n" + plugin.output())
    changed_layout_served(kubelet, plugin)


def test_mig_strategy_none_does_not_follow_the_label(kubelet, start_plugin, workdir, api):
    node = Node(workdir)
    start_plugin(fixture=None, env=node.env(NODE_NAME="gpu-1", KUBECONFIG=api.kubeconfig))
    kubelet.wait_registrations(1)
    time.sleep(0.5)
    assert "watch" not in api.stats() and "list" not in api.stats()    # no watch at all: nothing to follow
