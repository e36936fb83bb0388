/* SPDX-License-Identifier: Apache-2.0 */
/* The Node label nvidia.com/device-plugin.config, which selects the config in the chart's per-node mode
 * (CONFIG_FILE_SRCDIR and NODE_NAME set): the plugin, the MPS control daemon and GFD follow it, so that
 * they agree on the config. The plugin also follows nvidia.com/mig.config.state through the same watch:
 * its MIG layout changed when the label becomes "success". */
#pragma once

#include "kube/kube.h"

#define NODE_CONFIG_LABEL "nvidia.com/device-plugin.config"

typedef struct node_config_watch node_config_watch;

/* The label's value changed; why is a sentence for the log ("Node label ... is now \"x\""). */
typedef void (*node_config_handler)(const char *why, void *userdata);

/* The label NVIDIA's MIG manager sets on a node while it changes the MIG layout: "pending", "rebooting",
 * then "success" (or "failed") once the new layout is there. */
#define NODE_MIG_STATE_LABEL "nvidia.com/mig.config.state"

struct node_config_watch_options {
        /* The config label changed (per-node mode: CONFIG_FILE_SRCDIR set). NULL: not followed. */
        node_config_handler on_config;
        /* NODE_MIG_STATE_LABEL became "success" (from another value): the MIG layout changed. NULL: not
         * followed. */
        node_config_handler on_mig_configured;
        void *userdata;
};

/* Watches this node's labels (NODE_NAME) through *kube (made here when NULL; the caller frees it after the
 * watch), when there is something to follow: the config label in the per-node mode, the MIG state label
 * when asked. Otherwise, or without API access (logged as a warning: the default config stays selected),
 * *ret is NULL. One watch serves both. */
void node_config_watch_start_with(loop *l, kube_client **kube, const struct node_config_watch_options *o,
                                  node_config_watch **ret);
/* The config label only. */
void node_config_watch_start(loop *l, kube_client **kube, node_config_handler cb, void *userdata,
                             node_config_watch **ret);
node_config_watch *node_config_watch_free(node_config_watch *w);
/* The label's value, NULL while unknown or unset (also for a NULL watch). */
const char *node_config_watch_value(const node_config_watch *w);
/* cb runs once, at the first answer about the Node (its labels listed, whatever the label says; after the
 * change callback when the label is set). GFD waits for it, so that its first labels come from the config
 * the label selects, not from the default config for a moment (labels that flap). */
void node_config_watch_on_first_answer(node_config_watch *w, void (*cb)(void *userdata));
/* Whether the first answer came. */
bool node_config_watch_answered(const node_config_watch *w);
