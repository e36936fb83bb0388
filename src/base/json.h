/* SPDX-License-Identifier: Apache-2.0 */
/* JSON, the one way: json-c objects in, with limits (json_parse; json_parse_yaml for YAML files, into the
 * same objects), and one escaper out for the text we write by hand (log lines, nvdp info --json, the
 * doctor's report). Request bodies we send are built with json-c (src/kube/kube-json.c). */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "base/macro.h"

typedef struct json_object json_object; /* json-c's type */

/* Parses one JSON value (strict; nothing but blanks after it) of at most max_size bytes, nested at most
 * max_depth deep. -EMSGSIZE over max_size, -EINVAL for anything that is not valid JSON. */
int json_parse(const char *text, size_t size, size_t max_size, int max_depth, struct json_object **ret);
/* The first document of a YAML file (block or flow style; JSON is YAML) into the same tree: mappings as
 * objects, sequences as arrays, every scalar as a string. Aliases are refused (-EINVAL), as are mapping
 * keys that are not scalars; limits as json_parse. For files other programs write as YAML (CDI specs). */
int json_parse_yaml(const char *text, size_t size, size_t max_size, int max_depth, struct json_object **ret);
void json_putp(struct json_object **o);
#define _cleanup_json_ _cleanup_(json_putp)

/* The member key of an object, NULL when o is not an object or has no such member. */
struct json_object *json_get(struct json_object *o, const char *key);
/* The length of an array, 0 for anything else; its element i (NULL out of range). */
size_t json_array_size(struct json_object *o);
struct json_object *json_array_at(struct json_object *o, size_t i);
/* The member at a NULL-terminated key path, NULL when any step is missing or not an object. */
struct json_object *json_get_path(struct json_object *o, const char *const *keys);
/* The text of a scalar: a string's value, a number, true or false as JSON writes them; NULL for null, an
 * object or an array, and a missing value. */
const char *json_text(struct json_object *o);

/* Building json-c objects (request bodies, ResourceSlices, the DRA checkpoint). Each takes ownership of
 * the value it adds, also on failure; a NULL value from a failed json_object_new_*() is -ENOMEM. */
/* v under key; v NULL is JSON null (a merge patch removes the key). */
int json_add(struct json_object *o, const char *key, struct json_object *v);
int json_add_string(struct json_object *o, const char *key, const char *value);
int json_add_int(struct json_object *o, const char *key, int64_t value);
int json_add_bool(struct json_object *o, const char *key, bool value);
/* A new empty object or array under key, owned by o; NULL when out of memory. */
struct json_object *json_add_object(struct json_object *o, const char *key);
struct json_object *json_add_array(struct json_object *o, const char *key);
/* Appends v to an array (v NULL: -ENOMEM). */
int json_append(struct json_object *array, struct json_object *v);
/* The text of o, compact (or indented), '/' not escaped, in a new string. */
int json_format(struct json_object *o, bool pretty, char **ret);

/* The escape of one byte inside a JSON string ("\\\"", "\\n", "\\u0001", or the byte itself); out holds
 * at least 7 bytes. Returns its length. */
size_t json_escape_char(unsigned char c, char out[static 7]);
/* s escaped into out (at most size - 1 bytes and a NUL; the escape of a byte is never cut). Returns the
 * length written. */
size_t json_escape(char *out, size_t size, const char *s);
/* s as a quoted JSON string; NULL as null. */
void json_write_string(FILE *f, const char *s);
