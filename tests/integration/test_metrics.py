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
        "nvdp_health_fatal_events": "counter",
        "nvdp_health_recoveries": "counter",
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


# ---- health: XIDs through the simulated NVML's event FIFO (docs/mock-nvml.md) ---------------------

class EventFifo:
    def __init__(self, workdir):
        self.path = os.path.join(workdir, "nvml-events")
        os.mkfifo(self.path)
        self.fd = None

    def send(self, line):
        if self.fd is None:   # the mock holds it open read-write: opening never blocks
            self.fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        os.write(self.fd, (line + "\n").encode())


def test_xid_changes_health_metrics(kubelet, start_plugin, workdir):
    fifo = EventFifo(workdir)
    plugin, port = with_metrics(start_plugin, env={"MOCK_NVML_EVENTS": fifo.path})
    kubelet.wait_registrations(1)
    kubelet.client().wait_lists(1)
    samples = settled(port, "nvdp_registrations_total", 1, resource=GPU)
    assert [k for k in samples if k[0] == "nvdp_xid_events_total"] == []
    assert value(samples, "nvdp_health_fatal_events_total", device=H100[3], gpu_index="3") == 0
    assert value(samples, "nvdp_health_recoveries_total", device=H100[3], gpu_index="3") == 0

    fifo.send(f"xid {H100[3]} 13")   # an application error: counted, not fatal
    fifo.send(f"xid {H100[3]} 79")   # fallen off the bus: fatal
    samples = settled(port, "nvdp_devices", 1, resource=GPU, state="unhealthy")
    assert value(samples, "nvdp_devices", resource=GPU, state="healthy") == 7
    assert value(samples, "nvdp_device_healthy", resource=GPU, device=H100[3], gpu_index="3",
                 reason="XID 79 (GPU has fallen off the bus)") == 0
    assert ("nvdp_device_healthy", (("device", H100[3]), ("gpu_index", "3"), ("reason", ""),
                                    ("resource", GPU))) not in samples
    for i in (0, 1, 2, 4, 5, 6, 7):
        assert value(samples, "nvdp_device_healthy", resource=GPU, device=H100[i], gpu_index=str(i), reason="") == 1
    assert value(samples, "nvdp_xid_events_total", device=H100[3], gpu_index="3", xid="13",
                 **{"class": "application"}) == 1
    assert value(samples, "nvdp_xid_events_total", device=H100[3], gpu_index="3", xid="79",
                 **{"class": "reboot"}) == 1
    assert value(samples, "nvdp_health_fatal_events_total", device=H100[3], gpu_index="3") == 1
    assert value(samples, "nvdp_health_fatal_events_total", device=H100[4], gpu_index="4") == 0
    # the kubelet's view agrees
    assert unhealthy_ids(kubelet.client()) == [H100[3]]

    fifo.send(f"xid {H100[3]} 79")
    samples = settled(port, "nvdp_health_fatal_events_total", 2, device=H100[3], gpu_index="3")
    assert value(samples, "nvdp_xid_events_total", device=H100[3], gpu_index="3", xid="79",
                 **{"class": "reboot"}) == 2
    assert value(samples, "nvdp_devices", resource=GPU, state="unhealthy") == 1
    # still registered: a bad GPU does not make the plugin unhealthy
    assert get(port, "/healthz")[::2] == (200, "ok\n")
    assert plugin.stop() == 0


def test_recovery_is_counted(kubelet, start_plugin, workdir):
    fifo = EventFifo(workdir)
    plugin, port = with_metrics(start_plugin, env={"MOCK_NVML_EVENTS": fifo.path},
                                args=["--health-recovery-interval=1s"])
    kubelet.wait_registrations(1)
    kubelet.client().wait_lists(1)
    fifo.send(f"xid {H100[1]} 95")   # RESET_GPU: fatal, and the GPU answers a re-probe afterwards
    samples = settled(port, "nvdp_devices", 1, resource=GPU, state="unhealthy")
    assert value(samples, "nvdp_device_healthy", resource=GPU, device=H100[1], gpu_index="1",
                 reason="XID 95 (Uncontained memory error)") == 0
    assert value(samples, "nvdp_health_recoveries_total", device=H100[1], gpu_index="1") == 0
    # after 1 s without fatal events and a clean re-probe
    samples = settled(port, "nvdp_health_recoveries_total", 1, device=H100[1], gpu_index="1")
    assert value(samples, "nvdp_devices", resource=GPU, state="unhealthy") == 0
    assert value(samples, "nvdp_device_healthy", resource=GPU, device=H100[1], gpu_index="1", reason="") == 1
    assert value(samples, "nvdp_health_fatal_events_total", device=H100[1], gpu_index="1") == 1
    assert value(samples, "nvdp_xid_events_total", device=H100[1], gpu_index="1", xid="95",
                 **{"class": "reset-gpu"}) == 1


