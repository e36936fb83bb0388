/* SPDX-License-Identifier: Apache-2.0 */
/* Defaults, enum names and the config file (upstream's v1 schema, YAML or JSON). */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <yaml.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/parse.h"
#include "base/strv.h"
#include "config/config-internal.h"

/* A config file is written by a person or rendered by Helm; a megabyte is far beyond any real one. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* Bounds on lists a file can make us allocate. */
#define SHARING_RESOURCES_MAX 256
#define DEVICES_LIST_MAX      4096

static const char *const mig_strategy_names[] = {
        [MIG_STRATEGY_NONE] = "none",
        [MIG_STRATEGY_SINGLE] = "single",
        [MIG_STRATEGY_MIXED] = "mixed",
};
static const char *const device_id_strategy_names[] = {
        [DEVICE_ID_UUID] = "uuid",
        [DEVICE_ID_INDEX] = "index",
};
static const char *const sharing_strategy_names[] = {
        [SHARING_NONE] = "none",
        [SHARING_TIME_SLICING] = "time-slicing",
        [SHARING_MPS] = "mps",
};
static const char *const allocation_policy_names[] = {
        [ALLOCATION_DISTRIBUTED] = "distributed",
        [ALLOCATION_PACKED] = "packed",
};
static const char *const health_policy_names[] = {
        [HEALTH_POLICY_CATALOG] = "catalog",
        [HEALTH_POLICY_UPSTREAM] = "upstream",
};
const struct device_list_strategy_name device_list_strategy_names[4] = {
        { "envvar", DEVICE_LIST_ENVVAR },
        { "volume-mounts", DEVICE_LIST_VOLUME_MOUNTS },
        { "cdi-annotations", DEVICE_LIST_CDI_ANNOTATIONS },
        { "cdi-cri", DEVICE_LIST_CDI_CRI },
};

static int lookup(const char *const *names, size_t n, const char *s)
{
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (names[i] && streq(names[i], s))
                        return (int)i;
        return -EINVAL;
}

#define DEFINE_ENUM_STRINGS(type, names)                                                                    \
        int type##_from_string(const char *s, enum type *ret)                                               \
        {                                                                                                   \
                int i = lookup(names, ELEMENTSOF(names), s);                                                \
                if (i < 0)                                                                                  \
                        return i;                                                                           \
                *ret = (enum type)i;                                                                        \
                return 0;                                                                                   \
        }                                                                                                   \
        const char *type##_to_string(enum type v)                                                           \
        {                                                                                                   \
                return (size_t)v < ELEMENTSOF(names) ? names[v] : NULL;                                     \
        }

DEFINE_ENUM_STRINGS(mig_strategy, mig_strategy_names)
DEFINE_ENUM_STRINGS(device_id_strategy, device_id_strategy_names)
DEFINE_ENUM_STRINGS(allocation_policy, allocation_policy_names)
DEFINE_ENUM_STRINGS(health_policy, health_policy_names)

const char *sharing_strategy_to_string(enum sharing_strategy s)
{
        return (size_t)s < ELEMENTSOF(sharing_strategy_names) ? sharing_strategy_names[s] : NULL;
}

int device_list_strategy_from_string(const char *s, unsigned *ret_bit)
{
        for (size_t i = 0; s && i < ELEMENTSOF(device_list_strategy_names); i++)
                if (streq(device_list_strategy_names[i].name, s)) {
                        *ret_bit = device_list_strategy_names[i].bit;
                        return 0;
                }
        return -EINVAL;
}

bool device_discovery_strategy_valid(const char *s, bool gfd)
{
        return streq(s, "auto") || streq(s, "nvml") || streq(s, "tegra") || (gfd && streq(s, "vfio"));
}

static void replicated_resource_done(struct replicated_resource *r)
{
        free(r->name);
        free(r->rename);
        strv_free(r->devices_list);
        *r = (struct replicated_resource){ 0 };
}

void sharing_resources_free(struct replicated_resource *r, size_t n)
{
        for (size_t i = 0; r && i < n; i++)
                replicated_resource_done(&r[i]);
        free(r);
}

struct node_roots config_node_roots(const config *c)
{
        return (struct node_roots){
                .root = c->flags.root,
                .driver_root = c->flags.nvidia_driver_root,
                .container_driver_root = c->flags.plugin.container_driver_root,
        };
}

config *config_free(config *c)
{
        if (!c)
                return NULL;
        free(c->flags.mps_root);
        free(c->flags.nvidia_driver_root);
        free(c->flags.nvidia_dev_root);
        free(c->flags.device_discovery_strategy);
        free(c->flags.root);
        free(c->flags.plugin.cdi_annotation_prefix);
        free(c->flags.plugin.nvidia_ctk_path);
        free(c->flags.plugin.container_driver_root);
        free(c->flags.plugin.kubelet_socket);
        free(c->flags.plugin.metrics_address);
        free(c->flags.plugin.health_address);
        strv_free(c->flags.plugin.cdi_feature_flags);
        strv_free(c->flags.plugin.cdi_disable_hooks);
        free(c->flags.plugin.cdi_spec_dir);
        free(c->flags.dra.node_name);
        free(c->flags.dra.kubeconfig);
        free(c->flags.dra.registrar_dir);
        free(c->flags.dra.plugins_dir);
        free(c->flags.dra.cdi_root);
        free(c->flags.gfd.output_file);
        free(c->flags.gfd.machine_type_file);
        free(c->flags.gfd.kubeconfig);
        free(c->flags.gfd.namespace);
        free(c->flags.gfd.node_name);
        free(c->flags.gfd.pod_name);
        sharing_resources_free(c->sharing.resources, c->sharing.n_resources);
        free(c->imex.channel_ids);
        free(c->config_file);
        free(c->config_source);
        strv_free(c->warnings);
        return mfree(c);
}

