/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/strv.h"
#include "config/config.h"
#include "resource/plan.h"
#include "test-plan-inventories.h"

static char *fixture(const char *name)
{
        const char *src = getenv("NVDP_SRC");
        char *p;
        assert_true(asprintf(&p, "%s/tests/unit/fixtures/config/%s", src ? src : ".", name) > 0);
        return p;
}

/* A config from defaults, an optional fixture file and a MIG strategy. */
static config *cfg(const char *file, enum mig_strategy mig)
{
        config *c;
        assert_int_equal(config_new_default(&c), 0);
        if (file) {
                _cleanup_free_ char *path = fixture(file), *err = NULL;
                assert_int_equal(config_load_file(c, path, &err), 0);
        }
        c->flags.mig_strategy = mig;
        return c;
}

static plan *build(const inventory *inv, const config *c, const char *root)
{
        plan *p = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(inventory_read_mig_minors((inventory *)inv, root), 0);
        int r = plan_build(inv, c, &p, &err);
        if (r < 0)
                fail_msg("plan_build: %s", strna(err));
        return p;
}

static char *build_error(const inventory *inv, const config *c, const char *root)
{
        plan *p = NULL;
        char *err = NULL;
        assert_int_equal(inventory_read_mig_minors((inventory *)inv, root), 0);
        assert_int_equal(plan_build(inv, c, &p, &err), -EINVAL);
        assert_null(p);
        assert_non_null(err);
        return err;
}

static void assert_ids(const struct plan_resource *r, const char *const *ids, size_t n)
{
        assert_int_equal(r->n_devices, n);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(r->devices[i].id, ids[i]);
                assert_int_equal(plan_resource_find_device(r, ids[i]), (ssize_t)i);
        }
}

static const char *const h100_ids[] = {
        "GPU-00000000-0000-0000-0000-000000000000", "GPU-00000000-0000-0000-0000-000000000001",
        "GPU-00000000-0000-0000-0000-000000000002", "GPU-00000000-0000-0000-0000-000000000003",
        "GPU-00000000-0000-0000-0000-000000000004", "GPU-00000000-0000-0000-0000-000000000005",
        "GPU-00000000-0000-0000-0000-000000000006", "GPU-00000000-0000-0000-0000-000000000007",
};

static void test_h100_plain(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(config_freep) config *c = cfg(NULL, MIG_STRATEGY_NONE);
        _cleanup_(plan_freep) plan *p = build(inv, c, "/");

        assert_int_equal(p->n_resources, 1);
        const struct plan_resource *r = plan_find_resource(p, "nvidia.com/gpu");
        assert_ptr_equal(r, &p->resources[0]);
        assert_string_equal(r->socket_name, "nvidia-gpu.sock");
        assert_int_equal(r->sharing, SHARING_NONE);
        assert_int_equal(r->replicas, 1);
        assert_false(r->fail_requests_greater_than_one);
        assert_ids(r, h100_ids, 8);
        static const int numa[] = { 0, 0, 0, 0, 1, 1, 1, 1 };
        for (unsigned i = 0; i < 8; i++) {
                const struct plan_device *d = &r->devices[i];
                assert_string_equal(d->runtime_id, h100_ids[i]);
                assert_int_equal(d->gpu, i);
                assert_int_equal(d->mig, -1);
                assert_int_equal(d->replica, -1);
                assert_int_equal(d->numa_node, numa[i]);
                char dev[32];
                snprintf(dev, sizeof dev, "/dev/nvidia%u", i);
                assert_int_equal(strv_length(d->paths), 1);
                assert_string_equal(d->paths[0], dev);
        }
        assert_int_equal(plan_resource_find_device(r, "GPU-00000000-0000-0000-0000-000000000008"), -1);
        assert_int_equal(plan_resource_find_device(r, "GPU-00000000-0000-0000-0000-000000000000::0"), -1);
        assert_null(plan_find_resource(p, "nvidia.com/gpu.shared"));
}

