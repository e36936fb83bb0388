# SPDX-License-Identifier: Apache-2.0
"""The multi-GPU tools of tests/gpu (docs/testing-gpu.md, "Several GPUs") where no GPU is needed: the
`nvidia-smi topo -m` parser on hand-written samples of 1, 2, 4 and 8 GPUs, nvdp's link matrix and NUMA
nodes against nvidia-smi on the simulated 8-GPU node, the mock fixture written from a host, preferred
allocation of nvdp (and NVIDIA's plugin where it is built) scored by NVIDIA's measure, cuda-check --p2p on a
stand-in libcuda, and the e2e's multi-GPU step with a stand-in kubectl."""
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD, MOCK_DIR, NVDP, REPO, fixture_env

GPU = os.path.join(REPO, "tests", "gpu")
DATA = os.path.join(GPU, "testdata")
TOPO = os.path.join(DATA, "topo")
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))

import gpuallocator  # noqa: E402


def load_script(name):
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), os.path.join(GPU, name))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


topology = load_script("topology")


def sample(name):
    with open(os.path.join(TOPO, name)) as f:
        return f.read()


def run(argv, env=None, timeout=120):
    return subprocess.run([sys.executable] + argv, capture_output=True, text=True, env=env, timeout=timeout)


def mock_loads_in_python():
    """The ASan build's mock NVML cannot be loaded into an uninstrumented python (ctypes)."""
    p = subprocess.run([sys.executable, "-c", "import ctypes, sys; ctypes.CDLL(sys.argv[1])",
                        os.path.join(MOCK_DIR, "libnvidia-ml.so.1")], capture_output=True)
    return p.returncode == 0


needs_ctypes_mock = pytest.mark.skipif(not mock_loads_in_python(),
                                       reason="the mock NVML of this build cannot be loaded into python (ASan)")


# ---- nvidia-smi topo -m ------------------------------------------------------------------------------------
def test_parser_one_gpu_vm():
    t = topology.parse_topo(sample("h200-1gpu.topo"))
    assert t["gpus"] == ["GPU0"]
    assert t["cells"] == {(0, 0): "X"}
    assert t["cpu_affinity"] == ["0-15"] and t["numa_affinity"] == ["N/A"] and t["gpu_numa_id"] == ["N/A"]


def test_parser_two_gpus():
    t = topology.parse_topo(sample("h200-2gpu.topo"))
    assert t["cells"][(0, 1)] == t["cells"][(1, 0)] == "NV18"
    assert t["numa_affinity"] == ["0", "0"] and t["cpu_affinity"] == ["0-31", "0-31"]


def test_parser_four_gpus_with_a_nic():
    t = topology.parse_topo(sample("pcie-4gpu.topo"))
    assert t["gpus"] == ["GPU0", "GPU1", "GPU2", "GPU3"]  # NIC0 is a column, not a GPU
    assert [t["cells"][(0, j)] for j in range(4)] == ["X", "NV4", "SYS", "SYS"]
    assert [t["cells"][(2, j)] for j in range(4)] == ["SYS", "SYS", "X", "NV4"]
    assert t["numa_affinity"] == ["0", "0", "1", "1"]
    assert t["cpu_affinity"][2] == "24-47,72-95"


def test_parser_eight_gpus_header_escapes():
    t = topology.parse_topo(sample("dgx-h100.topo"))
    assert len(t["gpus"]) == 8
    assert {c for (i, j), c in t["cells"].items() if i != j} == {"NV18"}
    assert t["numa_affinity"] == ["0"] * 4 + ["1"] * 4
    assert t["cpu_affinity"][7] == "56-111,168-223"


