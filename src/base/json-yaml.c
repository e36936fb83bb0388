/* SPDX-License-Identifier: Apache-2.0 */
/* YAML into json-c objects, event by event: the depth is bounded as the document is read (libyaml's own
 * loader takes quadratic time on deep nesting), and no alias is expanded (no billion laughs). */
#include <json-c/json.h>
#include <yaml.h>

#include "base/json.h"

struct frame {
        json_object *o; /* borrowed: the parent (or the result) owns it */
        char *key;      /* a mapping's key waiting for its value */
};

struct builder {
        struct frame *stack;
        int depth, max_depth;
        json_object *root;
};

/* Hands v (owned) to the open container, or makes it the result. */
static int builder_add(struct builder *b, json_object *v, const char *scalar)
{
        if (!v)
                return -ENOMEM;
        if (b->depth == 0) {
                if (b->root) {
                        json_object_put(v);
                        return -EINVAL;
                }
                b->root = v;
                return 0;
        }
        struct frame *f = &b->stack[b->depth - 1];
        if (json_object_is_type(f->o, json_type_array)) {
                if (json_object_array_add(f->o, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
                return 0;
        }
        if (!f->key) {
                json_object_put(v);
                if (!scalar)
                        return -EINVAL; /* a key that is a mapping or a sequence */
                return (f->key = strdup(scalar)) ? 0 : -ENOMEM;
        }
        int r = json_object_object_add(f->o, f->key, v);
        f->key = mfree(f->key);
        if (r < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int builder_open(struct builder *b, json_object *o)
{
        if (!o)
                return -ENOMEM;
        if (b->depth >= b->max_depth) {
                json_object_put(o);
                return -EINVAL;
        }
        json_object *borrowed = o;
        int r = builder_add(b, o, NULL);
        if (r < 0)
                return r;
        b->stack[b->depth++] = (struct frame){ .o = borrowed };
        return 0;
}

static int builder_event(struct builder *b, const yaml_event_t *e, bool *ret_done)
{
        switch (e->type) {
        case YAML_SCALAR_EVENT: {
                const char *text = (const char *)e->data.scalar.value;
                size_t n = e->data.scalar.length;
                if (n > INT32_MAX)
                        return -EMSGSIZE;
                return builder_add(b, json_object_new_string_len(text, (int)n), text);
        }
        case YAML_SEQUENCE_START_EVENT: return builder_open(b, json_object_new_array());
        case YAML_MAPPING_START_EVENT: return builder_open(b, json_object_new_object());
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
                if (b->depth == 0)
                        return -EINVAL;
                b->depth--;
                b->stack[b->depth].key = mfree(b->stack[b->depth].key);
                return 0;
        case YAML_ALIAS_EVENT: return -EINVAL;
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT: *ret_done = true; return 0;
        default: return 0; /* stream and document start */
        }
}

int json_parse_yaml(const char *text, size_t size, size_t max_size, int max_depth, json_object **ret)
{
        if (size > max_size)
                return -EMSGSIZE;
        if (max_depth < 1)
                return -EINVAL;
        struct builder b = { .max_depth = max_depth };
        yaml_parser_t parser;
        int r = 0;
        if (!(b.stack = new0(struct frame, (size_t)max_depth)))
                return -ENOMEM;
        if (!yaml_parser_initialize(&parser)) {
                free(b.stack);
                return -ENOMEM;
        }
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, size);
        for (bool done = false; !done && r >= 0;) {
                yaml_event_t e;
                if (!yaml_parser_parse(&parser, &e)) {
                        r = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
                        break;
                }
                r = builder_event(&b, &e, &done);
                yaml_event_delete(&e);
        }
        yaml_parser_delete(&parser);
        for (int i = 0; i < max_depth; i++)
                free(b.stack[i].key);
        free(b.stack);
        if (r >= 0 && (!b.root || b.depth != 0))
                r = -EINVAL; /* empty, or cut short */
        if (r < 0) {
                json_object_put(b.root);
                return r;
        }
        *ret = b.root;
        return 0;
}
