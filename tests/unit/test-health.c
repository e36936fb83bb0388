/* SPDX-License-Identifier: Apache-2.0 */
/* Health: the XID catalog table, DP_DISABLE_/DP_ENABLE_HEALTHCHECKS parsing under both policies, and
 * the per-unit state machine driven by an injected clock and probe function (no NVML). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "base/parse.h"
#include "health/health.h"
#include "nvml/nvml.h"
#include "test-plan-inventories.h"

#define SEC      NSEC_PER_SEC
#define T0       (1000 * SEC)
#define INTERVAL (300 * SEC)

/* ---- catalog -------------------------------------------------------------------------------------- */

static void test_catalog_classes(void **state)
{
        static const struct {
                unsigned xid;
                enum xid_class cls;
                bool fatal;
        } expect[] = {
                { 8, XID_CLASS_APPLICATION, false },  { 13, XID_CLASS_APPLICATION, false },
                { 31, XID_CLASS_APPLICATION, false }, { 32, XID_CLASS_APPLICATION, false },
                { 38, XID_CLASS_IGNORE, false },      { 43, XID_CLASS_IGNORE, false },
                { 44, XID_CLASS_IGNORE, false },      { 45, XID_CLASS_APPLICATION, false },
                { 48, XID_CLASS_HARDWARE, true },     { 56, XID_CLASS_HARDWARE, true },
                { 57, XID_CLASS_HARDWARE, true },     { 58, XID_CLASS_HARDWARE, true },
                { 61, XID_CLASS_HARDWARE, true },     { 62, XID_CLASS_RESET_GPU, true },
                { 63, XID_CLASS_IGNORE, false },      { 64, XID_CLASS_RESET_GPU, true },
                { 65, XID_CLASS_HARDWARE, true },     { 68, XID_CLASS_APPLICATION, false },
                { 69, XID_CLASS_APPLICATION, false }, { 74, XID_CLASS_HARDWARE, true },
                { 79, XID_CLASS_REBOOT, true },       { 92, XID_CLASS_IGNORE, false },
                { 94, XID_CLASS_APPLICATION, false }, { 95, XID_CLASS_RESET_GPU, true },
                { 109, XID_CLASS_RESET_GPU, true },   { 110, XID_CLASS_RESET_GPU, true },
                { 119, XID_CLASS_RESET_GPU, true },   { 120, XID_CLASS_RESET_GPU, true },
                { 121, XID_CLASS_IGNORE, false },     { 136, XID_CLASS_RESET_GPU, true },
                { 140, XID_CLASS_RESET_GPU, true },   { 143, XID_CLASS_RESET_GPU, true },
                { 144, XID_CLASS_HARDWARE, true },    { 145, XID_CLASS_HARDWARE, true },
                { 146, XID_CLASS_HARDWARE, true },    { 147, XID_CLASS_HARDWARE, true },
                { 148, XID_CLASS_HARDWARE, true },    { 149, XID_CLASS_HARDWARE, true },
                { 150, XID_CLASS_HARDWARE, true },    { 151, XID_CLASS_REBOOT, true },
                { 154, XID_CLASS_HARDWARE, true },    { 155, XID_CLASS_RESET_GPU, true },
                { 157, XID_CLASS_IGNORE, false },     { 158, XID_CLASS_RESET_GPU, true },
                { 999, XID_CLASS_UNKNOWN, true },     { 1, XID_CLASS_UNKNOWN, true },
        };
        for (size_t i = 0; i < ELEMENTSOF(expect); i++) {
                enum xid_class c = xid_catalog_class(expect[i].xid);
                if (c != expect[i].cls || xid_class_fatal(c) != expect[i].fatal)
                        fail_msg("XID %u: class %s, expected %s", expect[i].xid, xid_class_to_string(c),
                                 xid_class_to_string(expect[i].cls));
        }
        assert_string_equal(xid_catalog_lookup(79)->bucket, "RESTART_BM");
        assert_string_equal(xid_catalog_lookup(79)->description, "GPU has fallen off the bus");
        assert_string_equal(xid_catalog_lookup(94)->bucket, "RESTART_APP");
        assert_null(xid_catalog_lookup(0));
        assert_null(xid_catalog_lookup(UINT64_MAX));
}