int set_string(char **dst, const char *s)
{
        char *n = NULL;
        if (s) {
                n = strdup(s);
                if (!n)
                        return -ENOMEM;
        }
        free(*dst);
        *dst = n;
        return 0;
}

int config_new_default(config **ret)
{
        _cleanup_(config_freep) config *c = new0(config, 1);
        if (!c)
                return -ENOMEM;

        c->flags.mig_strategy = MIG_STRATEGY_NONE;
        c->flags.fail_on_init_error = true;
        c->flags.use_node_feature_api = true;
        c->flags.plugin.device_list_strategy = DEVICE_LIST_ENVVAR;
        c->flags.plugin.device_id_strategy = DEVICE_ID_UUID;
        c->flags.plugin.shared_devices_allocation_policy = ALLOCATION_DISTRIBUTED;
        c->flags.plugin.health_policy = HEALTH_POLICY_CATALOG;
        c->flags.plugin.health_recovery_interval = 5 * 60 * NSEC_PER_SEC;
        c->flags.plugin.node_events = true;
        c->flags.log_format = LOG_FORMAT_KLOG;
        c->flags.gfd.sleep_interval = 60 * NSEC_PER_SEC;
        c->flags.gfd.kube_api_qps = 5;
        c->flags.gfd.kube_api_burst = 10;

        /* nvidia_dev_root stays NULL: it follows nvidia_driver_root (resolved by config_finish()). */
        if (set_string(&c->flags.mps_root, "") < 0 || set_string(&c->flags.nvidia_driver_root, "/") < 0 ||
            set_string(&c->flags.device_discovery_strategy, "auto") < 0 ||
            set_string(&c->flags.root, "/") < 0 ||
            set_string(&c->flags.plugin.cdi_annotation_prefix, "cdi.k8s.io/") < 0 ||
            set_string(&c->flags.plugin.nvidia_ctk_path, "/usr/bin/nvidia-ctk") < 0 ||
            set_string(&c->flags.plugin.container_driver_root, "/driver-root") < 0 ||
            set_string(&c->flags.plugin.kubelet_socket, "/var/lib/kubelet/device-plugins/kubelet.sock") <
                    0 ||
            set_string(&c->flags.plugin.cdi_spec_dir, "/var/run/cdi") < 0 ||
            set_string(&c->flags.gfd.output_file, "/etc/kubernetes/node-feature-discovery/features.d/gfd") <
                    0 ||
            set_string(&c->flags.gfd.machine_type_file, "/sys/class/dmi/id/product_name") < 0 ||
            set_string(&c->flags.gfd.namespace, "default") < 0 ||
            set_string(&c->flags.dra.registrar_dir, "/var/lib/kubelet/plugins_registry") < 0 ||
            set_string(&c->flags.dra.plugins_dir, "/var/lib/kubelet/plugins") < 0 ||
            set_string(&c->flags.dra.cdi_root, "/var/run/cdi") < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- resource names and device selectors -------------------------------------------------------- */

static bool dns_label_char(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* RFC 1123 subdomain: dot-separated labels of [a-z0-9-], each starting and ending alphanumeric. */
static bool dns_subdomain_valid(const char *s, size_t n)
{
        if (n == 0 || n > 253)
                return false;
        size_t label = 0;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                if (ch == '.') {
                        if (label == 0 || s[i - 1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!dns_label_char(ch) && !(ch == '-' && label > 0))
                        return false;
                label++;
        }
        return label > 0 && s[n - 1] != '-';
}

int resource_name_normalize(const char *in, char **ret, const char **ret_why)
{
        _cleanup_free_ char *n = NULL;
        if (strchr(in, '/'))
                n = strdup(in);
        else if (asprintf(&n, "nvidia.com/%s", in) < 0)
                n = NULL;
        if (!n)
                return -ENOMEM;

        const char *slash = strchr(n, '/');
        if (strlen(n) > 63) {
                *ret_why = "must be at most 63 characters with its nvidia.com/ prefix";
                return -EINVAL;
        }
        if (strchr(slash + 1, '/') || !dns_subdomain_valid(n, (size_t)(slash - n)) ||
            !dns_subdomain_valid(slash + 1, strlen(slash + 1))) {
                *ret_why = "must be a DNS subdomain (lower case letters, digits, '-' and '.')";
                return -EINVAL;
        }
        *ret = TAKE_PTR(n);
        return 0;
}

static bool all_digits(const char *s, size_t n)
{
        if (n == 0 || n > 9)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char)s[i]))
                        return false;
        return true;
}

static bool uuid_valid(const char *s)
{
        if (strlen(s) > 90)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && *s != '-' && *s != '/')
                        return false;
        return true;
}

bool device_selector_valid(const char *s)
{
        if (startswith(s, "GPU-") || startswith(s, "MIG-"))
                return strlen(s) > 4 && uuid_valid(s);
        const char *colon = strchr(s, ':');
        if (!colon)
                return all_digits(s, strlen(s));
        return all_digits(s, (size_t)(colon - s)) && all_digits(colon + 1, strlen(colon + 1));
}

/* ---- the YAML walk -------------------------------------------------------------------------------- */

struct walk {
        const char *path;
        yaml_document_t *doc;
        char *error;
        config *c;
};

