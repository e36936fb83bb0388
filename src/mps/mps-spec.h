/* SPDX-License-Identifier: Apache-2.0 */
/* What each MPS control daemon enforces, computed from the plan: one daemon per resource shared with
 * MPS, restricted to that resource's GPUs (CUDA_VISIBLE_DEVICES by UUID), and upstream's limits: each
 * client gets 100/replicas percent of the threads, and each GPU's memory divided by its replicas as
 * pinned device memory. Pure: no I/O. */
#pragma once

#include <stdint.h>

#include "gpu/inventory.h"
#include "resource/plan.h"

/* Upstream's maximum of MPS clients per GPU (cmd/mps-control-daemon/mps/device.go): 48 from compute
 * capability 7.5, else 16. More replicas than that is an error for the resource. */
unsigned mps_max_clients(unsigned cc_major, unsigned cc_minor);

struct mps_gpu_limit {
        char uuid[96];
        unsigned index;     /* NVML index (log lines only: the commands name the UUID) */
        unsigned replicas;  /* of this GPU in the resource */
        uint64_t limit_mib; /* pinned device memory per client: the GPU's memory / replicas, in MiB */
};

struct mps_spec {
        char *resource;             /* "nvidia.com/gpu", the directory under the MPS root */
        unsigned thread_percentage; /* 100 / replicas, as upstream */
        struct mps_gpu_limit *gpus; /* in NVML index order */
        size_t n_gpus;
        /* Set when this resource cannot be served with MPS (a MIG device, too many replicas): the
         * sentence says why, and no daemon is started for it. */
        char *error;
};

typedef struct mps_specs {
        struct mps_spec *specs; /* sorted by resource name, as the plan */
        size_t n;
} mps_specs;

/* One spec per plan resource whose sharing is MPS; none when the node shares nothing with MPS. */
int mps_specs_build(const inventory *inv, const plan *p, mps_specs **ret);
mps_specs *mps_specs_free(mps_specs *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(mps_specs *, mps_specs_free);
/* A deep copy (the supervisor keeps its own). */
int mps_spec_copy(const struct mps_spec *s, struct mps_spec *ret);
void mps_spec_done(struct mps_spec *s);
/* Same resource, GPUs, limits and error: an unchanged daemon keeps running across a reload. */
bool mps_spec_equal(const struct mps_spec *a, const struct mps_spec *b);

/* "GPU-a,GPU-b": the daemon's CUDA_VISIBLE_DEVICES. */
char *mps_spec_visible_devices(const struct mps_spec *s);
/* The control commands, in the order they are sent (upstream's order): one
 * "set_default_device_pinned_mem_limit <uuid> <N>M" per GPU, then
 * "set_default_active_thread_percentage <P>". NULL-terminated. */
int mps_spec_commands(const struct mps_spec *s, char ***ret);
