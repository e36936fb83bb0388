/* SPDX-License-Identifier: Apache-2.0 */
#include "base/json.h"

#include <json-c/json.h>

void json_putp(struct json_object **o)
{
        if (*o)
                json_object_put(*o);
}

int json_parse(const char *text, size_t size, size_t max_size, int max_depth, struct json_object **ret)
{
        if (size > max_size || size > INT32_MAX)
                return -EMSGSIZE;
        json_tokener *tok = json_tokener_new_ex(max_depth);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        json_object *o = json_tokener_parse_ex(tok, text, (int)size);
        enum json_tokener_error err = json_tokener_get_error(tok);
        /* Nothing but blanks may follow the value. */
        size_t off = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!o || err != json_tokener_success) {
                json_object_put(o);
                return -EINVAL;
        }
        for (; off < size; off++)
                if (!strchr(" \t\r\n", text[off])) {
                        json_object_put(o);
                        return -EINVAL;
                }
        *ret = o;
        return 0;
}

json_object *json_get(json_object *o, const char *key)
{
        json_object *v = NULL;
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

size_t json_array_size(json_object *o)
{
        return json_object_is_type(o, json_type_array) ? json_object_array_length(o) : 0;
}

json_object *json_array_at(json_object *o, size_t i)
{
        return i < json_array_size(o) ? json_object_array_get_idx(o, i) : NULL;
}

json_object *json_get_path(json_object *o, const char *const *keys)
{
        for (; o && keys && *keys; keys++)
                if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, *keys, &o))
                        return NULL;
        return o;
}

const char *json_text(json_object *o)
{
        switch (json_object_get_type(o)) {
        case json_type_string:
        case json_type_int:
        case json_type_double:
        case json_type_boolean: return json_object_get_string(o);
        default: return NULL;
        }
}

int json_add(json_object *o, const char *key, json_object *v)
{
        if (json_object_object_add(o, key, v) == 0)
                return 0;
        json_object_put(v);
        return -ENOMEM;
}

int json_add_string(json_object *o, const char *key, const char *value)
{
        json_object *v = json_object_new_string(value);
        return v ? json_add(o, key, v) : -ENOMEM;
}

int json_add_int(json_object *o, const char *key, int64_t value)
{
        json_object *v = json_object_new_int64(value);
        return v ? json_add(o, key, v) : -ENOMEM;
}

int json_add_bool(json_object *o, const char *key, bool value)
{
        json_object *v = json_object_new_boolean(value);
        return v ? json_add(o, key, v) : -ENOMEM;
}

json_object *json_add_object(json_object *o, const char *key)
{
        json_object *v = json_object_new_object();
        return v && json_add(o, key, v) == 0 ? v : NULL;
}

json_object *json_add_array(json_object *o, const char *key)
{
        json_object *v = json_object_new_array();
        return v && json_add(o, key, v) == 0 ? v : NULL;
}

int json_append(json_object *array, json_object *v)
{
        if (!v)
                return -ENOMEM;
        if (json_object_array_add(array, v) == 0)
                return 0;
        json_object_put(v);
        return -ENOMEM;
}

int json_format(json_object *o, bool pretty, char **ret)
{
        const char *s = json_object_to_json_string_ext(
                o, (pretty ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN) |
                           JSON_C_TO_STRING_NOSLASHESCAPE);
        char *d = s ? strdup(s) : NULL;
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

size_t json_escape_char(unsigned char c, char out[static 7])
{
        switch (c) {
        case '"': return (size_t)snprintf(out, 7, "\\\"");
        case '\\': return (size_t)snprintf(out, 7, "\\\\");
        case '\n': return (size_t)snprintf(out, 7, "\\n");
        case '\t': return (size_t)snprintf(out, 7, "\\t");
        case '\r': return (size_t)snprintf(out, 7, "\\r");
        default:
                if (c < 0x20 || c == 0x7f) /* DEL too: YAML, which reads JSON, refuses it raw */
                        return (size_t)snprintf(out, 7, "\\u%04x", c);
                out[0] = (char)c;
                out[1] = '\0';
                return 1;
        }
}

size_t json_escape(char *out, size_t size, const char *s)
{
        size_t n = 0;
        char e[7];
        if (size == 0)
                return 0;
        for (; *s; s++) {
                size_t k = json_escape_char((unsigned char)*s, e);
                if (n + k >= size)
                        break;
                memcpy(out + n, e, k);
                n += k;
        }
        out[n] = '\0';
        return n;
}

void json_write_string(FILE *f, const char *s)
{
        if (!s) {
                fputs("null", f);
                return;
        }
        char e[7];
        fputc('"', f);
        for (; *s; s++) {
                size_t k = json_escape_char((unsigned char)*s, e);
                fwrite(e, 1, k, f);
        }
        fputc('"', f);
}
