/* SPDX-License-Identifier: Apache-2.0 */
/* The plan: which resources this node advertises and the kubelet-facing devices of each, built from
 * (inventory, config) by a pure function. Immutable once built; a reload builds a new plan and the
 * plugin compares the two. Device health is not here (it changes); the health tracker keeps it. */
#pragma once

#include "base/macro.h"
#include "config/config.h"
#include "gpu/inventory.h"

struct plan_device {
        char *id;         /* kubelet-facing ID: "GPU-...", "MIG-...", "GPU-...::3" (always the UUID form) */
        unsigned gpu;     /* index into inventory.gpus (the parent for a MIG device) */
        int mig;          /* index into that gpu's mig[], -1 for a whole GPU */
        int replica;      /* 0..replicas-1 for a shared device, -1 when not shared */
        int numa_node;    /* -1 none */
        char *runtime_id; /* what the runtime gets: UUID, or "3" / "3:1" under the index strategy */
        char **paths;     /* host device nodes: /dev/nvidiaN, and for MIG the nvidia-caps nodes */
};

struct plan_resource {
        char *name;        /* "nvidia.com/gpu", "nvidia.com/mig-1g.5gb", "nvidia.com/gpu.shared" */
        char *socket_name; /* "nvidia-gpu.sock": "nvidia-" + the part after "/" + ".sock" */
        enum sharing_strategy sharing;
        unsigned replicas; /* 1 when not shared */
        bool fail_requests_greater_than_one;
        struct plan_device *devices;
        size_t n_devices;
        size_t *by_id; /* indexes of devices sorted by id, for plan_resource_find_device() */
};

typedef struct plan {
        struct plan_resource *resources;
        size_t n_resources;
} plan;

/* Resources are sorted by name; devices by GPU index, MIG index, replica, so IDs and their order are
 * stable across restarts. Resources without devices are left out.
 * Sharing honours `devices` and `rename` per resource (beyond upstream): selected devices are shared
 * under the (renamed) resource, the rest stay whole under their normal name.
 * Pure: no file or NVML reads (MIG capability minors come with the inventory).
 * Fails with a sentence in ret_error for an invalid node (e.g. MIG "single" with mixed profiles,
 * sharing devices naming no GPU). */
int plan_build(const inventory *inv, const config *c, plan **ret, char **ret_error);
plan *plan_free(plan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(plan *, plan_free);

const struct plan_resource *plan_find_resource(const plan *p, const char *name);
/* What the plan advertises, for the log: "nvidia.com/gpu: 8 GPUs x 4 replicas (time-slicing),
 * nvidia.com/mig-1g.10gb: 7 MIG devices"; "nothing" for a plan without resources (or NULL). NULL when
 * out of memory. */
char *plan_describe(const plan *p);
/* Index of the device with this kubelet-facing ID in r->devices, or -1. */
ssize_t plan_resource_find_device(const struct plan_resource *r, const char *id);
/* Whether two resources advertise the same devices (reload keeps the endpoint when true). */
bool plan_resource_equal(const struct plan_resource *a, const struct plan_resource *b);
