/* SPDX-License-Identifier: Apache-2.0 */
#include "prefer.h"

#include "base/strv.h"

/* Enumerating subsets is exact and cheap up to this many candidate sets (C(16,8) = 12870). */
#define MAX_EXACT_SETS 20000

struct candidate {
        size_t dev;   /* index in r->devices */
        unsigned gpu; /* physical GPU */
};

static uint64_t binomial(size_t n, size_t k)
{
        if (k > n)
                return 0;
        uint64_t b = 1;
        for (size_t i = 1; i <= k; i++) {
                b = b * (n - k + i) / i;
                if (b > UINT32_MAX)
                        return UINT32_MAX;
        }
        return b;
}

/* Upstream's pair score as go-gpuallocator adds it up: the PCIe level's score plus 100 per NVLink
 * (ours also counts NVLinks through NVSwitch, the same for every pair of a switched node). */
static uint64_t pair_score(const struct gpu_link *l)
{
        struct gpu_link pcie = { .pcie_level = l->pcie_level };
        return (uint64_t)gpu_link_score(l) + (l->nvlinks > 0 ? gpu_link_score(&pcie) : 0);
}

/* Sum of the pair scores, times two, plus one per pair on the same NUMA node: link quality decides
 * (so a set never scores lower than upstream's choice by upstream's own metric), and among equally
 * linked GPUs CPU locality does. */
static uint64_t set_score(const inventory *inv, const unsigned *gpus, size_t n)
{
        uint64_t s = 0;
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++) {
                        int a = inv->gpus[gpus[i]].numa_node, b = inv->gpus[gpus[j]].numa_node;
                        s += 2 * pair_score(inventory_link(inv, gpus[i], gpus[j]));
                        s += a >= 0 && a == b;
                }
        return s;
}

/* Whole GPUs. Score of a choice: links inside the chosen set first, then links among the GPUs left
 * over (so the next request still finds a well-connected set), then lower GPU indexes. */
static void choose_aligned(const inventory *inv, const unsigned *must, size_t n_must, const unsigned *cand,
                           size_t n_cand, size_t want, unsigned *out)
{
        size_t total = n_must + want;
        unsigned set[64], rest[64], idx[64];
        uint64_t best_in = 0, best_out = 0;
        bool have = false;

        if (want == 0)
                return;
        if (total > ELEMENTSOF(set)) {
                /* more GPUs than any node has: no topology to optimise, take them in order */
                memcpy(out, cand, want * sizeof(unsigned));
                return;
        }
        if (binomial(n_cand, want) > MAX_EXACT_SETS || n_cand > ELEMENTSOF(rest)) {
                /* Greedy: add the candidate that scores best with what is chosen so far. */
                memcpy(set, must, n_must * sizeof(unsigned));
                bool used[1024] = { false };
                for (size_t k = 0; k < want; k++) {
                        size_t pick = SIZE_MAX;
                        uint64_t pick_score = 0;
                        for (size_t c = 0; c < n_cand && c < ELEMENTSOF(used); c++) {
                                if (used[c])
                                        continue;
                                set[n_must + k] = cand[c];
                                uint64_t s = set_score(inv, set, n_must + k + 1);
                                if (pick == SIZE_MAX || s > pick_score) {
                                        pick = c;
                                        pick_score = s;
                                }
                        }
                        used[pick] = true;
                        set[n_must + k] = out[k] = cand[pick];
                }
                return;
        }

        for (size_t i = 0; i < want; i++)
                idx[i] = (unsigned)i;
        for (;;) {
                memcpy(set, must, n_must * sizeof(unsigned));
                for (size_t i = 0; i < want; i++)
                        set[n_must + i] = cand[idx[i]];
                size_t n_rest = 0;
                for (size_t c = 0, i = 0; c < n_cand; c++) {
                        if (i < want && idx[i] == c)
                                i++;
                        else
                                rest[n_rest++] = cand[c];
                }
                uint64_t in = set_score(inv, set, total), out_score = set_score(inv, rest, n_rest);
                if (!have || in > best_in || (in == best_in && out_score > best_out)) {
                        have = true;
                        best_in = in;
                        best_out = out_score;
                        for (size_t i = 0; i < want; i++)
                                out[i] = cand[idx[i]];
                }
                /* next combination in lexicographic order */
                ssize_t i = (ssize_t)want - 1;
                while (i >= 0 && idx[i] == n_cand - want + (size_t)i)
                        i--;
                if (i < 0)
                        break;
                idx[i]++;
                for (size_t j = (size_t)i + 1; j < want; j++)
                        idx[j] = idx[j - 1] + 1;
        }
}

static int candidate_cmp(const void *a, const void *b)
{
        const struct candidate *x = a, *y = b;
        if (x->gpu != y->gpu)
                return x->gpu < y->gpu ? -1 : 1;
        return x->dev < y->dev ? -1 : x->dev > y->dev;
}

