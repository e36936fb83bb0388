/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics registry and its Prometheus text format (0.0.4), written out exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include <math.h>

#include "metrics/metrics.h"

#define V(...) ((const char *const[]){ __VA_ARGS__ })

static char *format(metrics_registry *m)
{
        char *text = NULL;
        size_t size = 0;
        assert_int_equal(metrics_format(m, &text, &size), 0);
        assert_int_equal(size, strlen(text));
        return text;
}

static void test_counter(void **state)
{
        _cleanup_(metrics_registry_freep) metrics_registry *m = NULL;
        metric *c;
        assert_int_equal(metrics_registry_new(&m), 0);
        assert_int_equal(metrics_add(m, METRIC_COUNTER, "nvdp_allocate_requests_total", "Allocate calls.",
                                     V("resource", "result", NULL), &c),
                         0);
        assert_int_equal(metric_inc(c, V("nvidia.com/gpu", "ok")), 0);
        assert_int_equal(metric_inc(c, V("nvidia.com/gpu", "ok")), 0);
        assert_int_equal(metric_touch(c, V("nvidia.com/gpu", "error")), 0);
        assert_int_equal(metric_add(c, V("nvidia.com/mig-1g.10gb", "ok"), 5), 0);
        _cleanup_free_ char *text = format(m);
        assert_string_equal(
                text, "# HELP nvdp_allocate_requests_total Allocate calls.\n"
                      "# TYPE nvdp_allocate_requests_total counter\n"
                      "nvdp_allocate_requests_total{resource=\"nvidia.com/gpu\",result=\"ok\"} 2\n"
                      "nvdp_allocate_requests_total{resource=\"nvidia.com/gpu\",result=\"error\"} 0\n"
                      "nvdp_allocate_requests_total{resource=\"nvidia.com/mig-1g.10gb\",result=\"ok\"} 5\n");
        double v;
        assert_int_equal(metric_get(c, V("nvidia.com/gpu", "ok"), &v), 0);
        assert_true(v == 2);
        assert_int_equal(metric_get(c, V("nvidia.com/gpu", "nope"), &v), -ENOENT);
        /* Counters never go down, and have no set. */
        assert_int_equal(metric_add(c, V("nvidia.com/gpu", "ok"), -1), -EINVAL);
        assert_int_equal(metric_add(c, V("nvidia.com/gpu", "ok"), NAN), -EINVAL);
        assert_int_equal(metric_set(c, V("nvidia.com/gpu", "ok"), -1), -EINVAL);
        assert_int_equal(metric_set(c, V("nvidia.com/gpu", "ok"), NAN), -EINVAL);
        /* A counter may mirror a count kept elsewhere. */
        assert_int_equal(metric_set(c, V("nvidia.com/gpu", "error"), 7), 0);
        assert_int_equal(metric_get(c, V("nvidia.com/gpu", "error"), &v), 0);
        assert_true(v == 7);
        assert_int_equal(metric_observe(c, V("nvidia.com/gpu", "ok"), 1), -EINVAL);
}

static void test_gauge_and_values(void **state)
{
        _cleanup_(metrics_registry_freep) metrics_registry *m = NULL;
        metric *g, *info;
        assert_int_equal(metrics_registry_new(&m), 0);
        assert_int_equal(
                metrics_add(m, METRIC_GAUGE, "nvdp_build_info", "Build.", V("version", NULL), &info), 0);
        assert_int_equal(metrics_add(m, METRIC_GAUGE, "g", "Values.", V("k", NULL), &g), 0);
        assert_int_equal(metric_set(info, V("0.1.0"), 1), 0);
        assert_int_equal(metric_set(g, V("half"), 0.5), 0);
        assert_int_equal(metric_set(g, V("neg"), -3), 0);
        assert_int_equal(metric_set(g, V("big"), 1e20), 0);
        assert_int_equal(metric_set(g, V("tiny"), 2.5e-7), 0);
        assert_int_equal(metric_set(g, V("third"), 1.0 / 3), 0);
        assert_int_equal(metric_set(g, V("inf"), INFINITY), 0);
        assert_int_equal(metric_set(g, V("ninf"), -INFINITY), 0);
        assert_int_equal(metric_set(g, V("nan"), NAN), 0);
        assert_int_equal(metric_set(g, V("negzero"), -0.0), 0);
        assert_int_equal(metric_set(g, V("down"), 7), 0);
        assert_int_equal(metric_add(g, V("down"), -2), 0); /* gauges may go down */
        _cleanup_free_ char *text = format(m);
        assert_string_equal(text, "# HELP nvdp_build_info Build.\n"
                                  "# TYPE nvdp_build_info gauge\n"
                                  "nvdp_build_info{version=\"0.1.0\"} 1\n"
                                  "# HELP g Values.\n"
                                  "# TYPE g gauge\n"
                                  "g{k=\"half\"} 0.5\n"
                                  "g{k=\"neg\"} -3\n"
                                  "g{k=\"big\"} 1e+20\n"
                                  "g{k=\"tiny\"} 2.5e-07\n"
                                  "g{k=\"third\"} 0.3333333333333333\n"
                                  "g{k=\"inf\"} +Inf\n"
                                  "g{k=\"ninf\"} -Inf\n"
                                  "g{k=\"nan\"} NaN\n"
                                  "g{k=\"negzero\"} 0\n"
                                  "g{k=\"down\"} 5\n");
        metric_clear(g);
        assert_int_equal(metric_set(g, V("only"), 2), 0);
        _cleanup_free_ char *text2 = format(m);
        assert_string_equal(text2, "# HELP nvdp_build_info Build.\n"
                                   "# TYPE nvdp_build_info gauge\n"
                                   "nvdp_build_info{version=\"0.1.0\"} 1\n"
                                   "# HELP g Values.\n"
                                   "# TYPE g gauge\n"
                                   "g{k=\"only\"} 2\n");
}

