/* SPDX-License-Identifier: Apache-2.0 */
/* GFD labels: full expected label sets for the fixture nodes (8x H100, 2x A100 under MIG, RTX 4070 Ti),
 * sharing, timestamps. The inventory and config are built by hand here, as inventory_load and the
 * config parser would fill them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/strv.h"
#include "labels/labels.h"

#define TS 1700000000

/* ---- fixtures ------------------------------------------------------------------------------- */

static inventory *inv_new(size_t n, const char *name, uint64_t mem, unsigned ccmaj, unsigned ccmin,
                          uint32_t cls, bool mig_capable, const char *driver, int cuda)
{
        inventory *inv = new0(inventory, 1);
        assert_non_null(inv);
        snprintf(inv->driver_version, sizeof inv->driver_version, "%s", driver);
        inv->cuda_driver_version = cuda;
        inv->gpus = new0(struct gpu, n);
        inv->n_gpus = n;
        for (size_t i = 0; i < n; i++) {
                struct gpu *g = &inv->gpus[i];
                g->index = g->minor = (unsigned)i;
                snprintf(g->uuid, sizeof g->uuid, "GPU-%08zx-0000-0000-0000-000000000000", i);
                snprintf(g->name, sizeof g->name, "%s", name);
                g->memory_mib = mem;
                g->cc_major = ccmaj;
                g->cc_minor = ccmin;
                g->pci_class = cls;
                g->mig_capable = mig_capable;
                g->numa_node = -1;
        }
        return inv;
}

static void inv_free(inventory *inv)
{
        for (size_t i = 0; i < inv->n_gpus; i++)
                free(inv->gpus[i].mig);
        free(inv->gpus);
        free(inv);
}

static inventory *h100_node(void)
{
        return inv_new(8, "NVIDIA H100 80GB HBM3", 81559, 9, 0, 0x030200, true, "580.105.08", 13000);
}

static inventory *a100_node(void)
{
        return inv_new(2, "NVIDIA A100-SXM4-40GB", 40960, 8, 0, 0x030200, true, "550.107.02", 12040);
}

/* A100-SXM4-40GB MIG profiles (NVIDIA MIG user guide; NVML profile info as go-nvml's dgxa100 mock):
 * memory MiB, SMs, GI/CI slices, engines copy/decoder/encoder/jpeg/ofa. */
static void add_mig(struct gpu *g, const char *profile, unsigned count)
{
        static const struct {
                const char *profile;
                uint64_t mem;
                unsigned sms, slices, copy, dec;
        } table[] = {
                { "1g.5gb", 4864, 14, 1, 1, 0 },
                { "2g.10gb", 9856, 28, 2, 2, 1 },
                { "3g.20gb", 19968, 42, 3, 3, 2 },
        };
        size_t t = 0;
        while (!streq(table[t].profile, profile))
                t++;
        g->mig_enabled = true;
        g->mig = realloc(g->mig, (g->n_mig + count) * sizeof(struct mig_device));
        assert_non_null(g->mig);
        for (unsigned k = 0; k < count; k++) {
                struct mig_device *m = &g->mig[g->n_mig];
                *m = (struct mig_device){ .index = (unsigned)g->n_mig,
                                          .parent = g->index,
                                          .gi_id = (unsigned)g->n_mig + 1,
                                          .ci_id = 0,
                                          .memory_mib = table[t].mem,
                                          .multiprocessors = table[t].sms,
                                          .slices_gi = table[t].slices,
                                          .slices_ci = table[t].slices,
                                          .engines_copy = table[t].copy,
                                          .engines_decoder = table[t].dec };
                snprintf(m->uuid, sizeof m->uuid, "MIG-%u%02zu00000-0000-0000-0000-000000000000", g->index,
                         g->n_mig);
                snprintf(m->profile, sizeof m->profile, "%s", profile);
                g->n_mig++;
        }
}

static config *cfg_new(enum mig_strategy mig, enum sharing_strategy sharing)
{
        config *c = NULL;
        assert_int_equal(config_new_default(&c), 0);
        c->flags.mig_strategy = mig;
        c->sharing.strategy = sharing;
        return c;
}

/* Adds a sharing entry; devices NULL means `all`. */
static struct replicated_resource *cfg_share(config *c, const char *name, unsigned replicas,
                                             const char *rename, const char *devices)
{
        c->sharing.resources =
                realloc(c->sharing.resources, (c->sharing.n_resources + 1) * sizeof *c->sharing.resources);
        assert_non_null(c->sharing.resources);
        struct replicated_resource *e = &c->sharing.resources[c->sharing.n_resources++];
        *e = (struct replicated_resource){ .name = strdup(name),
                                           .rename = rename ? strdup(rename) : NULL,
                                           .replicas = replicas,
                                           .devices_all = !devices };
        if (devices)
                assert_int_equal(strv_split(devices, ",", &e->devices_list), 0);
        return e;
}

static void cfg_free(config *c)
{
        config_free(c);
}

/* Builds and compares the whole features.d text. */
static void assert_labels(const inventory *inv, const config *c, const char *machine, int64_t ts,
                          const char *expected)
{
        _cleanup_(labels_freep) labels *l = NULL;
        _cleanup_free_ char *err = NULL, *text = NULL;
        assert_int_equal(labels_build(inv, c, machine, ts, &l, &err), 0);
        assert_null(err);
        assert_int_equal(labels_format(l, &text), 0);
        assert_string_equal(text, expected);
}

/* ---- whole nodes ---------------------------------------------------------------------------- */

