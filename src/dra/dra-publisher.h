/* SPDX-License-Identifier: Apache-2.0 */
/* Keeps the node's ResourceSlices in the API server equal to the node's devices and their health
 * (docs/dra.md): server-side apply of each slice, deletion of slices no longer published, the pool's
 * generation raised whenever the content changes. Failed writes are retried with a doubling backoff; the
 * caller hears once when a streak of failures starts and once when it ends, not at every retry. Slices
 * are checked again periodically and on dra_publisher_sync(): the kubelet deletes a driver's slices when it
 * starts and when it loses the driver for 30 s, and nothing tells the driver. */
#pragma once

#include "dra/dra.h"
#include "kube/kube.h"

typedef struct dra_publisher dra_publisher;

enum dra_publish_event {
        DRA_PUBLISHED,         /* the slices were written; detail: what */
        DRA_PUBLISH_FAILED,    /* a write failed, first of a streak; detail: the API server's answer */
        DRA_PUBLISH_RECOVERED, /* written again after failures */
        DRA_TAINTS_DROPPED,    /* the API server dropped device taints: unhealthy devices leave the slices */
};
typedef void (*dra_publisher_event_fn)(enum dra_publish_event e, const char *detail, void *userdata);

struct dra_publisher_options {
        const char *node;
        uint64_t backoff_initial; /* nsec; 0: 1 s */
        uint64_t backoff_max;     /* nsec; 0: 5 min */
        uint64_t resync;          /* nsec between checks that the slices are still there; 0: 60 s */
        dra_publisher_event_fn on_event;
        void *userdata;
};

/* Starts publishing at once (in the loop). kube, inv and health (may be NULL: all healthy) must outlive
 * the publisher. */
int dra_publisher_new(kube_client *kube, const inventory *inv, const health_tracker *health,
                      const struct dra_publisher_options *o, dra_publisher **ret);
/* Cancels what is in flight; the slices stay (a restarted driver takes them over). Accepts NULL. */
dra_publisher *dra_publisher_free(dra_publisher *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(dra_publisher *, dra_publisher_free);
void dra_publisher_set_health(dra_publisher *p, const health_tracker *health);
/* Publishes again if anything differs from what the API server holds: after a health change, and when
 * the kubelet registered the driver (it may have just deleted the slices). */
void dra_publisher_sync(dra_publisher *p);
/* The pool generation last written (0: none yet). */
int64_t dra_publisher_generation(const dra_publisher *p);
