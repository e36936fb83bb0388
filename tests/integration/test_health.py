# SPDX-License-Identifier: Apache-2.0
"""Device health on the simulated NVML: events are written to the mock's FIFO (docs/mock-nvml.md) and
the kubelet stand-in watches ListAndWatch. Expected values are the fixtures' UUIDs, written out."""
import os
import time

import pytest

from test_plugin import H100

A100_GPU0 = "GPU-4e1f7a2b-8c3d-4e5f-9a0b-1c2d3e4f5a60"
MIG_1G_A = "MIG-a1b2c3d4-0003-5e6f-8a9b-0c1d2e3f4a03"   # GPU 0, GI 13, 1g.5gb
MIG_1G_B = "MIG-a1b2c3d4-0004-5e6f-8a9b-0c1d2e3f4a04"   # GPU 0, GI 14, 1g.5gb
MIG_3G = "MIG-a1b2c3d4-0001-5e6f-8a9b-0c1d2e3f4a01"     # GPU 0, GI 1, 3g.20gb

TIME_SLICING_4 = """version: v1
sharing:
  timeSlicing:
    resources:
    - name: nvidia.com/gpu
      replicas: 4
"""


class Node:
    """A plugin on a simulated node with an events FIFO, registered with the kubelet stand-in."""

    def __init__(self, kubelet, start_plugin, workdir, fixture="dgx-h100", args=(), env=None,
                 resource="nvidia.com/gpu", registrations=1):
        self.fifo = os.path.join(workdir, "nvml-events")
        os.mkfifo(self.fifo)
        e = {"MOCK_NVML_EVENTS": self.fifo}
        e.update(env or {})
        self.plugin = start_plugin(fixture=fixture, args=list(args), env=e)
        kubelet.wait_registrations(registrations)
        self.kubelet = kubelet
        self.client = kubelet.client(resource)
        self.client.wait_lists(1)
        # Opening a FIFO the mock holds open read-write never blocks.
        self.fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)

    def send(self, line):
        os.write(self.fd, (line + "\n").encode())
        return time.monotonic()

    def health(self, client=None):
        c = client or self.client
        return {d.ID: d.health for d in c.lists[-1].devices}

    def close(self):
        os.close(self.fd)


@pytest.fixture
def node(kubelet, start_plugin, workdir):
    nodes = []

    def make(**kw):
        n = Node(kubelet, start_plugin, workdir, **kw)
        nodes.append(n)
        return n

    yield make
    for n in nodes:
        n.close()


def unhealthy(lst):
    return sorted(d.ID for d in lst.devices if d.health != "Healthy")


def expect_only_gpu5_unhealthy(n, before):
    """Marker: after the event under test, XID 79 on GPU 5. Events are applied in order, so once GPU 5 is
    Unhealthy the earlier event has been handled; exactly one new list means it changed nothing."""
    n.send(f"xid {H100[5]} 79")
    last = n.client.wait_list(lambda l: unhealthy(l) == [H100[5]])
    assert len(n.client.lists) == before + 1
    return last


def test_xid79_marks_only_that_gpu_within_100ms(node):
    n = node()
    assert unhealthy(n.client.lists[-1]) == []
    sent = n.send(f"xid {H100[3]} 79")
    n.client.wait_list(lambda l: unhealthy(l) == [H100[3]])
    assert n.client.list_times[-1] - sent < 0.100
    assert n.health() == {u: ("Unhealthy" if i == 3 else "Healthy") for i, u in enumerate(H100)}
    out = n.plugin.output()
    assert (f"GPU 3 ({H100[3]}): XID 79 (GPU has fallen off the bus), class reboot (RESTART_BM): "
            "marked Unhealthy, the GPU is lost; it may recover after 5m0s without fatal events and a clean "
            "NVML re-probe") in out


def test_xid79_marks_every_replica_of_the_gpu(node, workdir):
    path = os.path.join(workdir, "config.yaml")
    with open(path, "w") as f:
        f.write(TIME_SLICING_4)
    n = node(args=["--config-file", path])
    assert len(n.client.lists[-1].devices) == 32
    n.send(f"xid {H100[3]} 79")
    last = n.client.wait_list(lambda l: len(unhealthy(l)) > 0)
    assert unhealthy(last) == [f"{H100[3]}::{r}" for r in range(4)]
    assert sum(1 for d in last.devices if d.health == "Healthy") == 28


def test_application_xid_13_changes_nothing(node):
    n = node()
    n.send(f"xid {H100[3]} 13")
    expect_only_gpu5_unhealthy(n, len(n.client.lists))
    assert f"GPU 3 ({H100[3]}): XID 13 (Graphics Engine Exception), class application (RESTART_APP): ignored" \
        in n.plugin.output()


