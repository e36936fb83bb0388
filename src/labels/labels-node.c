/* SPDX-License-Identifier: Apache-2.0 */
/* Node mode: the labels applied to the Node object with a JSON merge patch. We remove only labels we
 * applied before (recorded in an annotation), never a label someone else set, and only nvidia.com/
 * keys even if the annotation was edited to name others. */
#include <json-c/json.h>

#include "base/strv.h"
#include "labels.h"

#define OUR_PREFIX "nvidia.com/"

static void json_putp(json_object **o)
{
        if (*o)
                json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

/* json-c takes the reference of val even when adding fails. */
static int add(json_object *obj, const char *key, json_object *val)
{
        return json_object_object_add(obj, key, val) < 0 ? -ENOMEM : 0;
}

int labels_node_patch(const labels *l, char *const *previous, char **ret_json)
{
        _cleanup_json_ json_object *root = json_object_new_object();
        json_object *metadata = json_object_new_object();
        json_object *lab = json_object_new_object();
        json_object *annotations = json_object_new_object();
        if (!root || !metadata || !lab || !annotations) {
                json_object_put(metadata);
                json_object_put(lab);
                json_object_put(annotations);
                return -ENOMEM;
        }
        if (add(root, "metadata", metadata) < 0) {
                json_object_put(lab);
                json_object_put(annotations);
                return -ENOMEM;
        }
        if (add(metadata, "labels", lab) < 0) {
                json_object_put(annotations);
                return -ENOMEM;
        }
        if (add(metadata, "annotations", annotations) < 0)
                return -ENOMEM;

        _cleanup_strv_free_ char **applied = new0(char *, 1);
        if (!applied)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                if (!startswith(l->items[i].key, OUR_PREFIX))
                        continue;
                json_object *v = json_object_new_string(l->items[i].value);
                if (!v || add(lab, l->items[i].key, v) < 0 || strv_extend(&applied, l->items[i].key) < 0)
                        return -ENOMEM;
        }
        STRV_FOREACH (k, previous) {
                /* A null member in a merge patch deletes the label. */
                if (!startswith(*k, OUR_PREFIX) || labels_get(l, *k))
                        continue;
                if (add(lab, *k, NULL) < 0)
                        return -ENOMEM;
        }

        _cleanup_free_ char *list = strv_join(applied, ",");
        json_object *v = list ? json_object_new_string(list) : NULL;
        if (!v || add(annotations, LABELS_NODE_ANNOTATION, v) < 0)
                return -ENOMEM;

        const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
        char *copy = s ? strdup(s) : NULL;
        if (!copy)
                return -ENOMEM;
        *ret_json = copy;
        return 0;
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

int labels_node_apply(const labels *l, char *const *previous, char **ret_error)
{
        /* The seam for the Kubernetes API client (HTTP/2 + TLS) that another module provides:
         * GET the Node, labels_node_previous() on its annotation, PATCH labels_node_patch()
         * with Content-Type application/merge-patch+json. */
        if (ret_error && !(*ret_error = strdup("--output=node is not available yet: this build has no "
                                               "Kubernetes API client; use --output-file.")))
                return -ENOMEM;
        return -EOPNOTSUPP;
}
