/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>

#include "base/error.h"
#include "gpu/inventory.h"
#include "nvml/nvml.h"

#define MIB (1024ULL * 1024)
/* NVML reports at most a few dozen GPUs and 7 MIG devices per GPU; refuse absurd counts from a
 * broken library rather than allocating for them. */
#define INVENTORY_MAX_GPUS 256
#define INVENTORY_MAX_MIG  64

unsigned gpu_link_score(const struct gpu_link *l)
{
        if (l->nvlinks > 0)
                return 100 * l->nvlinks;
        switch (l->pcie_level) {
        case PCIE_LEVEL_INTERNAL: return 60;
        case PCIE_LEVEL_SINGLE: return 50;
        case PCIE_LEVEL_MULTIPLE: return 40;
        case PCIE_LEVEL_HOSTBRIDGE: return 30;
        case PCIE_LEVEL_NODE: return 20;
        case PCIE_LEVEL_SYSTEM: return 10;
        default: return 0;
        }
}

static bool same_mig(const struct mig_device *a, const struct mig_device *b)
{
        return streq(a->uuid, b->uuid) && a->index == b->index && a->gi_id == b->gi_id &&
               a->ci_id == b->ci_id && streq(a->profile, b->profile) && a->gi_cap_minor == b->gi_cap_minor &&
               a->ci_cap_minor == b->ci_cap_minor;
}

bool inventory_same_devices(const inventory *a, const inventory *b)
{
        if (a->n_gpus != b->n_gpus)
                return false;
        for (size_t i = 0; i < a->n_gpus; i++) {
                const struct gpu *x = &a->gpus[i], *y = &b->gpus[i];
                if (!streq(x->uuid, y->uuid) || x->minor != y->minor || !streq(x->bus_id, y->bus_id) ||
                    x->mig_enabled != y->mig_enabled || x->n_mig != y->n_mig)
                        return false;
                for (size_t j = 0; j < x->n_mig; j++)
                        if (!same_mig(&x->mig[j], &y->mig[j]))
                                return false;
        }
        return true;
}

size_t inventory_mig_devices(const inventory *inv)
{
        size_t n = 0;
        for (size_t i = 0; inv && i < inv->n_gpus; i++)
                n += inv->gpus[i].n_mig;
        return n;
}

inventory *inventory_free(inventory *inv)
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

static const char *brand_name(nvmlBrandType_t b)
{
        static const char *const names[NVML_BRAND_COUNT] = {
                [NVML_BRAND_QUADRO] = "quadro",
                [NVML_BRAND_TESLA] = "tesla",
                [NVML_BRAND_NVS] = "nvs",
                [NVML_BRAND_GRID] = "grid",
                [NVML_BRAND_GEFORCE] = "geforce",
                [NVML_BRAND_TITAN] = "titan",
                [NVML_BRAND_NVIDIA_VAPPS] = "nvidia-vapps",
                [NVML_BRAND_NVIDIA_VPC] = "nvidia-vpc",
                [NVML_BRAND_NVIDIA_VCS] = "nvidia-vcs",
                [NVML_BRAND_NVIDIA_VWS] = "nvidia-vws",
                [NVML_BRAND_NVIDIA_CLOUD_GAMING] = "nvidia-cloud-gaming",
                [NVML_BRAND_QUADRO_RTX] = "quadro-rtx",
                [NVML_BRAND_NVIDIA_RTX] = "nvidia-rtx",
                [NVML_BRAND_NVIDIA] = "nvidia",
                [NVML_BRAND_GEFORCE_RTX] = "geforce-rtx",
                [NVML_BRAND_TITAN_RTX] = "titan-rtx",
        };
        return b < NVML_BRAND_COUNT && names[b] ? names[b] : "";
}

static const char *architecture_name(nvmlDeviceArchitecture_t a)
{
        switch (a) {
        case NVML_DEVICE_ARCH_KEPLER: return "kepler";
        case NVML_DEVICE_ARCH_MAXWELL: return "maxwell";
        case NVML_DEVICE_ARCH_PASCAL: return "pascal";
        case NVML_DEVICE_ARCH_VOLTA: return "volta";
        case NVML_DEVICE_ARCH_TURING: return "turing";
        case NVML_DEVICE_ARCH_AMPERE: return "ampere";
        case NVML_DEVICE_ARCH_ADA: return "ada";
        case NVML_DEVICE_ARCH_HOPPER: return "hopper";
        case NVML_DEVICE_ARCH_BLACKWELL: return "blackwell";
        default: return "";
        }
}

