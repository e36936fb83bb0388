/* SPDX-License-Identifier: Apache-2.0 */
/* Device health: the XID policy (upstream's rules or NVIDIA's XID catalog), a per-unit state machine
 * with recovery, and the monitor: an NVML event thread that posts what it sees to the loop through an
 * eventfd, and a re-probe thread started on the first re-probe. The loop thread applies the policy and
 * owns every health_unit; the threads only do NVML I/O (waiting for events, re-probing devices the loop
 * asks about). docs/health.md explains the rules. */
#pragma once

#include <stdint.h>

#include "base/loop.h"
#include "config/config.h"
#include "gpu/inventory.h"

typedef struct nvml nvml;

/* ---- the XID catalog (xid-catalog.c) ------------------------------------------------------------ */

/* How NVIDIA's XID catalog says to react ("Resolution Bucket (Immediate Action)"), folded into what a
 * device plugin can do about it. */
enum xid_class {
        XID_CLASS_IGNORE,      /* IGNORE: informational; the GPU is fine */
        XID_CLASS_APPLICATION, /* RESTART_APP (and XID 45's workflow): the application's fault */
        XID_CLASS_RESET_GPU,   /* RESET_GPU: the GPU needs a reset */
        XID_CLASS_REBOOT,      /* RESTART_BM / RESTART_VM: the node needs a reboot */
        XID_CLASS_HARDWARE,    /* CONTACT_SUPPORT, the ECC/NVLink workflows, CHECK_MECHANICALS, ... */
        XID_CLASS_UNKNOWN,     /* not in the catalog */
        XID_CLASS_MAX_,
};

struct xid_info {
        unsigned xid;
        enum xid_class cls;
        const char *bucket;      /* the catalog's immediate-action bucket, as written there */
        const char *description; /* the catalog's description */
};

/* NULL when the XID is not in the table. */
const struct xid_info *xid_catalog_lookup(uint64_t xid);
/* XID_CLASS_UNKNOWN when the XID is not in the table. */
enum xid_class xid_catalog_class(uint64_t xid);
/* Whether the catalog policy takes a device out of service for this class. */
bool xid_class_fatal(enum xid_class c);
const char *xid_class_to_string(enum xid_class c);

/* ---- the policy (health-policy.c) ---------------------------------------------------------------- */

/* The XIDs upstream ignores by default (application errors): 13, 31, 43, 45, 68, 109. */
bool health_upstream_default_ignored(uint64_t xid);

struct health_rules {
        enum health_policy policy;
        bool off;                     /* DP_DISABLE_HEALTHCHECKS all/xids: no health checks at all */
        bool enable_all;              /* DP_ENABLE_HEALTHCHECKS all: every XID is fatal */
        uint64_t *disabled, *enabled; /* the numbers listed in DP_DISABLE_/DP_ENABLE_HEALTHCHECKS */
        size_t n_disabled, n_enabled;
        uint64_t recovery_interval; /* nsec; DURATION_INFINITE: never (upstream policy: never) */
};

/* Reads DP_DISABLE_HEALTHCHECKS / DP_ENABLE_HEALTHCHECKS values (NULL = unset) as upstream does:
 * lower-cased comma lists; "all" or "xids" is every XID (the rest of that list is then ignored);
 * numbers are XIDs; anything else is skipped. DISABLE=all turns health checks off unless ENABLE=all
 * (a listed XID does not turn them back on). Only -ENOMEM fails. */
int health_rules_parse(enum health_policy policy, uint64_t recovery_interval, const char *disable_env,
                       const char *enable_env, struct health_rules *ret);
void health_rules_done(struct health_rules *r);

/* What the monitor saw. Events for one GPU carry its inventory index; mig is the MIG device's index on
 * that GPU, -1 for the whole GPU. */
