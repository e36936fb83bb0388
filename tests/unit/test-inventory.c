/* SPDX-License-Identifier: Apache-2.0 */
/* The inventory of each fixture node, read through the simulated NVML: what `nvdp info`, the plan and
 * the labels will see. Expected values are the fixtures' facts, written out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gpu/inventory.h"
#include "nvml/nvml.h"

static char mock_lib[512], fixtures[512];

static int setup(void **state)
{
        const char *build = getenv("NVDP_BUILD"), *src = getenv("NVDP_SRC");
        snprintf(mock_lib, sizeof(mock_lib), "%s/mock-nvml/libnvidia-ml.so.1", build ? build : "build");
        snprintf(fixtures, sizeof(fixtures), "%s/mock/nvml/fixtures", src ? src : ".");
        return 0;
}

/* Loads the mock on the named fixture and reads the inventory with the fixture's sysfs tree. */
static inventory *load(const char *fixture, nvml **ret_nvml)
{
        char path[600], root[600];
        nvml *n = NULL;
        inventory *inv = NULL;
        _cleanup_free_ char *error = NULL;

        snprintf(path, sizeof(path), "%s/%s.yaml", fixtures, fixture);
        snprintf(root, sizeof(root), "%s/%s.root", fixtures, fixture);
        assert_int_equal(setenv("MOCK_NVML_FIXTURE", path, 1), 0);
        unsetenv("MOCK_NVML_EVENTS");
        int r = nvml_load_library(NULL, mock_lib, &n, &error);
        if (r < 0)
                fail_msg("loading %s: %s", mock_lib, strna(error));
        r = inventory_load(n, root, &inv, &error);
        if (r < 0)
                fail_msg("inventory of %s: %s", fixture, strna(error));
        *ret_nvml = n;
        return inv;
}

static void test_dgx_h100(void **state)
{
        static const char *const uuids[8] = {
                "GPU-6a3f5c1e-2b7d-4e90-8c11-0f2a9b3d4e01", "GPU-1c8e7a42-93d5-4f6b-a0e2-5d7c6b8a9f12",
                "GPU-b42d9e07-5a16-4c3f-9e8d-7a1b2c3d4e23", "GPU-e7f01b38-64c2-4d5a-b7e9-8c0d1e2f3a34",
                "GPU-3d9a6c51-0e7f-4b82-9a4c-1b2c3d4e5f45", "GPU-8f2b4d63-7c19-4e0a-8b5d-2c3d4e5f6a56",
                "GPU-c51e8f74-2d3a-4b6c-9d0e-3d4e5f6a7b67", "GPU-0a7c3e85-9b4f-4d1e-a2c3-4e5f6a7b8c78",
        };
        static const char *const buses[8] = {
                "0000:1b:00.0", "0000:43:00.0", "0000:52:00.0", "0000:61:00.0",
                "0000:9d:00.0", "0000:c3:00.0", "0000:d1:00.0", "0000:df:00.0",
        };
        _cleanup_(nvml_unloadp) nvml *n = NULL;
        _cleanup_(inventory_freep) inventory *inv = load("dgx-h100", &n);

        assert_string_equal(inv->driver_version, "580.105.08");
        assert_int_equal(inv->cuda_driver_version, 13000);
        assert_string_equal(inv->nvml_version, "13.580.105.08");
        assert_int_equal(inv->n_gpus, 8);
        for (unsigned i = 0; i < 8; i++) {
                const struct gpu *g = &inv->gpus[i];
                assert_int_equal(g->index, i);
                assert_int_equal(g->minor, i);
                assert_string_equal(g->uuid, uuids[i]);
                assert_string_equal(g->name, "NVIDIA H100 80GB HBM3");
                assert_string_equal(g->bus_id, buses[i]);
                assert_int_equal(g->numa_node, i < 4 ? 0 : 1);
                assert_int_equal(g->pci_class, 0x030200);
                assert_int_equal(g->memory_mib, 81559);
                assert_int_equal(g->cc_major, 9);
                assert_int_equal(g->cc_minor, 0);
                assert_string_equal(g->architecture, "hopper");
                assert_string_equal(g->brand, "nvidia");
                assert_true(g->mig_capable);
                assert_false(g->mig_enabled);
                assert_int_equal(g->n_mig, 0);
        }
        /* All-to-all through NVSwitch: 18 links for every pair; PCIe: same socket NODE, across SYS. */
        for (unsigned a = 0; a < 8; a++)
                for (unsigned b = 0; b < 8; b++) {
                        if (a == b)
                                continue;
                        const struct gpu_link *l = inventory_link(inv, a, b);
                        assert_int_equal(l->nvlinks, 18);
                        assert_int_equal(l->pcie_level,
                                         (a < 4) == (b < 4) ? PCIE_LEVEL_NODE : PCIE_LEVEL_SYSTEM);
                        assert_int_equal(gpu_link_score(l), 1800);
                }
}