@pytest.mark.parametrize("text,error", [
    ("\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\nGPU0\t X \tNVX\t0\t0\nGPU1\tNVX\t X \t0\t0\n",
     "GPU0-GPU1: 'NVX' is not in nvidia-smi's legend"),
    ("\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\nGPU0\t X \tNV2\t0\t0\n", "1 GPU rows for 2 GPU columns"),
    ("\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\nGPU0\tSYS\tNV2\t0\t0\nGPU1\tNV2\t X \t0\t0\n",
     "GPU0-GPU0: 'SYS' (X is the diagonal only)"),
    ("No devices were found\n", "no header line starting with GPU0"),
])
def test_parser_refuses_what_it_cannot_read(text, error):
    with pytest.raises(topology.ParseError) as e:
        topology.parse_topo(text)
    assert str(e.value) == error


@pytest.mark.parametrize("topo,info", [("h200-1gpu", "h200-1gpu"), ("h200-2gpu", "h200-2gpu"),
                                       ("pcie-4gpu", "pcie-4gpu"), ("pcie-4gpu", "pcie-4gpu-wrong")])
def test_saved_outputs_get_their_verdict(topo, info):
    p = run([os.path.join(GPU, "topology"), "--smi-file", os.path.join(TOPO, topo + ".topo"),
             "--info-file", os.path.join(TOPO, info + ".info.json")])
    with open(os.path.join(TOPO, info + ".verdict")) as f:
        want_exit, want_line = f.read().splitlines()
    assert f"exit {p.returncode}" == want_exit, p.stdout + p.stderr
    assert p.stdout.rstrip().splitlines()[-1] == want_line


def simulated(topo_file):
    env = fixture_env("dgx-h100")
    env["FAKE_NVIDIA_SMI_TOPO"] = topo_file
    return run([os.path.join(GPU, "topology"), "--nvdp", NVDP, "--nvidia-smi", os.path.join(DATA, "fake-nvidia-smi")],
               env=env)


def test_simulated_node_matches_nvidia_smi():
    """nvdp info on the mock's DGX H100 against what nvidia-smi prints on such a machine."""
    p = simulated(os.path.join(TOPO, "dgx-h100.topo"))
    with open(os.path.join(TOPO, "dgx-h100.verdict")) as f:
        want_exit, want_line = f.read().splitlines()
    assert f"exit {p.returncode}" == want_exit, p.stdout + p.stderr
    assert p.stdout.rstrip().splitlines()[-1] == want_line
    assert "| GPU4 | NV18 | NV18 | NV18 | NV18 | X | NV18 | NV18 | NV18 | 1 | 1 | 56-111,168-223 |" in p.stdout


def test_simulated_node_mismatch_is_named(tmp_path):
    text = sample("dgx-h100.topo").splitlines()
    row = text[2].split("\t")  # GPU1's row: GPU1-GPU2 through fewer links, and NUMA node 1
    row[3] = "NV12"
    row[-3] = "1"
    text[2] = "\t".join(row)
    bad = tmp_path / "topo.txt"
    bad.write_text("\n".join(text) + "\n")
    p = simulated(str(bad))
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.rstrip().splitlines()[-1] == \
        "topology: 2 mismatches: GPU1-GPU2: nvidia-smi NV12, nvdp NV18; GPU1 NUMA: nvidia-smi 1, nvdp 0"
    assert "**NV12 ≠ NV18**" in p.stdout


def test_check_nvlink(tmp_path):
    good = run([os.path.join(GPU, "topology"), "--check-nvlink", os.path.join(TOPO, "h200-2gpu.topo")])
    assert good.returncode == 0 and "topology: all 1 pairs of 2 GPUs NVLink-connected" in good.stdout
    bad = run([os.path.join(GPU, "topology"), "--check-nvlink", os.path.join(TOPO, "pcie-4gpu.topo")])
    assert bad.returncode == 1
    assert bad.stdout.rstrip().splitlines()[-1] == ("topology: 4 of 6 pairs without NVLink: GPU0-GPU2 SYS, "
                                                    "GPU0-GPU3 SYS, GPU1-GPU2 SYS, GPU1-GPU3 SYS")
    one = run([os.path.join(GPU, "topology"), "--check-nvlink", os.path.join(TOPO, "h200-1gpu.topo")])
    assert one.returncode == 1 and "no pair to check" in one.stdout


