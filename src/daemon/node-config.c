/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/node-config.h"

#include "base/log.h"
#include "base/strv.h"

struct node_config_watch {
        kube_node_watch *watch;
        char *value;
        node_config_handler cb;
        void *userdata;
};

static void on_node_labels(char *const *labels, void *userdata)
{
        node_config_watch *w = userdata;
        const char *value = NULL;
        STRV_FOREACH (kv, labels)
                if (startswith(*kv, NODE_CONFIG_LABEL "="))
                        value = *kv + strlen(NODE_CONFIG_LABEL "=");
        if (streq(strempty(value), strempty(w->value)))
                return;
        char *copy = value ? strdup(value) : NULL;
        if (value && !copy)
                return;
        free(w->value);
        w->value = copy;
        _cleanup_free_ char *why = NULL;
        if (asprintf(&why, "Node label %s is now \"%s\"", NODE_CONFIG_LABEL, strempty(value)) >= 0)
                w->cb(why, w->userdata);
}

static void on_node_watch_error(const char *error, void *userdata)
{
        log_warning("Watching this node's labels: %s (retrying)", error);
}

void node_config_watch_start(loop *l, kube_client **kube, node_config_handler cb, void *userdata,
                             node_config_watch **ret)
{
        *ret = NULL;
        const char *node = getenv("NODE_NAME");
        if (isempty(getenv("CONFIG_FILE_SRCDIR")) || isempty(node))
                return;
        _cleanup_free_ char *error = NULL;
        int r = *kube ? 0 : kube_client_new_from_env(l, getenv("KUBECONFIG"), kube, &error);
        if (r < 0) {
                log_warning("Cannot reach the API server (%s): the node label %s is not followed",
                            error ? error : strerror(-r), NODE_CONFIG_LABEL);
                return;
        }
        node_config_watch *w = new0(node_config_watch, 1);
        if (!w) {
                log_warning("Out of memory: the node label %s is not followed", NODE_CONFIG_LABEL);
                return;
        }
        w->cb = cb;
        w->userdata = userdata;
        static const struct kube_node_watch_handler h = { on_node_labels, on_node_watch_error };
        r = kube_node_watch_new(*kube, node, &h, w, &w->watch);
        if (r < 0) {
                log_warning_errno(r, "Cannot watch node %s: %m", node);
                free(w);
                return;
        }
        *ret = w;
}

node_config_watch *node_config_watch_free(node_config_watch *w)
{
        if (!w)
                return NULL;
        kube_node_watch_free(w->watch);
        free(w->value);
        free(w);
        return NULL;
}

const char *node_config_watch_value(const node_config_watch *w)
{
        return w ? w->value : NULL;
}