/* The profile the way go-nvlib finds it: the GPU instance's profile id among the GPU instance
 * profiles, the compute instance's among the compute instance profiles (shared engines); the size is
 * the MIG device's own memory (its attributes), as go-nvlib's GetProfile uses. */
static int mig_lookup_profile(const nvml *n, nvmlDevice_t parent, struct mig_device *m,
                              uint64_t parent_bytes)
{
        nvmlGpuInstance_t gi;
        nvmlComputeInstance_t ci;
        nvmlGpuInstanceInfo_t gi_info = {};
        nvmlComputeInstanceInfo_t ci_info = {};

        if (!n->DeviceGetGpuInstanceById || !n->GpuInstanceGetInfo ||
            !n->GpuInstanceGetComputeInstanceById || !n->ComputeInstanceGetInfo_v2 ||
            !n->DeviceGetGpuInstanceProfileInfo || !n->GpuInstanceGetComputeInstanceProfileInfo)
                return -EOPNOTSUPP;
        if (n->DeviceGetGpuInstanceById(parent, m->gi_id, &gi) != NVML_SUCCESS ||
            n->GpuInstanceGetInfo(gi, &gi_info) != NVML_SUCCESS ||
            n->GpuInstanceGetComputeInstanceById(gi, m->ci_id, &ci) != NVML_SUCCESS ||
            n->ComputeInstanceGetInfo_v2(ci, &ci_info) != NVML_SUCCESS)
                return -EIO;

        for (unsigned i = 0; i < NVML_GPU_INSTANCE_PROFILE_COUNT; i++) {
                nvmlGpuInstanceProfileInfo_t gp = {};
                if (n->DeviceGetGpuInstanceProfileInfo(parent, i, &gp) != NVML_SUCCESS ||
                    gp.id != gi_info.profileId)
                        continue;
                for (unsigned j = 0; j < NVML_COMPUTE_INSTANCE_PROFILE_COUNT; j++) {
                        nvmlComputeInstanceProfileInfo_t cp = {};
                        if (n->GpuInstanceGetComputeInstanceProfileInfo(
                                    gi, j, NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &cp) !=
                                    NVML_SUCCESS ||
                            cp.id != ci_info.profileId)
                                continue;
                        return mig_profile_name(gp.sliceCount, cp.sliceCount, i, m->memory_mib, parent_bytes,
                                                m->profile, sizeof(m->profile));
                }
        }
        return -ENOENT;
}

static int load_mig(const nvml *n, nvmlDevice_t dev, struct gpu *g, uint64_t parent_bytes, char **ret_error)
{
        unsigned max = 0;
        nvmlReturn_t r;

        if (!n->DeviceGetMaxMigDeviceCount || !n->DeviceGetMigDeviceHandleByIndex ||
            !n->DeviceGetGpuInstanceId || !n->DeviceGetComputeInstanceId || !n->DeviceGetAttributes_v2)
                return error_set(ret_error, -EIO,
                                 "GPU %u has MIG enabled but the NVML library lacks the MIG calls.",
                                 g->index);
        r = n->DeviceGetMaxMigDeviceCount(dev, &max);
        if (r != NVML_SUCCESS)
                return error_set(ret_error, -EIO, "GPU %u: nvmlDeviceGetMaxMigDeviceCount failed: %s.",
                                 g->index, nvml_strerror(n, r));
        max = MIN(max, INVENTORY_MAX_MIG);
        if (max == 0)
                return 0;
        g->mig = new0(struct mig_device, max);
        if (!g->mig)
                return -ENOMEM;

        for (unsigned j = 0; j < max; j++) {
                nvmlDevice_t md;
                r = n->DeviceGetMigDeviceHandleByIndex(dev, j, &md);
                if (r == NVML_ERROR_NOT_FOUND || r == NVML_ERROR_INVALID_ARGUMENT)
                        continue;
                if (r != NVML_SUCCESS)
                        return error_set(ret_error, -EIO,
                                         "GPU %u: nvmlDeviceGetMigDeviceHandleByIndex(%u) failed: %s.",
                                         g->index, j, nvml_strerror(n, r));
                struct mig_device *m = &g->mig[g->n_mig];
                nvmlDeviceAttributes_t a = {};
                m->index = j;
                m->parent = g->index;
                /* the message names the call that failed, as every other inventory error does */
                const char *call = NULL;
                if ((r = n->DeviceGetUUID(md, m->uuid, sizeof(m->uuid))) != NVML_SUCCESS)
                        call = "nvmlDeviceGetUUID";
                else if ((r = n->DeviceGetGpuInstanceId(md, &m->gi_id)) != NVML_SUCCESS)
                        call = "nvmlDeviceGetGpuInstanceId";
                else if ((r = n->DeviceGetComputeInstanceId(md, &m->ci_id)) != NVML_SUCCESS)
                        call = "nvmlDeviceGetComputeInstanceId";
                else if ((r = n->DeviceGetAttributes_v2(md, &a)) != NVML_SUCCESS)
                        call = "nvmlDeviceGetAttributes_v2";
                if (call)
                        return error_set(ret_error, -EIO, "GPU %u: MIG device %u: %s failed: %s.", g->index,
                                         j, call, nvml_strerror(n, r));
                m->memory_mib = a.memorySizeMB;
                m->multiprocessors = a.multiprocessorCount;
                m->slices_gi = a.gpuInstanceSliceCount;
                m->slices_ci = a.computeInstanceSliceCount;
                m->engines_copy = a.sharedCopyEngineCount;
                m->engines_decoder = a.sharedDecoderCount;
                m->engines_encoder = a.sharedEncoderCount;
                m->engines_jpeg = a.sharedJpegCount;
                m->engines_ofa = a.sharedOfaCount;
                /* Without the instance calls, name it from the attributes (no "+me"-style suffix). */
                if (mig_lookup_profile(n, dev, m, parent_bytes) < 0 &&
                    mig_profile_name(m->slices_gi, m->slices_ci, 0, m->memory_mib, parent_bytes, m->profile,
                                     sizeof(m->profile)) < 0)
                        m->profile[0] = '\0';
                g->n_mig++;
        }
        return 0;
}

