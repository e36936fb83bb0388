# SPDX-License-Identifier: Apache-2.0
"""The plugin's /metrics and /healthz (--metrics-address) on the simulated 8x H100 node, scraped over
HTTP and read with prometheus_client's text-format parser (Debian python3-prometheus-client)."""
import http.client
import os
import re
import signal
import time

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from test_plugin import H100

GPU = "nvidia.com/gpu"


def metrics_port(plugin, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"Serving /metrics and /healthz on \S+ \(port (\d+)\)", plugin.output())
        if m:
            return int(m.group(1))
        assert plugin.proc.poll() is None, plugin.output()
        time.sleep(0.02)
    raise AssertionError("no metrics port in the log:\n" + plugin.output())


def get(port, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        c.close()


def scrape(port):
    """{(sample name, ((label, value), ...)): value}, every sample of the exposition."""
    status, headers, body = get(port, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    types = {}
    for family in text_string_to_metric_families(body):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def settled(port, name, want, timeout=5, **labels):
    """Scrapes until the sample has the value wanted (the kubelet stand-in sees a Register before the
    plugin has read the answer), then returns every sample."""
    deadline = time.monotonic() + timeout
    while True:
        samples, _ = scrape(port)
        if value(samples, name, **labels) == want or time.monotonic() > deadline:
            assert value(samples, name, **labels) == want
            return samples
        time.sleep(0.02)


def with_metrics(start_plugin, **kw):
    args = list(kw.pop("args", [])) + ["--metrics-address", "127.0.0.1:0"]
    plugin = start_plugin(args=args, **kw)
    return plugin, metrics_port(plugin)


def test_families_types_and_start_values(kubelet, start_plugin):
    plugin, port = with_metrics(start_plugin)
    kubelet.wait_registrations(1)
    kubelet.client().wait_lists(1)
    settled(port, "nvdp_registrations_total", 1, resource=GPU)
    samples, types = scrape(port)
    assert types == {
        "nvdp_build_info": "gauge",
        "nvdp_devices": "gauge",
        "nvdp_device_healthy": "gauge",
        "nvdp_endpoint_registered": "gauge",
        "nvdp_allocate_requests": "counter",
        "nvdp_allocate_duration_seconds": "histogram",
        "nvdp_preferred_allocation_requests": "counter",
        "nvdp_preferred_allocation_duration_seconds": "histogram",
        "nvdp_registrations": "counter",
        "nvdp_kubelet_restarts": "counter",
        "nvdp_config_reloads": "counter",
    }
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "VERSION")) as f:
        version = f.read().strip()
    assert value(samples, "nvdp_build_info", version=version) == 1
    assert value(samples, "nvdp_devices", resource=GPU, state="healthy") == 8
    assert value(samples, "nvdp_devices", resource=GPU, state="unhealthy") == 0
    for i, uuid in enumerate(H100):
        assert value(samples, "nvdp_device_healthy", resource=GPU, device=uuid, gpu_index=str(i), reason="") == 1
    assert value(samples, "nvdp_endpoint_registered", resource=GPU) == 1
    assert value(samples, "nvdp_registrations_total", resource=GPU) == 1
    assert value(samples, "nvdp_kubelet_restarts_total") == 0
    assert value(samples, "nvdp_allocate_requests_total", resource=GPU, result="ok") == 0
    assert value(samples, "nvdp_allocate_requests_total", resource=GPU, result="error") == 0
    assert value(samples, "nvdp_allocate_duration_seconds_count", resource=GPU) == 0
    assert value(samples, "nvdp_config_reloads_total", result="success") == 0
    assert value(samples, "nvdp_config_reloads_total", result="failure") == 0
    # 14 latency buckets from 5 us to 100 ms, then +Inf
    les = [dict(k[1])["le"] for k in samples if k[0] == "nvdp_allocate_duration_seconds_bucket"]
    assert les == ["5e-06", "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025",
                   "0.005", "0.01", "0.025", "0.05", "0.1", "+Inf"]


def test_allocate_and_preferred_are_counted_and_timed(kubelet, start_plugin):
    plugin, port = with_metrics(start_plugin)
    kubelet.wait_registrations(1)
    client = kubelet.client()
    client.wait_lists(1)
    client.allocate([H100[0]])
    client.allocate([H100[1], H100[2]], [H100[3]])
    with pytest.raises(grpc.RpcError):
        client.allocate(["GPU-does-not-exist"])
    assert client.preferred(H100, [], 2) == [H100[0], H100[1]]
    samples, _ = scrape(port)
    assert value(samples, "nvdp_allocate_requests_total", resource=GPU, result="ok") == 2
    assert value(samples, "nvdp_allocate_requests_total", resource=GPU, result="error") == 1
    assert value(samples, "nvdp_allocate_duration_seconds_count", resource=GPU) == 3
    assert value(samples, "nvdp_allocate_duration_seconds_bucket", resource=GPU, le="+Inf") == 3
    # each Allocate is answered in well under 100 ms: all three are in the last finite bucket
    assert value(samples, "nvdp_allocate_duration_seconds_bucket", resource=GPU, le="0.1") == 3
    assert 0 < value(samples, "nvdp_allocate_duration_seconds_sum", resource=GPU) < 0.3
    assert value(samples, "nvdp_preferred_allocation_requests_total", resource=GPU, result="ok") == 1
    assert value(samples, "nvdp_preferred_allocation_requests_total", resource=GPU, result="error") == 0
    assert value(samples, "nvdp_preferred_allocation_duration_seconds_count", resource=GPU) == 1