enum health_event_kind {
        HEALTH_EVENT_XID,             /* nvmlEventTypeXidCriticalError, xid = eventData */
        HEALTH_EVENT_ECC_DBE,         /* nvmlEventTypeDoubleBitEccError */
        HEALTH_EVENT_WAIT_ERROR,      /* nvmlEventSetWait failed (gpu = -1: every GPU) */
        HEALTH_EVENT_UNKNOWN_DEVICE,  /* an event whose device NVML cannot name (gpu = -1) */
        HEALTH_EVENT_REGISTER_FAILED, /* the GPU's events cannot be watched */
        HEALTH_EVENT_PROBE_OK,        /* a re-probe the loop asked for found the device sound */
        HEALTH_EVENT_PROBE_FAILED,    /* ... or not (detail says why) */
};

#define HEALTH_MIG_UNMATCHED (-2) /* an event's GI/CI ids name none of the GPU's MIG devices */

struct health_event {
        enum health_event_kind kind;
        int gpu;
        int mig;
        unsigned gi, ci;    /* the event's instance ids (NVML_EVENT_INSTANCE_ID_NONE: whole GPU) */
        uint64_t xid;       /* HEALTH_EVENT_XID */
        int nvml_error;     /* the nvmlReturn_t of a failed wait, register or probe */
        bool lost;          /* PROBE_FAILED: NVML said the GPU is lost */
        char detail[96];    /* PROBE_FAILED, REGISTER_FAILED, WAIT_ERROR: what failed, for the log */
        uint64_t time;      /* CLOCK_MONOTONIC nsec when seen; 0: when applied */
        uint64_t probe_seq; /* PROBE_*: the unit's fatal_seq when the probe was asked for */
        unsigned count;     /* identical events coalesced into this one (>= 1; 0 counts as 1) */
};

struct health_verdict {
        bool fatal;
        bool lost;          /* the GPU is gone (XID 79): it waits for a clean re-probe */
        enum xid_class cls; /* for XIDs; ECC double-bit errors count as XID_CLASS_HARDWARE */
        const char *why;    /* which rule decided: "catalog RESET_GPU", "DP_ENABLE_HEALTHCHECKS", ... */
        char reason[96];    /* "XID 79 (GPU has fallen off the bus)" */
};

/* Classifies a device event (XID, ECC, wait error, unknown device, register failure) under the rules. */
void health_judge(const struct health_rules *r, const struct health_event *e, struct health_verdict *ret);

/* ---- per-unit state (health-state.c) ------------------------------------------------------------- */

#define HEALTH_XID_COUNTS_MAX 32 /* distinct XIDs counted per unit; more go to xids_other */

struct health_xid_count {
        uint64_t xid;
        uint64_t count;
};

/* One physical unit: a GPU or one MIG device. Replicas and MIG devices follow their GPU's unit. */
struct health_unit {
        bool healthy;
        bool lost;          /* fell off the bus / NVML_ERROR_GPU_IS_LOST: stays until a re-probe succeeds */
        bool probe_pending; /* a re-probe was asked of the thread and has not answered */
        char reason[96];    /* why unhealthy; "" when healthy */
        uint64_t xid;       /* the XID that made it unhealthy; 0: another cause */
        enum xid_class cls;
        uint64_t since;      /* CLOCK_MONOTONIC nsec it became unhealthy */
        uint64_t last_fatal; /* nsec of the latest fatal event: the quiet period runs from here */
        uint64_t next_probe; /* nsec when a re-probe may run; UINT64_MAX: never */
        uint64_t fatal_seq;  /* counts fatal events; a probe asked for before the latest one is stale */
        /* Counters for metrics. */
        uint64_t fatal_events, ignored_events, recoveries, failed_probes;
        uint64_t by_class[XID_CLASS_MAX_]; /* XID events by catalog class */
        struct health_xid_count xids[HEALTH_XID_COUNTS_MAX];
        size_t n_xids;
        uint64_t xids_other; /* XID events beyond HEALTH_XID_COUNTS_MAX distinct values */
};

