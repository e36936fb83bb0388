/* SPDX-License-Identifier: Apache-2.0 */
/* The few API calls nvdp makes: read a Node, merge-patch its labels, post an Event about it. */
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
                      void *userdata)
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
        return kube_request(c, "POST", path, "application/json", body, timeout_nsec, cb, userdata, NULL);
}
