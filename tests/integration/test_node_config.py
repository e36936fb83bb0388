# SPDX-License-Identifier: Apache-2.0
"""Per-node config: the plugin follows its Node's nvidia.com/device-plugin.config label (through the
API server stand-in of tests/kube) and switches between the configs of the chart's ConfigMap."""
import os
import time

from test_kube import api, apiserver, standin_bin  # noqa: F401  (pytest fixtures)
from test_plugin import H100
from test_sharing import TIME_SLICING, ids, write


def test_node_label_selects_the_config(api, kubelet, start_plugin, workdir):
    src = os.path.join(workdir, "available-configs")
    os.mkdir(src)
    write(os.path.join(src, "default"), "version: v1\n")
    write(os.path.join(src, "shared-4"), TIME_SLICING.format(fail="false", replicas=4))
    env = {"CONFIG_FILE_SRCDIR": src, "DEFAULT_CONFIG": "default", "NODE_NAME": "gpu-1",
           "KUBECONFIG": api.kubeconfig}
    plugin = start_plugin(env=env)
    kubelet.wait_registrations(1)
    assert ids(kubelet.client().wait_lists(1)) == H100                   # no label: the default config

    api.control("label?node=gpu-1&key=nvidia.com/device-plugin.config&value=shared-4")
    kubelet.wait_registrations(2, timeout=15)
    assert ids(kubelet.client().wait_lists(1)) == [f"{u}::{n}" for u in H100 for n in range(4)]

    # a label naming no config is reported; the running config stays
    api.control("label?node=gpu-1&key=nvidia.com/device-plugin.config&value=nope")
    deadline = time.monotonic() + 10
    while "names no config" not in plugin.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "node label nvidia.com/device-plugin.config=nope names no config" in plugin.output()
    assert len(kubelet.registrations) == 2 and plugin.proc.poll() is None

    # label removed: back to the default
    api.control("label?node=gpu-1&key=nvidia.com/device-plugin.config")
    kubelet.wait_registrations(3, timeout=15)
    assert ids(kubelet.client().wait_lists(1)) == H100
