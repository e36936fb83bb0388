#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make demo: the device plugin on a simulated 8x H100 node, driven by a small kubelet stand-in
(grpcio). It registers the plugin, lists the devices, asks a preferred allocation of 2, allocates
them, prints what the container would receive, and stops everything cleanly."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from conftest import Kubelet, Plugin  # noqa: E402


def main():
    real = "--real" in sys.argv   # on a GPU host: the real driver instead of the simulated node
    with tempfile.TemporaryDirectory(prefix="nvdp-demo-") as d:
        print(f"== kubelet stand-in listening on {d}/kubelet.sock")
        kubelet = Kubelet(d)
        t0 = time.monotonic()
        plugin = Plugin(d, fixture=None if real else "dgx-h100")
        print("== started: nvdp plugin --kubelet-socket", f"{d}/kubelet.sock",
              "(the real driver)" if real else "(simulated 8x H100 node)")
        try:
            req, _ = kubelet.wait_registrations(1)
            print(f"== Register: resource {req.resource_name}, endpoint {req.endpoint}, version {req.version}, "
                  f"preferred allocation available: {req.options.get_preferred_allocation_available}")
            client = kubelet.client(req.resource_name)
            devices = client.wait_lists(1).devices
            print(f"== ListAndWatch: {len(devices)} devices, first list "
                  f"{(client.list_times[0] - t0) * 1000:.1f} ms after the plugin started")
            for dev in devices:
                numa = ",".join(str(n.ID) for n in dev.topology.nodes) or "-"
                print(f"   {dev.ID}  {dev.health}  NUMA {numa}")
            ids = [dev.ID for dev in devices]
            want = min(2, len(ids))
            chosen = client.preferred(ids, [], want)
            print(f"== GetPreferredAllocation of {want} from all {len(ids)}: {', '.join(chosen)}")
            resp = client.allocate(chosen).container_responses[0]
            print("== Allocate: the container would receive")
            for k, v in sorted(resp.envs.items()):
                print(f"   env {k}={v}")
            for m in resp.mounts:
                print(f"   mount {m.host_path} -> {m.container_path}")
            for dev in resp.devices:
                print(f"   device {dev.host_path} -> {dev.container_path} ({dev.permissions})")
        finally:
            client_rc = plugin.stop()
            kubelet.close()
        print(f"== plugin stopped on SIGTERM (exit {client_rc}); its socket removed: "
              f"{not os.path.exists(os.path.join(d, 'nvidia-gpu.sock'))}")
        print("\n== plugin log")
        sys.stdout.write(plugin.output())
        return 0 if client_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
