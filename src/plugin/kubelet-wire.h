/* SPDX-License-Identifier: Apache-2.0 */
/* The kubelet device-plugin API v1beta1 on the wire: method paths and every protobuf pack and unpack of
 * its messages (generated from proto/deviceplugin.proto). The only file that includes the generated
 * header; the rest of plugin/ works on plain structs. */
#pragma once

#include <stdint.h>

#include "plugin/allocate.h"
#include "resource/plan.h"

#define DP_VERSION         "v1beta1"
#define DP_HEALTHY         "Healthy"
#define DP_UNHEALTHY       "Unhealthy"
#define DP_PATH_REGISTER   "/v1beta1.Registration/Register"
#define DP_PATH_OPTIONS    "/v1beta1.DevicePlugin/GetDevicePluginOptions"
#define DP_PATH_LIST_WATCH "/v1beta1.DevicePlugin/ListAndWatch"
#define DP_PATH_PREFERRED  "/v1beta1.DevicePlugin/GetPreferredAllocation"
#define DP_PATH_ALLOCATE   "/v1beta1.DevicePlugin/Allocate"
#define DP_PATH_PRE_START  "/v1beta1.DevicePlugin/PreStartContainer"

/* Every pack function returns a new buffer (at least one byte, also for an empty message) and its size;
 * -EMSGSIZE over RPC_MAX_MESSAGE. */

/* RegisterRequest for a resource served on the socket named endpoint (a file name in the kubelet's
 * directory), with GetPreferredAllocation offered. */
int kubelet_wire_pack_register(const char *endpoint, const char *resource, uint8_t **ret, size_t *ret_size);
/* DevicePluginOptions: GetPreferredAllocation offered, PreStartContainer not. */
int kubelet_wire_pack_options(uint8_t **ret, size_t *ret_size);
/* ListAndWatchResponse: devices[i] with health healthy[i] and its NUMA node (none when < 0). */
int kubelet_wire_pack_list(const struct plan_device *devices, const bool *healthy, size_t n, uint8_t **ret,
                           size_t *ret_size);
/* AllocateResponse holding these container responses in order. */
int kubelet_wire_pack_allocate(struct allocate_response *const *responses, size_t n, uint8_t **ret,
                               size_t *ret_size);
/* PreferredAllocationResponse: ids[i] (a strv) for container i. */
int kubelet_wire_pack_preferred(char **const *ids, size_t n, uint8_t **ret, size_t *ret_size);

/* One container of an AllocateRequest (ids: devices_ids) or a PreferredAllocationRequest (ids:
 * available_deviceids, must_include, size: allocation_size). Strings are borrowed from the request. */
struct container_request {
        char **ids;
        size_t n_ids;
        char **must_include;
        size_t n_must_include;
        size_t size;
};

/* Memory one decoded request may take (each allocation counted with 16 bytes of overhead): a request
 * of RPC_MAX_REQUEST bytes of real device IDs (40-odd bytes each) needs under 2 MiB; one of 1-byte IDs
 * would need 10 times that and is refused while it is being unpacked. */
#define KUBELET_REQUEST_MEMORY_MAX (4u * 1024 * 1024)

struct unpack_budget {
        size_t used, max;
        bool exceeded;
};

struct kubelet_request {
        struct container_request *containers;
        size_t n_containers;
        void *message; /* the decoded protobuf message, owned */
        struct unpack_budget budget;
};

/* -EBADMSG when msg does not parse; -E2BIG when decoding it would take more than
 * KUBELET_REQUEST_MEMORY_MAX (protobuf-c's allocator is ours: it stops there). */
int kubelet_wire_unpack_allocate(const uint8_t *msg, size_t size, struct kubelet_request **ret);
int kubelet_wire_unpack_preferred(const uint8_t *msg, size_t size, struct kubelet_request **ret);
struct kubelet_request *kubelet_request_free(struct kubelet_request *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kubelet_request *, kubelet_request_free);
