/* SPDX-License-Identifier: Apache-2.0 */
/* Preferred allocation on every fixture node (read through the simulated NVML), against NVIDIA's own
 * metrics, reimplemented here from their definitions (docs/compat.md):
 * - whole GPUs (upstream's alignedAlloc, go-gpuallocator's best-effort policy): the set's score, the
 *   sum over its GPU pairs of the PCIe level's score (same board 60, one switch 50, several 40, host
 *   bridge 30, same CPU 20, across CPUs 10) plus 100 per NVLink whose remote PCI address is the other
 *   GPU. Higher is better. Upstream's pick is some set of the request's size holding the must-include
 *   GPUs, so the best such set bounds it from above: ours must reach that bound.
 * - replicas and MIG devices (upstream's distributedAlloc): each pick costs the number of replicas of
 *   its shared device (the GPU or MIG device it is a replica of) not available at that moment: in use
 *   elsewhere, must-include, or picked before in this call. Lower is better. Upstream's greedy pick is
 *   simulated here; ours must cost no more.
 * Random available sets, must-include sets and sizes, with a fixed seed; the run count and the worst
 * difference are printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>

#include "base/strv.h"
#include "gpu/node.h"
#include "nvml/nvml.h"
#include "plugin/prefer.h"
#include "resource/plan.h"

#define TRIALS_PER_RESOURCE 2000

static char mock_lib[512], fixtures[512];

static int setup(void **state)
{
        const char *build = getenv("NVDP_BUILD"), *src = getenv("NVDP_SRC");
        snprintf(mock_lib, sizeof(mock_lib), "%s/mock-nvml/libnvidia-ml.so.1", build ? build : "build");
        snprintf(fixtures, sizeof(fixtures), "%s/mock/nvml/fixtures", src ? src : ".");
        return 0;
}

struct fixture_node {
        struct node *node; /* node_open()ed on the simulated NVML */
        nvml *nvml;
        inventory *inv;
        char root[600];
        unsigned score[64][64]; /* upstream's pair score, GPU index by GPU index */
};

static unsigned level_score(nvmlGpuTopologyLevel_t level)
{
        switch (level) {
        case NVML_TOPOLOGY_INTERNAL: return 60;
        case NVML_TOPOLOGY_SINGLE: return 50;
        case NVML_TOPOLOGY_MULTIPLE: return 40;
        case NVML_TOPOLOGY_HOSTBRIDGE: return 30;
        case NVML_TOPOLOGY_NODE: return 20;
        case NVML_TOPOLOGY_SYSTEM: return 10;
        default: return 0;
        }
}

/* go-gpuallocator's link table, asked of NVML as it asks: the common ancestor, then every active
 * NVLink whose remote PCI address is the other GPU's (links to an NVSwitch name no GPU). */
static void node_scores(struct fixture_node *nd)
{
        nvml *n = nd->nvml;
        size_t g = nd->inv->n_gpus;
        assert_true(g <= 64);
        for (size_t i = 0; i < g; i++)
                for (size_t j = 0; j < g; j++) {
                        nvmlDevice_t a, b;
                        nvmlPciInfo_t pb;
                        nvmlGpuTopologyLevel_t level;
                        nd->score[i][j] = 0;
                        if (i == j)
                                continue;
                        assert_int_equal(n->DeviceGetHandleByIndex_v2((unsigned)i, &a), NVML_SUCCESS);
                        assert_int_equal(n->DeviceGetHandleByIndex_v2((unsigned)j, &b), NVML_SUCCESS);
                        assert_int_equal(n->DeviceGetTopologyCommonAncestor(a, b, &level), NVML_SUCCESS);
                        assert_int_equal(n->DeviceGetPciInfo_v3(b, &pb), NVML_SUCCESS);
                        unsigned s = level_score(level);
                        for (unsigned l = 0; l < NVML_NVLINK_MAX_LINKS; l++) {
                                nvmlEnableState_t st;
                                nvmlPciInfo_t remote;
                                if (n->DeviceGetNvLinkState(a, l, &st) != NVML_SUCCESS ||
                                    st != NVML_FEATURE_ENABLED)
                                        continue;
                                if (n->DeviceGetNvLinkRemotePciInfo_v2(a, l, &remote) != NVML_SUCCESS)
                                        continue;
                                if (remote.domain == pb.domain && remote.bus == pb.bus &&
                                    remote.device == pb.device)
                                        s += 100;
                        }
                        nd->score[i][j] = s;
                }
}

