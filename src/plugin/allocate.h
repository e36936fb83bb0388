/* SPDX-License-Identifier: Apache-2.0 */
/* Allocate: what a container gets for a list of device IDs. A pure function of (request, plan resource,
 * config, the control device nodes found at start-up): no NVML, no file I/O on the request path. */
#pragma once

#include "base/strv.h"
#include "config/config.h"
#include "resource/plan.h"

struct mount_spec {
        char *container_path;
        char *host_path;
        bool read_only;
};

struct device_spec {
        char *container_path;
        char *host_path;
        char *permissions;
};

/* One ContainerAllocateResponse. envs and annotations are "key", "value" pairs in one strv. */
struct allocate_response {
        char **envs;
        char **annotations;
        struct mount_spec *mounts;
        size_t n_mounts;
        struct device_spec *devices;
        size_t n_devices;
        char **cdi_devices;
};

struct allocate_context {
        const config *config;
        const struct plan_resource *resource;
        /* /dev/nvidiactl, /dev/nvidia-uvm, /dev/nvidia-uvm-tools, /dev/nvidia-modeset: those that exist,
         * checked once at start (upstream stats them on every request). */
        char *const *control_devices;
        /* For the cdi-annotations key; NULL uses getrandom(). Tests pass a fixed one. */
        const char *annotation_uuid;
};

/* Fails with -EINVAL and a message naming the ID for an unknown device, or the request size for a
 * shared resource that allows one replica per request. Duplicate IDs count once. */
int allocate_container(const struct allocate_context *ctx, char *const *ids, size_t n_ids,
                       struct allocate_response **ret, char **ret_error);
struct allocate_response *allocate_response_free(struct allocate_response *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct allocate_response *, allocate_response_free);

/* Value of an env var in the response, or NULL. */
const char *allocate_response_env(const struct allocate_response *r, const char *key);
