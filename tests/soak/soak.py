#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Soak: the real plugin on the simulated 8x H100 node, a kubelet played by grpcio (tests/integration).

  ALLOCATES Allocates (default 100,000) with ListAndWatch open, KUBELET_RESTARTS kubelet restarts
  (default 200, spread evenly) and a config reload every 1,000 Allocates (SIGHUP, the config path a
  symlink flipped between two files: deviceListStrategy envvar / envvar+volume-mounts).

The plugin's RSS and open fds are read from /proc after a warm-up and at the end; growth beyond noise
(fds: any; RSS: more than RSS_SLACK_KIB, default 1024) fails. Every Allocate answer must name the device
asked for, every reload must be logged, the plugin must register again after every restart, and the
whole run must stay under SOAK_MAX_SECONDS (default 300). Prints one closing line "soak: passed|failed".
"""
import os
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from conftest import Kubelet, Plugin, pb  # noqa: E402

ALLOCATES = int(os.environ.get("ALLOCATES", "100000"))
RESTARTS = int(os.environ.get("KUBELET_RESTARTS", "200"))
RELOAD_EVERY = 1000
WINDOW = 64                      # Allocates in flight on the kubelet's connection
RSS_SLACK_KIB = int(os.environ.get("RSS_SLACK_KIB", "1024"))
MAX_SECONDS = float(os.environ.get("SOAK_MAX_SECONDS", "300"))

CONFIG_A = "version: v1\nflags:\n  plugin:\n    deviceListStrategy: envvar\n"
CONFIG_B = "version: v1\nflags:\n  plugin:\n    deviceListStrategy: [envvar, volume-mounts]\n"


def usage(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    def __init__(self, d):
        self.dir = d
        self.link = os.path.join(d, "config.yaml")
        for name, text in (("a.yaml", CONFIG_A), ("b.yaml", CONFIG_B)):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        os.symlink("a.yaml", self.link)
        self.current = "a.yaml"
        self.kubelet = Kubelet(d)
        self.plugin = Plugin(d, args=["--config-file", self.link])
        self.registrations = 1
        self.kubelet.wait_registrations(1)
        self.attach()
        self.allocates = self.reloads = self.restarts = 0

    def attach(self):
        self.client = self.kubelet.client()
        self.client.wait_lists(1)
        self.ids = [d.ID for d in self.client.lists[-1].devices]
        assert len(self.ids) == 8, self.client.lists[-1]
        self.call = self.client.channel.unary_unary("/v1beta1.DevicePlugin/Allocate",
                                                    request_serializer=lambda b: b,
                                                    response_deserializer=lambda b: b)
        self.reqs = [(i.encode(), pb.AllocateRequest(container_requests=[
            pb.ContainerAllocateRequest(devices_ids=[i])]).SerializeToString()) for i in self.ids]

    def allocate(self, n):
        """n Allocates, WINDOW in flight; each answer must name its device."""
        pending = []
        for k in range(n):
            want, req = self.reqs[(self.allocates + k) % len(self.reqs)]
            pending.append((want, self.call.future(req, timeout=10)))
            if len(pending) >= WINDOW:
                self.check(*pending.pop(0))
        for p in pending:
            self.check(*p)
        self.allocates += n

    @staticmethod
    def check(want, fut):
        resp = fut.result()
        assert want in resp, f"Allocate answer does not name {want}: {resp!r}"

    def reload(self):
        self.current = "b.yaml" if self.current == "a.yaml" else "a.yaml"
        tmp = self.link + ".new"
        os.symlink(self.current, tmp)
        os.rename(tmp, self.link)
        self.plugin.proc.send_signal(signal.SIGHUP)
        self.reloads += 1

    def restart(self):
        self.kubelet.restart()
        self.registrations += 1
        self.kubelet.wait_registrations(self.registrations, timeout=15)
        self.attach()
        self.restarts += 1

    def run(self, allocates, restarts):
        restart_every = allocates // restarts if restarts else allocates + 1
        done = 0
        first = self.restarts
        while done < allocates:
            step = min(RELOAD_EVERY - (self.allocates % RELOAD_EVERY),
                       restart_every - (done % restart_every), allocates - done)
            self.allocate(step)
            done += step
            if self.allocates % RELOAD_EVERY == 0:
                self.reload()
            if done % restart_every == 0 and done < allocates:
                self.restart()
        if restarts and self.restarts - first < restarts:
            self.restart()              # the last one, after the last Allocates


def main():
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nvdp-soak-") as d:
        s = Soak(d)
        pid = s.plugin.proc.pid
        ok = False
        try:
            # warm-up: allocator pools and nghttp2 buffers settle before the baseline
            s.run(2000, 2)
            time.sleep(0.3)
            rss0, fds0 = usage(pid)
            base = (s.allocates, s.restarts, s.reloads)
            print(f"soak: baseline after warm-up: RSS {rss0} KiB, {fds0} open fds", flush=True)
            s.run(ALLOCATES, RESTARTS)
            time.sleep(0.3)
            rss1, fds1 = usage(pid)
            elapsed = time.monotonic() - t0
            n_alloc, n_restart, n_reload = (s.allocates - base[0], s.restarts - base[1], s.reloads - base[2])
            print(f"soak: {n_alloc} Allocates, {n_restart} kubelet restarts, {n_reload} reloads in {elapsed:.1f} s "
                  f"({n_alloc / elapsed:.0f} Allocates/s overall)")
            print(f"soak: RSS {rss0} -> {rss1} KiB ({rss1 - rss0:+d}), open fds {fds0} -> {fds1} ({fds1 - fds0:+d})")
            assert s.plugin.proc.poll() is None, "the plugin died"
            assert s.client.stream_error is None, f"ListAndWatch ended: {s.client.stream_error}"
            out = s.plugin.output()
            logged = out.count("Received SIGHUP, reloading the configuration")
            assert logged == s.reloads, f"{s.reloads} SIGHUPs sent, {logged} reloads logged"
            assert "Configuration reload failed" not in out
            assert fds1 <= fds0, f"open fds grew from {fds0} to {fds1}: {sorted(os.listdir(f'/proc/{pid}/fd'))}"
            assert rss1 - rss0 <= RSS_SLACK_KIB, f"RSS grew by {rss1 - rss0} KiB (> {RSS_SLACK_KIB})"
            assert elapsed < MAX_SECONDS, f"took {elapsed:.0f} s (> {MAX_SECONDS:.0f})"
            rc = s.plugin.stop()
            assert rc == 0, f"exit {rc} on SIGTERM"
            ok = True
        finally:
            if s.plugin.proc.poll() is None:
                s.plugin.proc.kill()
            s.kubelet.close()
            if not ok:
                print(s.plugin.output()[-3000:], file=sys.stderr)
    print("soak: passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"soak: failed: {e}")
        sys.exit(1)