def unhealthy_ids(client, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = sorted(d.ID for d in client.lists[-1].devices if d.health != "Healthy")
        if ids:
            return ids
        time.sleep(0.02)
    return []


# ---- Node events, against the kube-apiserver stand-in of tests/kube ------------------------------

from test_kube import ApiServer, apiserver, kubeconfig, standin_bin  # noqa: E402,F401  (fixtures)


def wait_events(api, n, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        events = api.control("events", "GET") or []   # the stand-in answers null for none
        if len(events) >= n or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


def test_health_changes_become_node_events(kubelet, start_plugin, workdir, apiserver, tmp_path):
    api = apiserver()
    kc = kubeconfig(tmp_path / "kc.yaml", "https://" + api.addr, api.ca, namespace="gpu-operator")
    fifo = EventFifo(workdir)
    plugin, port = with_metrics(start_plugin, env={"MOCK_NVML_EVENTS": fifo.path, "KUBECONFIG": kc,
                                                   "NODE_NAME": "gpu-1"})
    kubelet.wait_registrations(1)
    assert "Posting Node events for device health changes on node gpu-1" in plugin.output()
    fifo.send(f"xid {H100[3]} 79")
    events = wait_events(api, 1)
    fifo.send(f"xid {H100[3]} 79")    # already unhealthy: no second event
    fifo.send(f"xid {H100[5]} 48")    # another GPU: its own event
    events = wait_events(api, 2)
    settled(port, "nvdp_health_fatal_events_total", 2, device=H100[3], gpu_index="3")
    time.sleep(0.3)
    events = api.control("events", "GET") or []
    assert len(events) == 2, events
    got = [(e["type"], e["reason"], e["message"], e["involvedObject"]["kind"], e["involvedObject"]["name"],
            e["metadata"]["namespace"], e["source"]["component"], e["count"]) for e in events]
    assert got == [
        ("Warning", "GPUUnhealthy",
         f"GPU 3 ({H100[3]}) is unhealthy: XID 79 (GPU has fallen off the bus), class reboot",
         "Node", "gpu-1", "default", "nvidia-device-plugin", 1),
        ("Warning", "GPUUnhealthy",
         f"GPU 5 ({H100[5]}) is unhealthy: XID 48 (Double Bit ECC Error), class hardware",
         "Node", "gpu-1", "default", "nvidia-device-plugin", 1),
    ]
    assert plugin.stop() == 0   # clean exit (under ASAN: no leak)


def test_node_event_posted_again_after_the_api_server_failed(kubelet, start_plugin, workdir, apiserver,
                                                             tmp_path):
    api = apiserver()
    kc = kubeconfig(tmp_path / "kc.yaml", "https://" + api.addr, api.ca)
    fifo = EventFifo(workdir)
    plugin = start_plugin(env={"MOCK_NVML_EVENTS": fifo.path, "KUBECONFIG": kc, "NODE_NAME": "gpu-1"})
    kubelet.wait_registrations(1)
    api.control("fail-events?n=2")   # the API server answers 503 twice (restarting, overloaded)
    fifo.send(f"xid {H100[2]} 79")
    events = wait_events(api, 1, timeout=15)   # retried after 1 s, then 2 s
    assert [(e["reason"], e["involvedObject"]["name"]) for e in events] == [("GPUUnhealthy", "gpu-1")]
    assert api.stats().get("event-failed") == 2
    assert plugin.output().count("cannot post (will retry) the GPUUnhealthy event of " + H100[2]) == 2
    time.sleep(0.5)
    assert len(api.control("events", "GET")) == 1   # posted once, not once per attempt


def test_no_node_events_without_node_name(kubelet, start_plugin):
    plugin = start_plugin(env={"KUBECONFIG": "/nonexistent"})
    kubelet.wait_registrations(1)
    assert "No Node events for device health changes: NODE_NAME is not set" in plugin.output()


def test_no_node_events_without_api_configuration(kubelet, start_plugin):
    env = {"NODE_NAME": "gpu-1", "KUBECONFIG": ""}
    plugin = start_plugin(env=env)
    kubelet.wait_registrations(1)
    assert ("No Node events for device health changes: No Kubernetes API configuration: not in a pod "
            "(KUBERNETES_SERVICE_HOST unset) and no kubeconfig given (--kubeconfig or KUBECONFIG)") in plugin.output()


def test_node_events_false_posts_none(kubelet, start_plugin, workdir, apiserver, tmp_path):
    # The chart's events.enabled=false: NODE_NAME and the API token are still there for the config label
    # (and the service account may not create events), so NODE_EVENTS=false is what keeps the plugin quiet.
    api = apiserver()
    kc = kubeconfig(tmp_path / "kc.yaml", "https://" + api.addr, api.ca)
    fifo = EventFifo(workdir)
    plugin, port = with_metrics(start_plugin, env={"MOCK_NVML_EVENTS": fifo.path, "KUBECONFIG": kc,
                                                   "NODE_NAME": "gpu-1", "NODE_EVENTS": "false"})
    kubelet.wait_registrations(1)
    assert "No Node events for device health changes: --node-events=false (NODE_EVENTS)" in plugin.output()
    fifo.send(f"xid {H100[3]} 79")
    settled(port, "nvdp_health_fatal_events_total", 1, device=H100[3], gpu_index="3")
    time.sleep(0.5)
    assert (api.control("events", "GET") or []) == []
    assert plugin.stop() == 0