static void test_h100_node(void **state)
{
        inventory *inv = h100_node();
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_NONE);
        assert_labels(inv, c, "DGX H100\n", TS,
                      "nvidia.com/cuda.driver-version.full=580.105.08\n"
                      "nvidia.com/cuda.driver-version.major=580\n"
                      "nvidia.com/cuda.driver-version.minor=105\n"
                      "nvidia.com/cuda.driver-version.revision=08\n"
                      "nvidia.com/cuda.driver.major=580\n"
                      "nvidia.com/cuda.driver.minor=105\n"
                      "nvidia.com/cuda.driver.rev=08\n"
                      "nvidia.com/cuda.runtime-version.full=13.0\n"
                      "nvidia.com/cuda.runtime-version.major=13\n"
                      "nvidia.com/cuda.runtime-version.minor=0\n"
                      "nvidia.com/cuda.runtime.major=13\n"
                      "nvidia.com/cuda.runtime.minor=0\n"
                      "nvidia.com/gfd.timestamp=1700000000\n"
                      "nvidia.com/gpu.compute.major=9\n"
                      "nvidia.com/gpu.compute.minor=0\n"
                      "nvidia.com/gpu.count=8\n"
                      "nvidia.com/gpu.family=hopper\n"
                      "nvidia.com/gpu.machine=DGX-H100\n"
                      "nvidia.com/gpu.memory=81559\n"
                      "nvidia.com/gpu.mode=compute\n"
                      "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3\n"
                      "nvidia.com/gpu.replicas=1\n"
                      "nvidia.com/gpu.sharing-strategy=none\n"
                      "nvidia.com/mig.capable=true\n"
                      "nvidia.com/mps.capable=false\n"
                      "nvidia.com/vgpu.present=false\n");
        cfg_free(c);
        inv_free(inv);
}

static void test_h100_no_timestamp(void **state)
{
        inventory *inv = h100_node();
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_NONE);
        assert_labels(inv, c, "DGX H100", LABELS_NO_TIMESTAMP,
                      "nvidia.com/cuda.driver-version.full=580.105.08\n"
                      "nvidia.com/cuda.driver-version.major=580\n"
                      "nvidia.com/cuda.driver-version.minor=105\n"
                      "nvidia.com/cuda.driver-version.revision=08\n"
                      "nvidia.com/cuda.driver.major=580\n"
                      "nvidia.com/cuda.driver.minor=105\n"
                      "nvidia.com/cuda.driver.rev=08\n"
                      "nvidia.com/cuda.runtime-version.full=13.0\n"
                      "nvidia.com/cuda.runtime-version.major=13\n"
                      "nvidia.com/cuda.runtime-version.minor=0\n"
                      "nvidia.com/cuda.runtime.major=13\n"
                      "nvidia.com/cuda.runtime.minor=0\n"
                      "nvidia.com/gpu.compute.major=9\n"
                      "nvidia.com/gpu.compute.minor=0\n"
                      "nvidia.com/gpu.count=8\n"
                      "nvidia.com/gpu.family=hopper\n"
                      "nvidia.com/gpu.machine=DGX-H100\n"
                      "nvidia.com/gpu.memory=81559\n"
                      "nvidia.com/gpu.mode=compute\n"
                      "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3\n"
                      "nvidia.com/gpu.replicas=1\n"
                      "nvidia.com/gpu.sharing-strategy=none\n"
                      "nvidia.com/mig.capable=true\n"
                      "nvidia.com/mps.capable=false\n"
                      "nvidia.com/vgpu.present=false\n");
        cfg_free(c);
        inv_free(inv);
}

static void test_h100_time_slicing(void **state)
{
        inventory *inv = h100_node();
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_TIME_SLICING);
        cfg_share(c, "nvidia.com/gpu", 4, NULL, NULL);
        assert_labels(inv, c, "DGX H100", TS,
                      "nvidia.com/cuda.driver-version.full=580.105.08\n"
                      "nvidia.com/cuda.driver-version.major=580\n"
                      "nvidia.com/cuda.driver-version.minor=105\n"
                      "nvidia.com/cuda.driver-version.revision=08\n"
                      "nvidia.com/cuda.driver.major=580\n"
                      "nvidia.com/cuda.driver.minor=105\n"
                      "nvidia.com/cuda.driver.rev=08\n"
                      "nvidia.com/cuda.runtime-version.full=13.0\n"
                      "nvidia.com/cuda.runtime-version.major=13\n"
                      "nvidia.com/cuda.runtime-version.minor=0\n"
                      "nvidia.com/cuda.runtime.major=13\n"
                      "nvidia.com/cuda.runtime.minor=0\n"
                      "nvidia.com/gfd.timestamp=1700000000\n"
                      "nvidia.com/gpu.compute.major=9\n"
                      "nvidia.com/gpu.compute.minor=0\n"
                      "nvidia.com/gpu.count=8\n"
                      "nvidia.com/gpu.family=hopper\n"
                      "nvidia.com/gpu.machine=DGX-H100\n"
                      "nvidia.com/gpu.memory=81559\n"
                      "nvidia.com/gpu.mode=compute\n"
                      "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3-SHARED\n"
                      "nvidia.com/gpu.replicas=4\n"
                      "nvidia.com/gpu.sharing-strategy=time-slicing\n"
                      "nvidia.com/mig.capable=true\n"
                      "nvidia.com/mps.capable=false\n"
                      "nvidia.com/vgpu.present=false\n");
        cfg_free(c);
        inv_free(inv);
}

