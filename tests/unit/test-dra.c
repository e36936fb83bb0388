/* SPDX-License-Identifier: Apache-2.0 */
/* The DRA driver's pure parts: device names, ResourceSlices, claim resolution, the checkpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include <json-c/json.h>
#include <sys/stat.h>

#include "base/strv.h"
#include "dra.pb-c.h"
#include "dra/dra.h"
#include "pluginregistration.pb-c.h"
#include "test-plan-inventories.h"

#define SEC (1000ULL * 1000 * 1000)
#define T0  (1000 * SEC)

static void json_putp(json_object **o)
{
        json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

/* o["a"]["b"]... for a NULL-terminated list of keys; NULL when a key is missing. */
static json_object *dig(json_object *o, ...)
{
        va_list ap;
        va_start(ap, o);
        for (const char *k; o && (k = va_arg(ap, const char *));)
                o = json_object_object_get(o, k);
        va_end(ap);
        return o;
}

static const char *dig_str(json_object *o, const char *a, const char *b)
{
        return json_object_get_string(dig(o, a, b, NULL));
}

static json_object *parse(const char *text)
{
        json_object *o = json_tokener_parse(text);
        assert_non_null(o);
        return o;
}

/* The device named name in a slice. */
static json_object *slice_device(json_object *slice, const char *name)
{
        json_object *devs = dig(slice, "spec", "devices", NULL);
        for (size_t i = 0; devs && i < json_object_array_length(devs); i++) {
                json_object *d = json_object_array_get_idx(devs, i);
                if (streq(json_object_get_string(json_object_object_get(d, "name")), name))
                        return d;
        }
        return NULL;
}

static size_t slice_n_devices(json_object *slice)
{
        json_object *devs = dig(slice, "spec", "devices", NULL);
        return devs ? json_object_array_length(devs) : 0;
}

static health_tracker *tracker_new(const inventory *inv)
{
        struct health_rules r;
        health_tracker *t = NULL;
        assert_int_equal(health_rules_parse(HEALTH_POLICY_CATALOG, 300 * SEC, NULL, NULL, &r), 0);
        assert_int_equal(health_tracker_new(inv, &r, &t), 0);
        return t;
}

static void xid(health_tracker *t, int gpu, int mig, uint64_t x)
{
        struct health_event e = { .kind = HEALTH_EVENT_XID, .gpu = gpu, .mig = mig, .xid = x, .time = T0 };
        health_tracker_apply(t, &e, T0);
}

/* ---- devices ---------------------------------------------------------------------------------------- */

static void test_devices_whole_gpus(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_free_ struct dra_device *d = NULL;
        size_t n = 0;
        assert_int_equal(dra_devices_list(inv, &d, &n), 0);
        assert_int_equal(n, 8);
        assert_string_equal(d[0].name, "gpu-0");
        assert_string_equal(d[7].name, "gpu-7");
        const struct dra_device *x = dra_devices_find(d, n, "gpu-3");
        assert_non_null(x);
        assert_int_equal(x->gpu, 3);
        assert_int_equal(x->mig, -1);
        assert_null(dra_devices_find(d, n, "gpu-8"));
        assert_null(dra_devices_find(d, n, NULL));
}

static void test_devices_named_by_minor(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        inv->gpus[2].minor = 5; /* NVML index 2 is /dev/nvidia5 */
        inv->gpus[5].minor = 2;
        _cleanup_free_ struct dra_device *d = NULL;
        size_t n = 0;
        assert_int_equal(dra_devices_list(inv, &d, &n), 0);
        assert_string_equal(d[2].name, "gpu-5");
        assert_int_equal(dra_devices_find(d, n, "gpu-5")->gpu, 2);
}

static void test_devices_mig(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        _cleanup_free_ struct dra_device *d = NULL;
        size_t n = 0;
        assert_int_equal(dra_devices_list(inv, &d, &n), 0);
        /* MIG on: only the MIG devices, no whole GPU. */
        assert_int_equal(n, 7);
        static const char *const names[] = { "gpu-0-mig-1-0",  "gpu-0-mig-5-0", "gpu-0-mig-13-0",
                                             "gpu-0-mig-14-0", "gpu-1-mig-7-0", "gpu-1-mig-8-0",
                                             "gpu-1-mig-2-1" };
        for (size_t i = 0; i < 7; i++)
                assert_string_equal(d[i].name, names[i]);
        assert_int_equal(d[6].gpu, 1);
        assert_int_equal(d[6].mig, 2);
        assert_null(dra_devices_find(d, n, "gpu-0"));
}

static void test_devices_empty(void **state)
{
        _cleanup_free_ struct dra_device *d = NULL;
        size_t n = 99;
        assert_int_equal(dra_devices_list(NULL, &d, &n), 0);
        assert_int_equal(n, 0);
}

static void test_versions(void **state)
{
        char v[32];
        assert_int_equal(dra_version_compute_capability(9, 0, v, sizeof v), 0);
        assert_string_equal(v, "9.0.0");
        assert_int_equal(dra_version_compute_capability(8, 9, v, sizeof v), 0);
        assert_string_equal(v, "8.9.0");
        assert_int_equal(dra_version_compute_capability(0, 0, v, sizeof v), -EINVAL);

        assert_int_equal(dra_version_driver("580.105.08", v, sizeof v), 0);
        assert_string_equal(v, "580.105.8");
        assert_int_equal(dra_version_driver("550.54", v, sizeof v), 0);
        assert_string_equal(v, "550.54.0");
        assert_int_equal(dra_version_driver("570", v, sizeof v), 0);
        assert_string_equal(v, "570.0.0");
        assert_int_equal(dra_version_driver("580.x", v, sizeof v), -EINVAL);
        assert_int_equal(dra_version_driver("1.2.3.4", v, sizeof v), -EINVAL);
        assert_int_equal(dra_version_driver("", v, sizeof v), -EINVAL);
        assert_int_equal(dra_version_driver("580.", v, sizeof v), -EINVAL);

        assert_int_equal(dra_version_cuda(13000, v, sizeof v), 0);
        assert_string_equal(v, "13.0.0");
        assert_int_equal(dra_version_cuda(12080, v, sizeof v), 0);
        assert_string_equal(v, "12.8.0");
        assert_int_equal(dra_version_cuda(0, v, sizeof v), -EINVAL);

        assert_string_equal(dra_brand_name("nvidia"), "Nvidia");
        assert_string_equal(dra_brand_name("geforce-rtx"), "GeForceRTX");
        assert_string_equal(dra_brand_name(""), "Unknown");
        assert_string_equal(dra_architecture_name("hopper"), "Hopper");
        assert_string_equal(dra_architecture_name("ada"), "Ada Lovelace");
        assert_string_equal(dra_architecture_name(""), "Unknown");
}

/* ---- ResourceSlices ----------------------------------------------------------------------------------- */

static const struct dra_slice_params PARAMS = { .node = "node-a",
                                                .node_uid = "0c4d1f3e-6a7b-4c8d-9e0f-112233445566",
                                                .generation = 3 };

static char **build(const inventory *inv, const health_tracker *t, const struct dra_slice_params *p)
{
        char **slices = NULL;
        _cleanup_free_ char *error = NULL;
        assert_int_equal(dra_slices_build(inv, t, p, &slices, &error), 0);
        assert_null(error);
        return slices;
}

