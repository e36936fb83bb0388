/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics/metrics.h"

#include <math.h>

struct series {
        char **values;     /* one per label name */
        double value;      /* counter, gauge; histogram: the sum */
        uint64_t count;    /* histogram */
        uint64_t *buckets; /* histogram: cumulative count per bound (the +Inf bucket is count) */
};

struct metric {
        enum metric_type type;
        char *name;
        char *help;
        char **labels;
        size_t n_labels;
        double *bounds;
        size_t n_bounds;
        struct series *series;
        size_t n_series;
};

struct metrics_registry {
        metric **families;
        size_t n_families;
        metrics_collect_fn collect;
        void *collect_userdata;
};

int metrics_registry_new(metrics_registry **ret)
{
        metrics_registry *m = new0(metrics_registry, 1);
        if (!m)
                return -ENOMEM;
        *ret = m;
        return 0;
}

static void series_done(struct series *s, size_t n_labels)
{
        for (size_t i = 0; s->values && i < n_labels; i++)
                free(s->values[i]);
        free(s->values);
        free(s->buckets);
}

void metric_clear(metric *f)
{
        for (size_t i = 0; i < f->n_series; i++)
                series_done(&f->series[i], f->n_labels);
        f->series = mfree(f->series);
        f->n_series = 0;
}

static metric *metric_free(metric *f)
{
        if (!f)
                return NULL;
        metric_clear(f);
        for (size_t i = 0; f->labels && i < f->n_labels; i++)
                free(f->labels[i]);
        free(f->labels);
        free(f->bounds);
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(metric *, metric_free);

metrics_registry *metrics_registry_free(metrics_registry *m)
{
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_families; i++)
                metric_free(m->families[i]);
        free(m->families);
        free(m);
        return NULL;
}

void metrics_registry_set_collect(metrics_registry *m, metrics_collect_fn cb, void *userdata)
{
        m->collect = cb;
        m->collect_userdata = userdata;
}

/* ---- names ------------------------------------------------------------------------------------- */

static bool name_char(char c, bool first, bool colon)
{
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
                return true;
        if (colon && c == ':')
                return true;
        return !first && c >= '0' && c <= '9';
}

static bool valid_name(const char *s, bool colon)
{
        if (isempty(s))
                return false;
        for (size_t i = 0; s[i]; i++)
                if (!name_char(s[i], i == 0, colon))
                        return false;
        return true;
}

