/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes Events on the plugin's Node for device health changes (reasons GPUUnhealthy and
 * GPURecovered), rate limited so that a flapping GPU cannot flood the API server:
 *  - per device, at most one event per device_interval (1 minute); a change inside it is held and
 *    posted when the interval ends, unless the device is back in the state last posted;
 *  - node-wide, a token bucket (burst 10, refilled 1 per second); without a token the event is held
 *    until there is one.
 * The core (this file's first half) decides what to post and when, from the times it is given; it
 * posts through a callback, so it is tested without an API server. node_events_start() binds it to
 * the Kubernetes API client and the loop. Loop thread only. */
#pragma once

#include <stdint.h>

#include "base/loop.h"
#include "kube/token-bucket.h"

#define NODE_EVENTS_DEVICE_INTERVAL (60ULL * 1000000000ULL)
#define NODE_EVENTS_QPS             1
#define NODE_EVENTS_BURST           10
#define NODE_EVENTS_DEVICES_MAX     1024 /* devices tracked; more are not reported */

typedef struct node_events node_events;

/* One device's health as it is now. */
struct device_health {
        const char *device; /* UUID: GPU-... or MIG-... */
        unsigned gpu_index; /* the GPU's NVML index (the parent's for a MIG device) */
        bool healthy;
        const char *reason;    /* why unhealthy: "XID 79 (GPU has fallen off the bus)"; NULL/"" none */
        const char *xid_class; /* the catalog class of the XID that decided ("reset-gpu"); NULL: none */
};

struct node_event {
        const char *type;   /* "Warning" (unhealthy) or "Normal" (recovered) */
        const char *reason; /* "GPUUnhealthy" or "GPURecovered" */
        const char *message;
        const char *device; /* the device it is about */
        unsigned count;     /* changes it stands for (more than 1 when some were held and merged) */
};

typedef void (*node_events_post_fn)(const struct node_event *e, void *userdata);

struct node_events_limits {
        uint64_t device_interval; /* 0: NODE_EVENTS_DEVICE_INTERVAL */
        unsigned qps, burst;      /* 0: NODE_EVENTS_QPS / NODE_EVENTS_BURST */
};

/* Every device starts as healthy (nothing posted for it). limits may be NULL. */
int node_events_new(const struct node_events_limits *limits, node_events_post_fn post, void *userdata,
                    uint64_t now, node_events **ret);
node_events *node_events_free(node_events *ne);
DEFINE_TRIVIAL_CLEANUP_FUNC(node_events *, node_events_free);

/* A device's health now: posts an event when it changed (or holds one when rate limited). Returns 1
 * when it changed, 0 when not, <0 on error. */
int node_events_update(node_events *ne, const struct device_health *d, uint64_t now);
/* Posts the held events whose time has come. */
void node_events_flush(node_events *ne, uint64_t now);
/* When the next held event is due (CLOCK_MONOTONIC nsec); UINT64_MAX: none held. */
uint64_t node_events_next_due(const node_events *ne);
/* Events posted and events dropped (device back in its posted state before its turn), for tests. */
unsigned node_events_posted(const node_events *ne);
unsigned node_events_dropped(const node_events *ne);

/* The message of an event, e.g. "GPU 3 (GPU-...) is unhealthy: XID 79 (GPU has fallen off the bus),
 * class reset-gpu" or "GPU 3 (GPU-...) is healthy again". */
int node_events_message(const struct device_health *d, char **ret);