static void test_h100_replicas(void **state)
{
        static const char *const ids[] = {
                "GPU-00000000-0000-0000-0000-000000000000::0", "GPU-00000000-0000-0000-0000-000000000000::1",
                "GPU-00000000-0000-0000-0000-000000000000::2", "GPU-00000000-0000-0000-0000-000000000000::3",
                "GPU-00000000-0000-0000-0000-000000000001::0", "GPU-00000000-0000-0000-0000-000000000001::1",
                "GPU-00000000-0000-0000-0000-000000000001::2", "GPU-00000000-0000-0000-0000-000000000001::3",
                "GPU-00000000-0000-0000-0000-000000000002::0", "GPU-00000000-0000-0000-0000-000000000002::1",
                "GPU-00000000-0000-0000-0000-000000000002::2", "GPU-00000000-0000-0000-0000-000000000002::3",
                "GPU-00000000-0000-0000-0000-000000000003::0", "GPU-00000000-0000-0000-0000-000000000003::1",
                "GPU-00000000-0000-0000-0000-000000000003::2", "GPU-00000000-0000-0000-0000-000000000003::3",
                "GPU-00000000-0000-0000-0000-000000000004::0", "GPU-00000000-0000-0000-0000-000000000004::1",
                "GPU-00000000-0000-0000-0000-000000000004::2", "GPU-00000000-0000-0000-0000-000000000004::3",
                "GPU-00000000-0000-0000-0000-000000000005::0", "GPU-00000000-0000-0000-0000-000000000005::1",
                "GPU-00000000-0000-0000-0000-000000000005::2", "GPU-00000000-0000-0000-0000-000000000005::3",
                "GPU-00000000-0000-0000-0000-000000000006::0", "GPU-00000000-0000-0000-0000-000000000006::1",
                "GPU-00000000-0000-0000-0000-000000000006::2", "GPU-00000000-0000-0000-0000-000000000006::3",
                "GPU-00000000-0000-0000-0000-000000000007::0", "GPU-00000000-0000-0000-0000-000000000007::1",
                "GPU-00000000-0000-0000-0000-000000000007::2", "GPU-00000000-0000-0000-0000-000000000007::3",
        };
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(config_freep) config *c = cfg("time-slicing-4.yaml", MIG_STRATEGY_NONE);
        _cleanup_(plan_freep) plan *p = build(inv, c, "/");

        assert_int_equal(p->n_resources, 1);
        const struct plan_resource *r = &p->resources[0];
        assert_string_equal(r->name, "nvidia.com/gpu");
        assert_string_equal(r->socket_name, "nvidia-gpu.sock");
        assert_int_equal(r->sharing, SHARING_TIME_SLICING);
        assert_int_equal(r->replicas, 4);
        assert_false(r->fail_requests_greater_than_one);
        assert_ids(r, ids, 32);
        /* replicas keep their GPU's runtime id, NUMA node and device node */
        assert_int_equal(r->devices[13].replica, 1);
        assert_int_equal(r->devices[13].gpu, 3);
        assert_string_equal(r->devices[13].runtime_id, "GPU-00000000-0000-0000-0000-000000000003");
        assert_string_equal(r->devices[13].paths[0], "/dev/nvidia3");
        assert_int_equal(r->devices[17].numa_node, 1);
}

/* Beyond upstream: two GPUs shared under a new name, the other six whole under nvidia.com/gpu. */
static void test_h100_two_shared_six_whole(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(config_freep) config *c = cfg("rename.yaml", MIG_STRATEGY_NONE);
        _cleanup_(plan_freep) plan *p = build(inv, c, "/");

        assert_int_equal(p->n_resources, 2);
        const struct plan_resource *whole = &p->resources[0], *shared = &p->resources[1];
        assert_string_equal(whole->name, "nvidia.com/gpu");
        assert_string_equal(shared->name, "nvidia.com/gpu.shared");
        assert_string_equal(shared->socket_name, "nvidia-gpu.shared.sock");

        static const char *const whole_ids[] = {
                "GPU-00000000-0000-0000-0000-000000000001", "GPU-00000000-0000-0000-0000-000000000002",
                "GPU-00000000-0000-0000-0000-000000000003", "GPU-00000000-0000-0000-0000-000000000004",
                "GPU-00000000-0000-0000-0000-000000000006", "GPU-00000000-0000-0000-0000-000000000007",
        };
        assert_int_equal(whole->sharing, SHARING_NONE);
        assert_int_equal(whole->replicas, 1);
        assert_ids(whole, whole_ids, 6);

        static const char *const shared_ids[] = {
                "GPU-00000000-0000-0000-0000-000000000000::0", "GPU-00000000-0000-0000-0000-000000000000::1",
                "GPU-00000000-0000-0000-0000-000000000000::2", "GPU-00000000-0000-0000-0000-000000000000::3",
                "GPU-00000000-0000-0000-0000-000000000005::0", "GPU-00000000-0000-0000-0000-000000000005::1",
                "GPU-00000000-0000-0000-0000-000000000005::2", "GPU-00000000-0000-0000-0000-000000000005::3",
        };
        assert_int_equal(shared->sharing, SHARING_TIME_SLICING);
        assert_int_equal(shared->replicas, 4);
        assert_ids(shared, shared_ids, 8);
        assert_string_equal(shared->devices[4].paths[0], "/dev/nvidia5");
}

