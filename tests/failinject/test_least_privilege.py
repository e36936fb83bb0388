# SPDX-License-Identifier: Apache-2.0
"""Least privilege of the running plugin: its sockets are 0600 whatever the umask, a socket path too long
for sun_path is one clear error at start, and the only things it writes are its own sockets."""
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest
from conftest import NVDP, Kubelet, Plugin, fixture_env

SUN_PATH_MAX = 107   # sizeof(sockaddr_un.sun_path) - 1


def test_plugin_socket_is_0600_even_with_umask_0(workdir, kubelet):
    log = open(os.path.join(workdir, "plugin.log"), "w")
    proc = subprocess.Popen([NVDP, "plugin", "--kubelet-socket", kubelet.socket], env=fixture_env("dgx-h100"),
                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=lambda: os.umask(0))
    try:
        kubelet.wait_registrations(1)
        st = os.lstat(os.path.join(workdir, "nvidia-gpu.sock"))
        assert stat.S_ISSOCK(st.st_mode)
        assert oct(stat.S_IMODE(st.st_mode)) == "0o600"
        assert st.st_uid == os.getuid()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        log.close()


def long_dir(base, total):
    """A directory under base whose path is exactly total bytes long."""
    d = base
    while len(d) < total:
        d = os.path.join(d, "d" * min(60, total - len(d) - 1))
    assert len(d) == total, d
    os.makedirs(d)
    return d


@pytest.mark.parametrize("what", ["kubelet", "plugin"])
def test_socket_path_too_long_is_one_clear_error(workdir, what):
    if what == "kubelet":
        # kubelet.sock itself does not fit
        d = long_dir(workdir, SUN_PATH_MAX)
        too_long = os.path.join(d, "kubelet.sock")
    else:
        # kubelet.sock fits exactly; nvidia-gpu.sock beside it (3 bytes longer) does not
        d = long_dir(workdir, SUN_PATH_MAX - len("/kubelet.sock"))
        too_long = os.path.join(d, "nvidia-gpu.sock")
        assert len(os.path.join(d, "kubelet.sock")) == SUN_PATH_MAX
    r = subprocess.run([NVDP, "plugin", "--kubelet-socket", os.path.join(d, "kubelet.sock")],
                       env=fixture_env("dgx-h100"), capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("E")]
    assert len(errors) == 1, r.stderr
    assert too_long in errors[0] and "unix socket address allows" in errors[0], errors[0]
    assert f"{len(too_long)} bytes long" in errors[0]


WRITE_CALLS = re.compile(r"^(\d+) +(bind|chmod|fchmodat|unlink|unlinkat|rename|renameat2?|mkdir|mkdirat|rmdir|"
                         r"symlink|symlinkat|link|linkat|truncate|mknod|mknodat|open|openat|creat)\((.*)$")
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


def written_paths(trace):
    """(call, path) for every call in an strace log that can change the file system."""
    out = []
    for line in open(trace):
        m = WRITE_CALLS.match(line)
        if not m or "= -1 " in line:
            continue
        call, args = m.group(2), m.group(3)
        if call in ("open", "openat") and not any(f in args for f in WRITE_FLAGS):
            continue
        paths = re.findall(r'"([^"]*)"', args)
        out.append((call, paths[0] if paths else args))
    return out


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
def test_writes_nothing_but_its_sockets(workdir, kubelet):
    """Register, open ListAndWatch, Allocate, a kubelet restart, a config reload, SIGTERM: under strace."""
    conf_dir = tempfile.mkdtemp(prefix="nvdp-conf-")
    conf = os.path.join(conf_dir, "config.yaml")
    with open(conf, "w") as f:
        f.write("version: v1\nflags:\n  plugin:\n    deviceListStrategy: envvar\n")
    trace = os.path.join(conf_dir, "strace.log")
    env = fixture_env("dgx-h100")
    env["ASAN_OPTIONS"] = "detect_leaks=0"   # LeakSanitizer refuses to run under ptrace (make asan)
    proc = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=file,desc,bind", "-o", trace, NVDP, "plugin",
                             "--kubelet-socket", kubelet.socket, "--config-file", conf],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        kubelet.wait_registrations(1, timeout=20)
        children = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
        assert len(children) == 1
        plugin_pid = int(children[0])
        client = kubelet.client()
        first = client.wait_lists(1)
        client.allocate([first.devices[0].ID])
        kubelet.restart()
        kubelet.wait_registrations(2, timeout=20)
        os.kill(plugin_pid, signal.SIGHUP)
        time.sleep(0.5)
        kubelet.client().allocate([first.devices[1].ID])
        os.kill(plugin_pid, signal.SIGTERM)
        assert proc.wait(20) == 0
        writes = written_paths(trace)
        sock = os.path.join(workdir, "nvidia-gpu.sock")
        # the pid file nvdp plugin --rescan finds it by (docs/config.md): nvdp/plugin.pid beside the sockets,
        # written atomically (a temp file renamed over it) and removed at exit
        pid_dir = os.path.join(workdir, "nvdp")
        pid_file = [(c, p) for c, p in writes if p == pid_dir or p.startswith(pid_dir + "/")]
        assert {c for c, _ in pid_file} <= {"mkdir", "open", "openat", "rename", "unlink"}, pid_file
        assert ("unlink", os.path.join(pid_dir, "plugin.pid")) in pid_file, pid_file
        outside = [(c, p) for c, p in writes if p != sock and (c, p) not in pid_file]
        assert not outside, f"writes other than its socket and pid file: {outside}"
        # it did create, restrict and finally remove its socket
        assert {c for c, p in writes if p == sock} == {"bind", "chmod", "unlink"}, writes
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(conf_dir, ignore_errors=True)