/* The table is sorted and unique: every entry is found by its own number. */
static void test_catalog_lookup_finds_every_entry(void **state)
{
        unsigned found = 0;
        for (unsigned x = 0; x < 400; x++) {
                const struct xid_info *i = xid_catalog_lookup(x);
                if (i) {
                        assert_int_equal(i->xid, x);
                        found++;
                }
        }
        assert_int_equal(found, 105);
}

/* ---- rules and verdicts --------------------------------------------------------------------------- */

/* -1: health checks off; else whether the XID takes the device out. */
static int xid_fatal(enum health_policy policy, const char *disable, const char *enable, uint64_t xid)
{
        struct health_rules r;
        assert_int_equal(health_rules_parse(policy, INTERVAL, disable, enable, &r), 0);
        int ret = -1;
        if (!r.off) {
                struct health_event e = { .kind = HEALTH_EVENT_XID, .gpu = 0, .mig = -1, .xid = xid };
                struct health_verdict v;
                health_judge(&r, &e, &v);
                ret = v.fatal;
        }
        health_rules_done(&r);
        return ret;
}

#define UP  HEALTH_POLICY_UPSTREAM
#define CAT HEALTH_POLICY_CATALOG

static void test_upstream_defaults(void **state)
{
        /* The six application XIDs are ignored, every other XID is fatal. */
        static const unsigned ignored[] = { 13, 31, 43, 45, 68, 109 };
        for (size_t i = 0; i < ELEMENTSOF(ignored); i++)
                assert_int_equal(xid_fatal(UP, NULL, NULL, ignored[i]), 0);
        assert_int_equal(xid_fatal(UP, NULL, NULL, 79), 1);
        assert_int_equal(xid_fatal(UP, NULL, NULL, 94), 1);
        assert_int_equal(xid_fatal(UP, NULL, NULL, 48), 1);
        assert_int_equal(xid_fatal(UP, NULL, NULL, 63), 1);
        assert_int_equal(xid_fatal(UP, "", "", 13), 0);
        assert_int_equal(xid_fatal(UP, "", "", 8), 1);
}

static void test_disable_healthchecks(void **state)
{
        /* "all" or "xids", any case, spaces trimmed: health checks off. */
        assert_int_equal(xid_fatal(UP, "all", NULL, 79), -1);
        assert_int_equal(xid_fatal(UP, "xids", NULL, 79), -1);
        assert_int_equal(xid_fatal(UP, " ALL ", NULL, 79), -1);
        assert_int_equal(xid_fatal(CAT, "Xids", NULL, 79), -1);
        /* "all" anywhere in the list wins; upstream's key for "all" is the number 0. */
        assert_int_equal(xid_fatal(UP, "48,all", NULL, 79), -1);
        assert_int_equal(xid_fatal(UP, "0", NULL, 79), -1);
        /* Numbers are ignored in addition to the defaults; junk is skipped. */
        assert_int_equal(xid_fatal(UP, "79, 94", NULL, 79), 0);
        assert_int_equal(xid_fatal(UP, "79, 94", NULL, 94), 0);
        assert_int_equal(xid_fatal(UP, "79, 94", NULL, 48), 1);
        assert_int_equal(xid_fatal(UP, "79, 94", NULL, 13), 0);
        assert_int_equal(xid_fatal(UP, "foo,79,-3,0x10,+5", NULL, 79), 0);
        assert_int_equal(xid_fatal(UP, "foo,79,-3,0x10,+5", NULL, 16), 1);
        assert_int_equal(xid_fatal(UP, "foo,79,-3,0x10,+5", NULL, 5), 1);
        assert_int_equal(xid_fatal(UP, "079", NULL, 79), 0);
        assert_int_equal(xid_fatal(CAT, "95", NULL, 95), 0);
        assert_int_equal(xid_fatal(CAT, "95", NULL, 79), 1);
}

