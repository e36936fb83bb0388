/* SPDX-License-Identifier: Apache-2.0 */
/* One publication at a time, as a chain of API calls: the Node (its UID, once), the node's slices as the
 * API server has them, an apply per slice, a delete per slice no longer published. A request to publish
 * while a chain runs is remembered and runs when it ends. */
#include "dra/dra-publisher.h"

#include <inttypes.h>
#include <json-c/json.h>

#include "base/json.h"
#include "base/parse.h"
#include "base/strv.h"

#define CALL_TIMEOUT    (30 * NSEC_PER_SEC)
#define SLICES_PATH     "/apis/resource.k8s.io/v1/resourceslices"
#define FIELD_MANAGER   "nvdp"
#define DEFAULT_BACKOFF (1 * NSEC_PER_SEC)
#define DEFAULT_MAX     (5 * 60 * NSEC_PER_SEC)
#define DEFAULT_RESYNC  (60 * NSEC_PER_SEC)

struct dra_publisher {
        kube_client *kube;
        const inventory *inventory;
        const health_tracker *health;
        char *node, *node_uid;
        enum dra_unhealthy unhealthy;
        uint64_t backoff_initial, backoff_max, backoff, resync;
        dra_publisher_event_fn on_event;
        void *userdata;

        loop_source *timer; /* the retry after a failure, or the next check */
        kube_call *call;    /* the one request in flight */
        bool busy, dirty, failing;

        int64_t generation; /* of the pool as last written; 0: never */
        char **published;   /* the slices as last written (JSON) */
        char **desired;     /* what this chain writes */
        char **existing;    /* names the API server holds */
        size_t step;        /* the slice being applied, then the name being deleted */
        size_t n_tainted;   /* devices with a taint in desired */
};

static void chain_start(dra_publisher *p);

static void emit(dra_publisher *p, enum dra_publish_event e, const char *detail)
{
        if (p->on_event)
                p->on_event(e, detail, p->userdata);
}

/* The chain ends: success re-arms the periodic check, failure a retry with backoff. */
static void chain_end(dra_publisher *p, const char *error)
{
        p->busy = false;
        p->call = NULL;
        p->desired = strv_free(p->desired);
        p->existing = strv_free(p->existing);
        if (error) {
                if (!p->failing)
                        emit(p, DRA_PUBLISH_FAILED, error);
                p->failing = true;
                loop_timer_arm(p->timer, p->backoff);
                p->backoff = MIN(p->backoff * 2, p->backoff_max);
                return;
        }
        p->backoff = p->backoff_initial;
        if (p->dirty) {
                p->dirty = false;
                chain_start(p);
                return;
        }
        loop_timer_arm(p->timer, p->resync);
}

static void chain_fail(dra_publisher *p, const char *what, int status, const char *error)
{
        _cleanup_free_ char *msg = NULL;
        if (asprintf(&msg, "%s: %s", what, error ? error : status < 0 ? strerror(-status) : "failed") < 0)
                msg = NULL;
        chain_end(p, msg ? msg : what);
}

static void next_delete(dra_publisher *p);

static void delete_done(int status, const char *body, size_t size, const char *error, void *userdata)
{
        dra_publisher *p = userdata;
        p->call = NULL;
        /* Gone already is as good as deleted. */
        if ((status < 200 || status > 299) && status != 404) {
                chain_fail(p, "deleting a ResourceSlice no longer published", status, error);
                return;
        }
        p->step++;
        next_delete(p);
}

/* Deletes the names the API server holds that are not published any more, then ends the chain. */
static void next_delete(dra_publisher *p)
{
        for (; p->existing && p->existing[p->step]; p->step++) {
                const char *name = p->existing[p->step];
                bool keep = false;
                for (size_t i = 0; p->published && p->published[i] && !keep; i++) {
                        _cleanup_free_ char *own = NULL;
                        keep = dra_slice_name(p->node, i, &own) >= 0 && streq(own, name);
                }
                if (keep)
                        continue;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, SLICES_PATH "/%s", name) < 0) {
                        chain_end(p, "out of memory");
                        return;
                }
                int r = kube_request(p->kube, "DELETE", path, NULL, NULL, CALL_TIMEOUT, delete_done, p,
                                     &p->call);
                if (r < 0) {
                        chain_fail(p, "deleting a ResourceSlice", r, NULL);
                        return;
                }
                return;
        }
        bool recovered = p->failing;
        p->failing = false;
        _cleanup_free_ char *what = NULL;
        if (asprintf(&what, "%zu ResourceSlice(s) of node %s, pool generation %" PRId64,
                     strv_length(p->published), p->node, p->generation) < 0)
                what = NULL;
        emit(p, recovered ? DRA_PUBLISH_RECOVERED : DRA_PUBLISHED, what ? what : "ResourceSlices written");
        chain_end(p, NULL);
}