static void test_histogram(void **state)
{
        _cleanup_(metrics_registry_freep) metrics_registry *m = NULL;
        metric *h, *plain;
        static const double bounds[] = { 0.0001, 0.001, 0.01 };
        assert_int_equal(metrics_registry_new(&m), 0);
        assert_int_equal(metrics_add_histogram(m, "nvdp_allocate_duration_seconds", "Allocate latency.",
                                               V("resource", NULL), bounds, 3, &h),
                         0);
        assert_int_equal(metrics_add_histogram(m, "nolabels_seconds", "No labels.", NULL, bounds, 3, &plain),
                         0);
        assert_int_equal(metric_observe(h, V("nvidia.com/gpu"), 0.00005), 0);
        assert_int_equal(metric_observe(h, V("nvidia.com/gpu"), 0.001), 0); /* le is inclusive */
        assert_int_equal(metric_observe(h, V("nvidia.com/gpu"), 0.25), 0);
        assert_int_equal(metric_observe(plain, NULL, 0.002), 0);
        _cleanup_free_ char *text = format(m);
        assert_string_equal(
                text, "# HELP nvdp_allocate_duration_seconds Allocate latency.\n"
                      "# TYPE nvdp_allocate_duration_seconds histogram\n"
                      "nvdp_allocate_duration_seconds_bucket{resource=\"nvidia.com/gpu\",le=\"0.0001\"} 1\n"
                      "nvdp_allocate_duration_seconds_bucket{resource=\"nvidia.com/gpu\",le=\"0.001\"} 2\n"
                      "nvdp_allocate_duration_seconds_bucket{resource=\"nvidia.com/gpu\",le=\"0.01\"} 2\n"
                      "nvdp_allocate_duration_seconds_bucket{resource=\"nvidia.com/gpu\",le=\"+Inf\"} 3\n"
                      "nvdp_allocate_duration_seconds_sum{resource=\"nvidia.com/gpu\"} 0.25105\n"
                      "nvdp_allocate_duration_seconds_count{resource=\"nvidia.com/gpu\"} 3\n"
                      "# HELP nolabels_seconds No labels.\n"
                      "# TYPE nolabels_seconds histogram\n"
                      "nolabels_seconds_bucket{le=\"0.0001\"} 0\n"
                      "nolabels_seconds_bucket{le=\"0.001\"} 0\n"
                      "nolabels_seconds_bucket{le=\"0.01\"} 1\n"
                      "nolabels_seconds_bucket{le=\"+Inf\"} 1\n"
                      "nolabels_seconds_sum 0.002\n"
                      "nolabels_seconds_count 1\n");
        double v;
        assert_int_equal(metric_get(h, V("nvidia.com/gpu"), &v), 0);
        assert_true(v == 3);
        assert_int_equal(metric_inc(h, V("nvidia.com/gpu")), -EINVAL);
        /* Bounds strictly increasing and finite; "le" is reserved. */
        static const double bad[] = { 0.1, 0.1 };
        static const double inf[] = { 0.1, INFINITY };
        assert_int_equal(metrics_add_histogram(m, "bad_seconds", "x", NULL, bad, 2, NULL), -EINVAL);
        assert_int_equal(metrics_add_histogram(m, "inf_seconds", "x", NULL, inf, 2, NULL), -EINVAL);
        assert_int_equal(metrics_add_histogram(m, "le_seconds", "x", V("le", NULL), bounds, 3, NULL),
                         -EINVAL);
        assert_int_equal(metrics_add_histogram(m, "none_seconds", "x", NULL, bounds, 0, NULL), -EINVAL);
}

