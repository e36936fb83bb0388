/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/plugin-metrics.h"

#include <inttypes.h>

#include "base/parse.h"
#include "daemon/healthz.h"

#define V(...) ((const char *const[]){ __VA_ARGS__ })

struct plugin_metrics {
        loop *loop;
        const plugin *plugin;
        const inventory *inventory;
        const health_tracker *health;
        metrics_registry *registry;
        http_server *server;
        struct http_route routes[2];
        metric *build_info;
        metric *devices;
        metric *device_healthy;
        metric *registered;
        metric *allocate_total, *allocate_seconds;
        metric *preferred_total, *preferred_seconds;
        metric *registrations;
        metric *kubelet_restarts;
        metric *reloads;
        metric *xid_events, *fatal_events, *recoveries;
};

/* ---- scrape-time state ------------------------------------------------------------------------- */

/* The health entry that decides a device: its GPU's when the GPU is down or it is a whole GPU. */
static const struct health_unit *device_unit(const plugin_metrics *m, const struct plan_device *d)
{
        if (!m->health)
                return NULL;
        const struct health_unit *g = health_tracker_unit(m->health, d->gpu, -1);
        if (d->mig < 0 || !g || !g->healthy)
                return g;
        return health_tracker_unit(m->health, d->gpu, d->mig);
}

static void collect_resource(plugin_metrics *m, const struct plan_resource *r)
{
        const plugin *p = m->plugin;
        const inventory *inv = m->inventory;
        size_t healthy = 0;
        for (size_t i = 0; i < r->n_devices; i++) {
                const struct plan_device *d = &r->devices[i];
                bool ok = plugin_device_healthy(p, d);
                healthy += ok;
                /* One series per physical unit: replicas of a shared GPU are consecutive. */
                if (i > 0 && r->devices[i - 1].gpu == d->gpu && r->devices[i - 1].mig == d->mig)
                        continue;
                if (!inv || d->gpu >= inv->n_gpus)
                        continue;
                const struct gpu *g = &inv->gpus[d->gpu];
                const char *uuid = d->mig >= 0 && (size_t)d->mig < g->n_mig ? g->mig[d->mig].uuid : g->uuid;
                const struct health_unit *u = device_unit(m, d);
                char index[16];
                snprintf(index, sizeof index, "%u", g->index);
                (void)metric_set(m->device_healthy, V(r->name, uuid, index, ok || !u ? "" : u->reason), ok);
        }
        (void)metric_set(m->devices, V(r->name, "healthy"), (double)healthy);
        (void)metric_set(m->devices, V(r->name, "unhealthy"), (double)(r->n_devices - healthy));
        /* Request counters exist from the start, at 0, for every advertised resource. */
        (void)metric_touch(m->allocate_total, V(r->name, "ok"));
        (void)metric_touch(m->allocate_total, V(r->name, "error"));
        (void)metric_touch(m->preferred_total, V(r->name, "ok"));
        (void)metric_touch(m->preferred_total, V(r->name, "error"));
        (void)metric_touch(m->allocate_seconds, V(r->name));
        (void)metric_touch(m->preferred_seconds, V(r->name));
        (void)metric_touch(m->registrations, V(r->name));
}

/* The health monitor's counters, per unit (GPU or MIG device); none while health checks are off. */
static void collect_health(plugin_metrics *m)
{
        const health_tracker *t = m->health;
        const inventory *inv = m->inventory;
        if (!t || !inv)
                return;
        for (unsigned g = 0; g < inv->n_gpus; g++) {
                const struct gpu *gpu = &inv->gpus[g];
                char index[16];
                snprintf(index, sizeof index, "%u", gpu->index);
                for (int mig = -1; mig < (int)gpu->n_mig; mig++) {
                        const struct health_unit *u = health_tracker_unit(t, g, mig);
                        if (!u)
                                continue;
                        const char *uuid = mig < 0 ? gpu->uuid : gpu->mig[mig].uuid;
                        (void)metric_set(m->fatal_events, V(uuid, index), (double)u->fatal_events);
                        (void)metric_set(m->recoveries, V(uuid, index), (double)u->recoveries);
                        for (size_t i = 0; i < u->n_xids; i++) {
                                char xid[24];
                                snprintf(xid, sizeof xid, "%" PRIu64, u->xids[i].xid);
                                (void)metric_set(m->xid_events,
                                                 V(uuid, index, xid,
                                                   xid_class_to_string(xid_catalog_class(u->xids[i].xid))),
                                                 (double)u->xids[i].count);
                        }
                        if (u->xids_other)
                                (void)metric_set(m->xid_events, V(uuid, index, "other", "other"),
                                                 (double)u->xids_other);
                }
        }
}

