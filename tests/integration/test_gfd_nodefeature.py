# SPDX-License-Identifier: Apache-2.0
"""nvdp gfd in NodeFeature mode (--use-node-feature-api, on by default as upstream's GFD since v0.19.0): the
labels go into the node's NodeFeature object (nfd.k8s-sigs.io/v1alpha1) in GFD's namespace, from which NFD's
master labels the Node. Against the API stand-in of tests/kube (HTTPS, HTTP/2): the object as created, left
alone while the labels stay, updated when they change, and the errors."""
import os
import subprocess

from conftest import NVDP, fixture_env
from test_kube import api, apiserver, standin_bin  # noqa: F401  (pytest fixtures)

NS = "nvdp-system"
KEY = NS + "/nvidia-features-for-gpu-1"

# The simulated 8x H100 node (mock/nvml/fixtures/dgx-h100.yaml: driver 580.105.08, CUDA 13.0, compute
# capability 9.0, 81559 MiB, PCI class 0x0302) without a machine type file and without a timestamp.
H100_LABELS = {
    "nvidia.com/cuda.driver-version.full": "580.105.08",
    "nvidia.com/cuda.driver-version.major": "580",
    "nvidia.com/cuda.driver-version.minor": "105",
    "nvidia.com/cuda.driver-version.revision": "08",
    "nvidia.com/cuda.driver.major": "580",
    "nvidia.com/cuda.driver.minor": "105",
    "nvidia.com/cuda.driver.rev": "08",
    "nvidia.com/cuda.runtime-version.full": "13.0",
    "nvidia.com/cuda.runtime-version.major": "13",
    "nvidia.com/cuda.runtime-version.minor": "0",
    "nvidia.com/cuda.runtime.major": "13",
    "nvidia.com/cuda.runtime.minor": "0",
    "nvidia.com/gpu.compute.major": "9",
    "nvidia.com/gpu.compute.minor": "0",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.family": "hopper",
    "nvidia.com/gpu.machine": "unknown",
    "nvidia.com/gpu.memory": "81559",
    "nvidia.com/gpu.mode": "compute",
    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    "nvidia.com/gpu.replicas": "1",
    "nvidia.com/gpu.sharing-strategy": "none",
    "nvidia.com/mig.capable": "true",
    "nvidia.com/mps.capable": "false",
    "nvidia.com/vgpu.present": "false",
}


def expected(labels, uid="nf-uid-1"):
    """The object as the stand-in stores it (resourceVersion left out: the server's counter)."""
    return {
        "apiVersion": "nfd.k8s-sigs.io/v1alpha1",
        "kind": "NodeFeature",
        "metadata": {
            "name": "nvidia-features-for-gpu-1",
            "namespace": NS,
            "uid": uid,
            "labels": {"nfd.node.kubernetes.io/node-name": "gpu-1"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "gpu-1", "uid": "uid-gpu-1"}],
        },
        "spec": {"features": {"flags": {}, "attributes": {}, "instances": {}}, "labels": labels},
    }


def gfd(api, fixture="dgx-h100", *args, node="gpu-1", env=None):
    argv = [NVDP, "gfd", "--oneshot", "--no-timestamp", "--machine-type-file", "/nonexistent", "--kubeconfig",
            api.kubeconfig, *args]
    e = fixture_env(fixture)
    e.pop("NODE_NAME", None)
    e["NAMESPACE"] = NS
    if node:
        e["NODE_NAME"] = node
    e.update(env or {})
    return subprocess.run(argv, env=e, capture_output=True, text=True, timeout=30)


def objects(api):
    objs = api.control("nodefeatures", "GET")
    for o in objs.values():
        o["metadata"].pop("resourceVersion")
    return objs


def test_created_then_left_alone_then_updated(api):
    r = gfd(api)
    assert r.returncode == 0, r.stderr
    assert "applied the labels to the NodeFeature of node gpu-1" in r.stderr
    assert objects(api) == {KEY: expected(H100_LABELS)}
    assert api.stats() == {"nodefeature-get": 1, "get": 1, "nodefeature-create": 1}

    # the same labels again: read, compared, not written (and the Node not read)
    r = gfd(api)
    assert r.returncode == 0, r.stderr
    assert "labels unchanged on the NodeFeature of node gpu-1" in r.stderr
    assert api.stats() == {"nodefeature-get": 2, "get": 1, "nodefeature-create": 1}

    # someone else changed spec.labels: set back, in place (an update, same object)
    api.control(f"nodefeature-label?ns={NS}&name=nvidia-features-for-gpu-1&key=nvidia.com/gpu.count&value=7")
    api.control(f"nodefeature-label?ns={NS}&name=nvidia-features-for-gpu-1&key=example.com/extra&value=x")
    r = gfd(api)
    assert r.returncode == 0, r.stderr
    assert "applied the labels to the NodeFeature of node gpu-1" in r.stderr
    assert objects(api) == {KEY: expected(H100_LABELS)}
    assert api.stats()["nodefeature-update"] == 1

    # the node's GPUs changed: the object holds exactly the new labels (the H100's keys that are gone, gone)
    r = gfd(api, "a100-mig", "--mig-strategy=mixed")
    assert r.returncode == 0, r.stderr
    labels = objects(api)[KEY]["spec"]["labels"]
    assert labels["nvidia.com/mig.strategy"] == "mixed"
    assert labels["nvidia.com/mig-1g.5gb.count"] == "2"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB"
    assert "nvidia.com/gpu.family" in labels and labels["nvidia.com/gpu.family"] == "ampere"
    assert api.stats()["nodefeature-update"] == 2
    assert api.stats()["nodefeature-create"] == 1


def test_made_again_after_the_garbage_collector_removed_it(api):
    assert gfd(api).returncode == 0
    api.control(f"nodefeature-delete?ns={NS}&name=nvidia-features-for-gpu-1")
    r = gfd(api)
    assert r.returncode == 0, r.stderr
    assert objects(api) == {KEY: expected(H100_LABELS, uid="nf-uid-2")}


def test_the_flag_and_the_env_turn_it_off(api, tmp_path):
    for args, env in (["--use-node-feature-api=false"], {}), ([], {"GFD_USE_NODE_FEATURE_API": "false"}), \
            ([], {"USE_NODE_FEATURE_API": "false"}):
        out = tmp_path / "gfd"
        r = gfd(api, "dgx-h100", "--output-file", str(out), *args, env=env)
        assert r.returncode == 0, r.stderr
        assert "nvidia.com/gpu.count=8\n" in out.read_text()
        out.unlink()
    assert objects(api) == {}
    assert api.stats() == {}


def test_errors_are_one_clear_line(api):
    # upstream's words: NodeFeature mode needs the node's name
    r = gfd(api, node=None)
    assert r.returncode == 1
    assert "--use-node-feature-api: required flag node-name not set (--node-name, NODE_NAME)" in r.stderr
    r = gfd(api, env={"NAMESPACE": ""})
    assert r.returncode == 1
    assert "--use-node-feature-api: required flag namespace not set (--namespace, NAMESPACE)" in r.stderr
    # a Node the API server does not know: nothing is created
    r = gfd(api, node="gpu-404")
    assert r.returncode == 1
    assert "Failed to label node gpu-404 through its NodeFeature" in r.stderr
    assert 'nodes "gpu-404" not found' in r.stderr
    assert objects(api) == {}
