/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/node-reporter.h"

#include <time.h>

#include "base/error.h"
#include "base/parse.h"
#include "health/health.h"

#define POST_TIMEOUT (10 * NSEC_PER_SEC)
/* A post that got no answer, or 429 or 5xx (the API server down or overloaded), is posted again after
 * RETRY_FIRST, doubling to RETRY_MAX; at most RETRY_QUEUE events wait (the oldest goes first). */
#define RETRY_FIRST (1 * NSEC_PER_SEC)
#define RETRY_MAX   (60 * NSEC_PER_SEC)
#define RETRY_QUEUE 32u

/* One event in flight or waiting to be posted again: its own copies, and the time it happened (the
 * event's name and timestamps, the same on every attempt). */
struct pending {
        node_reporter *reporter;
        struct pending *next;
        char *type, *reason, *message, *device;
        unsigned count;
        struct timespec time;
        kube_call *call; /* while in flight */
};

struct node_reporter {
        kube_client *client; /* not owned */
        char *node;
        node_events *events;
        loop_source *timer;
        node_reporter_error_fn on_error;
        void *userdata;
        struct pending *retry_head, *retry_tail; /* waiting to be posted again, oldest first */
        size_t n_retry;
        struct pending *in_flight; /* posted, no answer yet (freed with the reporter) */
        loop_source *retry_timer;
        uint64_t backoff;
};

static struct pending *pending_free(struct pending *p)
{
        if (!p)
                return NULL;
        free(p->type);
        free(p->reason);
        free(p->message);
        free(p->device);
        free(p);
        return NULL;
}

static void unlink_in_flight(node_reporter *r, struct pending *p)
{
        for (struct pending **q = &r->in_flight; *q; q = &(*q)->next)
                if (*q == p) {
                        *q = p->next;
                        p->next = NULL;
                        return;
                }
}

static void report_error(node_reporter *r, const char *what, const struct pending *p, const char *why)
{
        if (!r->on_error)
                return;
        _cleanup_free_ char *msg = NULL;
        if (asprintf(&msg, "%s the %s event of %s: %s", what, p->reason, p->device, why) >= 0)
                r->on_error(msg, r->userdata);
}

/* Queued to be posted again later (the oldest dropped when the queue is full). */
static void retry_later(node_reporter *r, struct pending *p)
{
        if (r->n_retry >= RETRY_QUEUE) {
                struct pending *old = r->retry_head;
                r->retry_head = old->next;
                if (!r->retry_head)
                        r->retry_tail = NULL;
                r->n_retry--;
                report_error(r, "dropped (too many waiting)", old, "not posted");
                pending_free(old);
        }
        p->next = NULL;
        if (r->retry_tail)
                r->retry_tail->next = p;
        else
                r->retry_head = p;
        r->retry_tail = p;
        r->n_retry++;
        if (!loop_timer_armed(r->retry_timer))
                loop_timer_arm(r->retry_timer, r->backoff);
}

static void post_done(int status, const char *body, size_t size, const char *error, void *userdata)
{
        struct pending *p = userdata;
        node_reporter *r = p->reporter;
        p->call = NULL;
        unlink_in_flight(r, p);
        /* 409: an earlier attempt did create it (its answer was lost). */
        if ((status >= 200 && status <= 299) || status == 409) {
                r->backoff = RETRY_FIRST;
                pending_free(p);
                return;
        }
        bool again = status < 0 || status == 429 || status >= 500;
        report_error(r, again ? "cannot post (will retry)" : "cannot post", p,
                     error ? error : "posting an event failed");
        if (again)
                retry_later(r, p);
        else
                pending_free(p);
}

static void send_pending(node_reporter *r, struct pending *p)
{
        struct kube_event ev = {
                .node = r->node,
                .type = p->type,
                .reason = p->reason,
                .message = p->message,
                .count = p->count,
                .time = p->time,
        };
        p->next = r->in_flight;
        r->in_flight = p;
        int k = kube_create_event(r->client, &ev, POST_TIMEOUT, post_done, p, &p->call);
        if (k < 0) {
                unlink_in_flight(r, p);
                report_error(r, "cannot post (will retry)", p, strerror(-k));
                retry_later(r, p);
        }
}

static void on_retry(loop_source *s, void *userdata)
{
        node_reporter *r = userdata;
        r->backoff = MIN(r->backoff * 2, RETRY_MAX);
        struct pending *list = r->retry_head;
        r->retry_head = r->retry_tail = NULL;
        r->n_retry = 0;
        while (list) {
                struct pending *p = list;
                list = p->next;
                send_pending(r, p);
        }
}

static void post(const struct node_event *e, void *userdata)
{
        node_reporter *r = userdata;
        struct pending *p = new0(struct pending, 1);
        if (!p || !(p->type = strdup(e->type)) || !(p->reason = strdup(e->reason)) ||
            !(p->message = strdup(e->message)) || !(p->device = strdup(e->device))) {
                pending_free(p);
                if (r->on_error)
                        r->on_error("cannot post an event: out of memory", r->userdata);
                return;
        }
        p->reporter = r;
        p->count = e->count;
        clock_gettime(CLOCK_REALTIME, &p->time);
        send_pending(r, p);
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
        r->backoff = RETRY_FIRST;
        if ((k = node_events_new(o ? o->limits : NULL, post, r, now_nsec(), &r->events)) < 0 ||
            (k = loop_add_timer(kube_client_loop(client), UINT64_MAX, on_timer, r, &r->timer)) < 0 ||
            (k = loop_add_timer(kube_client_loop(client), UINT64_MAX, on_retry, r, &r->retry_timer)) < 0)
                return k;
        loop_timer_disarm(r->timer);
        loop_timer_disarm(r->retry_timer);
        *ret = TAKE_PTR(r);
        return 0;
}

node_reporter *node_reporter_free(node_reporter *r)
{
        if (!r)
                return NULL;
        loop_source_free(r->timer);
        loop_source_free(r->retry_timer);
        node_events_free(r->events);
        while (r->retry_head) {
                struct pending *p = r->retry_head;
                r->retry_head = p->next;
                pending_free(p);
        }
        while (r->in_flight) {
                struct pending *p = r->in_flight;
                r->in_flight = p->next;
                kube_call_cancel(p->call); /* no callback after this */
                pending_free(p);
        }
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
