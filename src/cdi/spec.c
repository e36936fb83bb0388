/* SPDX-License-Identifier: Apache-2.0 */
#include "spec.h"

#include "base/json.h"
#include "base/strv.h"

static void node_done(struct cdi_device_node *n)
{
        free(n->path);
        free(n->host_path);
}

static void mount_done(struct cdi_mount *m)
{
        free(m->host_path);
        free(m->container_path);
        strv_free(m->options);
}

static void hook_done(struct cdi_hook *h)
{
        free(h->hook_name);
        free(h->path);
        strv_free(h->args);
}

void cdi_edits_done(struct cdi_edits *e)
{
        strv_free(e->env);
        for (size_t i = 0; i < e->n_nodes; i++)
                node_done(&e->nodes[i]);
        free(e->nodes);
        for (size_t i = 0; i < e->n_mounts; i++)
                mount_done(&e->mounts[i]);
        free(e->mounts);
        for (size_t i = 0; i < e->n_hooks; i++)
                hook_done(&e->hooks[i]);
        free(e->hooks);
        *e = (struct cdi_edits){};
}

cdi_spec *cdi_spec_free(cdi_spec *s)
{
        if (!s)
                return NULL;
        free(s->kind);
        strv_free(s->annotations);
        for (size_t i = 0; i < s->n_devices; i++) {
                free(s->devices[i].name);
                cdi_edits_done(&s->devices[i].edits);
        }
        free(s->devices);
        cdi_edits_done(&s->edits);
        return mfree(s);
}

int cdi_spec_new(const char *kind, cdi_spec **ret)
{
        _cleanup_(cdi_spec_freep) cdi_spec *s = new0(cdi_spec, 1);
        if (!s || !(s->kind = strdup(kind)))
                return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}

int cdi_spec_add_annotation(cdi_spec *s, const char *key, const char *value)
{
        int r = strv_extend(&s->annotations, key);
        if (r < 0)
                return r;
        return strv_extend(&s->annotations, value);
}

const char *cdi_spec_annotation(const cdi_spec *s, const char *key)
{
        for (char **p = s->annotations; p && p[0] && p[1]; p += 2)
                if (streq(p[0], key))
                        return p[1];
        return NULL;
}

int cdi_spec_add_device(cdi_spec *s, const char *name, struct cdi_device **ret)
{
        struct cdi_device *d = realloc(s->devices, sizeof(*d) * (s->n_devices + 1));
        if (!d)
                return -ENOMEM;
        s->devices = d;
        d = &s->devices[s->n_devices];
        *d = (struct cdi_device){ .name = strdup(name) };
        if (!d->name)
                return -ENOMEM;
        s->n_devices++;
        if (ret)
                *ret = d;
        return 0;
}

const struct cdi_device *cdi_spec_find_device(const cdi_spec *s, const char *name)
{
        for (size_t i = 0; i < s->n_devices; i++)
                if (streq(s->devices[i].name, name))
                        return &s->devices[i];
        return NULL;
}

int cdi_edits_add_env(struct cdi_edits *e, const char *assignment)
{
        if (strv_contains(e->env, assignment))
                return 0;
        return strv_extend(&e->env, assignment);
}

int cdi_edits_add_node(struct cdi_edits *e, const char *path, const char *host_path)
{
        for (size_t i = 0; i < e->n_nodes; i++)
                if (streq(e->nodes[i].path, path))
                        return 0;
        struct cdi_device_node *n = realloc(e->nodes, sizeof(*n) * (e->n_nodes + 1));
        if (!n)
                return -ENOMEM;
        e->nodes = n;
        n = &e->nodes[e->n_nodes];
        *n = (struct cdi_device_node){ .path = strdup(path) };
        if (host_path && !streq(host_path, path))
                n->host_path = strdup(host_path);
        e->n_nodes++;
        if (!n->path || (host_path && !streq(host_path, path) && !n->host_path))
                return -ENOMEM;
        return 0;
}

int cdi_edits_add_mount(struct cdi_edits *e, const char *host_path, const char *container_path,
                        char *const *options)
{
        for (size_t i = 0; i < e->n_mounts; i++)
                if (streq(e->mounts[i].container_path, container_path))
                        return 0;
        struct cdi_mount *m = realloc(e->mounts, sizeof(*m) * (e->n_mounts + 1));
        if (!m)
                return -ENOMEM;
        e->mounts = m;
        m = &e->mounts[e->n_mounts];
        *m = (struct cdi_mount){ strdup(host_path), strdup(container_path), strv_copy(options) };
        e->n_mounts++;
        if (!m->host_path || !m->container_path || (options && !m->options))
                return -ENOMEM;
        return 0;
}