_printf_(4, 5) static int fail(struct walk *w, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
        _cleanup_free_ char *why = format_va(fmt);
        if (!why)
                return -ENOMEM;
        free(w->error);
        w->error = NULL;
        if (asprintf(&w->error, "%s:%zu: %s: %s", w->path, n ? (size_t)n->start_mark.line + 1 : (size_t)1,
                     key, why) < 0) {
                w->error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

static const char *node_kind(const yaml_node_t *n)
{
        switch (n->type) {
        case YAML_MAPPING_NODE: return "a mapping";
        case YAML_SEQUENCE_NODE: return "a list";
        default: return "a scalar";
        }
}

static const char *scalar(const yaml_node_t *n)
{
        return (const char *)n->data.scalar.value;
}

static bool scalar_quoted(const yaml_node_t *n)
{
        return n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
               n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
}

/* A plain null ("", "~", "null") leaves the value as it was, as Go's decoder does. */
static bool scalar_null(const yaml_node_t *n)
{
        if (n->type != YAML_SCALAR_NODE || scalar_quoted(n))
                return false;
        const char *v = scalar(n);
        return isempty(v) || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL");
}

static int want_scalar(struct walk *w, const yaml_node_t *n, const char *key, const char *what)
{
        if (n->type != YAML_SCALAR_NODE)
                return fail(w, n, key, "must be %s, got %s", what, node_kind(n));
        return 0;
}

static int get_string(struct walk *w, const yaml_node_t *n, const char *key, char **dst)
{
        if (scalar_null(n))
                return 0;
        int r = want_scalar(w, n, key, "a string");
        if (r < 0)
                return r;
        return set_string(dst, scalar(n));
}

/* YAML 1.1/JSON booleans as sigs.k8s.io/yaml reads them; a quoted "true" is a string. */
static int get_bool(struct walk *w, const yaml_node_t *n, const char *key, bool *dst)
{
        if (scalar_null(n))
                return 0;
        int r = want_scalar(w, n, key, "a boolean");
        if (r < 0)
                return r;
        const char *v = scalar(n);
        static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON" };
        static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF" };
        if (!scalar_quoted(n)) {
                for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                        if (streq(v, yes[i])) {
                                *dst = true;
                                return 0;
                        }
                        if (streq(v, no[i])) {
                                *dst = false;
                                return 0;
                        }
                }
        }
        return fail(w, n, key, "must be a boolean (true or false), got \"%s\"", v);
}

/* A plain integer scalar; quoted numbers are strings in YAML and JSON. */
static int node_int(const yaml_node_t *n, int64_t *ret)
{
        if (n->type != YAML_SCALAR_NODE || scalar_quoted(n))
                return -EINVAL;
        const char *v = scalar(n);
        return parse_int64(v[0] == '+' ? v + 1 : v, ret);
}

static int get_enum(struct walk *w, const yaml_node_t *n, const char *key, const char *choices,
                    int (*from_string)(const char *, int *), int *dst)
{
        if (scalar_null(n))
                return 0;
        int r = want_scalar(w, n, key, "a string");
        if (r < 0)
                return r;
        if (from_string(scalar(n), dst) < 0)
                return fail(w, n, key, "must be one of %s, got \"%s\"", choices, scalar(n));
        return 0;
}

#define ENUM_ADAPTER(type)                                                                                  \
        static int type##_from_string_int(const char *s, int *ret)                                          \
        {                                                                                                   \
                enum type v;                                                                                \
                int r = type##_from_string(s, &v);                                                          \
                if (r >= 0)                                                                                 \
                        *ret = (int)v;                                                                      \
                return r;                                                                                   \
        }
ENUM_ADAPTER(mig_strategy)
ENUM_ADAPTER(device_id_strategy)
ENUM_ADAPTER(allocation_policy)
ENUM_ADAPTER(health_policy)

static int log_format_from_string_int(const char *s, int *ret)
{
        enum log_format f;
        int r = log_format_from_string(s, &f);
        if (r >= 0)
                *ret = (int)f;
        return r;
}

/* A warning for the caller to log: "<file>:<line>: <text>". */
_printf_(3, 4) static int warn(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
{
        _cleanup_free_ char *text = NULL, *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        if (asprintf(&msg, "%s:%zu: %s", w->path, (size_t)n->start_mark.line + 1, text) < 0)
                return -ENOMEM;
        r = strv_push(&w->c->warnings, msg);
        if (r < 0)
                return r;
        TAKE_PTR(msg);
        return 0;
}

/* Upstream's decoder ignores keys it does not know, so a file with a typo or a key of a newer release
 * works there: nvdp ignores them too, with a warning naming each, unless --strict-config. */
static int unknown_key(struct walk *w, const yaml_node_t *k, const char *parent, const char *name,
                       const char *key)
{
        char hint[300];
        bool close = config_key_suggest(parent, name, hint, sizeof(hint)) > 0;
        if (w->c->strict_config)
                return fail(w, k, key, "unknown key%s%s%s", close ? "; did you mean " : "",
                            close ? hint : "", close ? "?" : "");
        return warn(w, k, "%s: unknown key, ignored%s%s%s", key, close ? "; did you mean " : "",
                    close ? hint : "", close ? "?" : "");
}

typedef int (*mapping_cb)(struct walk *w, const char *key, const char *name, yaml_node_t *value,
                          void *userdata);

/* Walks a mapping, calling cb with each "<prefix>.<name>" key; duplicate keys are an error. */
static int walk_mapping(struct walk *w, yaml_node_t *n, const char *prefix, mapping_cb cb, void *userdata)
{
        if (n->type != YAML_MAPPING_NODE)
                return fail(w, n, prefix, "must be a mapping, got %s", node_kind(n));
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
                yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
                if (!k || !v)
                        return fail(w, n, prefix, "malformed mapping");
                if (k->type != YAML_SCALAR_NODE)
                        return fail(w, k, prefix, "keys must be strings, got %s", node_kind(k));
                char key[256];
                snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", scalar(k));
                for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
                        yaml_node_t *k2 = yaml_document_get_node(w->doc, q->key);
                        if (k2 && k2->type == YAML_SCALAR_NODE && streq(scalar(k2), scalar(k)))
                                return fail(w, k, key, "duplicate key");
                }
                const char *name = scalar(k), *canonical = config_key_canonical(prefix, name);
                if (canonical && !streq(canonical, name)) {
                        /* Upstream reads "deviceIdStrategy" as deviceIDStrategy: so do we, saying so. */
                        int r = warn(w, k,
                                     "%s: read as %s (keys match regardless of case, as upstream reads "
                                     "them)",
                                     key, canonical);
                        if (r < 0)
                                return r;
                        name = canonical;
                }
                int r = cb(w, key, name, v, userdata);
                if (r == -ENOENT)
                        r = unknown_key(w, k, prefix, scalar(k), key);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int sleep_interval_from(struct walk *w, const char *key, yaml_node_t *v, uint64_t *dst)
{
        if (scalar_null(v))
                return 0;
        int r = want_scalar(w, v, key, "a duration");
        if (r < 0)
                return r;
        /* A number is nanoseconds (Go's time.Duration in JSON); a string is a Go duration or "infinite". */
        if (parse_duration(scalar(v), dst) < 0)
                return fail(w, v, key, "must be a duration such as \"60s\" or \"infinite\", got \"%s\"",
                            scalar(v));
        return 0;
}

static int unsigned_from(struct walk *w, const char *key, yaml_node_t *v, unsigned *dst)
{
        int64_t i;
        if (scalar_null(v))
                return 0;
        if (node_int(v, &i) < 0 || i < 0 || i > 1000000)
                return fail(w, v, key, "must be a non-negative integer, got \"%s\"",
                            v->type == YAML_SCALAR_NODE ? scalar(v) : node_kind(v));
        *dst = (unsigned)i;
        return 0;
}

static int plugin_key(struct walk *w, const char *key, const char *name, yaml_node_t *v, void *userdata)
{
        config *c = w->c;
        int e, r;

        if (streq(name, "passDeviceSpecs"))
                return get_bool(w, v, key, &c->flags.plugin.pass_device_specs);
        if (streq(name, "deviceListStrategy")) {
                const char *choices = "envvar, volume-mounts, cdi-annotations, cdi-cri";
                unsigned bits = 0, bit;
                if (scalar_null(v))
                        return 0;
                if (v->type == YAML_SCALAR_NODE) {
                        if (device_list_strategy_from_string(scalar(v), &bit) < 0)
                                return fail(w, v, key, "must be one of %s, got \"%s\"", choices, scalar(v));
                        bits = bit;
                } else if (v->type == YAML_SEQUENCE_NODE) {
                        for (yaml_node_item_t *i = v->data.sequence.items.start;
                             i < v->data.sequence.items.top; i++) {
                                yaml_node_t *it = yaml_document_get_node(w->doc, *i);
                                char k[300];
                                snprintf(k, sizeof k, "%s[%zu]", key,
                                         (size_t)(i - v->data.sequence.items.start));
                                if (!it || it->type != YAML_SCALAR_NODE)
                                        return fail(w, it ? it : v, k, "must be a string");
                                if (device_list_strategy_from_string(scalar(it), &bit) < 0)
                                        return fail(w, it, k, "must be one of %s, got \"%s\"", choices,
                                                    scalar(it));
                                bits |= bit;
                        }
                        if (bits == 0)
                                return fail(w, v, key, "must name at least one strategy");
                } else
                        return fail(w, v, key, "must be a string or a list of strings, got %s",
                                    node_kind(v));
                c->flags.plugin.device_list_strategy = bits;
                return 0;
        }
        if (streq(name, "deviceIDStrategy")) {
                e = (int)c->flags.plugin.device_id_strategy;
                r = get_enum(w, v, key, "uuid, index", device_id_strategy_from_string_int, &e);
                c->flags.plugin.device_id_strategy = (enum device_id_strategy)e;
                return r;
        }
        if (streq(name, "cdiAnnotationPrefix"))
                return get_string(w, v, key, &c->flags.plugin.cdi_annotation_prefix);
        if (streq(name, "nvidiaCTKPath") || streq(name, "nvidiaCDIHookPath"))
                return get_string(w, v, key, &c->flags.plugin.nvidia_ctk_path);
        if (streq(name, "containerDriverRoot"))
                return get_string(w, v, key, &c->flags.plugin.container_driver_root);
        if (streq(name, "sharedDevicesAllocationPolicy")) {
                e = (int)c->flags.plugin.shared_devices_allocation_policy;
                r = get_enum(w, v, key, "distributed, packed", allocation_policy_from_string_int, &e);
                c->flags.plugin.shared_devices_allocation_policy = (enum allocation_policy)e;
                return r;
        }
        /* Ours, under the same section so --print-config output loads back. */
        if (streq(name, "kubeletSocket"))
                return get_string(w, v, key, &c->flags.plugin.kubelet_socket);
        if (streq(name, "healthPolicy")) {
                e = (int)c->flags.plugin.health_policy;
                r = get_enum(w, v, key, "catalog, upstream", health_policy_from_string_int, &e);
                c->flags.plugin.health_policy = (enum health_policy)e;
                return r;
        }
        if (streq(name, "cdiSpecDir"))
                return get_string(w, v, key, &c->flags.plugin.cdi_spec_dir);
        if (streq(name, "nodeEvents"))
                return get_bool(w, v, key, &c->flags.plugin.node_events);
        if (streq(name, "healthRecoveryInterval"))
                return sleep_interval_from(w, key, v, &c->flags.plugin.health_recovery_interval);
        if (streq(name, "metricsAddress")) {
                r = get_string(w, v, key, &c->flags.plugin.metrics_address);
                if (r >= 0 && c->flags.plugin.metrics_address && isempty(c->flags.plugin.metrics_address))
                        c->flags.plugin.metrics_address = mfree(c->flags.plugin.metrics_address);
                return r;
        }
        if (streq(name, "healthAddress")) {
                r = get_string(w, v, key, &c->flags.plugin.health_address);
                if (r >= 0 && c->flags.plugin.health_address && isempty(c->flags.plugin.health_address))
                        c->flags.plugin.health_address = mfree(c->flags.plugin.health_address);
                return r;
        }
        return -ENOENT;
}

static int gfd_key(struct walk *w, const char *key, const char *name, yaml_node_t *v, void *userdata)
{
        config *c = w->c;
        if (streq(name, "oneshot"))
                return get_bool(w, v, key, &c->flags.gfd.oneshot);
        if (streq(name, "noTimestamp"))
                return get_bool(w, v, key, &c->flags.gfd.no_timestamp);
        if (streq(name, "sleepInterval"))
                return sleep_interval_from(w, key, v, &c->flags.gfd.sleep_interval);
        if (streq(name, "outputFile"))
                return get_string(w, v, key, &c->flags.gfd.output_file);
        if (streq(name, "machineTypeFile"))
                return get_string(w, v, key, &c->flags.gfd.machine_type_file);
        /* Ours. */
        if (streq(name, "outputNode"))
                return get_bool(w, v, key, &c->flags.gfd.output_node);
        if (streq(name, "kubeconfig"))
                return get_string(w, v, key, &c->flags.gfd.kubeconfig);
        if (streq(name, "kubeAPIQPS"))
                return unsigned_from(w, key, v, &c->flags.gfd.kube_api_qps);
        if (streq(name, "kubeAPIBurst"))
                return unsigned_from(w, key, v, &c->flags.gfd.kube_api_burst);
        if (streq(name, "namespace"))
                return get_string(w, v, key, &c->flags.gfd.namespace);
        if (streq(name, "nodeName"))
                return get_string(w, v, key, &c->flags.gfd.node_name);
        if (streq(name, "podName"))
                return get_string(w, v, key, &c->flags.gfd.pod_name);
        return -ENOENT;
}

static int flags_key(struct walk *w, const char *key, const char *name, yaml_node_t *v, void *userdata)
{
        config *c = w->c;
        int e, r;

        if (streq(name, "migStrategy")) {
                e = (int)c->flags.mig_strategy;
                r = get_enum(w, v, key, "none, single, mixed", mig_strategy_from_string_int, &e);
                c->flags.mig_strategy = (enum mig_strategy)e;
                return r;
        }
        if (streq(name, "failOnInitError"))
                return get_bool(w, v, key, &c->flags.fail_on_init_error);
        if (streq(name, "mpsRoot"))
                return get_string(w, v, key, &c->flags.mps_root);
        if (streq(name, "nvidiaDriverRoot"))
                return get_string(w, v, key, &c->flags.nvidia_driver_root);
        if (streq(name, "nvidiaDevRoot"))
                return get_string(w, v, key, &c->flags.nvidia_dev_root);
        if (streq(name, "gdrcopyEnabled"))
                return get_bool(w, v, key, &c->flags.gdrcopy_enabled);
        if (streq(name, "gdsEnabled"))
                return get_bool(w, v, key, &c->flags.gds_enabled);
        if (streq(name, "mofedEnabled"))
                return get_bool(w, v, key, &c->flags.mofed_enabled);
        if (streq(name, "useNodeFeatureAPI"))
                return get_bool(w, v, key, &c->flags.use_node_feature_api);
        if (streq(name, "deviceDiscoveryStrategy")) {
                r = get_string(w, v, key, &c->flags.device_discovery_strategy);
                if (r >= 0 && !device_discovery_strategy_valid(c->flags.device_discovery_strategy, true))
                        return fail(w, v, key, "must be one of auto, nvml, tegra, vfio, got \"%s\"",
                                    c->flags.device_discovery_strategy);
                return r;
        }
        if (streq(name, "plugin"))
                return scalar_null(v) ? 0 : walk_mapping(w, v, key, plugin_key, NULL);
        if (streq(name, "gfd"))
                return scalar_null(v) ? 0 : walk_mapping(w, v, key, gfd_key, NULL);
        /* Ours. */
        if (streq(name, "root"))
                return get_string(w, v, key, &c->flags.root);
        if (streq(name, "logFormat")) {
                e = (int)c->flags.log_format;
                r = get_enum(w, v, key, "klog, json", log_format_from_string_int, &e);
                c->flags.log_format = (enum log_format)e;
                return r;
        }
        return -ENOENT;
}

/* resources.gpus / resources.mig: validated as upstream parses them, then dropped as upstream does. */
struct named_pattern {
        bool has_pattern, has_name;
};

static bool pattern_valid(const char *p)
{
        /* Upstream's wildcard: '*' is the only special character; the rest must be printable. */
        if (isempty(p))
                return false;
        for (; *p; p++)
                if (!isprint((unsigned char)*p))
                        return false;
        return true;
}

static int named_pattern_key(struct walk *w, const char *key, const char *name, yaml_node_t *v,
                             void *userdata)
{
        struct named_pattern *np = userdata;
        if (!streq(name, "pattern") && !streq(name, "name"))
                return -ENOENT;
        int r = want_scalar(w, v, key, "a string");
        if (r < 0)
                return r;
        if (streq(name, "pattern")) {
                if (!pattern_valid(scalar(v)))
                        return fail(w, v, key, "must be a non-empty wildcard pattern, got \"%s\"",
                                    scalar(v));
                np->has_pattern = true;
                return 0;
        }
        if (streq(name, "name")) {
                _cleanup_free_ char *n = NULL;
                const char *why = NULL;
                r = resource_name_normalize(scalar(v), &n, &why);
                if (r == -EINVAL)
                        return fail(w, v, key, "%s, got \"%s\"", why, scalar(v));
                if (r < 0)
                        return r;
                np->has_name = true;
                return 0;
        }
        return -ENOENT;
}

static int resources_key(struct walk *w, const char *key, const char *name, yaml_node_t *v, void *userdata)
{
        if (!streq(name, "gpus") && !streq(name, "mig"))
                return -ENOENT;
        if (scalar_null(v))
                return 0;
        if (v->type != YAML_SEQUENCE_NODE)
                return fail(w, v, key, "must be a list, got %s", node_kind(v));
        for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
                yaml_node_t *it = yaml_document_get_node(w->doc, *i);
                char k[300];
                snprintf(k, sizeof k, "%s[%zu]", key, (size_t)(i - v->data.sequence.items.start));
                struct named_pattern np = { 0 };
                int r = walk_mapping(w, it, k, named_pattern_key, &np);
                if (r < 0)
                        return r;
                if (!np.has_pattern || !np.has_name)
                        return fail(w, it, k, "needs both pattern and name");
        }
        _cleanup_free_ char *msg = NULL;
        if (asprintf(&msg, "%s:%zu: %s: custom resource naming is not supported and is ignored, as upstream",
                     w->path, (size_t)v->start_mark.line + 1, key) < 0)
                return -ENOMEM;
        int r = strv_push(&w->c->warnings, msg);
        if (r < 0)
                return r;
        TAKE_PTR(msg);
        return 0;
}

/* One sharing section (timeSlicing or mps) before it is chosen. */
struct sharing_section {
        bool present;
        bool rename_by_default;
        int fail_requests; /* -1 unset */
        struct replicated_resource *resources;
        size_t n_resources;
        yaml_node_t *node;
};

static int devices_from(struct walk *w, const char *key, yaml_node_t *v, struct replicated_resource *rr)
{
        int64_t i;
        rr->devices_all = false;
        if (v->type == YAML_SCALAR_NODE) {
                if (!scalar_quoted(v) && node_int(v, &i) >= 0) {
                        if (i <= 0 || i > DEVICES_LIST_MAX)
                                return fail(w, v, key, "a device count must be an integer > 0, got %s",
                                            scalar(v));
                        rr->devices_count = (unsigned)i;
                        return 0;
                }
                if (streq(scalar(v), "all")) {
                        rr->devices_all = true;
                        return 0;
                }
                return fail(w, v, key,
                            "must be \"all\", a count > 0 or a list of GPU indexes, "
                            "MIG indexes (\"0:1\") or UUIDs, got \"%s\"",
                            scalar(v));
        }
        if (v->type != YAML_SEQUENCE_NODE)
                return fail(w, v, key, "must be \"all\", a count or a list, got %s", node_kind(v));
        if (v->data.sequence.items.top == v->data.sequence.items.start)
                return fail(w, v, key, "the list of devices must not be empty");
        if (v->data.sequence.items.top - v->data.sequence.items.start > DEVICES_LIST_MAX)
                return fail(w, v, key, "more than %d devices", DEVICES_LIST_MAX);
        for (yaml_node_item_t *p = v->data.sequence.items.start; p < v->data.sequence.items.top; p++) {
                yaml_node_t *it = yaml_document_get_node(w->doc, *p);
                char k[300];
                snprintf(k, sizeof k, "%s[%zu]", key, (size_t)(p - v->data.sequence.items.start));
                if (!it || it->type != YAML_SCALAR_NODE)
                        return fail(w, it ? it : v, k, "must be a GPU index, a MIG index or a UUID");
                if (!device_selector_valid(scalar(it)))
                        return fail(
                                w, it, k,
                                "must be a GPU index, a MIG index (\"0:1\") or a GPU-/MIG- UUID, got \"%s\"",
                                scalar(it));
                if (strv_contains(rr->devices_list, scalar(it)))
                        return fail(w, it, k, "\"%s\" is listed twice", scalar(it));
                int r = strv_extend(&rr->devices_list, scalar(it));
                if (r < 0)
                        return r;
        }
        return 0;
}

struct resource_seen {
        struct replicated_resource *rr;
        yaml_node_t *node;
        bool has_name, has_replicas;
};

static int replicated_key(struct walk *w, const char *key, const char *name, yaml_node_t *v, void *userdata)
{
        struct resource_seen *s = userdata;
        struct replicated_resource *rr = s->rr;
        int r;

        if (streq(name, "name") || streq(name, "rename")) {
                _cleanup_free_ char *n = NULL;
                const char *why = NULL;
                if (scalar_null(v) && streq(name, "rename"))
                        return 0;
                r = want_scalar(w, v, key, "a string");
                if (r < 0)
                        return r;
                r = resource_name_normalize(scalar(v), &n, &why);
                if (r == -EINVAL)
                        return fail(w, v, key, "%s, got \"%s\"", why, scalar(v));
                if (r < 0)
                        return r;
                if (streq(name, "name")) {
                        free(rr->name);
                        rr->name = TAKE_PTR(n);
                        s->has_name = true;
                } else {
                        free(rr->rename);
                        rr->rename = TAKE_PTR(n);
                }
                return 0;
        }
        if (streq(name, "replicas")) {
                int64_t i;
                if (node_int(v, &i) < 0 || i < 2 || i > 1000000)
                        return fail(w, v, key, "must be an integer >= 2, got \"%s\"",
                                    v->type == YAML_SCALAR_NODE ? scalar(v) : node_kind(v));
                rr->replicas = (unsigned)i;
                s->has_replicas = true;
                return 0;
        }
        if (streq(name, "devices"))
                return devices_from(w, key, v, rr);
        return -ENOENT;
}

static int sharing_section_key(struct walk *w, const char *key, const char *name, yaml_node_t *v,
                               void *userdata)
{
        struct sharing_section *s = userdata;
        if (streq(name, "renameByDefault"))
                return get_bool(w, v, key, &s->rename_by_default);
        if (streq(name, "failRequestsGreaterThanOne")) {
                bool b;
                if (scalar_null(v))
                        return 0;
                int r = get_bool(w, v, key, &b);
                if (r >= 0)
                        s->fail_requests = b;
                return r;
        }
        if (streq(name, "resources")) {
                if (v->type != YAML_SEQUENCE_NODE)
                        return fail(w, v, key, "must be a list, got %s", node_kind(v));
                size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
                if (n > SHARING_RESOURCES_MAX)
                        return fail(w, v, key, "more than %d resources", SHARING_RESOURCES_MAX);
                sharing_resources_free(s->resources, s->n_resources);
                s->n_resources = 0;
                s->resources = new0(struct replicated_resource, MAX(n, 1u));
                if (!s->resources)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        yaml_node_t *it = yaml_document_get_node(w->doc, v->data.sequence.items.start[i]);
                        char k[300];
                        snprintf(k, sizeof k, "%s[%zu]", key, i);
                        struct resource_seen seen = { .rr = &s->resources[i], .node = it };
                        s->resources[i].devices_all = true;
                        s->n_resources = i + 1;
                        int r = walk_mapping(w, it, k, replicated_key, &seen);
                        if (r < 0)
                                return r;
                        if (!seen.has_name)
                                return fail(w, it, k, "name is required");
                        if (!seen.has_replicas)
                                return fail(w, it, k, "replicas is required (an integer >= 2)");
                }
                return 0;
        }
        return -ENOENT;
}

