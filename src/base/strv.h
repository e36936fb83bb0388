/* SPDX-License-Identifier: Apache-2.0 */
/* The one string-list type: a NULL-terminated char ** that owns its strings. */
#pragma once

#include "macro.h"

char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)

size_t strv_length(char *const *l);
bool strv_contains(char *const *l, const char *s);
/* Appends a copy of s. */
int strv_extend(char ***l, const char *s);
/* Appends a formatted string. */
int strv_extendf(char ***l, const char *fmt, ...) _printf_(2, 3);
/* Appends s itself; on success the list owns it. */
int strv_push(char ***l, char *s);
/* Splits s at any of the separator characters; empty fields are dropped, fields are trimmed of blanks. */
int strv_split(const char *s, const char *separators, char ***ret);
/* Joins with sep; an empty list gives "". */
char *strv_join(char *const *l, const char *sep);
char **strv_copy(char *const *l);
/* Sorts in place with strcmp. */
void strv_sort(char **l);
bool strv_equal(char *const *a, char *const *b);

/* Building a long list: strv_push walks the list on every call (n pushes cost O(n^2): 100,000 node labels
 * took seconds); the builder keeps the length and doubles its room. Zero-initialise it. */
typedef struct strv_builder {
        char **l;
        size_t n, room;
} strv_builder;
/* Appends s itself; on failure s is freed. */
int strv_builder_push(strv_builder *b, char *s);
int strv_builder_extend(strv_builder *b, const char *s);
/* The list built (empty, not NULL, for none; NULL only when out of memory); the builder is reset. */
char **strv_builder_take(strv_builder *b);
void strv_builder_done(strv_builder *b);
#define _cleanup_strv_builder_ _cleanup_(strv_builder_done)
/* Whether s is in l, sorted with strv_sort (binary search). */
bool strv_contains_sorted(char *const *l, size_t n, const char *s);

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)
