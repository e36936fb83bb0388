# SPDX-License-Identifier: Apache-2.0
"""nvdp next to NVIDIA's device plugin and GFD (the version bench/upstream/go.mod pins, built from the Go
module proxy) on every fixture node and a matrix of flags and configs: Register, ListAndWatch, Allocate
(answers and refusals), GetPreferredAllocation (scored by upstream's own metric, not compared literally)
and GFD's labels. Every difference must be listed in intended-differences.yaml with its reason and the
README row it belongs to; anything else fails. docs/compat.md describes it."""
import os
import time

import pytest

import harness as h
from harness import OURS, UPSTREAM

READY, WHY = h.nvidia_available()
pytestmark = pytest.mark.skipif(not READY, reason=WHY)

DRIVER = "--driver-root-ctr-path={driver}"

TS = """version: v1
sharing:
  timeSlicing:
{extra}    resources:
{resources}"""


def ts(replicas, names=("nvidia.com/gpu",), extra="", rename=None):
    res = ""
    for n in names:
        res += f"    - name: {n}\n      replicas: {replicas}\n"
        if rename:
            res += f"      rename: {rename}\n"
    return TS.format(extra=extra, resources=res)


MIG_NAMES = ("nvidia.com/mig-1g.5gb", "nvidia.com/mig-2g.10gb", "nvidia.com/mig-3g.20gb")

# name -> (args, config); {driver} and {mps} are the case's paths
PLUGIN_CASES = {
    "default": ([], None),
    "index": (["--device-id-strategy=index"], None),
    "volume-mounts": (["--device-list-strategy=volume-mounts"], None),
    "cdi-annotations": (["--device-list-strategy=cdi-annotations", DRIVER], None),
    "cdi-cri": (["--device-list-strategy=cdi-cri", DRIVER], None),
    "envvar+cdi-annotations+prefix": (["--device-list-strategy=envvar,cdi-annotations",
                                       "--cdi-annotation-prefix=nvidia.cdi.k8s.io/", DRIVER], None),
    "device-specs": (["--pass-device-specs"], None),
    "device-specs+index+volume-mounts": (["--pass-device-specs", "--device-id-strategy=index",
                                          "--device-list-strategy=volume-mounts"], None),
    "gdrcopy+gds+mofed": (["--gdrcopy-enabled", "--gds-enabled", "--mofed-enabled"], None),
    "mig-single": (["--mig-strategy=single"], None),
    "mig-mixed": (["--mig-strategy=mixed"], None),
    "mig-mixed+index+device-specs": (["--mig-strategy=mixed", "--device-id-strategy=index", "--pass-device-specs"],
                                     None),
    "time-slicing": ([], ts(3)),
    "time-slicing+mig-mixed": (["--mig-strategy=mixed"], ts(3, MIG_NAMES + ("nvidia.com/gpu",))),
    "time-slicing+fail-requests": ([], ts(2, extra="    failRequestsGreaterThanOne: true\n")),
    "time-slicing+rename-by-default": ([], ts(2, extra="    renameByDefault: true\n")),
    "time-slicing+rename": ([], ts(2, rename="gpu.shared")),
    "mps": (["--mps-root={mps}"], """version: v1
sharing:
  mps:
    resources:
    - name: nvidia.com/gpu
      replicas: 2
"""),
    "time-slicing+device-specs": (["--pass-device-specs"], ts(2)),
    "bad-config": ([], "version: v1\nflags:\n  migStrategy: sometimes\n"),
    "config-flags": ([], """version: v1
flags:
  migStrategy: mixed
  plugin:
    passDeviceSpecs: true
    deviceListStrategy: [envvar, volume-mounts]
    deviceIDStrategy: index
"""),
    "unknown-keys": ([], """version: v1
flags:
  renameByDefault: true
  aKeyOfANewerRelease: {nested: 1}
  plugin:
    passDevicSpecs: true
    deviceIdStrategy: index
sharing:
  timeSlicing:
    resources:
    - name: nvidia.com/gpu
      replicas: 2
      renam: gpu.shared
"""),
}