/* The log line's summary: units (not replicas) counted, the sharing named. */
static void test_describe(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(fixture_inventory_freep) inventory *a100 = fixture_a100_mig();
        _cleanup_(config_freep) config *whole = cfg(NULL, MIG_STRATEGY_NONE);
        _cleanup_(config_freep) config *shared = cfg("rename.yaml", MIG_STRATEGY_NONE);
        _cleanup_(config_freep) config *mixed = cfg(NULL, MIG_STRATEGY_MIXED);
        _cleanup_free_ char *root = fixture("a100-root");
        _cleanup_(plan_freep) plan *p1 = build(inv, whole, "/"), *p2 = build(inv, shared, "/"),
                                   *p3 = build(a100, mixed, root);
        _cleanup_free_ char *d1 = plan_describe(p1), *d2 = plan_describe(p2), *d3 = plan_describe(p3),
                            *d4 = plan_describe(NULL);
        assert_string_equal(d1, "nvidia.com/gpu: 8 GPUs");
        assert_string_equal(
                d2, "nvidia.com/gpu: 6 GPUs, nvidia.com/gpu.shared: 2 GPUs x 4 replicas (time-slicing)");
        assert_string_equal(d3,
                            "nvidia.com/mig-1g.5gb: 3 MIG devices, nvidia.com/mig-1g.5gb.me: 1 MIG device, "
                            "nvidia.com/mig-2g.10gb: 1 MIG device, nvidia.com/mig-3g.20gb: 1 MIG device");
        assert_string_equal(d4, "nothing");
}

static void test_h100_devices_count(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(config_freep) config *c =
                cfg("devices-count.yaml", MIG_STRATEGY_NONE); /* 3 GPUs, 2 replicas */
        _cleanup_(plan_freep) plan *p = build(inv, c, "/");
        assert_int_equal(p->n_resources, 2);
        static const char *const shared_ids[] = {
                "GPU-00000000-0000-0000-0000-000000000000::0", "GPU-00000000-0000-0000-0000-000000000000::1",
                "GPU-00000000-0000-0000-0000-000000000001::0", "GPU-00000000-0000-0000-0000-000000000001::1",
                "GPU-00000000-0000-0000-0000-000000000002::0", "GPU-00000000-0000-0000-0000-000000000002::1",
        };
        assert_ids(plan_find_resource(p, "nvidia.com/gpu.shared"), shared_ids, 6);
        assert_ids(plan_find_resource(p, "nvidia.com/gpu"), h100_ids + 3, 5);
}

static void test_h100_index_strategy(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(config_freep) config *c = cfg("time-slicing-4.yaml", MIG_STRATEGY_NONE);
        c->flags.plugin.device_id_strategy = DEVICE_ID_INDEX;
        _cleanup_(plan_freep) plan *p = build(inv, c, "/");
        const struct plan_resource *r = &p->resources[0];
        /* kubelet IDs stay UUIDs; the runtime gets the index */
        assert_string_equal(r->devices[0].id, "GPU-00000000-0000-0000-0000-000000000000::0");
        assert_string_equal(r->devices[0].runtime_id, "0");
        assert_string_equal(r->devices[3].runtime_id, "0");
        assert_string_equal(r->devices[4].runtime_id, "1");
        assert_string_equal(r->devices[31].id, "GPU-00000000-0000-0000-0000-000000000007::3");
        assert_string_equal(r->devices[31].runtime_id, "7");
}

