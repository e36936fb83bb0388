/* SPDX-License-Identifier: Apache-2.0 */
#include "toml.h"
#include "base/parse.h"

#include "base/strv.h"

struct toml_entry {
        char **path;
        enum toml_kind kind;
        char *text;     /* strings and scalars */
        char **strings; /* string arrays */
        bool array_table;
};

struct toml {
        struct toml_entry *entries;
        size_t n_entries;
};

struct parser {
        const char *p, *end;
        unsigned line;
        unsigned depth;
        const char *error;
        toml *t;
};

static void entry_done(struct toml_entry *e)
{
        strv_free(e->path);
        free(e->text);
        strv_free(e->strings);
}

toml *toml_free(toml *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_entries; i++)
                entry_done(&t->entries[i]);
        free(t->entries);
        free(t);
        return NULL;
}

static int fail(struct parser *ps, const char *why)
{
        if (!ps->error)
                ps->error = why;
        return -EINVAL;
}

static bool at_end(const struct parser *ps)
{
        return ps->p >= ps->end;
}

static bool lookahead(const struct parser *ps, const char *s)
{
        size_t n = strlen(s);
        return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, s, n) == 0;
}

static void skip_blanks(struct parser *ps)
{
        while (!at_end(ps) && (*ps->p == ' ' || *ps->p == '\t'))
                ps->p++;
}

static void skip_comment(struct parser *ps)
{
        if (!at_end(ps) && *ps->p == '#')
                while (!at_end(ps) && *ps->p != '\n')
                        ps->p++;
}

/* Blanks, comments and newlines (inside arrays, between statements). */
static void skip_space(struct parser *ps)
{
        for (;;) {
                skip_blanks(ps);
                skip_comment(ps);
                if (at_end(ps))
                        return;
                if (*ps->p == '\n') {
                        ps->line++;
                        ps->p++;
                } else if (*ps->p == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n') {
                        ps->p++;
                } else
                        return;
        }
}

