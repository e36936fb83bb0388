/* SPDX-License-Identifier: Apache-2.0 */
/* One Node's labels, kept current: list, then watch from the list's resourceVersion (the informer pattern
 * of client-go reduced to one object). */
#include "base/parse.h"
#include "base/strv.h"
#include "kube.h"

#define BACKOFF_MAX (30 * NSEC_PER_SEC)
/* A watch that lasted this long ended normally (server timeout): re-watch at once, reset the backoff. */
#define WATCH_HEALTHY (10 * NSEC_PER_SEC)
#define LIST_TIMEOUT  (30 * NSEC_PER_SEC)

struct kube_node_watch {
        kube_client *client;
        char *name;
        struct kube_node_watch_handler h;
        void *userdata;
        kube_call *call;
        loop_source *retry;
        char *rv;                /* resourceVersion to watch from; NULL: list first */
        char **labels;           /* last delivered */
        bool delivered, deleted; /* something was delivered; the last delivery said "no node" */
        uint64_t backoff_initial, backoff, watch_started;
        unsigned timeout_seconds;
        bool got_event;
        unsigned busy; /* inside one of our handlers: a free is deferred to its end */
        bool dead;
};

static void start(kube_node_watch *w);

static void watch_really_free(kube_node_watch *w)
{
        kube_call_cancel(w->call);
        loop_source_free(w->retry);
        free(w->name);
        free(w->rv);
        strv_free(w->labels);
        free(w);
}

kube_node_watch *kube_node_watch_free(kube_node_watch *w)
{
        if (!w)
                return NULL;
        if (w->busy > 0) {
                /* From inside a callback: the handler that called it frees w when it returns. */
                w->dead = true;
                w->h.on_labels = NULL;
                w->h.on_error = NULL;
                return NULL;
        }
        watch_really_free(w);
        return NULL;
}

/* Brackets every handler: callbacks inside may free the watch. Returns true when it was freed. */
static void enter(kube_node_watch *w)
{
        w->busy++;
}

static bool leave(kube_node_watch *w)
{
        if (--w->busy > 0 || !w->dead)
                return false;
        watch_really_free(w);
        return true;
}

static void report_error(kube_node_watch *w, const char *msg)
{
        if (w->h.on_error)
                w->h.on_error(msg, w->userdata);
}

static void deliver(kube_node_watch *w, char **labels /* taken; NULL: no node */)
{
        if (w->delivered &&
            ((labels && w->labels && strv_equal(labels, w->labels)) || (!labels && w->deleted))) {
                strv_free(labels);
                return;
        }
        strv_free(w->labels);
        w->labels = labels;
        w->deleted = !labels;
        w->delivered = true;
        if (w->h.on_labels)
                w->h.on_labels(w->labels, w->userdata);
}

/* Takes rv (NULL: keeps the one we have). */
static void set_rv(kube_node_watch *w, char *rv)
{
        if (!rv)
                return;
        free(w->rv);
        w->rv = rv;
}

static void retry_later(kube_node_watch *w, bool relist)
{
        if (relist)
                w->rv = mfree(w->rv);
        uint64_t d = w->backoff;
        w->backoff = MIN(w->backoff * 2, BACKOFF_MAX);
        loop_timer_arm(w->retry, d);
}

static void on_list_inner(kube_node_watch *w, int status, const char *body, size_t size, const char *error)
{
        w->call = NULL;
        if (error) {
                report_error(w, error);
                return retry_later(w, true);
        }
        _cleanup_free_ char *err = NULL;
        char *rv = NULL, **labels = NULL;
        int r = kube_node_list_parse(body, size, w->name, &rv, &labels, &err);
        if (r < 0) {
                if (err)
                        report_error(w, err);
                return retry_later(w, true);
        }
        set_rv(w, rv);
        w->backoff = w->backoff_initial;
        deliver(w, labels);
        start(w);
}

static void on_list(int status, const char *body, size_t size, const char *error, void *userdata)
{
        kube_node_watch *w = userdata;
        enter(w);
        on_list_inner(w, status, body, size, error);
        (void)leave(w);
}