static void test_a100_none(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        _cleanup_(config_freep) config *c = cfg(NULL, MIG_STRATEGY_NONE);
        _cleanup_free_ char *root = fixture("a100-root");
        _cleanup_(plan_freep) plan *p = build(inv, c, root);
        /* MIG-enabled GPUs are still advertised whole */
        assert_int_equal(p->n_resources, 1);
        static const char *const ids[] = { "GPU-10000000-0000-0000-0000-000000000000",
                                           "GPU-10000000-0000-0000-0000-000000000001" };
        assert_ids(plan_find_resource(p, "nvidia.com/gpu"), ids, 2);
        assert_int_equal(strv_length(p->resources[0].devices[1].paths), 1);
        assert_string_equal(p->resources[0].devices[1].paths[0], "/dev/nvidia1");
}

static void test_a100_single(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        _cleanup_(config_freep) config *c = cfg(NULL, MIG_STRATEGY_SINGLE);
        _cleanup_free_ char *root = fixture("a100-root");
        _cleanup_free_ char *err = build_error(inv, c, root);
        assert_string_equal(err, "MIG strategy single: more than one MIG device type present on node "
                                 "(3g.20gb on GPU 0, 2g.10gb on GPU 0)");

        /* one GPU with MIG off */
        inv->gpus[1].mig_enabled = false;
        _cleanup_free_ char *err2 = build_error(inv, c, root);
        assert_string_equal(err2,
                            "MIG strategy single: all devices on the node must be configured with the same "
                            "migEnabled value (GPU 0 has MIG enabled, GPU 1 does not)");

        /* MIG on but no MIG devices */
        inv->gpus[1].mig_enabled = true;
        inv->gpus[1].n_mig = 0;
        inv->gpus[0].n_mig = 1;
        _cleanup_free_ char *err3 = build_error(inv, c, root);
        assert_string_equal(err3,
                            "MIG strategy single: GPU 1 (GPU-10000000-0000-0000-0000-000000000001) has MIG "
                            "enabled but no MIG devices");
}

static void test_a100_single_uniform(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig_uniform();
        _cleanup_(config_freep) config *c = cfg("single-index.yaml", MIG_STRATEGY_SINGLE);
        _cleanup_free_ char *root = fixture("a100-root");
        _cleanup_(plan_freep) plan *p = build(inv, c, root);
        assert_int_equal(p->n_resources, 1);
        const struct plan_resource *r = plan_find_resource(p, "nvidia.com/gpu");
        static const char *const ids[] = {
                "MIG-b0000000-0000-0000-0000-000000000000",
                "MIG-b0100000-0000-0000-0000-000000000000",
                "MIG-b1000000-0000-0000-0000-000000000000",
                "MIG-b1100000-0000-0000-0000-000000000000",
        };
        assert_ids(r, ids, 4);
        static const char *const runtime[] = { "0:0", "0:1", "1:0", "1:1" };
        for (size_t i = 0; i < 4; i++)
                assert_string_equal(r->devices[i].runtime_id, runtime[i]);
        /* GPU 1, GI 2: gpu1/gi2/access 156, gpu1/gi2/ci0/access 157 */
        assert_int_equal(strv_length(r->devices[3].paths), 3);
        assert_string_equal(r->devices[3].paths[0], "/dev/nvidia1");
        assert_string_equal(r->devices[3].paths[1], "/dev/nvidia-caps/nvidia-cap156");
        assert_string_equal(r->devices[3].paths[2], "/dev/nvidia-caps/nvidia-cap157");
        assert_int_equal(r->devices[3].numa_node, 1);
        assert_int_equal(r->devices[3].mig, 1);
}

static void assert_paths(const struct plan_device *d, const char *p0, const char *p1, const char *p2)
{
        assert_int_equal(strv_length(d->paths), 3);
        assert_string_equal(d->paths[0], p0);
        assert_string_equal(d->paths[1], p1);
        assert_string_equal(d->paths[2], p2);
}

