# SPDX-License-Identifier: Apache-2.0
"""Config keys nvdp does not know: NVIDIA's plugin and GFD ignore them (a typo, a key of a newer release), so
a ConfigMap that works there must work here too: nvdp runs, applies the keys it knows, and logs one warning
per unknown key naming file, line and key, with the key meant where one is close. --strict-config (or
STRICT_CONFIG=true) refuses such a file as a clear one-line error."""
import os
import subprocess

from conftest import NVDP, fixture_env
from test_logs import messages
from test_plugin import H100, registered
from test_sharing import write

CONFIG = """version: v1
flags:
  renameByDefault: true
  plugin:
    passDevicSpecs: true
sharing:
  timeSlicing:
    resources:
    - name: nvidia.com/gpu
      replicas: 2
      renam: gpu.shared
"""


def test_unknown_keys_warn_and_the_plugin_serves(kubelet, start_plugin, workdir):
    cfg = os.path.join(workdir, "config.yaml")
    write(cfg, CONFIG)
    plugin, client = registered(kubelet, start_plugin, args=["--config-file", cfg])
    msg = client.wait_lists(1)
    # the keys it knows apply: 2 replicas of each GPU, under the unrenamed name
    assert kubelet.registrations[0][0].resource_name == "nvidia.com/gpu"
    assert sorted(d.ID for d in msg.devices) == sorted(f"{u}::{r}" for u in H100 for r in range(2))
    out = plugin.output()
    assert f"{cfg}:3: flags.renameByDefault: unknown key, ignored; did you mean " \
           "sharing.timeSlicing.renameByDefault or sharing.mps.renameByDefault?" in out
    assert f'{cfg}:5: flags.plugin.passDevicSpecs: unknown key, ignored; did you mean "passDeviceSpecs"?' in out
    assert f'{cfg}:11: sharing.timeSlicing.resources[0].renam: unknown key, ignored; did you mean "rename"?' in out
    # an Allocate carries no device specs: passDevicSpecs was not taken for passDeviceSpecs
    resp = client.allocate([H100[0] + "::0"])
    assert list(resp.container_responses[0].devices) == []


def test_strict_config_refuses_them(workdir, start_plugin):
    cfg = os.path.join(workdir, "config.yaml")
    write(cfg, CONFIG)
    plugin = start_plugin(args=["--config-file", cfg, "--strict-config"])
    assert plugin.proc.wait(5) == 1
    assert messages(plugin.output()) == [("E", f"nvdp plugin: {cfg}:3: flags.renameByDefault: unknown key; did you "
                                               "mean sharing.timeSlicing.renameByDefault or "
                                               "sharing.mps.renameByDefault?")]


def test_gfd_warns_too_and_strict_env_refuses(workdir):
    cfg = os.path.join(workdir, "config.yaml")
    write(cfg, "version: v1\nflags:\n  gfd:\n    oneshot: true\n    noTimestmp: true\n")
    out = os.path.join(workdir, "labels")
    env = fixture_env("dgx-h100")
    r = subprocess.run([NVDP, "gfd", "--use-node-feature-api=false", "--config-file", cfg, "--output-file", out,
                        "--machine-type-file", "/nonexistent"], env=env, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert f'{cfg}:5: flags.gfd.noTimestmp: unknown key, ignored; did you mean "noTimestamp"?' in r.stderr
    with open(out) as f:
        labels = f.read()
    assert "nvidia.com/gpu.count=8\n" in labels
    assert "nvidia.com/gfd.timestamp=" in labels      # noTimestamp was not taken from the typo
    env["STRICT_CONFIG"] = "true"
    r = subprocess.run([NVDP, "gfd", "--use-node-feature-api=false", "--config-file", cfg, "--output-file", out],
                       env=env,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert messages(r.stderr) == [("E", f'nvdp gfd: {cfg}:5: flags.gfd.noTimestmp: unknown key; did you mean '
                                        '"noTimestamp"?')]


def test_doctor_lists_them(workdir):
    cfg = os.path.join(workdir, "config.yaml")
    write(cfg, CONFIG)
    r = subprocess.run([NVDP, "doctor", "--no-cluster", "--no-nvml", "--root", workdir, "--config-file", cfg],
                       capture_output=True, text=True, timeout=20)
    line = next(l for l in r.stdout.splitlines() if "config.keys" in l)
    assert line.split()[0] == "warn"
    assert "3 warning(s)" in line
    for key in ("flags.renameByDefault", "flags.plugin.passDevicSpecs", "sharing.timeSlicing.resources[0].renam"):
        assert f"{key}: unknown key, ignored" in line, line