static void test_escaping(void **state)
{
        _cleanup_(metrics_registry_freep) metrics_registry *m = NULL;
        metric *g;
        assert_int_equal(metrics_registry_new(&m), 0);
        assert_int_equal(metrics_add(m, METRIC_GAUGE, "nvdp_device_healthy",
                                     "Health \\ of a \"GPU\"\nsecond line.", V("reason", NULL), &g),
                         0);
        assert_int_equal(metric_set(g, V("XID 79 \"fallen off\" C:\\gpu\nnext"), 0), 0);
        assert_int_equal(metric_set(g, V(""), 1), 0);
        assert_int_equal(metric_set(g, V("Ünïcode ✓"), 1), 0);
        _cleanup_free_ char *text = format(m);
        /* HELP escapes backslash and newline only; label values also the double quote. */
        assert_string_equal(text,
                            "# HELP nvdp_device_healthy Health \\\\ of a \"GPU\"\\nsecond line.\n"
                            "# TYPE nvdp_device_healthy gauge\n"
                            "nvdp_device_healthy{reason=\"XID 79 \\\"fallen off\\\" C:\\\\gpu\\nnext\"} 0\n"
                            "nvdp_device_healthy{reason=\"\"} 1\n"
                            "nvdp_device_healthy{reason=\"Ünïcode ✓\"} 1\n");
}

static void test_empty_and_names(void **state)
{
        _cleanup_(metrics_registry_freep) metrics_registry *m = NULL;
        metric *c, *g;
        assert_int_equal(metrics_registry_new(&m), 0);
        /* A family without series is not written. */
        assert_int_equal(metrics_add(m, METRIC_COUNTER, "a_total", "A.", V("x", NULL), &c), 0);
        assert_int_equal(metrics_add(m, METRIC_GAUGE, "up", "Up.", NULL, &g), 0);
        _cleanup_free_ char *empty = format(m);
        assert_string_equal(empty, "");
        assert_int_equal(metric_set(g, NULL, 1), 0);
        _cleanup_free_ char *text = format(m);
        assert_string_equal(text, "# HELP up Up.\n# TYPE up gauge\nup 1\n");

        assert_int_equal(metrics_add(m, METRIC_COUNTER, "a_total", "Again.", NULL, NULL), -EEXIST);
        assert_int_equal(metrics_add(m, METRIC_COUNTER, "no_suffix", "x", NULL, NULL), -EINVAL);
        assert_int_equal(metrics_add(m, METRIC_GAUGE, "9lives", "x", NULL, NULL), -EINVAL);
        assert_int_equal(metrics_add(m, METRIC_GAUGE, "has-dash", "x", NULL, NULL), -EINVAL);
        assert_int_equal(metrics_add(m, METRIC_GAUGE, "ns:sub_ok", "x", NULL, NULL), 0);
        assert_int_equal(metrics_add(m, METRIC_GAUGE, "l1", "x", V("__reserved", NULL), NULL), -EINVAL);
        assert_int_equal(metrics_add(m, METRIC_GAUGE, "l2", "x", V("a:b", NULL), NULL), -EINVAL);
        assert_int_equal(metrics_add(m, METRIC_GAUGE, "l3", "x", V("a", "a", NULL), NULL), -EINVAL);
        assert_int_equal(metrics_add(m, METRIC_HISTOGRAM, "l4", "x", NULL, NULL), -EINVAL);
        /* A labelled family needs a value for each label. */
        assert_int_equal(metric_inc(c, NULL), -EINVAL);
        assert_int_equal(metric_inc(c, V(NULL)), -EINVAL);
}

static void test_series_limit(void **state)
{
        _cleanup_(metrics_registry_freep) metrics_registry *m = NULL;
        metric *c;
        assert_int_equal(metrics_registry_new(&m), 0);
        assert_int_equal(metrics_add(m, METRIC_COUNTER, "xid_total", "x", V("xid", NULL), &c), 0);
        char buf[16];
        for (unsigned i = 0; i < METRIC_SERIES_MAX; i++) {
                snprintf(buf, sizeof buf, "%u", i);
                assert_int_equal(metric_inc(c, V(buf)), 0);
        }
        assert_int_equal(metric_inc(c, V("one-more")), -E2BIG);
        assert_int_equal(metric_inc(c, V("7")), 0); /* existing series still count */
        double v;
        assert_int_equal(metric_get(c, V("7"), &v), 0);
        assert_true(v == 2);
}

static int collected;
static void collect(metrics_registry *m, void *userdata)
{
        metric_set(userdata, NULL, ++collected);
}

static void test_collect_callback(void **state)
{
        _cleanup_(metrics_registry_freep) metrics_registry *m = NULL;
        metric *g;
        assert_int_equal(metrics_registry_new(&m), 0);
        assert_int_equal(metrics_add(m, METRIC_GAUGE, "scrapes", "Scrapes.", NULL, &g), 0);
        metrics_registry_set_collect(m, collect, g);
        _cleanup_free_ char *a = format(m);
        _cleanup_free_ char *b = format(m);
        assert_string_equal(a, "# HELP scrapes Scrapes.\n# TYPE scrapes gauge\nscrapes 1\n");
        assert_string_equal(b, "# HELP scrapes Scrapes.\n# TYPE scrapes gauge\nscrapes 2\n");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_counter),          cmocka_unit_test(test_gauge_and_values),
                cmocka_unit_test(test_histogram),        cmocka_unit_test(test_escaping),
                cmocka_unit_test(test_empty_and_names),  cmocka_unit_test(test_series_limit),
                cmocka_unit_test(test_collect_callback),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