static void test_slice_h100(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_strv_free_ char **slices = build(inv, NULL, &PARAMS);
        assert_int_equal(strv_length(slices), 1);
        _cleanup_json_ json_object *s = parse(slices[0]);

        assert_string_equal(json_object_get_string(dig(s, "apiVersion", NULL)), "resource.k8s.io/v1");
        assert_string_equal(json_object_get_string(dig(s, "kind", NULL)), "ResourceSlice");
        assert_string_equal(dig_str(s, "metadata", "name"), "node-a-gpu.nvidia.com-0");
        json_object *owner = json_object_array_get_idx(dig(s, "metadata", "ownerReferences", NULL), 0);
        assert_string_equal(json_object_get_string(dig(owner, "kind", NULL)), "Node");
        assert_string_equal(json_object_get_string(dig(owner, "name", NULL)), "node-a");
        assert_string_equal(json_object_get_string(dig(owner, "uid", NULL)),
                            "0c4d1f3e-6a7b-4c8d-9e0f-112233445566");
        assert_string_equal(dig_str(s, "spec", "driver"), "gpu.nvidia.com");
        assert_string_equal(dig_str(s, "spec", "nodeName"), "node-a");
        assert_string_equal(json_object_get_string(dig(s, "spec", "pool", "name", NULL)), "node-a");
        assert_int_equal(json_object_get_int64(dig(s, "spec", "pool", "generation", NULL)), 3);
        assert_int_equal(json_object_get_int64(dig(s, "spec", "pool", "resourceSliceCount", NULL)), 1);
        assert_int_equal(slice_n_devices(s), 8);

        json_object *d = slice_device(s, "gpu-5");
        assert_non_null(d);
        json_object *a = json_object_object_get(d, "attributes");
        assert_string_equal(dig_str(a, "type", "string"), "gpu");
        assert_string_equal(dig_str(a, "uuid", "string"), "GPU-00000000-0000-0000-0000-000000000005");
        assert_int_equal(json_object_get_int64(dig(a, "index", "int", NULL)), 5);
        assert_int_equal(json_object_get_int64(dig(a, "minor", "int", NULL)), 5);
        assert_string_equal(dig_str(a, "productName", "string"), "NVIDIA H100 80GB HBM3");
        assert_string_equal(dig_str(a, "brand", "string"), "Nvidia");
        assert_string_equal(dig_str(a, "architecture", "string"), "Hopper");
        assert_string_equal(dig_str(a, "cudaComputeCapability", "version"), "9.0.0");
        assert_string_equal(dig_str(a, "driverVersion", "version"), "580.105.8");
        assert_string_equal(dig_str(a, "cudaDriverVersion", "version"), "13.0.0");
        assert_string_equal(dig_str(a, "pcieBusID", "string"), "0000:ab:00.0");
        assert_string_equal(dig_str(a, "resource.kubernetes.io/pciBusID", "string"), "0000:ab:00.0");
        assert_int_equal(json_object_get_int64(dig(a, "resource.kubernetes.io/numaNode", "int", NULL)), 1);
        assert_int_equal(json_object_object_length(a), 13);
        assert_string_equal(json_object_get_string(dig(d, "capacity", "memory", "value", NULL)), "81559Mi");
        assert_null(json_object_object_get(d, "taints"));
        assert_int_equal(json_object_get_int64(dig(slice_device(s, "gpu-0"), "attributes",
                                                   "resource.kubernetes.io/numaNode", "int", NULL)),
                         0);
}

static void test_slice_without_owner(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        struct dra_slice_params p = PARAMS;
        p.node_uid = NULL;
        _cleanup_strv_free_ char **slices = build(inv, NULL, &p);
        _cleanup_json_ json_object *s = parse(slices[0]);
        assert_null(dig(s, "metadata", "ownerReferences", NULL));
}

static void test_slice_mig(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        inv->driver_version[0] = '\0';
        snprintf(inv->driver_version, sizeof inv->driver_version, "570.124.06");
        inv->cuda_driver_version = 12080;
        _cleanup_strv_free_ char **slices = build(inv, NULL, &PARAMS);
        _cleanup_json_ json_object *s = parse(slices[0]);
        assert_int_equal(slice_n_devices(s), 7);
        json_object *d = slice_device(s, "gpu-1-mig-2-1");
        assert_non_null(d);
        json_object *a = json_object_object_get(d, "attributes");
        assert_string_equal(dig_str(a, "type", "string"), "mig");
        assert_string_equal(dig_str(a, "uuid", "string"), "MIG-a1200000-0000-0000-0000-000000000000");
        assert_string_equal(dig_str(a, "parentUUID", "string"), "GPU-10000000-0000-0000-0000-000000000001");
        assert_string_equal(dig_str(a, "profile", "string"), "1c.3g.20gb");
        assert_int_equal(json_object_get_int64(dig(a, "index", "int", NULL)), 2);
        assert_int_equal(json_object_get_int64(dig(a, "parentIndex", "int", NULL)), 1);
        assert_string_equal(dig_str(a, "productName", "string"), "NVIDIA A100-SXM4-40GB");
        assert_string_equal(dig_str(a, "architecture", "string"), "Ampere");
        assert_string_equal(dig_str(a, "cudaComputeCapability", "version"), "8.0.0");
        assert_string_equal(dig_str(a, "driverVersion", "version"), "570.124.6");
        assert_string_equal(dig_str(a, "cudaDriverVersion", "version"), "12.8.0");
        assert_string_equal(dig_str(a, "pcieBusID", "string"), "0000:87:00.0");
        json_object *c = json_object_object_get(d, "capacity");
        assert_string_equal(dig_str(c, "memory", "value"), "19968Mi");
        assert_string_equal(dig_str(c, "multiprocessors", "value"), "14");
        assert_string_equal(dig_str(c, "copyEngines", "value"), "3");
        assert_string_equal(dig_str(c, "decoders", "value"), "0");
        assert_non_null(slice_device(s, "gpu-0-mig-1-0"));
        assert_null(slice_device(s, "gpu-0"));
}

static void test_slice_no_numa(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_rtx4070ti();
        snprintf(inv->gpus[0].architecture, sizeof inv->gpus[0].architecture,
                 "ada"); /* as inventory_load says */
        _cleanup_strv_free_ char **slices = build(inv, NULL, &PARAMS);
        _cleanup_json_ json_object *s = parse(slices[0]);
        json_object *a = dig(slice_device(s, "gpu-0"), "attributes", NULL);
        assert_non_null(a);
        /* No NUMA affinity: no numaNode attribute (Kubernetes' rule for the standard attribute). */
        assert_null(json_object_object_get(a, "resource.kubernetes.io/numaNode"));
        assert_string_equal(dig_str(a, "brand", "string"), "GeForce");
        assert_string_equal(dig_str(a, "architecture", "string"), "Ada Lovelace");
        assert_string_equal(dig_str(a, "cudaComputeCapability", "version"), "8.9.0");
}

static void test_slice_unhealthy_tainted(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(health_tracker_freep) health_tracker *t = tracker_new(inv);
        xid(t, 2, -1, 79); /* fallen off the bus */
        xid(t, 4, -1, 95); /* uncontained ECC error: reset */
        xid(t, 6, -1, 13); /* application error: ignored by the catalog */
        _cleanup_strv_free_ char **slices = build(inv, t, &PARAMS);
        _cleanup_json_ json_object *s = parse(slices[0]);
        assert_int_equal(slice_n_devices(s), 8);

        json_object *taint = json_object_array_get_idx(dig(slice_device(s, "gpu-2"), "taints", NULL), 0);
        assert_string_equal(json_object_get_string(dig(taint, "key", NULL)), "gpu.nvidia.com/gpu-lost");
        assert_string_equal(json_object_get_string(dig(taint, "effect", NULL)), "NoSchedule");
        assert_null(dig(taint, "value", NULL));

        taint = json_object_array_get_idx(dig(slice_device(s, "gpu-4"), "taints", NULL), 0);
        assert_string_equal(json_object_get_string(dig(taint, "key", NULL)), "gpu.nvidia.com/xid");
        assert_string_equal(json_object_get_string(dig(taint, "value", NULL)), "95");
        assert_string_equal(json_object_get_string(dig(taint, "effect", NULL)), "NoSchedule");
        assert_int_equal(json_object_array_length(dig(slice_device(s, "gpu-4"), "taints", NULL)), 1);

        assert_null(dig(slice_device(s, "gpu-6"), "taints", NULL));
        assert_null(dig(slice_device(s, "gpu-0"), "taints", NULL));
}

