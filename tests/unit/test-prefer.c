/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "base/strv.h"
#include "plugin/prefer.h"
#include "test-plan-inventories.h"

#define U(i) "GPU-00000000-0000-0000-0000-00000000000" #i

static plan *build(const inventory *inv, unsigned replicas)
{
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(config_new_default(&c), 0);
        if (replicas > 1) {
                c->sharing.strategy = SHARING_TIME_SLICING;
                c->sharing.resources = new0(struct replicated_resource, 1);
                c->sharing.resources[0] = (struct replicated_resource){ .name = strdup("nvidia.com/gpu"),
                                                                        .replicas = replicas,
                                                                        .devices_all = true };
                c->sharing.n_resources = 1;
        }
        plan *p = NULL;
        _cleanup_free_ char *err = NULL;
        if (plan_build(inv, c, &p, &err) < 0)
                fail_msg("plan_build: %s", strna(err));
        return p;
}

/* Runs a preferred allocation and compares with the expected IDs joined by spaces. */
static void expect(const inventory *inv, const plan *p, const bool *healthy, enum allocation_policy policy,
                   const char *available, const char *must, size_t size, const char *expected)
{
        _cleanup_strv_free_ char **avail = NULL, **must_l = NULL, **got = NULL;
        assert_int_equal(strv_split(available, " ", &avail), 0);
        assert_int_equal(strv_split(must, " ", &must_l), 0);
        bool all[1024];
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                all[i] = true;
        assert_int_equal(preferred_allocation(inv, &p->resources[0], healthy ? healthy : all, policy, avail,
                                              strv_length(avail), must_l, strv_length(must_l), size, &got),
                         0);
        _cleanup_free_ char *joined = strv_join(got, " ");
        assert_string_equal(joined, expected);
}

#define ALL8 U(0) " " U(1) " " U(2) " " U(3) " " U(4) " " U(5) " " U(6) " " U(7)

static void test_nvlink_node(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(plan_freep) plan *p = build(inv, 1);
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, ALL8, "", 2, U(0) " " U(1));
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, ALL8, "", 4, U(0) " " U(1) " " U(2) " " U(3));
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, ALL8, "", 8, ALL8);
        /* every pair has 18 NVLinks: the must-include GPU's NUMA node decides */
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, ALL8, U(5), 2, U(5) " " U(4));
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, U(7) " " U(2) " " U(5), "", 2, U(5) " " U(7));
        /* asking for more than is available returns what there is */
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, U(1) " " U(2), "", 4, U(1) " " U(2));
        /* unknown IDs are never offered */
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, "GPU-x " U(6), "", 2, U(6));
}

static void test_dead_gpu_is_never_offered(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(plan_freep) plan *p = build(inv, 1);
        bool healthy[8] = { true, true, true, false, true, true, true, true };
        expect(inv, p, healthy, ALLOCATION_DISTRIBUTED, ALL8, "", 4, U(4) " " U(5) " " U(6) " " U(7));
        bool half[8] = { true, true, true, false, false, true, true, true };
        expect(inv, p, half, ALLOCATION_DISTRIBUTED, ALL8, "", 4, U(0) " " U(1) " " U(2) " " U(5));
}

static void test_pcie_node(void **state)
{
        /* 4 GPUs: 0-1 behind one PCIe switch, 2-3 behind another, the pairs on different CPUs */
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        inv->n_gpus = 4;
        for (unsigned i = 0; i < 4; i++) {
                inv->gpus[i].numa_node = i < 2 ? 0 : 1;
                for (unsigned j = 0; j < 4; j++)
                        inv->links[i * 4 + j] = (struct gpu_link){
                                .pcie_level = i / 2 == j / 2 ? PCIE_LEVEL_SINGLE : PCIE_LEVEL_SYSTEM,
                        };
        }
        _cleanup_(plan_freep) plan *p = build(inv, 1);
        const char *all = U(0) " " U(1) " " U(2) " " U(3);
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, all, "", 2, U(0) " " U(1));
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, all, U(2), 2, U(2) " " U(3));
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, U(0) " " U(2) " " U(3), "", 2, U(2) " " U(3));
        inv->n_gpus = 8; /* so the destructor frees what was allocated */
}

#define R(i, n) U(i) "::" #n

static void test_replicas_distributed_spread_over_gpus(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(plan_freep) plan *p = build(inv, 2);
        const char *all =
                R(0, 0) " " R(0, 1) " " R(1, 0) " " R(1, 1) " " R(2, 0) " " R(2, 1) " " R(3, 0) " " R(
                        3, 1) " " R(4, 0) " " R(4, 1) " " R(5,
                                                            0) " " R(5,
                                                                     1) " " R(6,
                                                                              0) " " R(6,
                                                                                       1) " " R(7,
                                                                                                0) " " R(7,
                                                                                                         1);
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, all, "", 3, R(0, 0) " " R(1, 0) " " R(2, 0));
        /* GPU 0 already has a replica in use: the least used GPUs come first */
        const char *rest = R(0, 1) " " R(1, 0) " " R(1, 1) " " R(2, 0) " " R(2, 1) " " R(3, 0) " " R(3, 1);
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, rest, "", 3, R(1, 0) " " R(2, 0) " " R(3, 0));
        /* packed fills the busiest GPU first */
        expect(inv, p, NULL, ALLOCATION_PACKED, rest, "", 3, R(0, 1) " " R(1, 0) " " R(1, 1));
        /* must-include counts as picked on its GPU */
        expect(inv, p, NULL, ALLOCATION_DISTRIBUTED, all, R(0, 1), 2, R(0, 1) " " R(1, 0));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nvlink_node),
                cmocka_unit_test(test_dead_gpu_is_never_offered),
                cmocka_unit_test(test_pcie_node),
                cmocka_unit_test(test_replicas_distributed_spread_over_gpus),
        };
        return cmocka_run_group_tests_name("prefer", tests, NULL, NULL);
}