@pytest.mark.parametrize("policy,xid,fatal", [
    ("catalog", 94, False),   # catalog: RESTART_APP (contained error)
    ("upstream", 94, True),   # upstream: not in its ignore list
    ("catalog", 109, True),   # catalog: RESET_GPU
    ("upstream", 109, False),  # upstream: in its default ignore list
])
def test_policy_decides(node, policy, xid, fatal):
    n = node(args=[f"--health-policy={policy}"])
    if fatal:
        n.send(f"xid {H100[2]} {xid}")
        n.client.wait_list(lambda l: unhealthy(l) == [H100[2]])
        assert len(n.client.lists) == 2
    else:
        n.send(f"xid {H100[2]} {xid}")
        expect_only_gpu5_unhealthy(n, len(n.client.lists))


@pytest.mark.parametrize("policy,fatal", [("catalog", True), ("upstream", False)])
def test_double_bit_ecc(node, policy, fatal):
    n = node(args=[f"--health-policy={policy}"])
    n.send(f"dbe {H100[6]}")
    if fatal:
        n.client.wait_list(lambda l: unhealthy(l) == [H100[6]])
    else:
        expect_only_gpu5_unhealthy(n, len(n.client.lists))


def test_recovers_after_quiet_period_and_clean_reprobe(node):
    n = node(args=["--health-recovery-interval=1s"])
    sent = n.send(f"xid {H100[1]} 95")
    n.client.wait_list(lambda l: unhealthy(l) == [H100[1]])
    n.client.wait_list(lambda l: unhealthy(l) == [], timeout=5)
    took = n.client.list_times[-1] - sent
    assert 1.0 <= took < 2.5
    assert len(n.client.lists) == 3
    assert f"GPU 1 ({H100[1]}): re-probe clean after 1." in n.plugin.output()


def test_new_fatal_event_restarts_the_quiet_period(node):
    n = node(args=["--health-recovery-interval=1s"])
    sent = n.send(f"xid {H100[1]} 95")
    n.client.wait_list(lambda l: unhealthy(l) == [H100[1]])
    time.sleep(0.7)
    n.send(f"xid {H100[1]} 48")
    n.client.wait_list(lambda l: unhealthy(l) == [], timeout=5)
    assert n.client.list_times[-1] - sent >= 1.7
    assert "still Unhealthy, the quiet period starts over" in n.plugin.output()


def test_lost_gpu_stays_unhealthy_while_reprobe_fails(node):
    n = node(args=["--health-recovery-interval=1s"])
    n.send(f"lost {H100[4]}")
    n.send(f"xid {H100[4]} 79")
    n.client.wait_list(lambda l: unhealthy(l) == [H100[4]])
    failed = f"GPU 4 ({H100[4]}): re-probe failed: nvmlDeviceGetHandleByUUID: GPU is lost"
    deadline = time.monotonic() + 10
    while n.plugin.output().count(failed) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert n.plugin.output().count(failed) >= 2
    assert unhealthy(n.client.lists[-1]) == [H100[4]]
    assert len(n.client.lists) == 2
    # Back on the bus: the next re-probe succeeds.
    n.send(f"found {H100[4]}")
    n.client.wait_list(lambda l: unhealthy(l) == [], timeout=5)


def test_upstream_policy_never_recovers(node):
    n = node(args=["--health-policy=upstream", "--health-recovery-interval=1s"])
    n.send(f"xid {H100[1]} 95")
    n.client.wait_list(lambda l: unhealthy(l) == [H100[1]])
    time.sleep(2)
    assert len(n.client.lists) == 2
    assert "it stays Unhealthy until the plugin restarts (health policy upstream)" in n.plugin.output()


def test_disable_healthchecks_all(node):
    n = node(env={"DP_DISABLE_HEALTHCHECKS": "all"})
    n.send(f"xid {H100[3]} 79")
    time.sleep(1)
    assert len(n.client.lists) == 1
    assert unhealthy(n.client.lists[-1]) == []
    assert "Health checks are disabled (DP_DISABLE_HEALTHCHECKS=all)" in n.plugin.output()


def test_disable_list_and_enable_list(node):
    n = node(env={"DP_DISABLE_HEALTHCHECKS": "95", "DP_ENABLE_HEALTHCHECKS": "13"})
    n.send(f"xid {H100[0]} 95")
    n.send(f"xid {H100[2]} 13")
    n.client.wait_list(lambda l: unhealthy(l) == [H100[2]])
    assert len(n.client.lists) == 2


def test_mig_event_marks_only_that_instance(kubelet, node):
    n = node(fixture="a100-mig", args=["--mig-strategy=mixed"], resource="nvidia.com/mig-1g.5gb",
             registrations=3)
    c1g = n.client
    c3g = kubelet.client("nvidia.com/mig-3g.20gb")
    c3g.wait_lists(1)
    assert unhealthy(c1g.lists[-1]) == []
    n.send(f"xid {MIG_1G_A} 94")    # RESTART_APP: ignored
    n.send(f"xid {MIG_1G_A} 95")    # RESET_GPU on GI 13 only
    c1g.wait_list(lambda l: unhealthy(l) == [MIG_1G_A])
    assert {d.ID: d.health for d in c1g.lists[-1].devices} == {MIG_1G_A: "Unhealthy", MIG_1G_B: "Healthy"}
    assert len(c1g.lists) == 2
    # Other resources of the same GPU are untouched.
    assert all(unhealthy(lst) == [] for lst in c3g.lists)
    assert (f"MIG device 0:2 ({MIG_1G_A}): XID 95 (Uncontained memory error), class reset-gpu (RESET_GPU): "
            "marked Unhealthy") in n.plugin.output()