static void test_slice_unhealthy_removed(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(health_tracker_freep) health_tracker *t = tracker_new(inv);
        xid(t, 2, -1, 79);
        xid(t, 4, -1, 95);
        struct dra_slice_params p = PARAMS;
        p.unhealthy = DRA_UNHEALTHY_REMOVE;
        _cleanup_strv_free_ char **slices = build(inv, t, &p);
        _cleanup_json_ json_object *s = parse(slices[0]);
        assert_int_equal(slice_n_devices(s), 6);
        assert_null(slice_device(s, "gpu-2"));
        assert_null(slice_device(s, "gpu-4"));
        assert_non_null(slice_device(s, "gpu-3"));
        assert_null(dig(slice_device(s, "gpu-3"), "taints", NULL));
}

static void test_slice_mig_health(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        _cleanup_(health_tracker_freep) health_tracker *t = tracker_new(inv);
        xid(t, 0, -1, 48); /* double-bit ECC on GPU 0: all its MIG devices */
        xid(t, 1, 1, 95);  /* one MIG device of GPU 1 */
        struct dra_slice_params p = PARAMS;
        p.unhealthy = DRA_UNHEALTHY_REMOVE;
        _cleanup_strv_free_ char **slices = build(inv, t, &p);
        _cleanup_json_ json_object *s = parse(slices[0]);
        assert_int_equal(slice_n_devices(s), 2);
        assert_non_null(slice_device(s, "gpu-1-mig-7-0"));
        assert_non_null(slice_device(s, "gpu-1-mig-2-1"));
}

static void test_slice_split(void **state)
{
        /* 70 GPUs: 64 in the first slice, 6 in the second, both saying the pool has 2 slices. */
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_inventory_new(70);
        for (unsigned i = 0; i < 70; i++) {
                struct gpu *g = &inv->gpus[i];
                g->index = g->minor = i;
                snprintf(g->uuid, sizeof g->uuid, "GPU-%08u-0000-0000-0000-000000000000", i);
                snprintf(g->name, sizeof g->name, "NVIDIA H200");
                snprintf(g->bus_id, sizeof g->bus_id, "0000:%02x:00.0", i);
                g->memory_mib = 143771;
                g->cc_major = 9;
                g->numa_node = -1;
        }
        _cleanup_strv_free_ char **slices = build(inv, NULL, &PARAMS);
        assert_int_equal(strv_length(slices), 2);
        _cleanup_json_ json_object *s0 = parse(slices[0]), *s1 = parse(slices[1]);
        assert_string_equal(dig_str(s0, "metadata", "name"), "node-a-gpu.nvidia.com-0");
        assert_string_equal(dig_str(s1, "metadata", "name"), "node-a-gpu.nvidia.com-1");
        assert_int_equal(slice_n_devices(s0), 64);
        assert_int_equal(slice_n_devices(s1), 6);
        assert_int_equal(json_object_get_int64(dig(s0, "spec", "pool", "resourceSliceCount", NULL)), 2);
        assert_int_equal(json_object_get_int64(dig(s1, "spec", "pool", "resourceSliceCount", NULL)), 2);
        assert_non_null(slice_device(s0, "gpu-63"));
        assert_non_null(slice_device(s1, "gpu-64"));
        assert_non_null(slice_device(s1, "gpu-69"));
        assert_string_equal(
                json_object_get_string(dig(slice_device(s1, "gpu-69"), "capacity", "memory", "value", NULL)),
                "143771Mi");
}

static void test_slice_empty_pool(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_inventory_new(0);
        _cleanup_strv_free_ char **slices = build(inv, NULL, &PARAMS);
        assert_int_equal(strv_length(slices), 1);
        _cleanup_json_ json_object *s = parse(slices[0]);
        assert_null(dig(s, "spec", "devices", NULL));
        assert_int_equal(json_object_get_int64(dig(s, "spec", "pool", "resourceSliceCount", NULL)), 1);
}

static void test_slice_bad_params(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        char **slices = NULL;
        _cleanup_free_ char *error = NULL;
        struct dra_slice_params p = PARAMS;
        p.node = "Node_A";
        assert_int_equal(dra_slices_build(inv, NULL, &p, &slices, &error), -EINVAL);
        assert_string_equal(error, "\"Node_A\" is not a node name");
        p = PARAMS;
        p.generation = 0;
        assert_int_equal(dra_slices_build(inv, NULL, &p, &slices, &error), -EINVAL);
        assert_string_equal(error, "pool generation 0 is not positive");

        /* A valid 250-character node name leaves no room for the suffix. */
        char node[251];
        memset(node, 'n', 250);
        node[250] = '\0';
        p = PARAMS;
        p.node = node;
        assert_int_equal(dra_slices_build(inv, NULL, &p, &slices, &error), -ENAMETOOLONG);
        assert_non_null(strstr(error, "is too long for a ResourceSlice name"));
        assert_null(slices);

        /* A driver version that is no version: the slice would be refused, so it is not built. */
        snprintf(inv->driver_version, sizeof inv->driver_version, "unknown");
        assert_int_equal(dra_slices_build(inv, NULL, &PARAMS, &slices, &error), -EINVAL);
        assert_string_equal(error, "driver version \"unknown\" is not a version number");
}

static void test_slice_list(void **state)
{
        static const char list[] =
                "{\"kind\":\"ResourceSliceList\",\"apiVersion\":\"resource.k8s.io/v1\",\"items\":["
                "{\"metadata\":{\"name\":\"node-a-gpu.nvidia.com-1\"},\"spec\":{\"driver\":\"gpu.nvidia."
                "com\","
                "\"nodeName\":\"node-a\",\"pool\":{\"name\":\"node-a\",\"generation\":7}}},"
                "{\"metadata\":{\"name\":\"node-a-gpu.nvidia.com-0\"},\"spec\":{\"driver\":\"gpu.nvidia."
                "com\","
                "\"nodeName\":\"node-a\",\"pool\":{\"name\":\"node-a\",\"generation\":9}}},"
                "{\"metadata\":{\"name\":\"node-b-gpu.nvidia.com-0\"},\"spec\":{\"driver\":\"gpu.nvidia."
                "com\","
                "\"nodeName\":\"node-b\",\"pool\":{\"name\":\"node-b\",\"generation\":40}}},"
                "{\"metadata\":{\"name\":\"node-a-dra.net\"},\"spec\":{\"driver\":\"dra.net\","
                "\"nodeName\":\"node-a\",\"pool\":{\"name\":\"node-a\",\"generation\":50}}}]}";
        _cleanup_strv_free_ char **names = NULL;
        int64_t gen = -1;
        assert_int_equal(dra_slice_list_parse(list, strlen(list), "node-a", &names, &gen, NULL), 0);
        assert_int_equal(strv_length(names), 2);
        assert_string_equal(names[0], "node-a-gpu.nvidia.com-0");
        assert_string_equal(names[1], "node-a-gpu.nvidia.com-1");
        assert_int_equal(gen, 9);

        static const char empty[] = "{\"kind\":\"ResourceSliceList\",\"items\":[]}";
        _cleanup_strv_free_ char **none = NULL;
        assert_int_equal(dra_slice_list_parse(empty, strlen(empty), "node-a", &none, &gen, NULL), 0);
        assert_int_equal(strv_length(none), 0);
        assert_int_equal(gen, 0);

        _cleanup_free_ char *error = NULL;
        char **bad = NULL;
        assert_int_equal(dra_slice_list_parse("{\"items\":{}}", 12, "node-a", &bad, &gen, &error), -EINVAL);
        assert_string_equal(error, "the ResourceSlice list's items are not a list");
        assert_null(bad);
}

