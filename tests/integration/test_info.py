# SPDX-License-Identifier: Apache-2.0
"""nvdp info on the simulated nodes: resources and labels as the plugin and GFD would produce them."""
import json
import os
import subprocess

from conftest import NVDP, fixture_env


def info(fixture, *args):
    p = subprocess.run([NVDP, "info", *args], env=fixture_env(fixture), capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_json_resources_follow_the_plugin_flags(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: gpu\n      rename: gpu.shared\n"
                   "      replicas: 3\n      devices: 2\n")
    got = json.loads(info("dgx-h100", "--json", "--config-file", str(cfg)))["resources"]
    assert got == [
        {"name": "nvidia.com/gpu", "devices": 6, "replicas": 1, "sharing": "none", "socket": "nvidia-gpu.sock"},
        {"name": "nvidia.com/gpu.shared", "devices": 6, "replicas": 3, "sharing": "time-slicing",
         "socket": "nvidia-gpu.shared.sock"},
    ]


def test_mig_mixed_resources_table():
    out = info("a100-mig", "--mig-strategy=mixed")
    table = out[out.index("Resources the device plugin would advertise"):].splitlines()
    assert table[0] == "Resources the device plugin would advertise (3):"
    assert [line.split()[:3] for line in table[2:]] == [
        ["nvidia.com/mig-1g.5gb", "2", "1"], ["nvidia.com/mig-2g.10gb", "3", "1"], ["nvidia.com/mig-3g.20gb", "2", "1"]]


def test_labels():
    out = info("dgx-h100", "--labels")
    labels = dict(line.strip().split("=", 1) for line in out[out.index("Node labels"):].splitlines()[1:])
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["nvidia.com/gpu.count"] == "8"
    assert labels["nvidia.com/gpu.machine"] == "DGXH100"
    assert labels["nvidia.com/gpu.family"] == "hopper"
    assert "nvidia.com/gfd.timestamp" not in labels


def test_bad_flag_is_one_line():
    p = subprocess.run([NVDP, "info", "--mig-strategy", "sometimes"], env=fixture_env("dgx-h100"),
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "sometimes" in p.stderr and "mig-strategy" in p.stderr
