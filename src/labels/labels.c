/* SPDX-License-Identifier: Apache-2.0 */
/* The labels set: a sorted array of key/value pairs. */
#include "labels.h"

#include <stdarg.h>

int labels_new(labels **ret)
{
        labels *l = new0(labels, 1);
        if (!l)
                return -ENOMEM;
        *ret = l;
        return 0;
}

labels *labels_free(labels *l)
{
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].key);
                free(l->items[i].value);
        }
        free(l->items);
        return mfree(l);
}

/* Position of key, or where it would be inserted; *found says which. */
static size_t labels_find(const labels *l, const char *key, bool *found)
{
        size_t lo = 0, hi = l->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(l->items[mid].key, key);
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

/* Room for one more item. */
static int labels_grow(labels *l)
{
        if (l->n < l->allocated)
                return 0;
        size_t a = MAX(l->allocated * 2, (size_t)16);
        struct label *items = realloc(l->items, a * sizeof(struct label));
        if (!items)
                return -ENOMEM;
        l->items = items;
        l->allocated = a;
        return 0;
}

int labels_set(labels *l, const char *key, const char *value)
{
        bool found;
        size_t i = labels_find(l, key, &found);
        char *v = strdup(value);
        if (!v)
                return -ENOMEM;
        if (found) {
                free(l->items[i].value);
                l->items[i].value = v;
                return 0;
        }
        char *k = strdup(key);
        if (!k || labels_grow(l) < 0) {
                free(k);
                free(v);
                return -ENOMEM;
        }
        memmove(l->items + i + 1, l->items + i, (l->n - i) * sizeof(struct label));
        l->items[i] = (struct label){ .key = k, .value = v };
        l->n++;
        return 0;
}

int labels_setf(labels *l, const char *key, const char *fmt, ...)
{
        _cleanup_free_ char *v = format_va(fmt);
        if (!v)
                return -ENOMEM;
        return labels_set(l, key, v);
}

const char *labels_get(const labels *l, const char *key)
{
        bool found;
        size_t i = labels_find(l, key, &found);
        return found ? l->items[i].value : NULL;
}

int labels_format(const labels *l, char **ret)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        labels_print(l, f, NULL);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

void labels_print(const labels *l, FILE *f, const char *indent)
{
        for (size_t i = 0; i < l->n; i++)
                fprintf(f, "%s%s=%s\n", strempty(indent), l->items[i].key, l->items[i].value);
}
