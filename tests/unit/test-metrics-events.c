/* SPDX-License-Identifier: Apache-2.0 */
/* Node events for device health changes: messages and the rate limits (per device, node-wide), with
 * the times given by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "base/parse.h"
#include "kube/node-events.h"

#define SEC NSEC_PER_SEC
#define T0  (1000 * SEC)

static const char *const UUID3 = "GPU-e7f01b38-64c2-4d5a-b7e9-8c0d1e2f3a34";
static const char *const MIG = "MIG-2f5b0c4e-8d1a-5e6f-9a0b-1c2d3e4f5a6b";

struct posted {
        char type[16], reason[32], message[256], device[64];
        unsigned count;
};
static struct posted log_[64];
static size_t n_log;

static void post(const struct node_event *e, void *userdata)
{
        assert_true(n_log < ELEMENTSOF(log_));
        struct posted *p = &log_[n_log++];
        snprintf(p->type, sizeof p->type, "%s", e->type);
        snprintf(p->reason, sizeof p->reason, "%s", e->reason);
        snprintf(p->message, sizeof p->message, "%s", e->message);
        snprintf(p->device, sizeof p->device, "%s", e->device);
        p->count = e->count;
}

static int reset(void **state)
{
        n_log = 0;
        memset(log_, 0, sizeof log_);
        return 0;
}

static struct device_health unhealthy(const char *device, unsigned index)
{
        return (struct device_health){ device, index, false, "XID 79 (GPU has fallen off the bus)",
                                       "reset-gpu" };
}

static struct device_health healthy(const char *device, unsigned index)
{
        return (struct device_health){ device, index, true, NULL, NULL };
}

static void test_messages(void **state)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
        struct device_health h = unhealthy(UUID3, 3);
        assert_int_equal(node_events_message(&h, &a), 0);
        assert_string_equal(a,
                            "GPU 3 (GPU-e7f01b38-64c2-4d5a-b7e9-8c0d1e2f3a34) is unhealthy: XID 79 (GPU has "
                            "fallen off the bus), class reset-gpu");
        h = healthy(UUID3, 3);
        assert_int_equal(node_events_message(&h, &b), 0);
        assert_string_equal(b, "GPU 3 (GPU-e7f01b38-64c2-4d5a-b7e9-8c0d1e2f3a34) is healthy again");
        h = (struct device_health){ MIG, 0, false, "XID 94 (Contained ECC error)", "reset-gpu" };
        assert_int_equal(node_events_message(&h, &c), 0);
        assert_string_equal(
                c, "MIG device MIG-2f5b0c4e-8d1a-5e6f-9a0b-1c2d3e4f5a6b on GPU 0 is unhealthy: XID 94 "
                   "(Contained ECC error), class reset-gpu");
        h = (struct device_health){ UUID3, 3, false, "GPU is lost (NVML_ERROR_GPU_IS_LOST)", NULL };
        assert_int_equal(node_events_message(&h, &d), 0);
        assert_string_equal(d, "GPU 3 (GPU-e7f01b38-64c2-4d5a-b7e9-8c0d1e2f3a34) is unhealthy: GPU is lost "
                               "(NVML_ERROR_GPU_IS_LOST)");
}

static void test_change_posts_once(void **state)
{
        _cleanup_(node_events_freep) node_events *ne = NULL;
        assert_int_equal(node_events_new(NULL, post, NULL, T0, &ne), 0);
        struct device_health h = healthy(UUID3, 3);
        /* Healthy at start: nothing to say. */
        assert_int_equal(node_events_update(ne, &h, T0), 0);
        assert_int_equal(n_log, 0);
        h = unhealthy(UUID3, 3);
        assert_int_equal(node_events_update(ne, &h, T0 + SEC), 1);
        assert_int_equal(node_events_update(ne, &h, T0 + 2 * SEC), 0); /* same state: no second event */
        assert_int_equal(n_log, 1);
        assert_string_equal(log_[0].type, "Warning");
        assert_string_equal(log_[0].reason, "GPUUnhealthy");
        assert_string_equal(log_[0].device, UUID3);
        assert_int_equal(log_[0].count, 1);
        assert_true(node_events_next_due(ne) == UINT64_MAX);
        /* Recovery after the minute: posted at once. */
        h = healthy(UUID3, 3);
        assert_int_equal(node_events_update(ne, &h, T0 + 5 * 60 * SEC), 1);
        assert_int_equal(n_log, 2);
        assert_string_equal(log_[1].type, "Normal");
        assert_string_equal(log_[1].reason, "GPURecovered");
        assert_string_equal(log_[1].message,
                            "GPU 3 (GPU-e7f01b38-64c2-4d5a-b7e9-8c0d1e2f3a34) is healthy again");
}