# Cases that change only what an Allocate answers (strategies, IDs, device specs, extras): their resources and
# devices are those of another case, so GetPreferredAllocation, which depends on nothing else, is asked there.
ALLOCATE_ONLY = {"index", "volume-mounts", "cdi-annotations", "cdi-cri", "envvar+cdi-annotations+prefix",
                 "device-specs", "device-specs+index+volume-mounts", "gdrcopy+gds+mofed",
                 "mig-mixed+index+device-specs", "time-slicing+device-specs"}

GFD_CASES = {
    "default": ([], None),
    "mig-single": (["--mig-strategy=single"], None),
    "mig-mixed": (["--mig-strategy=mixed"], None),
    "time-slicing": ([], ts(4)),
    "time-slicing+mig-mixed": (["--mig-strategy=mixed"], ts(2, MIG_NAMES)),
    "time-slicing+rename-by-default": ([], ts(2, extra="    renameByDefault: true\n")),
    "mps": ([], """version: v1
sharing:
  mps:
    resources:
    - name: nvidia.com/gpu
      replicas: 2
"""),
    "unknown-keys": ([], "version: v1\nflags:\n  gfd:\n    noTimestmp: true\n  migStrategi: mixed\n"),
    "bad-config": ([], "version: v1\nflags:\n  migStrategy: sometimes\n"),
}

# Health: an XID on the first GPU (79: fallen off the bus, fatal for both), whole and shared.
HEALTH_CASES = {
    "xid-79": ([], None),
    "xid-79+time-slicing": ([], ts(2)),
    "xid-79+mig-mixed": (["--mig-strategy=mixed"], None),
}

INTENDED = h.load_intended()
RESULTS = {"cases": 0, "comparisons": 0, "diffs": [], "fixtures": set(), "preferred": 0, "worst": None, "better": 0}


def record(key, ours, theirs):
    RESULTS["comparisons"] += 1
    if ours != theirs:
        RESULTS["diffs"].append((key, ours, theirs))
        return (key, ours, theirs)
    return None


def expand(args, node):
    return [a.format(driver=node.driver, mps=node.mps) for a in args]


def allocate_requests(ids):
    """(label, containers) the kubelet could send for these IDs."""
    reqs = [("one", [ids[:1]])]
    if len(ids) > 1:
        reqs += [("two", [ids[:2]]), ("two-containers", [ids[:1], ids[-1:]])]
    reqs.append(("all", [ids]))
    by_base = {}
    for i in ids:
        by_base.setdefault(i.split("::")[0], []).append(i)
    same = next((v for v in by_base.values() if len(v) > 1), None)
    if same:
        reqs.append(("replicas-of-one-device", [same[:2]]))
    reqs.append(("unknown-id", [["GPU-does-not-exist"]]))
    return reqs


def observe_health(run, obs, gpu_uuid):
    """After "xid <gpu> 79": the last list of each resource once the plugin has sent its updates."""
    clients = {n: run.kubelet.client(n) for n in obs["resources"]}
    counts = {n: len(c.lists) for n, c in clients.items()}
    run.inject(f"xid {gpu_uuid} 79")
    # until the updates stop: 1.5 s without a new list on any resource after the first (NVIDIA's plugin
    # sends one per device), or 12 s without any
    start = last = time.monotonic()
    seen = dict(counts)
    while time.monotonic() - start < 12:
        now = {n: len(c.lists) for n, c in clients.items()}
        if now != seen:
            seen, last = now, time.monotonic()
        elif seen != counts and time.monotonic() - last > 1.5:
            break
        time.sleep(0.05)
    for n, c in clients.items():
        with c.cond:
            obs["resources"][n]["after-xid"] = h.norm_list(c.lists[-1])