static void collect(metrics_registry *reg, void *userdata)
{
        plugin_metrics *m = userdata;
        const plan *pl = plugin_plan(m->plugin);
        metric_clear(m->devices);
        metric_clear(m->device_healthy);
        metric_clear(m->registered);
        for (size_t i = 0; pl && i < pl->n_resources; i++) {
                collect_resource(m, &pl->resources[i]);
                (void)metric_set(m->registered, V(pl->resources[i].name),
                                 plugin_resource_registered(m->plugin, i));
        }
        collect_health(m);
}

/* ---- the registry ------------------------------------------------------------------------------ */

int plugin_metrics_new(loop *l, const plugin *p, const inventory *inv, plugin_metrics **ret)
{
        static const double latency[] = PLUGIN_METRICS_LATENCY_BUCKETS;
        _cleanup_(plugin_metrics_freep) plugin_metrics *m = new0(plugin_metrics, 1);
        if (!m)
                return -ENOMEM;
        m->loop = l;
        m->plugin = p;
        m->inventory = inv;
        int r = metrics_registry_new(&m->registry);
        if (r < 0)
                return r;
        metrics_registry *g = m->registry;
        if ((r = metrics_add(g, METRIC_GAUGE, "nvdp_build_info", "The nvdp version running: always 1.",
                             V("version", NULL), &m->build_info)) < 0 ||
            (r = metrics_add(g, METRIC_GAUGE, "nvdp_devices",
                             "Devices advertised to the kubelet (replicas counted), by resource and health.",
                             V("resource", "state", NULL), &m->devices)) < 0 ||
            (r = metrics_add(g, METRIC_GAUGE, "nvdp_device_healthy",
                             "1 while the GPU or MIG device is healthy, 0 while it is not; reason says why.",
                             V("resource", "device", "gpu_index", "reason", NULL), &m->device_healthy)) <
                    0 ||
            (r = metrics_add(g, METRIC_GAUGE, "nvdp_endpoint_registered",
                             "1 while the resource is registered with the kubelet.", V("resource", NULL),
                             &m->registered)) < 0 ||
            (r = metrics_add(g, METRIC_COUNTER, "nvdp_allocate_requests_total",
                             "Allocate calls from the kubelet, by result.", V("resource", "result", NULL),
                             &m->allocate_total)) < 0 ||
            (r = metrics_add_histogram(g, "nvdp_allocate_duration_seconds",
                                       "Time to answer an Allocate call.", V("resource", NULL), latency,
                                       ELEMENTSOF(latency), &m->allocate_seconds)) < 0 ||
            (r = metrics_add(g, METRIC_COUNTER, "nvdp_preferred_allocation_requests_total",
                             "GetPreferredAllocation calls from the kubelet, by result.",
                             V("resource", "result", NULL), &m->preferred_total)) < 0 ||
            (r = metrics_add_histogram(g, "nvdp_preferred_allocation_duration_seconds",
                                       "Time to answer a GetPreferredAllocation call.", V("resource", NULL),
                                       latency, ELEMENTSOF(latency), &m->preferred_seconds)) < 0 ||
            (r = metrics_add(g, METRIC_COUNTER, "nvdp_registrations_total",
                             "Successful registrations with the kubelet.", V("resource", NULL),
                             &m->registrations)) < 0 ||
            (r = metrics_add(g, METRIC_COUNTER, "nvdp_kubelet_restarts_total",
                             "Kubelet restarts seen (its socket re-created).", NULL, &m->kubelet_restarts)) <
                    0 ||
            (r = metrics_add(g, METRIC_COUNTER, "nvdp_config_reloads_total",
                             "Configuration reloads (SIGHUP or a changed file), by result.",
                             V("result", NULL), &m->reloads)) < 0 ||
            (r = metrics_add(g, METRIC_COUNTER, "nvdp_xid_events_total",
                             "XID events NVML delivered, by XID and its class in NVIDIA's XID catalog.",
                             V("device", "gpu_index", "xid", "class", NULL), &m->xid_events)) < 0 ||
            (r = metrics_add(g, METRIC_COUNTER, "nvdp_health_fatal_events_total",
                             "Events the health policy judged fatal (XIDs, double-bit ECC, a lost GPU).",
                             V("device", "gpu_index", NULL), &m->fatal_events)) < 0 ||
            (r = metrics_add(g, METRIC_COUNTER, "nvdp_health_recoveries_total",
                             "Returns to healthy after the quiet period and a clean re-probe.",
                             V("device", "gpu_index", NULL), &m->recoveries)) < 0)
                return r;
        if ((r = metric_set(m->build_info, V(NVDP_VERSION), 1)) < 0 ||
            (r = metric_touch(m->kubelet_restarts, NULL)) < 0 ||
            (r = metric_touch(m->reloads, V("success"))) < 0 ||
            (r = metric_touch(m->reloads, V("failure"))) < 0)
                return r;
        metrics_registry_set_collect(g, collect, m);
        *ret = TAKE_PTR(m);
        return 0;
}

