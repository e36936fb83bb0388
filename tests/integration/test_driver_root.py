# SPDX-License-Identifier: Apache-2.0
"""The driver-root rule (docs/design.md, node_open): NVML is found under the container's mount of the
host's driver root, as the chart lays it out for the GPU Operator (driver under /run/nvidia/driver on the
host, mounted at /driver-root, DRIVER_ROOT_CTR_PATH set). The simulated library is placed only there:
the loader's own path has none."""
import os
import shutil
import subprocess

import pytest

from conftest import MOCK_DIR, NVDP, fixture_env


@pytest.fixture
def driver_root(tmp_path):
    lib = tmp_path / "driver-root" / "usr" / "lib" / "x86_64-linux-gnu"
    lib.mkdir(parents=True)
    shutil.copy(os.path.join(MOCK_DIR, "libnvidia-ml.so.1"), lib / "libnvidia-ml.so.1")
    return tmp_path / "driver-root"


def env_without_loader_path(driver_root, **extra):
    env = fixture_env("dgx-h100")
    env["LD_LIBRARY_PATH"] = str(driver_root.parent / "nothing-here")
    env.pop("NVIDIA_DRIVER_ROOT", None)
    env.update(extra)
    return env


def test_gfd_finds_nvml_under_the_container_driver_root(driver_root, tmp_path):
    out = tmp_path / "gfd"
    env = env_without_loader_path(driver_root, DRIVER_ROOT_CTR_PATH=str(driver_root))
    p = subprocess.run([NVDP, "gfd", "--oneshot", "--no-timestamp", "--use-node-feature-api=false", "--output-file",
                        str(out)], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    labels = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert labels["nvidia.com/gpu.count"] == "8"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"


def test_gfd_without_the_mount_says_where_it_looked(driver_root, tmp_path):
    env = env_without_loader_path(driver_root, DRIVER_ROOT_CTR_PATH=str(tmp_path / "not-mounted"))
    p = subprocess.run([NVDP, "gfd", "--oneshot", "--use-node-feature-api=false", "--output-file",
                        str(tmp_path / "gfd")], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "libnvidia-ml.so.1 not found" in p.stderr


def test_info_finds_nvml_under_the_container_driver_root(driver_root):
    env = env_without_loader_path(driver_root, DRIVER_ROOT_CTR_PATH=str(driver_root))
    p = subprocess.run([NVDP, "info", "--json"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert '"name": "NVIDIA H100 80GB HBM3"' in p.stdout


def test_info_on_the_host_takes_the_driver_root_flag(driver_root):
    env = env_without_loader_path(driver_root)
    p = subprocess.run([NVDP, "info", "--driver-root", str(driver_root), "--driver-root-ctr-path",
                        str(driver_root.parent / "not-mounted")], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert "NVIDIA H100 80GB HBM3" in p.stdout