/* After a statement: blanks, a comment, then a newline or the end. */
static int expect_eol(struct parser *ps)
{
        skip_blanks(ps);
        skip_comment(ps);
        if (at_end(ps))
                return 0;
        if (*ps->p == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n')
                ps->p++;
        if (*ps->p != '\n')
                return fail(ps, "unexpected text after a value or header");
        return 0;
}

struct buf {
        char *s;
        size_t n, alloc;
};

static int buf_put(struct buf *b, const char *s, size_t n)
{
        if (b->n + n + 1 > b->alloc) {
                size_t a = MAX(b->alloc * 2, b->n + n + 1);
                a = MAX(a, (size_t)32);
                char *x = realloc(b->s, a);
                if (!x)
                        return -ENOMEM;
                b->s = x;
                b->alloc = a;
        }
        memcpy(b->s + b->n, s, n);
        b->n += n;
        b->s[b->n] = '\0';
        return 0;
}

static int buf_put_utf8(struct buf *b, uint32_t c)
{
        char o[4];
        size_t n;
        if (c < 0x80) {
                o[0] = (char)c;
                n = 1;
        } else if (c < 0x800) {
                o[0] = (char)(0xc0 | (c >> 6));
                o[1] = (char)(0x80 | (c & 0x3f));
                n = 2;
        } else if (c < 0x10000) {
                o[0] = (char)(0xe0 | (c >> 12));
                o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
                o[2] = (char)(0x80 | (c & 0x3f));
                n = 3;
        } else {
                o[0] = (char)(0xf0 | (c >> 18));
                o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
                o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
                o[3] = (char)(0x80 | (c & 0x3f));
                n = 4;
        }
        return buf_put(b, o, n);
}

static int parse_escape(struct parser *ps, struct buf *b)
{
        /* ps->p is just after the backslash */
        if (at_end(ps))
                return fail(ps, "unterminated string");
        char c = *ps->p++;
        switch (c) {
        case 'b': return buf_put(b, "\b", 1);
        case 't': return buf_put(b, "\t", 1);
        case 'n': return buf_put(b, "\n", 1);
        case 'f': return buf_put(b, "\f", 1);
        case 'r': return buf_put(b, "\r", 1);
        case 'e': return buf_put(b, "\033", 1);
        case '"': return buf_put(b, "\"", 1);
        case '\\': return buf_put(b, "\\", 1);
        case 'u':
        case 'U': {
                int digits = c == 'u' ? 4 : 8;
                if (ps->end - ps->p < digits)
                        return fail(ps, "short unicode escape");
                uint32_t v = 0;
                for (int i = 0; i < digits; i++) {
                        int h = unhexchar(ps->p[i]);
                        if (h < 0)
                                return fail(ps, "bad unicode escape");
                        v = v << 4 | (uint32_t)h;
                }
                ps->p += digits;
                /* NUL would cut our C strings short; surrogates are not characters. */
                if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
                        return fail(ps, "unicode escape out of range");
                return buf_put_utf8(b, v);
        }
        default: return fail(ps, "unknown escape in string");
        }
}

/* ps->p at the opening quote(s). */
static int parse_string(struct parser *ps, char **ret)
{
        struct buf b = {};
        int r;
        bool literal = *ps->p == '\'';
        const char *q3 = literal ? "'''" : "\"\"\"";
        bool multi = lookahead(ps, q3);
        char quote = literal ? '\'' : '"';

        ps->p += multi ? 3 : 1;
        if (multi) {
                /* A newline right after the opening quotes is not part of the string. */
                if (lookahead(ps, "\r\n"))
                        ps->p += 2, ps->line++;
                else if (lookahead(ps, "\n"))
                        ps->p++, ps->line++;
        }
        r = buf_put(&b, "", 0);
        if (r < 0)
                goto out;
        for (;;) {
                if (at_end(ps)) {
                        r = fail(ps, "unterminated string");
                        goto out;
                }
                char c = *ps->p;
                if (multi && lookahead(ps, q3)) {
                        ps->p += 3;
                        /* Up to two more quotes right before the closing ones belong to the string. */
                        for (int i = 0; i < 2 && !at_end(ps) && *ps->p == quote; i++, ps->p++) {
                                r = buf_put(&b, &quote, 1);
                                if (r < 0)
                                        goto out;
                        }
                        break;
                }
                if (!multi && c == quote) {
                        ps->p++;
                        break;
                }
                if (c == '\0') {
                        r = fail(ps, "NUL byte in string");
                        goto out;
                }
                if (c == '\n') {
                        if (!multi) {
                                r = fail(ps, "newline in a single-line string");
                                goto out;
                        }
                        ps->line++;
                }
                if (!literal && c == '\\') {
                        ps->p++;
                        if (multi && !at_end(ps) &&
                            (*ps->p == '\n' || *ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r')) {
                                /* Line-ending backslash: drop the newline and leading blanks after it. */
                                while (!at_end(ps) && (*ps->p == '\n' || *ps->p == ' ' || *ps->p == '\t' ||
                                                       *ps->p == '\r')) {
                                        if (*ps->p == '\n')
                                                ps->line++;
                                        ps->p++;
                                }
                                continue;
                        }
                        r = parse_escape(ps, &b);
                        if (r < 0)
                                goto out;
                        continue;
                }
                r = buf_put(&b, &c, 1);
                if (r < 0)
                        goto out;
                ps->p++;
        }
        *ret = TAKE_PTR(b.s);
        r = 0;
out:
        free(b.s);
        return r;
}

static bool is_bare_key_char(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-';
}

/* A dotted key: bare or quoted components separated by dots. Appends to *path. */
static int parse_key(struct parser *ps, char ***path)
{
        for (;;) {
                skip_blanks(ps);
                if (at_end(ps))
                        return fail(ps, "missing key");
                _cleanup_free_ char *comp = NULL;
                if (*ps->p == '"' || *ps->p == '\'') {
                        /* Multi-line strings are not keys. */
                        if (lookahead(ps, "\"\"\"") || lookahead(ps, "'''"))
                                return fail(ps, "multi-line string used as a key");
                        int r = parse_string(ps, &comp);
                        if (r < 0)
                                return r;
                } else {
                        const char *s = ps->p;
                        while (!at_end(ps) && is_bare_key_char(*ps->p))
                                ps->p++;
                        if (ps->p == s)
                                return fail(ps, "missing key");
                        comp = strndup(s, (size_t)(ps->p - s));
                        if (!comp)
                                return -ENOMEM;
                }
                if (strv_length(*path) >= TOML_MAX_PATH) {
                        ps->error = "key path too long";
                        return -E2BIG;
                }
                int r = strv_push(path, comp);
                if (r < 0)
                        return r;
                comp = NULL;
                skip_blanks(ps);
                if (at_end(ps) || *ps->p != '.')
                        return 0;
                ps->p++;
        }
}

static bool path_equal(char *const *a, char *const *b)
{
        return strv_equal(a, b);
}

static bool path_is_prefix(char *const *prefix, char *const *path)
{
        size_t i = 0;
        for (; prefix[i]; i++)
                if (!path[i] || !streq(prefix[i], path[i]))
                        return false;
        return path[i] != NULL;
}

static int add_entry(struct parser *ps, char **path, enum toml_kind kind, char *text, char **strings,
                     bool array_table)
{
        toml *t = ps->t;
        /* TOML forbids defining a key twice, or a table twice (array tables repeat on purpose). */
        for (size_t i = 0; i < t->n_entries; i++) {
                struct toml_entry *e = &t->entries[i];
                if (!path_equal(e->path, path))
                        continue;
                if (kind == TOML_TABLE && e->kind == TOML_TABLE && array_table && e->array_table)
                        continue;
                strv_free(path);
                free(text);
                strv_free(strings);
                return fail(ps, kind == TOML_TABLE ? "table defined twice" : "key defined twice");
        }
        if (t->n_entries >= TOML_MAX_ENTRIES) {
                strv_free(path);
                free(text);
                strv_free(strings);
                ps->error = "too many keys";
                return -E2BIG;
        }
        struct toml_entry *n = realloc(t->entries, (t->n_entries + 1) * sizeof(*n));
        if (!n) {
                strv_free(path);
                free(text);
                strv_free(strings);
                return -ENOMEM;
        }
        t->entries = n;
        t->entries[t->n_entries++] = (struct toml_entry){
                .path = path, .kind = kind, .text = text, .strings = strings, .array_table = array_table
        };
        return 0;
}

/* A decimal integer with optional sign and '_' between digits. */
static int integer_from_text(const char *text, int64_t *ret)
{
        char digits[32];
        size_t k = 0;
        for (const char *s = text; *s; s++) {
                if (*s == '_')
                        continue;
                if (k + 1 >= sizeof(digits))
                        return -ERANGE;
                digits[k++] = *s;
        }
        digits[k] = '\0';
        const char *d = digits + (digits[0] == '+' || digits[0] == '-');
        if (!*d || strspn(d, "0123456789") != strlen(d))
                return -EINVAL;
        char *end;
        errno = 0;
        long long v = strtoll(digits, &end, 10);
        if (errno != 0 || *end != '\0')
                return -ERANGE;
        *ret = v;
        return 0;
}

static int parse_value(struct parser *ps, char **path);

/* Arrays: keeps the strings when every element is a string. ps->p at '['. */
static int parse_array(struct parser *ps, char **path)
{
        _cleanup_strv_free_ char **owned = path;
        _cleanup_strv_free_ char **strings = NULL;
        bool all_strings = true;
        size_t n = 0;

        ps->p++;
        for (;;) {
                skip_space(ps);
                if (at_end(ps))
                        return fail(ps, "unterminated array");
                if (*ps->p == ']') {
                        ps->p++;
                        break;
                }
                if (*ps->p == '"' || *ps->p == '\'') {
                        _cleanup_free_ char *s = NULL;
                        int r = parse_string(ps, &s);
                        if (r < 0)
                                return r;
                        if (all_strings) {
                                r = strv_push(&strings, s);
                                if (r < 0)
                                        return r;
                                s = NULL;
                        }
                } else {
                        all_strings = false;
                        /* Elements that are tables or arrays are parsed only to be skipped: their
                         * entries would need indexes in the path, which nothing here asks for. */
                        _cleanup_strv_free_ char **ignored = strv_copy(owned);
                        if (!ignored)
                                return -ENOMEM;
                        int r = strv_extend(&ignored, "[]");
                        if (r < 0)
                                return r;
                        toml *saved = ps->t;
                        toml scratch = {};
                        ps->t = &scratch;
                        r = parse_value(ps, TAKE_PTR(ignored));
                        for (size_t i = 0; i < scratch.n_entries; i++)
                                entry_done(&scratch.entries[i]);
                        free(scratch.entries);
                        ps->t = saved;
                        if (r < 0)
                                return r;
                }
                if (++n > TOML_MAX_ENTRIES) {
                        ps->error = "array too long";
                        return -E2BIG;
                }
                skip_space(ps);
                if (at_end(ps))
                        return fail(ps, "unterminated array");
                if (*ps->p == ',') {
                        ps->p++;
                        continue;
                }
                if (*ps->p == ']') {
                        ps->p++;
                        break;
                }
                return fail(ps, "expected ',' or ']' in array");
        }
        if (!all_strings)
                strings = strv_free(strings);
        else if (!strings) {
                strings = new0(char *, 1);
                if (!strings)
                        return -ENOMEM;
        }
        return add_entry(ps, TAKE_PTR(owned), TOML_ARRAY, NULL, TAKE_PTR(strings), false);
}

/* Inline tables: their keys become entries below path. ps->p at '{'. */
static int parse_inline_table(struct parser *ps, char **path)
{
        _cleanup_strv_free_ char **owned = path;
        ps->p++;
        skip_blanks(ps);
        if (!at_end(ps) && *ps->p == '}') {
                ps->p++;
                return add_entry(ps, TAKE_PTR(owned), TOML_TABLE, NULL, NULL, false);
        }
        char **copy = strv_copy(owned);
        if (!copy)
                return -ENOMEM;
        int r = add_entry(ps, copy, TOML_TABLE, NULL, NULL, false);
        if (r < 0)
                return r;
        for (;;) {
                _cleanup_strv_free_ char **key = strv_copy(owned);
                if (!key)
                        return -ENOMEM;
                r = parse_key(ps, &key);
                if (r < 0)
                        return r;
                skip_blanks(ps);
                if (at_end(ps) || *ps->p != '=')
                        return fail(ps, "expected '=' after a key");
                ps->p++;
                skip_blanks(ps);
                r = parse_value(ps, TAKE_PTR(key));
                if (r < 0)
                        return r;
                skip_blanks(ps);
                if (at_end(ps))
                        return fail(ps, "unterminated inline table");
                if (*ps->p == ',') {
                        ps->p++;
                        continue;
                }
                if (*ps->p == '}') {
                        ps->p++;
                        return 0;
                }
                return fail(ps, "expected ',' or '}' in inline table");
        }
}

/* Takes ownership of path. */
static int parse_value(struct parser *ps, char **path)
{
        _cleanup_strv_free_ char **owned = path;
        int r;

        if (at_end(ps))
                return fail(ps, "missing value");
        if (++ps->depth > TOML_MAX_DEPTH) {
                ps->error = "values nested too deeply";
                return -E2BIG;
        }
        char c = *ps->p;
        if (c == '"' || c == '\'') {
                char *s = NULL;
                r = parse_string(ps, &s);
                if (r >= 0)
                        r = add_entry(ps, TAKE_PTR(owned), TOML_STRING, s, NULL, false);
        } else if (c == '[')
                r = parse_array(ps, TAKE_PTR(owned));
        else if (c == '{')
                r = parse_inline_table(ps, TAKE_PTR(owned));
        else {
                const char *s = ps->p;
                while (!at_end(ps) && !strchr(" \t\r\n,]}#", *ps->p) && *ps->p != '\0')
                        ps->p++;
                if (ps->p == s)
                        r = fail(ps, "missing value");
                else {
                        char *text = strndup(s, (size_t)(ps->p - s));
                        if (!text)
                                r = -ENOMEM;
                        else {
                                enum toml_kind kind = TOML_OTHER;
                                int64_t ignored;
                                if (streq(text, "true") || streq(text, "false"))
                                        kind = TOML_BOOL;
                                else if (integer_from_text(text, &ignored) >= 0)
                                        kind = TOML_INTEGER;
                                r = add_entry(ps, TAKE_PTR(owned), kind, text, NULL, false);
                        }
                }
        }
        ps->depth--;
        return r;
}

int toml_parse(const char *text, size_t size, toml **ret, unsigned *ret_error_line, const char **ret_error)
{
        _cleanup_(toml_freep) toml *t = new0(toml, 1);
        if (!t)
                return -ENOMEM;
        struct parser ps = { .p = text, .end = text + size, .line = 1, .t = t };
        _cleanup_strv_free_ char **table = new0(char *, 1);
        if (!table)
                return -ENOMEM;
        int r = 0;

        if (size > TOML_MAX_INPUT) {
                ps.error = "file too large";
                r = -E2BIG;
                goto error;
        }
        /* A UTF-8 byte order mark is allowed at the start. */
        if (lookahead(&ps, "\xef\xbb\xbf"))
                ps.p += 3;

        for (;;) {
                skip_space(&ps);
                if (at_end(&ps))
                        break;
                if (*ps.p == '[') {
                        bool array = lookahead(&ps, "[[");
                        ps.p += array ? 2 : 1;
                        _cleanup_strv_free_ char **path = NULL;
                        r = parse_key(&ps, &path);
                        if (r < 0)
                                goto error;
                        skip_blanks(&ps);
                        if (!lookahead(&ps, array ? "]]" : "]")) {
                                r = fail(&ps, "unterminated table header");
                                goto error;
                        }
                        ps.p += array ? 2 : 1;
                        strv_free(table);
                        table = strv_copy(path);
                        if (!table) {
                                r = -ENOMEM;
                                goto error;
                        }
                        r = add_entry(&ps, TAKE_PTR(path), TOML_TABLE, NULL, NULL, array);
                        if (r < 0)
                                goto error;
                } else {
                        _cleanup_strv_free_ char **key = strv_copy(table);
                        if (!key) {
                                r = -ENOMEM;
                                goto error;
                        }
                        r = parse_key(&ps, &key);
                        if (r < 0)
                                goto error;
                        skip_blanks(&ps);
                        if (at_end(&ps) || *ps.p != '=') {
                                r = fail(&ps, "expected '=' after a key");
                                goto error;
                        }
                        ps.p++;
                        skip_blanks(&ps);
                        r = parse_value(&ps, TAKE_PTR(key));
                        if (r < 0)
                                goto error;
                }
                r = expect_eol(&ps);
                if (r < 0)
                        goto error;
        }
        *ret = TAKE_PTR(t);
        return 0;

error:
        if (ret_error_line)
                *ret_error_line = ps.line;
        if (ret_error)
                *ret_error = ps.error ? ps.error : (r == -ENOMEM ? "out of memory" : "syntax error");
        return r;
}

static const struct toml_entry *find(const toml *t, const char *const *path)
{
        for (size_t i = 0; t && i < t->n_entries; i++)
                if (path_equal(t->entries[i].path, (char *const *)path))
                        return &t->entries[i];
        return NULL;
}

const char *toml_get_string(const toml *t, const char *const *path)
{
        const struct toml_entry *e = find(t, path);
        return e && e->kind == TOML_STRING ? e->text : NULL;
}

int toml_get_integer(const toml *t, const char *const *path, int64_t *ret)
{
        const struct toml_entry *e = find(t, path);
        if (!e)
                return -ENOENT;
        if (e->kind != TOML_INTEGER)
                return -EINVAL;
        return integer_from_text(e->text, ret);
}

int toml_get_bool(const toml *t, const char *const *path, bool *ret)
{
        const struct toml_entry *e = find(t, path);
        if (!e)
                return -ENOENT;
        if (e->kind != TOML_BOOL)
                return -EINVAL;
        *ret = streq(e->text, "true");
        return 0;
}

char *const *toml_get_string_array(const toml *t, const char *const *path)
{
        const struct toml_entry *e = find(t, path);
        return e && e->kind == TOML_ARRAY ? e->strings : NULL;
}

bool toml_has_table(const toml *t, const char *const *path)
{
        for (size_t i = 0; t && i < t->n_entries; i++) {
                const struct toml_entry *e = &t->entries[i];
                if (e->kind == TOML_TABLE && path_equal(e->path, (char *const *)path))
                        return true;
                if (path_is_prefix((char *const *)path, e->path))
                        return true;
        }
        return false;
}

int toml_list_children(const toml *t, const char *const *path, char ***ret)
{
        _cleanup_strv_free_ char **l = new0(char *, 1);
        if (!l)
                return -ENOMEM;
        size_t depth = strv_length((char *const *)path);
        for (size_t i = 0; t && i < t->n_entries; i++) {
                const struct toml_entry *e = &t->entries[i];
                if (!path_is_prefix((char *const *)path, e->path))
                        continue;
                const char *child = e->path[depth];
                if (strv_contains(l, child))
                        continue;
                int r = strv_extend(&l, child);
                if (r < 0)
                        return r;
        }
        strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}