static void test_a100_mig(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = NULL;
        _cleanup_(inventory_freep) inventory *inv = load("a100-mig", &n);

        assert_string_equal(inv->driver_version, "570.172.08");
        assert_int_equal(inv->cuda_driver_version, 12080);
        assert_int_equal(inv->n_gpus, 2);

        const struct gpu *g0 = &inv->gpus[0], *g1 = &inv->gpus[1];
        assert_string_equal(g0->uuid, "GPU-4e1f7a2b-8c3d-4e5f-9a0b-1c2d3e4f5a60");
        assert_string_equal(g1->uuid, "GPU-9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c61");
        assert_string_equal(g0->name, "NVIDIA A100-SXM4-40GB");
        assert_string_equal(g0->bus_id, "0000:07:00.0");
        assert_string_equal(g1->bus_id, "0000:0f:00.0");
        assert_int_equal(g0->memory_mib, 40960);
        assert_int_equal(g0->cc_major, 8);
        assert_int_equal(g0->cc_minor, 0);
        assert_string_equal(g0->architecture, "ampere");
        assert_int_equal(g0->numa_node, 0);
        assert_int_equal(g1->numa_node, 0);
        assert_true(g0->mig_capable && g0->mig_enabled && g1->mig_capable && g1->mig_enabled);

        assert_int_equal(g0->n_mig, 4);
        static const struct {
                const char *uuid, *profile;
                unsigned gi, ci, mem, sms, slices, copy, dec;
        } want0[] = {
                { "MIG-a1b2c3d4-0001-5e6f-8a9b-0c1d2e3f4a01", "3g.20gb", 1, 0, 19968, 42, 3, 3, 2 },
                { "MIG-a1b2c3d4-0002-5e6f-8a9b-0c1d2e3f4a02", "2g.10gb", 5, 0, 9856, 28, 2, 2, 1 },
                { "MIG-a1b2c3d4-0003-5e6f-8a9b-0c1d2e3f4a03", "1g.5gb", 13, 0, 4864, 14, 1, 1, 0 },
                { "MIG-a1b2c3d4-0004-5e6f-8a9b-0c1d2e3f4a04", "1g.5gb", 14, 0, 4864, 14, 1, 1, 0 },
        };
        for (unsigned j = 0; j < 4; j++) {
                const struct mig_device *m = &g0->mig[j];
                assert_int_equal(m->index, j);
                assert_int_equal(m->parent, 0);
                assert_string_equal(m->uuid, want0[j].uuid);
                assert_string_equal(m->profile, want0[j].profile);
                assert_int_equal(m->gi_id, want0[j].gi);
                assert_int_equal(m->ci_id, want0[j].ci);
                assert_int_equal(m->memory_mib, want0[j].mem);
                assert_int_equal(m->multiprocessors, want0[j].sms);
                assert_int_equal(m->slices_gi, want0[j].slices);
                assert_int_equal(m->slices_ci, want0[j].slices);
                assert_int_equal(m->engines_copy, want0[j].copy);
                assert_int_equal(m->engines_decoder, want0[j].dec);
                assert_int_equal(m->engines_encoder, 0);
                assert_int_equal(m->engines_jpeg, 0);
                assert_int_equal(m->engines_ofa, 0);
        }

        assert_int_equal(g1->n_mig, 3);
        assert_string_equal(g1->mig[0].uuid, "MIG-f0e1d2c3-0011-4b5a-9687-a5b4c3d2e111");
        assert_string_equal(g1->mig[0].profile, "2g.10gb");
        assert_int_equal(g1->mig[0].gi_id, 3);
        assert_string_equal(g1->mig[1].profile, "2g.10gb");
        assert_int_equal(g1->mig[1].gi_id, 4);
        assert_string_equal(g1->mig[2].uuid, "MIG-f0e1d2c3-0013-4b5a-9687-a5b4c3d2e113");
        assert_string_equal(g1->mig[2].profile, "3g.20gb");
        assert_int_equal(g1->mig[2].gi_id, 2);
        assert_int_equal(g1->mig[2].parent, 1);
        assert_int_equal(g1->mig[2].index, 2);

        /* 12 direct NVLinks; one PCIe switch. */
        assert_int_equal(inventory_link(inv, 0, 1)->nvlinks, 12);
        assert_int_equal(inventory_link(inv, 1, 0)->nvlinks, 12);
        assert_int_equal(inventory_link(inv, 0, 1)->pcie_level, PCIE_LEVEL_SINGLE);
        assert_int_equal(gpu_link_score(inventory_link(inv, 0, 1)), 1200);
}

