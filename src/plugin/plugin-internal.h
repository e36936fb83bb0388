/* SPDX-License-Identifier: Apache-2.0 */
/* Inside src/plugin/ only (and its white-box tests): the plugin's state and the endpoint API. */
#pragma once

#include "plugin/plugin.h"

typedef struct endpoint endpoint;

struct plugin {
        loop *loop;
        const config *config;
        const inventory *inventory; /* NULL when NVML could not be loaded and failOnInitError is false */
        plan *plan;
        char **control_devices;       /* existing /dev/nvidiactl, ... (checked once) */
        char *socket_dir;             /* directory of the kubelet socket: ours live there too */
        char *kubelet_socket;         /* NULL: serve without registering */
        const health_tracker *health; /* NULL: health checks off */
        struct plugin_observer observer;
        struct plugin_gate gate;
        endpoint **endpoints; /* endpoints[i] serves plan->resources[i] */
        size_t n_endpoints;
        int inotify_fd;
        loop_source *inotify_source;
        loop_source *resync_timer;
        bool kubelet_restarted;
        unsigned registrations; /* successful Register calls, for logs */
};

/* plugin.c */
/* The gate's answer for r (true without a gate). */
bool plugin_resource_ready(const plugin *p, const struct plan_resource *r);

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
/* Whether it listens on its socket (started, not stopped). */
bool endpoint_serving(const endpoint *e);
size_t endpoint_streams(const endpoint *e);
