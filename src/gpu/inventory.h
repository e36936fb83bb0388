/* SPDX-License-Identifier: Apache-2.0 */
/* The node's GPUs, read once from NVML (and sysfs) into an immutable snapshot. Everything after
 * start-up (plan, Allocate, preferred allocation, labels, info) reads this, never NVML. */
#pragma once

#include <stdint.h>

#include "base/macro.h"

typedef struct nvml nvml;

/* PCIe distance between two GPUs, as NVML's nvmlGpuTopologyLevel_t. */
enum pcie_level {
        PCIE_LEVEL_INTERNAL = 0,    /* same board */
        PCIE_LEVEL_SINGLE = 10,     /* one PCIe switch */
        PCIE_LEVEL_MULTIPLE = 20,   /* several PCIe switches */
        PCIE_LEVEL_HOSTBRIDGE = 30, /* same host bridge */
        PCIE_LEVEL_NODE = 40,       /* same NUMA node / CPU */
        PCIE_LEVEL_SYSTEM = 50,     /* across CPUs */
        PCIE_LEVEL_UNKNOWN = -1,
};

struct gpu_link {
        unsigned nvlinks; /* active NVLinks between the two GPUs (through NVSwitch counts) */
        enum pcie_level pcie_level;
};

struct mig_device {
        unsigned index;        /* enumeration position on the parent (upstream's "<gpu>:<mig>" index) */
        unsigned parent;       /* index of the parent in inventory.gpus */
        char uuid[96];         /* "MIG-..." */
        unsigned gi_id, ci_id; /* GPU instance / compute instance ids */
        char profile[32];      /* "1g.5gb", "1g.10gb+me": upstream's profile string, '+' kept */
        uint64_t memory_mib;
        unsigned multiprocessors;
        unsigned slices_gi, slices_ci;
        unsigned engines_copy, engines_decoder, engines_encoder, engines_jpeg, engines_ofa;
        /* Minors of /dev/nvidia-caps/nvidia-cap<N> for gpu<minor>/gi<gi>/access and
         * gpu<minor>/gi<gi>/ci<ci>/access, from mig-minors; -1 when unknown. */
        int gi_cap_minor, ci_cap_minor;
};

/* The GPU's place in a multi-node NVLink fabric (nvmlDeviceGetGpuFabricInfo), read as go-nvlib reads it. */
struct gpu_fabric {
        bool supported; /* false: NOT_SUPPORTED (no fabric, an older driver or library) */
        char error[96]; /* the call failed otherwise: NVML's error string; "" when it answered */
        unsigned state; /* NVML_GPU_FABRIC_STATE_*: 0 not supported .. 3 completed */
        int status;     /* the GPU's registration with the fabric manager (nvmlReturn_t), once completed */
        char cluster_uuid[40]; /* "4c1f2a3b-5d6e-4f70-8a9b-0c1d2e3f4a5b", lower case; "" when all zero */
        unsigned clique_id;
};

/* Whether the GPU is in a fabric clique as go-nvlib's IsFabricAttached says: registration completed
 * successfully with a cluster UUID that is not zero. */
bool gpu_fabric_attached(const struct gpu_fabric *f);

struct gpu {
        unsigned index;        /* NVML index */
        unsigned minor;        /* /dev/nvidia<minor> */
        char uuid[96];         /* "GPU-..." */
        char name[96];         /* "NVIDIA H100 80GB HBM3" */
        char brand[32];        /* "nvidia", "geforce", "tesla", ... lower case; "" unknown */
        char architecture[32]; /* "hopper", "ampere", ... lower case; "" unknown */
        uint64_t memory_mib;
        char bus_id[32];    /* "0000:3b:00.0": lower case, domain trimmed to 4 digits */
        uint32_t pci_class; /* 0x030200 style from sysfs "class" (0 unknown) */
        int numa_node;      /* -1: none (sysfs says -1 or has no file) */
        unsigned cc_major, cc_minor;
        bool mig_capable, mig_enabled;
        struct mig_device *mig; /* when mig_enabled */
        size_t n_mig;
        struct gpu_fabric fabric;
};