static void test_enable_healthchecks(void **state)
{
        /* Listed XIDs are fatal whatever the defaults or DP_DISABLE_HEALTHCHECKS say. */
        assert_int_equal(xid_fatal(UP, NULL, "13", 13), 1);
        assert_int_equal(xid_fatal(UP, NULL, "13", 31), 0);
        assert_int_equal(xid_fatal(UP, "79", "79", 79), 1);
        assert_int_equal(xid_fatal(CAT, NULL, "94", 94), 1);
        assert_int_equal(xid_fatal(CAT, NULL, "94", 13), 0);
        /* "all": every XID is fatal, the six defaults and the catalog's IGNORE class too. */
        assert_int_equal(xid_fatal(UP, NULL, "all", 13), 1);
        assert_int_equal(xid_fatal(UP, NULL, "all", 109), 1);
        assert_int_equal(xid_fatal(UP, "79", "all", 79), 1);
        assert_int_equal(xid_fatal(CAT, NULL, "all", 43), 1);
        assert_int_equal(xid_fatal(CAT, NULL, "ALL", 63), 1);
        /* DISABLE=all with a listed XID stays off (upstream's IsAllDisabled wins) ... */
        assert_int_equal(xid_fatal(UP, "all", "48", 48), -1);
        assert_int_equal(xid_fatal(CAT, "all", "48", 48), -1);
        /* ... but ENABLE=all turns every XID back on. */
        assert_int_equal(xid_fatal(UP, "all", "all", 13), 1);
        assert_int_equal(xid_fatal(UP, "all", "all", 79), 1);
}

static void test_catalog_defaults(void **state)
{
        assert_int_equal(xid_fatal(CAT, NULL, NULL, 13), 0);
        assert_int_equal(xid_fatal(CAT, NULL, NULL, 94), 0);  /* upstream: fatal */
        assert_int_equal(xid_fatal(CAT, NULL, NULL, 109), 1); /* upstream: ignored */
        assert_int_equal(xid_fatal(CAT, NULL, NULL, 79), 1);
        assert_int_equal(xid_fatal(CAT, NULL, NULL, 63), 0);
        assert_int_equal(xid_fatal(CAT, NULL, NULL, 45), 0);
        assert_int_equal(xid_fatal(CAT, NULL, NULL, 999), 1); /* unknown: fatal */
}

static void verdict(enum health_policy policy, const struct health_event *e, struct health_verdict *v)
{
        struct health_rules r;
        assert_int_equal(health_rules_parse(policy, INTERVAL, NULL, NULL, &r), 0);
        health_judge(&r, e, v);
        health_rules_done(&r);
}

static void test_verdicts(void **state)
{
        struct health_verdict v;
        struct health_event e = { .kind = HEALTH_EVENT_XID, .gpu = 3, .mig = -1, .xid = 79 };

        verdict(CAT, &e, &v);
        assert_true(v.fatal && v.lost);
        assert_int_equal(v.cls, XID_CLASS_REBOOT);
        assert_string_equal(v.reason, "XID 79 (GPU has fallen off the bus)");
        assert_string_equal(v.why, "RESTART_BM");
        e.xid = 200;
        verdict(CAT, &e, &v);
        assert_true(v.fatal && !v.lost);
        assert_string_equal(v.reason, "XID 200");
        assert_string_equal(v.why, "not in the XID catalog: fatal by default");

        /* Double-bit ECC: fatal under the catalog; upstream skips non-XID events. */
        e = (struct health_event){ .kind = HEALTH_EVENT_ECC_DBE, .gpu = 1, .mig = -1 };
        verdict(CAT, &e, &v);
        assert_true(v.fatal);
        assert_string_equal(v.reason, "double-bit ECC error");
        verdict(UP, &e, &v);
        assert_false(v.fatal);

        /* Upstream's "mark everything unhealthy" cases apply under both policies. */
        e = (struct health_event){
                .kind = HEALTH_EVENT_WAIT_ERROR, .gpu = -1, .mig = -1, .detail = "Unknown Error"
        };
        verdict(UP, &e, &v);
        assert_true(v.fatal);
        assert_string_equal(v.reason, "waiting for NVML events failed: Unknown Error");
        verdict(CAT, &e, &v);
        assert_true(v.fatal);
        assert_false(v.lost);
        e.gpu = 4; /* blamed on a GPU that answered NVML_ERROR_GPU_IS_LOST */
        verdict(CAT, &e, &v);
        assert_true(v.fatal && v.lost);
        e.gpu = -1;
        e.kind = HEALTH_EVENT_UNKNOWN_DEVICE;
        verdict(CAT, &e, &v);
        assert_true(v.fatal);
        e.kind = HEALTH_EVENT_REGISTER_FAILED;
        verdict(UP, &e, &v);
        assert_true(v.fatal);
}