static void test_h100_time_slicing_renamed(void **state)
{
        inventory *inv = h100_node();
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_TIME_SLICING);
        cfg_share(c, "nvidia.com/gpu", 4, "nvidia.com/gpu.shared", NULL);
        assert_labels(inv, c, "DGX H100", TS,
                      "nvidia.com/cuda.driver-version.full=580.105.08\n"
                      "nvidia.com/cuda.driver-version.major=580\n"
                      "nvidia.com/cuda.driver-version.minor=105\n"
                      "nvidia.com/cuda.driver-version.revision=08\n"
                      "nvidia.com/cuda.driver.major=580\n"
                      "nvidia.com/cuda.driver.minor=105\n"
                      "nvidia.com/cuda.driver.rev=08\n"
                      "nvidia.com/cuda.runtime-version.full=13.0\n"
                      "nvidia.com/cuda.runtime-version.major=13\n"
                      "nvidia.com/cuda.runtime-version.minor=0\n"
                      "nvidia.com/cuda.runtime.major=13\n"
                      "nvidia.com/cuda.runtime.minor=0\n"
                      "nvidia.com/gfd.timestamp=1700000000\n"
                      "nvidia.com/gpu.compute.major=9\n"
                      "nvidia.com/gpu.compute.minor=0\n"
                      "nvidia.com/gpu.count=8\n"
                      "nvidia.com/gpu.family=hopper\n"
                      "nvidia.com/gpu.machine=DGX-H100\n"
                      "nvidia.com/gpu.memory=81559\n"
                      "nvidia.com/gpu.mode=compute\n"
                      "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3\n"
                      "nvidia.com/gpu.replicas=4\n"
                      "nvidia.com/gpu.sharing-strategy=time-slicing\n"
                      "nvidia.com/mig.capable=true\n"
                      "nvidia.com/mps.capable=false\n"
                      "nvidia.com/vgpu.present=false\n");
        cfg_free(c);
        inv_free(inv);
}

static void test_h100_mps(void **state)
{
        inventory *inv = h100_node();
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_MPS);
        cfg_share(c, "nvidia.com/gpu", 4, NULL, NULL);
        assert_labels(inv, c, "DGX H100", TS,
                      "nvidia.com/cuda.driver-version.full=580.105.08\n"
                      "nvidia.com/cuda.driver-version.major=580\n"
                      "nvidia.com/cuda.driver-version.minor=105\n"
                      "nvidia.com/cuda.driver-version.revision=08\n"
                      "nvidia.com/cuda.driver.major=580\n"
                      "nvidia.com/cuda.driver.minor=105\n"
                      "nvidia.com/cuda.driver.rev=08\n"
                      "nvidia.com/cuda.runtime-version.full=13.0\n"
                      "nvidia.com/cuda.runtime-version.major=13\n"
                      "nvidia.com/cuda.runtime-version.minor=0\n"
                      "nvidia.com/cuda.runtime.major=13\n"
                      "nvidia.com/cuda.runtime.minor=0\n"
                      "nvidia.com/gfd.timestamp=1700000000\n"
                      "nvidia.com/gpu.compute.major=9\n"
                      "nvidia.com/gpu.compute.minor=0\n"
                      "nvidia.com/gpu.count=8\n"
                      "nvidia.com/gpu.family=hopper\n"
                      "nvidia.com/gpu.machine=DGX-H100\n"
                      "nvidia.com/gpu.memory=81559\n"
                      "nvidia.com/gpu.mode=compute\n"
                      "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3-SHARED\n"
                      "nvidia.com/gpu.replicas=4\n"
                      "nvidia.com/gpu.sharing-strategy=mps\n"
                      "nvidia.com/mig.capable=true\n"
                      "nvidia.com/mps.capable=true\n"
                      "nvidia.com/vgpu.present=false\n");
        cfg_free(c);
        inv_free(inv);
}

static void test_rtx4070ti(void **state)
{
        /* A 2-part driver version (390.157-style): the revision labels are empty. No machine type
         * file: "unknown". */
        inventory *inv =
                inv_new(1, "NVIDIA GeForce RTX 4070 Ti", 12282, 8, 9, 0x030000, false, "570.144", 12080);
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_NONE);
        assert_labels(inv, c, NULL, LABELS_NO_TIMESTAMP,
                      "nvidia.com/cuda.driver-version.full=570.144\n"
                      "nvidia.com/cuda.driver-version.major=570\n"
                      "nvidia.com/cuda.driver-version.minor=144\n"
                      "nvidia.com/cuda.driver-version.revision=\n"
                      "nvidia.com/cuda.driver.major=570\n"
                      "nvidia.com/cuda.driver.minor=144\n"
                      "nvidia.com/cuda.driver.rev=\n"
                      "nvidia.com/cuda.runtime-version.full=12.8\n"
                      "nvidia.com/cuda.runtime-version.major=12\n"
                      "nvidia.com/cuda.runtime-version.minor=8\n"
                      "nvidia.com/cuda.runtime.major=12\n"
                      "nvidia.com/cuda.runtime.minor=8\n"
                      "nvidia.com/gpu.compute.major=8\n"
                      "nvidia.com/gpu.compute.minor=9\n"
                      "nvidia.com/gpu.count=1\n"
                      "nvidia.com/gpu.family=ada-lovelace\n"
                      "nvidia.com/gpu.machine=unknown\n"
                      "nvidia.com/gpu.memory=12282\n"
                      "nvidia.com/gpu.mode=graphics\n"
                      "nvidia.com/gpu.product=NVIDIA-GeForce-RTX-4070-Ti\n"
                      "nvidia.com/gpu.replicas=1\n"
                      "nvidia.com/gpu.sharing-strategy=none\n"
                      "nvidia.com/mig.capable=false\n"
                      "nvidia.com/mps.capable=false\n"
                      "nvidia.com/vgpu.present=false\n");
        cfg_free(c);
        inv_free(inv);
}