typedef struct inventory {
        char driver_version[80]; /* "580.105.08" */
        int cuda_driver_version; /* nvmlSystemGetCudaDriverVersion: 13000 = 13.0 */
        char nvml_version[80];
        struct gpu *gpus;
        size_t n_gpus;
        struct gpu_link *links; /* n_gpus * n_gpus, links[a * n_gpus + b]; diagonal unused */
        /* <root>/proc/driver/nvidia-caps/mig-minors, read when there are MIG devices (NULL otherwise), and
         * why it could not be read (-errno; 0: read). */
        char *mig_minors_path;
        int mig_minors_error;
} inventory;

/* Reads everything from a loaded NVML. root is the host filesystem root whose sys/ is read for
 * NUMA node and PCI class and proc/ for the MIG capability minors: "/" normally, a fixture tree in tests.
 * On failure returns <0 and, when ret_error is given, a sentence for a person. */
int inventory_load(const nvml *n, const char *root, inventory **ret, char **ret_error);
inventory *inventory_free(inventory *inv);
/* Sets gi_cap_minor/ci_cap_minor of every MIG device from <root>/proc/driver/nvidia-caps/mig-minors (-1
 * where it has no entry) and records the path and read error (an unreadable file is not a failure here:
 * the plan names it when it needs a minor). Only -ENOMEM fails. Part of inventory_load. */
int inventory_read_mig_minors(inventory *inv, const char *root);
DEFINE_TRIVIAL_CLEANUP_FUNC(inventory *, inventory_free);
/* "/dev/nvidia-caps/nvidia-cap<N>" of MIG device m's GPU instance (ci false) or compute instance (ci
 * true) on gpu. -ENOENT with a sentence naming mig-minors when the minor is unknown (the file could not
 * be read, or has no such entry). */
int mig_device_cap_path(const inventory *inv, const struct gpu *gpu, const struct mig_device *m, bool ci,
                        char **ret, char **ret_error);

/* Whether two readings of the node hold the same devices: the same GPUs (UUID, minor, PCI address, MIG
 * mode) with the same MIG devices (UUID, position, instances, profile, capability minors). What a rescan
 * compares: a changed MIG layout differs, a second reading of an unchanged node does not. */
bool inventory_same_devices(const inventory *a, const inventory *b);
/* MIG devices on all GPUs. */
size_t inventory_mig_devices(const inventory *inv);

static inline const struct gpu_link *inventory_link(const inventory *inv, size_t a, size_t b)
{
        return &inv->links[a * inv->n_gpus + b];
}

/* Upstream's pair score (go-gpuallocator): NVLinks 100 each, else SameBoard 60, SingleSwitch 50,
 * MultiSwitch 40, HostBridge 30, SameCPU 20, CrossCPU 10, unknown 0. */
unsigned gpu_link_score(const struct gpu_link *l);

/* "0000:3B:00.0" or "00000000:3B:00.0" -> "0000:3b:00.0". -EINVAL when it is not a PCI address. */
int pci_bus_id_normalize(const char *in, char *out, size_t size);
/* Reads <root>/sys/bus/pci/devices/<bus_id>/numa_node: -1 when missing or negative. */
int pci_read_numa_node(const char *root, const char *bus_id);
/* Reads <root>/sys/bus/pci/devices/<bus_id>/class ("0x030200"): 0 when missing or unparsable. */
uint32_t pci_read_class(const char *root, const char *bus_id);

/* go-nvlib's MIG profile name: "<G>g.<GB>gb" when the compute instance spans the GPU instance, else
 * "<C>c.<G>g.<GB>gb", plus "+me", "+me.all", "+gfx" or "-me" from the GPU instance profile id.
 * GB rounds the instance's share of the parent's memory up to eighths, times the parent's size in
 * whole GiB (rounded up): a 4864 MiB slice of a 40960 MiB A100 is "1g.5gb". */
int mig_profile_name(unsigned gi_slices, unsigned ci_slices, unsigned gi_profile_id, uint64_t memory_mib,
                     uint64_t parent_memory_bytes, char *out, size_t size);
