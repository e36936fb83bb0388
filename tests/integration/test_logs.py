# SPDX-License-Identifier: Apache-2.0
"""The logs an admin pastes into an issue (issue 19 item 5): every start-time error of the daemons is one
klog line (or one JSON line with --log-format=json / LOG_FORMAT=json); at start and after each reload one
line names the config, why it was chosen and what is advertised; a successful reload reads as one (no
warning, no "no longer advertised"); NVML missing inside a pod names the usual k3s cause."""
import ctypes
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import NVDP, fixture_env
from test_kube import api, apiserver, standin_bin  # noqa: F401  (pytest fixtures)
from test_sharing import TIME_SLICING, write

KLOG = re.compile(r"^([IWE])\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ [\w.-]+:\d+\] (.*)$")
BAD_MIG = 'invalid value for --mig-strategy: must be one of none, single, mixed, got "sometimes"'
# What nvdp says of an NVML it cannot find when KUBERNETES_SERVICE_HOST is set (gpu/node.c), as nvdp doctor.
POD_HINT = ("In a pod this usually means the pod does not run under the NVIDIA container runtime: give it "
            "runtimeClassName: nvidia (Helm: --set runtimeClassName=nvidia) or start k3s with --default-runtime "
            "nvidia, and check that the NVIDIA container toolkit is installed on the node (nvdp doctor says which).")


def messages(output):
    """(level letter, message) of every line; a line that is not klog fails the test."""
    out = []
    for line in output.splitlines():
        m = KLOG.match(line)
        assert m, "not a klog line: %r" % line
        out.append((m.group(1), m.group(2)))
    return out


