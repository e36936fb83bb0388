/* SPDX-License-Identifier: Apache-2.0 */
/* The MPS control daemon's metrics and its /metrics and /healthz server (--metrics-address):
 *   nvdp_mps_daemon_ready{resource}                     1 while the resource's daemon is ready
 *   nvdp_mps_daemon_state_changes_total{resource,state} every state change, by the state entered
 * /healthz answers as the loopback listener does (daemon/healthz.h: 200 while every wanted daemon is
 * ready, 503 naming those that are not). Loop thread only. */
#pragma once

#include "base/loop.h"
#include "mps/mps-supervisor.h"

typedef struct mps_metrics mps_metrics;

int mps_metrics_new(mps_metrics **ret);
mps_metrics *mps_metrics_free(mps_metrics *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(mps_metrics *, mps_metrics_free);

/* Serves on address (":2112", "127.0.0.1:0", ...); s is asked at each /healthz. ret_error names the
 * address on failure. */
int mps_metrics_serve(mps_metrics *m, loop *l, const mps_supervisor *s, const char *address,
                      char **ret_error);
/* The port served on, 0 when not serving. */
int mps_metrics_port(const mps_metrics *m);

/* A daemon's state changed (the supervisor's handler calls this). Accepts NULL. */
void mps_metrics_state(mps_metrics *m, const char *resource, enum mps_state state);
