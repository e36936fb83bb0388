/* SPDX-License-Identifier: Apache-2.0 */
/* Node mode: the labels applied to the Node object with a JSON merge patch. We remove only labels we
 * applied before (recorded in an annotation), never a label someone else set, and only nvidia.com/
 * keys even if the annotation was edited to name others. */
#include <json-c/json.h>

#include "base/json.h"
#include "base/parse.h"
#include "base/strv.h"
#include "kube/kube.h"
#include "labels.h"

#define OUR_PREFIX    "nvidia.com/"
#define PATCH_TIMEOUT (30 * NSEC_PER_SEC)

/* Our labels as "key=value", the ones we set before and no longer do as keys to remove, and the
 * annotation that records what we set. Linear in the labels and the recorded keys (both may be many). */
static int patch_parts(const labels *l, char *const *previous, char ***ret_set, char ***ret_remove,
                       char ***ret_annotations)
{
        _cleanup_strv_builder_ strv_builder set = {}, remove = {}, applied = {};
        _cleanup_strv_free_ char **annotations = new0(char *, 1);
        if (!annotations)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                if (!startswith(l->items[i].key, OUR_PREFIX))
                        continue;
                char *kv = NULL;
                if (asprintf(&kv, "%s=%s", l->items[i].key, l->items[i].value) < 0 ||
                    strv_builder_push(&set, kv) < 0 || strv_builder_extend(&applied, l->items[i].key) < 0)
                        return -ENOMEM;
        }
        STRV_FOREACH (k, previous)
                if (startswith(*k, OUR_PREFIX) && !labels_get(l, *k) && strv_builder_extend(&remove, *k) < 0)
                        return -ENOMEM;
        _cleanup_strv_free_ char **s = strv_builder_take(&set), **r = strv_builder_take(&remove),
                                 **a = strv_builder_take(&applied);
        if (!s || !r || !a)
                return -ENOMEM;
        _cleanup_free_ char *list = strv_join(a, ",");
        if (!list || strv_extendf(&annotations, "%s=%s", LABELS_NODE_ANNOTATION, list) < 0)
                return -ENOMEM;
        *ret_set = TAKE_PTR(s);
        *ret_remove = TAKE_PTR(r);
        *ret_annotations = TAKE_PTR(annotations);
        return 0;
}

int labels_node_patch(const labels *l, char *const *previous, char **ret_json)
{
        _cleanup_strv_free_ char **set = NULL, **remove = NULL, **annotations = NULL;
        int r = patch_parts(l, previous, &set, &remove, &annotations);
        if (r < 0)
                return r;
        return kube_node_patch_body(set, remove, annotations, ret_json);
}

int labels_node_previous(const char *annotation, char ***ret)
{
        if (isempty(annotation)) {
                char **l = new0(char *, 1);
                if (!l)
                        return -ENOMEM;
                *ret = l;
                return 0;
        }
        return strv_split(annotation, ",", ret);
}

struct apply {
        kube_client *client;
        char *node;
        labels *labels;
        labels_node_done done;
        void *userdata;
};

static struct apply *apply_free(struct apply *a)
{
        if (!a)
                return NULL;
        free(a->node);
        labels_free(a->labels);
        free(a);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct apply *, apply_free);

static void patched(int status, const char *body, size_t size, const char *error, void *userdata)
{
        _cleanup_(apply_freep) struct apply *a = userdata;
        if (status < 200 || status >= 300)
                a->done(status < 0 ? status : -EIO, error, false, a->userdata);
        else
                a->done(0, NULL, true, a->userdata);
}

/* Whether the node already carries exactly our labels, and none we applied before and dropped since.
 * previous is sorted (binary search: a node's labels and the recorded keys may both be many). */
static bool node_up_to_date(const labels *l, char *const *node_labels, char *const *previous)
{
        size_t ours = 0, n_previous = strv_length(previous);
        STRV_FOREACH (kv, node_labels) {
                const char *eq = strchr(*kv, '=');
                if (!eq || !startswith(*kv, OUR_PREFIX))
                        continue;
                _cleanup_free_ char *key = strndup(*kv, (size_t)(eq - *kv));
                const char *want = key ? labels_get(l, key) : NULL;
                if (want && streq(want, eq + 1))
                        ours++;
                else if (!want && key && strv_contains_sorted(previous, n_previous, key))
                        return false; /* one of ours to remove */
        }
        size_t n = 0;
        for (size_t i = 0; i < l->n; i++)
                n += startswith(l->items[i].key, OUR_PREFIX);
        return ours == n;
}

static void got_node(int status, const char *body, size_t size, const char *error, void *userdata)
{
        _cleanup_(apply_freep) struct apply *a = userdata;
        _cleanup_json_ json_object *node = NULL;
        _cleanup_strv_free_ char **previous = NULL, **node_labels = NULL;
        int r;

        if (status < 200 || status >= 300) {
                a->done(status < 0 ? status : -EIO, error, false, a->userdata);
                return;
        }
        if ((r = kube_json_parse(body, size, &node)) < 0) {
                a->done(r, "the API server sent a Node that is not valid JSON", false, a->userdata);
                return;
        }
        static const char *const recorded_path[] = { "metadata", "annotations", LABELS_NODE_ANNOTATION,
                                                     NULL };
        const char *recorded = json_text(json_get_path(node, recorded_path));
        if ((r = labels_node_previous(recorded, &previous)) < 0 ||
            (r = kube_object_labels(node, &node_labels)) < 0) {
                a->done(r, "out of memory", false, a->userdata);
                return;
        }
        strv_sort(previous);
        if (node_up_to_date(a->labels, node_labels, previous)) {
                a->done(0, NULL, false, a->userdata);
                return;
        }
        _cleanup_strv_free_ char **set = NULL, **remove = NULL, **annotations = NULL;
        if ((r = patch_parts(a->labels, previous, &set, &remove, &annotations)) < 0) {
                a->done(r, "out of memory", false, a->userdata);
                return;
        }
        r = kube_patch_node(a->client, a->node, set, remove, annotations, PATCH_TIMEOUT, patched, a);
        if (r < 0) {
                a->done(r, "cannot send the PATCH request", false, a->userdata);
                return;
        }
        TAKE_PTR(a); /* patched() owns it now */
}

int labels_node_apply(kube_client *c, const char *node, const labels *l, labels_node_done done,
                      void *userdata)
{
        if (!kube_name_valid(node))
                return -EINVAL;
        _cleanup_(apply_freep) struct apply *a = new0(struct apply, 1);
        if (!a || !(a->node = strdup(node)) || labels_new(&a->labels) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++)
                if (labels_set(a->labels, l->items[i].key, l->items[i].value) < 0)
                        return -ENOMEM;
        a->client = c;
        a->done = done;
        a->userdata = userdata;
        int r = kube_get_node(c, node, PATCH_TIMEOUT, got_node, a);
        if (r < 0)
                return r;
        TAKE_PTR(a);
        return 0;
}
