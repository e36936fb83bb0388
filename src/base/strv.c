/* SPDX-License-Identifier: Apache-2.0 */
#include "strv.h"

#include <stdarg.h>

#include <ctype.h>

char **strv_free(char **l)
{
        if (!l)
                return NULL;
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l)
{
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

bool strv_contains(char *const *l, const char *s)
{
        STRV_FOREACH (p, l)
                if (streq(*p, s))
                        return true;
        return false;
}

int strv_push(char ***l, char *s)
{
        size_t n = strv_length(*l);
        char **nl = realloc(*l, sizeof(char *) * (n + 2));
        if (!nl)
                return -ENOMEM;
        nl[n] = s;
        nl[n + 1] = NULL;
        *l = nl;
        return 0;
}

int strv_extendf(char ***l, const char *fmt, ...)
{
        char *s = format_va(fmt);
        if (!s)
                return -ENOMEM;
        int r = strv_push(l, s);
        if (r < 0)
                free(s);
        return r;
}

int strv_extend(char ***l, const char *s)
{
        return strv_extendf(l, "%s", s);
}

int strv_split(const char *s, const char *separators, char ***ret)
{
        _cleanup_strv_free_ char **l = new0(char *, 1);
        if (!l)
                return -ENOMEM;
        while (*s) {
                size_t n = strcspn(s, separators);
                const char *b = s, *e = s + n;
                while (b < e && isspace((unsigned char)*b))
                        b++;
                while (e > b && isspace((unsigned char)e[-1]))
                        e--;
                if (e > b) {
                        char *w = strndup(b, (size_t)(e - b));
                        if (!w)
                                return -ENOMEM;
                        int r = strv_push(&l, w);
                        if (r < 0) {
                                free(w);
                                return r;
                        }
                }
                s += n;
                if (*s)
                        s++;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

char *strv_join(char *const *l, const char *sep)
{
        size_t k = strlen(sep), n = 1;
        STRV_FOREACH (p, l)
                n += strlen(*p) + k;
        char *r = malloc(n), *e = r;
        if (!r)
                return NULL;
        *e = '\0';
        STRV_FOREACH (p, l) {
                if (p != l)
                        e = stpcpy(e, sep);
                e = stpcpy(e, *p);
        }
        return r;
}

char **strv_copy(char *const *l)
{
        _cleanup_strv_free_ char **c = new0(char *, strv_length(l) + 1);
        if (!c)
                return NULL;
        size_t i = 0;
        STRV_FOREACH (p, l) {
                c[i] = strdup(*p);
                if (!c[i])
                        return NULL;
                i++;
        }
        return TAKE_PTR(c);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(char **l)
{
        if (l)
                qsort(l, strv_length(l), sizeof(char *), cmp_str);
}

bool strv_equal(char *const *a, char *const *b)
{
        size_t n = strv_length(a);
        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}