/* ---- claims ------------------------------------------------------------------------------------------ */

#define UID "6b1e3a8c-2d4f-4e5a-9b7c-0d1e2f3a4b5c"

static const struct dra_claim_ref REF = { .namespace = "team-a", .uid = UID, .name = "two-gpus" };

/* A ResourceClaim as the API server returns it, with the given results and config (JSON arrays). */
static char *claim_json(const char *uid, const char *results, const char *cfg)
{
        char *s = NULL;
        assert_true(asprintf(&s,
                             "{\"apiVersion\":\"resource.k8s.io/v1\",\"kind\":\"ResourceClaim\","
                             "\"metadata\":{\"name\":\"two-gpus\",\"namespace\":\"team-a\",\"uid\":\"%s\"},"
                             "\"spec\":{\"devices\":{\"requests\":[{\"name\":\"gpus\"}]}},"
                             "\"status\":{\"allocation\":{\"devices\":{\"results\":%s,\"config\":%s}}}}",
                             uid, results, cfg) > 0);
        return s;
}

#define RESULTS_TWO                                                                                         \
        "[{\"request\":\"gpus\",\"driver\":\"gpu.nvidia.com\",\"pool\":\"node-a\",\"device\":\"gpu-1\"},"   \
        "{\"request\":\"nic\",\"driver\":\"dra.net\",\"pool\":\"node-a\",\"device\":\"eth1\"},"             \
        "{\"request\":\"gpus\",\"driver\":\"gpu.nvidia.com\",\"pool\":\"node-a\",\"device\":\"gpu-3\"}]"

struct claim_fixture {
        inventory *inv;
        struct dra_device *devs;
        size_t n_devs;
        health_tracker *health;
};

static struct claim_fixture *claim_setup(inventory *inv)
{
        struct claim_fixture *f = new0(struct claim_fixture, 1);
        assert_non_null(f);
        f->inv = inv;
        assert_int_equal(dra_devices_list(inv, &f->devs, &f->n_devs), 0);
        f->health = tracker_new(inv);
        return f;
}

static void claim_teardown(struct claim_fixture *f)
{
        health_tracker_free(f->health);
        free(f->devs);
        fixture_inventory_free(f->inv);
        free(f);
}

/* Resolves; returns r, with the claim in *ret on success and the error in *ret_error on failure. */
static int resolve(struct claim_fixture *f, const char *json, struct dra_claim **ret, char **ret_error)
{
        return dra_claim_resolve(json, strlen(json), &REF, "node-a", f->devs, f->n_devs, f->health, ret,
                                 ret_error);
}

static void test_claim_two_gpus(void **state)
{
        struct claim_fixture *f = claim_setup(fixture_h100x8());
        _cleanup_free_ char *json = claim_json(UID, RESULTS_TWO, "[]"), *error = NULL;
        _cleanup_(dra_claim_freep) struct dra_claim *c = NULL;
        assert_int_equal(resolve(f, json, &c, &error), 0);
        assert_null(error);
        assert_string_equal(c->uid, UID);
        assert_string_equal(c->namespace, "team-a");
        assert_string_equal(c->name, "two-gpus");
        /* The dra.net NIC is another driver's: not ours to prepare. */
        assert_int_equal(c->n_devices, 2);
        assert_string_equal(c->devices[0].device, "gpu-1");
        assert_string_equal(c->devices[0].pool, "node-a");
        assert_string_equal(c->devices[0].request, "gpus");
        assert_string_equal(c->devices[0].cdi_id, "k8s.gpu.nvidia.com/claim=" UID "-gpu-1");
        assert_int_equal(c->devices[0].sharing, DRA_SHARING_NONE);
        assert_string_equal(c->devices[1].device, "gpu-3");
        assert_string_equal(c->devices[1].cdi_id, "k8s.gpu.nvidia.com/claim=" UID "-gpu-3");
        claim_teardown(f);
}

static void test_claim_subrequest(void **state)
{
        struct claim_fixture *f = claim_setup(fixture_h100x8());
        _cleanup_free_ char *json =
                claim_json(UID,
                           "[{\"request\":\"gpu/"
                           "big\",\"driver\":\"gpu.nvidia.com\",\"pool\":\"node-a\",\"device\":\"gpu-0\"}]",
                           "[]");
        _cleanup_(dra_claim_freep) struct dra_claim *c = NULL;
        assert_int_equal(resolve(f, json, &c, NULL), 0);
        /* Containers name the main request: "gpu". */
        assert_string_equal(c->devices[0].request, "gpu");
        claim_teardown(f);
}

static void test_claim_mig(void **state)
{
        struct claim_fixture *f = claim_setup(fixture_a100_mig());
        _cleanup_free_ char *json = claim_json(
                UID,
                "[{\"request\":\"mig\",\"driver\":\"gpu.nvidia.com\",\"pool\":\"node-a\",\"device\":\"gpu-0-"
                "mig-13-0\"}]",
                "[{\"source\":\"FromClaim\",\"opaque\":{\"driver\":\"gpu.nvidia.com\",\"parameters\":"
                "{\"apiVersion\":\"resource.nvidia.com/v1beta1\",\"kind\":\"MigDeviceConfig\"}}}]");
        _cleanup_(dra_claim_freep) struct dra_claim *c = NULL;
        assert_int_equal(resolve(f, json, &c, NULL), 0);
        assert_string_equal(c->devices[0].cdi_id, "k8s.gpu.nvidia.com/claim=" UID "-gpu-0-mig-13-0");
        claim_teardown(f);
}

static void expect_error(const char *uid, const char *results, const char *cfg, int r, const char *message)
{
        struct claim_fixture *f = claim_setup(fixture_h100x8());
        if (results && strstr(results, "gpu-6"))
                xid(f->health, 6, -1, 95);
        _cleanup_free_ char *json = claim_json(uid, results, cfg), *error = NULL;
        struct dra_claim *c = NULL;
        assert_int_equal(resolve(f, json, &c, &error), r);
        assert_null(c);
        assert_non_null(error);
        if (!streq(error, message))
                fail_msg("error \"%s\", expected \"%s\"", error, message);
        claim_teardown(f);
}

#define ONE(device)                                                                                         \
        "[{\"request\":\"gpus\",\"driver\":\"gpu.nvidia.com\",\"pool\":\"node-a\",\"device\":\"" device     \
        "\"}]"

static void test_claim_bad_allocations(void **state)
{
        expect_error("11111111-2222-3333-4444-555555555555", RESULTS_TWO, "[]", -EINVAL,
                     "the ResourceClaim was replaced: it has UID 11111111-2222-3333-4444-555555555555, "
                     "the kubelet asked for " UID);
        expect_error(
                UID,
                "[{\"request\":\"gpus\",\"driver\":\"gpu.nvidia.com\",\"pool\":\"node-b\",\"device\":\"gpu-"
                "1\"}]",
                "[]", -ENODEV,
                "device gpu-1 of pool node-b is not on this node (nvdp on node node-a serves pool node-a)");
        expect_error(UID, ONE("gpu-9"), "[]", -ENODEV,
                     "device gpu-9 is not one of the 8 devices of node node-a");
        expect_error(UID, ONE("gpu-6"), "[]", -EBUSY,
                     "device gpu-6 is unhealthy: XID 95 (Uncontained memory error)");
        expect_error(
                UID,
                "[{\"request\":\"nic\",\"driver\":\"dra.net\",\"pool\":\"node-a\",\"device\":\"eth1\"}]",
                "[]", -EINVAL, "the ResourceClaim has no device of driver gpu.nvidia.com");
        expect_error(UID, "[{\"driver\":\"gpu.nvidia.com\",\"pool\":\"node-a\",\"device\":\"gpu-1\"}]", "[]",
                     -EINVAL, "allocation result 0 lacks its request, pool or device name");
}

