/* SPDX-License-Identifier: Apache-2.0 */
/* The simulated NVML: a node described by a YAML fixture (docs/mock-nvml.md). Shared between the
 * fixture reader (fixture.c) and the exported NVML calls (nvml-mock.c). */
#pragma once

#include <stdint.h>

#include "nvml/nvml.h"

#define MOCK_MAX_GPUS     64 /* event sets keep a 64-bit device mask */
#define MOCK_MAX_MIG      7
#define MOCK_MAX_PROFILES NVML_GPU_INSTANCE_PROFILE_COUNT

enum mock_handle_kind { MOCK_GPU = 1, MOCK_MIG = 2 };

struct mock_gpu;
struct mock_mig;

/* The opaque NVML handle types are ours to define: a handle points into the fixture. */
struct nvmlDevice_st {
        enum mock_handle_kind kind;
        struct mock_gpu *gpu; /* the GPU, or a MIG device's parent */
        struct mock_mig *mig; /* MOCK_MIG only */
};
struct nvmlGpuInstance_st {
        struct mock_mig *mig;
};
struct nvmlComputeInstance_st {
        struct mock_mig *mig;
};

struct mock_profile {
        unsigned id;         /* NVML_GPU_INSTANCE_PROFILE_* index: the "profile" argument */
        unsigned profile_id; /* what NVML reports as the profile's id (nvidia-smi's ID column) */
        unsigned slices, instances, multiprocessors;
        unsigned copy_engines, decoders, encoders, jpeg, ofa;
        uint64_t memory_mib;
};

struct mock_mig {
        struct nvmlDevice_st dev;
        struct nvmlGpuInstance_st gi;
        struct nvmlComputeInstance_st ci;
        char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        unsigned gi_id, ci_id;
        const struct mock_profile *profile; /* GPU instance profile */
        unsigned ci_profile, ci_slices;
};

struct mock_nvlink {
        char remote[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE]; /* NVML form: "00000000:1B:00.0" */
        nvmlIntNvLinkDeviceType_t type;
};

/* nvml.h's nvmlGpuFabricInfo_v3_t, which only the mock needs (src/nvml/nvml.h declares _t and _v2_t):
 * _v2_t plus the health summary. */
#define MOCK_FABRIC_UUID_LEN NVML_GPU_FABRIC_UUID_LEN
typedef struct {
        unsigned int version;
        unsigned char clusterUuid[MOCK_FABRIC_UUID_LEN];
        nvmlReturn_t status;
        unsigned int cliqueId;
        unsigned char state;
        unsigned int healthMask;
        unsigned char healthSummary;
} mock_fabric_info_v3_t;
#define MOCK_FABRIC_INFO_V3         ((unsigned)sizeof(mock_fabric_info_v3_t) | (3u << 24))
#define MOCK_FABRIC_STATE_COMPLETED NVML_GPU_FABRIC_STATE_COMPLETED

/* A GPU's place in a multi-node NVLink fabric (GB200 NVL72 and the like). */
struct mock_fabric {
        bool present; /* false: nvmlDeviceGetGpuFabricInfo(V) answers NOT_SUPPORTED */
        unsigned char cluster_uuid[MOCK_FABRIC_UUID_LEN];
        unsigned clique_id;
        unsigned state;  /* NVML_GPU_FABRIC_STATE_*: 0 not supported .. 3 completed */
        unsigned status; /* an nvmlReturn_t, meaningful once completed */
};

struct mock_gpu {
        struct nvmlDevice_st dev;
        unsigned index, minor;
        char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
        char bus_id[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
        unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
        uint64_t memory_mib;
        nvmlBrandType_t brand;
        nvmlDeviceArchitecture_t architecture;
        int cc_major, cc_minor;
        bool mig_capable, mig_enabled;
        char board[32], pcie_switch[32], host_bridge[32];
        int cpu;
        struct mock_nvlink nvlinks[NVML_NVLINK_MAX_LINKS];
        unsigned n_nvlinks;
        struct mock_profile profiles[MOCK_MAX_PROFILES];
        unsigned n_profiles;
        struct mock_mig mig[MOCK_MAX_MIG];
        unsigned n_mig;
        struct mock_fabric fabric;
        int lost; /* set by a "lost" event line; read with __atomic */
};

struct mock_node {
        char driver_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
        char nvml_version[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE];
        int cuda_driver_version;
        struct mock_gpu *gpus;
        unsigned n_gpus;
};

/* Compute instance profile id -> slices (NVML_COMPUTE_INSTANCE_PROFILE_*). */
/* Internal to the mock: hidden so they never clash with a client's own symbols. */
#define MOCK_INTERNAL __attribute__((visibility("hidden")))

MOCK_INTERNAL unsigned mock_ci_profile_slices(unsigned ci_profile);

/* Reads the fixture; on failure returns <0 and sets *ret_error to one line naming file, line and key. */
MOCK_INTERNAL int mock_fixture_load(const char *path, struct mock_node **ret, char **ret_error);
MOCK_INTERNAL void mock_fixture_free(struct mock_node *node);

/* MOCK_NVML_FAIL / MOCK_NVML_TRACE (failpoint.c): NVML_SUCCESS, or the error the named call answers now. */
MOCK_INTERNAL nvmlReturn_t mock_fail_point(const char *call);
/* First statement of every exported call that returns nvmlReturn_t. */
#define MOCK_FAIL_POINT()                                                                                   \
        do {                                                                                                \
                nvmlReturn_t fail_ = mock_fail_point(__func__);                                             \
                if (fail_ != NVML_SUCCESS)                                                                  \
                        return fail_;                                                                       \
        } while (0)