def observe_plugin(node, impl, args, config, ids_hint, xid_gpu=None, preferred=True):
    """Everything one plugin says in a case, as plain values (preferred allocations only when asked)."""
    run = h.PluginRun(node, impl, expand(args, node), config)
    obs = {"registered": None}
    try:
        regs = run.settle()
        if regs is None:
            out = run.output().strip().splitlines()
            obs["exit"] = run.proc.returncode
            obs["error"] = out[-1] if out else ""
            return obs
        obs["registered"] = sorted(r.resource_name for r in regs)
        obs["resources"] = {}
        for r in regs:
            client = run.kubelet.client(r.resource_name)
            msg = client.wait_lists(1)
            ids = sorted(d.ID for d in msg.devices)
            res = {"register": h.norm_register(r), "list": h.norm_list(msg),
                   "options": (client.options_at_register.get_preferred_allocation_available,
                               client.options_at_register.pre_start_required),
                   "ids": ids, "allocate": {}, "preferred": []}
            unordered = "--device-id-strategy=index" in args or "deviceIDStrategy: index" in (config or "") \
                or "deviceIdStrategy: index" in (config or "")
            for label, containers in allocate_requests(ids_hint.get(r.resource_name, ids)):
                value, err = h.call(lambda: client.allocate(*containers))
                res["allocate"][label] = ("error",) + err if err else ("ok", h.norm_allocate(value, unordered))
            for avail, must, size in h.preferred_requests(ids_hint.get(r.resource_name, ids), seed=len(ids)) \
                    if preferred else []:
                value, err = h.call(lambda: client.preferred(avail, must, size))
                res["preferred"].append(((avail, must, size), value, err))
            obs["resources"][r.resource_name] = res
        if xid_gpu:
            observe_health(run, obs, xid_gpu)
        return obs
    finally:
        obs["rc"] = run.stop()


def compare_plugin(fx, case, ours, theirs, spec, failures):
    base = f"{fx}/{case}"
    if ours["registered"] is None or theirs["registered"] is None:
        # A node or config one of them refuses: both must refuse it.
        d = record(f"{base}/starts", ours["registered"] is not None, theirs["registered"] is not None)
        if d:
            failures.append(d)
        elif ours["registered"] is None:
            d = record(f"{base}/exit-status", ours["exit"], theirs["exit"])
            if d:
                failures.append(d)
        return
    d = record(f"{base}/resources", ours["registered"], theirs["registered"])
    if d:
        failures.append(d)
    for name in sorted(set(ours["resources"]) & set(theirs["resources"])):
        o, t = ours["resources"][name], theirs["resources"][name]
        for what in ("register", "list", "options", "after-xid"):
            if what not in t:
                continue
            d = record(f"{base}/{name}/{what}", o[what], t[what])
            if d:
                failures.append(d)
        for label in t["allocate"]:
            ov, tv = o["allocate"].get(label), t["allocate"][label]
            if tv[0] == "error" and ov and ov[0] == "error":
                for i, part in ((1, "error-code"), (2, "error-message")):
                    d = record(f"{base}/{name}/allocate/{label}/{part}", ov[i], tv[i])
                    if d:
                        failures.append(d)
            elif ov and ov[0] == "ok" and tv[0] == "ok" and len(ov[1]) == len(tv[1]):
                for i, (oc, tc) in enumerate(zip(ov[1], tv[1])):
                    for field in tc:
                        d = record(f"{base}/{name}/allocate/{label}/{i}/{field}", oc[field], tc[field])
                        if d:
                            failures.append(d)
            else:
                d = record(f"{base}/{name}/allocate/{label}", ov, tv)
                if d:
                    failures.append(d)
        scorer = h.Scorer(fx, spec, o["ids"])
        for i, ((req, ov, oerr), (_, tv, terr)) in enumerate(zip(o["preferred"], t["preferred"])):
            avail, must, size = req
            key = f"{base}/{name}/preferred/{i}"
            if oerr or terr:
                d = record(key + "/error", oerr, terr)
                if d:
                    failures.append(d)
                continue
            RESULTS["preferred"] += 1
            if not scorer.valid(ov, avail, must, size):
                failures.append(record(key + "/valid", ("invalid", ov), ("valid", tv)) or (key, ov, tv))
                continue
            if not scorer.valid(tv, avail, must, size):
                continue  # upstream's own answer breaks its contract: nothing to score against
            so, st = scorer.score(ov, avail, must), scorer.score(tv, avail, must)
            worse = st - so
            RESULTS["worst"] = worse if RESULTS["worst"] is None else max(RESULTS["worst"], worse)
            RESULTS["better"] += so > st
            d = record(key + "/score", min(so, st), st)  # only a lower score than upstream's differs
            if d:
                failures.append(d)


