/* SPDX-License-Identifier: Apache-2.0 */
/* NodeFeature mode (--use-node-feature-api, upstream's default): the labels go into the node's NodeFeature
 * object (nfd.k8s-sigs.io/v1alpha1, "nvidia-features-for-<node>" in GFD's namespace), from which NFD's
 * master labels the Node. One GET per round; the object is written only when it would change. */
#include <json-c/json.h>

#include "base/json.h"
#include "base/parse.h"
#include "base/strv.h"
#include "kube/kube.h"
#include "labels.h"

#define REQUEST_TIMEOUT (30 * NSEC_PER_SEC)

struct nf_apply {
        kube_client *client;
        char *namespace, *name, *node;
        char **labels;        /* "key=value" */
        json_object *current; /* the object as read; NULL when there is none */
        labels_node_done done;
        void *userdata;
};

static struct nf_apply *nf_apply_free(struct nf_apply *a)
{
        if (!a)
                return NULL;
        free(a->namespace);
        free(a->name);
        free(a->node);
        strv_free(a->labels);
        json_object_put(a->current);
        free(a);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nf_apply *, nf_apply_free);

static struct kube_nodefeature nf_of(const struct nf_apply *a, const char *node_uid)
{
        return (struct kube_nodefeature){ .namespace = a->namespace,
                                          .name = a->name,
                                          .node = a->node,
                                          .node_uid = node_uid,
                                          .labels = a->labels };
}

static void written(int status, const char *body, size_t size, const char *error, void *userdata)
{
        _cleanup_(nf_apply_freep) struct nf_apply *a = userdata;
        if (status < 200 || status >= 300)
                a->done(status < 0 ? status : -EIO, error, false, a->userdata);
        else
                a->done(0, NULL, true, a->userdata);
}

/* The Node's uid, for the owner reference; then the create or the update. */
static void got_node(int status, const char *body, size_t size, const char *error, void *userdata)
{
        _cleanup_(nf_apply_freep) struct nf_apply *a = userdata;
        _cleanup_json_ json_object *node = NULL;
        if (status < 200 || status >= 300) {
                a->done(status < 0 ? status : -EIO, error, false, a->userdata);
                return;
        }
        static const char *const uid_path[] = { "metadata", "uid", NULL };
        const char *uid =
                kube_json_parse(body, size, &node) >= 0 ? json_text(json_get_path(node, uid_path)) : NULL;
        if (isempty(uid)) {
                a->done(-EBADMSG, "the API server sent a Node without metadata.uid", false, a->userdata);
                return;
        }
        struct kube_nodefeature nf = nf_of(a, uid);
        int r = kube_put_nodefeature(a->client, &nf, a->current, REQUEST_TIMEOUT, written, a);
        if (r < 0) {
                a->done(r, "cannot send the NodeFeature request", false, a->userdata);
                return;
        }
        TAKE_PTR(a); /* written() owns it now */
}

static void got_nodefeature(int status, const char *body, size_t size, const char *error, void *userdata)
{
        _cleanup_(nf_apply_freep) struct nf_apply *a = userdata;
        if (status != 404 && (status < 200 || status >= 300)) {
                a->done(status < 0 ? status : -EIO, error, false, a->userdata);
                return;
        }
        if (status != 404) {
                int r = kube_json_parse(body, size, &a->current);
                if (r < 0 || !json_object_is_type(a->current, json_type_object)) {
                        a->done(r < 0 ? r : -EBADMSG,
                                "the API server sent a NodeFeature that is not a JSON object", false,
                                a->userdata);
                        return;
                }
                struct kube_nodefeature nf = nf_of(a, NULL);
                if (kube_nodefeature_up_to_date(a->current, &nf)) {
                        a->done(0, NULL, false, a->userdata);
                        return;
                }
        }
        int r = kube_get_node(a->client, a->node, REQUEST_TIMEOUT, got_node, a);
        if (r < 0) {
                a->done(r, "cannot send the Node request", false, a->userdata);
                return;
        }
        TAKE_PTR(a); /* got_node() owns it now */
}

int labels_nodefeature_apply(kube_client *c, const char *namespace, const char *node, const labels *l,
                             labels_node_done done, void *userdata)
{
        _cleanup_(nf_apply_freep) struct nf_apply *a = new0(struct nf_apply, 1);
        if (!a)
                return -ENOMEM;
        if (!kube_name_valid(namespace) || !kube_name_valid(node) ||
            strlen(node) > 253 - strlen(LABELS_NODEFEATURE_PREFIX))
                return -EINVAL;
        _cleanup_free_ char *name = NULL;
        if (asprintf(&name, "%s%s", LABELS_NODEFEATURE_PREFIX, node) < 0)
                return -ENOMEM;
        a->name = TAKE_PTR(name);
        if (!(a->namespace = strdup(namespace)) || !(a->node = strdup(node)) ||
            !(a->labels = new0(char *, 1)))
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++)
                if (strv_extendf(&a->labels, "%s=%s", l->items[i].key, l->items[i].value) < 0)
                        return -ENOMEM;
        a->client = c;
        a->done = done;
        a->userdata = userdata;
        int r = kube_get_nodefeature(c, namespace, a->name, REQUEST_TIMEOUT, got_nodefeature, a);
        if (r < 0)
                return r;
        TAKE_PTR(a); /* got_nodefeature() owns it now */
        return 0;
}
