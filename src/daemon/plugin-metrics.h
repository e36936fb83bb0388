/* SPDX-License-Identifier: Apache-2.0 */
/* The device plugin's metrics (docs/metrics.md lists them) and the /metrics and /healthz server.
 *
 * Gauges that describe state (devices by health, each device's health and reason, registration) and
 * the health tracker's counters are read from the plugin and the tracker when scraped; the request
 * counters and latency histograms are counted by the hooks below, which the daemon calls from the
 * plugin's observer. Every function accepts a NULL plugin_metrics (metrics off) and does nothing then.
 * Loop thread only. */
#pragma once

#include <stdint.h>

#include "gpu/inventory.h"
#include "health/health.h"
#include "metrics/metrics.h"
#include "net/http-server.h"
#include "plugin/plugin.h"

typedef struct plugin_metrics plugin_metrics;

/* Latency buckets of Allocate and GetPreferredAllocation, in seconds: 5 us to 100 ms. */
#define PLUGIN_METRICS_LATENCY_BUCKETS                                                                      \
        {                                                                                                   \
                0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,  \
                        0.025, 0.05, 0.1                                                                    \
        }

/* The registry with every family; p and inv (may be NULL) are read at each scrape (they must outlive the
 * metrics). */
int plugin_metrics_new(loop *l, const plugin *p, const inventory *inv, plugin_metrics **ret);
plugin_metrics *plugin_metrics_free(plugin_metrics *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(plugin_metrics *, plugin_metrics_free);
/* The health tracker whose counters and reasons are reported (NULL: health checks off). */
void plugin_metrics_set_health(plugin_metrics *m, const health_tracker *t);
/* The inventory read from now on (the GPUs were read again: a changed MIG layout). */
void plugin_metrics_set_inventory(plugin_metrics *m, const inventory *inv);

/* Serves GET /metrics and GET /healthz on address (":2112", "127.0.0.1:2112", "[::1]:2112"). /healthz
 * answers 200 "ok" while every endpoint is registered with the kubelet, 503 otherwise. On failure
 * ret_error gets a sentence naming the address. */
int plugin_metrics_serve(plugin_metrics *m, const char *address, char **ret_error);
/* The port served on (after plugin_metrics_serve), 0 when not serving. */
int plugin_metrics_port(const plugin_metrics *m);

/* Hooks. ok: the call was answered without an error status; nsec: how long it took. */
void plugin_metrics_allocate(plugin_metrics *m, const char *resource, bool ok, uint64_t nsec);
void plugin_metrics_preferred(plugin_metrics *m, const char *resource, bool ok, uint64_t nsec);
void plugin_metrics_registered(plugin_metrics *m, const char *resource);
void plugin_metrics_kubelet_restart(plugin_metrics *m);
void plugin_metrics_reload(plugin_metrics *m, bool ok);
