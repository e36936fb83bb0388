/* SPDX-License-Identifier: Apache-2.0 */
/* Our own declarations of the part of NVML we use (types, constants, entry points), and the typed
 * function table every caller goes through. Values follow NVIDIA's published NVML API reference;
 * the layout of each struct must match the driver's exactly, because it crosses the dlopen boundary. */
#pragma once

#include <stdint.h>

#include "nvml/nvml-loader.h"

typedef int nvmlReturn_t;
enum {
        NVML_SUCCESS = 0,
        NVML_ERROR_UNINITIALIZED = 1,
        NVML_ERROR_INVALID_ARGUMENT = 2,
        NVML_ERROR_NOT_SUPPORTED = 3,
        NVML_ERROR_NO_PERMISSION = 4,
        NVML_ERROR_ALREADY_INITIALIZED = 5,
        NVML_ERROR_NOT_FOUND = 6,
        NVML_ERROR_INSUFFICIENT_SIZE = 7,
        NVML_ERROR_DRIVER_NOT_LOADED = 9,
        NVML_ERROR_TIMEOUT = 10,
        NVML_ERROR_LIBRARY_NOT_FOUND = 12,
        NVML_ERROR_FUNCTION_NOT_FOUND = 13,
        NVML_ERROR_GPU_IS_LOST = 15,
        NVML_ERROR_MEMORY = 20,
        NVML_ERROR_NO_DATA = 21,
        NVML_ERROR_UNKNOWN = 999,
};

typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlEventSet_st *nvmlEventSet_t;
typedef struct nvmlGpuInstance_st *nvmlGpuInstance_t;
typedef struct nvmlComputeInstance_st *nvmlComputeInstance_t;

#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE   80
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE        96
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE        96
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE     32
#define NVML_DEVICE_PCI_BUS_ID_LEGACY_SIZE     16
#define NVML_NVLINK_MAX_LINKS                  18

typedef struct {
        char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_LEGACY_SIZE];
        unsigned int domain;
        unsigned int bus;
        unsigned int device;
        unsigned int pciDeviceId;
        unsigned int pciSubSystemId;
        char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

typedef struct {
        unsigned long long total, free, used; /* bytes */
} nvmlMemory_t;

typedef enum { NVML_FEATURE_DISABLED = 0, NVML_FEATURE_ENABLED = 1 } nvmlEnableState_t;

typedef enum {
        NVML_TOPOLOGY_INTERNAL = 0,
        NVML_TOPOLOGY_SINGLE = 10,
        NVML_TOPOLOGY_MULTIPLE = 20,
        NVML_TOPOLOGY_HOSTBRIDGE = 30,
        NVML_TOPOLOGY_NODE = 40,
        NVML_TOPOLOGY_SYSTEM = 50,
} nvmlGpuTopologyLevel_t;

typedef unsigned int nvmlBrandType_t;
enum {
        NVML_BRAND_UNKNOWN = 0,
        NVML_BRAND_QUADRO = 1,
        NVML_BRAND_TESLA = 2,
        NVML_BRAND_NVS = 3,
        NVML_BRAND_GRID = 4,
        NVML_BRAND_GEFORCE = 5,
        NVML_BRAND_TITAN = 6,
        NVML_BRAND_NVIDIA_VAPPS = 7,
        NVML_BRAND_NVIDIA_VPC = 8,
        NVML_BRAND_NVIDIA_VCS = 9,
        NVML_BRAND_NVIDIA_VWS = 10,
        NVML_BRAND_NVIDIA_CLOUD_GAMING = 11,
        NVML_BRAND_QUADRO_RTX = 12,
        NVML_BRAND_NVIDIA_RTX = 13,
        NVML_BRAND_NVIDIA = 14,
        NVML_BRAND_GEFORCE_RTX = 15,
        NVML_BRAND_TITAN_RTX = 16,
        NVML_BRAND_COUNT = 17,
};

typedef unsigned int nvmlDeviceArchitecture_t;
enum {
        NVML_DEVICE_ARCH_KEPLER = 2,
        NVML_DEVICE_ARCH_MAXWELL = 3,
        NVML_DEVICE_ARCH_PASCAL = 4,
        NVML_DEVICE_ARCH_VOLTA = 5,
        NVML_DEVICE_ARCH_TURING = 6,
        NVML_DEVICE_ARCH_AMPERE = 7,
        NVML_DEVICE_ARCH_ADA = 8,
        NVML_DEVICE_ARCH_HOPPER = 9,
        NVML_DEVICE_ARCH_BLACKWELL = 10,
        NVML_DEVICE_ARCH_UNKNOWN = 0xffffffff,
};