static void test_claim_not_allocated(void **state)
{
        struct claim_fixture *f = claim_setup(fixture_h100x8());
        static const char json[] =
                "{\"metadata\":{\"name\":\"two-gpus\",\"namespace\":\"team-a\",\"uid\":\"" UID "\"},"
                "\"status\":{}}";
        _cleanup_free_ char *error = NULL;
        struct dra_claim *c = NULL;
        assert_int_equal(resolve(f, json, &c, &error), -EINVAL);
        assert_string_equal(error, "the ResourceClaim is not allocated");
        assert_int_equal(resolve(f, "[1,2", &c, &error), -EINVAL);
        assert_string_equal(error, "the ResourceClaim from the API server is not a JSON object");
        claim_teardown(f);
}

static void test_claim_bad_ref(void **state)
{
        struct claim_fixture *f = claim_setup(fixture_h100x8());
        _cleanup_free_ char *json = claim_json(UID, RESULTS_TWO, "[]"), *error = NULL;
        struct dra_claim *c = NULL;
        struct dra_claim_ref ref = REF;
        ref.uid = "../../etc/passwd";
        assert_int_equal(
                dra_claim_resolve(json, strlen(json), &ref, "node-a", f->devs, f->n_devs, NULL, &c, &error),
                -EINVAL);
        assert_string_equal(error,
                            "claim UID \"../../etc/passwd\" is not a UID (1-128 letters, digits and '-')");
        ref = REF;
        ref.namespace = "";
        assert_int_equal(
                dra_claim_resolve(json, strlen(json), &ref, "node-a", f->devs, f->n_devs, NULL, &c, &error),
                -EINVAL);
        assert_string_equal(error, "claim namespace \"\" is not a valid name");
        assert_true(dra_claim_uid_valid(UID));
        assert_false(dra_claim_uid_valid(""));
        assert_false(dra_claim_uid_valid("a b"));
        claim_teardown(f);
}

#define GPU_CONFIG(sharing)                                                                                 \
        "{\"apiVersion\":\"resource.nvidia.com/v1beta1\",\"kind\":\"GpuConfig\"" sharing "}"
#define OPAQUE(source, requests, params)                                                                    \
        "{\"source\":\"" source "\",\"requests\":" requests ",\"opaque\":{\"driver\":\"gpu.nvidia.com\","   \
        "\"parameters\":" params "}}"

static enum dra_sharing sharing_of(const char *cfg)
{
        struct claim_fixture *f = claim_setup(fixture_h100x8());
        _cleanup_free_ char *json = claim_json(UID, ONE("gpu-2"), cfg), *error = NULL;
        _cleanup_(dra_claim_freep) struct dra_claim *c = NULL;
        if (resolve(f, json, &c, &error) < 0)
                fail_msg("%s", error);
        enum dra_sharing s = c->devices[0].sharing;
        claim_teardown(f);
        return s;
}

static void test_claim_config(void **state)
{
        assert_int_equal(
                sharing_of("[" OPAQUE("FromClaim", "[]",
                                      GPU_CONFIG(",\"sharing\":{\"strategy\":\"TimeSlicing\"}")) "]"),
                DRA_SHARING_TIME_SLICING);
        assert_int_equal(
                sharing_of("[" OPAQUE("FromClaim", "[\"gpus\"]",
                                      GPU_CONFIG(",\"sharing\":{\"strategy\":\"TimeSlicing\","
                                                 "\"timeSlicingConfig\":{\"interval\":\"Default\"}}")) "]"),
                DRA_SHARING_TIME_SLICING);
        /* A config for another request does not apply. */
        assert_int_equal(
                sharing_of("[" OPAQUE("FromClaim", "[\"other\"]",
                                      GPU_CONFIG(",\"sharing\":{\"strategy\":\"TimeSlicing\"}")) "]"),
                DRA_SHARING_NONE);
        /* The claim's own config overrides its class's, whatever the order in the list. */
        assert_int_equal(
                sharing_of("[" OPAQUE("FromClaim", "[]", GPU_CONFIG("")) "," OPAQUE(
                        "FromClass", "[]", GPU_CONFIG(",\"sharing\":{\"strategy\":\"TimeSlicing\"}")) "]"),
                DRA_SHARING_NONE);
        /* Another driver's parameters are its business. */
        assert_int_equal(sharing_of("[{\"source\":\"FromClaim\",\"opaque\":{\"driver\":\"dra.net\","
                                    "\"parameters\":{\"kind\":\"Whatever\",\"mtu\":9000}}}]"),
                         DRA_SHARING_NONE);
}

static void test_claim_bad_config(void **state)
{
        expect_error(
                UID, ONE("gpu-2"),
                "[" OPAQUE("FromClaim", "[]",
                           "{\"apiVersion\":\"gpu.example.com/v1\",\"kind\":\"FooConfig\"}") "]",
                -EINVAL,
                "unknown opaque config for driver gpu.nvidia.com: apiVersion \"gpu.example.com/v1\", kind "
                "\"FooConfig\" (nvdp understands resource.nvidia.com/v1beta1 GpuConfig and "
                "MigDeviceConfig)");
        expect_error(UID, ONE("gpu-2"),
                     "[" OPAQUE("FromClaim", "[]",
                                GPU_CONFIG(",\"sharing\":{\"strategy\":\"TimeSlicing\","
                                           "\"timeSlicingConfig\":{\"interval\":\"Long\"}}")) "]",
                     -EOPNOTSUPP,
                     "GpuConfig: time-slice interval Long would change the scheduling of every process on "
                     "gpu-2; nvdp "
                     "leaves GPU settings alone: use interval Default (or none)");
        expect_error(UID, ONE("gpu-2"),
                     "[" OPAQUE("FromClaim", "[]",
                                GPU_CONFIG(",\"sharing\":{\"strategy\":\"MPS\",\"mpsConfig\":"
                                           "{\"defaultActiveThreadPercentage\":50}}")) "]",
                     -EOPNOTSUPP,
                     "GpuConfig: sharing strategy MPS is not supported by nvdp's DRA driver yet; use "
                     "TimeSlicing (or the "
                     "device plugin's MPS sharing)");
        expect_error(
                UID, ONE("gpu-2"),
                "[" OPAQUE("FromClaim", "[]", GPU_CONFIG(",\"sharing\":{\"strategy\":\"Spatial\"}")) "]",
                -EINVAL, "GpuConfig: unknown sharing strategy \"Spatial\" (TimeSlicing, MPS)");
        expect_error(UID, ONE("gpu-2"), "[" OPAQUE("FromClaim", "[]", GPU_CONFIG(",\"sharingg\":{}")) "]",
                     -EINVAL, "GpuConfig: unknown field \"sharingg\"");
        expect_error(UID, ONE("gpu-2"),
                     "[" OPAQUE("FromClaim", "[]",
                                "{\"apiVersion\":\"resource.nvidia.com/v1beta1\",\"kind\":"
                                "\"MigDeviceConfig\"}") "]",
                     -EINVAL, "MigDeviceConfig cannot configure GPU device gpu-2 (use GpuConfig)");
        expect_error(UID, ONE("gpu-2"), "[" OPAQUE("FromClaim", "[]", "\"text\"") "]", -EINVAL,
                     "opaque config for driver gpu.nvidia.com has no parameters object");
        /* A bad class config is reported even though the claim's config overrides it. */
        expect_error(
                UID, ONE("gpu-2"),
                "[" OPAQUE("FromClass", "[]", "{\"kind\":\"Nope\"}") "," OPAQUE("FromClaim", "[]",
                                                                                GPU_CONFIG("")) "]",
                -EINVAL,
                "unknown opaque config for driver gpu.nvidia.com: apiVersion \"n/a\", kind \"Nope\" (nvdp "
                "understands resource.nvidia.com/v1beta1 GpuConfig and MigDeviceConfig)");
}