static void node_load(const char *name, struct fixture_node *nd)
{
        char path[600];
        _cleanup_free_ char *error = NULL;
        snprintf(path, sizeof(path), "%s/%s.yaml", fixtures, name);
        snprintf(nd->root, sizeof(nd->root), "%s/%s.root", fixtures, name);
        assert_int_equal(setenv("MOCK_NVML_FIXTURE", path, 1), 0);
        unsetenv("MOCK_NVML_EVENTS");
        struct node_roots roots = { .root = nd->root, .library = mock_lib };
        if (node_open(&roots, &nd->node, &error) < 0)
                fail_msg("node of %s: %s", name, strna(error));
        nd->nvml = nd->node->nvml;
        nd->inv = nd->node->inventory;
        node_scores(nd);
}

static void node_done(struct fixture_node *nd)
{
        nd->node = node_close(nd->node);
        nd->inv = NULL;
        nd->nvml = NULL;
}

/* A plan for one of the configurations tried: MIG strategy, and replicas of every resource (1: none). */
static plan *plan_for(const struct fixture_node *nd, enum mig_strategy mig, unsigned replicas,
                      char **ret_error)
{
        static const char *const names[] = { "nvidia.com/gpu", "nvidia.com/mig-1g.5gb",
                                             "nvidia.com/mig-2g.10gb", "nvidia.com/mig-3g.20gb" };
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(config_new_default(&c), 0);
        c->flags.mig_strategy = mig;
        if (replicas > 1) {
                c->sharing.strategy = SHARING_TIME_SLICING;
                c->sharing.resources = new0(struct replicated_resource, ELEMENTSOF(names));
                assert_non_null(c->sharing.resources);
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        c->sharing.resources[i] = (struct replicated_resource){ .name = strdup(names[i]),
                                                                                .replicas = replicas,
                                                                                .devices_all = true };
                c->sharing.n_resources = ELEMENTSOF(names);
        }
        plan *p = NULL;
        return plan_build(nd->inv, c, &p, ret_error) < 0 ? NULL : p;
}

static unsigned set_score(const struct fixture_node *nd, const unsigned *gpus, size_t n)
{
        unsigned s = 0;
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        s += nd->score[gpus[i]][gpus[j]];
        return s;
}

/* The best score of any set of `size` GPUs holding must[] and drawn from avail[]. */
static unsigned best_aligned(const struct fixture_node *nd, const unsigned *must, size_t n_must,
                             const unsigned *avail, size_t n_avail, size_t size)
{
        unsigned best = 0, set[64];
        size_t want = size - n_must;
        for (uint64_t mask = 0; mask < (1ULL << n_avail); mask++) {
                if ((size_t)__builtin_popcountll(mask) != want)
                        continue;
                memcpy(set, must, n_must * sizeof(unsigned));
                size_t k = n_must;
                for (size_t i = 0; i < n_avail; i++)
                        if (mask & (1ULL << i))
                                set[k++] = avail[i];
                best = MAX(best, set_score(nd, set, k));
        }
        return best;
}

/* Upstream's cost of picking, per shared device, k more replicas when a are not available:
 * a + (a+1) + ... + (a+k-1), whatever the order of the picks. */
