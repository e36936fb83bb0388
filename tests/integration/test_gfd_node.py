# SPDX-License-Identifier: Apache-2.0
"""nvdp gfd --output=node: the labels applied to the Node through the API server (the HTTPS/HTTP2
stand-in of tests/kube), for clusters without NFD."""
import json
import os
import subprocess
import time

from conftest import NVDP, fixture_env
from test_kube import api, apiserver, run_client, standin_bin  # noqa: F401  (pytest fixtures)

ANNOTATION = "nvdp.nvidia.com/gfd-labels"


def gfd(api, fixture="dgx-h100", *args, node="gpu-1"):
    argv = [NVDP, "gfd", "--oneshot", "--output=node", "--kubeconfig", api.kubeconfig, *args]
    if node:
        argv += ["--node-name", node]
    return subprocess.run(argv, env=fixture_env(fixture), capture_output=True, text=True, timeout=30)


def node(api, name="gpu-1"):
    r = run_client(api.kubeconfig, "get", name)
    assert r["rc"] == 0, r
    return r["body"]["metadata"]


def test_labels_applied_then_left_alone_when_unchanged(api):
    api.control("label?node=gpu-1&key=nvidia.com/gpu.present&value=true")   # set by the admin, not by us
    # --no-timestamp: each run's gfd.timestamp is its start second, so two runs a second apart differ
    # (this test failed whenever they did, e.g. under make asan)
    r = gfd(api, "dgx-h100", "--no-timestamp")
    assert r.returncode == 0, r.stderr
    assert "applied the labels to node gpu-1" in r.stderr
    meta = node(api)
    labels = meta["labels"]
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["nvidia.com/gpu.count"] == "8"
    assert labels["nvidia.com/gpu.family"] == "hopper"
    assert labels["kubernetes.io/hostname"] == "gpu-1"
    assert labels["nvidia.com/gpu.present"] == "true"
    recorded = meta["annotations"][ANNOTATION].split(",")
    assert "nvidia.com/gpu.product" in recorded and "nvidia.com/gpu.present" not in recorded
    patches = api.stats().get("patch", 0)
    # the same labels again: read, compared, not written
    r = gfd(api, "dgx-h100", "--no-timestamp")
    assert r.returncode == 0, r.stderr
    assert "labels unchanged on node gpu-1" in r.stderr
    assert api.stats().get("patch", 0) == patches


def test_labels_we_no_longer_set_are_removed_and_only_those(api):
    r = gfd(api, "a100-mig", "--mig-strategy=mixed")
    assert r.returncode == 0, r.stderr
    labels = node(api)["labels"]
    assert labels["nvidia.com/mig-1g.5gb.count"] == "2"
    assert labels["nvidia.com/mig.strategy"] == "mixed"
    api.control("label?node=gpu-1&key=nvidia.com/team&value=ml")  # someone else's
    # the node is re-labelled without MIG: the per-profile labels and the strategy go, the rest is updated
    r = gfd(api, "dgx-h100")
    assert r.returncode == 0, r.stderr
    labels = node(api)["labels"]
    assert not [k for k in labels if k.startswith("nvidia.com/mig-")]
    assert "nvidia.com/mig.strategy" not in labels
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["nvidia.com/team"] == "ml"                     # never ours: kept
    assert labels["kubernetes.io/hostname"] == "gpu-1"


def test_errors_are_one_clear_line(api):
    r = gfd(api, node=None)
    assert r.returncode == 1
    assert "--output=node: required flag node-name not set (--node-name, NODE_NAME)" in r.stderr
    r = gfd(api, node="gpu-404")
    assert r.returncode == 1
    assert 'Failed to label node gpu-404' in r.stderr and 'nodes "gpu-404" not found' in r.stderr


MPS_2 = """version: v1
sharing:
  mps:
    resources:
    - name: nvidia.com/gpu
      replicas: 2
"""


def labels_of(path):
    with open(path) as f:
        return dict(line.split("=", 1) for line in f.read().splitlines())