/* ---- the checkpoint ----------------------------------------------------------------------------------- */

static struct dra_claim *claim_new(const char *uid, const char *name, size_t n_devices)
{
        struct dra_claim *c = new0(struct dra_claim, 1);
        assert_non_null(c);
        c->uid = strdup(uid);
        c->namespace = strdup("team-a");
        c->name = strdup(name);
        c->devices = new0(struct dra_prepared_device, n_devices);
        c->n_devices = n_devices;
        for (size_t i = 0; i < n_devices; i++) {
                struct dra_prepared_device *d = &c->devices[i];
                d->request = strdup("gpus");
                d->pool = strdup("node-a");
                assert_true(asprintf(&d->device, "gpu-%zu", i) > 0);
                assert_true(asprintf(&d->cdi_id, "k8s.gpu.nvidia.com/claim=%s-gpu-%zu", uid, i) > 0);
                d->sharing = i == 1 ? DRA_SHARING_TIME_SLICING : DRA_SHARING_NONE;
        }
        return c;
}

static void test_state_ops(void **state)
{
        _cleanup_(dra_state_done) struct dra_state s = {};
        assert_int_equal(dra_state_put(&s, claim_new("a", "one", 1)), 0);
        assert_int_equal(dra_state_put(&s, claim_new("b", "two", 2)), 0);
        assert_int_equal(dra_state_put(&s, claim_new("a", "one-again", 3)), 0); /* same UID: replaced */
        assert_int_equal(s.n_claims, 2);
        assert_string_equal(dra_state_find(&s, "a")->name, "one-again");
        assert_int_equal(dra_state_find(&s, "a")->n_devices, 3);
        assert_null(dra_state_find(&s, "c"));
        struct dra_claim *b = dra_state_take(&s, "b");
        assert_non_null(b);
        assert_string_equal(b->name, "two");
        dra_claim_free(b);
        assert_null(dra_state_take(&s, "b"));
        assert_int_equal(s.n_claims, 1);
}

static void test_state_limit(void **state)
{
        _cleanup_(dra_state_done) struct dra_state s = {};
        char uid[32];
        for (unsigned i = 0; i < DRA_MAX_CLAIMS; i++) {
                snprintf(uid, sizeof uid, "u%u", i);
                assert_int_equal(dra_state_put(&s, claim_new(uid, "c", 1)), 0);
        }
        assert_int_equal(dra_state_put(&s, claim_new("one-more", "c", 1)), -ENOSPC);
        assert_int_equal(s.n_claims, DRA_MAX_CLAIMS);
}

static char *tmpdir(void)
{
        char *d = strdup("/tmp/nvdp-test-dra-XXXXXX");
        assert_non_null(d);
        assert_non_null(mkdtemp(d));
        return d;
}

static void test_checkpoint_round_trip(void **state)
{
        _cleanup_free_ char *dir = tmpdir(), *path = NULL, *error = NULL;
        assert_true(asprintf(&path, "%s/checkpoint.json", dir) > 0);
        _cleanup_(dra_state_done) struct dra_state s = {}, back = {}, none = {};

        /* No file yet: nothing prepared. */
        assert_int_equal(dra_checkpoint_read(path, "node-a", &none, &error), 0);
        assert_int_equal(none.n_claims, 0);

        assert_int_equal(dra_state_put(&s, claim_new(UID, "two-gpus", 2)), 0);
        assert_int_equal(dra_state_put(&s, claim_new("0a0b0c0d", "one-gpu", 1)), 0);
        assert_int_equal(dra_checkpoint_write(path, "node-a", &s, &error), 0);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        assert_int_equal(dra_checkpoint_read(path, "node-a", &back, &error), 0);
        assert_null(error);
        assert_int_equal(back.n_claims, 2);
        const struct dra_claim *c = dra_state_find(&back, UID);
        assert_non_null(c);
        assert_string_equal(c->namespace, "team-a");
        assert_string_equal(c->name, "two-gpus");
        assert_int_equal(c->n_devices, 2);
        assert_string_equal(c->devices[1].device, "gpu-1");
        assert_string_equal(c->devices[1].request, "gpus");
        assert_string_equal(c->devices[1].pool, "node-a");
        assert_string_equal(c->devices[1].cdi_id, "k8s.gpu.nvidia.com/claim=" UID "-gpu-1");
        assert_int_equal(c->devices[1].sharing, DRA_SHARING_TIME_SLICING);
        assert_int_equal(c->devices[0].sharing, DRA_SHARING_NONE);
        assert_string_equal(dra_state_find(&back, "0a0b0c0d")->name, "one-gpu");

        /* Another node's checkpoint (a copied disk) is not ours. */
        assert_int_equal(dra_checkpoint_read(path, "node-b", &none, &error), -EINVAL);
        assert_true(startswith(error, "DRA checkpoint "));
        assert_non_null(
                strstr(error, "/checkpoint.json is damaged: it was written on node \"node-a\", this is node "
                              "\"node-b\""));
        unlink(path);
        rmdir(dir);
}

static void expect_damaged(const char *text, const char *why)
{
        _cleanup_free_ char *dir = tmpdir(), *path = NULL, *error = NULL, *expected = NULL;
        assert_true(asprintf(&path, "%s/checkpoint.json", dir) > 0);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        _cleanup_(dra_state_done) struct dra_state s = {};
        assert_int_equal(dra_checkpoint_read(path, "node-a", &s, &error), -EINVAL);
        assert_true(asprintf(&expected, "DRA checkpoint %s is damaged: %s", path, why) > 0);
        if (!streq(error, expected))
                fail_msg("error \"%s\", expected \"%s\"", error, expected);
        assert_int_equal(s.n_claims, 0);
        unlink(path);
        rmdir(dir);
}

#define HEAD "{\"kind\":\"nvdp-dra-checkpoint\",\"version\":1,\"node\":\"node-a\",\"claims\":"
#define DEV(cdi)                                                                                            \
        "{\"request\":\"gpus\",\"pool\":\"node-a\",\"device\":\"gpu-0\",\"cdiID\":\"" cdi                   \
        "\",\"sharing\":\"None\"}"