static void test_a100_mig_single(void **state)
{
        inventory *inv = a100_node();
        add_mig(&inv->gpus[0], "1g.5gb", 7);
        add_mig(&inv->gpus[1], "1g.5gb", 7);
        config *c = cfg_new(MIG_STRATEGY_SINGLE, SHARING_NONE);
        assert_labels(inv, c, "DGXA100 920-23687-2530-000", TS,
                      "nvidia.com/cuda.driver-version.full=550.107.02\n"
                      "nvidia.com/cuda.driver-version.major=550\n"
                      "nvidia.com/cuda.driver-version.minor=107\n"
                      "nvidia.com/cuda.driver-version.revision=02\n"
                      "nvidia.com/cuda.driver.major=550\n"
                      "nvidia.com/cuda.driver.minor=107\n"
                      "nvidia.com/cuda.driver.rev=02\n"
                      "nvidia.com/cuda.runtime-version.full=12.4\n"
                      "nvidia.com/cuda.runtime-version.major=12\n"
                      "nvidia.com/cuda.runtime-version.minor=4\n"
                      "nvidia.com/cuda.runtime.major=12\n"
                      "nvidia.com/cuda.runtime.minor=4\n"
                      "nvidia.com/gfd.timestamp=1700000000\n"
                      "nvidia.com/gpu.compute.major=8\n"
                      "nvidia.com/gpu.compute.minor=0\n"
                      "nvidia.com/gpu.count=14\n"
                      "nvidia.com/gpu.engines.copy=1\n"
                      "nvidia.com/gpu.engines.decoder=0\n"
                      "nvidia.com/gpu.engines.encoder=0\n"
                      "nvidia.com/gpu.engines.jpeg=0\n"
                      "nvidia.com/gpu.engines.ofa=0\n"
                      "nvidia.com/gpu.family=ampere\n"
                      "nvidia.com/gpu.machine=DGXA100-920-23687-2530-000\n"
                      "nvidia.com/gpu.memory=4864\n"
                      "nvidia.com/gpu.mode=compute\n"
                      "nvidia.com/gpu.multiprocessors=14\n"
                      "nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB-MIG-1g.5gb\n"
                      "nvidia.com/gpu.replicas=1\n"
                      "nvidia.com/gpu.sharing-strategy=none\n"
                      "nvidia.com/gpu.slices.ci=1\n"
                      "nvidia.com/gpu.slices.gi=1\n"
                      "nvidia.com/mig.capable=true\n"
                      "nvidia.com/mig.strategy=single\n"
                      "nvidia.com/mps.capable=false\n"
                      "nvidia.com/vgpu.present=false\n");
        cfg_free(c);
        inv_free(inv);
}

static void test_a100_mig_single_invalid(void **state)
{
        inventory *inv = a100_node();
        add_mig(&inv->gpus[0], "1g.5gb", 7);
        add_mig(&inv->gpus[1], "3g.20gb", 2);
        config *c = cfg_new(MIG_STRATEGY_SINGLE, SHARING_NONE);
        assert_labels(inv, c, "DGXA100 920-23687-2530-000", TS,
                      "nvidia.com/cuda.driver-version.full=550.107.02\n"
                      "nvidia.com/cuda.driver-version.major=550\n"
                      "nvidia.com/cuda.driver-version.minor=107\n"
                      "nvidia.com/cuda.driver-version.revision=02\n"
                      "nvidia.com/cuda.driver.major=550\n"
                      "nvidia.com/cuda.driver.minor=107\n"
                      "nvidia.com/cuda.driver.rev=02\n"
                      "nvidia.com/cuda.runtime-version.full=12.4\n"
                      "nvidia.com/cuda.runtime-version.major=12\n"
                      "nvidia.com/cuda.runtime-version.minor=4\n"
                      "nvidia.com/cuda.runtime.major=12\n"
                      "nvidia.com/cuda.runtime.minor=4\n"
                      "nvidia.com/gfd.timestamp=1700000000\n"
                      "nvidia.com/gpu.compute.major=8\n"
                      "nvidia.com/gpu.compute.minor=0\n"
                      "nvidia.com/gpu.count=0\n"
                      "nvidia.com/gpu.family=ampere\n"
                      "nvidia.com/gpu.machine=DGXA100-920-23687-2530-000\n"
                      "nvidia.com/gpu.memory=0\n"
                      "nvidia.com/gpu.mode=compute\n"
                      "nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB-MIG-INVALID\n"
                      "nvidia.com/gpu.replicas=0\n"
                      "nvidia.com/gpu.sharing-strategy=\n"
                      "nvidia.com/mig.capable=true\n"
                      "nvidia.com/mig.strategy=single\n"
                      "nvidia.com/mps.capable=false\n"
                      "nvidia.com/vgpu.present=false\n");
        cfg_free(c);
        inv_free(inv);
}