struct sharing_both {
        struct sharing_section ts, mps;
};

static int sharing_key(struct walk *w, const char *key, const char *name, yaml_node_t *v, void *userdata)
{
        struct sharing_both *b = userdata;
        struct sharing_section *s = streq(name, "timeSlicing") ? &b->ts
                                    : streq(name, "mps")       ? &b->mps
                                                               : NULL;
        if (!s)
                return -ENOENT;
        if (scalar_null(v))
                return 0;
        s->present = true;
        s->node = v;
        int r = walk_mapping(w, v, key, sharing_section_key, s);
        if (r < 0)
                return r;
        if (s->n_resources == 0)
                return fail(w, v, key, "resources must list at least one resource");
        return 0;
}

static int imex_key(struct walk *w, const char *key, const char *name, yaml_node_t *v, void *userdata)
{
        config *c = w->c;
        if (streq(name, "required"))
                return get_bool(w, v, key, &c->imex.required);
        if (streq(name, "channelIDs")) {
                if (scalar_null(v))
                        return 0;
                if (v->type != YAML_SEQUENCE_NODE)
                        return fail(w, v, key, "must be a list, got %s", node_kind(v));
                size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
                if (n > 1)
                        return fail(w, v, key, "only [] or [0] are supported, got %zu channels", n);
                free(c->imex.channel_ids);
                c->imex.channel_ids = NULL;
                c->imex.n_channel_ids = 0;
                if (n == 1) {
                        int64_t id;
                        yaml_node_t *it = yaml_document_get_node(w->doc, v->data.sequence.items.start[0]);
                        char k[300];
                        snprintf(k, sizeof k, "%s[0]", key);
                        if (!it || node_int(it, &id) < 0 || id != 0)
                                return fail(w, it ? it : v, k, "only channel 0 is supported, got \"%s\"",
                                            it && it->type == YAML_SCALAR_NODE ? scalar(it) : "?");
                        c->imex.channel_ids = new0(unsigned, 1);
                        if (!c->imex.channel_ids)
                                return -ENOMEM;
                        c->imex.n_channel_ids = 1;
                }
                return 0;
        }
        return -ENOENT;
}