static uint64_t distributed_cost(const struct plan_resource *r, const bool *candidate, const bool *picked)
{
        uint64_t cost = 0;
        for (size_t d = 0; d < r->n_devices;) {
                size_t e = d;
                unsigned total = 0, avail = 0, k = 0;
                for (; e < r->n_devices && r->devices[e].gpu == r->devices[d].gpu &&
                       r->devices[e].mig == r->devices[d].mig;
                     e++) {
                        total++;
                        avail += candidate[e];
                        k += picked[e];
                }
                unsigned a = total - avail;
                cost += (uint64_t)k * a + (uint64_t)k * (k > 0 ? k - 1 : 0) / 2;
                d = e;
        }
        return cost;
}

/* Upstream's distributedAlloc: `needed` times, the candidate whose shared device has the fewest
 * replicas not available (ties: a random one, as Go's unstable sort leaves them). */
static void upstream_distributed(const struct plan_resource *r, const bool *candidate, size_t needed,
                                 bool *picked)
{
        _cleanup_free_ unsigned *unavail = new0(unsigned, r->n_devices + 1);
        _cleanup_free_ size_t *sd = new0(size_t, r->n_devices + 1);
        assert_non_null(unavail);
        assert_non_null(sd);
        for (size_t d = 0; d < r->n_devices; d++) {
                bool same = d > 0 && r->devices[d - 1].gpu == r->devices[d].gpu &&
                            r->devices[d - 1].mig == r->devices[d].mig;
                sd[d] = same ? sd[d - 1] : d;
                unavail[sd[d]] += !candidate[d];
        }
        for (size_t n = 0; n < needed; n++) {
                size_t best = SIZE_MAX, ties = 0;
                for (size_t d = 0; d < r->n_devices; d++) {
                        if (!candidate[d] || picked[d])
                                continue;
                        if (best == SIZE_MAX || unavail[sd[d]] < unavail[sd[best]]) {
                                best = d;
                                ties = 1;
                        } else if (unavail[sd[d]] == unavail[sd[best]] && lrand48() % ++ties == 0)
                                best = d;
                }
                assert_true(best != SIZE_MAX);
                picked[best] = true;
                unavail[sd[best]]++;
        }
}

struct tally {
        unsigned runs, aligned_runs, distributed_runs;
        long worst_aligned;     /* upstream's best possible score - ours: <= 0 */
        long worst_distributed; /* our cost - upstream's cost: <= 0 */
};