static int family_new(metrics_registry *m, enum metric_type type, const char *name, const char *help,
                      const char *const *label_names, metric **ret)
{
        if (!valid_name(name, true) || !help)
                return -EINVAL;
        if (type == METRIC_COUNTER && !endswith(name, "_total"))
                return -EINVAL;
        for (size_t i = 0; i < m->n_families; i++)
                if (streq(m->families[i]->name, name))
                        return -EEXIST;
        size_t n = 0;
        while (label_names && label_names[n])
                n++;
        if (n > METRIC_LABELS_MAX)
                return -E2BIG;
        _cleanup_(metric_freep) metric *f = new0(metric, 1);
        if (!f)
                return -ENOMEM;
        f->type = type;
        f->name = strdup(name);
        f->help = strdup(help);
        f->labels = new0(char *, n + 1);
        if (!f->name || !f->help || !f->labels)
                return -ENOMEM;
        f->n_labels = n;
        for (size_t i = 0; i < n; i++) {
                const char *l = label_names[i];
                if (!valid_name(l, false) || startswith(l, "__") ||
                    (type == METRIC_HISTOGRAM && streq(l, "le")))
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (streq(label_names[j], l))
                                return -EINVAL;
                if (!(f->labels[i] = strdup(l)))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(f);
        return 0;
}

static int family_register(metrics_registry *m, metric *f, metric **ret)
{
        metric **a = realloc(m->families, sizeof(metric *) * (m->n_families + 1));
        if (!a)
                return -ENOMEM;
        m->families = a;
        m->families[m->n_families++] = f;
        if (ret)
                *ret = f;
        return 0;
}

int metrics_add(metrics_registry *m, enum metric_type type, const char *name, const char *help,
                const char *const *label_names, metric **ret)
{
        if (type != METRIC_COUNTER && type != METRIC_GAUGE)
                return -EINVAL;
        _cleanup_(metric_freep) metric *f = NULL;
        int r = family_new(m, type, name, help, label_names, &f);
        if (r < 0)
                return r;
        r = family_register(m, f, ret);
        if (r >= 0)
                f = NULL;
        return r;
}

int metrics_add_histogram(metrics_registry *m, const char *name, const char *help,
                          const char *const *label_names, const double *bounds, size_t n_bounds,
                          metric **ret)
{
        if (n_bounds == 0 || n_bounds > METRIC_BUCKETS_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n_bounds; i++)
                if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                        return -EINVAL;
        _cleanup_(metric_freep) metric *f = NULL;
        int r = family_new(m, METRIC_HISTOGRAM, name, help, label_names, &f);
        if (r < 0)
                return r;
        if (!(f->bounds = new0(double, n_bounds)))
                return -ENOMEM;
        memcpy(f->bounds, bounds, sizeof(double) * n_bounds);
        f->n_bounds = n_bounds;
        r = family_register(m, f, ret);
        if (r >= 0)
                f = NULL;
        return r;
}

/* ---- series ------------------------------------------------------------------------------------ */

static bool series_matches(const metric *f, const struct series *s, const char *const *values)
{
        for (size_t i = 0; i < f->n_labels; i++)
                if (!streq(s->values[i], values[i]))
                        return false;
        return true;
}

static struct series *series_find(const metric *f, const char *const *values)
{
        for (size_t i = 0; i < f->n_series; i++)
                if (series_matches(f, &f->series[i], values))
                        return &f->series[i];
        return NULL;
}

static int series_get(metric *f, const char *const *values, struct series **ret)
{
        if (f->n_labels > 0 && !values)
                return -EINVAL;
        for (size_t i = 0; i < f->n_labels; i++)
                if (!values[i])
                        return -EINVAL;
        struct series *s = series_find(f, values);
        if (s) {
                *ret = s;
                return 0;
        }
        if (f->n_series >= METRIC_SERIES_MAX)
                return -E2BIG;
        struct series n = {};
        n.values = new0(char *, f->n_labels + 1);
        if (!n.values)
                return -ENOMEM;
        int r = 0;
        for (size_t i = 0; r >= 0 && i < f->n_labels; i++)
                if (!(n.values[i] = strdup(values[i])))
                        r = -ENOMEM;
        if (r >= 0 && f->type == METRIC_HISTOGRAM && !(n.buckets = new0(uint64_t, f->n_bounds)))
                r = -ENOMEM;
        struct series *a = r >= 0 ? realloc(f->series, sizeof(struct series) * (f->n_series + 1)) : NULL;
        if (!a) {
                series_done(&n, f->n_labels);
                return -ENOMEM;
        }
        f->series = a;
        f->series[f->n_series] = n;
        *ret = &f->series[f->n_series++];
        return 0;
}

int metric_touch(metric *f, const char *const *label_values)
{
        struct series *s;
        return series_get(f, label_values, &s);
}

int metric_add(metric *f, const char *const *label_values, double delta)
{
        if (f->type == METRIC_HISTOGRAM || isnan(delta) || (f->type == METRIC_COUNTER && delta < 0))
                return -EINVAL;
        struct series *s;
        int r = series_get(f, label_values, &s);
        if (r < 0)
                return r;
        s->value += delta;
        return 0;
}

int metric_inc(metric *f, const char *const *label_values)
{
        return metric_add(f, label_values, 1);
}

int metric_set(metric *f, const char *const *label_values, double value)
{
        if (f->type == METRIC_HISTOGRAM || (f->type == METRIC_COUNTER && (isnan(value) || value < 0)))
                return -EINVAL;
        struct series *s;
        int r = series_get(f, label_values, &s);
        if (r < 0)
                return r;
        s->value = value;
        return 0;
}

int metric_observe(metric *f, const char *const *label_values, double value)
{
        if (f->type != METRIC_HISTOGRAM || isnan(value))
                return -EINVAL;
        struct series *s;
        int r = series_get(f, label_values, &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < f->n_bounds; i++)
                if (value <= f->bounds[i])
                        s->buckets[i]++;
        s->count++;
        s->value += value;
        return 0;
}

int metric_get(const metric *f, const char *const *label_values, double *ret)
{
        if (f->n_labels > 0 && !label_values)
                return -EINVAL;
        const struct series *s = series_find(f, label_values);
        if (!s)
                return -ENOENT;
        *ret = f->type == METRIC_HISTOGRAM ? (double)s->count : s->value;
        return 0;
}

/* ---- text format ------------------------------------------------------------------------------- */

/* Integers as integers; otherwise the shortest text that reads back as the same double. */
static void write_value(FILE *out, double v)
{
        if (isnan(v)) {
                fputs("NaN", out);
                return;
        }
        if (isinf(v)) {
                fputs(v > 0 ? "+Inf" : "-Inf", out);
                return;
        }
        if (v == floor(v) && fabs(v) < 9007199254740992.0) { /* 2^53: exact */
                fprintf(out, "%.0f", v == 0 ? 0.0 : v);      /* never "-0" */
                return;
        }
        char buf[32];
        for (int prec = 1; prec <= 17; prec++) {
                snprintf(buf, sizeof buf, "%.*g", prec, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        fputs(buf, out);
}

/* HELP text escapes backslash and newline; label values also the double quote. */
static void write_escaped(FILE *out, const char *s, bool quote)
{
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", out);
                else if (*s == '\n')
                        fputs("\\n", out);
                else if (quote && *s == '"')
                        fputs("\\\"", out);
                else
                        fputc(*s, out);
        }
}

/* name{a="x",b="y"[,le="0.5"]} value */
static void write_sample(FILE *out, const metric *f, const char *suffix, const struct series *s,
                         const double *le, double value)
{
        fputs(f->name, out);
        fputs(suffix, out);
        if (f->n_labels > 0 || le) {
                fputc('{', out);
                for (size_t i = 0; i < f->n_labels; i++) {
                        fprintf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
                        write_escaped(out, s->values[i], true);
                        fputc('"', out);
                }
                if (le) {
                        fputs(f->n_labels ? ",le=\"" : "le=\"", out);
                        write_value(out, *le);
                        fputc('"', out);
                }
                fputc('}', out);
        }
        fputc(' ', out);
        write_value(out, value);
        fputc('\n', out);
}

static void write_family(FILE *out, const metric *f)
{
        static const char *const type_names[] = {
                [METRIC_COUNTER] = "counter",
                [METRIC_GAUGE] = "gauge",
                [METRIC_HISTOGRAM] = "histogram",
        };
        if (f->n_series == 0)
                return;
        fprintf(out, "# HELP %s ", f->name);
        write_escaped(out, f->help, false);
        fprintf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
        for (size_t i = 0; i < f->n_series; i++) {
                const struct series *s = &f->series[i];
                if (f->type != METRIC_HISTOGRAM) {
                        write_sample(out, f, "", s, NULL, s->value);
                        continue;
                }
                for (size_t b = 0; b < f->n_bounds; b++)
                        write_sample(out, f, "_bucket", s, &f->bounds[b], (double)s->buckets[b]);
                const double inf = INFINITY;
                write_sample(out, f, "_bucket", s, &inf, (double)s->count);
                write_sample(out, f, "_sum", s, NULL, s->value);
                write_sample(out, f, "_count", s, NULL, (double)s->count);
        }
}

int metrics_format(metrics_registry *m, char **ret, size_t *ret_size)
{
        if (m->collect)
                m->collect(m, m->collect_userdata);
        char *buf = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&buf, &size);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_families; i++)
                write_family(out, m->families[i]);
        bool failed = ferror(out);
        if (fclose(out) != 0 || failed) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        *ret_size = size;
        return 0;
}