struct top {
        struct sharing_both sharing;
};

static int top_key(struct walk *w, const char *key, const char *name, yaml_node_t *v, void *userdata)
{
        struct top *t = userdata;
        if (streq(name, "version")) {
                if (scalar_null(v))
                        return 0;
                int r = want_scalar(w, v, key, "a string");
                if (r < 0)
                        return r;
                /* "" means v1, as upstream */
                if (!streq(scalar(v), "v1") && !isempty(scalar(v)))
                        return fail(w, v, key, "unknown version \"%s\" (only v1 is supported)", scalar(v));
                return 0;
        }
        if (streq(name, "flags"))
                return scalar_null(v) ? 0 : walk_mapping(w, v, key, flags_key, NULL);
        if (streq(name, "resources"))
                return scalar_null(v) ? 0 : walk_mapping(w, v, key, resources_key, NULL);
        if (streq(name, "sharing"))
                return scalar_null(v) ? 0 : walk_mapping(w, v, key, sharing_key, &t->sharing);
        if (streq(name, "imex"))
                return scalar_null(v) ? 0 : walk_mapping(w, v, key, imex_key, NULL);
        return -ENOENT;
}

/* Upstream's NewConfig: mps wins over timeSlicing; renameByDefault fills missing renames; MPS
 * fails requests for more than one replica unless told otherwise. */
