/* SPDX-License-Identifier: Apache-2.0 */
/* containerd as k3s renders it (or plain containerd): the nvidia runtimes and their binaries, and
 * the k3s config templates that break nodes. */
#include <ctype.h>
#include <fnmatch.h>

#include "base/strv.h"
#include "doctor/doctor.h"
#include "doctor/node.h"
#include "doctor/rootfs.h"
#include "doctor/toml.h"

#define K3S_DIR            "/var/lib/rancher/k3s"
#define K3S_CONTAINERD     K3S_DIR "/agent/etc/containerd"
#define K3S_CONFIG         K3S_CONTAINERD "/config.toml"
#define K3S_TEMPLATE_V2    K3S_CONTAINERD "/config.toml.tmpl"
#define K3S_TEMPLATE_V3    K3S_CONTAINERD "/config-v3.toml.tmpl"
#define K3S_CONTAINERD_LOG K3S_DIR "/agent/containerd/containerd.log"
#define CONTAINERD_CONFIG  "/etc/containerd/config.toml"
#define MAX_IMPORTS        16

/* Where CRI runtimes live, by config version: 3 (containerd 2.x), 2 (containerd 1.x), 1 (old). */
static const char *const runtimes_v3[] = { "plugins", "io.containerd.cri.v1.runtime", "containerd",
                                           "runtimes", NULL };
static const char *const runtimes_v2[] = { "plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes",
                                           NULL };
static const char *const runtimes_v1[] = { "plugins", "cri", "containerd", "runtimes", NULL };

struct config_set {
        toml *docs[1 + MAX_IMPORTS];
        char *paths[1 + MAX_IMPORTS];
        size_t n;
        int64_t version; /* of the main file; 1 when it has none */
};

static void config_set_done(struct config_set *c)
{
        for (size_t i = 0; i < c->n; i++) {
                toml_free(c->docs[i]);
                free(c->paths[i]);
        }
        c->n = 0;
}

struct ctx {
        const struct doctor_options *o;
        doctor_report *r;
        bool k3s;
        const char *service;  /* "k3s", "k3s-agent" or "containerd" */
        const char *config;   /* the file containerd reads */
        int containerd_major; /* 0 unknown */
        char containerd_version[64];
};

static char *join_path(const char *const *base, const char *a, const char *b)
{
        _cleanup_strv_free_ char **l = strv_copy((char *const *)base);
        if (!l || strv_extend(&l, a) < 0 || (b && strv_extend(&l, b) < 0))
                return NULL;
        /* containerd's own notation: plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia */
        _cleanup_free_ char *s = NULL;
        STRV_FOREACH (c, l) {
                bool quote = strchr(*c, '.') != NULL;
                char *n = NULL;
                if (asprintf(&n, "%s%s%s%s%s", strempty(s), s ? "." : "", quote ? "\"" : "", *c,
                             quote ? "\"" : "") < 0)
                        return NULL;
                free(s);
                s = n;
        }
        return TAKE_PTR(s);
}

static int load_one(struct ctx *x, struct config_set *c, const char *path, bool *ret_parse_error)
{
        _cleanup_free_ char *text = NULL;
        size_t size;
        int k = rootfs_read(x->o->root, path, TOML_MAX_INPUT, &text, &size);
        if (k < 0)
                return k;
        toml *t = NULL;
        unsigned line = 0;
        const char *why = NULL;
        k = toml_parse(text, size, &t, &line, &why);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                *ret_parse_error = true;
                _cleanup_free_ char *fix = NULL;
                /* k3s writes config.toml from a template: the error is the template's. */
                if (x->k3s ? asprintf(&fix,
                                      "fix the template in %s that it was rendered from, then: systemctl "
                                      "restart %s",
                                      K3S_CONTAINERD, x->service) < 0
                           : asprintf(&fix, "vi +%u %s && systemctl restart containerd", line, path) < 0)
                        return -ENOMEM;
                return doctor_report_addf(x->r, "containerd.config", DOCTOR_FAIL, fix,
                                          "%s line %u: %s: containerd will not start with it", path, line,
                                          why);
        }
        c->docs[c->n] = t;
        c->paths[c->n] = strdup(path);
        if (!c->paths[c->n]) {
                toml_free(t);
                return -ENOMEM;
        }
        c->n++;
        return 0;
}