/* nvmlDeviceGetNvLinkRemoteDeviceType */
typedef enum {
        NVML_NVLINK_DEVICE_TYPE_GPU = 0,
        NVML_NVLINK_DEVICE_TYPE_IBMNPU = 1,
        NVML_NVLINK_DEVICE_TYPE_SWITCH = 2,
        NVML_NVLINK_DEVICE_TYPE_UNKNOWN = 0xff,
} nvmlIntNvLinkDeviceType_t;

#define NVML_DEVICE_MIG_DISABLE 0
#define NVML_DEVICE_MIG_ENABLE  1

typedef struct {
        unsigned int multiprocessorCount;
        unsigned int sharedCopyEngineCount;
        unsigned int sharedDecoderCount;
        unsigned int sharedEncoderCount;
        unsigned int sharedJpegCount;
        unsigned int sharedOfaCount;
        unsigned int gpuInstanceSliceCount;
        unsigned int computeInstanceSliceCount;
        unsigned long long memorySizeMB;
} nvmlDeviceAttributes_t;

/* A GPU's membership in a multi-node NVLink fabric (GB200 NVL72 and the like): nvmlDeviceGetGpuFabricInfo
 * and, where only the versioned call exists, nvmlDeviceGetGpuFabricInfoV with version 2. */
#define NVML_GPU_FABRIC_UUID_LEN 16
enum {
        NVML_GPU_FABRIC_STATE_NOT_SUPPORTED = 0,
        NVML_GPU_FABRIC_STATE_NOT_STARTED = 1,
        NVML_GPU_FABRIC_STATE_IN_PROGRESS = 2,
        NVML_GPU_FABRIC_STATE_COMPLETED = 3,
};
typedef struct {
        unsigned char clusterUuid[NVML_GPU_FABRIC_UUID_LEN];
        nvmlReturn_t status; /* of the GPU's registration with the fabric manager, once completed */
        unsigned int cliqueId;
        unsigned char state; /* NVML_GPU_FABRIC_STATE_* */
} nvmlGpuFabricInfo_t;
typedef struct {
        unsigned int version; /* nvmlGpuFabricInfo_v2 */
        unsigned char clusterUuid[NVML_GPU_FABRIC_UUID_LEN];
        nvmlReturn_t status;
        unsigned int cliqueId;
        unsigned char state;
        unsigned int healthMask;
} nvmlGpuFabricInfo_v2_t;
#define nvmlGpuFabricInfo_v2 ((unsigned int)sizeof(nvmlGpuFabricInfo_v2_t) | (2u << 24))

/* GPU instance profile ids (nvmlDeviceGetGpuInstanceProfileInfo's "profile" argument). */
enum {
        NVML_GPU_INSTANCE_PROFILE_1_SLICE = 0,
        NVML_GPU_INSTANCE_PROFILE_2_SLICE = 1,
        NVML_GPU_INSTANCE_PROFILE_3_SLICE = 2,
        NVML_GPU_INSTANCE_PROFILE_4_SLICE = 3,
        NVML_GPU_INSTANCE_PROFILE_7_SLICE = 4,
        NVML_GPU_INSTANCE_PROFILE_8_SLICE = 5,
        NVML_GPU_INSTANCE_PROFILE_6_SLICE = 6,
        NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1 = 7, /* +me */
        NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1 = 8, /* +me */
        NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2 = 9, /* double memory */
        NVML_GPU_INSTANCE_PROFILE_1_SLICE_GFX = 10,
        NVML_GPU_INSTANCE_PROFILE_2_SLICE_GFX = 11,
        NVML_GPU_INSTANCE_PROFILE_4_SLICE_GFX = 12,
        NVML_GPU_INSTANCE_PROFILE_1_SLICE_NO_ME = 13,
        NVML_GPU_INSTANCE_PROFILE_2_SLICE_NO_ME = 14,
        NVML_GPU_INSTANCE_PROFILE_1_SLICE_ALL_ME = 15,
        NVML_GPU_INSTANCE_PROFILE_2_SLICE_ALL_ME = 16,
        NVML_GPU_INSTANCE_PROFILE_COUNT = 17,
};

enum {
        NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE = 0,
        NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE = 1,
        NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE = 2,
        NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE = 3,
        NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE = 4,
        NVML_COMPUTE_INSTANCE_PROFILE_8_SLICE = 5,
        NVML_COMPUTE_INSTANCE_PROFILE_6_SLICE = 6,
        NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE_REV1 = 7,
        NVML_COMPUTE_INSTANCE_PROFILE_COUNT = 8,
};
#define NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED 0

typedef struct {
        unsigned int start, size;
} nvmlGpuInstancePlacement_t;

typedef struct {
        unsigned int id;
        unsigned int isP2pSupported;
        unsigned int sliceCount;
        unsigned int instanceCount;
        unsigned int multiprocessorCount;
        unsigned int copyEngineCount;
        unsigned int decoderCount;
        unsigned int encoderCount;
        unsigned int jpegCount;
        unsigned int ofaCount;
        unsigned long long memorySizeMB;
} nvmlGpuInstanceProfileInfo_t;