static void sharing_apply(config *c, struct sharing_section *s, enum sharing_strategy strategy)
{
        sharing_resources_free(c->sharing.resources, c->sharing.n_resources);
        c->sharing.strategy = strategy;
        c->sharing.rename_by_default = s->rename_by_default;
        c->sharing.fail_requests_greater_than_one =
                s->fail_requests >= 0 ? (bool)s->fail_requests : strategy == SHARING_MPS;
        c->sharing.resources = TAKE_PTR(s->resources);
        c->sharing.n_resources = s->n_resources;
        s->n_resources = 0;
}

static int rename_defaults(config *c)
{
        for (size_t i = 0; i < c->sharing.n_resources; i++) {
                struct replicated_resource *rr = &c->sharing.resources[i];
                if (rr->rename || !c->sharing.rename_by_default)
                        continue;
                if (asprintf(&rr->rename, "%s.shared", rr->name) < 0) {
                        rr->rename = NULL;
                        return -ENOMEM;
                }
        }
        return 0;
}

/* libyaml's loader fails some allocations without setting an error; nothing else fails silently. */
static bool yaml_out_of_memory(const yaml_parser_t *parser)
{
        return parser->error == YAML_MEMORY_ERROR || parser->error == YAML_NO_ERROR;
}

/* The schema is six levels deep; libyaml's loader takes quadratic time on deep nesting, so a file
 * nested deeper than any valid one is refused by a cheap event pass before it is loaded. */