static void test_a100_mig_mixed(void **state)
{
        inventory *inv = a100_node();
        add_mig(&inv->gpus[0], "1g.5gb", 3);
        add_mig(&inv->gpus[0], "2g.10gb", 2);
        add_mig(&inv->gpus[1], "3g.20gb", 2);
        config *c = cfg_new(MIG_STRATEGY_MIXED, SHARING_NONE);
        assert_labels(inv, c, "DGXA100 920-23687-2530-000", TS,
                      "nvidia.com/cuda.driver-version.full=550.107.02\n"
                      "nvidia.com/cuda.driver-version.major=550\n"
                      "nvidia.com/cuda.driver-version.minor=107\n"
                      "nvidia.com/cuda.driver-version.revision=02\n"
                      "nvidia.com/cuda.driver.major=550\n"
                      "nvidia.com/cuda.driver.minor=107\n"
                      "nvidia.com/cuda.driver.rev=02\n"
                      "nvidia.com/cuda.runtime-version.full=12.4\n"
                      "nvidia.com/cuda.runtime-version.major=12\n"
                      "nvidia.com/cuda.runtime-version.minor=4\n"
                      "nvidia.com/cuda.runtime.major=12\n"
                      "nvidia.com/cuda.runtime.minor=4\n"
                      "nvidia.com/gfd.timestamp=1700000000\n"
                      "nvidia.com/gpu.compute.major=8\n"
                      "nvidia.com/gpu.compute.minor=0\n"
                      "nvidia.com/gpu.count=2\n"
                      "nvidia.com/gpu.family=ampere\n"
                      "nvidia.com/gpu.machine=DGXA100-920-23687-2530-000\n"
                      "nvidia.com/gpu.memory=40960\n"
                      "nvidia.com/gpu.mode=compute\n"
                      "nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB\n"
                      "nvidia.com/gpu.replicas=0\n"
                      "nvidia.com/gpu.sharing-strategy=none\n"
                      "nvidia.com/mig-1g.5gb.count=3\n"
                      "nvidia.com/mig-1g.5gb.engines.copy=1\n"
                      "nvidia.com/mig-1g.5gb.engines.decoder=0\n"
                      "nvidia.com/mig-1g.5gb.engines.encoder=0\n"
                      "nvidia.com/mig-1g.5gb.engines.jpeg=0\n"
                      "nvidia.com/mig-1g.5gb.engines.ofa=0\n"
                      "nvidia.com/mig-1g.5gb.memory=4864\n"
                      "nvidia.com/mig-1g.5gb.multiprocessors=14\n"
                      "nvidia.com/mig-1g.5gb.product=NVIDIA-A100-SXM4-40GB-MIG-1g.5gb\n"
                      "nvidia.com/mig-1g.5gb.replicas=1\n"
                      "nvidia.com/mig-1g.5gb.sharing-strategy=none\n"
                      "nvidia.com/mig-1g.5gb.slices.ci=1\n"
                      "nvidia.com/mig-1g.5gb.slices.gi=1\n"
                      "nvidia.com/mig-2g.10gb.count=2\n"
                      "nvidia.com/mig-2g.10gb.engines.copy=2\n"
                      "nvidia.com/mig-2g.10gb.engines.decoder=1\n"
                      "nvidia.com/mig-2g.10gb.engines.encoder=0\n"
                      "nvidia.com/mig-2g.10gb.engines.jpeg=0\n"
                      "nvidia.com/mig-2g.10gb.engines.ofa=0\n"
                      "nvidia.com/mig-2g.10gb.memory=9856\n"
                      "nvidia.com/mig-2g.10gb.multiprocessors=28\n"
                      "nvidia.com/mig-2g.10gb.product=NVIDIA-A100-SXM4-40GB-MIG-2g.10gb\n"
                      "nvidia.com/mig-2g.10gb.replicas=1\n"
                      "nvidia.com/mig-2g.10gb.sharing-strategy=none\n"
                      "nvidia.com/mig-2g.10gb.slices.ci=2\n"
                      "nvidia.com/mig-2g.10gb.slices.gi=2\n"
                      "nvidia.com/mig-3g.20gb.count=2\n"
                      "nvidia.com/mig-3g.20gb.engines.copy=3\n"
                      "nvidia.com/mig-3g.20gb.engines.decoder=2\n"
                      "nvidia.com/mig-3g.20gb.engines.encoder=0\n"
                      "nvidia.com/mig-3g.20gb.engines.jpeg=0\n"
                      "nvidia.com/mig-3g.20gb.engines.ofa=0\n"
                      "nvidia.com/mig-3g.20gb.memory=19968\n"
                      "nvidia.com/mig-3g.20gb.multiprocessors=42\n"
                      "nvidia.com/mig-3g.20gb.product=NVIDIA-A100-SXM4-40GB-MIG-3g.20gb\n"
                      "nvidia.com/mig-3g.20gb.replicas=1\n"
                      "nvidia.com/mig-3g.20gb.sharing-strategy=none\n"
                      "nvidia.com/mig-3g.20gb.slices.ci=3\n"
                      "nvidia.com/mig-3g.20gb.slices.gi=3\n"
                      "nvidia.com/mig.capable=true\n"
                      "nvidia.com/mig.strategy=mixed\n"
                      "nvidia.com/mps.capable=false\n"
                      "nvidia.com/vgpu.present=false\n");
        cfg_free(c);
        inv_free(inv);
}

static void test_no_gpus(void **state)
{
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_NONE);
        assert_labels(NULL, c, "DGX H100", TS,
                      "nvidia.com/gfd.timestamp=1700000000\n"
                      "nvidia.com/vgpu.present=false\n");
        inventory empty = { .driver_version = "580.105.08" };
        assert_labels(&empty, c, "DGX H100", LABELS_NO_TIMESTAMP, "nvidia.com/vgpu.present=false\n");
        cfg_free(c);
}

/* ---- rules beyond upstream, and failures ---------------------------------------------------- */

static const char *build_get(const inventory *inv, const config *c, labels **l, const char *key)
{
        _cleanup_free_ char *err = NULL;
        *l = labels_free(*l);
        assert_int_equal(labels_build(inv, c, "x", TS, l, &err), 0);
        return labels_get(*l, key);
}