/* Devices of an applied slice that kept their taints. */
static size_t tainted_in(const char *body, size_t size)
{
        _cleanup_json_ json_object *o = NULL;
        if (kube_json_parse(body, size, &o) < 0)
                return 0;
        json_object *devices = json_get_path(o, (const char *const[]){ "spec", "devices", NULL });
        size_t n = 0;
        for (size_t i = 0; i < json_array_size(devices); i++)
                n += json_array_size(json_get(json_array_at(devices, i), "taints")) > 0;
        return n;
}

static void next_apply(dra_publisher *p);

static void apply_done(int status, const char *body, size_t size, const char *error, void *userdata)
{
        dra_publisher *p = userdata;
        p->call = NULL;
        if (status < 200 || status > 299) {
                chain_fail(p, "writing ResourceSlice", status, error);
                return;
        }
        if (p->n_tainted > 0 && p->unhealthy == DRA_UNHEALTHY_TAINT &&
            strstr(p->desired[p->step], "\"taints\"") && tainted_in(body, size) == 0) {
                /* DRADeviceTaints is off in this cluster: an untainted unhealthy device would be allocated.
                 */
                p->unhealthy = DRA_UNHEALTHY_REMOVE;
                emit(p, DRA_TAINTS_DROPPED,
                     "the API server dropped the device taints (DRADeviceTaints off): unhealthy devices "
                     "leave the "
                     "ResourceSlices instead");
                p->dirty = true;
        }
        p->step++;
        next_apply(p);
}

static void next_apply(dra_publisher *p)
{
        if (p->desired && p->desired[p->step]) {
                _cleanup_free_ char *name = NULL, *path = NULL;
                if (dra_slice_name(p->node, p->step, &name) < 0 ||
                    asprintf(&path, SLICES_PATH "/%s?fieldManager=" FIELD_MANAGER "&force=true", name) < 0) {
                        chain_end(p, "out of memory");
                        return;
                }
                int r = kube_request(p->kube, "PATCH", path, "application/apply-patch+yaml",
                                     p->desired[p->step], CALL_TIMEOUT, apply_done, p, &p->call);
                if (r < 0) {
                        chain_fail(p, "writing ResourceSlice", r, NULL);
                        return;
                }
                return;
        }
        /* Written: from now on this is what the API server holds. */
        strv_free(p->published);
        p->published = TAKE_PTR(p->desired);
        p->step = 0;
        next_delete(p);
}

static int build(dra_publisher *p, int64_t generation, char ***ret, char **ret_error)
{
        struct dra_slice_params params = {
                .node = p->node, .node_uid = p->node_uid, .generation = generation, .unhealthy = p->unhealthy
        };
        return dra_slices_build(p->inventory, p->health, &params, ret, ret_error);
}

static void list_done(int status, const char *body, size_t size, const char *error, void *userdata)
{
        dra_publisher *p = userdata;
        p->call = NULL;
        if (status < 200 || status > 299) {
                chain_fail(p, "listing the node's ResourceSlices", status, error);
                return;
        }
        _cleanup_free_ char *why = NULL;
        int64_t held = 0;
        int r = dra_slice_list_parse(body, size, p->node, &p->existing, &held, &why);
        if (r < 0) {
                chain_fail(p, "listing the node's ResourceSlices", r, why);
                return;
        }

        /* The content at the current generation; a change of content takes the next one. A pool the API
         * server holds at a higher generation (another instance wrote it) is overtaken. */
        int64_t gen = MAX(p->generation, held);
        if (gen == 0)
                gen = 1;
        r = build(p, gen, &p->desired, &why);
        if (r < 0) {
                chain_fail(p, "building the ResourceSlices", r, why);
                return;
        }
        bool same = p->published && strv_equal(p->desired, p->published);
        if (!same && (p->published || held >= gen)) {
                gen = MAX(gen, held) + 1;
                p->desired = strv_free(p->desired);
                if ((r = build(p, gen, &p->desired, &why)) < 0) {
                        chain_fail(p, "building the ResourceSlices", r, why);
                        return;
                }
        }
        /* Count what must keep taints: the answer shows whether the API server kept them. */
        p->n_tainted = 0;
        STRV_FOREACH (s, p->desired)
                p->n_tainted += strstr(*s, "\"taints\"") != NULL;

        bool all_there = strv_length(p->existing) == strv_length(p->desired) && held == gen;
        for (size_t i = 0; all_there && p->desired[i]; i++) {
                _cleanup_free_ char *name = NULL;
                all_there = dra_slice_name(p->node, i, &name) >= 0 && strv_contains(p->existing, name);
        }
        if (same && all_there) {
                /* Nothing to do: a periodic check found everything in place. */
                p->failing = false;
                {
                        chain_end(p, NULL);
                        return;
                }
        }
        p->generation = gen;
        p->step = 0;
        next_apply(p);
}