#define CONFIG_DEPTH_MAX 16

static int check_depth(const char *data, size_t size, size_t *ret_line)
{
        yaml_parser_t parser;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)data, size);
        int depth = 0, r = 0;
        for (;;) {
                yaml_event_t e;
                if (!yaml_parser_parse(&parser, &e)) {
                        /* the loader reports syntax errors with their context */
                        if (yaml_out_of_memory(&parser))
                                r = -ENOMEM;
                        break;
                }
                yaml_event_type_t t = e.type;
                size_t line = e.start_mark.line;
                yaml_event_delete(&e);
                if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
                        if (++depth > CONFIG_DEPTH_MAX) {
                                *ret_line = line + 1;
                                r = -EINVAL;
                                break;
                        }
                } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT)
                        depth--;
                else if (t == YAML_STREAM_END_EVENT)
                        break;
        }
        yaml_parser_delete(&parser);
        return r;
}

int config_load_file(config *c, const char *path, char **ret_error)
{
        _cleanup_free_ char *data = NULL, *err = NULL;
        size_t size = 0;
        int r;

        /* Never blocking on what is at the path (a FIFO would stall the loop in open()), regular files
         * only; /dev/null, config-manager's "empty" fallback, reads as the empty file it is. */
        r = read_full_file(path, CONFIG_FILE_MAX, &data, &size);
        if (r == -EBADFD && path_is_dev_null(path)) {
                data = strdup("");
                size = 0;
                r = data ? 0 : -ENOMEM;
        }
        if (r == -EFBIG) {
                return error_set(ret_error, r, "%s: config file is larger than %d bytes", path,
                                 CONFIG_FILE_MAX);
        }
        if (r < 0) {
                return error_set(ret_error, r, "%s: cannot read config file: %s", path,
                                 file_error_string(r));
        }

        size_t deep_line = 0;
        r = check_depth(data, size, &deep_line);
        if (r == -EINVAL) {
                return error_set(ret_error, r, "%s:%zu: nested more than %d levels deep", path, deep_line,
                                 CONFIG_DEPTH_MAX);
        }
        if (r < 0)
                return r;

        yaml_parser_t parser;
        yaml_document_t doc;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)data, size);
        if (!yaml_parser_load(&parser, &doc)) {
                if (yaml_out_of_memory(&parser)) {
                        yaml_parser_delete(&parser);
                        return -ENOMEM;
                }
                r = error_set(ret_error, -EINVAL, "%s:%zu: not valid YAML or JSON: %s%s%s", path,
                              (size_t)parser.problem_mark.line + 1, strna(parser.problem),
                              parser.context ? " " : "", strempty(parser.context));
                yaml_parser_delete(&parser);
                return r;
        }
        yaml_parser_delete(&parser);

        struct walk w = { .path = path, .doc = &doc, .c = c };
        struct top t = { .sharing = { .ts = { .fail_requests = -1 }, .mps = { .fail_requests = -1 } } };
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        /* An empty file (config-manager's "empty" fallback links /dev/null) means defaults. */
        r = root && !scalar_null(root) ? walk_mapping(&w, root, "", top_key, &t) : 0;
        yaml_document_delete(&doc);
        err = w.error;
        if (r >= 0) {
                if (t.sharing.mps.n_resources > 0)
                        sharing_apply(c, &t.sharing.mps, SHARING_MPS);
                else if (t.sharing.ts.n_resources > 0)
                        sharing_apply(c, &t.sharing.ts, SHARING_TIME_SLICING);
                r = rename_defaults(c);
        }
        if (r >= 0)
                r = set_string(&c->config_file, path);
        sharing_resources_free(t.sharing.ts.resources, t.sharing.ts.n_resources);
        sharing_resources_free(t.sharing.mps.resources, t.sharing.mps.n_resources);
        if (r < 0) {
                if (ret_error)
                        *ret_error = TAKE_PTR(err);
                return r;
        }
        return 0;
}
