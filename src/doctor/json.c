/* SPDX-License-Identifier: Apache-2.0 */
#include "json.h"

#include <yaml.h>

struct json_doc {
        yaml_document_t doc;
};

json_doc *json_doc_free(json_doc *d)
{
        if (!d)
                return NULL;
        yaml_document_delete(&d->doc);
        free(d);
        return NULL;
}

int json_doc_parse(const char *text, size_t size, json_doc **ret)
{
        if (size > JSON_MAX_INPUT)
                return -E2BIG;
        yaml_parser_t parser;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, size);
        json_doc *d = new0(json_doc, 1);
        if (!d) {
                yaml_parser_delete(&parser);
                return -ENOMEM;
        }
        int ok = yaml_parser_load(&parser, &d->doc);
        yaml_parser_delete(&parser);
        if (!ok) {
                free(d);
                return -EINVAL;
        }
        if (!yaml_document_get_root_node(&d->doc)) {
                /* empty input */
                json_doc_free(d);
                return -ENODATA;
        }
        *ret = d;
        return 0;
}

static yaml_node_t *node(const json_doc *d, json_node n)
{
        if (!d || n <= 0)
                return NULL;
        return yaml_document_get_node((yaml_document_t *)&d->doc, n);
}

json_node json_root(const json_doc *d)
{
        return d && yaml_document_get_root_node((yaml_document_t *)&d->doc) ? 1 : 0;
}

const char *json_string(const json_doc *d, json_node n)
{
        yaml_node_t *x = node(d, n);
        return x && x->type == YAML_SCALAR_NODE ? (const char *)x->data.scalar.value : NULL;
}

json_node json_get(const json_doc *d, json_node obj, const char *key)
{
        yaml_node_t *x = node(d, obj);
        if (!x || x->type != YAML_MAPPING_NODE)
                return 0;
        for (yaml_node_pair_t *p = x->data.mapping.pairs.start; p < x->data.mapping.pairs.top; p++) {
                const char *k = json_string(d, p->key);
                if (k && streq(k, key))
                        return p->value;
        }
        return 0;
}

json_node json_get_path(const json_doc *d, json_node obj, const char *const *keys)
{
        for (const char *const *k = keys; k && *k && obj; k++)
                obj = json_get(d, obj, *k);
        return obj;
}

size_t json_array_length(const json_doc *d, json_node arr)
{
        yaml_node_t *x = node(d, arr);
        if (!x || x->type != YAML_SEQUENCE_NODE)
                return 0;
        return (size_t)(x->data.sequence.items.top - x->data.sequence.items.start);
}

json_node json_array_item(const json_doc *d, json_node arr, size_t i)
{
        if (i >= json_array_length(d, arr))
                return 0;
        return node(d, arr)->data.sequence.items.start[i];
}

size_t json_object_length(const json_doc *d, json_node obj)
{
        yaml_node_t *x = node(d, obj);
        if (!x || x->type != YAML_MAPPING_NODE)
                return 0;
        return (size_t)(x->data.mapping.pairs.top - x->data.mapping.pairs.start);
}

const char *json_object_key(const json_doc *d, json_node obj, size_t i)
{
        if (i >= json_object_length(d, obj))
                return NULL;
        return json_string(d, node(d, obj)->data.mapping.pairs.start[i].key);
}

json_node json_object_value(const json_doc *d, json_node obj, size_t i)
{
        if (i >= json_object_length(d, obj))
                return 0;
        return node(d, obj)->data.mapping.pairs.start[i].value;
}