static void test_a100_mixed(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        _cleanup_(config_freep) config *c = cfg(NULL, MIG_STRATEGY_MIXED);
        _cleanup_free_ char *root = fixture("a100-root");
        _cleanup_(plan_freep) plan *p = build(inv, c, root);

        /* one resource per C==G profile; 1c.3g.20gb gets none; no nvidia.com/gpu (both GPUs MIG-enabled) */
        assert_int_equal(p->n_resources, 4);
        assert_string_equal(p->resources[0].name, "nvidia.com/mig-1g.5gb");
        assert_string_equal(p->resources[1].name, "nvidia.com/mig-1g.5gb.me");
        assert_string_equal(p->resources[2].name, "nvidia.com/mig-2g.10gb");
        assert_string_equal(p->resources[3].name, "nvidia.com/mig-3g.20gb");
        assert_string_equal(p->resources[0].socket_name, "nvidia-mig-1g.5gb.sock");
        assert_string_equal(p->resources[1].socket_name, "nvidia-mig-1g.5gb.me.sock");

        static const char *const small[] = { "MIG-a0200000-0000-0000-0000-000000000000",
                                             "MIG-a0300000-0000-0000-0000-000000000000",
                                             "MIG-a1000000-0000-0000-0000-000000000000" };
        assert_ids(&p->resources[0], small, 3);
        static const char *const me[] = { "MIG-a1100000-0000-0000-0000-000000000000" };
        assert_ids(&p->resources[1], me, 1);
        static const char *const two[] = { "MIG-a0100000-0000-0000-0000-000000000000" };
        assert_ids(&p->resources[2], two, 1);
        static const char *const three[] = { "MIG-a0000000-0000-0000-0000-000000000000" };
        assert_ids(&p->resources[3], three, 1);

        /* caps from mig-minors: gpu<minor>/gi<gi>/access and gpu<minor>/gi<gi>/ci<ci>/access */
        assert_paths(&p->resources[0].devices[0], "/dev/nvidia0", "/dev/nvidia-caps/nvidia-cap120",
                     "/dev/nvidia-caps/nvidia-cap121");
        assert_paths(&p->resources[0].devices[1], "/dev/nvidia0", "/dev/nvidia-caps/nvidia-cap129",
                     "/dev/nvidia-caps/nvidia-cap130");
        assert_paths(&p->resources[0].devices[2], "/dev/nvidia1", "/dev/nvidia-caps/nvidia-cap201",
                     "/dev/nvidia-caps/nvidia-cap202");
        assert_paths(&p->resources[1].devices[0], "/dev/nvidia1", "/dev/nvidia-caps/nvidia-cap210",
                     "/dev/nvidia-caps/nvidia-cap211");
        assert_paths(&p->resources[2].devices[0], "/dev/nvidia0", "/dev/nvidia-caps/nvidia-cap48",
                     "/dev/nvidia-caps/nvidia-cap49");
        assert_paths(&p->resources[3].devices[0], "/dev/nvidia0", "/dev/nvidia-caps/nvidia-cap12",
                     "/dev/nvidia-caps/nvidia-cap13");
        /* MIG devices take the parent's NUMA node; uuid strategy: runtime id is the MIG UUID */
        assert_int_equal(p->resources[0].devices[2].numa_node, 1);
        assert_int_equal(p->resources[0].devices[0].numa_node, 0);
        assert_string_equal(p->resources[0].devices[2].runtime_id,
                            "MIG-a1000000-0000-0000-0000-000000000000");

        /* the index strategy gives "<gpu>:<mig enumeration index>" */
        c->flags.plugin.device_id_strategy = DEVICE_ID_INDEX;
        _cleanup_(plan_freep) plan *q = build(inv, c, root);
        assert_string_equal(q->resources[0].devices[0].runtime_id, "0:2");
        assert_string_equal(q->resources[0].devices[1].runtime_id, "0:3");
        assert_string_equal(q->resources[0].devices[2].runtime_id, "1:0");
        assert_string_equal(q->resources[1].devices[0].runtime_id, "1:1");
        assert_false(plan_resource_equal(&p->resources[0], &q->resources[0]));
}