bool gpu_fabric_attached(const struct gpu_fabric *f)
{
        return f->supported && !f->error[0] && f->state == NVML_GPU_FABRIC_STATE_COMPLETED &&
               f->status == NVML_SUCCESS && f->cluster_uuid[0];
}

/* Fabric membership, with go-nvlib's preference: the unversioned call where the library has it, else the
 * versioned one at version 2. Never fails the inventory: an error is recorded (GFD fails on it, as
 * upstream's GFD does; the plugin has no use for it). */
static void load_fabric(const nvml *n, nvmlDevice_t dev, struct gpu_fabric *f)
{
        nvmlGpuFabricInfo_v2_t v = { .version = nvmlGpuFabricInfo_v2 };
        nvmlReturn_t r = NVML_ERROR_NOT_SUPPORTED;
        if (n->DeviceGetGpuFabricInfo) {
                nvmlGpuFabricInfo_t v1 = {};
                r = n->DeviceGetGpuFabricInfo(dev, &v1);
                memcpy(v.clusterUuid, v1.clusterUuid, sizeof(v.clusterUuid));
                v.status = v1.status;
                v.cliqueId = v1.cliqueId;
                v.state = v1.state;
        } else if (n->DeviceGetGpuFabricInfoV)
                r = n->DeviceGetGpuFabricInfoV(dev, &v);
        *f = (struct gpu_fabric){ .supported = r != NVML_ERROR_NOT_SUPPORTED };
        if (r != NVML_SUCCESS) {
                if (f->supported)
                        snprintf(f->error, sizeof(f->error), "%s", nvml_strerror(n, r));
                return;
        }
        f->state = v.state;
        f->status = v.status;
        f->clique_id = v.cliqueId;
        static const unsigned char zero[NVML_GPU_FABRIC_UUID_LEN];
        if (memcmp(v.clusterUuid, zero, sizeof(zero)) == 0)
                return;
        const unsigned char *u = v.clusterUuid;
        snprintf(f->cluster_uuid, sizeof(f->cluster_uuid),
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
                 u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static int load_gpu(const nvml *n, const char *root, unsigned index, nvmlDevice_t dev, struct gpu *g,
                    uint64_t *ret_bytes, char **ret_error)
{
        nvmlPciInfo_t pci = {};
        nvmlMemory_t mem = {};
        nvmlBrandType_t brand = NVML_BRAND_UNKNOWN;
        int major = 0, minor = 0;
        nvmlReturn_t r;
        const char *what;

        g->index = index;
        if ((r = n->DeviceGetUUID(dev, g->uuid, sizeof(g->uuid))) != NVML_SUCCESS) {
                what = "nvmlDeviceGetUUID";
                goto fail;
        }
        if ((r = n->DeviceGetName(dev, g->name, sizeof(g->name))) != NVML_SUCCESS) {
                what = "nvmlDeviceGetName";
                goto fail;
        }
        if ((r = n->DeviceGetMinorNumber(dev, &g->minor)) != NVML_SUCCESS) {
                what = "nvmlDeviceGetMinorNumber";
                goto fail;
        }
        if ((r = n->DeviceGetPciInfo_v3(dev, &pci)) != NVML_SUCCESS) {
                what = "nvmlDeviceGetPciInfo_v3";
                goto fail;
        }
        if ((r = n->DeviceGetMemoryInfo(dev, &mem)) != NVML_SUCCESS) {
                what = "nvmlDeviceGetMemoryInfo";
                goto fail;
        }
        if ((r = n->DeviceGetCudaComputeCapability(dev, &major, &minor)) != NVML_SUCCESS) {
                what = "nvmlDeviceGetCudaComputeCapability";
                goto fail;
        }
        pci.busId[sizeof(pci.busId) - 1] = '\0';
        if (pci_bus_id_normalize(pci.busId, g->bus_id, sizeof(g->bus_id)) < 0)
                return error_set(ret_error, -EIO, "GPU %u (%s): NVML gave an invalid PCI bus id '%s'.",
                                 index, g->uuid, pci.busId);
        g->memory_mib = mem.total / MIB;
        *ret_bytes = mem.total;
        g->cc_major = (unsigned)MAX(major, 0);
        g->cc_minor = (unsigned)MAX(minor, 0);
        g->numa_node = pci_read_numa_node(root, g->bus_id);
        g->pci_class = pci_read_class(root, g->bus_id);

        /* Descriptive only: an old driver without these still gives a usable inventory. */
        if (n->DeviceGetBrand(dev, &brand) == NVML_SUCCESS)
                snprintf(g->brand, sizeof(g->brand), "%s", brand_name(brand));
        nvmlDeviceArchitecture_t arch;
        if (n->DeviceGetArchitecture && n->DeviceGetArchitecture(dev, &arch) == NVML_SUCCESS)
                snprintf(g->architecture, sizeof(g->architecture), "%s", architecture_name(arch));
        load_fabric(n, dev, &g->fabric);

        unsigned current = 0, pending = 0;
        if (n->DeviceGetMigMode) {
                r = n->DeviceGetMigMode(dev, &current, &pending);
                if (r == NVML_SUCCESS) {
                        g->mig_capable = true;
                        g->mig_enabled = current == NVML_DEVICE_MIG_ENABLE;
                } else if (r != NVML_ERROR_NOT_SUPPORTED) {
                        what = "nvmlDeviceGetMigMode";
                        goto fail;
                }
        }
        if (g->mig_enabled)
                return load_mig(n, dev, g, mem.total, ret_error);
        return 0;

fail:
        return error_set(ret_error, -EIO, "GPU %u: %s failed: %s.", index, what, nvml_strerror(n, r));
}

/* NVLinks per pair: links whose remote end is the other GPU, plus, through NVSwitch, the number of
 * switch links both GPUs have (every GPU on the switch fabric reaches every other at that width). */
static void load_links(const nvml *n, inventory *inv, nvmlDevice_t *devs)
{
        size_t ng = inv->n_gpus;
        _cleanup_free_ unsigned *switch_links = new0(unsigned, ng ? ng : 1);

        for (size_t a = 0; a < ng; a++)
                for (size_t b = 0; b < ng; b++) {
                        struct gpu_link *l = &inv->links[a * ng + b];
                        nvmlGpuTopologyLevel_t level;
                        l->pcie_level = PCIE_LEVEL_UNKNOWN;
                        if (a == b)
                                l->pcie_level = PCIE_LEVEL_INTERNAL;
                        else if (n->DeviceGetTopologyCommonAncestor &&
                                 n->DeviceGetTopologyCommonAncestor(devs[a], devs[b], &level) ==
                                         NVML_SUCCESS)
                                l->pcie_level = (enum pcie_level)level;
                }

        if (!switch_links || !n->DeviceGetNvLinkState || !n->DeviceGetNvLinkRemotePciInfo_v2)
                return;

        for (size_t a = 0; a < ng; a++)
                for (unsigned link = 0; link < NVML_NVLINK_MAX_LINKS; link++) {
                        nvmlEnableState_t active;
                        nvmlIntNvLinkDeviceType_t type = NVML_NVLINK_DEVICE_TYPE_UNKNOWN;
                        nvmlPciInfo_t pci = {};
                        char bus[32];
                        if (n->DeviceGetNvLinkState(devs[a], link, &active) != NVML_SUCCESS ||
                            active != NVML_FEATURE_ENABLED)
                                continue;
                        if (n->DeviceGetNvLinkRemoteDeviceType &&
                            n->DeviceGetNvLinkRemoteDeviceType(devs[a], link, &type) != NVML_SUCCESS)
                                type = NVML_NVLINK_DEVICE_TYPE_UNKNOWN;
                        /* On NVSwitch systems the remote "PCI address" of a switch link is a placeholder
                         * (an HGX H200 with driver 580 answers FFFFFFFF:FF:FF.0): trust the type. */
                        if (type == NVML_NVLINK_DEVICE_TYPE_SWITCH) {
                                switch_links[a]++;
                                continue;
                        }
                        if (n->DeviceGetNvLinkRemotePciInfo_v2(devs[a], link, &pci) != NVML_SUCCESS)
                                continue;
                        pci.busId[sizeof(pci.busId) - 1] = '\0';
                        if (pci_bus_id_normalize(pci.busId, bus, sizeof(bus)) < 0)
                                bus[0] = '\0'; /* a placeholder such as FFFFFFFF:FF:FF.0: no GPU */
                        size_t b;
                        for (b = 0; b < ng; b++)
                                if (b != a && streq(inv->gpus[b].bus_id, bus))
                                        break;
                        if (b < ng)
                                inv->links[a * ng + b].nvlinks++;
                        else if (type == NVML_NVLINK_DEVICE_TYPE_UNKNOWN)
                                /* An older driver without the type call: a link to no GPU we know is
                                 * taken for a switch link. */
                                switch_links[a]++;
                }

        for (size_t a = 0; a < ng; a++)
                for (size_t b = 0; b < ng; b++)
                        if (a != b && inv->links[a * ng + b].nvlinks == 0)
                                inv->links[a * ng + b].nvlinks = MIN(switch_links[a], switch_links[b]);
}

/* A function, not new0() inline: cppcheck does not see _cleanup_ and would call every return a leak. */
static inventory *inventory_new(void)
{
        return new0(inventory, 1);
}

int inventory_load(const nvml *n, const char *root, inventory **ret, char **ret_error)
{
        nvmlReturn_t r;
        unsigned count = 0;

        _cleanup_(inventory_freep) inventory *inv = inventory_new();
        if (!inv)
                return -ENOMEM;

        if ((r = n->SystemGetDriverVersion(inv->driver_version, sizeof(inv->driver_version))) !=
            NVML_SUCCESS)
                return error_set(ret_error, -EIO, "nvmlSystemGetDriverVersion failed: %s.",
                                 nvml_strerror(n, r));
        if ((r = n->SystemGetCudaDriverVersion(&inv->cuda_driver_version)) != NVML_SUCCESS)
                return error_set(ret_error, -EIO, "nvmlSystemGetCudaDriverVersion failed: %s.",
                                 nvml_strerror(n, r));
        if (n->SystemGetNVMLVersion(inv->nvml_version, sizeof(inv->nvml_version)) != NVML_SUCCESS)
                inv->nvml_version[0] = '\0';
        if ((r = n->DeviceGetCount_v2(&count)) != NVML_SUCCESS)
                return error_set(ret_error, -EIO, "nvmlDeviceGetCount_v2 failed: %s.", nvml_strerror(n, r));
        if (count > INVENTORY_MAX_GPUS)
                return error_set(ret_error, -EIO, "NVML reports %u GPUs, more than the %u supported.", count,
                                 INVENTORY_MAX_GPUS);

        _cleanup_free_ nvmlDevice_t *devs = new0(nvmlDevice_t, count ? count : 1);
        inv->gpus = new0(struct gpu, count ? count : 1);
        inv->links = new0(struct gpu_link, count ? (size_t)count * count : 1);
        if (!devs || !inv->gpus || !inv->links)
                return -ENOMEM;

        for (unsigned i = 0; i < count; i++) {
                uint64_t bytes = 0;
                int k;
                if ((r = n->DeviceGetHandleByIndex_v2(i, &devs[i])) != NVML_SUCCESS)
                        return error_set(ret_error, -EIO,
                                         "GPU %u: nvmlDeviceGetHandleByIndex_v2 failed: %s.", i,
                                         nvml_strerror(n, r));
                /* Count it before filling it in, so a failure frees its MIG array too. */
                inv->n_gpus = i + 1;
                k = load_gpu(n, root, i, devs[i], &inv->gpus[i], &bytes, ret_error);
                if (k < 0)
                        return k;
        }
        load_links(n, inv, devs);
        int k = inventory_read_mig_minors(inv, root);
        if (k < 0)
                return k;

        *ret = TAKE_PTR(inv);
        return 0;
}
