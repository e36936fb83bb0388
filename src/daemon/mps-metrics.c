/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/mps-metrics.h"

#include "daemon/healthz.h"
#include "metrics/metrics.h"
#include "net/http-server.h"

#define V(...) ((const char *const[]){ __VA_ARGS__ })

struct mps_metrics {
        metrics_registry *registry;
        metric *ready, *changes;
        http_server *server;
        const mps_supervisor *supervisor;
        struct http_route routes[2];
};

int mps_metrics_new(mps_metrics **ret)
{
        _cleanup_(mps_metrics_freep) mps_metrics *m = new0(mps_metrics, 1);
        if (!m)
                return -ENOMEM;
        int r = metrics_registry_new(&m->registry);
        if (r >= 0)
                r = metrics_add(m->registry, METRIC_GAUGE, "nvdp_mps_daemon_ready",
                                "Whether the MPS control daemon of a resource runs with its limits set (1) "
                                "or not (0).",
                                V("resource", NULL), &m->ready);
        if (r >= 0)
                r = metrics_add(
                        m->registry, METRIC_COUNTER, "nvdp_mps_daemon_state_changes_total",
                        "State changes of the MPS control daemon of a resource, by the state entered.",
                        V("resource", "state", NULL), &m->changes);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

mps_metrics *mps_metrics_free(mps_metrics *m)
{
        if (!m)
                return NULL;
        http_server_free(m->server);
        metrics_registry_free(m->registry);
        free(m);
        return NULL;
}

void mps_metrics_state(mps_metrics *m, const char *resource, enum mps_state state)
{
        if (!m)
                return;
        (void)metric_set(m->ready, V(resource), state == MPS_STATE_READY);
        (void)metric_inc(m->changes, V(resource, mps_state_to_string(state)));
}

static int serve_metrics(struct http_reply *reply, void *userdata)
{
        mps_metrics *m = userdata;
        int r = metrics_format(m->registry, &reply->body, &reply->size);
        if (r < 0)
                return r;
        reply->content_type = METRICS_CONTENT_TYPE;
        return 0;
}

/* /healthz: daemon/healthz.c says what it answers, for this port and the loopback listener alike. */
static int serve_healthz(struct http_reply *reply, void *userdata)
{
        mps_metrics *m = userdata;
        return healthz_mps_reply(m->supervisor, reply);
}

int mps_metrics_serve(mps_metrics *m, loop *l, const mps_supervisor *s, const char *address,
                      char **ret_error)
{
        m->supervisor = s;
        m->routes[0] = (struct http_route){ "/metrics", serve_metrics, m };
        m->routes[1] = (struct http_route){ "/healthz", serve_healthz, m };
        _cleanup_(http_server_freep) http_server *srv = NULL;
        int r = http_server_new(l, m->routes, ELEMENTSOF(m->routes), &srv);
        if (r < 0)
                return r;
        r = http_server_listen(srv, address, ret_error);
        if (r < 0)
                return r;
        http_server_free(m->server);
        m->server = TAKE_PTR(srv);
        return 0;
}

int mps_metrics_port(const mps_metrics *m)
{
        return m && m->server ? http_server_port(m->server) : 0;
}
