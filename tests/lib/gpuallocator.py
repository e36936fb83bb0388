# SPDX-License-Identifier: Apache-2.0
"""NVIDIA's own measure of a set of whole GPUs: what its plugin's GetPreferredAllocation maximises
(go-gpuallocator v0.6.0, the best-effort policy; reference/upstream-nvidia-device-plugin.md section 5).

A set scores the sum, over its GPU pairs, of a pair score: the PCIe distance NVML reports between the
two (nvmlDeviceGetTopologyCommonAncestor: same board 60, one PCIe switch 50, several switches 40, host
bridge 30, same NUMA node 20, across CPUs 10) plus 100 for each active NVLink of the first GPU whose remote
PCI address is the second GPU's (at most 18). A link into an NVSwitch names the switch, not a GPU, so on an
NVSwitch machine (HGX H100/H200) the measure sees PCIe only.

Written from that behaviour; tests/gpu/prefer-compare scores both plugins' answers with it, and the
parity tests (tests/compat/harness.py) import it too: one implementation of the metric. The pair scores
of a node: node_pair_scores(nvml.read_node(LIB)), on the real driver or on the mock (MOCK_NVML_FIXTURE set).
"""
import itertools

# nvmlGpuTopologyLevel_t -> go-gpuallocator's score for that P2P link type
LEVEL_SCORE = {0: 60, 10: 50, 20: 40, 30: 30, 40: 20, 50: 10}
MAX_NVLINKS = 18


def pair_score(level, direct_nvlinks):
    """level: the NVML topology level (None or unknown: 0 points); direct_nvlinks: active links of one GPU
    whose remote PCI address is the other GPU."""
    return LEVEL_SCORE.get(level, 0) + 100 * min(direct_nvlinks, MAX_NVLINKS)


def bus_id(s):
    """go-gpuallocator's form of a PCI address: lower case, NVML's leading 0000 of the domain cut."""
    s = s.strip().lower()
    return s[4:] if s.startswith("0000") and s != "0000" else s


def pair_scores(levels, remotes, bus_ids):
    """{(a, b): score} for every ordered pair of GPU indexes a != b.
    levels: {(a, b): NVML topology level}; remotes: {a: [remote PCI address of each active NVLink]};
    bus_ids: [PCI address of each GPU]."""
    own = [bus_id(b) for b in bus_ids]
    scores = {}
    for a in range(len(own)):
        for b in range(len(own)):
            if a != b:
                direct = sum(1 for r in remotes.get(a, []) if r is not None and bus_id(r) == own[b])
                scores[(a, b)] = pair_score(levels.get((a, b)), direct)
    return scores


def node_pair_scores(node):
    """pair_scores() of a node as tests/lib/nvml.py's read_node() reads it (the real driver or the mock)."""
    remotes = {a: [lk["remote"] for lk in links] for a, links in node["nvlinks"].items()}
    return pair_scores(node["levels"], remotes, [g["bus_id"] for g in node["gpus"]])


def set_score(scores, gpus):
    """The set's score: the sum of its pairs' scores (go-gpuallocator adds the pair from the first GPU's
    side; on a symmetric machine both sides agree)."""
    return sum(scores[(a, b)] for a, b in itertools.combinations(gpus, 2))


def best_score(scores, available, size, must=()):
    """The highest score of any `size` GPUs drawn from available that include every GPU of must (None when
    no such set exists)."""
    must = list(dict.fromkeys(must))
    rest = [g for g in dict.fromkeys(available) if g not in must]
    if len(must) > size or len(must) + len(rest) < size:
        return None
    return max(set_score(scores, must + list(c)) for c in itertools.combinations(rest, size - len(must)))