# ---- the fixture written from a host ------------------------------------------------------------------------
def test_topology_groups_name_what_the_fixture_cannot_hold():
    # GPUs 0-1 share a switch, 2 hangs off the same host bridge, 3 sits on the other socket: expressible.
    levels = {}
    for (a, b), lv in {(0, 1): 10, (0, 2): 30, (1, 2): 30, (0, 3): 50, (1, 3): 50, (2, 3): 50}.items():
        levels[(a, b)] = levels[(b, a)] = lv
    groups, gaps = topology.topology_groups(levels, [0, 0, 0, 1], 4)
    assert groups == [{"pcie_switch": "sw0", "host_bridge": "hb0", "cpu": 0},
                      {"pcie_switch": "sw0", "host_bridge": "hb0", "cpu": 0},
                      {"host_bridge": "hb0", "cpu": 0}, {"cpu": 1}]
    assert gaps == []
    # PXB (several switches) has no key in the fixture format: named, with what the mock would answer.
    levels[(0, 1)] = levels[(1, 0)] = 20
    _, gaps = topology.topology_groups(levels, [0, 0, 0, 1], 4)
    assert gaps == [(0, 1, 20, 30)]


@needs_ctypes_mock
@pytest.mark.parametrize("fixture", ["dgx-h100", "rtx4070ti"])
def test_fixture_from_host_round_trip(tmp_path, fixture):
    """A fixture written from the simulated node describes the same node: nvdp info reads the same."""
    env = fixture_env(fixture)
    out = str(tmp_path / "host.yaml")
    p = run([os.path.join(GPU, "topology"), "--fixture-from-host", out, "--nvml",
             os.path.join(MOCK_DIR, "libnvidia-ml.so.1"), "--root", env["NVDP_ROOT"]], env=env)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""  # no gap on these machines
    infos = []
    for fx, root in ((env["MOCK_NVML_FIXTURE"], env["NVDP_ROOT"]), (out, out[:-5] + ".root")):
        e = dict(env, MOCK_NVML_FIXTURE=fx, NVDP_ROOT=root)
        q = subprocess.run([NVDP, "info", "--json"], env=e, capture_output=True, text=True, timeout=20)
        assert q.returncode == 0, q.stderr
        infos.append(json.loads(q.stdout))
    assert infos[1] == infos[0]


@needs_ctypes_mock
def test_fixture_from_host_names_mig_it_leaves_out(tmp_path):
    env = fixture_env("a100-mig")
    out = str(tmp_path / "a100.yaml")
    p = run([os.path.join(GPU, "topology"), "--fixture-from-host", out, "--nvml",
             os.path.join(MOCK_DIR, "libnvidia-ml.so.1"), "--root", env["NVDP_ROOT"]], env=env)
    assert p.returncode == 0, p.stderr
    assert "topology: fixture gap: GPU0: MIG is enabled; its MIG devices are not written" in p.stderr
    text = open(out).read()
    assert "# GAP: GPU1: MIG is enabled" in text
    assert '      - {remote: "00000000:0F:00.0", type: gpu, links: 12}' in text


