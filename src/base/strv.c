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

int strv_builder_push(strv_builder *b, char *s)
{
        if (b->n + 2 > b->room) {
                size_t room = MAX(b->room * 2, (size_t)8);
                char **l = realloc(b->l, sizeof(char *) * room);
                if (!l) {
                        free(s);
                        return -ENOMEM;
                }
                b->l = l;
                b->room = room;
        }
        b->l[b->n++] = s;
        b->l[b->n] = NULL;
        return 0;
}

int strv_builder_extend(strv_builder *b, const char *s)
{
        char *c = strdup(s);
        return c ? strv_builder_push(b, c) : -ENOMEM;
}

char **strv_builder_take(strv_builder *b)
{
        char **l = b->l ? b->l : new0(char *, 1);
        *b = (strv_builder){};
        return l;
}

void strv_builder_done(strv_builder *b)
{
        if (b->l)
                b->l = strv_free(b->l);
        *b = (strv_builder){};
}

int strv_split(const char *s, const char *separators, char ***ret)
{
        _cleanup_strv_builder_ strv_builder b = {};
        while (*s) {
                size_t n = strcspn(s, separators);
                const char *p = s, *e = s + n;
                while (p < e && isspace((unsigned char)*p))
                        p++;
                while (e > p && isspace((unsigned char)e[-1]))
                        e--;
                if (e > p) {
                        char *w = strndup(p, (size_t)(e - p));
                        if (!w)
                                return -ENOMEM;
                        int r = strv_builder_push(&b, w);
                        if (r < 0)
                                return r;
                }
                s += n;
                if (*s)
                        s++;
        }
        char **l = strv_builder_take(&b);
        if (!l)
                return -ENOMEM;
        *ret = l;
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

bool strv_contains_sorted(char *const *l, size_t n, const char *s)
{
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(l[mid], s);
                if (c == 0)
                        return true;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
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