/* Whole GPUs: the best-connected set of want candidates, with the must-include devices. */
static int choose_whole(const inventory *inv, const struct plan_resource *r, const bool *is_must,
                        struct candidate *cand, size_t n_cand, size_t n_must, size_t want, char ***result)
{
        _cleanup_free_ unsigned *must_gpus = new0(unsigned, n_must + 1);
        _cleanup_free_ unsigned *cand_gpus = new0(unsigned, n_cand + 1);
        _cleanup_free_ unsigned *chosen = new0(unsigned, want + 1);
        if (!must_gpus || !cand_gpus || !chosen)
                return -ENOMEM;
        size_t m = 0;
        for (size_t d = 0; d < r->n_devices; d++)
                if (is_must[d])
                        must_gpus[m++] = r->devices[d].gpu;
        /* candidates in GPU order, so ties go to lower indexes */
        qsort(cand, n_cand, sizeof *cand, candidate_cmp);
        for (size_t i = 0; i < n_cand; i++)
                cand_gpus[i] = cand[i].gpu;
        choose_aligned(inv, must_gpus, m, cand_gpus, n_cand, want, chosen);
        for (size_t i = 0; i < want; i++)
                for (size_t j = 0; j < n_cand; j++)
                        if (cand[j].gpu == chosen[i]) {
                                int k = strv_extend(result, r->devices[cand[j].dev].id);
                                if (k < 0)
                                        return k;
                                break;
                        }
        return 0;
}

/* What the spread pick counts, per shared device (the GPU or MIG device a replica is of; a device that is
 * not shared is its own) and per physical GPU: devices of the resource, and how many are available (the
 * kubelet's view: the rest are in use, including the must-include ones and the picks so far). */
struct spread_counts {
        size_t n_gpus;
        unsigned *sd_total, *sd_avail, *gpu_total, *gpu_avail;
        size_t *sd_of; /* device -> its shared device, known by its first replica's index */
        size_t *slot;  /* candidate -> its shared device */
};

static void spread_counts_done(struct spread_counts *s)
{
        free(s->sd_total);
        free(s->sd_avail);
        free(s->gpu_total);
        free(s->gpu_avail);
        free(s->sd_of);
        free(s->slot);
}

static int spread_counts_init(struct spread_counts *s, const inventory *inv, const struct plan_resource *r,
                              const struct candidate *cand, size_t n_cand)
{
        size_t n_dev = r->n_devices;
        *s = (struct spread_counts){
                .n_gpus = inv->n_gpus,
                .sd_total = new0(unsigned, n_dev + 1),
                .sd_avail = new0(unsigned, n_dev + 1),
                .gpu_total = new0(unsigned, inv->n_gpus + 1),
                .gpu_avail = new0(unsigned, inv->n_gpus + 1),
                .sd_of = new0(size_t, n_dev + 1),
                .slot = new0(size_t, n_cand + 1),
        };
        if (!s->sd_total || !s->sd_avail || !s->gpu_total || !s->gpu_avail || !s->sd_of || !s->slot)
                return -ENOMEM;
        /* Replicas of one GPU or MIG device are adjacent in the plan. */
        for (size_t d = 0; d < n_dev; d++) {
                bool same = d > 0 && r->devices[d - 1].gpu == r->devices[d].gpu &&
                            r->devices[d - 1].mig == r->devices[d].mig;
                s->sd_of[d] = same ? s->sd_of[d - 1] : d;
                s->sd_total[s->sd_of[d]]++;
                if (r->devices[d].gpu < s->n_gpus)
                        s->gpu_total[r->devices[d].gpu]++;
        }
        for (size_t i = 0; i < n_cand; i++) {
                s->slot[i] = s->sd_of[cand[i].dev];
                s->sd_avail[s->slot[i]]++;
                if (cand[i].gpu < s->n_gpus)
                        s->gpu_avail[cand[i].gpu]++;
        }
        return 0;
}

static unsigned gpu_in_use(const struct spread_counts *s, unsigned gpu)
{
        return gpu < s->n_gpus ? s->gpu_total[gpu] - s->gpu_avail[gpu] : 0;
}

/* Whether candidate i is a better pick than candidate b. */
static bool spread_better(const struct spread_counts *s, enum allocation_policy policy,
                          const struct candidate *cand, size_t i, size_t b)
{
        unsigned sd_i = s->sd_total[s->slot[i]] - s->sd_avail[s->slot[i]];
        unsigned sd_b = s->sd_total[s->slot[b]] - s->sd_avail[s->slot[b]];
        unsigned g_i = gpu_in_use(s, cand[i].gpu), g_b = gpu_in_use(s, cand[b].gpu);
        if (sd_i != sd_b)
                return policy == ALLOCATION_PACKED ? sd_i > sd_b : sd_i < sd_b;
        if (g_i != g_b)
                return policy == ALLOCATION_PACKED ? g_i > g_b : g_i < g_b;
        return cand[i].dev < cand[b].dev;
}

/* A candidate in the spread pick's order: by shared device, then by device. */
struct spread_item {
        size_t slot, dev, cand;
};

static int spread_item_cmp(const void *a, const void *b)
{
        const struct spread_item *x = a, *y = b;
        if (x->slot != y->slot)
                return x->slot < y->slot ? -1 : 1;
        return x->dev < y->dev ? -1 : x->dev > y->dev;
}

