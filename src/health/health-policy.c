/* SPDX-License-Identifier: Apache-2.0 */
/* Which events take a device out of service: upstream's rules (DP_DISABLE_HEALTHCHECKS,
 * DP_ENABLE_HEALTHCHECKS, six application XIDs ignored, everything else fatal for good) or the XID
 * catalog's classes. Pure functions: no NVML, no clock. */
#include <ctype.h>
#include <inttypes.h>

#include "base/parse.h"
#include "health/health.h"
#include "nvml/nvml.h"

#define XID_LIST_MAX 1024 /* numbers kept from one env var; the rest is dropped */

static const uint64_t upstream_ignored[] = { 13, 31, 43, 45, 68, 109 };

bool health_upstream_default_ignored(uint64_t xid)
{
        for (size_t i = 0; i < ELEMENTSOF(upstream_ignored); i++)
                if (upstream_ignored[i] == xid)
                        return true;
        return false;
}

static bool listed(const uint64_t *l, size_t n, uint64_t xid)
{
        for (size_t i = 0; i < n; i++)
                if (l[i] == xid)
                        return true;
        return false;
}

/* Upstream splits the lower-cased value on ',' and trims each item. "all" or "xids" anywhere means
 * every XID and drops the numbers (ret_all). The number 0 is upstream's internal key for "all", so a
 * listed 0 means "all" too. Items that are not decimal numbers are skipped. */
static int parse_list(const char *env, bool *ret_all, uint64_t **ret, size_t *ret_n)
{
        _cleanup_free_ uint64_t *l = NULL;
        size_t n = 0;
        bool all = false;

        *ret_all = false;
        *ret = NULL;
        *ret_n = 0;
        if (!env)
                return 0;
        _cleanup_free_ char *s = strdup(env);
        if (!s)
                return -ENOMEM;
        for (char *p = s; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        char *save = NULL;
        for (char *item = strtok_r(s, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                while (isspace((unsigned char)*item))
                        item++;
                char *end = item + strlen(item);
                while (end > item && isspace((unsigned char)end[-1]))
                        *--end = '\0';
                uint64_t x;
                if (streq(item, "all") || streq(item, "xids")) {
                        all = true;
                        break;
                }
                if (parse_uint64(item, &x) < 0)
                        continue;
                if (x == 0) {
                        all = true;
                        break;
                }
                if (listed(l, n, x) || n >= XID_LIST_MAX)
                        continue;
                uint64_t *nl = realloc(l, (n + 1) * sizeof(*l));
                if (!nl)
                        return -ENOMEM;
                l = nl;
                l[n++] = x;
        }
        if (all) {
                *ret_all = true;
                return 0;
        }
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

int health_rules_parse(enum health_policy policy, uint64_t recovery_interval, const char *disable_env,
                       const char *enable_env, struct health_rules *ret)
{
        struct health_rules r = { .policy = policy };
        bool disable_all;
        int k = parse_list(disable_env, &disable_all, &r.disabled, &r.n_disabled);
        if (k >= 0)
                k = parse_list(enable_env, &r.enable_all, &r.enabled, &r.n_enabled);
        if (k < 0) {
                health_rules_done(&r);
                return k;
        }
        /* Upstream: DISABLE=all stays off unless ENABLE=all overrides its "all" key. */
        r.off = disable_all && !r.enable_all;
        r.recovery_interval = policy == HEALTH_POLICY_UPSTREAM ? DURATION_INFINITE : recovery_interval;
        *ret = r;
        return 0;
}

void health_rules_done(struct health_rules *r)
{
        r->disabled = mfree(r->disabled);
        r->enabled = mfree(r->enabled);
        r->n_disabled = r->n_enabled = 0;
}

static void judge_xid(const struct health_rules *r, uint64_t xid, struct health_verdict *v)
{
        const struct xid_info *info = xid_catalog_lookup(xid);

        v->cls = info ? info->cls : XID_CLASS_UNKNOWN;
        v->lost = xid == 79;
        if (info)
                snprintf(v->reason, sizeof(v->reason), "XID %" PRIu64 " (%s)", xid, info->description);
        else
                snprintf(v->reason, sizeof(v->reason), "XID %" PRIu64, xid);

        if (r->enable_all || listed(r->enabled, r->n_enabled, xid)) {
                v->fatal = true;
                v->why = "DP_ENABLE_HEALTHCHECKS";
        } else if (listed(r->disabled, r->n_disabled, xid)) {
                v->fatal = false;
                v->why = "DP_DISABLE_HEALTHCHECKS";
        } else if (r->policy == HEALTH_POLICY_UPSTREAM) {
                v->fatal = !health_upstream_default_ignored(xid);
                v->why = v->fatal ? "upstream: fatal" : "upstream: application XID, ignored by default";
        } else if (!info) {
                v->fatal = true;
                v->why = "not in the XID catalog: fatal by default";
        } else {
                v->fatal = xid_class_fatal(info->cls);
                v->why = info->bucket;
        }
        if (!v->fatal)
                v->lost = false;
}

void health_judge(const struct health_rules *r, const struct health_event *e, struct health_verdict *ret)
{
        struct health_verdict v = { .cls = XID_CLASS_HARDWARE };
        const char *detail = e->detail[0] ? e->detail : "unknown error";

        switch (e->kind) {
        case HEALTH_EVENT_XID: judge_xid(r, e->xid, &v); break;
        case HEALTH_EVENT_ECC_DBE:
                snprintf(v.reason, sizeof(v.reason), "double-bit ECC error");
                /* Upstream registers ECC events but skips them. */
                v.fatal = r->policy != HEALTH_POLICY_UPSTREAM;
                v.why = v.fatal ? "uncorrectable memory error" : "upstream: non-XID events are skipped";
                break;
        case HEALTH_EVENT_WAIT_ERROR:
                snprintf(v.reason, sizeof(v.reason), "waiting for NVML events failed: %.60s", detail);
                v.fatal = true;
                v.lost = e->gpu >= 0; /* blamed on one GPU: it answered NVML_ERROR_GPU_IS_LOST */
                v.why = "health events cannot be read";
                break;
        case HEALTH_EVENT_UNKNOWN_DEVICE:
                snprintf(v.reason, sizeof(v.reason), "event from a device NVML cannot name: %.50s", detail);
                v.fatal = true;
                v.why = "the event's device is unknown";
                break;
        case HEALTH_EVENT_REGISTER_FAILED:
                snprintf(v.reason, sizeof(v.reason), "cannot watch its events: %.60s", detail);
                v.fatal = true;
                v.why = "the device cannot be monitored";
                break;
        case HEALTH_EVENT_PROBE_OK:
        case HEALTH_EVENT_PROBE_FAILED:
                v.fatal = false;
                v.why = "re-probe";
                break;
        }
        *ret = v;
}
