/* SPDX-License-Identifier: Apache-2.0 */
/* The few API calls nvdp makes: read a Node, merge-patch its labels, post an Event about it, read and
 * write a NodeFeature. */
#include "kube.h"

bool kube_name_valid(const char *name)
{
        if (isempty(name) || strlen(name) > 253)
                return false;
        /* RFC 1123 subdomain: lower-case alphanumerics, '-' and '.', alphanumeric at both ends. */
        if (strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-.") != strlen(name))
                return false;
        char first = name[0], last = name[strlen(name) - 1];
        return first != '-' && first != '.' && last != '-' && last != '.';
}

int kube_get_node(kube_client *c, const char *name, uint64_t timeout_nsec, kube_response_fn cb,
                  void *userdata)
{
        if (!kube_name_valid(name))
                return -EINVAL;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/api/v1/nodes/%s", name) < 0)
                return -ENOMEM;
        return kube_request(c, "GET", path, NULL, NULL, timeout_nsec, cb, userdata, NULL);
}

int kube_patch_node(kube_client *c, const char *name, char *const *labels_set, char *const *labels_remove,
                    char *const *annotations_set, uint64_t timeout_nsec, kube_response_fn cb, void *userdata)
{
        if (!kube_name_valid(name))
                return -EINVAL;
        _cleanup_free_ char *path = NULL, *body = NULL;
        int r = kube_node_patch_body(labels_set, labels_remove, annotations_set, &body);
        if (r < 0)
                return r;
        if (asprintf(&path, "/api/v1/nodes/%s", name) < 0)
                return -ENOMEM;
        return kube_request(c, "PATCH", path, "application/merge-patch+json", body, timeout_nsec, cb,
                            userdata, NULL);
}

int kube_create_event(kube_client *c, const struct kube_event *e, uint64_t timeout_nsec, kube_response_fn cb,
                      void *userdata, kube_call **ret)
{
        if (!e || !kube_name_valid(e->node))
                return -EINVAL;
        /* The API server keeps events about cluster-scoped objects (a Node) in "default". */
        const char *ns = e->namespace ? e->namespace : "default";
        if (!kube_name_valid(ns))
                return -EINVAL;
        _cleanup_free_ char *path = NULL, *body = NULL;
        int r = kube_event_body(e, ns, &body);
        if (r < 0)
                return r;
        if (asprintf(&path, "/api/v1/namespaces/%s/events", ns) < 0)
                return -ENOMEM;
        return kube_request(c, "POST", path, "application/json", body, timeout_nsec, cb, userdata, ret);
}

static int nodefeature_path(const char *namespace, const char *name, char **ret)
{
        if (!kube_name_valid(namespace) || (name && !kube_name_valid(name)))
                return -EINVAL;
        return asprintf(ret, "/apis/" KUBE_NODEFEATURE_API_VERSION "/namespaces/%s/nodefeatures%s%s",
                        namespace, name ? "/" : "", strempty(name)) < 0
                       ? -ENOMEM
                       : 0;
}

int kube_get_nodefeature(kube_client *c, const char *namespace, const char *name, uint64_t timeout_nsec,
                         kube_response_fn cb, void *userdata)
{
        _cleanup_free_ char *path = NULL;
        int r = nodefeature_path(namespace, name, &path);
        if (r < 0)
                return r;
        return kube_request(c, "GET", path, NULL, NULL, timeout_nsec, cb, userdata, NULL);
}

int kube_put_nodefeature(kube_client *c, const struct kube_nodefeature *nf, struct json_object *base,
                         uint64_t timeout_nsec, kube_response_fn cb, void *userdata)
{
        _cleanup_free_ char *path = NULL, *body = NULL;
        int r = nf ? nodefeature_path(nf->namespace, base ? nf->name : NULL, &path) : -EINVAL;
        if (r >= 0)
                r = kube_nodefeature_body(nf, base, &body);
        if (r < 0)
                return r;
        return kube_request(c, base ? "PUT" : "POST", path, "application/json", body, timeout_nsec, cb,
                            userdata, NULL);
}