static void trial(const struct fixture_node *nd, const struct plan_resource *r, struct tally *t)
{
        size_t n = r->n_devices;
        _cleanup_free_ bool *avail = new0(bool, n + 1), *must = new0(bool, n + 1), *cand = new0(bool, n + 1),
                            *ours = new0(bool, n + 1), *theirs = new0(bool, n + 1),
                            *healthy = new0(bool, n + 1);
        _cleanup_strv_free_ char **avail_ids = NULL, **must_ids = NULL, **got = NULL;
        assert_true(avail && must && cand && ours && theirs && healthy);

        /* available: each device with a probability of its own per trial; must-include: 0-2 of them */
        long p = 1 + lrand48() % 100;
        size_t n_avail = 0, n_must = 0;
        for (size_t d = 0; d < n; d++) {
                healthy[d] = true;
                if (lrand48() % 100 < p) {
                        avail[d] = true;
                        n_avail++;
                }
        }
        if (n_avail == 0)
                return;
        size_t want_must = (size_t)(lrand48() % 3);
        for (size_t d = 0; d < n && n_must < want_must; d++)
                if (avail[d] && lrand48() % 4 == 0) {
                        must[d] = true;
                        n_must++;
                }
        size_t size = n_must + (size_t)(lrand48() % (long)(n_avail - n_must + 1));
        if (size == 0)
                size = 1;
        /* the kubelet lists available IDs in no particular order */
        for (size_t d = 0; d < n; d++)
                if (avail[d])
                        assert_int_equal(strv_extend(&avail_ids, r->devices[d].id), 0);
        for (size_t i = strv_length(avail_ids); i > 1; i--) {
                size_t j = (size_t)(lrand48() % (long)i);
                char *x = avail_ids[i - 1];
                avail_ids[i - 1] = avail_ids[j];
                avail_ids[j] = x;
        }
        for (size_t d = 0; d < n; d++)
                if (must[d])
                        assert_int_equal(strv_extend(&must_ids, r->devices[d].id), 0);
        assert_int_equal(preferred_allocation(nd->inv, r, healthy, ALLOCATION_DISTRIBUTED, avail_ids,
                                              strv_length(avail_ids), must_ids, strv_length(must_ids), size,
                                              &got),
                         0);

        /* a valid answer: size distinct available IDs, the must-include ones first */
        assert_int_equal(strv_length(got), size);
        for (size_t i = 0; got[i]; i++) {
                ssize_t d = plan_resource_find_device(r, got[i]);
                assert_true(d >= 0);
                assert_true(avail[d]);
                assert_false(ours[d]);
                ours[d] = true;
                if (i < n_must)
                        assert_true(must[d]);
        }
        t->runs++;

        bool whole = r->replicas <= 1;
        for (size_t d = 0; d < n; d++)
                whole = whole && r->devices[d].mig < 0;
        if (whole) {
                unsigned m[64], a[64], set[64];
                size_t nm = 0, na = 0, ns = 0;
                for (size_t d = 0; d < n; d++) {
                        if (must[d])
                                m[nm++] = r->devices[d].gpu;
                        else if (avail[d])
                                a[na++] = r->devices[d].gpu;
                        if (ours[d])
                                set[ns++] = r->devices[d].gpu;
                }
                long diff = (long)best_aligned(nd, m, nm, a, na, size) - (long)set_score(nd, set, ns);
                t->aligned_runs++;
                t->worst_aligned = MAX(t->worst_aligned, diff);
                if (diff > 0)
                        fail_msg("%s, %zu of %zu with %zu must-include: ours scores %ld below the best set",
                                 r->name, size, n_avail, n_must, diff);
        } else {
                for (size_t d = 0; d < n; d++)
                        cand[d] = avail[d] && !must[d];
                upstream_distributed(r, cand, size - n_must, theirs);
                for (size_t d = 0; d < n; d++)
                        if (must[d])
                                ours[d] = false;
                long diff = (long)distributed_cost(r, cand, ours) - (long)distributed_cost(r, cand, theirs);
                t->distributed_runs++;
                t->worst_distributed = MAX(t->worst_distributed, diff);
                if (diff > 0)
                        fail_msg("%s, %zu of %zu with %zu must-include: ours costs %ld more than upstream's",
                                 r->name, size, n_avail, n_must, diff);
        }
}

/* Every fixture, MIG strategies none and mixed, replicas 1, 2, 3 and 5. */
static void test_never_worse_than_upstream(void **state)
{
        struct tally t = { .worst_aligned = LONG_MIN, .worst_distributed = LONG_MIN };
        DIR *dir = opendir(fixtures);
        assert_non_null(dir);
        srand48(22);
        unsigned n_fixtures = 0;
        for (struct dirent *de; (de = readdir(dir));) {
                if (!endswith(de->d_name, ".yaml"))
                        continue;
                char name[256];
                snprintf(name, sizeof(name), "%.*s", (int)(strlen(de->d_name) - 5), de->d_name);
                struct fixture_node nd = {};
                node_load(name, &nd);
                n_fixtures++;
                static const enum mig_strategy migs[] = { MIG_STRATEGY_NONE, MIG_STRATEGY_MIXED };
                static const unsigned replicas[] = { 1, 2, 3, 5 };
                for (size_t m = 0; m < ELEMENTSOF(migs); m++)
                        for (size_t k = 0; k < ELEMENTSOF(replicas); k++) {
                                _cleanup_free_ char *err = NULL;
                                _cleanup_(plan_freep) plan *p = plan_for(&nd, migs[m], replicas[k], &err);
                                assert_non_null(p);
                                for (size_t r = 0; r < p->n_resources; r++)
                                        for (unsigned i = 0; i < TRIALS_PER_RESOURCE; i++)
                                                trial(&nd, &p->resources[r], &t);
                        }
                node_done(&nd);
        }
        closedir(dir);
        assert_true(n_fixtures >= 4);
        assert_true(t.aligned_runs > 1000 && t.distributed_runs > 1000);
        print_message(
                "preferred allocation vs upstream's metrics: %u runs on %u fixtures; whole GPUs: %u runs, "
                "worst (upstream's best possible - ours) %ld; replicas/MIG: %u runs, worst (ours - "
                "upstream's "
                "cost) %ld\n",
                t.runs, n_fixtures, t.aligned_runs, t.worst_aligned, t.distributed_runs,
                t.worst_distributed);
        assert_true(t.worst_aligned <= 0);
        assert_true(t.worst_distributed <= 0);
}