/* One watch event: {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}. */
static int on_line_inner(kube_node_watch *w, const char *line, size_t size)
{
        struct kube_watch_event e;
        _cleanup_free_ char *err = NULL;
        int r = kube_watch_event_parse(line, size, &e, &err);
        if (r < 0) {
                if (err)
                        report_error(w, err);
                return r;
        }
        if (e.type == KUBE_WATCH_ERROR) {
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "watch of node %s: %s", w->name, e.message ? e.message : "error event") >=
                    0)
                        report_error(w, m);
                kube_watch_event_done(&e);
                /* 410 Gone: our resourceVersion is too old; anything else: start over as well. */
                return -ESTALE;
        }
        w->got_event = true;
        set_rv(w, TAKE_PTR(e.resource_version));
        if (e.type == KUBE_WATCH_DELETED)
                deliver(w, NULL);
        else if (e.type != KUBE_WATCH_BOOKMARK)
                deliver(w, TAKE_PTR(e.labels));
        kube_watch_event_done(&e);
        return 0;
}

static int on_line(const char *line, size_t size, void *userdata)
{
        kube_node_watch *w = userdata;
        enter(w);
        int r = on_line_inner(w, line, size);
        /* Freed from a callback: the current call is cancelled with it (safe inside on_line). */
        return leave(w) ? -ECANCELED : r;
}

static void on_watch_end_inner(kube_node_watch *w, int status, const char *body, size_t size,
                               const char *error)
{
        w->call = NULL;
        bool healthy = w->got_event || now_nsec() - w->watch_started >= WATCH_HEALTHY;
        if (healthy)
                w->backoff = w->backoff_initial;
        if (status == -ESTALE || status == 410) {
                /* The server answered: it is up (a restarted API server answers every old resourceVersion
                 * so). Re-list after the first, short pause (never a tight loop), not the outage's backoff.
                 */
                w->backoff = w->backoff_initial;
                return retry_later(w, true);
        }
        if (error)
                report_error(w, error);
        if (!error && healthy) {
                w->backoff = w->backoff_initial;
                return start(w); /* the server ended the watch (timeoutSeconds): continue at once */
        }
        retry_later(w, false);
}

static void on_watch_end(int status, const char *body, size_t size, const char *error, void *userdata)
{
        kube_node_watch *w = userdata;
        enter(w);
        on_watch_end_inner(w, status, body, size, error);
        (void)leave(w);
}

static void start(kube_node_watch *w)
{
        _cleanup_free_ char *path = NULL;
        int r;
        if (!w->rv) {
                if (asprintf(&path, "/api/v1/nodes?fieldSelector=metadata.name%%3D%s", w->name) < 0)
                        return retry_later(w, true);
                r = kube_request(w->client, "GET", path, NULL, NULL, LIST_TIMEOUT, on_list, w, &w->call);
        } else {
                if (asprintf(&path,
                             "/api/v1/nodes?fieldSelector=metadata.name%%3D%s&watch=1&resourceVersion=%s"
                             "&timeoutSeconds=%u",
                             w->name, w->rv, w->timeout_seconds) < 0)
                        return retry_later(w, false);
                w->got_event = false;
                w->watch_started = now_nsec();
                r = kube_request_stream(w->client, path, on_line, on_watch_end, w, &w->call);
        }
        if (r < 0)
                retry_later(w, false);
}

static void on_retry(loop_source *s, void *userdata)
{
        kube_node_watch *w = userdata;
        enter(w);
        start(w);
        (void)leave(w);
}

int kube_node_watch_new(kube_client *c, const char *name, const struct kube_node_watch_handler *h,
                        void *userdata, kube_node_watch **ret)
{
        if (!c || !kube_name_valid(name) || !h)
                return -EINVAL;
        kube_node_watch *w = new0(kube_node_watch, 1);
        if (!w)
                return -ENOMEM;
        w->client = c;
        w->h = *h;
        w->userdata = userdata;
        w->backoff_initial = w->backoff = 500 * NSEC_PER_MSEC;
        /* Long watches and no bookmarks: an idle plugin is not woken every minute by a bookmark nor
         * every 5 minutes to start a new watch (its Node's own updates still arrive at once). A
         * resourceVersion that is too old by then gets 410 and one re-list. */
        w->timeout_seconds = 1800;
        w->name = strdup(name);
        /* The first list starts from the loop, as every later attempt does. */
        if (!w->name || loop_add_timer(kube_client_loop(c), 0, on_retry, w, &w->retry) < 0) {
                kube_node_watch_free(w);
                return -ENOMEM;
        }
        *ret = w;
        return 0;
}

void kube_node_watch_set_timing(kube_node_watch *w, uint64_t backoff_initial_nsec, unsigned timeout_seconds)
{
        w->backoff_initial = w->backoff = backoff_initial_nsec;
        w->timeout_seconds = timeout_seconds;
}