static void test_a100_mixed_shared_mig(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        _cleanup_(config_freep) config *c = cfg(NULL, MIG_STRATEGY_MIXED);
        _cleanup_free_ char *root = fixture("a100-root");
        /* share 0:2 and MIG-a1... (two of the three 1g.5gb) with 2 replicas as mig-1g.5gb.shared */
        c->sharing.strategy = SHARING_TIME_SLICING;
        c->sharing.resources = new0(struct replicated_resource, 1);
        c->sharing.n_resources = 1;
        c->sharing.resources[0] = (struct replicated_resource){
                .name = strdup("nvidia.com/mig-1g.5gb"),
                .rename = strdup("nvidia.com/mig-1g.5gb.shared"),
                .replicas = 2,
        };
        assert_int_equal(strv_extend(&c->sharing.resources[0].devices_list, "0:2"), 0);
        assert_int_equal(strv_extend(&c->sharing.resources[0].devices_list,
                                     "MIG-a1000000-0000-0000-0000-000000000000"),
                         0);
        _cleanup_(plan_freep) plan *p = build(inv, c, root);
        assert_int_equal(p->n_resources, 5);
        static const char *const whole[] = { "MIG-a0300000-0000-0000-0000-000000000000" };
        assert_ids(plan_find_resource(p, "nvidia.com/mig-1g.5gb"), whole, 1);
        static const char *const shared[] = {
                "MIG-a0200000-0000-0000-0000-000000000000::0",
                "MIG-a0200000-0000-0000-0000-000000000000::1",
                "MIG-a1000000-0000-0000-0000-000000000000::0",
                "MIG-a1000000-0000-0000-0000-000000000000::1",
        };
        const struct plan_resource *s = plan_find_resource(p, "nvidia.com/mig-1g.5gb.shared");
        assert_ids(s, shared, 4);
        assert_string_equal(s->socket_name, "nvidia-mig-1g.5gb.shared.sock");
        assert_paths(&s->devices[3], "/dev/nvidia1", "/dev/nvidia-caps/nvidia-cap201",
                     "/dev/nvidia-caps/nvidia-cap202");

        /* an entry naming no device of that resource is an error naming it */
        assert_int_equal(strv_extend(&c->sharing.resources[0].devices_list, "0:0"), 0);
        _cleanup_free_ char *err = build_error(inv, c, root);
        assert_string_equal(err, "sharing resource nvidia.com/mig-1g.5gb: devices entry \"0:0\" names no "
                                 "nvidia.com/mig-1g.5gb device on this node");
}

static void test_a100_missing_mig_minors(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        _cleanup_(config_freep) config *c = cfg(NULL, MIG_STRATEGY_MIXED);
        _cleanup_free_ char *root = fixture("no-such-root"), *expected = NULL;
        _cleanup_free_ char *err = build_error(inv, c, root);
        assert_true(asprintf(&expected,
                             "cannot read %s/proc/driver/nvidia-caps/mig-minors, needed for the device "
                             "nodes of MIG "
                             "devices: No such file or directory",
                             root) > 0);
        assert_string_equal(err, expected);
        /* without MIG devices the file is not needed */
        c->flags.mig_strategy = MIG_STRATEGY_NONE;
        _cleanup_(plan_freep) plan *p = build(inv, c, root);
        assert_int_equal(p->n_resources, 1);
}