def wait_until(cond, what, timeout=15):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what())
        time.sleep(0.05)


def test_gfd_follows_the_node_config_label(api, tmp_path):
    # The chart's per-node mode: GFD labels the node from the config its label selects, as the plugin and
    # the MPS daemon use it; nvidia.com/mps.capable places the MPS control daemon's DaemonSet.
    src = tmp_path / "available-configs"
    src.mkdir()
    (src / "default").write_text("version: v1\n")
    (src / "mps-2").write_text(MPS_2)
    api.control("label?node=gpu-1&key=nvidia.com/device-plugin.config&value=mps-2")
    out = tmp_path / "gfd"
    env = fixture_env("dgx-h100")
    env.update({"CONFIG_FILE_SRCDIR": str(src), "DEFAULT_CONFIG": "default", "NODE_NAME": "gpu-1",
                "KUBECONFIG": api.kubeconfig})
    logfile = tmp_path / "gfd.log"
    with open(logfile, "w") as f:
        p = subprocess.Popen([NVDP, "gfd", "--use-node-feature-api=false", "--output-file", str(out),
                              "--no-timestamp", "--sleep-interval", "infinite"],
                             env=env, stdout=f, stderr=subprocess.STDOUT)

    def output():
        return logfile.read_text()
    try:
        wait_until(lambda: "wrote " in output(), output)
        # the first labels are the labelled config's: never mps.capable=false for a moment
        labels = labels_of(out)
        assert labels["nvidia.com/mps.capable"] == "true"
        assert labels["nvidia.com/gpu.sharing-strategy"] == "mps"
        assert labels["nvidia.com/gpu.replicas"] == "2"
        assert output().count("wrote ") == 1
        assert ('Node label nvidia.com/device-plugin.config is now "mps-2": configuration reloaded, using '
                'config "mps-2" (node label nvidia.com/device-plugin.config=mps-2)') in output()
        # the label changes: the labels follow
        api.control("label?node=gpu-1&key=nvidia.com/device-plugin.config&value=default")
        wait_until(lambda: labels_of(out).get("nvidia.com/mps.capable") == "false", output)
        assert labels_of(out)["nvidia.com/gpu.sharing-strategy"] == "none"
        # a label naming no config: the previous config stays, said in one line
        api.control("label?node=gpu-1&key=nvidia.com/device-plugin.config&value=nope")
        wait_until(lambda: "names no config" in output(), output)
        assert labels_of(out)["nvidia.com/mps.capable"] == "false"
        p.terminate()
        assert p.wait(timeout=10) == 0
    finally:
        p.kill()
        p.wait()


def test_failed_round_tried_again_with_backoff(api):
    """A round that fails after the first (the API server down, or the Node gone for a while) is tried
    again after 1 s, 2 s, ... up to the sleep interval, not a whole interval later."""
    argv = [NVDP, "gfd", "--output=node", "--kubeconfig", api.kubeconfig, "--node-name", "gpu-1",
            "--no-timestamp", "--sleep-interval=4s"]
    p = subprocess.Popen(argv, env=fixture_env("dgx-h100"), stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        def wait_line(text, timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                line = p.stderr.readline()
                lines.append(line)
                if text in line:
                    return time.monotonic()
            raise AssertionError(f"no '{text}' in:\n" + "".join(lines))

        wait_line("applied the labels to node gpu-1", 10)
        api.control("delete?node=gpu-1")                 # the next round (4 s later) fails
        wait_line("trying again in 1 s", 10)
        t2 = wait_line("trying again in 2 s", 5)
        api.control("label?node=gpu-1&key=x&value=1")     # back, without our labels
        t_applied = wait_line("applied the labels to node gpu-1", 5)
        assert t_applied - t2 < 3.5                      # 2 s after the last failure, not 4 s
        assert node(api)["labels"]["nvidia.com/gpu.count"] == "8"
    finally:
        p.terminate()
        p.wait(5)