int cdi_edits_add_hook(struct cdi_edits *e, const char *hook_name, const char *path, char **args)
{
        _cleanup_strv_free_ char **owned = args;
        for (size_t i = 0; i < e->n_hooks; i++)
                if (streq(e->hooks[i].hook_name, hook_name) && streq(e->hooks[i].path, path) &&
                    strv_equal(e->hooks[i].args, args))
                        return 0;
        struct cdi_hook *h = realloc(e->hooks, sizeof(*h) * (e->n_hooks + 1));
        if (!h)
                return -ENOMEM;
        e->hooks = h;
        h = &e->hooks[e->n_hooks];
        *h = (struct cdi_hook){ strdup(hook_name), strdup(path), TAKE_PTR(owned) };
        e->n_hooks++;
        if (!h->hook_name || !h->path)
                return -ENOMEM;
        return 0;
}

int cdi_edits_merge(struct cdi_edits *e, const struct cdi_edits *from)
{
        int r;
        STRV_FOREACH (v, from->env)
                if ((r = cdi_edits_add_env(e, *v)) < 0)
                        return r;
        for (size_t i = 0; i < from->n_nodes; i++)
                if ((r = cdi_edits_add_node(e, from->nodes[i].path, from->nodes[i].host_path)) < 0)
                        return r;
        for (size_t i = 0; i < from->n_mounts; i++)
                if ((r = cdi_edits_add_mount(e, from->mounts[i].host_path, from->mounts[i].container_path,
                                             from->mounts[i].options)) < 0)
                        return r;
        for (size_t i = 0; i < from->n_hooks; i++) {
                char **args = strv_copy(from->hooks[i].args);
                if (from->hooks[i].args && !args)
                        return -ENOMEM;
                if ((r = cdi_edits_add_hook(e, from->hooks[i].hook_name, from->hooks[i].path, args)) < 0)
                        return r;
        }
        return 0;
}

static bool edits_have_host_path(const struct cdi_edits *e)
{
        for (size_t i = 0; i < e->n_nodes; i++)
                if (e->nodes[i].host_path)
                        return true;
        return false;
}

const char *cdi_spec_version(const cdi_spec *s)
{
        const char *class = strchr(s->kind, '/');
        if (strv_length(s->annotations) > 0 || (class && strchr(class + 1, '.')))
                return "0.6.0";
        bool v05 = edits_have_host_path(&s->edits);
        for (size_t i = 0; i < s->n_devices && !v05; i++)
                v05 = (s->devices[i].name[0] >= '0' && s->devices[i].name[0] <= '9') ||
                      edits_have_host_path(&s->devices[i].edits);
        return v05 ? "0.5.0" : "0.3.0";
}

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
        return is_alpha(c) || (c >= '0' && c <= '9');
}

static bool name_valid(const char *s, size_t n, bool first_letter, const char *extra)
{
        if (n == 0 || (first_letter ? !is_alpha(s[0]) : !is_alnum(s[0])) || !is_alnum(s[n - 1]))
                return false;
        for (size_t i = 1; i + 1 < n; i++)
                if (!is_alnum(s[i]) && !strchr(extra, s[i]))
                        return false;
        return true;
}

bool cdi_device_name_valid(const char *name)
{
        return name_valid(name, strlen(name), false, "_-.:");
}

int cdi_kind_split(const char *kind, char **ret_vendor, char **ret_class)
{
        const char *slash = strchr(kind, '/');
        if (!slash || !name_valid(kind, (size_t)(slash - kind), true, "_-.") ||
            !name_valid(slash + 1, strlen(slash + 1), true, "_-."))
                return -EINVAL;
        _cleanup_free_ char *vendor = strndup(kind, (size_t)(slash - kind));
        char *class = strdup(slash + 1);
        if (!vendor || !class) {
                free(class);
                return -ENOMEM;
        }
        *ret_vendor = TAKE_PTR(vendor);
        *ret_class = class;
        return 0;
}

/* ---- writers ------------------------------------------------------------------------------------ */

/* A plain YAML scalar that every YAML 1.1 and 1.2 reader takes as this exact string; anything else
 * is double-quoted. */