static void test_rtx(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_rtx4070ti();
        _cleanup_(config_freep) config *c = cfg(NULL, MIG_STRATEGY_MIXED);
        _cleanup_(plan_freep) plan *p = build(inv, c, "/");
        assert_int_equal(p->n_resources, 1);
        static const char *const ids[] = { "GPU-20000000-0000-0000-0000-000000000000" };
        assert_ids(plan_find_resource(p, "nvidia.com/gpu"), ids, 1);
        assert_int_equal(p->resources[0].devices[0].numa_node, -1);
        assert_string_equal(p->resources[0].devices[0].paths[0], "/dev/nvidia0");

        /* MPS, renameByDefault: gpu.shared with two replicas, requests of more than one fail */
        _cleanup_(config_freep) config *m = cfg("mps-no-root.yaml", MIG_STRATEGY_NONE);
        m->sharing.rename_by_default = true;
        m->sharing.resources[0].rename = strdup("nvidia.com/gpu.shared");
        _cleanup_(plan_freep) plan *q = build(inv, m, "/");
        assert_int_equal(q->n_resources, 1);
        const struct plan_resource *r = &q->resources[0];
        assert_string_equal(r->name, "nvidia.com/gpu.shared");
        assert_int_equal(r->sharing, SHARING_MPS);
        assert_true(r->fail_requests_greater_than_one);
        static const char *const shared[] = { "GPU-20000000-0000-0000-0000-000000000000::0",
                                              "GPU-20000000-0000-0000-0000-000000000000::1" };
        assert_ids(r, shared, 2);

        /* a sharing entry for a resource the node lacks is ignored unless it names devices */
        _cleanup_(config_freep) config *l = cfg("devices-list.yaml", MIG_STRATEGY_NONE);
        _cleanup_free_ char *err = build_error(inv, l, "/");
        assert_string_equal(err, "sharing resource nvidia.com/mig-1g.5gb: devices entry \"0:2\" names no "
                                 "nvidia.com/mig-1g.5gb device on this node");
}

static void test_conflicts(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(config_freep) config *c = cfg("rename-by-default.yaml", MIG_STRATEGY_NONE);
        /* rename the shared GPUs back onto nvidia.com/gpu while some stay whole there */
        free(c->sharing.resources[0].rename);
        c->sharing.resources[0].rename = NULL;
        c->sharing.resources[0].devices_all = false;
        c->sharing.resources[0].devices_count = 2;
        _cleanup_free_ char *err = build_error(inv, c, "/");
        assert_string_equal(
                err, "resource nvidia.com/gpu would hold devices with different sharing "
                     "(GPU-00000000-0000-0000-0000-000000000000 with 2 replicas, "
                     "GPU-00000000-0000-0000-0000-000000000002 with 1); give each group its own rename");
}

static void test_no_gpus(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_inventory_new(0);
        _cleanup_(config_freep) config *c = cfg("time-slicing-4.yaml", MIG_STRATEGY_MIXED);
        _cleanup_(plan_freep) plan *p = build(inv, c, "/");
        /* resources without devices are not advertised */
        assert_int_equal(p->n_resources, 0);
        assert_null(plan_find_resource(p, "nvidia.com/gpu"));
}

static void test_equal(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(config_freep) config *c = cfg("rename.yaml", MIG_STRATEGY_NONE);
        _cleanup_(plan_freep) plan *a = build(inv, c, "/");
        _cleanup_(plan_freep) plan *b = build(inv, c, "/");
        assert_true(plan_resource_equal(&a->resources[0], &b->resources[0]));
        assert_true(plan_resource_equal(&a->resources[1], &b->resources[1]));
        assert_false(plan_resource_equal(&a->resources[0], &b->resources[1]));
        c->sharing.resources[0].replicas = 5;
        _cleanup_(plan_freep) plan *d = build(inv, c, "/");
        /* whole GPUs unchanged (the endpoint is kept), the shared resource changed */
        assert_true(plan_resource_equal(&a->resources[0], &d->resources[0]));
        assert_false(plan_resource_equal(&a->resources[1], &d->resources[1]));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_h100_plain),
                cmocka_unit_test(test_h100_replicas),
                cmocka_unit_test(test_h100_two_shared_six_whole),
                cmocka_unit_test(test_describe),
                cmocka_unit_test(test_h100_devices_count),
                cmocka_unit_test(test_h100_index_strategy),
                cmocka_unit_test(test_a100_none),
                cmocka_unit_test(test_a100_single),
                cmocka_unit_test(test_a100_single_uniform),
                cmocka_unit_test(test_a100_mixed),
                cmocka_unit_test(test_a100_mixed_shared_mig),
                cmocka_unit_test(test_a100_missing_mig_minors),
                cmocka_unit_test(test_rtx),
                cmocka_unit_test(test_conflicts),
                cmocka_unit_test(test_no_gpus),
                cmocka_unit_test(test_equal),
        };
        return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