static void test_per_gpu_sharing(void **state)
{
        inventory *inv = h100_node();
        _cleanup_(labels_freep) labels *l = NULL;

        /* devices selecting some of the GPUs: the node offers shared GPUs, so the labels say so. */
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_TIME_SLICING);
        cfg_share(c, "nvidia.com/gpu", 4, NULL, "0,GPU-00000007-0000-0000-0000-000000000000");
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.replicas"), "4");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.product"), "NVIDIA-H100-80GB-HBM3-SHARED");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.count"), "8");
        cfg_free(c);

        /* devices naming no GPU of the node (a MIG index, an unknown UUID): not shared. */
        c = cfg_new(MIG_STRATEGY_NONE, SHARING_TIME_SLICING);
        cfg_share(c, "nvidia.com/gpu", 4, NULL, "0:0,GPU-ffffffff-0000-0000-0000-000000000000");
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.replicas"), "1");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.sharing-strategy"), "none");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.product"), "NVIDIA-H100-80GB-HBM3");
        cfg_free(c);

        /* devices: N counts GPUs by index. */
        c = cfg_new(MIG_STRATEGY_NONE, SHARING_TIME_SLICING);
        cfg_share(c, "nvidia.com/gpu", 2, NULL, NULL)->devices_all = false;
        c->sharing.resources[0].devices_count = 3;
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.replicas"), "2");
        cfg_free(c);

        /* An entry for another resource does not touch nvidia.com/gpu. */
        c = cfg_new(MIG_STRATEGY_NONE, SHARING_TIME_SLICING);
        cfg_share(c, "nvidia.com/mig-1g.10gb", 4, NULL, NULL);
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.replicas"), "1");
        cfg_free(c);
        inv_free(inv);
}

/* The same rule with a config file read by the real parser: per-GPU `devices` and `rename` honoured. */
static void test_sharing_from_config_file(void **state)
{
        char path[] = "/tmp/nvdp-test-labels-config-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        static const char yaml[] = "version: v1\n"
                                   "sharing:\n"
                                   "  timeSlicing:\n"
                                   "    resources:\n"
                                   "    - name: gpu\n"
                                   "      replicas: 4\n"
                                   "      rename: gpu.shared\n"
                                   "      devices: [\"6\", \"7\"]\n";
        assert_int_equal(write(fd, yaml, sizeof yaml - 1), (ssize_t)(sizeof yaml - 1));
        close(fd);

        inventory *inv = h100_node();
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_NONE);
        _cleanup_free_ char *err = NULL;
        int r = config_load_file(c, path, &err);
        unlink(path);
        assert_int_equal(r, 0);
        assert_int_equal(c->sharing.strategy, SHARING_TIME_SLICING);

        _cleanup_(labels_freep) labels *l = NULL;
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.replicas"), "4");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.sharing-strategy"), "time-slicing");
        /* Renamed: the product says nothing about sharing. */
        assert_string_equal(labels_get(l, "nvidia.com/gpu.product"), "NVIDIA-H100-80GB-HBM3");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.count"), "8");
        cfg_free(c);
        inv_free(inv);
}

static void test_mig_mixed_sharing(void **state)
{
        inventory *inv = a100_node();
        add_mig(&inv->gpus[0], "1g.5gb", 7);
        add_mig(&inv->gpus[1], "3g.20gb", 2);
        config *c = cfg_new(MIG_STRATEGY_MIXED, SHARING_TIME_SLICING);
        cfg_share(c, "nvidia.com/mig-1g.5gb", 3, NULL, "0:6");
        _cleanup_(labels_freep) labels *l = NULL;
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/mig-1g.5gb.replicas"), "3");
        assert_string_equal(labels_get(l, "nvidia.com/mig-1g.5gb.product"),
                            "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb-SHARED");
        assert_string_equal(labels_get(l, "nvidia.com/mig-1g.5gb.sharing-strategy"), "time-slicing");
        assert_string_equal(labels_get(l, "nvidia.com/mig-1g.5gb.count"), "7");
        assert_string_equal(labels_get(l, "nvidia.com/mig-3g.20gb.replicas"), "1");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.replicas"), "0");
        cfg_free(c);
        inv_free(inv);
}

static void test_mig_single_partial(void **state)
{
        /* One GPU MIG-enabled, the other not: single cannot describe the node. */
        inventory *inv = a100_node();
        add_mig(&inv->gpus[0], "1g.5gb", 7);
        config *c = cfg_new(MIG_STRATEGY_SINGLE, SHARING_NONE);
        _cleanup_(labels_freep) labels *l = NULL;
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.product"),
                            "NVIDIA-A100-SXM4-40GB-MIG-INVALID");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.count"), "0");
        inv_free(inv);

        /* Both MIG-enabled, one without MIG devices: invalid too. */
        inv = a100_node();
        add_mig(&inv->gpus[1], "1g.5gb", 7);
        inv->gpus[0].mig_enabled = true;
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.product"),
                            "NVIDIA-A100-SXM4-40GB-MIG-INVALID");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.replicas"), "0");
        inv_free(inv);

        /* No GPU MIG-enabled: the whole-GPU labels, plus the strategy. */
        inv = a100_node();
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.product"), "NVIDIA-A100-SXM4-40GB");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.count"), "2");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.replicas"), "1");
        assert_string_equal(labels_get(l, "nvidia.com/mig.strategy"), "single");
        assert_null(labels_get(l, "nvidia.com/gpu.multiprocessors"));
        cfg_free(c);
        inv_free(inv);
}

