/* SPDX-License-Identifier: Apache-2.0 */
/* The per-unit health state machine: healthy -> (fatal event) unhealthy -> (quiet period over, clean
 * re-probe) healthy. Pure: the caller passes the time and the probe results, so tests drive it with an
 * injected clock and probe function. */
#include <inttypes.h>

#include "base/parse.h"
#include "health/health.h"

static void unit_init(struct health_unit *u)
{
        *u = (struct health_unit){ .healthy = true, .next_probe = UINT64_MAX };
}

int health_tracker_new(const inventory *inv, struct health_rules *rules, health_tracker **ret)
{
        _cleanup_(health_tracker_freep) health_tracker *t = new0(health_tracker, 1);
        if (!t)
                return -ENOMEM;
        t->inventory = inv;
        t->gpus = new0(struct health_unit, inv->n_gpus + 1);
        t->migs = new0(struct health_unit *, inv->n_gpus + 1);
        if (!t->gpus || !t->migs)
                return -ENOMEM; /* cppcheck-suppress memleak ; t is freed by its cleanup attribute */
        for (size_t g = 0; g < inv->n_gpus; g++) {
                unit_init(&t->gpus[g]);
                t->migs[g] = new0(struct health_unit, inv->gpus[g].n_mig + 1);
                if (!t->migs[g])
                        return -ENOMEM;
                for (size_t m = 0; m < inv->gpus[g].n_mig; m++)
                        unit_init(&t->migs[g][m]);
        }
        t->rules = *rules;
        *rules = (struct health_rules){ 0 };
        *ret = TAKE_PTR(t);
        return 0;
}

health_tracker *health_tracker_free(health_tracker *t)
{
        if (!t)
                return NULL;
        for (size_t g = 0; t->migs && g < t->inventory->n_gpus; g++)
                free(t->migs[g]);
        free(t->migs);
        free(t->gpus);
        health_rules_done(&t->rules);
        free(t);
        return NULL;
}

struct health_unit *health_tracker_unit(const health_tracker *t, unsigned gpu, int mig)
{
        if (gpu >= t->inventory->n_gpus)
                return NULL;
        if (mig < 0)
                return &t->gpus[gpu];
        if ((size_t)mig >= t->inventory->gpus[gpu].n_mig)
                return NULL;
        return &t->migs[gpu][mig];
}