/* ---- the state machine ---------------------------------------------------------------------------- */

struct fixture {
        inventory *inv;
        health_tracker *t;
        enum health_outcome outcomes[64];
        size_t n_outcomes;
        /* The injected probe: ok, or failing (lost or not), per GPU. */
        bool probe_fails[8];
        bool probe_lost[8];
        unsigned probes;
};

static void record(void *userdata, unsigned gpu, int mig, enum health_outcome o, const struct health_unit *u,
                   const struct health_event *e, const struct health_verdict *v)
{
        struct fixture *f = userdata;
        if (f->n_outcomes < ELEMENTSOF(f->outcomes))
                f->outcomes[f->n_outcomes++] = o;
}

static struct fixture *setup(inventory *inv, enum health_policy policy, uint64_t interval)
{
        struct fixture *f = new0(struct fixture, 1);
        struct health_rules r;
        assert_non_null(f);
        f->inv = inv;
        assert_int_equal(health_rules_parse(policy, interval, NULL, NULL, &r), 0);
        assert_int_equal(health_tracker_new(inv, &r, &f->t), 0);
        f->t->report = record;
        f->t->userdata = f;
        return f;
}

static void teardown(struct fixture *f)
{
        health_tracker_free(f->t);
        fixture_inventory_free(f->inv);
        free(f);
}

static int xid(struct fixture *f, int gpu, int mig, uint64_t x, uint64_t now)
{
        struct health_event e = { .kind = HEALTH_EVENT_XID, .gpu = gpu, .mig = mig, .xid = x, .time = now };
        return health_tracker_apply(f->t, &e, now);
}

/* What the monitor does when its timer fires: probe every due unit (here with the injected function) and
 * apply the results. Returns the number of units probed. */
static size_t run_probes(struct fixture *f, uint64_t now)
{
        struct health_ref refs[64];
        size_t n = health_tracker_take_due(f->t, now, refs, ELEMENTSOF(refs));
        for (size_t i = 0; i < n; i++) {
                bool fails = f->probe_fails[refs[i].gpu];
                struct health_event e = { .kind = fails ? HEALTH_EVENT_PROBE_FAILED : HEALTH_EVENT_PROBE_OK,
                                          .gpu = (int)refs[i].gpu,
                                          .mig = refs[i].mig,
                                          .probe_seq = refs[i].probe_seq,
                                          .lost = fails && f->probe_lost[refs[i].gpu],
                                          .time = now };
                f->probes++;
                health_tracker_apply(f->t, &e, now);
        }
        return n;
}

static bool healthy(struct fixture *f, unsigned gpu, int mig)
{
        return health_tracker_unit(f->t, gpu, mig)->healthy;
}

