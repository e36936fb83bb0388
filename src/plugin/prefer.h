/* SPDX-License-Identifier: Apache-2.0 */
/* GetPreferredAllocation: a pure function over the plan, the cached link matrix and device health.
 * Never calls NVML, so a dead GPU cannot make it fail (upstream issue #2038), and it answers in
 * microseconds (upstream re-probes NVML topology on every call: seconds on 8 GPUs, issue #774). */
#pragma once

#include "config/config.h"
#include "gpu/inventory.h"
#include "resource/plan.h"

/* available / must_include are kubelet-facing IDs; healthy[i] is the health of r->devices[i].
 * The result holds must_include first, then the chosen IDs; at most size IDs. Unknown and unhealthy
 * available IDs are never offered. Whole GPUs: the best-connected set (NVLink count first, then PCIe
 * distance, as go-gpuallocator scores pairs). Replicas and MIG devices: upstream's greedy
 * "distributed" (the least used shared device first, i.e. the GPU or MIG device a replica belongs to,
 * then the least used physical GPU, so several replicas land on distinct devices where possible) or
 * "packed" (the most used first). */
int preferred_allocation(const inventory *inv, const struct plan_resource *r, const bool *healthy,
                         enum allocation_policy policy, char *const *available, size_t n_available,
                         char *const *must_include, size_t n_must_include, size_t size, char ***ret);