static void test_rtx4070ti(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = NULL;
        _cleanup_(inventory_freep) inventory *inv = load("rtx4070ti", &n);

        assert_string_equal(inv->driver_version, "580.95.05");
        assert_int_equal(inv->cuda_driver_version, 13000);
        assert_int_equal(inv->n_gpus, 1);
        const struct gpu *g = &inv->gpus[0];
        assert_string_equal(g->name, "NVIDIA GeForce RTX 4070 Ti");
        assert_string_equal(g->uuid, "GPU-d3c2b1a0-7f6e-4d5c-8b4a-392817263544");
        assert_string_equal(g->bus_id, "0000:01:00.0");
        assert_int_equal(g->memory_mib, 12282);
        assert_int_equal(g->numa_node, -1);       /* sysfs says -1 */
        assert_int_equal(g->pci_class, 0x030000); /* graphics mode: VGA controller */
        assert_int_equal(g->cc_major, 8);
        assert_int_equal(g->cc_minor, 9);
        assert_string_equal(g->architecture, "ada");
        assert_string_equal(g->brand, "geforce");
        assert_false(g->mig_capable);
        assert_false(g->mig_enabled);
        assert_false(g->fabric.supported); /* no NVLink fabric: NOT_SUPPORTED */
        assert_int_equal(g->n_mig, 0);
        assert_null(g->mig);
}

/* The GB200 tray: every GPU in one NVLink fabric clique, read by the unversioned call and, where a library
 * has only the versioned one, by that (version 2): the same answer. */
static void test_gb200_fabric(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = NULL;
        _cleanup_(inventory_freep) inventory *inv = load("gb200-nvl", &n);
        _cleanup_(inventory_freep) inventory *v2 = NULL;
        _cleanup_free_ char *error = NULL;
        char root[600];
        struct nvml only_v = *n;

        assert_int_equal(inv->n_gpus, 4);
        for (size_t i = 0; i < 4; i++) {
                const struct gpu_fabric *f = &inv->gpus[i].fabric;
                assert_true(f->supported);
                assert_string_equal(f->error, "");
                assert_int_equal(f->state, 3); /* completed */
                assert_int_equal(f->status, 0);
                assert_string_equal(f->cluster_uuid, "4c1f2a3b-5d6e-4f70-8a9b-0c1d2e3f4a5b");
                assert_int_equal(f->clique_id, 32766);
                assert_true(gpu_fabric_attached(f));
        }
        only_v.DeviceGetGpuFabricInfo = NULL;
        snprintf(root, sizeof(root), "%s/gb200-nvl.root", fixtures);
        assert_int_equal(inventory_load(&only_v, root, &v2, &error), 0);
        assert_memory_equal(&v2->gpus[3].fabric, &inv->gpus[3].fabric, sizeof(struct gpu_fabric));
        /* Neither call (an older library): no fabric, not an error. */
        v2 = inventory_free(v2);
        only_v.DeviceGetGpuFabricInfoV = NULL;
        assert_int_equal(inventory_load(&only_v, root, &v2, &error), 0);
        assert_false(v2->gpus[0].fabric.supported);
        assert_false(gpu_fabric_attached(&v2->gpus[0].fabric));
}

/* An older driver lacks optional calls: the table has NULLs there and the inventory still comes out,
 * with what can be known. */
static void test_without_optional_calls(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = NULL;
        _cleanup_(inventory_freep) inventory *full = load("dgx-h100", &n);
        _cleanup_(inventory_freep) inventory *inv = NULL;
        _cleanup_free_ char *error = NULL;
        char root[600];
        struct nvml old = *n;

        /* No NVLink device type: links to no known GPU are taken for switch links. */
        old.DeviceGetNvLinkRemoteDeviceType = NULL;
        snprintf(root, sizeof(root), "%s/dgx-h100.root", fixtures);
        assert_int_equal(inventory_load(&old, root, &inv, &error), 0);
        assert_int_equal(inventory_link(inv, 0, 7)->nvlinks, 18);
        inv = inventory_free(inv);

        /* No NVLink or topology calls at all: no links, PCIe level unknown, score 0. */
        old.DeviceGetNvLinkState = NULL;
        old.DeviceGetTopologyCommonAncestor = NULL;
        old.DeviceGetArchitecture = NULL;
        assert_int_equal(inventory_load(&old, root, &inv, &error), 0);
        assert_int_equal(inventory_link(inv, 0, 7)->nvlinks, 0);
        assert_int_equal(inventory_link(inv, 0, 7)->pcie_level, PCIE_LEVEL_UNKNOWN);
        assert_int_equal(gpu_link_score(inventory_link(inv, 0, 7)), 0);
        assert_string_equal(inv->gpus[0].architecture, "");
        assert_string_equal(inv->gpus[0].uuid, full->gpus[0].uuid);
}

