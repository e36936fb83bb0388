# SPDX-License-Identifier: Apache-2.0
"""src/kube/ against a kube-apiserver stand-in (tests/kube, Go: HTTPS + HTTP/2, a CA made at start).

The C side is build/tests/helpers/kube-test-client (see its header comment). Each test starts its own stand-in.
"""
import json
import os
import queue
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import BUILD, REPO

CLIENT = os.path.join(BUILD, "tests", "helpers", "kube-test-client")
TOKEN = "s3cr3t-token"


@pytest.fixture(scope="session")
def standin_bin(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("kube-standin") / "kube-standin")
    subprocess.run(["go", "build", "-o", out, "."], cwd=os.path.join(REPO, "tests", "kube"), check=True,
                   timeout=120)
    return out


class ApiServer:
    def __init__(self, binary, workdir, wrong_host=False, nodes=("gpu-1",)):
        self.dir = str(workdir)
        args = [binary, "-dir", self.dir, "-token", TOKEN]
        if wrong_host:
            args.append("-wrong-host")
        for n in nodes:
            args += ["-node", n]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "ready", self.proc.stderr.read()
        self.addr = line[1]
        self.port = int(self.addr.rsplit(":", 1)[1])
        self.ca = os.path.join(self.dir, "ca.crt")
        self.ctx = ssl.create_default_context(cafile=self.ca)
        if wrong_host:
            self.ctx.check_hostname = False

    def control(self, path, method="POST"):
        req = urllib.request.Request("https://%s/_test/%s" % (self.addr, path), method=method)
        with urllib.request.urlopen(req, context=self.ctx, timeout=5) as r:
            return json.loads(r.read())

    def stats(self):
        return self.control("stats", "GET")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def apiserver(standin_bin, tmp_path):
    servers = []

    def start(**kw):
        d = tmp_path / ("srv%d" % len(servers))
        d.mkdir()
        s = ApiServer(standin_bin, d, **kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def kubeconfig(path, server, ca_file=None, token=TOKEN, cert=None, key=None, namespace="nvdp-test"):
    user = {}
    if token:
        user["token"] = token
    if cert:
        user["client-certificate"] = cert
        user["client-key"] = key
    cfg = {
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": ca_file}}],
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u", "namespace": namespace}}],
        "users": [{"name": "u", "user": user}],
    }
    with open(path, "w") as f:
        json.dump(cfg, f)  # JSON is YAML
    return str(path)


def run_client(kc, *args, env=None, extra=()):
    argv = [CLIENT] + (["--kubeconfig", kc] if kc else []) + list(extra) + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=25, env=env)
    out = {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
    for line in p.stdout.splitlines():
        if line.startswith("status "):
            out["status"] = int(line.split()[1])
        elif line.startswith("error: "):
            out["error"] = line[len("error: "):]
        elif line.startswith("body: "):
            out["body"] = json.loads(line[len("body: "):])
    return out


@pytest.fixture
def api(apiserver, tmp_path):
    s = apiserver()
    s.kubeconfig = kubeconfig(tmp_path / "kc.yaml", "https://" + s.addr, s.ca)
    return s


def test_get_node(api):
    r = run_client(api.kubeconfig, "get", "gpu-1")
    assert r["rc"] == 0, r
    assert r["status"] == 200
    assert r["body"]["kind"] == "Node"
    assert r["body"]["metadata"]["name"] == "gpu-1"
    assert r["body"]["metadata"]["labels"] == {"kubernetes.io/hostname": "gpu-1"}


def test_hostname_verified_by_dns_name(apiserver, tmp_path):
    # "localhost" is a DNS SAN of the certificate (127.0.0.1 is its IP SAN): both ways verify.
    s = apiserver()
    kc = kubeconfig(tmp_path / "kc.yaml", "https://localhost:%d" % s.port, s.ca)
    r = run_client(kc, "get", "gpu-1")
    assert r["status"] == 200, r


def test_patch_labels(api):
    r = run_client(api.kubeconfig, "patch", "gpu-1", "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3",
                   "nvidia.com/gpu.count=8", "-kubernetes.io/hostname")
    assert r["status"] == 200, r
    assert r["body"]["metadata"]["labels"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                                               "nvidia.com/gpu.count": "8"}
    r = run_client(api.kubeconfig, "patch", "gpu-1", "nvidia.com/gpu.count=4", "-nvidia.com/gpu.product")
    assert r["body"]["metadata"]["labels"] == {"nvidia.com/gpu.count": "4"}
    assert run_client(api.kubeconfig, "get", "gpu-1")["body"]["metadata"]["labels"] == {"nvidia.com/gpu.count": "4"}
    assert api.stats()["patch"] == 2


def test_post_event(api):
    before = time.time()
    r = run_client(api.kubeconfig, "event", "gpu-1", "Warning", "DeviceUnhealthy",
                   'GPU-1234 had XID 79 ("fallen off the bus")')
    assert r["status"] == 201, r
    events = api.control("events", "GET")
    assert len(events) == 1
    e = events[0]
    assert e["metadata"]["namespace"] == "nvdp-test"
    assert e["metadata"]["name"].startswith("gpu-1.")
    assert e["involvedObject"] == {"apiVersion": "v1", "kind": "Node", "name": "gpu-1", "uid": "gpu-1"}
    assert e["reason"] == "DeviceUnhealthy"
    assert e["message"] == 'GPU-1234 had XID 79 ("fallen off the bus")'
    assert e["type"] == "Warning"
    assert e["source"] == {"component": "nvidia-device-plugin", "host": "gpu-1"}
    assert e["count"] == 1
    ts = time.mktime(time.strptime(e["firstTimestamp"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert before - 2 <= ts <= time.time() + 2
    assert e["lastTimestamp"] == e["firstTimestamp"]


def test_http_errors_carry_the_api_message(api, tmp_path):
    r = run_client(api.kubeconfig, "get", "gpu-missing")
    assert r["rc"] == 1 and r["status"] == 404
    assert r["error"] == 'GET https://%s/api/v1/nodes/gpu-missing: 404 Not Found: nodes "gpu-missing" not found' % api.addr

    r = run_client(api.kubeconfig, "get", "forbidden-node")
    assert r["status"] == 403
    assert r["error"].startswith("GET https://%s/api/v1/nodes/forbidden-node: 403 Forbidden: " % api.addr)
    assert 'User "system:serviceaccount:kube-system:nvdp" cannot get resource "nodes"' in r["error"]

    bad = kubeconfig(tmp_path / "bad.yaml", "https://" + api.addr, api.ca, token="wrong")
    r = run_client(bad, "patch", "gpu-1", "a=b")
    assert r["status"] == 401
    assert r["error"] == "PATCH https://%s/api/v1/nodes/gpu-1: 401 Unauthorized: Unauthorized" % api.addr


def test_client_certificate_auth(api, tmp_path):
    kc = kubeconfig(tmp_path / "cert.yaml", "https://" + api.addr, api.ca, token=None,
                    cert=os.path.join(api.dir, "client.crt"), key=os.path.join(api.dir, "client.key"))
    assert run_client(kc, "get", "gpu-1")["status"] == 200
    # Without any credentials the server says 401.
    kc = kubeconfig(tmp_path / "none.yaml", "https://" + api.addr, api.ca, token=None)
    assert run_client(kc, "get", "gpu-1")["status"] == 401


def test_in_cluster_service_account(api, tmp_path):
    sa = tmp_path / "sa"
    sa.mkdir()
    shutil.copy(api.ca, sa / "ca.crt")
    (sa / "token").write_text(TOKEN + "\n")
    (sa / "namespace").write_text("gpu-operator")
    env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(api.port))
    env.pop("KUBECONFIG", None)
    r = run_client(None, "event", "gpu-1", "Normal", "Started", "plugin started", env=env,
                   extra=["--sa-dir", str(sa)])
    assert r["status"] == 201, r
    assert api.control("events", "GET")[0]["metadata"]["namespace"] == "gpu-operator"


def test_no_configuration_is_named(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("KUBERNETES_SERVICE_HOST", "KUBECONFIG")}
    r = run_client(None, "get", "gpu-1", env=env)
    assert r["rc"] == 2
    assert "No Kubernetes API configuration: not in a pod" in r["stdout"]


def test_bad_ca_is_a_tls_error(api, tmp_path):
    other = tmp_path / "other-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "other.key"), "-out", str(other), "-subj", "/CN=other-ca",
                    "-days", "1"], check=True, capture_output=True, timeout=20)
    kc = kubeconfig(tmp_path / "kc.yaml", "https://" + api.addr, str(other))
    r = run_client(kc, "get", "gpu-1")
    assert r["rc"] == 1
    assert r["status"] == -129  # -EKEYREJECTED
    assert r["error"].startswith("GET https://%s/api/v1/nodes/gpu-1: connecting: TLS certificate verification "
                                 "failed: " % api.addr), r
    assert "local issuer certificate" in r["error"] or "self-signed" in r["error"] or "self signed" in r["error"]
    assert "get" not in api.stats()  # nothing reached the handler


def test_wrong_hostname_is_refused(apiserver, tmp_path):
    s = apiserver(wrong_host=True)
    for server, what in (("https://" + s.addr, "IP address mismatch"),
                         ("https://localhost:%d" % s.port, "hostname mismatch")):
        kc = kubeconfig(tmp_path / "kc.yaml", server, s.ca)
        r = run_client(kc, "get", "gpu-1")
        assert r["rc"] == 1
        assert r["error"] == "GET %s/api/v1/nodes/gpu-1: connecting: TLS certificate verification failed: %s" % (
            server, what), r
    assert "get" not in s.stats()


def test_connection_refused(api, tmp_path):
    api.stop()
    r = run_client(api.kubeconfig, "get", "gpu-1")
    assert r["status"] == -111
    assert r["error"] == "GET https://%s/api/v1/nodes/gpu-1: connecting: Connection refused" % api.addr


def test_deadline(api):
    t = time.monotonic()
    r = run_client(api.kubeconfig, "get", "slow-node", extra=["--timeout-ms", "300"])
    assert time.monotonic() - t < 2.5
    assert r["status"] == -110  # -ETIMEDOUT
    assert r["error"] == "GET https://%s/api/v1/nodes/slow-node: no response within 0.3s" % api.addr


def test_response_size_limit(api):
    r = run_client(api.kubeconfig, "get", "huge-node")
    assert r["status"] == -90  # -EMSGSIZE
    assert r["error"] == "GET https://%s/api/v1/nodes/huge-node: response larger than 4194304 bytes" % api.addr
    # Only that stream is cancelled: a request beside it on the same connection completes.
    r = run_client(api.kubeconfig, "get", "huge-node", "gpu-1")
    statuses = sorted(int(line.split()[1]) for line in r["stdout"].splitlines() if line.startswith("status "))
    assert statuses == [-90, 200], r


def test_rate_limit_qps5_burst10(api):
    r = run_client(api.kubeconfig, "gets", "gpu-1", "15")
    assert r["rc"] == 0, r
    times = sorted(float(line.split()[2]) for line in r["stdout"].splitlines() if line.startswith("done "))
    assert len(times) == 15
    # Ten at once from the full bucket, then one every 200 ms: the last about 1 s after the start.
    assert times[9] < 0.8, times
    assert times[10] >= 0.18, times
    assert 0.9 <= times[14] < 3, times
    assert api.stats()["get"] == 15


class Watch:
    def __init__(self, kc, node, n, backoff_ms=100):
        self.proc = subprocess.Popen([CLIENT, "--kubeconfig", kc, "watch", node, str(n), str(backoff_ms)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.errors = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_labels(self, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, "watch client exited"
            if line.startswith("labels "):
                rest = line[len("labels "):]
                return None if rest == "<none>" else dict(kv.split("=", 1) for kv in rest.split(",") if kv)
            self.errors.append(line)

    def finish(self):
        assert self.proc.wait(timeout=10) == 0
        return self.errors


CONFIG_LABEL = "nvidia.com/device-plugin.config"


def wait_for_watches(api, n, timeout=5):
    """Until the stand-in has had n watch requests (the labels come from the list, before the watch starts)."""
    deadline = time.monotonic() + timeout
    while api.stats().get("watch", 0) < n:
        assert time.monotonic() < deadline, api.stats()
        time.sleep(0.02)


def test_watch_sees_label_change(api):
    w = Watch(api.kubeconfig, "gpu-1", 3)
    assert w.next_labels() == {"kubernetes.io/hostname": "gpu-1"}
    api.control("label?node=gpu-1&key=%s&value=a100-40gb" % CONFIG_LABEL)
    assert w.next_labels() == {"kubernetes.io/hostname": "gpu-1", CONFIG_LABEL: "a100-40gb"}
    api.control("label?node=gpu-1&key=%s" % CONFIG_LABEL)  # removed
    assert w.next_labels() == {"kubernetes.io/hostname": "gpu-1"}
    assert w.finish() == []
    st = api.stats()
    assert st["list"] == 1 and st["watch"] == 1


def test_watch_reconnects_after_stream_reset(api):
    w = Watch(api.kubeconfig, "gpu-1", 2)
    assert w.next_labels() == {"kubernetes.io/hostname": "gpu-1"}
    wait_for_watches(api, 1)
    assert api.control("drop-watches")["dropped"] == 1
    # A change made while the watch is down is not lost: the re-watch starts at the last resourceVersion.
    api.control("label?node=gpu-1&key=%s&value=h100" % CONFIG_LABEL)
    assert w.next_labels() == {"kubernetes.io/hostname": "gpu-1", CONFIG_LABEL: "h100"}
    errors = w.finish()
    assert len(errors) == 1 and "stream was reset or the connection lost" in errors[0], errors
    st = api.stats()
    assert st["watch"] == 2 and st["list"] == 1


def test_watch_reconnects_after_connection_closed(api):
    w = Watch(api.kubeconfig, "gpu-1", 2)
    assert w.next_labels() == {"kubernetes.io/hostname": "gpu-1"}
    wait_for_watches(api, 1)
    assert api.control("drop-connections")["dropped"] == 1  # TCP closed under the watch: a new TLS connection
    api.control("label?node=gpu-1&key=%s&value=a100" % CONFIG_LABEL)
    assert w.next_labels() == {"kubernetes.io/hostname": "gpu-1", CONFIG_LABEL: "a100"}
    errors = w.finish()
    assert len(errors) == 1 and "stream was reset or the connection lost" in errors[0], errors
    st = api.stats()
    assert st["watch"] == 2 and st["list"] == 1


def test_watch_relists_on_410_gone(api):
    # Backoff 500 ms: the re-watch comes well after the history is compacted below.
    w = Watch(api.kubeconfig, "gpu-1", 2, backoff_ms=500)
    assert w.next_labels() == {"kubernetes.io/hostname": "gpu-1"}
    wait_for_watches(api, 1)
    assert api.control("drop-watches")["dropped"] == 1
    api.control("label?node=gpu-1&key=%s&value=b" % CONFIG_LABEL)
    api.control("compact")  # the watch's resourceVersion is now too old: 410 Gone, then a re-list
    assert w.next_labels() == {"kubernetes.io/hostname": "gpu-1", CONFIG_LABEL: "b"}
    errors = w.finish()
    assert len(errors) == 2, errors
    assert "stream was reset" in errors[0]
    assert errors[1] == "error: watch of node gpu-1: too old resource version: 1 (2)"
    st = api.stats()
    assert st["list"] == 2 and st["watch"] == 2  # dropped, then 410; the client stops at the re-list


def test_watch_node_absent_then_created_and_deleted(api):
    w = Watch(api.kubeconfig, "gpu-2", 3)
    assert w.next_labels() is None
    api.control("label?node=gpu-2&key=x&value=1")
    assert w.next_labels() == {"kubernetes.io/hostname": "gpu-2", "x": "1"}
    api.control("delete?node=gpu-2")
    assert w.next_labels() is None
    w.finish()