static void test_checkpoint_damaged(void **state)
{
        expect_damaged("{\"kind\":\"nvdp-dra-chec", "not a JSON object");
        expect_damaged("{\"kind\":\"other\"}", "kind is \"other\", not \"nvdp-dra-checkpoint\"");
        expect_damaged("{\"kind\":\"nvdp-dra-checkpoint\",\"version\":2}",
                       "version is 2; this nvdp reads version 1");
        expect_damaged(HEAD "{}}", "claims is missing or not a list");
        expect_damaged(HEAD "[{\"uid\":\"a\",\"namespace\":\"ns\"}]}",
                       "claims[0].name is missing or not a string");
        expect_damaged(HEAD "[{\"uid\":\"a/b\",\"namespace\":\"ns\",\"name\":\"n\",\"devices\":[]}]}",
                       "claims[0]: claim UID \"a/b\" is not a UID (1-128 letters, digits and '-')");
        expect_damaged(HEAD "[{\"uid\":\"a\",\"namespace\":\"ns\",\"name\":\"n\",\"devices\":[]}]}",
                       "claims[0].devices must list 1 to 32 devices");
        expect_damaged(HEAD "[{\"uid\":\"a\",\"namespace\":\"ns\",\"name\":\"n\",\"devices\":[" DEV(
                               "k8s.gpu.nvidia.com/claim=b-gpu-0") "]}]}",
                       "claims[0].devices[0].cdiID is \"k8s.gpu.nvidia.com/claim=b-gpu-0\", not "
                       "\"k8s.gpu.nvidia.com/claim=a-gpu-0\"");
        expect_damaged(HEAD "[{\"uid\":\"a\",\"namespace\":\"ns\",\"name\":\"n\",\"devices\":[" DEV(
                               "k8s.gpu.nvidia.com/claim=a-gpu-0") "]},"
                                                                   "{\"uid\":\"a\",\"namespace\":\"ns\","
                                                                   "\"name\":\"m\",\"devices\":[" DEV(
                                                                           "k8s.gpu.nvidia.com/"
                                                                           "claim=a-gpu-0") "]}]}",
                       "claims[1]: claim UID a is listed twice");
}

static void test_checkpoint_too_large(void **state)
{
        _cleanup_free_ char *dir = tmpdir(), *path = NULL, *error = NULL, *expected = NULL;
        assert_true(asprintf(&path, "%s/checkpoint.json", dir) > 0);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(ftruncate(fileno(f), DRA_MAX_CHECKPOINT_SIZE + 1), 0);
        fclose(f);
        _cleanup_(dra_state_done) struct dra_state s = {};
        assert_int_equal(dra_checkpoint_read(path, "node-a", &s, &error), -EFBIG);
        assert_true(asprintf(&expected, "DRA checkpoint %s is larger than 8388608 bytes", path) > 0);
        assert_string_equal(error, expected);
        unlink(path);
        rmdir(dir);
}

static void test_checkpoint_unwritable(void **state)
{
        _cleanup_(dra_state_done) struct dra_state s = {};
        _cleanup_free_ char *error = NULL;
        assert_int_equal(dra_checkpoint_write("/nonexistent-dir/checkpoint.json", "node-a", &s, &error),
                         -ENOENT);
        assert_string_equal(
                error,
                "cannot write DRA checkpoint /nonexistent-dir/checkpoint.json: No such file or directory");
}

static void test_spec_filename(void **state)
{
        _cleanup_free_ char *name = NULL, *uid = NULL;
        assert_int_equal(dra_claim_spec_filename(UID, &name), 0);
        assert_string_equal(name, "k8s.gpu.nvidia.com-claim_" UID ".json");
        assert_true(dra_claim_spec_filename_parse(name, &uid));
        assert_string_equal(uid, UID);
        assert_int_equal(dra_claim_spec_filename("a/b", &name), -EINVAL);
        assert_false(dra_claim_spec_filename_parse("k8s.gpu.nvidia.com-claim_.json", NULL));
        assert_false(dra_claim_spec_filename_parse("k8s.gpu.nvidia.com-claim_a.b.json", NULL));
        assert_false(dra_claim_spec_filename_parse("k8s.gpu.nvidia.com-claim_abc.yaml", NULL));
        assert_false(dra_claim_spec_filename_parse("nvidia.com-gpu.json", NULL));
        assert_false(dra_claim_spec_filename_parse(".k8s.gpu.nvidia.com-claim_abc.json.tmp123", NULL));
}

/* ---- the wire --------------------------------------------------------------------------------------- */

/* A NodePrepareResourcesRequest as the kubelet packs it. */
static uint8_t *claims_request(const char *const (*claims)[3], size_t n, size_t *ret_size)
{
        Dra__V1__NodePrepareResourcesRequest req = DRA__V1__NODE_PREPARE_RESOURCES_REQUEST__INIT;
        Dra__V1__Claim *c = new0(Dra__V1__Claim, n + 1);
        Dra__V1__Claim **p = new0(Dra__V1__Claim *, n + 1);
        assert_non_null(c);
        assert_non_null(p);
        for (size_t i = 0; i < n; i++) {
                dra__v1__claim__init(&c[i]);
                c[i].namespace_ = (char *)claims[i][0];
                c[i].uid = (char *)claims[i][1];
                c[i].name = (char *)claims[i][2];
                p[i] = &c[i];
        }
        req.n_claims = n;
        req.claims = p;
        size_t size = dra__v1__node_prepare_resources_request__get_packed_size(&req);
        uint8_t *buf = malloc(size + 1);
        assert_non_null(buf);
        assert_int_equal(dra__v1__node_prepare_resources_request__pack(&req, buf), size);
        free(c);
        free(p);
        *ret_size = size;
        return buf;
}

static void test_wire_claims(void **state)
{
        static const char *const claims[][3] = { { "team-a", UID, "two-gpus" },
                                                 { "default", "0a0b", "one" } };
        size_t size;
        _cleanup_free_ uint8_t *buf = claims_request(claims, 2, &size);
        _cleanup_(dra_claim_list_done) struct dra_claim_list l = {};
        assert_int_equal(dra_wire_claims_unpack(buf, size, &l, NULL), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.refs[0].namespace, "team-a");
        assert_string_equal(l.refs[0].uid, UID);
        assert_string_equal(l.refs[0].name, "two-gpus");
        assert_string_equal(l.refs[1].uid, "0a0b");

        /* An empty request (no claims) is valid: nothing to do. */
        _cleanup_(dra_claim_list_done) struct dra_claim_list empty = {};
        assert_int_equal(dra_wire_claims_unpack((const uint8_t *)"", 0, &empty, NULL), 0);
        assert_int_equal(empty.n, 0);
}

static void test_wire_claims_bad(void **state)
{
        static const char *const claims[][3] = { { "team-a", UID, "two-gpus" },
                                                 { "default", "a/b", "one" } };
        size_t size;
        _cleanup_free_ uint8_t *buf = claims_request(claims, 2, &size);
        _cleanup_free_ char *error = NULL;
        struct dra_claim_list l = {};
        assert_int_equal(dra_wire_claims_unpack(buf, size, &l, &error), -EINVAL);
        assert_string_equal(
                error,
                "claim 1 of the request: claim UID \"a/b\" is not a UID (1-128 letters, digits and '-')");
        assert_null(l.refs);

        static const uint8_t garbage[] = { 0x0a, 0x05, 0x01 };
        assert_int_equal(dra_wire_claims_unpack(garbage, sizeof garbage, &l, &error), -EBADMSG);
        assert_string_equal(error, "the request is not a DRA claims message");

        const char *(*many)[3] = calloc(DRA_MAX_REQUEST_CLAIMS + 1, sizeof *many);
        assert_non_null(many);
        for (size_t i = 0; i <= DRA_MAX_REQUEST_CLAIMS; i++) {
                many[i][0] = "ns";
                many[i][1] = "u";
                many[i][2] = "n";
        }
        _cleanup_free_ uint8_t *big =
                claims_request((const char *const(*)[3])many, DRA_MAX_REQUEST_CLAIMS + 1, &size);
        free(many);
        assert_int_equal(dra_wire_claims_unpack(big, size, &l, &error), -EINVAL);
        assert_string_equal(error, "the request names 257 claims (at most 256)");
}