/* Replicas and MIG devices, greedily, one pick at a time, as upstream's "distributed" policy: the
 * candidate whose shared device has the fewest replicas in use, counting the must-include ones and the
 * picks so far; so the replicas of one request land on distinct shared devices where possible (upstream's
 * own metric, which this greedy order minimises). Among equals, the one whose physical GPU has the fewest
 * devices of the resource in use: MIG devices and their replicas spread over GPUs too. "packed" prefers
 * the most used instead. Last, plan order.
 * The candidates of one shared device share both counts, so the best of them is the first in plan order:
 * each pick compares only the groups' heads (a node's shared devices, not its replicas; 16 of 1024
 * replicas of 8 GPUs: 16 x 8 comparisons, not 16 x 1024). */
static int choose_spread(const inventory *inv, const struct plan_resource *r, enum allocation_policy policy,
                         const struct candidate *cand, size_t n_cand, size_t want, char ***result)
{
        _cleanup_free_ struct spread_item *items = new0(struct spread_item, n_cand + 1);
        _cleanup_free_ size_t *head = new0(size_t, n_cand + 1), *end = new0(size_t, n_cand + 1);
        struct spread_counts s;
        int k = spread_counts_init(&s, inv, r, cand, n_cand);
        if (k >= 0 && (!items || !head || !end))
                k = -ENOMEM;
        size_t n_groups = 0;
        if (k >= 0) {
                for (size_t i = 0; i < n_cand; i++)
                        items[i] = (struct spread_item){ s.slot[i], cand[i].dev, i };
                qsort(items, n_cand, sizeof *items, spread_item_cmp);
                for (size_t i = 0; i < n_cand; i++)
                        if (i == 0 || items[i].slot != items[i - 1].slot) {
                                head[n_groups] = i;
                                end[n_groups++] = i + 1;
                        } else
                                end[n_groups - 1] = i + 1;
        }
        for (size_t n = 0; k >= 0 && n < want; n++) {
                size_t best = SIZE_MAX;
                for (size_t g = 0; g < n_groups; g++)
                        if (head[g] < end[g] &&
                            (best == SIZE_MAX ||
                             spread_better(&s, policy, cand, items[head[g]].cand, items[head[best]].cand)))
                                best = g;
                size_t c = items[head[best]++].cand;
                s.sd_avail[s.slot[c]]--;
                if (cand[c].gpu < s.n_gpus)
                        s.gpu_avail[cand[c].gpu]--;
                k = strv_extend(result, r->devices[cand[c].dev].id);
        }
        spread_counts_done(&s);
        return k < 0 ? k : 0;
}

int preferred_allocation(const inventory *inv, const struct plan_resource *r, const bool *healthy,
                         enum allocation_policy policy, char *const *available, size_t n_available,
                         char *const *must_include, size_t n_must_include, size_t size, char ***ret)
{
        _cleanup_strv_free_ char **result = new0(char *, 1);
        _cleanup_free_ struct candidate *cand = new0(struct candidate, n_available + 1);
        /* per device of the resource: a must-include one, a candidate already */
        _cleanup_free_ bool *is_must = new0(bool, r->n_devices + 1), *is_cand = new0(bool, r->n_devices + 1);
        size_t n_cand = 0, n_result = 0;
        int k;

        if (!result || !cand || !is_must || !is_cand)
                return -ENOMEM;

        for (size_t i = 0; i < n_must_include && n_result < size; i++) {
                ssize_t d = plan_resource_find_device(r, must_include[i]);
                if (d < 0 || is_must[d])
                        continue;
                is_must[d] = true;
                if ((k = strv_extend(&result, must_include[i])) < 0)
                        return k;
                n_result++;
        }
        /* The kubelet lists the devices in ListAndWatch's order, the plan's: the one after the last found
         * is tried first, a binary search only when it is not that one. */
        size_t next = 0;
        for (size_t i = 0; i < n_available; i++) {
                ssize_t d = next < r->n_devices && streq(r->devices[next].id, available[i])
                                    ? (ssize_t)next
                                    : plan_resource_find_device(r, available[i]);
                next = d >= 0 ? (size_t)d + 1 : next;
                if (d < 0 || is_must[d] || is_cand[d] || !healthy[d])
                        continue;
                is_cand[d] = true;
                cand[n_cand++] = (struct candidate){ (size_t)d, r->devices[d].gpu };
        }
        size_t want = MIN(size - MIN(size, n_result), n_cand);

        bool whole_gpus = r->replicas <= 1;
        for (size_t i = 0; i < r->n_devices && whole_gpus; i++)
                whole_gpus = r->devices[i].mig < 0;
        if (want > 0) {
                k = whole_gpus ? choose_whole(inv, r, is_must, cand, n_cand, n_result, want, &result)
                               : choose_spread(inv, r, policy, cand, n_cand, want, &result);
                if (k < 0)
                        return k;
        }
        *ret = TAKE_PTR(result);
        return 0;
}