/* The case of issue 22: 3 replicas of each of the node's three 2g.10gb MIG devices (one on GPU 0, two
 * on GPU 1); a request for 3 gets one replica of each, as upstream's does, not two of one. */
static void test_shared_mig_spreads_per_mig_device(void **state)
{
        struct fixture_node nd = {};
        node_load("a100-mig", &nd);
        _cleanup_free_ char *err = NULL;
        _cleanup_(plan_freep) plan *p = plan_for(&nd, MIG_STRATEGY_MIXED, 3, &err);
        assert_non_null(p);
        const struct plan_resource *r = plan_find_resource(p, "nvidia.com/mig-2g.10gb");
        assert_non_null(r);
        assert_int_equal(r->n_devices, 9);
        _cleanup_strv_free_ char **all = NULL, **got = NULL;
        bool healthy[9] = { true, true, true, true, true, true, true, true, true };
        for (size_t d = 0; d < 9; d++)
                assert_int_equal(strv_extend(&all, r->devices[d].id), 0);
        assert_int_equal(
                preferred_allocation(nd.inv, r, healthy, ALLOCATION_DISTRIBUTED, all, 9, NULL, 0, 3, &got),
                0);
        _cleanup_free_ char *joined = strv_join(got, " ");
        assert_string_equal(joined, "MIG-a1b2c3d4-0002-5e6f-8a9b-0c1d2e3f4a02::0 "
                                    "MIG-f0e1d2c3-0011-4b5a-9687-a5b4c3d2e111::0 "
                                    "MIG-f0e1d2c3-0012-4b5a-9687-a5b4c3d2e112::0");
        /* one replica of the GPU 1 device 0011 in use: the next request takes the two untouched ones
         * first, GPU 0's before GPU 1's (GPU 1 has one in use) */
        _cleanup_strv_free_ char **rest = NULL, **got2 = NULL;
        for (size_t d = 0; d < 9; d++)
                if (!streq(r->devices[d].id, "MIG-f0e1d2c3-0011-4b5a-9687-a5b4c3d2e111::0"))
                        assert_int_equal(strv_extend(&rest, r->devices[d].id), 0);
        assert_int_equal(
                preferred_allocation(nd.inv, r, healthy, ALLOCATION_DISTRIBUTED, rest, 8, NULL, 0, 2, &got2),
                0);
        free(joined);
        joined = strv_join(got2, " ");
        assert_string_equal(joined, "MIG-a1b2c3d4-0002-5e6f-8a9b-0c1d2e3f4a02::0 "
                                    "MIG-f0e1d2c3-0012-4b5a-9687-a5b4c3d2e112::0");
        node_done(&nd);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_shared_mig_spreads_per_mig_device),
                cmocka_unit_test(test_never_worse_than_upstream),
        };
        return cmocka_run_group_tests_name("prefer-fixtures", tests, setup, NULL);
}
