/* SPDX-License-Identifier: Apache-2.0 */
/* The device plugin daemon: one endpoint (socket + DevicePlugin service + registration) per resource of
 * the plan, the kubelet-restart watch, signals and reload. Everything runs on one loop thread; the
 * health thread only posts to it. */
#pragma once

#include "base/loop.h"
#include "config/config.h"
#include "gpu/inventory.h"
#include "resource/plan.h"

typedef struct endpoint endpoint;
typedef struct plugin plugin;
typedef struct health_monitor health_monitor;
typedef struct health_tracker health_tracker;
typedef struct plugin_metrics plugin_metrics;

/* Health of one physical unit (a GPU, or one MIG device). Replicas and MIG devices follow their GPU. */
struct unit_health {
        bool healthy;
        char reason[96]; /* why unhealthy, e.g. "XID 79 (GPU has fallen off the bus)" */
};

struct plugin {
        loop *loop;
        config *config;
        inventory *inventory; /* NULL when NVML could not be loaded and failOnInitError is false */
        plan *plan;
        char *root;             /* host root for /proc reads */
        char **control_devices; /* existing /dev/nvidiactl, ... (checked once) */
        char *socket_dir;       /* directory of the kubelet socket: ours live there too */
        char *kubelet_socket;   /* NULL: serve without registering */
        endpoint **endpoints;
        size_t n_endpoints;
        struct unit_health *gpu_health;  /* inventory->n_gpus */
        struct unit_health **mig_health; /* [gpu][mig] */
        health_monitor *health;          /* NULL: health checks off */
        int inotify_fd;
        loop_source *inotify_source;
        loop_source *resync_timer;
        bool kubelet_restarted;
        unsigned registrations;  /* successful Register calls, for logs and metrics */
        plugin_metrics *metrics; /* NULL: metrics off (src/metrics/plugin-metrics.h) */
};

/* Builds the plan from p->inventory and p->config and starts an endpoint per resource. */
int plugin_start(plugin *p);
/* Stops every endpoint (sockets removed) and the watch. */
void plugin_stop(plugin *p);
/* Re-reads the config; resources whose devices did not change keep their endpoint and streams. */
int plugin_reload(plugin *p, config *new_config);
/* Health changed somewhere: every endpoint whose list changed sends it again. */
void plugin_health_changed(plugin *p);
bool plugin_device_healthy(const plugin *p, const struct plan_device *d);
/* Copies the health monitor's verdicts into gpu_health/mig_health and resends changed lists. */
void plugin_health_sync(plugin *p, const health_tracker *t);

/* endpoint.c */
int endpoint_new(plugin *p, const struct plan_resource *r, endpoint **ret);
endpoint *endpoint_free(endpoint *e); /* stops serving; removes the socket */
const struct plan_resource *endpoint_resource(const endpoint *e);
/* The endpoint now serves this (equal) resource of a newer plan. */
void endpoint_rebind(endpoint *e, const struct plan_resource *r);
/* Listens on the socket (re-created) and registers with the kubelet, retrying with backoff. */
int endpoint_start(endpoint *e);
/* Sends the device list to open ListAndWatch streams if it differs from the last one sent. */
void endpoint_send_list_if_changed(endpoint *e);
/* Sends an empty list to every stream (a resource going away), then stops serving. */
void endpoint_retire(endpoint *e);
bool endpoint_socket_missing(const endpoint *e);
bool endpoint_registered(const endpoint *e);
size_t endpoint_streams(const endpoint *e);