static void list(dra_publisher *p)
{
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, SLICES_PATH "?fieldSelector=spec.nodeName%%3D%s%%2Cspec.driver%%3D" DRA_DRIVER,
                     p->node) < 0) {
                chain_end(p, "out of memory");
                return;
        }
        int r = kube_request(p->kube, "GET", path, NULL, NULL, CALL_TIMEOUT, list_done, p, &p->call);
        if (r < 0)
                chain_fail(p, "listing the node's ResourceSlices", r, NULL);
}

static void node_done(int status, const char *body, size_t size, const char *error, void *userdata)
{
        dra_publisher *p = userdata;
        p->call = NULL;
        if (status < 200 || status > 299) {
                chain_fail(p, "reading this node's Node object", status, error);
                return;
        }
        _cleanup_json_ json_object *o = NULL;
        const char *uid =
                kube_json_parse(body, size, &o) >= 0
                        ? json_text(json_get_path(o, (const char *const[]){ "metadata", "uid", NULL }))
                        : NULL;
        if (isempty(uid)) {
                chain_fail(p, "reading this node's Node object", -EBADMSG, "it has no metadata.uid");
                return;
        }
        p->node_uid = strdup(uid);
        if (!p->node_uid) {
                chain_end(p, "out of memory");
                return;
        }
        list(p);
}

static void chain_start(dra_publisher *p)
{
        if (p->busy) {
                p->dirty = true;
                return;
        }
        p->busy = true;
        loop_timer_disarm(p->timer);
        if (p->node_uid) {
                list(p);
                return;
        }
        /* The slices are owned by the Node (deleted with it): its UID is needed once. */
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/api/v1/nodes/%s", p->node) < 0) {
                chain_end(p, "out of memory");
                return;
        }
        int r = kube_request(p->kube, "GET", path, NULL, NULL, CALL_TIMEOUT, node_done, p, &p->call);
        if (r < 0)
                chain_fail(p, "reading this node's Node object", r, NULL);
}

static void on_timer(loop_source *s, void *userdata)
{
        chain_start(userdata);
}

int dra_publisher_new(kube_client *kube, const inventory *inv, const health_tracker *health,
                      const struct dra_publisher_options *o, dra_publisher **ret)
{
        if (!o || !kube_name_valid(o->node))
                return -EINVAL;
        _cleanup_(dra_publisher_freep) dra_publisher *p = new0(dra_publisher, 1);
        if (!p || !(p->node = strdup(o->node)))
                return -ENOMEM;
        p->kube = kube;
        p->inventory = inv;
        p->health = health;
        p->unhealthy = DRA_UNHEALTHY_TAINT;
        p->backoff_initial = p->backoff = o->backoff_initial ? o->backoff_initial : DEFAULT_BACKOFF;
        p->backoff_max = o->backoff_max ? o->backoff_max : DEFAULT_MAX;
        p->resync = o->resync ? o->resync : DEFAULT_RESYNC;
        p->on_event = o->on_event;
        p->userdata = o->userdata;
        int r = loop_add_timer(kube_client_loop(kube), 0, on_timer, p, &p->timer);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

dra_publisher *dra_publisher_free(dra_publisher *p)
{
        if (!p)
                return NULL;
        kube_call_cancel(p->call);
        loop_source_free(p->timer);
        strv_free(p->published);
        strv_free(p->desired);
        strv_free(p->existing);
        free(p->node);
        free(p->node_uid);
        return mfree(p);
}

void dra_publisher_set_health(dra_publisher *p, const health_tracker *health)
{
        p->health = health;
}

void dra_publisher_sync(dra_publisher *p)
{
        if (p->failing && loop_timer_armed(p->timer))
                return; /* the retry is already due; its backoff stays */
        chain_start(p);
}

int64_t dra_publisher_generation(const dra_publisher *p)
{
        return p->generation;
}