/* containerd `imports`: paths or globs (in the last component), read after the main file. */
static int load_imports(struct ctx *x, struct config_set *c, bool *ret_parse_error)
{
        static const char *const imports_key[] = { "imports", NULL };
        char *const *imports = toml_get_string_array(c->docs[0], imports_key);
        STRV_FOREACH (imp, imports) {
                if ((*imp)[0] != '/')
                        continue;
                const char *slash = strrchr(*imp, '/');
                _cleanup_free_ char *dir = strndup(*imp, (size_t)(slash - *imp));
                if (!dir)
                        return -ENOMEM;
                const char *pattern = slash + 1;
                _cleanup_strv_free_ char **names = NULL;
                if (rootfs_list(x->o->root, dir[0] ? dir : "/", 4096, &names) < 0)
                        continue;
                STRV_FOREACH (n, names) {
                        if (fnmatch(pattern, *n, FNM_PERIOD) != 0)
                                continue;
                        if (c->n >= ELEMENTSOF(c->docs))
                                return 0;
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/%s", dir, *n) < 0)
                                return -ENOMEM;
                        int k = load_one(x, c, p, ret_parse_error);
                        if (k == -ENOMEM)
                                return k;
                        if (*ret_parse_error)
                                return 0;
                }
        }
        return 0;
}

struct runtime_found {
        const char *file;
        const char *const *prefix;
        const char *binary; /* NULL: table without options.BinaryName */
};

static bool find_runtime_under(const struct config_set *c, const char *const *prefix, const char *name,
                               struct runtime_found *ret)
{
        bool found = false;
        /* The last file defining the runtime wins, as containerd merges imports over the main file. */
        for (size_t i = 0; i < c->n; i++) {
                const char *path[TOML_MAX_PATH + 1];
                size_t k = 0;
                for (const char *const *s = prefix; *s; s++)
                        path[k++] = *s;
                path[k++] = name;
                path[k] = NULL;
                if (!toml_has_table(c->docs[i], path))
                        continue;
                path[k++] = "options";
                path[k++] = "BinaryName";
                path[k] = NULL;
                *ret = (struct runtime_found){ .file = c->paths[i],
                                               .prefix = prefix,
                                               .binary = toml_get_string(c->docs[i], path) };
                found = true;
        }
        return found;
}

/* Where the config's version says, else (a misplaced section) under another version's prefix. */
static bool find_runtime(const struct config_set *c, const char *const *expected, const char *name,
                         struct runtime_found *ret)
{
        static const char *const *const prefixes[] = { runtimes_v3, runtimes_v2, runtimes_v1 };
        if (find_runtime_under(c, expected, name, ret))
                return true;
        for (size_t p = 0; p < ELEMENTSOF(prefixes); p++)
                if (prefixes[p] != expected && find_runtime_under(c, prefixes[p], name, ret))
                        return true;
        return false;
}

static const char *const *expected_prefix(int64_t version)
{
        return version >= 3 ? runtimes_v3 : version == 2 ? runtimes_v2 : runtimes_v1;
}

