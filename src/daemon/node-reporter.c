/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/node-reporter.h"

#include <time.h>

#include "base/error.h"
#include "base/parse.h"
#include "health/health.h"

#define POST_TIMEOUT (10 * NSEC_PER_SEC)

struct node_reporter {
        kube_client *client; /* not owned */
        char *node;
        node_events *events;
        loop_source *timer;
        node_reporter_error_fn on_error;
        void *userdata;
};

static void post_done(int status, const char *body, size_t size, const char *error, void *userdata)
{
        node_reporter *r = userdata;
        if ((status < 200 || status > 299) && r->on_error)
                r->on_error(error ? error : "posting an event failed", r->userdata);
}

static void post(const struct node_event *e, void *userdata)
{
        node_reporter *r = userdata;
        struct kube_event ev = {
                .node = r->node,
                .type = e->type,
                .reason = e->reason,
                .message = e->message,
                .count = e->count,
        };
        clock_gettime(CLOCK_REALTIME, &ev.time);
        int k = kube_create_event(r->client, &ev, POST_TIMEOUT, post_done, r);
        if (k < 0 && r->on_error) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "cannot post the %s event of %s: %s", e->reason, e->device,
                             strerror(-k)) >= 0)
                        r->on_error(msg, r->userdata);
        }
}

static void arm(node_reporter *r)
{
        uint64_t due = node_events_next_due(r->events), now = now_nsec();
        if (due == UINT64_MAX) {
                loop_timer_disarm(r->timer);
                return;
        }
        loop_timer_arm(r->timer, due > now ? due - now : 0);
}

static void on_timer(loop_source *s, void *userdata)
{
        node_reporter *r = userdata;
        node_events_flush(r->events, now_nsec());
        arm(r);
}

int node_reporter_new(kube_client *client, const char *node, const struct node_reporter_options *o,
                      node_reporter **ret, char **ret_error)
{
        if (!node || !kube_name_valid(node))
                return error_set(ret_error, -EINVAL, "\"%s\" is not a valid node name", strempty(node));
        _cleanup_free_ char *name = strdup(node);
        _cleanup_(node_reporter_freep) node_reporter *r = new0(node_reporter, 1);
        if (!name || !r)
                return -ENOMEM;
        r->client = client;
        r->on_error = o ? o->on_error : NULL;
        r->userdata = o ? o->userdata : NULL;
        r->node = TAKE_PTR(name);
        int k;
        if ((k = node_events_new(o ? o->limits : NULL, post, r, now_nsec(), &r->events)) < 0 ||
            (k = loop_add_timer(kube_client_loop(client), UINT64_MAX, on_timer, r, &r->timer)) < 0)
                return k;
        loop_timer_disarm(r->timer);
        *ret = TAKE_PTR(r);
        return 0;
}

node_reporter *node_reporter_free(node_reporter *r)
{
        if (!r)
                return NULL;
        loop_source_free(r->timer);
        node_events_free(r->events);
        free(r->node);
        free(r);
        return NULL;
}

void node_reporter_sync(node_reporter *r, const inventory *inv, const health_tracker *t)
{
        if (!r || !inv || !t)
                return;
        uint64_t now = now_nsec();
        for (unsigned g = 0; g < inv->n_gpus; g++) {
                const struct gpu *gpu = &inv->gpus[g];
                for (int mig = -1; mig < (int)gpu->n_mig; mig++) {
                        const struct health_unit *u = health_tracker_unit(t, g, mig);
                        if (!u)
                                continue;
                        struct device_health d = {
                                .device = mig < 0 ? gpu->uuid : gpu->mig[mig].uuid,
                                .gpu_index = gpu->index,
                                .healthy = u->healthy,
                                .reason = u->reason,
                                .xid_class = !u->healthy && u->xid ? xid_class_to_string(u->cls) : NULL,
                        };
                        (void)node_events_update(r->events, &d, now);
                }
        }
        arm(r);
}
