/* SPDX-License-Identifier: Apache-2.0 */
/* Posts the node events of src/metrics/node-events.h to the Kubernetes API: on the plugin's Node
 * (NODE_NAME), through an API client of src/kube/ (in-cluster credentials or a kubeconfig), for every
 * health change of a GPU or MIG device the health monitor reports. Loop thread only. */
#pragma once

#include "gpu/inventory.h"
#include "kube/kube.h"
#include "kube/node-events.h"

typedef struct node_reporter node_reporter;
typedef struct health_tracker health_tracker;

/* A post failed (one sentence naming the request and the API's answer); for the daemon's log. */
typedef void (*node_reporter_error_fn)(const char *error, void *userdata);

struct node_reporter_options {
        const struct node_events_limits *limits; /* NULL: the defaults */
        node_reporter_error_fn on_error;
        void *userdata;
};

/* Posts through client (not owned: it must outlive the reporter). -EINVAL, with a sentence in
 * ret_error, when node is not a valid node name. o may be NULL. */
int node_reporter_new(kube_client *client, const char *node, const struct node_reporter_options *o,
                      node_reporter **ret, char **ret_error);
node_reporter *node_reporter_free(node_reporter *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(node_reporter *, node_reporter_free);

/* Compares the health of every unit of inv in t with what was last seen; posts (or holds) an event for
 * each change. Accepts a NULL reporter (events off). */
void node_reporter_sync(node_reporter *r, const inventory *inv, const health_tracker *t);