static void test_fatal_quiet_period_reprobe_healthy(void **state)
{
        struct fixture *f = setup(fixture_h100x8(), CAT, INTERVAL);
        assert_int_equal(xid(f, 3, -1, 95, T0), 1);
        const struct health_unit *u = health_tracker_unit(f->t, 3, -1);
        assert_false(u->healthy);
        assert_string_equal(u->reason, "XID 95 (Uncontained memory error)");
        assert_int_equal(u->xid, 95);
        assert_int_equal(u->cls, XID_CLASS_RESET_GPU);
        assert_int_equal(u->since, T0);
        for (unsigned g = 0; g < 8; g++)
                assert_int_equal(healthy(f, g, -1), g != 3);

        /* The quiet period runs 300 s from the event. */
        assert_int_equal(health_tracker_next_due(f->t), T0 + INTERVAL);
        assert_int_equal(run_probes(f, T0 + INTERVAL - 1), 0);
        assert_false(healthy(f, 3, -1));
        assert_int_equal(run_probes(f, T0 + INTERVAL), 1);
        assert_true(healthy(f, 3, -1));
        assert_string_equal(u->reason, "");
        assert_int_equal(u->recoveries, 1);
        assert_int_equal(u->fatal_events, 1);
        assert_int_equal(health_tracker_next_due(f->t), UINT64_MAX);
        assert_int_equal(f->n_outcomes, 2);
        assert_int_equal(f->outcomes[0], HEALTH_BECAME_UNHEALTHY);
        assert_int_equal(f->outcomes[1], HEALTH_RECOVERED);
        teardown(f);
}

static void test_failed_reprobe_stays_unhealthy(void **state)
{
        struct fixture *f = setup(fixture_h100x8(), CAT, INTERVAL);
        xid(f, 2, -1, 119, T0);
        f->probe_fails[2] = true;
        assert_int_equal(run_probes(f, T0 + INTERVAL), 1);
        assert_false(healthy(f, 2, -1));
        /* Tried again one interval after the failed probe, not before. */
        assert_int_equal(health_tracker_next_due(f->t), T0 + 2 * INTERVAL);
        assert_int_equal(run_probes(f, T0 + 2 * INTERVAL - 1), 0);
        f->probe_fails[2] = false;
        assert_int_equal(run_probes(f, T0 + 2 * INTERVAL), 1);
        assert_true(healthy(f, 2, -1));
        const struct health_unit *u = health_tracker_unit(f->t, 2, -1);
        assert_int_equal(u->failed_probes, 1);
        assert_int_equal(u->recoveries, 1);
        teardown(f);
}

static void test_lost_gpu_never_recovers_while_probe_fails(void **state)
{
        struct fixture *f = setup(fixture_h100x8(), CAT, INTERVAL);
        xid(f, 4, -1, 79, T0);
        const struct health_unit *u = health_tracker_unit(f->t, 4, -1);
        assert_true(u->lost);
        f->probe_fails[4] = f->probe_lost[4] = true;
        for (unsigned i = 1; i <= 20; i++) {
                assert_int_equal(run_probes(f, T0 + i * INTERVAL), 1);
                assert_false(healthy(f, 4, -1));
                assert_true(u->lost);
        }
        assert_int_equal(u->failed_probes, 20);
        /* Back on the bus: the next probe succeeds. */
        f->probe_fails[4] = false;
        run_probes(f, T0 + 21 * INTERVAL);
        assert_true(healthy(f, 4, -1));
        assert_false(u->lost);
        teardown(f);
}

static void test_new_fatal_event_restarts_quiet_period(void **state)
{
        struct fixture *f = setup(fixture_h100x8(), CAT, INTERVAL);
        assert_int_equal(xid(f, 1, -1, 95, T0), 1);
        assert_int_equal(xid(f, 1, -1, 48, T0 + 200 * SEC), 0); /* no change: already unhealthy */
        assert_int_equal(f->outcomes[1], HEALTH_STILL_UNHEALTHY);
        assert_int_equal(run_probes(f, T0 + INTERVAL), 0);
        assert_int_equal(health_tracker_next_due(f->t), T0 + 200 * SEC + INTERVAL);
        assert_int_equal(run_probes(f, T0 + 200 * SEC + INTERVAL), 1);
        assert_true(healthy(f, 1, -1));
        teardown(f);
}

