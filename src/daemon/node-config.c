/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/node-config.h"

#include "base/log.h"
#include "base/strv.h"

struct node_config_watch {
        kube_node_watch *watch;
        char *value;     /* of NODE_CONFIG_LABEL */
        char *mig_state; /* of NODE_MIG_STATE_LABEL */
        bool listed;     /* the labels were seen once */
        struct node_config_watch_options o;
        void (*on_first_answer)(void *userdata);
};

static const char *label_value(char *const *labels, const char *key)
{
        size_t n = strlen(key);
        STRV_FOREACH (kv, labels)
                if (strneq(*kv, key, n) && (*kv)[n] == '=')
                        return *kv + n + 1;
        return NULL;
}

/* Keeps the label's value in *stored; true when it changed. */
static bool label_changed(char *const *labels, const char *key, char **stored)
{
        const char *value = label_value(labels, key);
        if (streq(strempty(value), strempty(*stored)))
                return false;
        char *copy = value ? strdup(value) : NULL;
        if (value && !copy)
                return false;
        free(*stored);
        *stored = copy;
        return true;
}

static void on_node_labels(char *const *labels, void *userdata)
{
        node_config_watch *w = userdata;
        bool first = !w->listed;
        w->listed = true;
        _cleanup_free_ char *why = NULL;
        if (w->o.on_config && label_changed(labels, NODE_CONFIG_LABEL, &w->value) &&
            asprintf(&why, "Node label %s is now \"%s\"", NODE_CONFIG_LABEL, strempty(w->value)) >= 0)
                w->o.on_config(why, w->o.userdata);
        why = mfree(why);
        /* "success" as first seen is the layout the plugin read at start: only a change to it counts. */
        if (w->o.on_mig_configured && label_changed(labels, NODE_MIG_STATE_LABEL, &w->mig_state) && !first &&
            streq(strempty(w->mig_state), "success") &&
            asprintf(&why, "Node label %s is now \"success\"", NODE_MIG_STATE_LABEL) >= 0)
                w->o.on_mig_configured(why, w->o.userdata);
        /* After the change callbacks: the first answer's. */
        if (first && w->on_first_answer)
                w->on_first_answer(w->o.userdata);
}

static void on_node_watch_error(const char *error, void *userdata)
{
        log_warning("Watching this node's labels: %s (retrying)", error);
}

void node_config_watch_start_with(loop *l, kube_client **kube, const struct node_config_watch_options *o,
                                  node_config_watch **ret)
{
        *ret = NULL;
        const char *node = getenv("NODE_NAME");
        struct node_config_watch_options opts = *o;
        if (isempty(getenv("CONFIG_FILE_SRCDIR")))
                opts.on_config = NULL;
        if (isempty(node) || (!opts.on_config && !opts.on_mig_configured))
                return;
        const char *what = opts.on_config ? "the node label " NODE_CONFIG_LABEL
                                          : "the node label " NODE_MIG_STATE_LABEL;
        _cleanup_free_ char *error = NULL;
        int r = *kube ? 0 : kube_client_new_from_env(l, getenv("KUBECONFIG"), kube, &error);
        if (r < 0) {
                log_warning("Cannot reach the API server (%s): %s is not followed",
                            error ? error : strerror(-r), what);
                return;
        }
        node_config_watch *w = new0(node_config_watch, 1);
        if (!w) {
                log_warning("Out of memory: %s is not followed", what);
                return;
        }
        w->o = opts;
        static const struct kube_node_watch_handler h = { on_node_labels, on_node_watch_error };
        r = kube_node_watch_new(*kube, node, &h, w, &w->watch);
        if (r < 0) {
                log_warning_errno(r, "Cannot watch node %s: %m", node);
                free(w);
                return;
        }
        *ret = w;
}

void node_config_watch_start(loop *l, kube_client **kube, node_config_handler cb, void *userdata,
                             node_config_watch **ret)
{
        const struct node_config_watch_options o = { .on_config = cb, .userdata = userdata };
        node_config_watch_start_with(l, kube, &o, ret);
}

node_config_watch *node_config_watch_free(node_config_watch *w)
{
        if (!w)
                return NULL;
        kube_node_watch_free(w->watch);
        free(w->value);
        free(w->mig_state);
        free(w);
        return NULL;
}

const char *node_config_watch_value(const node_config_watch *w)
{
        return w ? w->value : NULL;
}

void node_config_watch_on_first_answer(node_config_watch *w, void (*cb)(void *userdata))
{
        w->on_first_answer = cb;
}

bool node_config_watch_answered(const node_config_watch *w)
{
        return w && w->listed;
}