plugin_metrics *plugin_metrics_free(plugin_metrics *m)
{
        if (!m)
                return NULL;
        http_server_free(m->server);
        metrics_registry_free(m->registry);
        free(m);
        return NULL;
}

void plugin_metrics_set_health(plugin_metrics *m, const health_tracker *t)
{
        if (m)
                m->health = t;
}

void plugin_metrics_set_inventory(plugin_metrics *m, const inventory *inv)
{
        if (m)
                m->inventory = inv;
}

/* ---- HTTP -------------------------------------------------------------------------------------- */

static int serve_metrics(struct http_reply *reply, void *userdata)
{
        plugin_metrics *m = userdata;
        int r = metrics_format(m->registry, &reply->body, &reply->size);
        if (r < 0)
                return r;
        reply->content_type = METRICS_CONTENT_TYPE;
        return 0;
}

/* /healthz: daemon/healthz.c says what it answers, for this port and the loopback listener alike. */
static int serve_healthz(struct http_reply *reply, void *userdata)
{
        plugin_metrics *m = userdata;
        return healthz_plugin_reply(m->plugin, reply);
}

int plugin_metrics_serve(plugin_metrics *m, const char *address, char **ret_error)
{
        m->routes[0] = (struct http_route){ "/metrics", serve_metrics, m };
        m->routes[1] = (struct http_route){ "/healthz", serve_healthz, m };
        _cleanup_(http_server_freep) http_server *s = NULL;
        int r = http_server_new(m->loop, m->routes, ELEMENTSOF(m->routes), &s);
        if (r < 0)
                return r;
        r = http_server_listen(s, address, ret_error);
        if (r < 0)
                return r;
        http_server_free(m->server);
        m->server = TAKE_PTR(s);
        return 0;
}

int plugin_metrics_port(const plugin_metrics *m)
{
        return m && m->server ? http_server_port(m->server) : 0;
}

/* ---- hooks ------------------------------------------------------------------------------------- */

void plugin_metrics_allocate(plugin_metrics *m, const char *resource, bool ok, uint64_t nsec)
{
        if (!m)
                return;
        (void)metric_inc(m->allocate_total, V(resource, ok ? "ok" : "error"));
        (void)metric_observe(m->allocate_seconds, V(resource), (double)nsec / NSEC_PER_SEC);
}

void plugin_metrics_preferred(plugin_metrics *m, const char *resource, bool ok, uint64_t nsec)
{
        if (!m)
                return;
        (void)metric_inc(m->preferred_total, V(resource, ok ? "ok" : "error"));
        (void)metric_observe(m->preferred_seconds, V(resource), (double)nsec / NSEC_PER_SEC);
}

void plugin_metrics_registered(plugin_metrics *m, const char *resource)
{
        if (m)
                (void)metric_inc(m->registrations, V(resource));
}

void plugin_metrics_kubelet_restart(plugin_metrics *m)
{
        if (m)
                (void)metric_inc(m->kubelet_restarts, NULL);
}

void plugin_metrics_reload(plugin_metrics *m, bool ok)
{
        if (m)
                (void)metric_inc(m->reloads, V(ok ? "success" : "failure"));
}