typedef struct {
        nvmlDevice_t device;
        unsigned int id;
        unsigned int profileId;
        nvmlGpuInstancePlacement_t placement;
} nvmlGpuInstanceInfo_t;

typedef struct {
        unsigned int start, size;
} nvmlComputeInstancePlacement_t;

typedef struct {
        unsigned int id;
        unsigned int sliceCount;
        unsigned int instanceCount;
        unsigned int multiprocessorCount;
        unsigned int sharedCopyEngineCount;
        unsigned int sharedDecoderCount;
        unsigned int sharedEncoderCount;
        unsigned int sharedJpegCount;
        unsigned int sharedOfaCount;
} nvmlComputeInstanceProfileInfo_t;

typedef struct {
        nvmlDevice_t device;
        nvmlGpuInstance_t gpuInstance;
        unsigned int id;
        unsigned int profileId;
        nvmlComputeInstancePlacement_t placement;
} nvmlComputeInstanceInfo_t;

/* Events */
#define nvmlEventTypeSingleBitEccError 0x0000000000000001ULL
#define nvmlEventTypeDoubleBitEccError 0x0000000000000002ULL
#define nvmlEventTypePState            0x0000000000000004ULL
#define nvmlEventTypeXidCriticalError  0x0000000000000008ULL
#define nvmlEventTypeClock             0x0000000000000010ULL
#define nvmlEventTypePowerSourceChange 0x0000000000000080ULL
#define nvmlEventMigConfigChange       0x0000000000000100ULL
#define nvmlEventTypeNone              0x0000000000000000ULL
/* GI/CI id in an event that concerns the whole GPU. */
#define NVML_EVENT_INSTANCE_ID_NONE 0xFFFFFFFFu

typedef struct {
        nvmlDevice_t device;
        unsigned long long eventType;
        unsigned long long eventData;
        unsigned int gpuInstanceId;
        unsigned int computeInstanceId;
} nvmlEventData_t;

typedef enum {
        NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS = 0,
        NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR = 1,
} nvmlPageRetirementCause_t;

/* The function table. Field names are NVML's without the "nvml" prefix, versioned suffix kept, so a
 * call reads like NVML's own: n->DeviceGetHandleByIndex_v2(i, &dev).
 * X(name, ret, args): required, the load fails without it.
 * O(name, ret, args): optional (MIG, NVLink, topology, events, ...): NULL when the driver lacks it. */