static void count_xid(struct health_unit *u, uint64_t xid, enum xid_class cls, uint64_t n)
{
        u->by_class[cls] += n;
        for (size_t i = 0; i < u->n_xids; i++)
                if (u->xids[i].xid == xid) {
                        u->xids[i].count += n;
                        return;
                }
        if (u->n_xids < HEALTH_XID_COUNTS_MAX)
                u->xids[u->n_xids++] = (struct health_xid_count){ xid, n };
        else
                u->xids_other += n;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
        return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static enum health_outcome unit_fatal(const health_tracker *t, struct health_unit *u,
                                      const struct health_event *e, const struct health_verdict *v,
                                      uint64_t now)
{
        bool was_healthy = u->healthy;
        uint64_t at = e->time && e->time <= now ? e->time : now;

        u->healthy = false;
        u->lost = u->lost || v->lost;
        if (was_healthy)
                u->since = at;
        snprintf(u->reason, sizeof(u->reason), "%s", v->reason);
        u->xid = e->kind == HEALTH_EVENT_XID ? e->xid : 0;
        u->cls = v->cls;
        u->last_fatal = at;
        u->fatal_seq++;
        u->next_probe = t->rules.recovery_interval == DURATION_INFINITE
                                ? UINT64_MAX
                                : add_sat(at, t->rules.recovery_interval);
        return was_healthy ? HEALTH_BECAME_UNHEALTHY : HEALTH_STILL_UNHEALTHY;
}

static enum health_outcome unit_probed(const health_tracker *t, struct health_unit *u,
                                       const struct health_event *e, uint64_t now)
{
        u->probe_pending = false;
        if (u->healthy || e->probe_seq != u->fatal_seq)
                return HEALTH_PROBE_STALE;
        if (e->kind == HEALTH_EVENT_PROBE_OK) {
                u->healthy = true;
                u->lost = false;
                u->reason[0] = '\0';
                u->xid = 0;
                u->next_probe = UINT64_MAX;
                u->recoveries++;
                return HEALTH_RECOVERED;
        }
        u->failed_probes++;
        u->lost = u->lost || e->lost;
        u->next_probe = t->rules.recovery_interval == DURATION_INFINITE
                                ? UINT64_MAX
                                : add_sat(now, t->rules.recovery_interval);
        return HEALTH_PROBE_FAILED;
}

static int apply_one(health_tracker *t, unsigned gpu, int mig, const struct health_event *e,
                     const struct health_verdict *v, uint64_t now)
{
        struct health_unit *u = health_tracker_unit(t, gpu, mig);
        uint64_t n = e->count ? e->count : 1;
        enum health_outcome o;
        bool was_healthy;

        if (!u)
                return 0;
        was_healthy = u->healthy;
        if (e->kind == HEALTH_EVENT_PROBE_OK || e->kind == HEALTH_EVENT_PROBE_FAILED)
                o = unit_probed(t, u, e, now);
        else {
                if (e->kind == HEALTH_EVENT_XID)
                        count_xid(u, e->xid, v->cls, n);
                if (v->fatal) {
                        u->fatal_events += n;
                        o = unit_fatal(t, u, e, v, now);
                } else {
                        u->ignored_events += n;
                        o = HEALTH_IGNORED;
                }
        }
        if (t->report)
                t->report(t->userdata, gpu, mig, o, u, e, v);
        return was_healthy != u->healthy;
}

int health_tracker_apply(health_tracker *t, const struct health_event *e, uint64_t now)
{
        struct health_verdict v;
        int changed = 0;

        health_judge(&t->rules, e, &v);
        if (e->gpu < 0) {
                for (size_t g = 0; g < t->inventory->n_gpus; g++)
                        changed += apply_one(t, g, -1, e, &v, now);
                return changed;
        }
        if (e->mig == HEALTH_MIG_UNMATCHED) {
                if (t->report && (size_t)e->gpu < t->inventory->n_gpus)
                        t->report(t->userdata, e->gpu, e->mig, HEALTH_UNMATCHED, &t->gpus[e->gpu], e, &v);
                return 0;
        }
        return apply_one(t, e->gpu, e->mig, e, &v, now);
}

static bool due(const struct health_unit *u, uint64_t now)
{
        return !u->healthy && !u->probe_pending && u->next_probe <= now;
}

size_t health_tracker_take_due(health_tracker *t, uint64_t now, struct health_ref *ret, size_t max)
{
        size_t n = 0;
        for (size_t g = 0; g < t->inventory->n_gpus; g++)
                for (int m = -1; m < (int)t->inventory->gpus[g].n_mig; m++) {
                        struct health_unit *u = health_tracker_unit(t, g, m);
                        if (n >= max || !due(u, now))
                                continue;
                        u->probe_pending = true;
                        ret[n++] = (struct health_ref){ .gpu = g, .mig = m, .probe_seq = u->fatal_seq };
                }
        return n;
}

uint64_t health_tracker_next_due(const health_tracker *t)
{
        uint64_t next = UINT64_MAX;
        for (size_t g = 0; g < t->inventory->n_gpus; g++)
                for (int m = -1; m < (int)t->inventory->gpus[g].n_mig; m++) {
                        const struct health_unit *u = health_tracker_unit(t, g, m);
                        if (!u->healthy && !u->probe_pending)
                                next = MIN(next, u->next_probe);
                }
        return next;
}

char *health_format_duration(uint64_t nsec, char *buf, size_t size)
{
        if (nsec == DURATION_INFINITE) {
                snprintf(buf, size, "never");
                return buf;
        }
        uint64_t ms = nsec / NSEC_PER_MSEC;
        if (ms < 1000) {
                snprintf(buf, size, "%" PRIu64 "ms", ms);
                return buf;
        }
        uint64_t s = ms / 1000, frac = ms % 1000, h = s / 3600, m = s / 60 % 60;
        char hm[48] = "", fs[8] = "";
        if (h)
                snprintf(hm, sizeof(hm), "%" PRIu64 "h%" PRIu64 "m", h, m);
        else if (m)
                snprintf(hm, sizeof(hm), "%" PRIu64 "m", m);
        if (frac) {
                snprintf(fs, sizeof(fs), ".%03" PRIu64, frac);
                for (char *e = fs + strlen(fs) - 1; *e == '0'; e--)
                        *e = '\0';
        }
        snprintf(buf, size, "%s%" PRIu64 "%ss", hm, s % 60, fs);
        return buf;
}