static void test_probe_overtaken_by_fatal_event_is_dropped(void **state)
{
        struct fixture *f = setup(fixture_h100x8(), CAT, INTERVAL);
        struct health_ref refs[4];
        xid(f, 6, -1, 95, T0);
        assert_int_equal(health_tracker_take_due(f->t, T0 + INTERVAL, refs, 4), 1);
        assert_int_equal(health_tracker_take_due(f->t, T0 + INTERVAL, refs + 1, 3), 0); /* pending */
        xid(f, 6, -1, 95, T0 + INTERVAL + 1);
        struct health_event ok = {
                .kind = HEALTH_EVENT_PROBE_OK, .gpu = 6, .mig = -1, .probe_seq = refs[0].probe_seq
        };
        assert_int_equal(health_tracker_apply(f->t, &ok, T0 + INTERVAL + 2), 0);
        assert_false(healthy(f, 6, -1));
        assert_int_equal(f->outcomes[f->n_outcomes - 1], HEALTH_PROBE_STALE);
        assert_int_equal(health_tracker_next_due(f->t), T0 + 2 * INTERVAL + 1);
        teardown(f);
}

static void test_upstream_policy_never_recovers(void **state)
{
        struct fixture *f = setup(fixture_h100x8(), UP, INTERVAL);
        xid(f, 0, -1, 79, T0);
        assert_int_equal(health_tracker_next_due(f->t), UINT64_MAX);
        assert_int_equal(run_probes(f, UINT64_MAX - 1), 0);
        assert_false(healthy(f, 0, -1));
        assert_int_equal(f->probes, 0);
        teardown(f);
}

static void test_infinite_interval_never_recovers(void **state)
{
        struct fixture *f = setup(fixture_h100x8(), CAT, DURATION_INFINITE);
        xid(f, 0, -1, 95, T0);
        assert_int_equal(health_tracker_next_due(f->t), UINT64_MAX);
        teardown(f);
}

static void test_ignored_xid_counts_but_changes_nothing(void **state)
{
        struct fixture *f = setup(fixture_h100x8(), CAT, INTERVAL);
        struct health_event e = { .kind = HEALTH_EVENT_XID, .gpu = 5, .mig = -1, .xid = 13, .count = 5 };
        assert_int_equal(health_tracker_apply(f->t, &e, T0), 0);
        const struct health_unit *u = health_tracker_unit(f->t, 5, -1);
        assert_true(u->healthy);
        assert_int_equal(u->ignored_events, 5);
        assert_int_equal(u->by_class[XID_CLASS_APPLICATION], 5);
        assert_int_equal(u->n_xids, 1);
        assert_int_equal(u->xids[0].xid, 13);
        assert_int_equal(u->xids[0].count, 5);
        assert_int_equal(f->outcomes[0], HEALTH_IGNORED);
        xid(f, 5, -1, 79, T0);
        assert_int_equal(u->n_xids, 2);
        assert_int_equal(u->by_class[XID_CLASS_REBOOT], 1);
        teardown(f);
}

static void test_xid_counts_are_bounded(void **state)
{
        struct fixture *f = setup(fixture_h100x8(), CAT, INTERVAL);
        for (unsigned x = 1000; x < 1000 + HEALTH_XID_COUNTS_MAX + 3; x++)
                xid(f, 0, -1, x, T0);
        const struct health_unit *u = health_tracker_unit(f->t, 0, -1);
        assert_int_equal(u->n_xids, HEALTH_XID_COUNTS_MAX);
        assert_int_equal(u->xids_other, 3);
        assert_int_equal(u->by_class[XID_CLASS_UNKNOWN], HEALTH_XID_COUNTS_MAX + 3);
        teardown(f);
}