static void test_mig_without_instance_calls(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = NULL;
        _cleanup_(inventory_freep) inventory *full = load("a100-mig", &n);
        _cleanup_(inventory_freep) inventory *inv = NULL;
        _cleanup_free_ char *error = NULL;
        char root[600];
        struct nvml old = *n;

        /* Without the instance lookups the profile is named from the device's attributes. */
        old.DeviceGetGpuInstanceById = NULL;
        snprintf(root, sizeof(root), "%s/a100-mig.root", fixtures);
        assert_int_equal(inventory_load(&old, root, &inv, &error), 0);
        assert_int_equal(inv->gpus[0].n_mig, 4);
        assert_string_equal(inv->gpus[0].mig[0].profile, "3g.20gb");
        assert_string_equal(inv->gpus[0].mig[2].profile, "1g.5gb");
        inv = inventory_free(inv);

        /* Without the MIG device calls a MIG-enabled GPU cannot be described: a clear error. */
        old.DeviceGetMigDeviceHandleByIndex = NULL;
        assert_int_equal(inventory_load(&old, root, &inv, &error), -EIO);
        assert_null(inv);
        assert_string_equal(error, "GPU 0 has MIG enabled but the NVML library lacks the MIG calls.");
}

/* With the root pointing where sysfs has nothing, NUMA is "none" and the class unknown; the rest stays. */
static void test_root_without_sysfs(void **state)
{
        char path[600];
        _cleanup_free_ char *error = NULL;
        _cleanup_(nvml_unloadp) nvml *n = NULL;
        _cleanup_(inventory_freep) inventory *inv = NULL;

        snprintf(path, sizeof(path), "%s/dgx-h100.yaml", fixtures);
        setenv("MOCK_NVML_FIXTURE", path, 1);
        assert_int_equal(nvml_load_library(NULL, mock_lib, &n, &error), 0);
        assert_int_equal(inventory_load(n, "/nonexistent-root", &inv, &error), 0);
        assert_int_equal(inv->n_gpus, 8);
        assert_int_equal(inv->gpus[5].numa_node, -1);
        assert_int_equal(inv->gpus[5].pci_class, 0);
        assert_string_equal(inv->gpus[5].bus_id, "0000:c3:00.0");
}

/* A GPU lost before the inventory is read: inventory_load fails with a sentence naming GPU and call. */
static void test_lost_gpu_fails_inventory(void **state)
{
        char path[600], fifo[] = "/tmp/nvdp-test-inv-XXXXXX";
        _cleanup_free_ char *error = NULL;
        _cleanup_(nvml_unloadp) nvml *n = NULL;
        inventory *inv = NULL;

        assert_non_null(mkdtemp(fifo));
        char events[600];
        snprintf(events, sizeof(events), "%s/events", fifo);
        snprintf(path, sizeof(path), "%s/rtx4070ti.yaml", fixtures);
        setenv("MOCK_NVML_FIXTURE", path, 1);
        setenv("MOCK_NVML_EVENTS", events, 1);
        assert_int_equal(nvml_load_library(NULL, mock_lib, &n, &error), 0);
        FILE *f = fopen(events, "we");
        assert_non_null(f);
        fprintf(f, "lost GPU-d3c2b1a0-7f6e-4d5c-8b4a-392817263544\n");
        fclose(f);
        assert_int_equal(inventory_load(n, "/", &inv, &error), -EIO);
        assert_null(inv);
        assert_string_equal(error, "GPU 0: nvmlDeviceGetHandleByIndex_v2 failed: GPU is lost.");
        unsetenv("MOCK_NVML_EVENTS");
        unlink(events);
        rmdir(fifo);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dgx_h100),
                cmocka_unit_test(test_a100_mig),
                cmocka_unit_test(test_rtx4070ti),
                cmocka_unit_test(test_gb200_fabric),
                cmocka_unit_test(test_without_optional_calls),
                cmocka_unit_test(test_mig_without_instance_calls),
                cmocka_unit_test(test_root_without_sysfs),
                cmocka_unit_test(test_lost_gpu_fails_inventory),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