static int runtime_names(const struct config_set *c, char **ret)
{
        _cleanup_strv_free_ char **all = NULL;
        const char *const *prefix = expected_prefix(c->version);
        for (size_t i = 0; i < c->n; i++) {
                _cleanup_strv_free_ char **l = NULL;
                int k = toml_list_children(c->docs[i], prefix, &l);
                if (k < 0)
                        return k;
                STRV_FOREACH (n, l)
                        if (!strv_contains(all, *n) && (k = strv_extend(&all, *n)) < 0)
                                return k;
        }
        strv_sort(all);
        char *s = all ? strv_join(all, ", ") : strdup("none");
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int check_runtime(struct ctx *x, const struct config_set *c, const char *id, const char *name,
                         const char *binary_name)
{
        struct runtime_found f = {};
        _cleanup_free_ char *restart = NULL;
        if (asprintf(&restart, "systemctl restart %s", x->service) < 0)
                return -ENOMEM;

        if (!find_runtime(c, expected_prefix(c->version), name, &f)) {
                _cleanup_free_ char *names = NULL;
                int k = runtime_names(c, &names);
                if (k < 0)
                        return k;
                _cleanup_free_ char *bin = NULL;
                bool have_binary =
                        rootfs_find_executable(x->o->root, node_runtime_search_path, binary_name, &bin) >= 0;
                enum doctor_verdict v;
                const char *fix;
                _cleanup_free_ char *fixbuf = NULL;
                if (!streq(name, "nvidia") && !x->o->cdi_expected && !have_binary)
                        /* nvidia-cdi is optional, and k3s adds it only when the toolkit has the binary. */
                        return doctor_report_addf(
                                x->r, id, DOCTOR_SKIP, NULL,
                                "%s has no %s runtime; %s is not installed (needed only with a "
                                "CDI device-list strategy)",
                                x->config, name, binary_name);
                v = streq(name, "nvidia") || x->o->cdi_expected ? DOCTOR_FAIL : DOCTOR_WARN;
                if (x->k3s) {
                        if (asprintf(&fixbuf, "%s   # k3s adds the %s runtime when it finds %s at start",
                                     restart, name, binary_name) < 0)
                                return -ENOMEM;
                } else if (asprintf(&fixbuf, "nvidia-ctk runtime configure --runtime=containerd%s && %s",
                                    streq(name, "nvidia") ? "" : " --cdi.enabled", restart) < 0)
                        return -ENOMEM;
                fix = fixbuf;
                return doctor_report_addf(x->r, id, v, fix, "%s has no %s runtime (runtimes: %s)", x->config,
                                          name, names);
        }

        _cleanup_free_ char *table = join_path(f.prefix, name, NULL);
        if (!table)
                return -ENOMEM;
        const char *const *want = expected_prefix(c->version);
        if (f.prefix != want) {
                _cleanup_free_ char *want_table = join_path(want, name, NULL), *fix = NULL;
                if (!want_table)
                        return -ENOMEM;
                if (asprintf(&fix, "move the section to [%s] in %s, then: %s", want_table,
                             x->k3s ? "the template" : f.file, restart) < 0)
                        return -ENOMEM;
                return doctor_report_addf(
                        x->r, id, DOCTOR_FAIL, fix,
                        "%s defines [%s] but the config is version %lld, which reads runtimes "
                        "from [%s]: containerd ignores it",
                        f.file, table, (long long)c->version, want_table);
        }
        if (!f.binary)
                return doctor_report_addf(
                        x->r, id, DOCTOR_FAIL, restart,
                        "%s: [%s] has no options.BinaryName: containers would run under plain "
                        "runc, without GPUs",
                        f.file, table);
        if (f.binary[0] != '/') {
                _cleanup_free_ char *bin = NULL;
                if (rootfs_find_executable(x->o->root, node_runtime_search_path, f.binary, &bin) >= 0)
                        return doctor_report_addf(x->r, id, DOCTOR_OK, NULL,
                                                  "%s: %s runtime, BinaryName %s (%s)", f.file, name,
                                                  f.binary, bin);
                return doctor_report_addf(x->r, id, DOCTOR_FAIL, restart,
                                          "%s: %s runtime has BinaryName %s, not found in %s", f.file, name,
                                          f.binary, node_runtime_search_path_string);
        }
        if (!rootfs_is_executable(x->o->root, f.binary))
                return doctor_report_addf(x->r, id, DOCTOR_FAIL, restart,
                                          "%s: %s runtime has BinaryName %s, which does not exist or is not "
                                          "executable (toolkit moved or removed?)",
                                          f.file, name, f.binary);
        return doctor_report_addf(x->r, id, DOCTOR_OK, NULL, "%s: %s runtime, BinaryName %s (exists)",
                                  f.file, name, f.binary);
}

/* "{{ template "base" . }}" with any blanks and trim markers ("{{- ... -}}"). */
static bool has_base_template(const char *s)
{
        for (const char *p = strstr(s, "{{"); p; p = strstr(p + 2, "{{")) {
                const char *q = p + 2;
                while (*q == '-' || isspace((unsigned char)*q))
                        q++;
                if (!startswith(q, "template"))
                        continue;
                q += strlen("template");
                while (isspace((unsigned char)*q))
                        q++;
                if (!startswith(q, "\"base\""))
                        continue;
                q += strlen("\"base\"");
                while (isspace((unsigned char)*q))
                        q++;
                if (*q != '.')
                        continue;
                q++;
                while (*q == '-' || isspace((unsigned char)*q))
                        q++;
                if (startswith(q, "}}"))
                        return true;
        }
        return false;
}

/* The containerd version k3s runs: its log's last "starting containerd ... version=v2.0.5-k3s1" line;
 * else a rendered version 3 config means containerd 2 (k3s renders version 3 only for it). */
static void detect_containerd(struct ctx *x, int64_t rendered_version)
{
        _cleanup_free_ char *log = NULL;
        if (rootfs_read_tail(x->o->root, K3S_CONTAINERD_LOG, 1024 * 1024, &log) >= 0) {
                const char *last = NULL;
                for (const char *p = strstr(log, "starting containerd"); p;
                     p = strstr(p + 1, "starting containerd"))
                        last = p;
                if (last) {
                        size_t linelen = strcspn(last, "\n");
                        _cleanup_free_ char *line = strndup(last, linelen);
                        const char *v = line ? strstr(line, "version=") : NULL;
                        if (v) {
                                v += strlen("version=");
                                if (*v == '"')
                                        v++;
                                if (*v == 'v')
                                        v++;
                                size_t n = strcspn(v, "\" \t");
                                if (n > 0 && n < sizeof(x->containerd_version) &&
                                    isdigit((unsigned char)*v)) {
                                        memcpy(x->containerd_version, v, n);
                                        x->containerd_version[n] = '\0';
                                        x->containerd_major = atoi(v);
                                        return;
                                }
                        }
                }
        }
        if (rendered_version >= 3) {
                x->containerd_major = 2;
                snprintf(x->containerd_version, sizeof(x->containerd_version), "2.x");
        }
}

/* Sections that containerd 2 moved out of the CRI plugin (io.containerd.grpc.v1.cri keeps only the
 * streaming server in a version 3 config). */
static bool uses_v2_sections(const char *text)
{
        static const char *const moved[] = {
                "io.containerd.grpc.v1.cri\".containerd", "io.containerd.grpc.v1.cri'.containerd",
                "io.containerd.grpc.v1.cri\".registry",   "io.containerd.grpc.v1.cri'.registry",
                "io.containerd.grpc.v1.cri\".cni",        "io.containerd.grpc.v1.cri'.cni",
        };
        for (size_t i = 0; i < ELEMENTSOF(moved); i++)
                if (strstr(text, moved[i]))
                        return true;
        return false;
}

static int check_template_version(struct ctx *x, bool has_v2, bool has_v3, const char *v3);

static int check_templates(struct ctx *x)
{
        _cleanup_free_ char *v2 = NULL, *v3 = NULL;
        bool has_v2 = rootfs_read(x->o->root, K3S_TEMPLATE_V2, TOML_MAX_INPUT, &v2, NULL) >= 0;
        bool has_v3 = rootfs_read(x->o->root, K3S_TEMPLATE_V3, TOML_MAX_INPUT, &v3, NULL) >= 0;
        int k;

        /* Which template k3s uses: containerd 2 prefers config-v3.toml.tmpl and falls back to
         * config.toml.tmpl; containerd 1.7 reads config.toml.tmpl only. */
        const char *active = NULL, *text = NULL;
        if (x->containerd_major == 1) {
                if (has_v2)
                        active = K3S_TEMPLATE_V2, text = v2;
        } else if (has_v3)
                active = K3S_TEMPLATE_V3, text = v3;
        else if (has_v2)
                active = K3S_TEMPLATE_V2, text = v2;

        _cleanup_free_ char *fix = NULL;
        if (active && asprintf(&fix,
                               "mv %s %s.bak && systemctl restart %s   # then re-add only your changes "
                               "below a first line "
                               "{{ template \"base\" . }}",
                               active, active, x->service) < 0)
                return -ENOMEM;
        if (!active && !has_v2 && !has_v3)
                k = doctor_report_add(
                        x->r, "k3s.template", DOCTOR_OK,
                        "no config.toml.tmpl or config-v3.toml.tmpl: k3s renders its built-in template",
                        NULL);
        else if (!active)
                k = doctor_report_addf(x->r, "k3s.template", DOCTOR_OK, NULL,
                                       "%s is not read by this k3s (see k3s.template-version)",
                                       has_v3 ? K3S_TEMPLATE_V3 : K3S_TEMPLATE_V2);
        else if (has_base_template(text))
                k = doctor_report_addf(x->r, "k3s.template", DOCTOR_OK, NULL,
                                       "%s extends {{ template \"base\" . }}", active);
        else if (!strstr(text, "{{"))
                k = doctor_report_addf(
                        x->r, "k3s.template", DOCTOR_FAIL, fix,
                        "%s does not start from {{ template \"base\" . }} and has no template "
                        "directives: a copy of a rendered config.toml, which pins one k3s "
                        "release's paths; the node goes NotReady with \"cni plugin not "
                        "initialized\"",
                        active);
        else
                k = doctor_report_addf(
                        x->r, "k3s.template", DOCTOR_WARN, fix,
                        "%s does not start from {{ template \"base\" . }}: a full template must "
                        "follow k3s's built-in one on every upgrade, or the node goes NotReady with "
                        "\"cni plugin not initialized\"",
                        active);
        if (k < 0)
                return k;
        return check_template_version(x, has_v2, has_v3, v3);
}

/* Template version against the containerd in use. */
static int check_template_version(struct ctx *x, bool has_v2, bool has_v3, const char *v3)
{
        if (!has_v2 && !has_v3)
                return doctor_report_add(x->r, "k3s.template-version", DOCTOR_SKIP, "no template", NULL);
        if (x->containerd_major == 0)
                return doctor_report_add(
                        x->r, "k3s.template-version", DOCTOR_SKIP,
                        "containerd version unknown: no \"starting containerd\" line in " K3S_CONTAINERD_LOG
                        " and the rendered config is not version 3",
                        NULL);
        if (x->containerd_major >= 2) {
                if (has_v3 && has_v2)
                        return doctor_report_addf(
                                x->r, "k3s.template-version", DOCTOR_WARN,
                                "rm " K3S_TEMPLATE_V2 "   # or merge what it adds into " K3S_TEMPLATE_V3,
                                "containerd %s reads config-v3.toml.tmpl; " K3S_TEMPLATE_V2 " is ignored",
                                x->containerd_version);
                if (has_v2) {
                        _cleanup_free_ char *f = NULL;
                        if (asprintf(&f,
                                     "rewrite it as " K3S_TEMPLATE_V3
                                     " ({{ template \"base\" . }} plus sections "
                                     "under plugins.'io.containerd.cri.v1.runtime'), rm " K3S_TEMPLATE_V2
                                     ", then: systemctl restart %s",
                                     x->service) < 0)
                                return -ENOMEM;
                        return doctor_report_addf(
                                x->r, "k3s.template-version", DOCTOR_WARN, f,
                                "containerd %s reads config-v3.toml.tmpl; k3s falls back to " K3S_TEMPLATE_V2
                                " and renders a legacy version 2 config",
                                x->containerd_version);
                }
                if (uses_v2_sections(v3))
                        return doctor_report_addf(
                                x->r, "k3s.template-version", DOCTOR_WARN,
                                "rename its [plugins.\"io.containerd.grpc.v1.cri\"...] sections to "
                                "[plugins.'io.containerd.cri.v1.runtime'...] (runtimes) or "
                                "[plugins.'io.containerd.cri.v1.images'...] (registries)",
                                "containerd %s: " K3S_TEMPLATE_V3 " uses version 2 section names "
                                "(\"io.containerd.grpc.v1.cri\"), which a version 3 config ignores",
                                x->containerd_version);
                return doctor_report_addf(x->r, "k3s.template-version", DOCTOR_OK, NULL,
                                          "containerd %s reads config-v3.toml.tmpl", x->containerd_version);
        }
        if (has_v3)
                return doctor_report_addf(
                        x->r, "k3s.template-version", DOCTOR_WARN,
                        "rewrite it as " K3S_TEMPLATE_V2 " (config version 2), or upgrade k3s to "
                        "v1.31.6+k3s1 / v1.32.2+k3s1 or later (containerd 2)",
                        "containerd %s reads only config.toml.tmpl; " K3S_TEMPLATE_V3 " is ignored",
                        x->containerd_version);
        return doctor_report_addf(x->r, "k3s.template-version", DOCTOR_OK, NULL,
                                  "containerd %s reads config.toml.tmpl", x->containerd_version);
}

/* containerd.config and the runtimes in it. */
static int check_config(struct ctx *x)
{
        _cleanup_free_ char *containerd_bin = NULL;
        int k;

        if (!rootfs_exists(x->o->root, x->config)) {
                if (x->k3s) {
                        _cleanup_free_ char *fix = NULL;
                        if (asprintf(&fix, "systemctl start %s", x->service) < 0)
                                return -ENOMEM;
                        return doctor_report_addf(
                                x->r, "containerd.config", DOCTOR_FAIL, fix,
                                "%s is missing: k3s has not started its agent on this node", x->config);
                }
                if (rootfs_find_executable(x->o->root, node_runtime_search_path, "containerd",
                                           &containerd_bin) < 0)
                        return doctor_report_addf(x->r, "containerd.config", DOCTOR_SKIP, NULL,
                                                  "neither k3s nor containerd found in %s",
                                                  node_runtime_search_path_string);
                return doctor_report_addf(
                        x->r, "containerd.config", DOCTOR_FAIL,
                        "nvidia-ctk runtime configure --runtime=containerd && systemctl restart "
                        "containerd",
                        "%s is missing: containerd (%s) runs on built-in defaults, without an "
                        "nvidia runtime",
                        x->config, containerd_bin);
        }

        _cleanup_(config_set_done) struct config_set c = {};
        bool parse_error = false;
        k = load_one(x, &c, x->config, &parse_error);
        if (k < 0 && k != -ENOMEM && !parse_error)
                return doctor_report_addf(x->r, "containerd.config", DOCTOR_FAIL, NULL,
                                          "%s cannot be read: %s", x->config, strerror(-k));
        if (k < 0 || parse_error)
                return k < 0 ? k : 0;
        static const char *const version_key[] = { "version", NULL };
        c.version = 1;
        (void)toml_get_integer(c.docs[0], version_key, &c.version);
        k = load_imports(x, &c, &parse_error);
        if (k < 0 || parse_error)
                return k < 0 ? k : 0;

        if (x->k3s)
                detect_containerd(x, c.version);

        _cleanup_free_ char *names = NULL;
        if ((k = runtime_names(&c, &names)) < 0)
                return k;
        _cleanup_free_ char *imports = NULL;
        if (c.n > 1) {
                _cleanup_strv_free_ char **l = NULL;
                for (size_t i = 1; i < c.n; i++)
                        if ((k = strv_extend(&l, c.paths[i])) < 0)
                                return k;
                _cleanup_free_ char *j = strv_join(l, ", ");
                if (!j || asprintf(&imports, ", imports %s", j) < 0)
                        return -ENOMEM;
        }
        k = doctor_report_addf(x->r, "containerd.config", DOCTOR_OK, NULL,
                               "%s: version %lld%s%s%s, runtimes: %s", x->config, (long long)c.version,
                               x->containerd_major ? ", containerd " : "",
                               x->containerd_major ? x->containerd_version : "", strempty(imports), names);
        if (k < 0)
                return k;

        if ((k = check_runtime(x, &c, "containerd.runtime-nvidia", "nvidia", "nvidia-container-runtime")) <
            0)
                return k;
        return check_runtime(x, &c, "containerd.runtime-nvidia-cdi", "nvidia-cdi",
                             "nvidia-container-runtime.cdi");
}

int doctor_check_containerd(const struct doctor_options *o, doctor_report *r)
{
        struct ctx x = { .o = o, .r = r };
        _cleanup_free_ char *k3s_bin = NULL;
        bool k3s_binary = rootfs_find_executable(o->root, node_runtime_search_path, "k3s", &k3s_bin) >= 0;
        bool k3s_dir = rootfs_exists(o->root, K3S_DIR);
        int k;

        x.k3s = k3s_binary || k3s_dir;
        if (x.k3s) {
                x.service = node_k3s_service(o->root);
                x.config = K3S_CONFIG;
                k = doctor_report_addf(r, "k3s.detected", DOCTOR_OK, NULL, "k3s binary %s, %s %s",
                                       k3s_binary ? k3s_bin : "not in PATH", K3S_DIR,
                                       k3s_dir ? "present" : "missing");
        } else {
                x.service = "containerd";
                x.config = CONTAINERD_CONFIG;
                k = doctor_report_addf(r, "k3s.detected", DOCTOR_SKIP, NULL,
                                       "no k3s binary in %s and no %s: checking plain containerd",
                                       node_runtime_search_path_string, K3S_DIR);
        }
        if (k < 0)
                return k;

        k = check_config(&x);
        if (k < 0)
                return k;
        if (!x.k3s)
                return 0;
        if (x.containerd_major == 0)
                detect_containerd(&x, 0); /* config.toml missing or broken: the log may still tell */
        return check_templates(&x);
}
