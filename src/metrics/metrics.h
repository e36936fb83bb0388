/* SPDX-License-Identifier: Apache-2.0 */
/* A metrics registry and its Prometheus text exposition (format 0.0.4).
 *
 * A family has a name, a help text, a type and a fixed list of label names; its series are created on
 * first use by their label values. Values are doubles. Families are written in the order they were
 * added, series in the order they were created. A family without series is not written (as the Go
 * client does for a vector with no children).
 *
 * Not thread-safe: the plugin touches metrics only from its loop thread (the health thread posts to
 * the loop, see DESIGN.md). Library code: no logging, no I/O. */
#pragma once

#include <stdint.h>

#include "base/macro.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* Series per family at most: label values such as an XID number come from the driver, so the
 * number of series is bounded; updates to a series that cannot be created return -E2BIG. */
#define METRIC_SERIES_MAX  4096
#define METRIC_LABELS_MAX  8
#define METRIC_BUCKETS_MAX 32

typedef struct metrics_registry metrics_registry;
typedef struct metric metric;

/* Called at the start of every metrics_format(): the place to set gauges computed from state. */
typedef void (*metrics_collect_fn)(metrics_registry *m, void *userdata);

int metrics_registry_new(metrics_registry **ret);
metrics_registry *metrics_registry_free(metrics_registry *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(metrics_registry *, metrics_registry_free);
void metrics_registry_set_collect(metrics_registry *m, metrics_collect_fn cb, void *userdata);

/* Adds a counter or gauge family. name matches [a-zA-Z_:][a-zA-Z0-9_:]*; a counter's name ends in
 * "_total". label_names is NULL-terminated (NULL: no labels); names match [a-zA-Z_][a-zA-Z0-9_]* and
 * do not start with "__". -EINVAL for a bad name, -EEXIST for a name already added. The registry owns
 * the family; ret (optional) points to it until the registry is freed. */
int metrics_add(metrics_registry *m, enum metric_type type, const char *name, const char *help,
                const char *const *label_names, metric **ret);
/* Adds a histogram family with these upper bounds (strictly increasing, finite; "+Inf" is implied).
 * The label "le" is reserved. */
int metrics_add_histogram(metrics_registry *m, const char *name, const char *help,
                          const char *const *label_names, const double *bounds, size_t n_bounds,
                          metric **ret);

/* label_values has one entry per label name (NULL when the family has no labels); any UTF-8 text,
 * escaped on output. */
int metric_inc(metric *f, const char *const *label_values);
/* Counters only go up: -EINVAL for a negative or NaN delta. */
int metric_add(metric *f, const char *const *label_values, double delta);
/* Gauges; and counters that mirror a count kept elsewhere (the caller keeps it monotonic): -EINVAL for
 * a negative or NaN counter value. */
int metric_set(metric *f, const char *const *label_values, double value);
/* Histograms only: counts value in every bucket whose bound is >= value, adds it to the sum. */
int metric_observe(metric *f, const char *const *label_values, double value);
/* Creates the series with value 0 if it does not exist, so that it is written before its first
 * event (rate() needs the 0). */
int metric_touch(metric *f, const char *const *label_values);
/* Drops every series (for gauges recomputed by a collect callback, whose label sets change). */
void metric_clear(metric *f);
/* The current value of a counter or gauge series, or of a histogram's count; -ENOENT if the series
 * does not exist. */
int metric_get(const metric *f, const char *const *label_values, double *ret);

/* The whole registry in the text format, NUL-terminated; ret_size excludes the NUL. */
int metrics_format(metrics_registry *m, char **ret, size_t *ret_size);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
