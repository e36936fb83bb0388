/* SPDX-License-Identifier: Apache-2.0 */
/* A small, bounded TOML reader for what the doctor needs from containerd configs: tables, dotted
 * and quoted keys, strings (basic, literal, multi-line), integers, booleans, arrays, inline tables.
 * Everything is flattened into entries keyed by their full path. Any input is safe: limits on
 * entries, nesting and path length; errors carry a line number. Duplicate keys and tables are
 * errors, as they are for containerd. */
#pragma once

#include <stdint.h>

#include "base/macro.h"

typedef struct toml toml;

enum toml_kind {
        TOML_TABLE, /* a [header] (or [[array]] header) */
        TOML_STRING,
        TOML_INTEGER,
        TOML_BOOL,
        TOML_ARRAY, /* strings of a string array are kept; other arrays keep none */
        TOML_OTHER, /* float, date: kept as text */
};

#define TOML_MAX_ENTRIES 4096
#define TOML_MAX_DEPTH   16 /* nested arrays / inline tables */
#define TOML_MAX_PATH    32 /* components of a full key path */
#define TOML_MAX_INPUT   (4U * 1024 * 1024)

/* Parses text[0..size). On a syntax error returns -EINVAL (-E2BIG for a limit) and, when given,
 * *ret_error_line (1-based) and *ret_error (a static phrase: "unterminated string", ...). */
int toml_parse(const char *text, size_t size, toml **ret, unsigned *ret_error_line, const char **ret_error);
toml *toml_free(toml *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(toml *, toml_free);

/* Lookups by full path (NULL-terminated list of components, e.g. {"plugins", "io.containerd.grpc.v1.cri",
 * "containerd", "runtimes", "nvidia", "options", "BinaryName", NULL}). */
const char *toml_get_string(const toml *t, const char *const *path);
int toml_get_integer(const toml *t, const char *const *path, int64_t *ret);
/* -ENOENT when absent, -EINVAL when not a boolean. */
int toml_get_bool(const toml *t, const char *const *path, bool *ret);
/* The strings of a string array (borrowed; NULL when absent or not such an array). */
char *const *toml_get_string_array(const toml *t, const char *const *path);
/* A table was declared with this path, or some key lies below it. */
bool toml_has_table(const toml *t, const char *const *path);
/* Names of the direct children of a table (keys and sub-tables), sorted, unique. */
int toml_list_children(const toml *t, const char *const *path, char ***ret);