static bool yaml_plain_ok(const char *s)
{
        static const char *const words[] = {
                "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"
        };
        if (!is_alpha(s[0]) && s[0] != '/' && s[0] != '_')
                return false;
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcasecmp(s, words[i]) == 0)
                        return false;
        for (const char *p = s; *p; p++) {
                if (is_alnum(*p) || strchr("/_.-+=@,", *p))
                        continue;
                if (*p == ':' && p[1] != ' ' && p[1] != '\0')
                        continue;
                return false;
        }
        return true;
}

/* Quoted, a YAML double-quoted scalar takes JSON's escapes. */
static void yaml_str(FILE *f, const char *s)
{
        if (yaml_plain_ok(s))
                fputs(s, f);
        else
                json_write_string(f, s);
}

/* ---- JSON: two-space indent, one array item per line ---- */

static void json_strv(FILE *f, const char *key, char *const *l, const char *ind)
{
        fprintf(f, ",\n%s\"%s\": [", ind, key);
        STRV_FOREACH (s, l) {
                fputs(s == l ? "" : ", ", f);
                json_write_string(f, *s);
        }
        fputc(']', f);
}

static void json_edits(FILE *f, const struct cdi_edits *e, const char *ind)
{
        /* ind is the indent of the edits' own keys; items go one level deeper. */
        bool first = true;
#define KEY(k)                                                                                              \
        do {                                                                                                \
                fprintf(f, "%s\n%s\"%s\": [", first ? "" : ",", ind, k);                                    \
                first = false;                                                                              \
        } while (0)
        if (e->env) {
                KEY("env");
                STRV_FOREACH (v, e->env) {
                        fprintf(f, "%s\n%s  ", v == e->env ? "" : ",", ind);
                        json_write_string(f, *v);
                }
                fprintf(f, "\n%s]", ind);
        }
        if (e->n_nodes) {
                KEY("deviceNodes");
                for (size_t i = 0; i < e->n_nodes; i++) {
                        fprintf(f, "%s\n%s  {\"path\": ", i ? "," : "", ind);
                        json_write_string(f, e->nodes[i].path);
                        if (e->nodes[i].host_path) {
                                fprintf(f, ", \"hostPath\": ");
                                json_write_string(f, e->nodes[i].host_path);
                        }
                        fputc('}', f);
                }
                fprintf(f, "\n%s]", ind);
        }
        if (e->n_hooks) {
                KEY("hooks");
                for (size_t i = 0; i < e->n_hooks; i++) {
                        fprintf(f, "%s\n%s  {\n%s    \"hookName\": ", i ? "," : "", ind, ind);
                        json_write_string(f, e->hooks[i].hook_name);
                        fprintf(f, ",\n%s    \"path\": ", ind);
                        json_write_string(f, e->hooks[i].path);
                        char sub[64];
                        snprintf(sub, sizeof sub, "%s    ", ind);
                        if (e->hooks[i].args)
                                json_strv(f, "args", e->hooks[i].args, sub);
                        fprintf(f, "\n%s  }", ind);
                }
                fprintf(f, "\n%s]", ind);
        }
        if (e->n_mounts) {
                KEY("mounts");
                for (size_t i = 0; i < e->n_mounts; i++) {
                        fprintf(f, "%s\n%s  {\"hostPath\": ", i ? "," : "", ind);
                        json_write_string(f, e->mounts[i].host_path);
                        fprintf(f, ", \"containerPath\": ");
                        json_write_string(f, e->mounts[i].container_path);
                        if (e->mounts[i].options) {
                                fprintf(f, ", \"options\": [");
                                STRV_FOREACH (o, e->mounts[i].options) {
                                        fputs(o == e->mounts[i].options ? "" : ", ", f);
                                        json_write_string(f, *o);
                                }
                                fputc(']', f);
                        }
                        fputc('}', f);
                }
                fprintf(f, "\n%s]", ind);
        }
#undef KEY
}

static void write_json(FILE *f, const cdi_spec *s)
{
        fprintf(f, "{\n  \"cdiVersion\": ");
        json_write_string(f, cdi_spec_version(s));
        fprintf(f, ",\n  \"kind\": ");
        json_write_string(f, s->kind);
        if (s->annotations) {
                fprintf(f, ",\n  \"annotations\": {");
                for (char **p = s->annotations; p[0] && p[1]; p += 2) {
                        fprintf(f, "%s\n    ", p == s->annotations ? "" : ",");
                        json_write_string(f, p[0]);
                        fprintf(f, ": ");
                        json_write_string(f, p[1]);
                }
                fprintf(f, "\n  }");
        }
        fprintf(f, ",\n  \"devices\": [");
        for (size_t i = 0; i < s->n_devices; i++) {
                fprintf(f, "%s\n    {\n      \"name\": ", i ? "," : "");
                json_write_string(f, s->devices[i].name);
                fprintf(f, ",\n      \"containerEdits\": {");
                json_edits(f, &s->devices[i].edits, "        ");
                fprintf(f, "\n      }\n    }");
        }
        fprintf(f, "\n  ],\n  \"containerEdits\": {");
        json_edits(f, &s->edits, "    ");
        fprintf(f, "\n  }\n}\n");
}