static void test_mps_with_mig_fails(void **state)
{
        inventory *inv = a100_node();
        add_mig(&inv->gpus[0], "1g.5gb", 7);
        add_mig(&inv->gpus[1], "1g.5gb", 7);
        config *c = cfg_new(MIG_STRATEGY_SINGLE, SHARING_MPS);
        cfg_share(c, "nvidia.com/gpu", 2, NULL, NULL);
        labels *l = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(labels_build(inv, c, "x", TS, &l, &err), -EINVAL);
        assert_null(l);
        assert_non_null(err);
        assert_non_null(strstr(err, "MPS"));
        cfg_free(c);
        inv_free(inv);
}

/* GPU i joins clique `clique` of cluster `uuid` with registration state and status as NVML reports them. */
static void set_fabric(inventory *inv, size_t i, const char *uuid, unsigned clique, unsigned state,
                       int status)
{
        struct gpu_fabric *f = &inv->gpus[i].fabric;
        *f = (struct gpu_fabric){ .supported = true, .state = state, .status = status, .clique_id = clique };
        snprintf(f->cluster_uuid, sizeof f->cluster_uuid, "%s", uuid);
}

#define CLUSTER_A "4c1f2a3b-5d6e-4f70-8a9b-0c1d2e3f4a5b"
#define CLUSTER_B "9e8d7c6b-5a49-4837-a261-5f4e3d2c1b0a"

static void test_gpu_clique(void **state)
{
        inventory *inv = inv_new(4, "NVIDIA GB200", 189471, 10, 0, 0x030200, true, "580.105.08", 13000);
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_NONE);
        _cleanup_(labels_freep) labels *l = NULL;
        _cleanup_free_ char *why = NULL, *clique = NULL, *err = NULL;

        /* no GPU in a fabric (NOT_SUPPORTED): no label */
        assert_null(build_get(inv, c, &l, "nvidia.com/gpu.clique"));
        /* all four in one clique */
        for (size_t i = 0; i < 4; i++)
                set_fabric(inv, i, CLUSTER_A, 32766, 3, 0);
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.clique"), CLUSTER_A ".32766");
        /* GPUs not attached are left out, as go-nvlib's IsFabricAttached leaves them: registration not
         * completed, completed with an error status, or a zero cluster UUID */
        set_fabric(inv, 0, CLUSTER_B, 7, 2, 0);
        set_fabric(inv, 1, CLUSTER_B, 7, 3, 1);
        set_fabric(inv, 2, "", 7, 3, 0);
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.clique"), CLUSTER_A ".32766");
        /* attached GPUs in two cliques of one cluster: no label, and the sentence for the warning */
        set_fabric(inv, 2, CLUSTER_A, 1, 3, 0);
        assert_null(build_get(inv, c, &l, "nvidia.com/gpu.clique"));
        assert_int_equal(labels_gpu_clique(inv, &clique, &why, NULL), 0);
        assert_null(clique);
        assert_string_equal(why,
                            "GPU 2 is in fabric cluster " CLUSTER_A " clique 1, GPU 3 in cluster " CLUSTER_A
                            " clique 32766: the GPUs disagree on the clique ID, so no nvidia.com/gpu.clique "
                            "label");
        why = mfree(why);
        /* or in two clusters */
        set_fabric(inv, 2, CLUSTER_B, 32766, 3, 0);
        assert_int_equal(labels_gpu_clique(inv, &clique, &why, NULL), 0);
        assert_non_null(strstr(why, "disagree on the cluster UUID"));
        /* a GPU whose fabric info cannot be read fails the labels, as upstream's GFD fails */
        snprintf(inv->gpus[1].fabric.error, sizeof inv->gpus[1].fabric.error, "Unknown Error");
        l = labels_free(l);
        assert_int_equal(labels_build(inv, c, "x", TS, &l, &err), -EIO);
        assert_null(l);
        assert_string_equal(err,
                            "error creating IMEX labeler: error checking imex capability: error getting GPU "
                            "Fabric Info: Unknown Error (GPU 1)");
        cfg_free(c);
        inv_free(inv);
}

static void test_bad_driver_version(void **state)
{
        inventory *inv = inv_new(1, "NVIDIA H100 80GB HBM3", 81559, 9, 0, 0x030200, true, "r580", 13000);
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_NONE);
        labels *l = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(labels_build(inv, c, "x", TS, &l, &err), -EINVAL);
        assert_non_null(err);
        assert_non_null(strstr(err, "\"r580\""));
        cfg_free(c);
        inv_free(inv);
}

static void test_several_products(void **state)
{
        /* Upstream: last writer wins. Ours: the product with the most GPUs, ties to the lowest index. */
        inventory *inv =
                inv_new(3, "NVIDIA A100-PCIE-40GB", 40960, 8, 0, 0x030200, true, "580.105.08", 13000);
        snprintf(inv->gpus[0].name, sizeof inv->gpus[0].name, "NVIDIA A100-SXM4-80GB");
        inv->gpus[0].memory_mib = 81920;
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_NONE);
        _cleanup_(labels_freep) labels *l = NULL;
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.product"), "NVIDIA-A100-PCIE-40GB");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.count"), "2");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.memory"), "40960");

        snprintf(inv->gpus[2].name, sizeof inv->gpus[2].name, "NVIDIA L4");
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.product"), "NVIDIA-A100-SXM4-80GB");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.count"), "1");
        assert_string_equal(labels_get(l, "nvidia.com/gpu.memory"), "81920");
        cfg_free(c);
        inv_free(inv);
}