static void test_wait_error_marks_every_gpu_and_each_recovers_alone(void **state)
{
        struct fixture *f = setup(fixture_h100x8(), CAT, INTERVAL);
        struct health_event e = {
                .kind = HEALTH_EVENT_WAIT_ERROR, .gpu = -1, .mig = -1, .detail = "Unknown Error"
        };
        assert_int_equal(health_tracker_apply(f->t, &e, T0), 8);
        for (unsigned g = 0; g < 8; g++)
                assert_false(healthy(f, g, -1));
        f->probe_fails[7] = true;
        assert_int_equal(run_probes(f, T0 + INTERVAL), 8);
        for (unsigned g = 0; g < 8; g++)
                assert_int_equal(healthy(f, g, -1), g != 7);
        teardown(f);
}

static void test_mig_event_marks_only_that_instance(void **state)
{
        struct fixture *f = setup(fixture_a100_mig(), CAT, INTERVAL);
        assert_true(f->inv->gpus[0].n_mig >= 3);
        assert_int_equal(xid(f, 0, 2, 95, T0), 1);
        assert_false(healthy(f, 0, 2));
        assert_true(healthy(f, 0, -1));
        for (size_t m = 0; m < f->inv->gpus[0].n_mig; m++)
                assert_int_equal(healthy(f, 0, (int)m), m != 2);
        /* Recovery probes that instance. */
        struct health_ref refs[8];
        assert_int_equal(health_tracker_take_due(f->t, T0 + INTERVAL, refs, 8), 1);
        assert_int_equal(refs[0].gpu, 0);
        assert_int_equal(refs[0].mig, 2);
        /* GI/CI of no known MIG device: dropped and reported. */
        assert_int_equal(xid(f, 1, HEALTH_MIG_UNMATCHED, 95, T0), 0);
        assert_int_equal(f->outcomes[f->n_outcomes - 1], HEALTH_UNMATCHED);
        assert_true(healthy(f, 1, -1));
        for (size_t m = 0; m < f->inv->gpus[1].n_mig; m++)
                assert_true(healthy(f, 1, (int)m));
        teardown(f);
}

static void test_format_duration(void **state)
{
        char b[32];
        assert_string_equal(health_format_duration(300 * SEC, b, sizeof(b)), "5m0s");
        assert_string_equal(health_format_duration(1 * SEC, b, sizeof(b)), "1s");
        assert_string_equal(health_format_duration(1500 * NSEC_PER_MSEC, b, sizeof(b)), "1.5s");
        assert_string_equal(health_format_duration(250 * NSEC_PER_MSEC, b, sizeof(b)), "250ms");
        assert_string_equal(health_format_duration(3700 * SEC, b, sizeof(b)), "1h1m40s");
        assert_string_equal(health_format_duration(DURATION_INFINITE, b, sizeof(b)), "never");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_catalog_classes),
                cmocka_unit_test(test_catalog_lookup_finds_every_entry),
                cmocka_unit_test(test_upstream_defaults),
                cmocka_unit_test(test_disable_healthchecks),
                cmocka_unit_test(test_enable_healthchecks),
                cmocka_unit_test(test_catalog_defaults),
                cmocka_unit_test(test_verdicts),
                cmocka_unit_test(test_fatal_quiet_period_reprobe_healthy),
                cmocka_unit_test(test_failed_reprobe_stays_unhealthy),
                cmocka_unit_test(test_lost_gpu_never_recovers_while_probe_fails),
                cmocka_unit_test(test_new_fatal_event_restarts_quiet_period),
                cmocka_unit_test(test_probe_overtaken_by_fatal_event_is_dropped),
                cmocka_unit_test(test_upstream_policy_never_recovers),
                cmocka_unit_test(test_infinite_interval_never_recovers),
                cmocka_unit_test(test_ignored_xid_counts_but_changes_nothing),
                cmocka_unit_test(test_xid_counts_are_bounded),
                cmocka_unit_test(test_wait_error_marks_every_gpu_and_each_recovers_alone),
                cmocka_unit_test(test_mig_event_marks_only_that_instance),
                cmocka_unit_test(test_format_duration),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