static void test_wire_prepare_response(void **state)
{
        _cleanup_(dra_claim_freep) struct dra_claim *c = claim_new(UID, "two-gpus", 2);
        struct dra_prepare_result r[] = {
                { .uid = UID, .claim = c },
                { .uid = "0a0b", .error = "device gpu-9 is not one of the 8 devices of node node-a\x01" },
        };
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size = 0;
        assert_int_equal(dra_wire_prepare_response_pack(r, 2, &buf, &size), 0);
        Dra__V1__NodePrepareResourcesResponse *resp =
                dra__v1__node_prepare_resources_response__unpack(NULL, size, buf);
        assert_non_null(resp);
        assert_int_equal(resp->n_claims, 2);
        assert_string_equal(resp->claims[0]->key, UID);
        Dra__V1__NodePrepareResourceResponse *v = resp->claims[0]->value;
        assert_string_equal(v->error, "");
        assert_int_equal(v->n_devices, 2);
        assert_int_equal(v->devices[1]->n_request_names, 1);
        assert_string_equal(v->devices[1]->request_names[0], "gpus");
        assert_string_equal(v->devices[1]->pool_name, "node-a");
        assert_string_equal(v->devices[1]->device_name, "gpu-1");
        assert_int_equal(v->devices[1]->n_cdi_device_ids, 1);
        assert_string_equal(v->devices[1]->cdi_device_ids[0], "k8s.gpu.nvidia.com/claim=" UID "-gpu-1");
        assert_string_equal(v->devices[1]->share_id, "");
        assert_string_equal(resp->claims[1]->key, "0a0b");
        /* Control bytes do not reach the kubelet (its decoder refuses strings that are not UTF-8). */
        assert_string_equal(resp->claims[1]->value->error,
                            "device gpu-9 is not one of the 8 devices of node node-a?");
        assert_int_equal(resp->claims[1]->value->n_devices, 0);
        dra__v1__node_prepare_resources_response__free_unpacked(resp, NULL);
}

static void test_wire_unprepare_response(void **state)
{
        struct dra_unprepare_result r[] = { { .uid = "a" } };
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size = 0;
        assert_int_equal(dra_wire_unprepare_response_pack(r, 1, &buf, &size), 0);
        /* claims (1, LEN 5) { key (1, LEN 1) "a", value (2, LEN 0) {} }: an entry per claim, even without
         * error. */
        static const uint8_t want[] = { 0x0a, 0x05, 0x0a, 0x01, 'a', 0x12, 0x00 };
        assert_int_equal(size, sizeof want);
        assert_memory_equal(buf, want, sizeof want);

        struct dra_unprepare_result r2[] = { { .uid = "a" }, { .uid = "b", .error = "cannot remove \xff" } };
        _cleanup_free_ uint8_t *buf2 = NULL;
        assert_int_equal(dra_wire_unprepare_response_pack(r2, 2, &buf2, &size), 0);
        Dra__V1__NodeUnprepareResourcesResponse *resp =
                dra__v1__node_unprepare_resources_response__unpack(NULL, size, buf2);
        assert_non_null(resp);
        assert_int_equal(resp->n_claims, 2);
        assert_string_equal(resp->claims[1]->key, "b");
        assert_string_equal(resp->claims[1]->value->error, "cannot remove ?");
        dra__v1__node_unprepare_resources_response__free_unpacked(resp, NULL);
}

static void test_wire_registration(void **state)
{
        char *versions[] = { (char *)DRA_SERVICE_V1, (char *)DRA_SERVICE_V1BETA1, NULL };
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size = 0;
        assert_int_equal(dra_wire_plugin_info_pack(REGISTRATION_TYPE_DRA, DRA_DRIVER,
                                                   "/var/lib/kubelet/plugins/gpu.nvidia.com/dra.sock",
                                                   versions, &buf, &size),
                         0);
        Pluginregistration__PluginInfo *info = pluginregistration__plugin_info__unpack(NULL, size, buf);
        assert_non_null(info);
        assert_string_equal(info->type, "DRAPlugin");
        assert_string_equal(info->name, "gpu.nvidia.com");
        assert_string_equal(info->endpoint, "/var/lib/kubelet/plugins/gpu.nvidia.com/dra.sock");
        assert_int_equal(info->n_supported_versions, 2);
        assert_string_equal(info->supported_versions[0], "v1.DRAPlugin");
        assert_string_equal(info->supported_versions[1], "v1beta1.DRAPlugin");
        pluginregistration__plugin_info__free_unpacked(info, NULL);

        /* RegistrationStatus{plugin_registered=false (left out), error="no\nway"} */
        static const uint8_t status[] = { 0x12, 0x06, 'n', 'o', '\n', 'w', 'a', 'y' };
        bool registered = true;
        _cleanup_free_ char *error = NULL;
        assert_int_equal(dra_wire_registration_status_unpack(status, sizeof status, &registered, &error), 0);
        assert_false(registered);
        assert_string_equal(error, "no?way");
        static const uint8_t ok[] = { 0x08, 0x01 };
        _cleanup_free_ char *none = NULL;
        assert_int_equal(dra_wire_registration_status_unpack(ok, sizeof ok, &registered, &none), 0);
        assert_true(registered);
        assert_string_equal(none, "");
        static const uint8_t bad[] = { 0x12, 0x09, 'x' };
        assert_int_equal(dra_wire_registration_status_unpack(bad, sizeof bad, &registered, &error),
                         -EBADMSG);

        _cleanup_free_ uint8_t *empty = NULL;
        assert_int_equal(dra_wire_registration_status_response_pack(&empty, &size), 0);
        assert_int_equal(size, 0);
}

static void test_printable(void **state)
{
        _cleanup_free_ char *a = dra_printable("caf\xc3\xa9\ttab"), *b = dra_printable(NULL);
        assert_string_equal(a, "caf???tab");
        assert_string_equal(b, "");
        char long_text[3000];
        memset(long_text, 'x', sizeof long_text - 1);
        long_text[sizeof long_text - 1] = '\0';
        _cleanup_free_ char *c = dra_printable(long_text);
        assert_int_equal(strlen(c), 1024);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_devices_whole_gpus),
                cmocka_unit_test(test_devices_named_by_minor),
                cmocka_unit_test(test_devices_mig),
                cmocka_unit_test(test_devices_empty),
                cmocka_unit_test(test_versions),
                cmocka_unit_test(test_slice_h100),
                cmocka_unit_test(test_slice_without_owner),
                cmocka_unit_test(test_slice_mig),
                cmocka_unit_test(test_slice_no_numa),
                cmocka_unit_test(test_slice_unhealthy_tainted),
                cmocka_unit_test(test_slice_unhealthy_removed),
                cmocka_unit_test(test_slice_mig_health),
                cmocka_unit_test(test_slice_split),
                cmocka_unit_test(test_slice_empty_pool),
                cmocka_unit_test(test_slice_bad_params),
                cmocka_unit_test(test_slice_list),
                cmocka_unit_test(test_claim_two_gpus),
                cmocka_unit_test(test_claim_subrequest),
                cmocka_unit_test(test_claim_mig),
                cmocka_unit_test(test_claim_bad_allocations),
                cmocka_unit_test(test_claim_not_allocated),
                cmocka_unit_test(test_claim_bad_ref),
                cmocka_unit_test(test_claim_config),
                cmocka_unit_test(test_claim_bad_config),
                cmocka_unit_test(test_state_ops),
                cmocka_unit_test(test_state_limit),
                cmocka_unit_test(test_checkpoint_round_trip),
                cmocka_unit_test(test_checkpoint_damaged),
                cmocka_unit_test(test_checkpoint_too_large),
                cmocka_unit_test(test_checkpoint_unwritable),
                cmocka_unit_test(test_spec_filename),
                cmocka_unit_test(test_wire_claims),
                cmocka_unit_test(test_wire_claims_bad),
                cmocka_unit_test(test_wire_prepare_response),
                cmocka_unit_test(test_wire_unprepare_response),
                cmocka_unit_test(test_wire_registration),
                cmocka_unit_test(test_printable),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