@pytest.mark.parametrize("fx", h.fixture_names())
def test_plugin(fx):
    spec = h.fixture(fx)
    RESULTS["fixtures"].add(fx)
    failures = []
    for case, (args, config) in PLUGIN_CASES.items():
        node = h.Node(fx)
        try:
            pref = case not in ALLOCATE_ONLY
            theirs = observe_plugin(node, UPSTREAM, args, config, {}, preferred=pref)
            hints = {n: r["ids"] for n, r in (theirs.get("resources") or {}).items()}
            ours = observe_plugin(node, OURS, args, config, hints, preferred=pref)
            RESULTS["cases"] += 1
            compare_plugin(fx, case, ours, theirs, spec, failures)
        finally:
            node.close()
    check(failures)


@pytest.mark.parametrize("fx", h.fixture_names())
def test_health(fx):
    spec = h.fixture(fx)
    failures = []
    for case, (args, config) in HEALTH_CASES.items():
        node = h.Node(fx)
        try:
            uuid = spec["gpus"][0]["uuid"]
            theirs = observe_plugin(node, UPSTREAM, args, config, {}, xid_gpu=uuid, preferred=False)
            hints = {n: r["ids"] for n, r in (theirs.get("resources") or {}).items()}
            ours = observe_plugin(node, OURS, args, config, hints, xid_gpu=uuid, preferred=False)
            RESULTS["cases"] += 1
            compare_plugin(fx, case, ours, theirs, spec, failures)
        finally:
            node.close()
    check(failures)


@pytest.mark.parametrize("fx", h.fixture_names())
def test_gfd(fx):
    failures = []
    for case, (args, config) in GFD_CASES.items():
        node = h.Node(fx)
        try:
            trc, tlabels, tout = h.run_gfd(node, UPSTREAM, args, config)
            orc, olabels, oout = h.run_gfd(node, OURS, args, config)
        finally:
            node.close()
        RESULTS["cases"] += 1
        base = f"gfd/{fx}/{case}"
        if (tlabels is None) != (olabels is None):
            d = record(f"{base}/labels-written", olabels is not None, tlabels is not None)
            failures.append(d)
            continue
        d = record(f"{base}/exit-status", orc, trc)
        if d:
            failures.append(d)
        for k in sorted(set(tlabels or {}) | set(olabels or {})):
            d = record(f"{base}/label/{k}", (olabels or {}).get(k), (tlabels or {}).get(k))
            if d:
                failures.append(d)
    check(failures)


def check(failures):
    unexplained = [f for f in failures if not h.explain(INTENDED, *f)]
    lines = [f"  {k}\n    nvdp:   {o!r}\n    NVIDIA: {t!r}" for k, o, t in unexplained]
    assert not unexplained, f"{len(unexplained)} difference(s) not in intended-differences.yaml:\n" + \
        "\n".join(lines[:300])


def test_summary_and_stale_entries(request):
    """Runs last: prints the figures, and (after a full run) refuses entries that matched nothing, so
    the file lists exactly the differences there are (fixed 'pending' items must leave it)."""
    print(f"\ncompat: {RESULTS['cases']} cases on {len(RESULTS['fixtures'])} fixtures, "
          f"{RESULTS['comparisons']} comparisons, {len(RESULTS['diffs'])} differences "
          f"({sum(1 for e in INTENDED if e['used'])} intended-difference entries used), "
          f"{RESULTS['preferred']} preferred allocations scored: worst (NVIDIA's score - ours) "
          f"{RESULTS['worst']}, nvdp's better in {RESULTS['better']}")
    summary = os.environ.get("COMPAT_SUMMARY")
    if summary:
        with open(summary, "w") as f:
            f.write(f"cases={RESULTS['cases']} fixtures={len(RESULTS['fixtures'])} "
                    f"comparisons={RESULTS['comparisons']} differences={len(RESULTS['diffs'])} "
                    f"preferred={RESULTS['preferred']} worst={RESULTS['worst']} better={RESULTS['better']}\n")
            for k, o, t in RESULTS["diffs"]:
                e = h.explain([dict(x, used=0) for x in INTENDED], k, o, t)
                f.write(f"{k}\t{'pending: ' + e['pending'] if e and e.get('pending') else 'intended'}\n")
    full = len(RESULTS["fixtures"]) == len(h.fixture_names()) and not request.config.option.keyword
    if full:
        stale = [e["key"] for e in INTENDED if not e["used"]]
        assert not stale, "intended-differences.yaml entries that matched nothing (remove them): " + ", ".join(stale)
    if RESULTS["worst"] is not None:
        assert RESULTS["worst"] <= 0
