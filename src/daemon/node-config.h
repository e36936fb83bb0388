/* SPDX-License-Identifier: Apache-2.0 */
/* The Node label nvidia.com/device-plugin.config, which selects the config in the chart's per-node mode
 * (CONFIG_FILE_SRCDIR and NODE_NAME set): both daemons (plugin, MPS control daemon) follow it, so that
 * they agree on the config. */
#pragma once

#include "kube/kube.h"

#define NODE_CONFIG_LABEL "nvidia.com/device-plugin.config"

typedef struct node_config_watch node_config_watch;

/* The label's value changed; why is a sentence for the log ("Node label ... is now \"x\""). */
typedef void (*node_config_handler)(const char *why, void *userdata);

/* In the per-node mode, watches this node's labels through *kube (made here when NULL; the caller frees
 * it after the watch). Otherwise, or without API access (logged as a warning: the default config stays
 * selected), *ret is NULL. */
void node_config_watch_start(loop *l, kube_client **kube, node_config_handler cb, void *userdata,
                             node_config_watch **ret);
node_config_watch *node_config_watch_free(node_config_watch *w);
/* The label's value, NULL while unknown or unset (also for a NULL watch). */
const char *node_config_watch_value(const node_config_watch *w);