# ---- NVIDIA's measure and preferred allocation --------------------------------------------------------------
def test_gpuallocator_scores():
    # two GPUs under one PCIe switch with 12 NVLinks between them; a third on the other socket, no links
    levels = {(0, 1): 10, (1, 0): 10, (0, 2): 50, (2, 0): 50, (1, 2): 50, (2, 1): 50}
    remotes = {0: ["00000000:0F:00.0"] * 12, 1: ["00000000:07:00.0"] * 12, 2: []}
    s = gpuallocator.pair_scores(levels, remotes, ["00000000:07:00.0", "00000000:0F:00.0", "00000000:8A:00.0"])
    assert s[(0, 1)] == 50 + 1200 and s[(0, 2)] == 10
    assert gpuallocator.set_score(s, [0, 1, 2]) == 1250 + 10 + 10
    assert gpuallocator.best_score(s, [0, 1, 2], 2) == 1250
    assert gpuallocator.best_score(s, [0, 1, 2], 2, must=[2]) == 10
    # links into an NVSwitch name no GPU: NVIDIA's measure sees the PCIe level only
    sw = gpuallocator.pair_scores({(0, 1): 40, (1, 0): 40}, {0: ["FFFFFFFF:FF:FF.0"] * 18, 1: ["FFFFFFFF:FF:FF.0"] * 18},
                                  ["00000000:1B:00.0", "00000000:43:00.0"])
    assert sw[(0, 1)] == 20


