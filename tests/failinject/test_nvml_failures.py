# SPDX-License-Identifier: Apache-2.0
"""Every NVML call the plugin makes, failing in turn (MOCK_NVML_FAIL), and a GPU lost mid-run.

The calls are not listed by hand: a first run with MOCK_NVML_TRACE records what the plugin calls on the
node. Then for each call, a fresh plugin runs with that call failing, every time and then only the first
time. Each run must end one of two ways within seconds: the plugin registers, lists its devices and
serves Allocate; or it exits non-zero with an error that names the call. Never a crash, a sanitizer
report, or a plugin that neither serves nor exits."""
import collections
import os
import signal
import tempfile
import time

import pytest
from conftest import Kubelet, Plugin, pb

H100_GPU3 = "GPU-e7f01b38-64c2-4d5a-b7e9-8c0d1e2f3a34"
CASES = {"dgx-h100": (), "rtx4070ti": (), "a100-mig": ("--mig-strategy=mixed",)}
RESOURCE = {"dgx-h100": "nvidia.com/gpu", "rtx4070ti": "nvidia.com/gpu", "a100-mig": "nvidia.com/mig-2g.10gb"}
BAD_OUTPUT = ("AddressSanitizer", "runtime error:", "LeakSanitizer", "Segmentation", "Aborted")


def run_once(fixture, args, env, timeout=10):
    """One plugin against a fresh kubelet: 'served', or ('exited', rc, output), or 'hung'."""
    with tempfile.TemporaryDirectory(prefix="nvdp-fi-") as d:
        k = Kubelet(d)
        p = Plugin(d, fixture=fixture, args=args, env=env)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if p.proc.poll() is not None:
                    out = p.output()
                    return ("exited", p.proc.returncode, out)
                with k.cond:
                    if any(r.resource_name == RESOURCE[fixture] for r, _ in k.registrations):
                        break
                time.sleep(0.02)
            else:
                return ("hung", None, p.output())
            client = k.client(RESOURCE[fixture])
            lst = client.wait_lists(1)
            assert lst.devices, "registered without devices"
            ids = [dev.ID for dev in lst.devices if dev.health == "Healthy"]
            # Allocate answers for any listed device; the kubelet only asks for healthy ones
            resp = client.allocate([(ids or [lst.devices[0].ID])[0]])
            assert len(resp.container_responses) == 1
            rc = p.stop()
            out = p.output()
            assert rc == 0, f"exit {rc} on SIGTERM:\n{out}"
            return ("served" if ids else "served-unhealthy", 0, out)
        finally:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
            k.close()


def traced_calls(fixture, args):
    with tempfile.NamedTemporaryFile(prefix="nvdp-trace-") as t:
        outcome = run_once(fixture, args, {"MOCK_NVML_TRACE": t.name})
        assert outcome[0] == "served", outcome
        return collections.Counter(line.strip() for line in open(t.name) if line.strip())


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_each_nvml_call_failing(fixture):
    args = CASES[fixture]
    calls = traced_calls(fixture, args)
    assert "nvmlInit_v2" in calls and "nvmlDeviceGetCount_v2" in calls
    tally = collections.Counter()
    problems, unhealthy = [], []
    for call in sorted(calls):
        specs = [call] + ([call + ":1"] if calls[call] > 1 else [])
        for spec in specs:
            env = {"MOCK_NVML_FAIL": spec}
            if call in ("nvmlShutdown", "nvmlEventSetFree"):
                # the simulated driver frees its fixture / event set only when these succeed: its leak
                env["ASAN_OPTIONS"] = "detect_leaks=0"
            try:
                kind, rc, out = run_once(fixture, args, env)
            except AssertionError as e:
                raise AssertionError(f"MOCK_NVML_FAIL={spec}: {e}") from None
            tally[kind] += 1
            bad = [b for b in BAD_OUTPUT if b in out]
            if kind == "hung":
                problems.append(f"{spec}: neither served nor exited in 10 s")
            elif kind == "exited" and (rc is None or rc <= 0):
                problems.append(f"{spec}: exited with {rc}")
            elif kind == "exited" and call not in out:
                problems.append(f"{spec}: the error does not name the call: {out.strip()[-300:]!r}")
            if bad:
                problems.append(f"{spec}: {bad} in the output:\n{out[-2000:]}")
            if kind == "served-unhealthy":
                unhealthy.append(spec)
    print(f"\n{fixture}: {len(calls)} distinct NVML calls ({sum(calls.values())} in all); "
          f"{sum(tally.values())} runs: {tally['served']} served, {tally['served-unhealthy']} served with "
          f"every device Unhealthy ({', '.join(unhealthy)}), {tally['exited']} exited with an error")
    assert not problems, "\n".join(problems)


def test_gpu_lost_mid_run_the_rest_are_served(workdir, kubelet, start_plugin):
    events = os.path.join(workdir, "nvml-events")
    plugin = start_plugin(env={"MOCK_NVML_EVENTS": events})
    kubelet.wait_registrations(1)
    client = kubelet.client()
    first = client.wait_lists(1)
    assert len(first.devices) == 8 and all(d.health == "Healthy" for d in first.devices)
    with open(events, "w") as f:
        # as the driver does it: the GPU stops answering and the event wait fails with GPU_IS_LOST (15)
        f.write(f"lost {H100_GPU3}\nwait-error 15\n")
    # the health thread finds which GPU is lost and blames only it; the seven others stay Healthy
    last = client.wait_list(lambda lst: any(d.ID == H100_GPU3 and d.health == "Unhealthy" for d in lst.devices),
                            timeout=10)
    assert plugin.proc.poll() is None, plugin.output()
    others = [d for d in last.devices if d.ID != H100_GPU3]
    assert len(others) == 7 and all(d.health == "Healthy" for d in others)
    for d in others[:3]:
        resp = client.allocate([d.ID])
        assert dict(resp.container_responses[0].envs)["NVIDIA_VISIBLE_DEVICES"] == d.ID
    assert client.stream_error is None
    assert plugin.stop() == 0
