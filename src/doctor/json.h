/* SPDX-License-Identifier: Apache-2.0 */
/* Reading kubectl's JSON output: parsed with libyaml (JSON is YAML flow style) into a document we
 * walk by key and index. Read-only; nodes are indexes into the document, 0 means "none", and every
 * lookup accepts 0, so chains like json_get(d, json_get(d, root, "status"), "phase") need no checks. */
#pragma once

#include "base/macro.h"

typedef struct json_doc json_doc;
typedef int json_node;

#define JSON_MAX_INPUT (32U * 1024 * 1024)

int json_doc_parse(const char *text, size_t size, json_doc **ret);
json_doc *json_doc_free(json_doc *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_doc *, json_doc_free);

json_node json_root(const json_doc *d);
/* Member of an object, 0 when absent or node is not an object. */
json_node json_get(const json_doc *d, json_node obj, const char *key);
/* Follows a NULL-terminated list of keys. */
json_node json_get_path(const json_doc *d, json_node obj, const char *const *keys);
size_t json_array_length(const json_doc *d, json_node arr);
json_node json_array_item(const json_doc *d, json_node arr, size_t i);
/* Object members: count, and the key / value node of member i. */
size_t json_object_length(const json_doc *d, json_node obj);
const char *json_object_key(const json_doc *d, json_node obj, size_t i);
json_node json_object_value(const json_doc *d, json_node obj, size_t i);
/* The text of a scalar (string, number, true/false/null as written), NULL otherwise. */
const char *json_string(const json_doc *d, json_node n);