@needs_ctypes_mock
@pytest.mark.parametrize("fixture,pairs", [
    ("dgx-h100", {"0,1": 20, "0,4": 10, "6,7": 20}),   # NVSwitch links name no GPU: NUMA node only
    ("a100-mig", {"0,1": 50 + 12 * 100}),              # one PCIe switch and 12 direct NVLinks
])
def test_node_pair_scores_from_nvml(fixture, pairs):
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import gpuallocator, nvml; "
            "s = gpuallocator.node_pair_scores(nvml.read_node(sys.argv[2])); "
            "print(json.dumps({f'{a},{b}': v for (a, b), v in s.items()}))")
    p = subprocess.run([sys.executable, "-c", code, os.path.join(REPO, "tests", "lib"),
                        os.path.join(MOCK_DIR, "libnvidia-ml.so.1")], env=fixture_env(fixture), capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    scores = json.loads(p.stdout)
    for pair, want in pairs.items():
        assert scores[pair] == want
        assert scores[",".join(reversed(pair.split(",")))] == want


def nvidia_binary():
    cache = os.environ.get("NVDP_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nvdp-bench")
    with open(os.path.join(REPO, "bench", "upstream", "go.mod")) as f:
        version = [ln.split()[1] for ln in f if ln.split()[:1] == ["github.com/NVIDIA/k8s-device-plugin"]][0]
    path = os.path.join(cache, f"nvidia-device-plugin-{version}")
    return path if os.access(path, os.X_OK) and os.geteuid() == 0 and shutil.which("unshare") else None


@needs_ctypes_mock
def test_prefer_compare_simulated_dgx(tmp_path):
    """Every available set of the 8-GPU node; NVIDIA's plugin beside nvdp where it is built (the bench's
    cache). NVIDIA's measure on this node: 20 for two GPUs of one socket, 10 across (NVSwitch links are
    invisible to it), so the best 4 of 8 is one socket's quad (6 x 20) and all 8 score 12 x 20 + 16 x 10."""
    nvidia = nvidia_binary()
    p = run([os.path.join(GPU, "prefer-compare"), "--fixture", "dgx-h100", "--build", BUILD, "--out", str(tmp_path),
             "--nvidia", nvidia or "none", "--rpcbench", "none"], timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    r = json.load(open(tmp_path / "prefer-compare.json"))
    assert r["gpus"] == 8 and r["sizes"] == [2, 4, 8]
    # 2 of 8, 6, 4 or 2 available: 1 + 28 + 70 + 28; 4 of 8, 6, 4: 1 + 28 + 70; 8 of 8: 1
    assert len(r["same"]) == r["requests_planned"] == 227
    for x in r["same"]:
        assert "invalid" not in x["nvdp"], x
        assert x["nvdp"]["score"] == x["best"], x  # on this node nvdp always reaches the best set
        assert x["nvdp"]["connected"]
    full = {x["size"]: x for x in r["same"] if len(x["available"]) == 8}
    assert (full[2]["best"], full[4]["best"], full[8]["best"]) == (20, 120, 400)
    pods = {"+".join(map(str, row["pods"])): [e["answer"] for e in row["nvdp"]] for row in r["scripted"]}
    assert sorted(pods) == ["2+2+2+2", "2+2+4", "2+4+2", "4+2+2", "4+4", "8"]
    assert pods["4+4"] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert pods["2+2+4"] == [[0, 1], [2, 3], [4, 5, 6, 7]]
    # after {0,1}, the best 4 of {2..7} is socket 1's quad; the last pair is what socket 0 has left
    assert pods["2+4+2"] == [[0, 1], [4, 5, 6, 7], [2, 3]]
    if nvidia:
        assert r["impls"] == ["nvdp", "NVIDIA"]
        assert all("invalid" not in x["NVIDIA"] for x in r["same"])
        assert "none scoring below NVIDIA's by its own measure" in p.stdout
    assert "### Scripted pods" in open(tmp_path / "prefer-compare.md").read()


@needs_ctypes_mock
def test_prefer_compare_one_gpu(tmp_path):
    p = run([os.path.join(GPU, "prefer-compare"), "--fixture", "rtx4070ti", "--build", BUILD, "--out",
             str(tmp_path), "--nvidia", nvidia_binary() or "none", "--rpcbench", "none"], timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.load(open(tmp_path / "prefer-compare.json"))
    assert r["sizes"] == [1] and len(r["same"]) == 1
    assert r["same"][0]["nvdp"]["answer"] == [0]
    assert [e["answer"] for e in r["scripted"][0]["nvdp"]] == [[0]]


def test_prefer_compare_report_flags_a_worse_or_invalid_answer():
    pc = load_script("prefer-compare")
    ok = {"answer": [0, 1], "score": 20, "nvlinks": 18, "connected": True, "seconds": 1e-4, "error": None}
    worse = dict(ok, answer=[0, 4], score=10)
    r = {"impls": ["nvdp", "NVIDIA"], "gpus": 8, "names": ["X"], "driver": "1", "where": "here", "sizes": [2],
         "nvidia_version": "v0", "notes": [], "seconds": 0.1, "requests_planned": 2, "rpcbench": {},
         "same": [{"size": 2, "available": [0, 1, 4], "best": 20, "nvdp": worse, "NVIDIA": ok},
                  {"size": 2, "available": [0, 1], "best": 20, "nvdp": dict(ok, invalid="a device not offered"),
                   "NVIDIA": ok}],
         "scripted": [{"pods": [2], "nvdp": [dict(ok, best=20)], "NVIDIA": [dict(ok, best=20)]}]}
    text, failures = pc.report(r, 10)
    assert failures == ["nvdp, 2 of {0,1,4}: {0,4} scores 10, NVIDIA's {0,1} 20",
                        "nvdp, 2 of {0,1}: a device not offered"]
    assert text.splitlines()[-1].startswith("prefer-compare: 2 failures: ")


def test_prefer_compare_sequences():
    pc = load_script("prefer-compare")
    assert list(pc.sequences(4, [2, 4])) == [[2, 2], [4]]
    assert list(pc.sequences(5, [2, 4])) == [[2, 2], [4]]  # one GPU left over: no pod of 2 fits
    assert pc.reachable_counts(8, [2, 4, 8]) == [8, 6, 4, 2]
    assert pc.reachable_counts(1, [1]) == [1]


# ---- cuda-check --p2p on a stand-in libcuda -----------------------------------------------------------------
@pytest.fixture(scope="module")
def cuda(tmp_path_factory):
    d = tmp_path_factory.mktemp("cuda")
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(d / "cuda-check"),
                    os.path.join(REPO, "tests", "e2e", "images", "cuda-check.c"), "-ldl"], check=True)
    subprocess.run([cc, "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o",
                    str(d / "libcuda.so.1"), os.path.join(DATA, "fake-libcuda.c")], check=True)
    return d


def cuda_check(cuda, devices, *args, **env):
    e = dict(os.environ, LD_LIBRARY_PATH=str(cuda), FAKE_CUDA_DEVICES=str(devices), **env)
    return subprocess.run([str(cuda / "cuda-check"), *args], env=e, capture_output=True, text=True, timeout=60)


def test_p2p_one_device_passes(cuda):
    p = cuda_check(cuda, 1, "--p2p")
    assert p.returncode == 0
    assert p.stdout.splitlines()[-2:] == ["cuda-check: p2p: 1 device, nothing to copy", "cuda-check: PASS"]


def test_p2p_every_ordered_pair(cuda):
    p = cuda_check(cuda, 4, "--p2p")
    assert p.returncode == 0, p.stdout
    lines = p.stdout.splitlines()
    assert [ln.split(",")[1].strip() for ln in lines if ln.startswith("cuda-check: device ")] == \
        [f"GPU-00000000-0000-0000-0000-0000000000{i:02x}" for i in range(4)]
    copied = [ln.split(": peer access")[0] for ln in lines if "verified" in ln]
    assert copied == [f"cuda-check: p2p: device {i} -> device {j}" for i in range(4) for j in range(4) if i != j]
    assert lines[-2:] == ["cuda-check: p2p: 4 devices, all 12 ordered pairs copied peer to peer", "cuda-check: PASS"]


def test_p2p_fails_without_peer_access_or_on_a_bad_copy(cuda):
    p = cuda_check(cuda, 3, "--p2p", FAKE_CUDA_NO_PEER="2,1")
    assert p.returncode == 1
    assert p.stdout.splitlines()[-1] == \
        "cuda-check: FAIL: p2p: device 2 cannot access device 1's memory (cuDeviceCanAccessPeer: 0)"
    p = cuda_check(cuda, 2, "--p2p", FAKE_CUDA_CORRUPT="1")
    assert p.returncode == 1
    assert p.stdout.splitlines()[-1] == "cuda-check: FAIL: p2p: device 0 -> device 1: 1 of 16777216 words wrong"


# ---- the e2e's multi-GPU step, with a stand-in kubectl ---------------------------------------------------
STEP_HARNESS = r'''
set -euo pipefail
exec 3>&2
REPO=$1 D=$2 E2E_SRC=$REPO/tests/e2e
g_count=$3 g_class=nvidia
read -r -a g_uuids <<<"$4"
log() { echo "LOG $*"; }
die() { echo "DIE $*"; exit 1; }
check_alive() { :; }
one_of() { local w=$1 x; shift; for x in "$@"; do [ "$x" = "$w" ] && return 0; done; return 1; }
wait_for() { shift 2; "$@" || die "wait_for: $*"; }
g_show() { :; }
g_report_add() { echo "REPORT $1"; }
g_phase() { echo Running; }
kubectl() {
        case $1 in
        apply) cat >>"$D/applied.yaml" ;;
        logs) cat "$D/$2.log" ;;
        exec) case "$4 $5" in "nvidia-smi -L") cat "$D/$2.L" ;; "nvidia-smi topo") cat "$D/$2.topo" ;; esac ;;
        delete) echo "deleted ${*:3:2}" >>"$D/deleted" ;;
        esac
}
source "$REPO/tests/e2e/scenarios/gpu-multi.sh"
echo "STEP DONE"
'''


def pod_files(d, pod, uuids, topo_cell="NV18"):
    n = len(uuids)
    log = [f"cuda-check: driver API 13.0, {n} device(s)"]
    log += [f"cuda-check: device {i}: NVIDIA H200, {u}, compute capability 9.0, 143155 MiB" for i, u in enumerate(uuids)]
    log += [f"cuda-check: p2p: device {i} -> device {j}: peer access, 64 MiB copied and verified, 380.2 GB/s"
            for i in range(n) for j in range(n) if i != j]
    log += ["cuda-check: PASS", "cuda-check: holding the context for 300 s"]
    (d / f"{pod}.log").write_text("\n".join(log) + "\n")
    (d / f"{pod}.L").write_text("".join(f"GPU {i}: NVIDIA H200 (UUID: {u})\n" for i, u in enumerate(uuids)))
    rows = ["\t" + "\t".join(f"GPU{i}" for i in range(n)) + "\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID"]
    for i in range(n):
        cells = [" X " if i == j else topo_cell for j in range(n)]
        rows.append(f"GPU{i}\t" + "\t".join(cells) + "\t0-63\t0\t\tN/A")
    (d / f"{pod}.topo").write_text("\n".join(rows) + "\n")


def multi_step(tmp_path, uuids, a, b, cell="NV18"):
    pod_files(tmp_path, "multi-a", a, cell)
    pod_files(tmp_path, "multi-b", b)
    return subprocess.run(["bash", "-c", STEP_HARNESS, "step", REPO, str(tmp_path), str(len(uuids)), " ".join(uuids)],
                          capture_output=True, text=True, timeout=60)


HOST = [f"GPU-{i:08x}-0000-0000-0000-000000000000" for i in range(8)]


def test_multi_step_two_disjoint_linked_pods(tmp_path):
    p = multi_step(tmp_path, HOST, HOST[:4], HOST[4:])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "STEP DONE" in p.stdout
    assert "LOG gpu: two pods of 4 GPUs: disjoint, NVLink-connected, peer-to-peer copies verified in each" in p.stdout
    applied = (tmp_path / "applied.yaml").read_text()
    assert applied.count("nvidia.com/gpu: 4") == 2 and applied.count("runtimeClassName: nvidia") == 2
    assert applied.count('{name: NCCL_NVLS_ENABLE, value: "0"}') == 2
    assert (tmp_path / "deleted").read_text() == "deleted multi-a multi-b\n"


def test_multi_step_overlapping_pods_fail(tmp_path):
    p = multi_step(tmp_path, HOST, HOST[:4], HOST[3:7])
    assert p.returncode == 1
    assert f"DIE gpu: {HOST[3]} is in both multi-a and multi-b" in p.stdout


def test_multi_step_unlinked_pod_fails(tmp_path):
    p = multi_step(tmp_path, HOST, HOST[:4], HOST[4:], cell="SYS")
    assert p.returncode == 1
    assert "DIE gpu: multi-a's GPUs are not all NVLink-connected" in p.stdout


def test_multi_step_skips_below_four_gpus(tmp_path):
    p = multi_step(tmp_path, HOST[:2], HOST[:1], HOST[1:2])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "LOG gpu: SKIP multi-GPU pods: the node has 2 GPU(s); two pods of N/2 NVLink-connected GPUs need 4 or more" \
        in p.stdout
    assert not (tmp_path / "applied.yaml").exists()


def test_numa_none_from_the_kernel_is_not_a_mismatch():
    # The real 1x H200 VM: nvidia-smi's NUMA Affinity 0 (from the CPU affinity), sysfs numa_node -1, nvdp null.
    topo = {"gpus": ["GPU0"], "cells": {(0, 0): "X"}, "cpu_affinity": ["0-15"], "numa_affinity": ["0"],
            "gpu_numa_id": ["N/A"]}
    info = {"gpus": [{"index": 0, "bus_id": "00000000:00:06.0", "numa_node": None}], "links": []}
    _, mismatches = topology.compare(topo, info)
    assert mismatches == ["GPU0 NUMA: nvidia-smi 0, nvdp null"]
    table, mismatches = topology.compare(topo, info, [None])
    assert mismatches == [] and table[-1] == "| GPU0 | X | 0 | null (sysfs: -1) | 0-15 |"
    # The kernel names node 0 and nvdp does not: still a mismatch.
    _, mismatches = topology.compare(topo, info, [0])
    assert mismatches == ["GPU0 NUMA: nvidia-smi 0, nvdp null"]
