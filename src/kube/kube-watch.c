/* SPDX-License-Identifier: Apache-2.0 */
/* One Node's labels, kept current: list, then watch from the list's resourceVersion (the informer pattern
 * of client-go reduced to one object). */
#include <json-c/json.h>

#include "base/json.h"
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

static bool rv_valid(const char *rv)
{
        /* It goes into a URL: only what resourceVersions are made of (decimal in etcd, opaque elsewhere). */
        return strspn(rv, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.") == strlen(rv);
}

static void set_rv(kube_node_watch *w, json_object *obj)
{
        json_object *rv = json_object_object_get(json_object_object_get(obj, "metadata"), "resourceVersion");
        if (!json_object_is_type(rv, json_type_string) || !rv_valid(json_object_get_string(rv)))
                return;
        char *s = strdup(json_object_get_string(rv));
        if (s) {
                free(w->rv);
                w->rv = s;
        }
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
        _cleanup_json_ json_object *o = NULL;
        json_object *items;
        if (kube_json_parse(body, size, &o) < 0 ||
            !json_object_is_type(items = json_object_object_get(o, "items"), json_type_array)) {
                report_error(w, "the node list from the API server is not a NodeList");
                return retry_later(w, true);
        }
        set_rv(w, o);
        char **labels = NULL;
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                json_object *n = json_object_array_get_idx(items, i);
                json_object *name = json_object_object_get(json_object_object_get(n, "metadata"), "name");
                if (json_object_is_type(name, json_type_string) &&
                    streq(json_object_get_string(name), w->name)) {
                        if (kube_object_labels(n, &labels) < 0)
                                return retry_later(w, true);
                        break;
                }
        }
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
        _cleanup_json_ json_object *o = NULL;
        if (kube_json_parse(line, size, &o) < 0) {
                report_error(w, "the API server sent a watch event that is not JSON");
                return -EPROTO;
        }
        json_object *type = json_object_object_get(o, "type"), *obj = json_object_object_get(o, "object");
        if (!json_object_is_type(type, json_type_string) || !json_object_is_type(obj, json_type_object)) {
                report_error(w, "the API server sent a watch event without type or object");
                return -EPROTO;
        }
        const char *t = json_object_get_string(type);
        if (streq(t, "ERROR")) {
                json_object *code = json_object_object_get(obj, "code"),
                            *msg = json_object_object_get(obj, "message");
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "watch of node %s: %s", w->name,
                             json_object_is_type(msg, json_type_string) ? json_object_get_string(msg)
                                                                        : "error event") >= 0)
                        report_error(w, m);
                /* 410 Gone: our resourceVersion is too old; anything else: start over as well. */
                (void)code;
                return -ESTALE;
        }
        w->got_event = true;
        set_rv(w, obj);
        if (streq(t, "BOOKMARK"))
                return 0;
        if (streq(t, "DELETED")) {
                deliver(w, NULL);
                return 0;
        }
        if (streq(t, "ADDED") || streq(t, "MODIFIED")) {
                char **labels;
                if (kube_object_labels(obj, &labels) < 0)
                        return -ENOMEM;
                deliver(w, labels);
        }
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
        if (status == -ESTALE || status == 410)
                return retry_later(w, true); /* re-list (after a short pause: never a tight loop) */
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
                             "&allowWatchBookmarks=true&timeoutSeconds=%u",
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
        w->timeout_seconds = 300;
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
