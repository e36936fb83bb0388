/* SPDX-License-Identifier: Apache-2.0 */
/* JSON in and out of the API server: request bodies built with json-c (correct escaping), responses parsed
 * with bounded depth and size. */
#include <inttypes.h>
#include <json-c/json.h>

#include "base/error.h"
#include "base/json.h"
#include "base/strv.h"
#include "kube.h"

/* "key=value" entries into o; keys in remove as null (a merge patch removes those). */
static int add_pairs(json_object *o, char *const *set, char *const *remove)
{
        STRV_FOREACH (kv, set) {
                const char *eq = strchr(*kv, '=');
                if (!eq || eq == *kv)
                        return -EINVAL;
                _cleanup_free_ char *k = strndup(*kv, (size_t)(eq - *kv));
                if (!k || json_add_string(o, k, eq + 1) < 0)
                        return -ENOMEM;
        }
        STRV_FOREACH (k, remove) {
                if (isempty(*k))
                        return -EINVAL;
                if (json_add(o, *k, NULL) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int kube_node_patch_body(char *const *labels_set, char *const *labels_remove, char *const *annotations_set,
                         char **ret)
{
        _cleanup_json_ json_object *root = json_object_new_object();
        json_object *meta = root ? json_add_object(root, "metadata") : NULL;
        json_object *labels = meta ? json_add_object(meta, "labels") : NULL;
        if (!labels)
                return -ENOMEM;
        int r = add_pairs(labels, labels_set, labels_remove);
        if (r < 0)
                return r;
        if (annotations_set) {
                json_object *annotations = json_add_object(meta, "annotations");
                if (!annotations)
                        return -ENOMEM;
                if ((r = add_pairs(annotations, annotations_set, NULL)) < 0)
                        return r;
        }
        return json_format(root, false, ret);
}

static int rfc3339(time_t t, char buf[static 32])
{
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        return 0;
}

int kube_event_body(const struct kube_event *e, const char *default_namespace, char **ret)
{
        if (!e || isempty(e->node) || isempty(e->reason) || !e->message || isempty(e->type))
                return -EINVAL;
        if (!streq(e->type, "Normal") && !streq(e->type, "Warning"))
                return -EINVAL;
        const char *ns = e->namespace ? e->namespace : default_namespace ? default_namespace : "default";
        const char *component = e->component ? e->component : KUBE_EVENT_COMPONENT;
        char ts[32];
        if (rfc3339(e->time.tv_sec, ts) < 0)
                return -EINVAL;
        _cleanup_free_ char *name = NULL;
        uint64_t ns_total = (uint64_t)e->time.tv_sec * 1000000000ULL + (uint64_t)e->time.tv_nsec;
        if (asprintf(&name, "%s.%" PRIx64, e->node, ns_total) < 0)
                return -ENOMEM;

        _cleanup_json_ json_object *root = json_object_new_object();
        if (!root)
                return -ENOMEM;
        bool ok = json_add_string(root, "apiVersion", "v1") == 0 &&
                  json_add_string(root, "kind", "Event") == 0;
        json_object *meta = ok ? json_add_object(root, "metadata") : NULL;
        ok = meta && json_add_string(meta, "name", name) == 0 && json_add_string(meta, "namespace", ns) == 0;
        json_object *io = ok ? json_add_object(root, "involvedObject") : NULL;
        /* The kubelet refers to its Node by name as UID too. */
        ok = io && json_add_string(io, "apiVersion", "v1") == 0 &&
             json_add_string(io, "kind", "Node") == 0 && json_add_string(io, "name", e->node) == 0 &&
             json_add_string(io, "uid", e->node) == 0;
        ok = ok && json_add_string(root, "reason", e->reason) == 0 &&
             json_add_string(root, "message", e->message) == 0 &&
             json_add_string(root, "type", e->type) == 0;
        json_object *source = ok ? json_add_object(root, "source") : NULL;
        ok = source && json_add_string(source, "component", component) == 0 &&
             json_add_string(source, "host", e->node) == 0;
        ok = ok && json_add_string(root, "firstTimestamp", ts) == 0 &&
             json_add_string(root, "lastTimestamp", ts) == 0;
        ok = ok && json_add_int(root, "count", e->count ? e->count : 1) == 0;
        ok = ok && json_add_string(root, "reportingComponent", component) == 0 &&
             json_add_string(root, "reportingInstance", e->node) == 0;
        if (!ok)
                return -ENOMEM;
        return json_format(root, false, ret);
}

int kube_json_parse(const char *text, size_t size, json_object **ret)
{
        return json_parse(text, size, KUBE_MAX_RESPONSE, KUBE_MAX_JSON_DEPTH, ret);
}

char *kube_status_message(const char *body, size_t size)
{
        _cleanup_json_ json_object *o = NULL;
        if (!body || size == 0 || kube_json_parse(body, size, &o) < 0)
                return NULL;
        json_object *kind = json_object_object_get(o, "kind"), *msg = json_object_object_get(o, "message");
        if (!json_object_is_type(kind, json_type_string) || !streq(json_object_get_string(kind), "Status") ||
            !json_object_is_type(msg, json_type_string))
                return NULL;
        return strdup(json_object_get_string(msg));
}

int kube_object_labels(json_object *obj, char ***ret)
{
        json_object *meta = json_object_object_get(obj, "metadata");
        json_object *labels = json_object_object_get(meta, "labels");
        size_t n = json_object_is_type(labels, json_type_object) ? (size_t)json_object_object_length(labels)
                                                                 : 0;
        /* One array for all of them: a Node may carry 100,000 labels, and this runs at every watch event. */
        _cleanup_strv_free_ char **l = new0(char *, n + 1);
        if (!l)
                return -ENOMEM;
        size_t i = 0;
        if (n > 0) {
                json_object_object_foreach(labels, key, val)
                {
                        if (i >= n)
                                break;
                        if (!json_object_is_type(val, json_type_string))
                                continue;
                        if (asprintf(&l[i], "%s=%s", key, json_object_get_string(val)) < 0) {
                                l[i] = NULL;
                                return -ENOMEM;
                        }
                        i++;
                }
        }
        strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}

/* resourceVersions go into URLs: only what they are made of (decimal in etcd, opaque elsewhere). */
static char *rv_of(json_object *obj, bool *ret_oom)
{
        static const char *const path[] = { "metadata", "resourceVersion", NULL };
        const char *rv = json_get_path(obj, path) ? json_object_get_string(json_get_path(obj, path)) : NULL;
        *ret_oom = false;
        if (!json_object_is_type(json_get_path(obj, path), json_type_string) || isempty(rv) ||
            strspn(rv, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.") != strlen(rv))
                return NULL;
        char *s = strdup(rv);
        *ret_oom = !s;
        return s;
}

int kube_node_list_parse(const char *body, size_t size, const char *name, char **ret_rv, char ***ret_labels,
                         char **ret_error)
{
        _cleanup_json_ json_object *o = NULL;
        int r = kube_json_parse(body, size, &o);
        if (r == -ENOMEM)
                return r;
        json_object *items = json_get(o, "items");
        if (r < 0 || !json_object_is_type(items, json_type_array))
                return error_set(ret_error, -EPROTO, "the node list from the API server is not a NodeList");
        bool oom;
        _cleanup_free_ char *rv = rv_of(o, &oom);
        if (oom)
                return -ENOMEM;
        _cleanup_strv_free_ char **labels = NULL;
        static const char *const name_path[] = { "metadata", "name", NULL };
        for (size_t i = 0; i < json_array_size(items); i++) {
                json_object *n = json_array_at(items, i);
                json_object *nm = json_get_path(n, name_path);
                if (json_object_is_type(nm, json_type_string) && streq(json_object_get_string(nm), name)) {
                        if ((r = kube_object_labels(n, &labels)) < 0)
                                return r;
                        break;
                }
        }
        *ret_rv = TAKE_PTR(rv);
        *ret_labels = TAKE_PTR(labels);
        return 0;
}

int kube_watch_event_parse(const char *line, size_t size, struct kube_watch_event *ret, char **ret_error)
{
        static const char *const types[] = {
                [KUBE_WATCH_ADDED] = "ADDED",     [KUBE_WATCH_MODIFIED] = "MODIFIED",
                [KUBE_WATCH_DELETED] = "DELETED", [KUBE_WATCH_BOOKMARK] = "BOOKMARK",
                [KUBE_WATCH_ERROR] = "ERROR",
        };
        _cleanup_json_ json_object *o = NULL;
        int r = kube_json_parse(line, size, &o);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return error_set(ret_error, -EPROTO, "the API server sent a watch event that is not JSON");
        json_object *type = json_get(o, "type"), *obj = json_get(o, "object");
        if (!json_object_is_type(type, json_type_string) || !json_object_is_type(obj, json_type_object))
                return error_set(ret_error, -EPROTO,
                                 "the API server sent a watch event without type or object");
        struct kube_watch_event e = { .type = ELEMENTSOF(types) };
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (streq(json_object_get_string(type), types[i]))
                        e.type = (enum kube_watch_type)i;
        if (e.type == ELEMENTSOF(types))
                return error_set(ret_error, -EPROTO, "the API server sent a watch event of unknown type");
        bool oom;
        e.resource_version = rv_of(obj, &oom);
        const char *msg = json_object_is_type(json_get(obj, "message"), json_type_string)
                                  ? json_object_get_string(json_get(obj, "message"))
                                  : NULL;
        if (!oom && e.type == KUBE_WATCH_ERROR && msg && !(e.message = strdup(msg)))
                oom = true;
        if (!oom && (e.type == KUBE_WATCH_ADDED || e.type == KUBE_WATCH_MODIFIED) &&
            kube_object_labels(obj, &e.labels) < 0)
                oom = true;
        if (oom) {
                kube_watch_event_done(&e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

void kube_watch_event_done(struct kube_watch_event *e)
{
        e->resource_version = mfree(e->resource_version);
        e->labels = strv_free(e->labels);
        e->message = mfree(e->message);
}

/* ---- NodeFeature ------------------------------------------------------------------------------------ */

/* {"<node label>": node} */
static int nodefeature_meta_labels(json_object *meta, const struct kube_nodefeature *nf)
{
        json_object *labels = json_add_object(meta, "labels");
        return labels ? json_add_string(labels, KUBE_NODEFEATURE_NODE_LABEL, nf->node) : -ENOMEM;
}

/* [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}]: the object goes with its Node. */
static int nodefeature_owner(json_object *meta, const struct kube_nodefeature *nf)
{
        json_object *refs = json_add_array(meta, "ownerReferences");
        json_object *ref = refs ? json_object_new_object() : NULL;
        if (!refs || json_append(refs, ref) < 0)
                return -ENOMEM;
        if (json_add_string(ref, "apiVersion", "v1") < 0 || json_add_string(ref, "kind", "Node") < 0 ||
            json_add_string(ref, "name", nf->node) < 0 || json_add_string(ref, "uid", nf->node_uid) < 0)
                return -ENOMEM;
        return 0;
}

/* {"features": {"flags": {}, "attributes": {}, "instances": {}}, "labels": {...}}, as NVIDIA's GFD
 * writes it (NFD's NewFeatures(): empty, not absent). */
static int nodefeature_spec(json_object *root, const struct kube_nodefeature *nf)
{
        json_object *spec = json_add_object(root, "spec");
        if (!spec)
                return -ENOMEM;
        json_object *features = json_add_object(spec, "features"), *labels = json_add_object(spec, "labels");
        if (!features || !labels || !json_add_object(features, "flags") ||
            !json_add_object(features, "attributes") || !json_add_object(features, "instances"))
                return -ENOMEM;
        return add_pairs(labels, nf->labels, NULL);
}

int kube_nodefeature_body(const struct kube_nodefeature *nf, json_object *base, char **ret)
{
        if (!nf || isempty(nf->namespace) || isempty(nf->name) || isempty(nf->node) || isempty(nf->node_uid))
                return -EINVAL;
        _cleanup_json_ json_object *root = base ? json_object_get(base) : json_object_new_object();
        if (!root || !json_object_is_type(root, json_type_object))
                return root ? -EINVAL : -ENOMEM;
        if (json_add_string(root, "apiVersion", KUBE_NODEFEATURE_API_VERSION) < 0 ||
            json_add_string(root, "kind", "NodeFeature") < 0)
                return -ENOMEM;
        json_object *meta = json_object_object_get(root, "metadata");
        if (!json_object_is_type(meta, json_type_object) && !(meta = json_add_object(root, "metadata")))
                return -ENOMEM;
        int r;
        if ((r = json_add_string(meta, "name", nf->name)) < 0 ||
            (r = json_add_string(meta, "namespace", nf->namespace)) < 0 ||
            (r = nodefeature_meta_labels(meta, nf)) < 0 || (r = nodefeature_owner(meta, nf)) < 0 ||
            (r = nodefeature_spec(root, nf)) < 0)
                return r;
        return json_format(root, false, ret);
}

/* Whether a JSON object of strings holds exactly the "key=value" pairs of want (NULL or absent: none). */
static bool string_map_equal(json_object *o, char *const *want)
{
        size_t n = 0;
        if (o && !json_object_is_type(o, json_type_object))
                return false;
        STRV_FOREACH (kv, want) {
                const char *eq = strchr(*kv, '=');
                _cleanup_free_ char *k = eq ? strndup(*kv, (size_t)(eq - *kv)) : NULL;
                json_object *v = k ? json_object_object_get(o, k) : NULL;
                if (!json_object_is_type(v, json_type_string) || !streq(json_object_get_string(v), eq + 1))
                        return false;
                n++;
        }
        return (size_t)(o ? json_object_object_length(o) : 0) == n;
}

/* Absent or {} (Kubernetes' semantic equality takes a nil map for an empty one). */
static bool empty_object(json_object *o)
{
        return !o || (json_object_is_type(o, json_type_object) && json_object_object_length(o) == 0);
}

bool kube_nodefeature_up_to_date(json_object *obj, const struct kube_nodefeature *nf)
{
        json_object *meta = json_object_object_get(obj, "metadata");
        json_object *spec = json_object_object_get(obj, "spec");
        json_object *features = json_object_object_get(spec, "features");
        json_object *refs = json_object_object_get(meta, "ownerReferences");
        const char *node_label = KUBE_NODEFEATURE_NODE_LABEL "=";
        _cleanup_free_ char *kv = NULL;
        if (asprintf(&kv, "%s%s", node_label, nf->node) < 0)
                return false;
        char *const node_labels[] = { kv, NULL };
        if (!string_map_equal(json_object_object_get(meta, "labels"), node_labels) ||
            !string_map_equal(json_object_object_get(spec, "labels"), nf->labels))
                return false;
        if (!empty_object(json_object_object_get(features, "flags")) ||
            !empty_object(json_object_object_get(features, "attributes")) ||
            !empty_object(json_object_object_get(features, "instances")))
                return false;
        /* One owner, our Node (by name: a Node made again under the name gets a new uid, and the garbage
         * collector removes what the old one owned). */
        json_object *ref = json_array_size(refs) == 1 ? json_array_at(refs, 0) : NULL;
        return json_object_is_type(ref, json_type_object) && json_object_object_length(ref) == 4 &&
               streq(strempty(json_text(json_object_object_get(ref, "apiVersion"))), "v1") &&
               streq(strempty(json_text(json_object_object_get(ref, "kind"))), "Node") &&
               streq(strempty(json_text(json_object_object_get(ref, "name"))), nf->node);
}