static void test_per_device_interval_holds_and_merges(void **state)
{
        _cleanup_(node_events_freep) node_events *ne = NULL;
        assert_int_equal(node_events_new(NULL, post, NULL, T0, &ne), 0);
        struct device_health bad = unhealthy(UUID3, 3), good = healthy(UUID3, 3);
        assert_int_equal(node_events_update(ne, &bad, T0), 1); /* posted */
        assert_int_equal(node_events_update(ne, &good, T0 + 10 * SEC), 1);
        /* Held: the device had an event 10 s ago. Due when its minute ends. */
        assert_int_equal(n_log, 1);
        assert_true(node_events_next_due(ne) == T0 + 60 * SEC);
        node_events_flush(ne, T0 + 59 * SEC);
        assert_int_equal(n_log, 1);
        node_events_flush(ne, T0 + 60 * SEC);
        assert_int_equal(n_log, 2);
        assert_string_equal(log_[1].reason, "GPURecovered");
        assert_int_equal(log_[1].count, 1);
        assert_true(node_events_next_due(ne) == UINT64_MAX);

        /* Flapping inside the minute: bad, good, bad is one event, counting 3 changes... */
        assert_int_equal(node_events_update(ne, &bad, T0 + 61 * SEC), 1);
        assert_int_equal(node_events_update(ne, &good, T0 + 62 * SEC), 1);
        assert_int_equal(node_events_update(ne, &bad, T0 + 63 * SEC), 1);
        assert_true(node_events_next_due(ne) == T0 + 120 * SEC); /* a minute after the last post */
        node_events_flush(ne, T0 + 119 * SEC);
        assert_int_equal(n_log, 2);
        node_events_flush(ne, T0 + 120 * SEC);
        assert_int_equal(n_log, 3);
        assert_string_equal(log_[2].reason, "GPUUnhealthy");
        assert_int_equal(log_[2].count, 3);
        /* ...and bad, good inside the minute after an Unhealthy post is nothing at all: the Node's
         * events already say what is true. */
        assert_int_equal(node_events_update(ne, &good, T0 + 130 * SEC), 1);
        assert_int_equal(node_events_update(ne, &bad, T0 + 140 * SEC), 1);
        node_events_flush(ne, T0 + 181 * SEC);
        assert_int_equal(n_log, 3);
        assert_int_equal(node_events_dropped(ne), 1);
        assert_true(node_events_next_due(ne) == UINT64_MAX);
}

static void test_devices_are_independent(void **state)
{
        _cleanup_(node_events_freep) node_events *ne = NULL;
        assert_int_equal(node_events_new(NULL, post, NULL, T0, &ne), 0);
        struct device_health a = unhealthy(UUID3, 3), b = unhealthy(MIG, 0);
        assert_int_equal(node_events_update(ne, &a, T0), 1);
        assert_int_equal(node_events_update(ne, &b, T0 + SEC), 1);
        assert_int_equal(n_log, 2);
        assert_string_equal(log_[1].device, MIG);
}

static void test_node_wide_bucket(void **state)
{
        _cleanup_(node_events_freep) node_events *ne = NULL;
        /* Burst 10, one token a second: 16 devices failing at once (an XID 79 across NVLink) give 10
         * events now and the rest one a second. */
        assert_int_equal(node_events_new(NULL, post, NULL, T0, &ne), 0);
        char uuids[16][48];
        for (unsigned i = 0; i < 16; i++) {
                snprintf(uuids[i], sizeof uuids[i], "GPU-00000000-0000-0000-0000-0000000000%02u", i);
                struct device_health h = unhealthy(uuids[i], i);
                assert_int_equal(node_events_update(ne, &h, T0), 1);
        }
        assert_int_equal(n_log, 10);
        assert_true(node_events_next_due(ne) == T0 + SEC);
        node_events_flush(ne, T0 + SEC);
        assert_int_equal(n_log, 11);
        assert_string_equal(log_[10].device, uuids[10]);
        node_events_flush(ne, T0 + 3 * SEC);
        assert_int_equal(n_log, 13);
        node_events_flush(ne, T0 + 10 * SEC);
        assert_int_equal(n_log, 16);
        assert_true(node_events_next_due(ne) == UINT64_MAX);
        assert_int_equal(node_events_posted(ne), 16);
}

static void test_custom_limits(void **state)
{
        _cleanup_(node_events_freep) node_events *ne = NULL;
        struct node_events_limits l = { .device_interval = 2 * SEC, .qps = 5, .burst = 1 };
        assert_int_equal(node_events_new(&l, post, NULL, T0, &ne), 0);
        struct device_health bad = unhealthy(UUID3, 3), good = healthy(UUID3, 3), other = unhealthy(MIG, 0);
        assert_int_equal(node_events_update(ne, &bad, T0), 1);
        assert_int_equal(node_events_update(ne, &other, T0), 1); /* no token: 200 ms */
        assert_true(node_events_next_due(ne) == T0 + SEC / 5);
        assert_int_equal(node_events_update(ne, &good, T0 + SEC), 1); /* device interval: 2 s */
        node_events_flush(ne, T0 + SEC);
        assert_int_equal(n_log, 2);
        assert_string_equal(log_[1].device, MIG);
        node_events_flush(ne, T0 + 2 * SEC);
        assert_int_equal(n_log, 3);
        assert_string_equal(log_[2].reason, "GPURecovered");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_messages, reset),
                cmocka_unit_test_setup(test_change_posts_once, reset),
                cmocka_unit_test_setup(test_per_device_interval_holds_and_merges, reset),
                cmocka_unit_test_setup(test_devices_are_independent, reset),
                cmocka_unit_test_setup(test_node_wide_bucket, reset),
                cmocka_unit_test_setup(test_custom_limits, reset),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