def run(verb, *args, env=None, timeout=10):
    return subprocess.run([NVDP, verb] + list(args), env=env or fixture_env("dgx-h100"), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def wait_for(predicate, what, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what())


# ---- start-time errors ---------------------------------------------------------------------------------

# The exit status is upstream's: 1 for the plugin, GFD and the MPS daemon.
VERBS = [("plugin", "nvdp plugin", 1), ("gfd", "nvdp gfd", 1), ("mps-control-daemon", "nvdp mps-control-daemon", 1)]


@pytest.mark.parametrize("verb,name,status", VERBS)
def test_a_bad_flag_is_one_klog_error_line(verb, name, status):
    p = run(verb, "--mig-strategy", "sometimes")
    assert p.returncode == status
    assert messages(p.stdout) == [("E", "%s: %s" % (name, BAD_MIG))]


@pytest.mark.parametrize("verb,name,status", VERBS)
def test_a_bad_config_file_is_one_klog_error_line(verb, name, status, workdir):
    cfg = os.path.join(workdir, "c.yaml")
    write(cfg, "version: v2\n")
    p = run(verb, "--config-file", cfg)
    assert p.returncode == status
    assert messages(p.stdout) == [("E", '%s: %s:1: version: unknown version "v2" (only v1 is supported)' % (name, cfg))]


@pytest.mark.parametrize("verb,name,status,program", [("plugin", "nvdp plugin", 1, "device plugin"),
                                                       ("gfd", "nvdp gfd", 1, "gpu-feature-discovery")])
def test_tegra_discovery_is_refused_by_name(verb, name, status, program):
    # Upstream's value for Jetson: nvdp finds devices through NVML only, so it must not start as if asked for
    # NVML (it would advertise or label something else than what was asked for).
    p = run(verb, "--device-discovery-strategy=tegra", env=fixture_env("dgx-h100"))
    assert p.returncode == status
    assert messages(p.stdout) == [("E", "%s: --device-discovery-strategy=tegra (DEVICE_DISCOVERY_STRATEGY, "
                                        "flags.deviceDiscoveryStrategy) is not implemented by nvdp yet: Jetson and "
                                        "other Tegra systems without NVML need NVIDIA's %s; use auto or nvml"
                                   % (name, program))]


@pytest.mark.parametrize("verb,name,status", VERBS)
@pytest.mark.parametrize("how", ["flag", "env"])
def test_start_errors_follow_the_json_log_format(verb, name, status, how):
    env = fixture_env("dgx-h100")
    args = ["--mig-strategy", "sometimes"]
    if how == "flag":
        args = ["--log-format=json"] + args
    else:
        env["LOG_FORMAT"] = "json"
    p = run(verb, *args, env=env)
    assert p.returncode == status
    lines = p.stdout.splitlines()
    assert len(lines) == 1, lines
    line = json.loads(lines[0])
    assert line["level"] == "error"
    assert line["msg"] == "%s: %s" % (name, BAD_MIG)


def test_the_flag_wins_over_the_env_for_an_error_too():
    env = fixture_env("dgx-h100")
    env["LOG_FORMAT"] = "json"
    p = run("gfd", "--log-format", "klog", "--bogus", env=env)
    assert p.returncode == 1
    assert messages(p.stdout) == [("E", "nvdp gfd: unknown flag --bogus")]


def nvml_on_loader_path():
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
        return True
    except OSError:
        return False


@pytest.mark.skipif(nvml_on_loader_path(), reason="this machine has a real libnvidia-ml.so.1")
@pytest.mark.parametrize("verb,args", [("plugin", ["--kubelet-socket", ""]),
                                       ("gfd", ["--oneshot", "--use-node-feature-api=false", "--output-file",
                                                "/dev/null"]),
                                       ("mps-control-daemon", [])])
@pytest.mark.parametrize("in_pod", [True, False])
def test_nvml_missing_in_a_pod_names_the_usual_k3s_cause(verb, args, in_pod, workdir):
    env = fixture_env("dgx-h100")
    env["LD_LIBRARY_PATH"] = os.path.join(workdir, "nothing-here")
    env["DRIVER_ROOT_CTR_PATH"] = os.path.join(workdir, "not-mounted")
    env.pop("NVIDIA_DRIVER_ROOT", None)
    env.pop("KUBERNETES_SERVICE_HOST", None)
    if in_pod:
        env["KUBERNETES_SERVICE_HOST"] = "10.43.0.1"
    if verb == "mps-control-daemon":
        args = ["--mps-root", workdir]
    p = run(verb, *args, env=env)
    assert p.returncode == 1
    errors = [m for level, m in messages(p.stdout) if level == "E"]
    assert len(errors) == 1, p.stdout
    assert "NVML library libnvidia-ml.so.1 not found (is the NVIDIA driver installed?)" in errors[0]
    if in_pod:
        assert errors[0].endswith(". " + POD_HINT)
    else:
        assert "In a pod" not in errors[0] and errors[0].endswith("system library directories).")


# ---- the config line, and reloads that read as reloads ---------------------------------------------------

def plugin_lines(start_plugin, kubelet, workdir, args=(), env=None, fixture="dgx-h100"):
    plugin = start_plugin(args=list(args), env=env, fixture=fixture)
    kubelet.wait_registrations(1)
    wait_for(lambda: "Using " in plugin.output(), lambda: "the config line:\n" + plugin.output())
    plugin.stop()
    return [m for _, m in messages(plugin.output()) if m.startswith("Using ")]


def test_the_config_line_names_where_the_config_came_from(kubelet, start_plugin, workdir):
    assert plugin_lines(start_plugin, kubelet, workdir) == [
        "Using no config file (defaults); advertising nvidia.com/gpu: 8 GPUs"]

    cfg = os.path.join(workdir, "c.yaml")
    write(cfg, TIME_SLICING.format(fail="false", replicas=4))
    assert plugin_lines(start_plugin, kubelet, workdir, args=["--config-file", cfg]) == [
        "Using config file %s (--config-file); advertising nvidia.com/gpu: 8 GPUs x 4 replicas (time-slicing)" % cfg]
    assert plugin_lines(start_plugin, kubelet, workdir, env={"CONFIG_FILE": cfg}) == [
        "Using config file %s (CONFIG_FILE); advertising nvidia.com/gpu: 8 GPUs x 4 replicas (time-slicing)" % cfg]

    # the chart's per-node mode without a label: the default config, else the fallback
    src = os.path.join(workdir, "available-configs")
    os.mkdir(src)
    write(os.path.join(src, "shared-2"), TIME_SLICING.format(fail="false", replicas=2))
    assert plugin_lines(start_plugin, kubelet, workdir, env={"CONFIG_FILE_SRCDIR": src, "DEFAULT_CONFIG": "shared-2"}) == [
        'Using config "shared-2" (DEFAULT_CONFIG=shared-2); advertising nvidia.com/gpu: 8 GPUs x 2 replicas '
        '(time-slicing)']
    assert plugin_lines(start_plugin, kubelet, workdir, env={"CONFIG_FILE_SRCDIR": src}) == [
        'Using config "shared-2" (fallback "single"); advertising nvidia.com/gpu: 8 GPUs x 2 replicas (time-slicing)']
    assert plugin_lines(start_plugin, kubelet, workdir,
                        env={"CONFIG_FILE_SRCDIR": src, "DEFAULT_CONFIG": "nope", "FALLBACK_STRATEGIES": "empty"}) == [
        'Using no config (fallback "empty"); advertising nvidia.com/gpu: 8 GPUs']


def test_the_config_line_counts_mig_devices(kubelet, start_plugin, workdir):
    assert plugin_lines(start_plugin, kubelet, workdir, args=["--mig-strategy=mixed"], fixture="a100-mig") == [
        "Using no config file (defaults); advertising nvidia.com/mig-1g.5gb: 2 MIG devices, "
        "nvidia.com/mig-2g.10gb: 3 MIG devices, nvidia.com/mig-3g.20gb: 2 MIG devices"]


def test_a_reload_reads_as_a_reload(api, kubelet, start_plugin, workdir):
    src = os.path.join(workdir, "available-configs")
    os.mkdir(src)
    write(os.path.join(src, "default"), "version: v1\n")
    write(os.path.join(src, "shared-4"), TIME_SLICING.format(fail="false", replicas=4))
    env = {"CONFIG_FILE_SRCDIR": src, "DEFAULT_CONFIG": "default", "NODE_NAME": "gpu-1", "KUBECONFIG": api.kubeconfig}
    plugin = start_plugin(env=env)
    kubelet.wait_registrations(1)
    sock = os.path.join(workdir, "nvidia-gpu.sock")

    api.control("label?node=gpu-1&key=nvidia.com/device-plugin.config&value=shared-4")
    kubelet.wait_registrations(2, timeout=15)
    kubelet.client().wait_lists(1)
    plugin.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "(unchanged)" in plugin.output(), lambda: "the second reload:\n" + plugin.output())

    got = messages(plugin.output())
    assert ("I", 'Using config "default" (DEFAULT_CONFIG=default); advertising nvidia.com/gpu: 8 GPUs') in got
    # the label's reload: what changed and the new config, nothing that reads like an outage
    start = got.index(("I", 'Node label nvidia.com/device-plugin.config is now "shared-4", reloading the '
                            'configuration'))
    assert got[start + 1:start + 4] == [
        ("I", "Resource nvidia.com/gpu changed from 8 to 32 devices: serving the new list"),
        ("I", "Serving nvidia.com/gpu on %s" % sock),
        ("I", 'Using config "shared-4" (node label nvidia.com/device-plugin.config=shared-4); advertising '
              'nvidia.com/gpu: 8 GPUs x 4 replicas (time-slicing)')]
    # SIGHUP with the same config and the same GPUs: said so
    hup = got.index(("I", "Received SIGHUP, reloading the configuration and reading the GPUs again"))
    assert got[hup + 1:hup + 3] == [
        ("I", "The GPUs and MIG devices are as they were (8 GPUs, 0 MIG devices)"),
        ("I", 'Using config "shared-4" (node label nvidia.com/device-plugin.config=shared-4); advertising '
              'nvidia.com/gpu: 8 GPUs x 4 replicas (time-slicing) (unchanged)')]
    assert [m for level, m in got if level != "I"] == []
    assert not [m for _, m in got if "no longer advertised" in m or "closed" in m]


def test_the_mps_daemon_names_its_config_and_what_it_shares(workdir):
    cfg = os.path.join(workdir, "c.yaml")
    write(cfg, """version: v1
sharing:
  mps:
    resources:
    - name: nvidia.com/gpu
      rename: gpu.mps
      replicas: 4
      devices: [0, 1]
""")
    env = fixture_env("dgx-h100")
    env["PATH"] = "/nonexistent"  # no control binary: the line comes anyway
    d = subprocess.Popen([NVDP, "mps-control-daemon", "--mps-root", workdir, "--config-file", cfg], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        while "Using " not in line:
            line = d.stdout.readline()
            assert line, "the daemon ended"
        assert messages(line)[0] == (
            "I", "Using config file %s (--config-file); sharing with MPS: nvidia.com/gpu.mps (2 GPUs x 4 replicas)"
            % cfg)
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(20)