def test_healthz_is_503_until_registered(kubelet, start_plugin):
    kubelet.fail_with = "not now"
    plugin, port = with_metrics(start_plugin)
    time.sleep(0.3)
    assert get(port, "/healthz") == (503, {"Content-Type": "text/plain; charset=utf-8", "Content-Length": "48",
                                           "Connection": "close"},
                                     "not registered with the kubelet: nvidia.com/gpu\n")
    samples, _ = scrape(port)
    assert value(samples, "nvdp_endpoint_registered", resource=GPU) == 0
    assert value(samples, "nvdp_registrations_total", resource=GPU) == 0
    kubelet.fail_with = None
    kubelet.wait_registrations(1, timeout=15)
    deadline = time.monotonic() + 5
    while get(port, "/healthz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert get(port, "/healthz")[::2] == (200, "ok\n")
    samples, _ = scrape(port)
    assert value(samples, "nvdp_endpoint_registered", resource=GPU) == 1
    assert value(samples, "nvdp_registrations_total", resource=GPU) == 1
    assert get(port, "/nothing")[0] == 404
    assert get(port, "/metrics", method="POST")[0] == 405


def test_kubelet_restart_and_reload_are_counted(kubelet, start_plugin):
    plugin, port = with_metrics(start_plugin)
    # The stand-in records a Register before the plugin reads the answer: wait for the plugin's count
    # before restarting, or the restart cancels the answer in flight.
    kubelet.wait_registrations(1)
    settled(port, "nvdp_registrations_total", 1, resource=GPU)
    kubelet.restart()
    kubelet.wait_registrations(2)
    settled(port, "nvdp_registrations_total", 2, resource=GPU)
    kubelet.restart()
    kubelet.wait_registrations(3)
    samples = settled(port, "nvdp_registrations_total", 3, resource=GPU)
    assert value(samples, "nvdp_kubelet_restarts_total") == 2
    assert value(samples, "nvdp_config_reloads_total", result="success") == 0
    plugin.proc.send_signal(signal.SIGHUP)
    samples = settled(port, "nvdp_config_reloads_total", 1, result="success")
    assert value(samples, "nvdp_config_reloads_total", result="failure") == 0
    assert value(samples, "nvdp_endpoint_registered", resource=GPU) == 1


def test_reload_failure_is_counted(kubelet, start_plugin, workdir):
    config = os.path.join(workdir, "config.yaml")
    with open(config, "w") as f:
        f.write("version: v1\n")
    plugin, port = with_metrics(start_plugin, args=["--config-file", config])
    kubelet.wait_registrations(1)
    # Replaced at once, as a ConfigMap update does: the file watch reloads once, and fails.
    with open(config + ".new", "w") as f:
        f.write("version: v1\nflags:\n  migStrategy: sideways\n")
    os.replace(config + ".new", config)
    samples = settled(port, "nvdp_config_reloads_total", 1, result="failure")
    time.sleep(0.3)
    samples, _ = scrape(port)
    assert value(samples, "nvdp_config_reloads_total", result="failure") == 1
    assert value(samples, "nvdp_config_reloads_total", result="success") == 0
    assert "keeping the running one" in plugin.output()
    assert plugin.proc.poll() is None


def test_bad_metrics_address_is_an_error_naming_it(kubelet, start_plugin):
    plugin = start_plugin(args=["--metrics-address", "localhost"])
    assert plugin.proc.wait(5) == 1
    assert ('--metrics-address: invalid listen address "localhost": missing port (expected [host]:port, '
            'e.g. :2112, 127.0.0.1:2112 or [::1]:2112)') in plugin.output()
    assert kubelet.registrations == []


def test_metrics_address_from_env(kubelet, start_plugin):
    plugin = start_plugin(env={"METRICS_ADDRESS": "127.0.0.1:0"})
    port = metrics_port(plugin)
    kubelet.wait_registrations(1)
    samples, _ = scrape(port)
    assert value(samples, "nvdp_devices", resource=GPU, state="healthy") == 8


def test_no_metrics_server_by_default(kubelet, start_plugin):
    plugin = start_plugin()
    kubelet.wait_registrations(1)
    assert "Serving /metrics" not in plugin.output()
