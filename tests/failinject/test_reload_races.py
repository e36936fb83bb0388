# SPDX-License-Identifier: Apache-2.0
"""A config reload that lands while the plugin is re-registering after a kubelet restart must not start
the endpoint a second time (a second socket, a second Register, the kubelet's first connection cut).
Found by the soak (tests/soak): a reload every 1,000 Allocates and a restart every 500 coincide."""
import os
import signal
import time


def test_reload_during_reregistration_registers_once(workdir, kubelet, start_plugin):
    conf = os.path.join(workdir, "config.yaml")
    with open(conf, "w") as f:
        f.write("version: v1\nflags:\n  plugin:\n    deviceListStrategy: envvar\n")
    plugin = start_plugin(args=["--config-file", conf])
    kubelet.wait_registrations(1)
    kubelet.client().wait_lists(1)
    for i in range(5):
        seen = plugin.output().count("re-registering")
        kubelet.restart()
        deadline = time.monotonic() + 5
        while plugin.output().count("re-registering") == seen and time.monotonic() < deadline:
            time.sleep(0.001)
        plugin.proc.send_signal(signal.SIGHUP)     # lands while the plugin registers again
        kubelet.wait_registrations(2 + i)
        time.sleep(0.5)
        assert len(kubelet.registrations) == 2 + i, plugin.output()[-3000:]
        client = kubelet.client()
        client.wait_lists(1)
        resp = client.allocate([client.lists[-1].devices[0].ID])
        assert len(resp.container_responses) == 1
    assert plugin.proc.poll() is None
