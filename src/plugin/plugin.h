/* SPDX-License-Identifier: Apache-2.0 */
/* The kubelet device-plugin API for one node: an endpoint (socket + DevicePlugin service + registration)
 * per resource of the plan, the kubelet-restart watch and reload. A library: it knows neither metrics nor
 * where health is stored. It reads device health through a const view of the health tracker and tells
 * whoever wired it (the daemon) what happened through an observer. Loop thread only. */
#pragma once

#include <stdint.h>

#include "base/loop.h"
#include "config/config.h"
#include "gpu/inventory.h"
#include "health/health.h"
#include "resource/plan.h"

typedef struct plugin plugin;

/* What the plugin tells the daemon. Every member may be NULL. Called on the loop thread, never from
 * inside plugin_new/plugin_free. */
struct plugin_observer {
        /* An Allocate / GetPreferredAllocation call was answered; ok: without an error status. */
        void (*on_allocate)(const char *resource, bool ok, uint64_t nsec, void *userdata);
        void (*on_preferred)(const char *resource, bool ok, uint64_t nsec, void *userdata);
        /* A resource registered with the kubelet. */
        void (*on_registered)(const char *resource, void *userdata);
        /* The kubelet's socket was re-created: every resource registers again. */
        void (*on_kubelet_restart)(void *userdata);
        /* The plan served changed: at start (old_plan NULL) and after every reload that took effect.
         * new_plan is served from now on and stays valid until the next call (or plugin_free); old_plan
         * is freed right after this returns. Consumers of the plan (a CDI spec writer, an MPS readiness
         * gate, a DRA slice publisher) hang off this. */
        void (*on_plan_changed)(const plan *old_plan, const plan *new_plan, void *userdata);
        void *userdata;
};

/* Whether a resource may be advertised now, asked before a resource is served and for every device list
 * sent. A resource that is not ready is neither served nor registered until it is; one that stops being
 * ready once served stays registered, every device Unhealthy, until it is ready again (an MPS resource
 * and its control daemon: docs/mps.md). Call plugin_gate_changed() when an answer may have changed. */
struct plugin_gate {
        bool (*ready)(const struct plan_resource *r, void *userdata);
        void *userdata;
};

struct plugin_options {
        /* The kubelet's registration socket; its directory holds ours. NULL: serve in socket_dir without
         * registering. */
        const char *kubelet_socket;
        /* Only without kubelet_socket: where the sockets go (NULL: /var/lib/kubelet/device-plugins). */
        const char *socket_dir;
        /* /dev/nvidiactl, /dev/nvidia-uvm, ...: those that exist, checked once at start. */
        char *const *control_devices;
        /* Device health; NULL: health checks off (every device healthy). See plugin_set_health(). */
        const health_tracker *health;
        const struct plugin_observer *observer; /* copied; NULL: nobody listens */
        const struct plugin_gate *gate;         /* copied; NULL: every resource is ready */
};

/* The directory of our sockets: that of the kubelet's socket (NULL or "": /var/lib/kubelet/device-plugins).
 * -EINVAL for a socket path without a directory part. */
int plugin_socket_dir(const char *kubelet_socket, char **ret);

/* c and inv are borrowed: both must outlive the plugin (until plugin_reload replaces them). inv may be
 * NULL (NVML could not be loaded and failOnInitError is false): then nothing is served. Strings and the
 * control device list of o are copied. Starts nothing. */
int plugin_new(loop *l, const config *c, const inventory *inv, const struct plugin_options *o, plugin **ret);
/* Stops every endpoint (sockets removed) and the watch, then frees. Accepts NULL. */
plugin *plugin_free(plugin *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(plugin *, plugin_free);

/* Builds the plan from the inventory and config and starts an endpoint per resource. */
int plugin_start(plugin *p);
/* Builds the plan of c and inv (NULL: the inventory in use; another one after the GPUs were read again, a
 * changed MIG layout); resources whose devices did not change keep their endpoint and streams. On success
 * the plugin uses c and inv from now on (the caller frees the config and inventory they replaced, after
 * giving the plugin a health view of inv: plugin_set_health); on failure it keeps the running ones (the
 * caller frees c and inv). */
int plugin_reload(plugin *p, const config *c, const inventory *inv);

/* The health view (NULL: checks off). The tracker must outlive the plugin or be replaced first. */
void plugin_set_health(plugin *p, const health_tracker *t);
/* Health changed somewhere: every endpoint whose list changed sends it again. */
void plugin_health_changed(plugin *p);
bool plugin_device_healthy(const plugin *p, const struct plan_device *d);
/* The gate's answer may have changed: resources now ready that were held back start (serve, register);
 * every served resource whose list changed sends it again. */
void plugin_gate_changed(plugin *p);

/* Why the CDI spec the CDI strategies need is not written (copied), NULL once it is. Meanwhile Allocate
 * leaves the CDI strategies out (their names would resolve nowhere), or, when only CDI strategies are
 * configured, fails with that sentence rather than hand out a device the container would not get. */
int plugin_set_cdi_error(plugin *p, const char *error);

/* The inventory in use (NULL without devices): plugin_new()'s, then that of the last plugin_reload() that
 * took effect (inside on_plan_changed already the new one). */
const inventory *plugin_inventory(const plugin *p);

/* The plan served (NULL before start or without devices). */
const plan *plugin_plan(const plugin *p);
/* Whether resource i of plugin_plan() is registered with the kubelet now. */
bool plugin_resource_registered(const plugin *p, size_t i);
/* Whether resource i of plugin_plan() is served (listens on its socket). */
bool plugin_resource_serving(const plugin *p, size_t i);
/* Whether resource i of plugin_plan() is held back by the gate (not ready, not served yet). */
bool plugin_resource_held(const plugin *p, size_t i);
/* Whether the plugin registers with a kubelet at all (a kubelet socket was given). */
bool plugin_registers(const plugin *p);