static void test_gpu_mode_and_family(void **state)
{
        inventory *inv = h100_node();
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_NONE);
        _cleanup_(labels_freep) labels *l = NULL;
        inv->gpus[3].pci_class = 0x030000;
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.mode"), "unknown");
        for (size_t i = 0; i < inv->n_gpus; i++)
                inv->gpus[i].pci_class = 0x038000;
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.mode"), "unknown");
        for (size_t i = 0; i < inv->n_gpus; i++)
                inv->gpus[i].pci_class = 0;
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.mode"), "unknown");

        static const struct {
                unsigned major, minor;
                const char *family;
        } fam[] = {
                { 1, 0, "tesla" },        { 2, 1, "fermi" },  { 3, 7, "kepler" },     { 4, 0, "undefined" },
                { 5, 2, "maxwell" },      { 6, 1, "pascal" }, { 7, 0, "volta" },      { 7, 2, "volta" },
                { 7, 5, "turing" },       { 8, 0, "ampere" }, { 8, 6, "ampere" },     { 8, 7, "ampere" },
                { 8, 9, "ada-lovelace" }, { 9, 0, "hopper" }, { 10, 0, "blackwell" }, { 11, 0, "undefined" },
                { 12, 0, "blackwell" },   { 13, 0, "rubin" }, { 14, 0, "undefined" },
        };
        for (size_t k = 0; k < ELEMENTSOF(fam); k++) {
                for (size_t i = 0; i < inv->n_gpus; i++) {
                        inv->gpus[i].cc_major = fam[k].major;
                        inv->gpus[i].cc_minor = fam[k].minor;
                }
                assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.family"), fam[k].family);
        }
        /* CC unknown: no family or compute labels. */
        for (size_t i = 0; i < inv->n_gpus; i++)
                inv->gpus[i].cc_major = inv->gpus[i].cc_minor = 0;
        assert_null(build_get(inv, c, &l, "nvidia.com/gpu.family"));
        assert_null(labels_get(l, "nvidia.com/gpu.compute.major"));
        /* Memory unknown: no memory label. */
        for (size_t i = 0; i < inv->n_gpus; i++)
                inv->gpus[i].memory_mib = 0;
        assert_null(build_get(inv, c, &l, "nvidia.com/gpu.memory"));
        cfg_free(c);
        inv_free(inv);
}

static void test_sanitise(void **state)
{
        char out[64];
        labels_sanitise("  NVIDIA  A100 (SXM4)\t40GB ", out, 63);
        assert_string_equal(out, "NVIDIA-A100-SXM4-40GB");
        labels_sanitise("ProLiant DL380 Gen10+/x", out, 63);
        assert_string_equal(out, "ProLiant-DL380-Gen10x");
        labels_sanitise("-- Standard PC (Q35 + ICH9, 2009) --", out, 63);
        assert_string_equal(out, "Standard-PC-Q35-ICH9-2009");
        labels_sanitise("!!!", out, 63);
        assert_string_equal(out, "");
        /* Longer than a label value allows: cut at 63 and not ending in '-'. */
        labels_sanitise("aaaaaaaaaa bbbbbbbbbb cccccccccc dddddddddd eeeeeeeeee ffffffffff gggggggggg", out,
                        63);
        assert_string_equal(out, "aaaaaaaaaa-bbbbbbbbbb-cccccccccc-dddddddddd-eeeeeeeeee-ffffffff");
        assert_int_equal(strlen(out), 63);
        labels_sanitise("aaaaa bbbbb", out, 6);
        assert_string_equal(out, "aaaaa");
}

static void test_machine_type(void **state)
{
        inventory *inv = h100_node();
        config *c = cfg_new(MIG_STRATEGY_NONE, SHARING_NONE);
        _cleanup_(labels_freep) labels *l = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(labels_build(inv, c, "", TS, &l, &err), 0);
        assert_string_equal(labels_get(l, "nvidia.com/gpu.machine"), "unknown");
        assert_string_equal(build_get(inv, c, &l, "nvidia.com/gpu.machine"), "x");
        cfg_free(c);
        inv_free(inv);
}

static void test_labels_set_sorted(void **state)
{
        _cleanup_(labels_freep) labels *l = NULL;
        _cleanup_free_ char *text = NULL;
        assert_int_equal(labels_new(&l), 0);
        /* "a.b" sorts before "a.b.c" and "a.b-c" before both: by key, not by "key=value" line. */
        assert_int_equal(labels_set(l, "a.b.c", "1"), 0);
        assert_int_equal(labels_set(l, "a.b", "2"), 0);
        assert_int_equal(labels_set(l, "a.b-c", "3"), 0);
        assert_int_equal(labels_set(l, "a.b", "4"), 0);
        assert_int_equal(l->n, 3);
        assert_int_equal(labels_format(l, &text), 0);
        assert_string_equal(text, "a.b=4\na.b-c=3\na.b.c=1\n");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_h100_node),          cmocka_unit_test(test_h100_no_timestamp),
                cmocka_unit_test(test_h100_time_slicing),  cmocka_unit_test(test_h100_time_slicing_renamed),
                cmocka_unit_test(test_h100_mps),           cmocka_unit_test(test_rtx4070ti),
                cmocka_unit_test(test_a100_mig_single),    cmocka_unit_test(test_a100_mig_single_invalid),
                cmocka_unit_test(test_a100_mig_mixed),     cmocka_unit_test(test_no_gpus),
                cmocka_unit_test(test_per_gpu_sharing),    cmocka_unit_test(test_sharing_from_config_file),
                cmocka_unit_test(test_mig_mixed_sharing),  cmocka_unit_test(test_mig_single_partial),
                cmocka_unit_test(test_mps_with_mig_fails), cmocka_unit_test(test_bad_driver_version),
                cmocka_unit_test(test_several_products),   cmocka_unit_test(test_gpu_mode_and_family),
                cmocka_unit_test(test_sanitise),           cmocka_unit_test(test_machine_type),
                cmocka_unit_test(test_labels_set_sorted),  cmocka_unit_test(test_gpu_clique),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