/* ---- YAML: block style, the layout nvidia-ctk writes ---- */

static void yaml_edits(FILE *f, const struct cdi_edits *e, const char *ind)
{
        if (e->env) {
                fprintf(f, "%senv:\n", ind);
                STRV_FOREACH (v, e->env) {
                        fprintf(f, "%s  - ", ind);
                        yaml_str(f, *v);
                        fputc('\n', f);
                }
        }
        if (e->n_nodes) {
                fprintf(f, "%sdeviceNodes:\n", ind);
                for (size_t i = 0; i < e->n_nodes; i++) {
                        fprintf(f, "%s  - path: ", ind);
                        yaml_str(f, e->nodes[i].path);
                        if (e->nodes[i].host_path) {
                                fprintf(f, "\n%s    hostPath: ", ind);
                                yaml_str(f, e->nodes[i].host_path);
                        }
                        fputc('\n', f);
                }
        }
        if (e->n_hooks) {
                fprintf(f, "%shooks:\n", ind);
                for (size_t i = 0; i < e->n_hooks; i++) {
                        fprintf(f, "%s  - hookName: ", ind);
                        yaml_str(f, e->hooks[i].hook_name);
                        fprintf(f, "\n%s    path: ", ind);
                        yaml_str(f, e->hooks[i].path);
                        fputc('\n', f);
                        if (e->hooks[i].args) {
                                fprintf(f, "%s    args:\n", ind);
                                STRV_FOREACH (a, e->hooks[i].args) {
                                        fprintf(f, "%s      - ", ind);
                                        yaml_str(f, *a);
                                        fputc('\n', f);
                                }
                        }
                }
        }
        if (e->n_mounts) {
                fprintf(f, "%smounts:\n", ind);
                for (size_t i = 0; i < e->n_mounts; i++) {
                        fprintf(f, "%s  - hostPath: ", ind);
                        yaml_str(f, e->mounts[i].host_path);
                        fprintf(f, "\n%s    containerPath: ", ind);
                        yaml_str(f, e->mounts[i].container_path);
                        fputc('\n', f);
                        if (e->mounts[i].options) {
                                fprintf(f, "%s    options:\n", ind);
                                STRV_FOREACH (o, e->mounts[i].options) {
                                        fprintf(f, "%s      - ", ind);
                                        yaml_str(f, *o);
                                        fputc('\n', f);
                                }
                        }
                }
        }
}

static bool edits_empty(const struct cdi_edits *e)
{
        return !e->env && e->n_nodes == 0 && e->n_mounts == 0 && e->n_hooks == 0;
}

static void write_yaml(FILE *f, const cdi_spec *s)
{
        fprintf(f, "---\ncdiVersion: ");
        yaml_str(f, cdi_spec_version(s));
        fprintf(f, "\nkind: ");
        yaml_str(f, s->kind);
        fputc('\n', f);
        if (s->annotations) {
                fprintf(f, "annotations:\n");
                for (char **p = s->annotations; p[0] && p[1]; p += 2) {
                        fprintf(f, "  ");
                        yaml_str(f, p[0]);
                        fprintf(f, ": ");
                        yaml_str(f, p[1]);
                        fputc('\n', f);
                }
        }
        fprintf(f, "devices:\n");
        for (size_t i = 0; i < s->n_devices; i++) {
                fprintf(f, "  - name: ");
                yaml_str(f, s->devices[i].name);
                fprintf(f, "\n    containerEdits:%s\n", edits_empty(&s->devices[i].edits) ? " {}" : "");
                yaml_edits(f, &s->devices[i].edits, "      ");
        }
        if (!edits_empty(&s->edits)) {
                fprintf(f, "containerEdits:\n");
                yaml_edits(f, &s->edits, "  ");
        }
}

int cdi_spec_format(const cdi_spec *s, enum cdi_format format, char **ret, size_t *ret_size)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        if (format == CDI_FORMAT_JSON)
                write_json(f, s);
        else
                write_yaml(f, s);
        if (fclose(f) != 0 || !buf) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        if (ret_size)
                *ret_size = size;
        return 0;
}
