# SPDX-License-Identifier: Apache-2.0
"""The integration layer's kubelet stand-in and plugin runner (tests/integration/conftest.py), reused."""
import importlib.util
import os

_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration", "conftest.py")
_spec = importlib.util.spec_from_file_location("nvdp_integration_conftest", _path)
it = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(it)

Kubelet, Plugin, PluginClient, fixture_env, pb = it.Kubelet, it.Plugin, it.PluginClient, it.fixture_env, it.pb
NVDP, BUILD, REPO = it.NVDP, it.BUILD, it.REPO
workdir, kubelet, start_plugin = it.workdir, it.kubelet, it.start_plugin