/* What applying an event did to one unit (for the log line). */
enum health_outcome {
        HEALTH_IGNORED,          /* the policy ignores it */
        HEALTH_BECAME_UNHEALTHY, /* healthy -> unhealthy */
        HEALTH_STILL_UNHEALTHY,  /* fatal again: the quiet period starts over */
        HEALTH_RECOVERED,        /* unhealthy -> healthy after a clean re-probe */
        HEALTH_PROBE_FAILED,     /* re-probe failed: stays unhealthy, tried again later */
        HEALTH_PROBE_STALE,      /* a fatal event arrived while the probe ran: result dropped */
        HEALTH_UNMATCHED,        /* MIG event for GI/CI ids of no known MIG device: dropped */
};

typedef struct health_tracker health_tracker;

/* Called for every unit an event touched, before the next one is applied. mig -1: the GPU's unit. */
typedef void (*health_report_fn)(void *userdata, unsigned gpu, int mig, enum health_outcome o,
                                 const struct health_unit *u, const struct health_event *e,
                                 const struct health_verdict *v);

struct health_tracker {
        const inventory *inventory;
        struct health_rules rules;
        struct health_unit *gpus;  /* inventory->n_gpus */
        struct health_unit **migs; /* [gpu][mig] */
        health_report_fn report;
        void *userdata;
};

/* Every unit starts healthy. rules is moved into the tracker (cleared in the caller). */
int health_tracker_new(const inventory *inv, struct health_rules *rules, health_tracker **ret);
health_tracker *health_tracker_free(health_tracker *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(health_tracker *, health_tracker_free);
/* NULL when out of range. */
struct health_unit *health_tracker_unit(const health_tracker *t, unsigned gpu, int mig);
/* Applies one event at time now; returns how many units changed between healthy and unhealthy. */
int health_tracker_apply(health_tracker *t, const struct health_event *e, uint64_t now);

struct health_ref {
        unsigned gpu;
        int mig;
        uint64_t probe_seq; /* echo it in the PROBE_OK / PROBE_FAILED event */
};
/* Units whose quiet period is over and whose re-probe is due at now: marks them probe_pending and
 * returns up to max of them. */
size_t health_tracker_take_due(health_tracker *t, uint64_t now, struct health_ref *ret, size_t max);
/* The earliest next_probe of a unit without a pending probe; UINT64_MAX: none. */
uint64_t health_tracker_next_due(const health_tracker *t);

/* "5m0s", "1.5s", "250ms": a duration for log lines. */
char *health_format_duration(uint64_t nsec, char *buf, size_t size);

/* ---- the monitor (health-monitor.c) -------------------------------------------------------------- */

typedef struct health_monitor health_monitor;
/* Called on the loop thread after each batch of events: health or reasons may have changed. */
typedef void (*health_changed_fn)(health_monitor *m, void *userdata);

struct health_monitor_options {
        enum health_policy policy;
        uint64_t recovery_interval;
        const char *disable_env; /* DP_DISABLE_HEALTHCHECKS (NULL: unset) */
        const char *enable_env;  /* DP_ENABLE_HEALTHCHECKS */
        unsigned wait_ms;        /* nvmlEventSetWait timeout; 0: an hour (shutdown does not wait for it) */
};

/* Registers every GPU for the event types it supports and starts the thread. Sets *ret to NULL and
 * returns 0 when health checks are off or NVML cannot deliver events (both logged). */
int health_monitor_start(loop *l, const nvml *n, const inventory *inv,
                         const struct health_monitor_options *o, health_changed_fn cb, void *userdata,
                         health_monitor **ret);
/* Stops the threads and frees at once: a watch thread waiting in NVML is left there (NVML cannot wake
 * it) with what it holds, and ends with the process. Accepts NULL. */
health_monitor *health_monitor_free(health_monitor *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(health_monitor *, health_monitor_free);
const health_tracker *health_monitor_tracker(const health_monitor *m);
