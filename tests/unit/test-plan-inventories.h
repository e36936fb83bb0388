/* SPDX-License-Identifier: Apache-2.0 */
/* Hand-built inventories of the three fixture nodes, for tests that need no NVML:
 *   8x H100 SXM (NVLink, NUMA 0,0,0,0,1,1,1,1), 2x A100 40GB with MIG, one GeForce RTX 4070 Ti.
 * Free with fixture_inventory_free() (the inventory module's destructor is not linked here). */
#pragma once

#include <stdio.h>

#include "gpu/inventory.h"

static inline inventory *fixture_inventory_free(inventory *inv)
{
        if (!inv)
                return NULL;
        for (size_t i = 0; i < inv->n_gpus; i++)
                free(inv->gpus[i].mig);
        free(inv->gpus);
        free(inv->links);
        free(inv->mig_minors_path);
        free(inv);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(inventory *, fixture_inventory_free);

static inline inventory *fixture_inventory_new(size_t n_gpus)
{
        inventory *inv = new0(inventory, 1);
        if (!inv)
                abort();
        inv->gpus = new0(struct gpu, n_gpus);
        inv->links = new0(struct gpu_link, n_gpus * n_gpus);
        if (!inv->gpus || !inv->links)
                abort();
        inv->n_gpus = n_gpus;
        snprintf(inv->driver_version, sizeof inv->driver_version, "580.105.08");
        inv->cuda_driver_version = 13000;
        snprintf(inv->nvml_version, sizeof inv->nvml_version, "13.580.105.08");
        return inv;
}

/* 8x "NVIDIA H100 80GB HBM3": GPU-00000000-0000-0000-0000-00000000000<i>, minors 0-7, 18 NVLinks. */
static inline inventory *fixture_h100x8(void)
{
        inventory *inv = fixture_inventory_new(8);
        static const char *const bus[] = { "0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0",
                                           "0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0" };
        for (unsigned i = 0; i < 8; i++) {
                struct gpu *g = &inv->gpus[i];
                g->index = i;
                g->minor = i;
                snprintf(g->uuid, sizeof g->uuid, "GPU-00000000-0000-0000-0000-00000000000%u", i);
                snprintf(g->name, sizeof g->name, "NVIDIA H100 80GB HBM3");
                snprintf(g->brand, sizeof g->brand, "nvidia");
                snprintf(g->architecture, sizeof g->architecture, "hopper");
                snprintf(g->bus_id, sizeof g->bus_id, "%s", bus[i]);
                g->memory_mib = 81559;
                g->pci_class = 0x030200;
                g->numa_node = i < 4 ? 0 : 1;
                g->cc_major = 9;
                g->mig_capable = true;
                for (unsigned j = 0; j < 8; j++)
                        inv->links[i * 8 + j] = (struct gpu_link){
                                .nvlinks = i == j ? 0 : 18,
                                .pcie_level = (i < 4) == (j < 4) ? PCIE_LEVEL_NODE : PCIE_LEVEL_SYSTEM,
                        };
        }
        return inv;
}

static inline void fixture_mig(struct gpu *g, unsigned index, const char *uuid, const char *profile,
                               unsigned gi, unsigned ci, uint64_t mem, unsigned sms, unsigned slices_gi,
                               unsigned slices_ci)
{
        struct mig_device *m = &g->mig[index];
        m->index = index;
        snprintf(m->uuid, sizeof m->uuid, "%s", uuid);
        snprintf(m->profile, sizeof m->profile, "%s", profile);
        m->gi_id = gi;
        m->ci_id = ci;
        m->memory_mib = mem;
        m->multiprocessors = sms;
        m->slices_gi = slices_gi;
        m->slices_ci = slices_ci;
        m->engines_copy = slices_gi;
}

/* 2x "NVIDIA A100-SXM4-40GB", both MIG-enabled, minors 0 and 1, NUMA 0 and 1:
 *   GPU 0: [0] 3g.20gb gi1, [1] 2g.10gb gi5, [2] 1g.5gb gi13, [3] 1g.5gb gi14
 *   GPU 1: [0] 1g.5gb gi7, [1] 1g.5gb+me gi8, [2] 1c.3g.20gb gi2/ci1 (compute-instance sliced)
 * MIG UUIDs: MIG-a<gpu><mig>00000-0000-0000-0000-000000000000. */
static inline inventory *fixture_a100_mig(void)
{
        inventory *inv = fixture_inventory_new(2);
        for (unsigned i = 0; i < 2; i++) {
                struct gpu *g = &inv->gpus[i];
                g->index = i;
                g->minor = i;
                snprintf(g->uuid, sizeof g->uuid, "GPU-10000000-0000-0000-0000-00000000000%u", i);
                snprintf(g->name, sizeof g->name, "NVIDIA A100-SXM4-40GB");
                snprintf(g->brand, sizeof g->brand, "nvidia");
                snprintf(g->architecture, sizeof g->architecture, "ampere");
                snprintf(g->bus_id, sizeof g->bus_id, i == 0 ? "0000:07:00.0" : "0000:87:00.0");
                g->memory_mib = 40960;
                g->pci_class = 0x030200;
                g->numa_node = (int)i;
                g->cc_major = 8;
                g->mig_capable = true;
                g->mig_enabled = true;
                g->n_mig = i == 0 ? 4 : 3;
                g->mig = new0(struct mig_device, g->n_mig);
                if (!g->mig)
                        abort();
                for (unsigned j = 0; j < g->n_mig; j++)
                        g->mig[j].parent = i;
                inv->links[i * 2 + (1 - i)] =
                        (struct gpu_link){ .nvlinks = 12, .pcie_level = PCIE_LEVEL_SYSTEM };
        }
        struct gpu *g0 = &inv->gpus[0], *g1 = &inv->gpus[1];
        fixture_mig(g0, 0, "MIG-a0000000-0000-0000-0000-000000000000", "3g.20gb", 1, 0, 19968, 42, 3, 3);
        fixture_mig(g0, 1, "MIG-a0100000-0000-0000-0000-000000000000", "2g.10gb", 5, 0, 9856, 28, 2, 2);
        fixture_mig(g0, 2, "MIG-a0200000-0000-0000-0000-000000000000", "1g.5gb", 13, 0, 4864, 14, 1, 1);
        fixture_mig(g0, 3, "MIG-a0300000-0000-0000-0000-000000000000", "1g.5gb", 14, 0, 4864, 14, 1, 1);
        fixture_mig(g1, 0, "MIG-a1000000-0000-0000-0000-000000000000", "1g.5gb", 7, 0, 4864, 14, 1, 1);
        fixture_mig(g1, 1, "MIG-a1100000-0000-0000-0000-000000000000", "1g.5gb+me", 8, 0, 4864, 14, 1, 1);
        fixture_mig(g1, 2, "MIG-a1200000-0000-0000-0000-000000000000", "1c.3g.20gb", 2, 1, 19968, 14, 3, 1);
        return inv;
}

/* The A100 node reconfigured for the single strategy: two 3g.20gb devices on each GPU. */
static inline inventory *fixture_a100_mig_uniform(void)
{
        inventory *inv = fixture_a100_mig();
        static const char *const uuids[2][2] = {
                { "MIG-b0000000-0000-0000-0000-000000000000", "MIG-b0100000-0000-0000-0000-000000000000" },
                { "MIG-b1000000-0000-0000-0000-000000000000", "MIG-b1100000-0000-0000-0000-000000000000" },
        };
        for (unsigned i = 0; i < 2; i++) {
                struct gpu *g = &inv->gpus[i];
                g->n_mig = 2;
                fixture_mig(g, 0, uuids[i][0], "3g.20gb", 1, 0, 19968, 42, 3, 3);
                fixture_mig(g, 1, uuids[i][1], "3g.20gb", 2, 0, 19968, 42, 3, 3);
        }
        return inv;
}

/* One "NVIDIA GeForce RTX 4070 Ti": no MIG, no NUMA node. */
static inline inventory *fixture_rtx4070ti(void)
{
        inventory *inv = fixture_inventory_new(1);
        struct gpu *g = &inv->gpus[0];
        g->index = 0;
        g->minor = 0;
        snprintf(g->uuid, sizeof g->uuid, "GPU-20000000-0000-0000-0000-000000000000");
        snprintf(g->name, sizeof g->name, "NVIDIA GeForce RTX 4070 Ti");
        snprintf(g->brand, sizeof g->brand, "geforce");
        snprintf(g->architecture, sizeof g->architecture, "ada-lovelace");
        snprintf(g->bus_id, sizeof g->bus_id, "0000:01:00.0");
        g->memory_mib = 12282;
        g->pci_class = 0x030000;
        g->numa_node = -1;
        g->cc_major = 8;
        g->cc_minor = 9;
        return inv;
}