def test_gpu_event_marks_every_mig_device_of_it(kubelet, node):
    n = node(fixture="a100-mig", args=["--mig-strategy=mixed"], resource="nvidia.com/mig-1g.5gb",
             registrations=3)
    n.send(f"xid {A100_GPU0} 79")
    n.client.wait_list(lambda l: unhealthy(l) == sorted([MIG_1G_A, MIG_1G_B]))
    c3g = kubelet.client("nvidia.com/mig-3g.20gb")
    c3g.wait_list(lambda l: MIG_3G in unhealthy(l))
    # GPU 1's 3g.20gb instance stays Healthy.
    assert len(c3g.lists[-1].devices) == 2 and len(unhealthy(c3g.lists[-1])) == 1


def test_event_wait_error_marks_every_gpu_then_they_recover(node):
    n = node(args=["--health-recovery-interval=1s"])
    n.send("wait-error 999")
    n.client.wait_list(lambda l: unhealthy(l) == sorted(H100))
    assert "waiting for NVML events failed: Unknown Error" in n.plugin.output()
    n.client.wait_list(lambda l: unhealthy(l) == [], timeout=6)


def test_event_wait_error_with_a_lost_gpu_blames_only_that_gpu(node):
    n = node(args=["--health-recovery-interval=1s"])
    n.send(f"lost {H100[4]}")
    n.send("wait-error 15")
    n.client.wait_list(lambda l: unhealthy(l) == [H100[4]])
    assert (f"GPU 4 ({H100[4]}): waiting for NVML events failed: GPU is lost; the GPU answers "
            "NVML_ERROR_GPU_IS_LOST (health events cannot be read): marked Unhealthy, the GPU is lost") \
        in n.plugin.output()
    # The other GPUs are still watched on the rebuilt event set ...
    n.send(f"xid {H100[2]} 95")
    n.client.wait_list(lambda l: unhealthy(l) == sorted([H100[2], H100[4]]))
    # ... GPU 2 recovers, GPU 4 does not while lost; back on the bus it is watched again.
    n.client.wait_list(lambda l: unhealthy(l) == [H100[4]], timeout=5)
    n.send(f"found {H100[4]}")
    n.client.wait_list(lambda l: unhealthy(l) == [], timeout=5)
    n.send(f"xid {H100[4]} 79")
    n.client.wait_list(lambda l: unhealthy(l) == [H100[4]])


def test_event_wait_error_with_a_lost_gpu_upstream_marks_all(node):
    n = node(args=["--health-policy=upstream"])
    n.send(f"lost {H100[4]}")
    n.send("wait-error 15")
    n.client.wait_list(lambda l: unhealthy(l) == sorted(H100))


def test_preferred_allocation_skips_the_dead_gpu(node):
    n = node()
    n.send(f"xid {H100[3]} 79")
    n.client.wait_list(lambda l: unhealthy(l) == [H100[3]])
    got = n.client.preferred(H100, [], 4)
    # NUMA node 0 has three healthy GPUs left, NUMA node 1 all four: the set stays on one node.
    assert got == [H100[i] for i in (4, 5, 6, 7)]
    # Asked for 3 out of NUMA node 0, the dead GPU is not offered even though it is "available".
    assert n.client.preferred(H100[:4], [], 3) == [H100[i] for i in (0, 1, 2)]


def test_sigterm_with_the_health_thread_running_is_quick(node):
    """The watch thread waits in NVML an hour at a time: shutdown leaves it there instead of joining it."""
    n = node()
    start = time.monotonic()
    assert n.plugin.stop() == 0
    assert time.monotonic() - start < 1.0


def context_switches(pid):
    """{thread id: voluntary + involuntary context switches}: a thread that is never woken keeps its count."""
    res = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            res[tid] = sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
    return res


def test_idle_plugin_threads_are_never_woken(node):
    """No periodic wake-up anywhere: neither the loop nor the health threads (the watch thread and,
    after a re-probe, the probe thread) run at all while nothing happens."""
    n = node(args=["--health-recovery-interval=1s"])
    n.send(f"xid {H100[1]} 79")
    n.client.wait_list(lambda l: unhealthy(l) == [H100[1]])
    n.client.wait_list(lambda l: unhealthy(l) == [], timeout=5)
    time.sleep(0.3)
    before = context_switches(n.plugin.proc.pid)
    assert len(before) == 3, "the loop, the watch and the probe thread"
    time.sleep(2)
    assert context_switches(n.plugin.proc.pid) == before
    # Still watching: an event wakes it.
    n.send(f"xid {H100[2]} 79")
    n.client.wait_list(lambda l: unhealthy(l) == [H100[2]])
