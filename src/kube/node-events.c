/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/node-events.h"

struct slot {
        char *device;
        bool posted_healthy; /* the state the Node's events last said (healthy before any) */
        bool seen_healthy;   /* the state last given to node_events_update */
        bool has_posted;
        uint64_t last_post;
        bool held;           /* a change waits for its turn */
        unsigned held_count; /* changes merged into it */
        char *held_message;
        uint64_t due; /* when the held event may go (device interval or token) */
};

struct node_events {
        node_events_post_fn post;
        void *userdata;
        uint64_t device_interval;
        struct token_bucket bucket;
        struct slot *slots;
        size_t n_slots;
        unsigned posted, dropped;
};

int node_events_new(const struct node_events_limits *limits, node_events_post_fn post, void *userdata,
                    uint64_t now, node_events **ret)
{
        node_events *ne = new0(node_events, 1);
        if (!ne)
                return -ENOMEM;
        ne->post = post;
        ne->userdata = userdata;
        ne->device_interval =
                limits && limits->device_interval ? limits->device_interval : NODE_EVENTS_DEVICE_INTERVAL;
        token_bucket_init(&ne->bucket, limits && limits->qps ? limits->qps : NODE_EVENTS_QPS,
                          limits && limits->burst ? limits->burst : NODE_EVENTS_BURST, now);
        *ret = ne;
        return 0;
}

node_events *node_events_free(node_events *ne)
{
        if (!ne)
                return NULL;
        for (size_t i = 0; i < ne->n_slots; i++) {
                free(ne->slots[i].device);
                free(ne->slots[i].held_message);
        }
        free(ne->slots);
        free(ne);
        return NULL;
}

unsigned node_events_posted(const node_events *ne)
{
        return ne->posted;
}

unsigned node_events_dropped(const node_events *ne)
{
        return ne->dropped;
}

int node_events_message(const struct device_health *d, char **ret)
{
        _cleanup_free_ char *what = NULL;
        int r;
        if (startswith(d->device, "MIG-"))
                r = asprintf(&what, "MIG device %s on GPU %u", d->device, d->gpu_index);
        else
                r = asprintf(&what, "GPU %u (%s)", d->gpu_index, d->device);
        if (r < 0)
                return -ENOMEM;
        if (d->healthy)
                r = asprintf(ret, "%s is healthy again", what);
        else if (!isempty(d->xid_class))
                r = asprintf(ret, "%s is unhealthy: %s, class %s", what,
                             isempty(d->reason) ? "no reason given" : d->reason, d->xid_class);
        else
                r = asprintf(ret, "%s is unhealthy: %s", what,
                             isempty(d->reason) ? "no reason given" : d->reason);
        return r < 0 ? -ENOMEM : 0;
}

static struct slot *slot_get(node_events *ne, const char *device)
{
        for (size_t i = 0; i < ne->n_slots; i++)
                if (streq(ne->slots[i].device, device))
                        return &ne->slots[i];
        if (ne->n_slots >= NODE_EVENTS_DEVICES_MAX)
                return NULL;
        struct slot *a = realloc(ne->slots, sizeof(struct slot) * (ne->n_slots + 1));
        if (!a)
                return NULL;
        ne->slots = a;
        struct slot *s = &ne->slots[ne->n_slots];
        *s = (struct slot){ .posted_healthy = true, .seen_healthy = true };
        if (!(s->device = strdup(device)))
                return NULL;
        ne->n_slots++;
        return s;
}

/* Posts the held event of s now if its device interval is over and a token is there; else sets
 * when to try again. */
static void slot_try(node_events *ne, struct slot *s, uint64_t now)
{
        if (s->seen_healthy == s->posted_healthy) {
                /* Back where the Node's events left it: nothing to say. */
                s->held = false;
                s->held_count = 0;
                s->held_message = mfree(s->held_message);
                ne->dropped++;
                return;
        }
        if (s->has_posted && now < s->last_post + ne->device_interval) {
                s->due = s->last_post + ne->device_interval;
                return;
        }
        uint64_t wait = token_bucket_take(&ne->bucket, now);
        if (wait > 0) {
                s->due = now + wait;
                return;
        }
        struct node_event e = {
                .type = s->seen_healthy ? "Normal" : "Warning",
                .reason = s->seen_healthy ? "GPURecovered" : "GPUUnhealthy",
                .message = s->held_message,
                .device = s->device,
                .count = s->held_count ? s->held_count : 1,
        };
        ne->post(&e, ne->userdata);
        ne->posted++;
        s->posted_healthy = s->seen_healthy;
        s->has_posted = true;
        s->last_post = now;
        s->held = false;
        s->held_count = 0;
        s->held_message = mfree(s->held_message);
}

int node_events_update(node_events *ne, const struct device_health *d, uint64_t now)
{
        struct slot *s = slot_get(ne, d->device);
        if (!s)
                return -ENOMEM;
        if (s->seen_healthy == d->healthy)
                return 0;
        char *message;
        int r = node_events_message(d, &message);
        if (r < 0)
                return r;
        free(s->held_message);
        s->held_message = message;
        s->seen_healthy = d->healthy;
        s->held_count++;
        /* One already waiting keeps its turn and now says the latest state. */
        if (!s->held) {
                s->held = true;
                slot_try(ne, s, now);
        }
        return 1;
}

void node_events_flush(node_events *ne, uint64_t now)
{
        for (size_t i = 0; i < ne->n_slots; i++)
                if (ne->slots[i].held && ne->slots[i].due <= now)
                        slot_try(ne, &ne->slots[i], now);
}

uint64_t node_events_next_due(const node_events *ne)
{
        uint64_t next = UINT64_MAX;
        for (size_t i = 0; i < ne->n_slots; i++)
                if (ne->slots[i].held)
                        next = MIN(next, ne->slots[i].due);
        return next;
}
