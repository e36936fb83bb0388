/* SPDX-License-Identifier: Apache-2.0 */
/* The list of check results, and how it is shown: aligned text for a person, JSON for tools. */
#include <stdarg.h>

#include "base/json.h"
#include "doctor.h"

static const char *const verdict_names[] = {
        [DOCTOR_OK] = "ok",
        [DOCTOR_WARN] = "warn",
        [DOCTOR_FAIL] = "fail",
        [DOCTOR_SKIP] = "skip",
};

const char *doctor_verdict_to_string(enum doctor_verdict v)
{
        return (unsigned)v < ELEMENTSOF(verdict_names) ? verdict_names[v] : "?";
}

doctor_report *doctor_report_new(void)
{
        return new0(doctor_report, 1);
}

doctor_report *doctor_report_free(doctor_report *r)
{
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_results; i++) {
                free(r->results[i].id);
                free(r->results[i].evidence);
                free(r->results[i].fix);
        }
        free(r->results);
        free(r);
        return NULL;
}

int doctor_report_add(doctor_report *r, const char *id, enum doctor_verdict v, const char *evidence,
                      const char *fix)
{
        if (r->n_results >= r->n_alloc) {
                size_t a = MAX(r->n_alloc * 2, (size_t)16);
                struct doctor_result *n = realloc(r->results, a * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                r->results = n;
                r->n_alloc = a;
        }
        struct doctor_result res = {
                .id = strdup(id),
                .verdict = v,
                .evidence = strdup(strempty(evidence)),
                .fix = fix && (v == DOCTOR_WARN || v == DOCTOR_FAIL) ? strdup(fix) : NULL,
        };
        if (!res.id || !res.evidence || (fix && (v == DOCTOR_WARN || v == DOCTOR_FAIL) && !res.fix)) {
                free(res.id);
                free(res.evidence);
                free(res.fix);
                return -ENOMEM;
        }
        r->results[r->n_results++] = res;
        return 0;
}

int doctor_report_addf(doctor_report *r, const char *id, enum doctor_verdict v, const char *fix,
                       const char *evidence_fmt, ...)
{
        _cleanup_free_ char *e = format_va(evidence_fmt);
        if (!e)
                return -ENOMEM;
        return doctor_report_add(r, id, v, e, fix);
}

const struct doctor_result *doctor_report_find(const doctor_report *r, const char *id)
{
        for (size_t i = 0; r && i < r->n_results; i++)
                if (streq(r->results[i].id, id))
                        return &r->results[i];
        return NULL;
}

int doctor_report_exit_code(const doctor_report *r)
{
        int code = 0;
        for (size_t i = 0; r && i < r->n_results; i++) {
                if (r->results[i].verdict == DOCTOR_FAIL)
                        return 2;
                if (r->results[i].verdict == DOCTOR_WARN)
                        code = 1;
        }
        return code;
}

static void count(const doctor_report *r, size_t counts[4])
{
        memset(counts, 0, 4 * sizeof(size_t));
        for (size_t i = 0; i < r->n_results; i++)
                if ((unsigned)r->results[i].verdict < 4)
                        counts[r->results[i].verdict]++;
}

int doctor_report_print_text(const doctor_report *r, FILE *f)
{
        size_t w = 0;
        for (size_t i = 0; i < r->n_results; i++)
                w = MAX(w, strlen(r->results[i].id));
        for (size_t i = 0; i < r->n_results; i++) {
                const struct doctor_result *x = &r->results[i];
                fprintf(f, "%-4s  %-*s  %s\n", doctor_verdict_to_string(x->verdict), (int)w, x->id,
                        x->evidence);
                if (x->fix)
                        fprintf(f, "%-4s  %-*s  fix: %s\n", "", (int)w, "", x->fix);
        }
        size_t c[4];
        count(r, c);
        fprintf(f, "\n%zu ok, %zu warn, %zu fail, %zu skip\n", c[DOCTOR_OK], c[DOCTOR_WARN], c[DOCTOR_FAIL],
                c[DOCTOR_SKIP]);
        return ferror(f) ? -EIO : 0;
}

int doctor_report_print_json(const doctor_report *r, FILE *f)
{
        size_t c[4];
        count(r, c);
        fprintf(f,
                "{\"version\":1,\"exit_code\":%d,\"summary\":{\"ok\":%zu,\"warn\":%zu,\"fail\":%zu,\"skip\":"
                "%zu},"
                "\"checks\":[",
                doctor_report_exit_code(r), c[DOCTOR_OK], c[DOCTOR_WARN], c[DOCTOR_FAIL], c[DOCTOR_SKIP]);
        for (size_t i = 0; i < r->n_results; i++) {
                const struct doctor_result *x = &r->results[i];
                fputs(i ? ",{\"id\":" : "{\"id\":", f);
                json_write_string(f, x->id);
                fputs(",\"verdict\":", f);
                json_write_string(f, doctor_verdict_to_string(x->verdict));
                fputs(",\"evidence\":", f);
                json_write_string(f, x->evidence);
                fputs(",\"fix\":", f);
                json_write_string(f, x->fix);
                fputc('}', f);
        }
        fputs("]}\n", f);
        return ferror(f) ? -EIO : 0;
}