#define NVML_FUNCTIONS(X, O)                                                                                \
        X(Init_v2, nvmlReturn_t, (void))                                                                    \
        X(Shutdown, nvmlReturn_t, (void))                                                                   \
        X(ErrorString, const char *, (nvmlReturn_t result))                                                 \
        X(SystemGetDriverVersion, nvmlReturn_t, (char *version, unsigned int length))                       \
        X(SystemGetNVMLVersion, nvmlReturn_t, (char *version, unsigned int length))                         \
        X(SystemGetCudaDriverVersion, nvmlReturn_t, (int *version))                                         \
        X(DeviceGetCount_v2, nvmlReturn_t, (unsigned int *count))                                           \
        X(DeviceGetHandleByIndex_v2, nvmlReturn_t, (unsigned int index, nvmlDevice_t *device))              \
        X(DeviceGetHandleByUUID, nvmlReturn_t, (const char *uuid, nvmlDevice_t *device))                    \
        X(DeviceGetUUID, nvmlReturn_t, (nvmlDevice_t device, char *uuid, unsigned int length))              \
        X(DeviceGetName, nvmlReturn_t, (nvmlDevice_t device, char *name, unsigned int length))              \
        X(DeviceGetMinorNumber, nvmlReturn_t, (nvmlDevice_t device, unsigned int *minor))                   \
        X(DeviceGetPciInfo_v3, nvmlReturn_t, (nvmlDevice_t device, nvmlPciInfo_t * pci))                    \
        X(DeviceGetMemoryInfo, nvmlReturn_t, (nvmlDevice_t device, nvmlMemory_t * memory))                  \
        X(DeviceGetCudaComputeCapability, nvmlReturn_t, (nvmlDevice_t device, int *major, int *minor))      \
        X(DeviceGetBrand, nvmlReturn_t, (nvmlDevice_t device, nvmlBrandType_t * type))                      \
        O(DeviceGetArchitecture, nvmlReturn_t, (nvmlDevice_t device, nvmlDeviceArchitecture_t * arch))      \
        O(DeviceGetMigMode, nvmlReturn_t,                                                                   \
          (nvmlDevice_t device, unsigned int *current, unsigned int *pending))                              \
        O(DeviceGetMaxMigDeviceCount, nvmlReturn_t, (nvmlDevice_t device, unsigned int *count))             \
        O(DeviceGetMigDeviceHandleByIndex, nvmlReturn_t,                                                    \
          (nvmlDevice_t device, unsigned int index, nvmlDevice_t *mig))                                     \
        O(DeviceGetDeviceHandleFromMigDeviceHandle, nvmlReturn_t,                                           \
          (nvmlDevice_t mig, nvmlDevice_t * device))                                                        \
        O(DeviceIsMigDeviceHandle, nvmlReturn_t, (nvmlDevice_t device, unsigned int *is_mig))               \
        O(DeviceGetGpuInstanceId, nvmlReturn_t, (nvmlDevice_t device, unsigned int *id))                    \
        O(DeviceGetComputeInstanceId, nvmlReturn_t, (nvmlDevice_t device, unsigned int *id))                \
        O(DeviceGetAttributes_v2, nvmlReturn_t, (nvmlDevice_t device, nvmlDeviceAttributes_t * attributes)) \
        O(DeviceGetGpuInstanceById, nvmlReturn_t,                                                           \
          (nvmlDevice_t device, unsigned int id, nvmlGpuInstance_t *gi))                                    \
        O(GpuInstanceGetInfo, nvmlReturn_t, (nvmlGpuInstance_t gi, nvmlGpuInstanceInfo_t * info))           \
        O(DeviceGetGpuInstanceProfileInfo, nvmlReturn_t,                                                    \
          (nvmlDevice_t device, unsigned int profile, nvmlGpuInstanceProfileInfo_t *info))                  \
        O(GpuInstanceGetComputeInstanceById, nvmlReturn_t,                                                  \
          (nvmlGpuInstance_t gi, unsigned int id, nvmlComputeInstance_t *ci))                               \
        O(ComputeInstanceGetInfo_v2, nvmlReturn_t,                                                          \
          (nvmlComputeInstance_t ci, nvmlComputeInstanceInfo_t * info))                                     \
        O(GpuInstanceGetComputeInstanceProfileInfo, nvmlReturn_t,                                           \
          (nvmlGpuInstance_t gi, unsigned int profile, unsigned int eng_profile,                            \
           nvmlComputeInstanceProfileInfo_t *info))                                                         \
        O(DeviceGetNvLinkState, nvmlReturn_t,                                                               \
          (nvmlDevice_t device, unsigned int link, nvmlEnableState_t *active))                              \
        O(DeviceGetNvLinkRemotePciInfo_v2, nvmlReturn_t,                                                    \
          (nvmlDevice_t device, unsigned int link, nvmlPciInfo_t *pci))                                     \
        O(DeviceGetNvLinkRemoteDeviceType, nvmlReturn_t,                                                    \
          (nvmlDevice_t device, unsigned int link, nvmlIntNvLinkDeviceType_t *type))                        \
        O(DeviceGetTopologyCommonAncestor, nvmlReturn_t,                                                    \
          (nvmlDevice_t a, nvmlDevice_t b, nvmlGpuTopologyLevel_t * level))                                 \
        O(EventSetCreate, nvmlReturn_t, (nvmlEventSet_t * set))                                             \
        O(DeviceGetSupportedEventTypes, nvmlReturn_t, (nvmlDevice_t device, unsigned long long *types))     \
        O(DeviceRegisterEvents, nvmlReturn_t,                                                               \
          (nvmlDevice_t device, unsigned long long types, nvmlEventSet_t set))                              \
        O(EventSetWait_v2, nvmlReturn_t,                                                                    \
          (nvmlEventSet_t set, nvmlEventData_t * data, unsigned int timeout_ms))                            \
        O(EventSetFree, nvmlReturn_t, (nvmlEventSet_t set))                                                 \
        O(DeviceGetRetiredPages_v2, nvmlReturn_t,                                                           \
          (nvmlDevice_t device, nvmlPageRetirementCause_t cause, unsigned int *count,                       \
           unsigned long long *addresses, unsigned long long *timestamps))                                  \
        O(DeviceGetRetiredPagesPendingStatus, nvmlReturn_t,                                                 \
          (nvmlDevice_t device, nvmlEnableState_t * pending))                                               \
        O(DeviceGetGpuFabricInfo, nvmlReturn_t, (nvmlDevice_t device, nvmlGpuFabricInfo_t * info))          \
        O(DeviceGetGpuFabricInfoV, nvmlReturn_t, (nvmlDevice_t device, nvmlGpuFabricInfo_v2_t * info))

#define NVML_FIELD_(name, ret, args) ret(*name) args;

struct nvml {
        void *dl;
        NVML_FUNCTIONS(NVML_FIELD_, NVML_FIELD_)
};

/* nvmlErrorString's text for r, safe when the table lacks it. */
const char *nvml_strerror(const nvml *n, nvmlReturn_t r);
