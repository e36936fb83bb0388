/* SPDX-License-Identifier: Apache-2.0 */
/* Upstream's flags and env vars (urfave/cli style) over the config file over the defaults. */
#include <stdarg.h>
#include <stddef.h>

#include "base/error.h"
#include "base/parse.h"
#include "base/strv.h"
#include "config/config-internal.h"
#include "config/config.h"

#ifndef NVDP_VERSION
#define NVDP_VERSION "unknown"
#endif

enum value_type {
        T_BOOL,
        T_STRING,
        T_OPTSTRING, /* "" means unset (NULL) */
        T_DURATION,
        T_UINT,
        T_MIG,
        T_ID_STRATEGY,
        T_LIST_STRATEGY,
        T_ALLOCATION,
        T_HEALTH,
        T_LOG_FORMAT,
        T_DISCOVERY,
        T_IMEX,
        T_STRV,
        T_OUTPUT,
        T_CONFIG_FILE,
};

#define P_PLUGIN (1u << PROGRAM_PLUGIN)
#define P_GFD    (1u << PROGRAM_GFD)
#define P_MPS    (1u << PROGRAM_MPS)
#define P_DRA    (1u << PROGRAM_DRA)
#define P_BOTH   (P_PLUGIN | P_GFD | P_MPS)
#define P_ALL    (P_BOTH | P_DRA)

struct flag {
        unsigned programs;
        const char *name;
        const char *aliases[2];
        const char *envs[3];
        enum value_type type;
        size_t offset; /* into config, for the generic types */
        const char *def;
        const char *usage;
};

#define OFF(field) offsetof(config, field)

static const struct flag flags[] = {
        /* The plugin (reference 1.1). */
        { P_PLUGIN | P_MPS,
          "mig-strategy",
          {},
          { "MIG_STRATEGY" },
          T_MIG,
          0,
          "none",
          "the desired strategy for exposing MIG devices: none, single or mixed" },
        { P_PLUGIN | P_DRA,
          "fail-on-init-error",
          {},
          { "FAIL_ON_INIT_ERROR" },
          T_BOOL,
          OFF(flags.fail_on_init_error),
          "true",
          "fail the plugin if an error is encountered during initialization, otherwise block forever" },
        /* The MPS daemon too (ours): without the NVIDIA runtime it runs the driver's MPS binaries from the
         * driver root (docs/mps.md). */
        { P_PLUGIN | P_MPS | P_DRA,
          "driver-root",
          { "nvidia-driver-root" },
          { "NVIDIA_DRIVER_ROOT" },
          T_STRING,
          OFF(flags.nvidia_driver_root),
          "/",
          "the root path for the NVIDIA driver installation on the host" },
        { P_PLUGIN | P_DRA,
          "dev-root",
          { "nvidia-dev-root" },
          { "NVIDIA_DEV_ROOT" },
          T_OPTSTRING,
          OFF(flags.nvidia_dev_root),
          "the driver root",
          "the root path for the NVIDIA device nodes on the host" },
        { P_PLUGIN,
          "pass-device-specs",
          {},
          { "PASS_DEVICE_SPECS" },
          T_BOOL,
          OFF(flags.plugin.pass_device_specs),
          "false",
          "pass the list of DeviceSpecs to the kubelet on Allocate()" },
        { P_PLUGIN,
          "device-list-strategy",
          {},
          { "DEVICE_LIST_STRATEGY" },
          T_LIST_STRATEGY,
          0,
          "envvar",
          "how the devices are passed to the runtime: envvar, volume-mounts, cdi-annotations, cdi-cri "
          "(repeat or comma-separate to combine)" },
        { P_PLUGIN,
          "device-id-strategy",
          {},
          { "DEVICE_ID_STRATEGY" },
          T_ID_STRATEGY,
          0,
          "uuid",
          "the IDs passed to the runtime: uuid or index" },
        { P_PLUGIN,
          "gdrcopy-enabled",
          {},
          { "GDRCOPY_ENABLED" },
          T_BOOL,
          OFF(flags.gdrcopy_enabled),
          "false",
          "inject GDRCopy into containers" },
        { P_PLUGIN,
          "gds-enabled",
          {},
          { "GDS_ENABLED" },
          T_BOOL,
          OFF(flags.gds_enabled),
          "false",
          "inject GPUDirect Storage into containers" },
        { P_PLUGIN,
          "mofed-enabled",
          {},
          { "MOFED_ENABLED" },
          T_BOOL,
          OFF(flags.mofed_enabled),
          "false",
          "inject MOFED into containers" },
        { P_PLUGIN,
          "cdi-annotation-prefix",
          {},
          { "CDI_ANNOTATION_PREFIX" },
          T_STRING,
          OFF(flags.plugin.cdi_annotation_prefix),
          "cdi.k8s.io/",
          "the prefix of CDI annotation keys" },
        { P_PLUGIN | P_DRA,
          "nvidia-cdi-hook-path",
          { "nvidia-ctk-path" },
          { "NVIDIA_CDI_HOOK_PATH", "NVIDIA_CTK_PATH" },
          T_STRING,
          OFF(flags.plugin.nvidia_ctk_path),
          "/usr/bin/nvidia-ctk",
          "the path of the nvidia-cdi-hook written into the CDI spec" },
        { P_PLUGIN | P_MPS | P_DRA,
          "driver-root-ctr-path",
          { "container-driver-root" },
          { "DRIVER_ROOT_CTR_PATH", "CONTAINER_DRIVER_ROOT" },
          T_STRING,
          OFF(flags.plugin.container_driver_root),
          "/driver-root",
          "where the host driver root is mounted in this container" },
        { P_PLUGIN | P_MPS,
          "mps-root",
          {},
          { "MPS_ROOT" },
          T_STRING,
          OFF(flags.mps_root),
          "",
          "the host directory for MPS pipes, logs and shared memory (required with MPS sharing)" },
        { P_PLUGIN,
          "shared-devices-allocation-policy",
          {},
          { "SHARED_DEVICES_ALLOCATION_POLICY" },
          T_ALLOCATION,
          0,
          "distributed",
          "how replicas and MIG devices are preferred: distributed or packed" },
        { P_PLUGIN,
          "device-discovery-strategy",
          {},
          { "DEVICE_DISCOVERY_STRATEGY" },
          T_DISCOVERY,
          0,
          "auto",
          "how devices are found: auto, nvml or tegra" },
        { P_PLUGIN,
          "imex-channel-ids",
          {},
          { "IMEX_CHANNEL_IDS" },
          T_IMEX,
          0,
          "[]",
          "IMEX channels to inject into containers: none or 0" },
        { P_PLUGIN,
          "imex-required",
          {},
          { "IMEX_REQUIRED" },
          T_BOOL,
          OFF(imex.required),
          "false",
          "fail when a requested IMEX channel is missing" },
        { P_PLUGIN,
          "kubelet-socket",
          {},
          { "KUBELET_SOCKET" },
          T_STRING,
          OFF(flags.plugin.kubelet_socket),
          "/var/lib/kubelet/device-plugins/kubelet.sock",
          "the kubelet registration socket; empty: do not register" },
        { P_PLUGIN | P_MPS,
          "config-file",
          {},
          { "CONFIG_FILE" },
          T_CONFIG_FILE,
          0,
          "",
          "the path of a config file (YAML or JSON) read before flags and env vars" },
        { P_PLUGIN,
          "cdi-feature-flags",
          {},
          { "CDI_FEATURE_FLAGS" },
          T_STRV,
          OFF(flags.plugin.cdi_feature_flags),
          "",
          "feature flags passed to CDI spec generation" },
        { P_PLUGIN | P_DRA,
          "cdi-disable-hooks",
          {},
          { "CDI_DISABLE_HOOKS" },
          T_STRV,
          OFF(flags.plugin.cdi_disable_hooks),
          "",
          "OCI hooks left out of the CDI spec; all: no hooks" },
        /* Ours (plugin). */
        { P_PLUGIN | P_DRA,
          "health-policy",
          {},
          { "HEALTH_POLICY" },
          T_HEALTH,
          0,
          "catalog",
          "XID handling: catalog (by class, with recovery) or upstream (upstream's list, no recovery)" },
        { P_PLUGIN | P_DRA,
          "health-recovery-interval",
          {},
          { "HEALTH_RECOVERY_INTERVAL" },
          T_DURATION,
          OFF(flags.plugin.health_recovery_interval),
          "5m",
          "quiet time after which an unhealthy device is re-probed and may return to Healthy" },
        { P_PLUGIN | P_MPS,
          "metrics-address",
          {},
          { "METRICS_ADDRESS" },
          T_OPTSTRING,
          OFF(flags.plugin.metrics_address),
          "off",
          "host:port to serve Prometheus /metrics on" },
        { P_PLUGIN,
          "cdi-spec-dir",
          {},
          { "CDI_SPEC_DIR" },
          T_STRING,
          OFF(flags.plugin.cdi_spec_dir),
          "/var/run/cdi",
          "where the CDI spec is written with a cdi-annotations or cdi-cri strategy" },
        { P_PLUGIN,
          "node-events",
          {},
          { "NODE_EVENTS" },
          T_BOOL,
          OFF(flags.plugin.node_events),
          "true",
          "post a Kubernetes Event on the Node (NODE_NAME) for each device health change" },
        { P_PLUGIN | P_MPS,
          "health-address",
          {},
          { "HEALTH_ADDRESS" },
          T_OPTSTRING,
          OFF(flags.plugin.health_address),
          "off",
          "host:port (loopback) to serve /healthz on for probes, apart from the metrics port; "
          "`nvdp healthz` asks it" },

        /* nvdp dra (NVIDIA's DRA driver's names). */
        { P_DRA,
          "node-name",
          {},
          { "NODE_NAME" },
          T_STRING,
          OFF(flags.dra.node_name),
          "",
          "the node whose GPUs this driver publishes (required)" },
        { P_DRA,
          "kubeconfig",
          {},
          { "KUBECONFIG" },
          T_STRING,
          OFF(flags.dra.kubeconfig),
          "",
          "kubeconfig file for the API server; empty: the pod's service account" },
        { P_DRA,
          "kubelet-registrar-directory-path",
          {},
          { "KUBELET_REGISTRAR_DIRECTORY_PATH" },
          T_STRING,
          OFF(flags.dra.registrar_dir),
          "/var/lib/kubelet/plugins_registry",
          "where the kubelet watches for plugin registration sockets" },
        { P_DRA,
          "kubelet-plugins-directory-path",
          {},
          { "KUBELET_PLUGINS_DIRECTORY_PATH" },
          T_STRING,
          OFF(flags.dra.plugins_dir),
          "/var/lib/kubelet/plugins",
          "the kubelet's plugins directory: the driver's socket and checkpoint go in <it>/gpu.nvidia.com" },
        { P_DRA,
          "cdi-root",
          {},
          { "CDI_ROOT" },
          T_STRING,
          OFF(flags.dra.cdi_root),
          "/var/run/cdi",
          "where the CDI specs of prepared claims are written" },

        /* GFD (reference 1.2). */
        { P_GFD,
          "mig-strategy",
          {},
          { "GFD_MIG_STRATEGY", "MIG_STRATEGY" },
          T_MIG,
          0,
          "none",
          "the desired strategy for exposing MIG devices: none, single or mixed" },
        { P_GFD,
          "fail-on-init-error",
          {},
          { "GFD_FAIL_ON_INIT_ERROR", "FAIL_ON_INIT_ERROR" },
          T_BOOL,
          OFF(flags.fail_on_init_error),
          "true",
          "fail if an error is encountered during initialization" },
        { P_GFD,
          "oneshot",
          {},
          { "GFD_ONESHOT" },
          T_BOOL,
          OFF(flags.gfd.oneshot),
          "false",
          "label once and exit" },
        { P_GFD,
          "no-timestamp",
          {},
          { "GFD_NO_TIMESTAMP" },
          T_BOOL,
          OFF(flags.gfd.no_timestamp),
          "false",
          "do not add the timestamp label" },
        { P_GFD,
          "sleep-interval",
          {},
          { "GFD_SLEEP_INTERVAL" },
          T_DURATION,
          OFF(flags.gfd.sleep_interval),
          "60s",
          "time between labelling runs (a Go duration, or infinite)" },
        { P_GFD,
          "output-file",
          { "output", "o" },
          { "GFD_OUTPUT_FILE" },
          T_OUTPUT,
          0,
          "/etc/kubernetes/node-feature-discovery/features.d/gfd",
          "the label file; empty: stdout; node: set the labels on the Node object through the API server" },
        { P_GFD,
          "machine-type-file",
          {},
          { "GFD_MACHINE_TYPE_FILE" },
          T_STRING,
          OFF(flags.gfd.machine_type_file),
          "/sys/class/dmi/id/product_name",
          "the file holding the machine type" },
        { P_GFD,
          "config-file",
          {},
          { "GFD_CONFIG_FILE", "CONFIG_FILE" },
          T_CONFIG_FILE,
          0,
          "",
          "the path of a config file (YAML or JSON) read before flags and env vars" },
        { P_GFD,
          "use-node-feature-api",
          {},
          { "GFD_USE_NODE_FEATURE_API", "USE_NODE_FEATURE_API" },
          T_BOOL,
          OFF(flags.use_node_feature_api),
          "true",
          "publish labels as a NodeFeature object" },
        { P_GFD,
          "device-discovery-strategy",
          {},
          { "DEVICE_DISCOVERY_STRATEGY" },
          T_DISCOVERY,
          0,
          "auto",
          "how devices are found: auto, nvml, tegra or vfio" },
        { P_GFD,
          "driver-root-ctr-path",
          { "container-driver-root" },
          { "DRIVER_ROOT_CTR_PATH", "CONTAINER_DRIVER_ROOT" },
          T_STRING,
          OFF(flags.plugin.container_driver_root),
          "/driver-root",
          "where the host driver root is mounted in this container" },
        { P_GFD,
          "kubeconfig",
          {},
          { "KUBECONFIG" },
          T_OPTSTRING,
          OFF(flags.gfd.kubeconfig),
          "in-cluster",
          "the kubeconfig file for the API server" },
        { P_GFD,
          "kube-api-qps",
          {},
          { "KUBE_API_QPS" },
          T_UINT,
          OFF(flags.gfd.kube_api_qps),
          "5",
          "API server requests per second" },
        { P_GFD,
          "kube-api-burst",
          {},
          { "KUBE_API_BURST" },
          T_UINT,
          OFF(flags.gfd.kube_api_burst),
          "10",
          "API server request burst" },
        { P_GFD,
          "namespace",
          {},
          { "NAMESPACE" },
          T_STRING,
          OFF(flags.gfd.namespace),
          "default",
          "the namespace of the NodeFeature object" },
        { P_GFD,
          "node-name",
          {},
          { "NODE_NAME" },
          T_OPTSTRING,
          OFF(flags.gfd.node_name),
          "",
          "this node's name (needed for the NodeFeature API and --output=node)" },
        { P_GFD,
          "pod-name",
          {},
          { "POD_NAME" },
          T_OPTSTRING,
          OFF(flags.gfd.pod_name),
          "",
          "this pod's name (for ownerReferences)" },

        /* Ours (both). */
        { P_ALL, "log-format", {}, { "LOG_FORMAT" }, T_LOG_FORMAT, 0, "klog", "log lines as klog or json" },
        { P_BOTH,
          "print-config",
          {},
          {},
          T_BOOL,
          OFF(print_config),
          "false",
          "print the effective config as YAML and exit" },
        { P_PLUGIN,
          "rescan",
          {},
          {},
          T_BOOL,
          OFF(rescan),
          "false",
          "ask the running plugin (same --kubelet-socket) to read the GPUs again, e.g. after a MIG "
          "change, and exit" },
        { P_BOTH,
          "strict-config",
          {},
          { "STRICT_CONFIG" },
          T_BOOL,
          OFF(strict_config),
          "false",
          "refuse a config file with a key nvdp does not know (default: warn and ignore it, as upstream "
          "ignores it)" },
        { P_ALL,
          "root",
          {},
          { "NVDP_ROOT" },
          T_STRING,
          OFF(flags.root),
          "/",
          "the host root under which /proc and /sys are read" },
};

static bool flag_is_slice(const struct flag *f)
{
        return f->type == T_LIST_STRATEGY || f->type == T_IMEX || f->type == T_STRV;
}

static const struct flag *flag_find(enum nvdp_program p, const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                const struct flag *f = &flags[i];
                if (!(f->programs & (1u << p)))
                        continue;
                if (streq(f->name, name))
                        return f;
                for (size_t a = 0; a < ELEMENTSOF(f->aliases); a++)
                        if (f->aliases[a] && streq(f->aliases[a], name))
                                return f;
        }
        return NULL;
}

static const char *program_name(enum nvdp_program p)
{
        return p == PROGRAM_GFD   ? "gpu-feature-discovery"
               : p == PROGRAM_MPS ? "mps-control-daemon"
               : p == PROGRAM_DRA ? "nvdp dra"
                                  : "nvidia-device-plugin";
}

enum log_format config_log_format(int argc, char **argv)
{
        const char *value = getenv("LOG_FORMAT");
        for (int i = 1; i < argc && !streq(argv[i], "--"); i++) {
                const char *a = argv[i];
                const char *name = a[0] == '-' ? a + (a[1] == '-' ? 2 : 1) : NULL;
                const char *v =
                        name && startswith(name, "log-format=") ? name + strlen("log-format=") : NULL;
                if (v)
                        value = v;
                else if (name && streq(name, "log-format") && i + 1 < argc)
                        value = argv[++i];
        }
        enum log_format f;
        return value && log_format_from_string(value, &f) >= 0 ? f : LOG_FORMAT_KLOG;
}

int config_help(enum nvdp_program p, const char *argv0, FILE *f)
{
        fprintf(f, "Usage: %s [OPTIONS]\n\n", argv0 && p != PROGRAM_DRA ? argv0 : program_name(p));
        fprintf(f, "Options (flag > env var > config file > default):\n");
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                const struct flag *fl = &flags[i];
                if (!(fl->programs & (1u << p)))
                        continue;
                const char *arg = fl->type == T_BOOL ? "" : " value";
                fprintf(f, "  --%s%s", fl->name, arg);
                for (size_t a = 0; a < ELEMENTSOF(fl->aliases); a++)
                        if (fl->aliases[a])
                                fprintf(f, ", %s%s%s", strlen(fl->aliases[a]) == 1 ? "-" : "--",
                                        fl->aliases[a], arg);
                fprintf(f, "\n        %s (default: %s)", fl->usage, isempty(fl->def) ? "\"\"" : fl->def);
                for (size_t e = 0; e < ELEMENTSOF(fl->envs); e++)
                        if (fl->envs[e])
                                fprintf(f, "%s$%s", e == 0 ? " [" : ", ", fl->envs[e]);
                fprintf(f, "%s\n", fl->envs[0] ? "]" : "");
        }
        fprintf(f, "  --help, -h\n        show help\n  --version, -v\n        print the version\n");
        return 0;
}

/* Where a value came from, for the error message. */
struct origin {
        const struct flag *flag;
        const char *env; /* NULL: the command line */
};

_printf_(3, 4) static int bad_value(char **ret_error, const struct origin *o, const char *fmt, ...)
{
        _cleanup_free_ char *why = format_va(fmt);
        if (!why)
                return -ENOMEM;
        if (o->env)
                return error_set(ret_error, -EINVAL, "invalid value for $%s (--%s): %s", o->env,
                                 o->flag->name, why);
        return error_set(ret_error, -EINVAL, "invalid value for --%s: %s", o->flag->name, why);
}

static void *field(config *c, const struct flag *f)
{
        return (char *)c + f->offset;
}

/* values: every value given (repeats, each split on commas for slice flags); scalars use the last. */
static int flag_apply(config *c, enum nvdp_program p, const struct origin *o, char **values,
                      char **ret_error)
{
        const struct flag *f = o->flag;
        const char *v = values[strv_length(values) - 1];
        uint64_t u;
        int r = 0;

        switch (f->type) {
        case T_BOOL:
                if (parse_bool(v, field(c, f)) < 0)
                        return bad_value(ret_error, o, "must be true or false, got \"%s\"", v);
                return 0;
        case T_STRING: return set_string(field(c, f), v);
        case T_OPTSTRING: return set_string(field(c, f), isempty(v) ? NULL : v);
        case T_DURATION:
                if (parse_duration(v, field(c, f)) < 0)
                        return bad_value(ret_error, o,
                                         "must be a duration such as 60s, 5m or infinite, got \"%s\"", v);
                return 0;
        case T_UINT:
                if (parse_uint64(v, &u) < 0 || u > 1000000)
                        return bad_value(ret_error, o, "must be a non-negative integer, got \"%s\"", v);
                *(unsigned *)field(c, f) = (unsigned)u;
                return 0;
        case T_MIG:
                if (mig_strategy_from_string(v, &c->flags.mig_strategy) < 0)
                        return bad_value(ret_error, o, "must be one of none, single, mixed, got \"%s\"", v);
                return 0;
        case T_ID_STRATEGY:
                if (device_id_strategy_from_string(v, &c->flags.plugin.device_id_strategy) < 0)
                        return bad_value(ret_error, o, "must be uuid or index, got \"%s\"", v);
                return 0;
        case T_ALLOCATION:
                if (allocation_policy_from_string(v, &c->flags.plugin.shared_devices_allocation_policy) < 0)
                        return bad_value(ret_error, o, "must be distributed or packed, got \"%s\"", v);
                return 0;
        case T_HEALTH:
                if (health_policy_from_string(v, &c->flags.plugin.health_policy) < 0)
                        return bad_value(ret_error, o, "must be catalog or upstream, got \"%s\"", v);
                return 0;
        case T_LOG_FORMAT:
                if (log_format_from_string(v, &c->flags.log_format) < 0)
                        return bad_value(ret_error, o, "must be klog or json, got \"%s\"", v);
                return 0;
        case T_DISCOVERY:
                if (!device_discovery_strategy_valid(v, p == PROGRAM_GFD))
                        return bad_value(ret_error, o, "must be one of auto, nvml, tegra%s, got \"%s\"",
                                         p == PROGRAM_GFD ? ", vfio" : "", v);
                return set_string(&c->flags.device_discovery_strategy, v);
        case T_LIST_STRATEGY: {
                unsigned bits = 0, bit;
                STRV_FOREACH (s, values) {
                        if (device_list_strategy_from_string(*s, &bit) < 0)
                                return bad_value(
                                        ret_error, o,
                                        "must be envvar, volume-mounts, cdi-annotations or cdi-cri, "
                                        "got \"%s\"",
                                        *s);
                        bits |= bit;
                }
                c->flags.plugin.device_list_strategy = bits;
                return 0;
        }
        case T_IMEX: {
                size_t n = strv_length(values);
                if (n > 1 || (n == 1 && !streq(values[0], "0")))
                        return bad_value(ret_error, o, "only channel 0 is supported, got \"%s\"", v);
                free(c->imex.channel_ids);
                c->imex.channel_ids = n ? new0(unsigned, 1) : NULL;
                if (n && !c->imex.channel_ids)
                        return -ENOMEM;
                c->imex.n_channel_ids = n;
                return 0;
        }
        case T_STRV: {
                char **copy = strv_copy(values);
                if (!copy)
                        return -ENOMEM;
                strv_free(*(char ***)field(c, f));
                *(char ***)field(c, f) = copy;
                return 0;
        }
        case T_OUTPUT:
                if (streq(v, "node")) {
                        c->flags.gfd.output_node = true;
                        return 0;
                }
                c->flags.gfd.output_node = false;
                return set_string(&c->flags.gfd.output_file, v);
        case T_CONFIG_FILE: return 0;
        }
        return r;
}

/* The values a flag gets from its env vars (first one set wins, as urfave/cli), or NULL. */
static int env_values(const struct flag *f, char ***ret, const char **ret_env)
{
        for (size_t e = 0; e < ELEMENTSOF(f->envs) && f->envs[e]; e++) {
                const char *v = getenv(f->envs[e]);
                if (!v)
                        continue;
                /* Only strings take an empty value (KUBELET_SOCKET="" turns registration off). */
                if (isempty(v) && f->type != T_STRING && f->type != T_OPTSTRING && f->type != T_OUTPUT)
                        continue;
                _cleanup_strv_free_ char **l = NULL;
                int r = flag_is_slice(f) ? strv_split(v, ",", &l) : strv_extend(&l, v);
                if (r < 0)
                        return r;
                if (strv_length(l) == 0 && f->type != T_IMEX && f->type != T_STRV)
                        continue;
                *ret = TAKE_PTR(l);
                *ret_env = f->envs[e];
                return 1;
        }
        return 0;
}

/* Upstream's validateFlags, less the NVML check for CDI strategies (the plugin does that). */
static int config_validate(const config *c, enum nvdp_program p, char **ret_error)
{
        /* Accepted as upstream's values, but nvdp finds devices through NVML only: running with them would
         * advertise or label what NVML sees instead of what was asked for. */
        const char *discovery = c->flags.device_discovery_strategy;
        if (streq(strempty(discovery), "tegra"))
                return error_set(ret_error, -EOPNOTSUPP,
                                 "--device-discovery-strategy=tegra (DEVICE_DISCOVERY_STRATEGY, "
                                 "flags.deviceDiscoveryStrategy) is not implemented by nvdp yet: Jetson and "
                                 "other Tegra systems without NVML need NVIDIA's %s; use auto or nvml",
                                 p == PROGRAM_GFD ? "gpu-feature-discovery" : "device plugin");
        if (streq(strempty(discovery), "vfio"))
                return error_set(ret_error, -EOPNOTSUPP,
                                 "--device-discovery-strategy=vfio (DEVICE_DISCOVERY_STRATEGY, "
                                 "flags.deviceDiscoveryStrategy) is not implemented by nvdp yet: GPUs bound "
                                 "to vfio-pci need NVIDIA's gpu-feature-discovery; use auto or nvml");
        if (p == PROGRAM_DRA && isempty(c->flags.dra.node_name))
                return error_set(
                        ret_error, -EINVAL,
                        "--node-name (NODE_NAME) is required: the node whose GPUs this driver publishes");
        if (p == PROGRAM_GFD || p == PROGRAM_DRA)
                return 0;
        if (c->sharing.strategy == SHARING_MPS && c->flags.mig_strategy == MIG_STRATEGY_MIXED)
                return error_set(ret_error, -EINVAL,
                                 "invalid --mig-strategy=mixed: MPS sharing (sharing.mps in %s) "
                                 "does not support the mixed MIG strategy",
                                 strna(c->config_file));
        if (p == PROGRAM_PLUGIN && c->sharing.strategy == SHARING_MPS && isempty(c->flags.mps_root))
                return error_set(ret_error, -EINVAL,
                                 "MPS sharing (sharing.mps in %s) requires --mps-root (MPS_ROOT)",
                                 strna(c->config_file));
        return 0;
}

static void cli_values_free(char ***v)
{
        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                strv_free(v[i]);
}

int config_from_args(enum nvdp_program p, int argc, char **argv, config **ret, char **ret_error)
{
        return config_from_args_selected(p, argc, argv, NULL, ret, ret_error);
}

/* The command line into cli[i] (the values of flags[i], NULL when not given). Returns 1 after --help or
 * --version (printed). */
static int parse_command_line(enum nvdp_program p, int argc, char **argv, char **cli[], char **ret_error)
{
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--")) {
                        if (i + 1 < argc)
                                return error_set(ret_error, -EINVAL, "unexpected argument \"%s\"",
                                                 argv[i + 1]);
                        break;
                }
                if (a[0] != '-' || a[1] == '\0')
                        return error_set(ret_error, -EINVAL, "unexpected argument \"%s\"", a);
                const char *name = a + (a[1] == '-' ? 2 : 1);
                const char *eq = strchr(name, '=');
                _cleanup_free_ char *n = eq ? strndup(name, (size_t)(eq - name)) : strdup(name);
                if (!n)
                        return -ENOMEM;
                if (streq(n, "help") || streq(n, "h")) {
                        config_help(p, argv[0], stdout);
                        return 1;
                }
                if (streq(n, "version") || streq(n, "v")) {
                        printf("%s version %s\n", program_name(p), NVDP_VERSION);
                        return 1;
                }
                const struct flag *f = flag_find(p, n);
                if (!f)
                        return error_set(ret_error, -EINVAL, "unknown flag %s", a);
                const char *value;
                if (eq)
                        value = eq + 1;
                else if (f->type == T_BOOL)
                        value = "true";
                else if (i + 1 < argc)
                        value = argv[++i];
                else
                        return error_set(ret_error, -EINVAL, "flag --%s needs a value", f->name);
                size_t idx = (size_t)(f - flags);
                int r;
                if (flag_is_slice(f)) {
                        _cleanup_strv_free_ char **parts = NULL;
                        r = strv_split(value, ",", &parts);
                        STRV_FOREACH (s, parts)
                                if (r >= 0)
                                        r = strv_extend(&cli[idx], *s);
                        if (r >= 0 && !cli[idx])
                                r = (cli[idx] = new0(char *, 1)) ? 0 : -ENOMEM;
                } else {
                        /* A scalar keeps only its last value. */
                        cli[idx] = strv_free(cli[idx]);
                        r = strv_extend(&cli[idx], value);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* --strict-config says how the config file is read, so it applies before the file. */
static int apply_strict_config(config *c, enum nvdp_program p, char **cli[], char **ret_error)
{
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                const struct flag *f = &flags[i];
                if (f->offset != OFF(strict_config) || f->type != T_BOOL || !(f->programs & (1u << p)))
                        continue;
                struct origin o = { .flag = f };
                _cleanup_strv_free_ char **ev = NULL;
                char **values = cli[i];
                if (!values) {
                        int r = env_values(f, &ev, &o.env);
                        if (r < 0)
                                return r;
                        values = ev;
                }
                if (strv_length(values) > 0)
                        return flag_apply(c, p, &o, values, ret_error);
        }
        return 0;
}

/* The config file first (flags and env vars apply over it): the flag, its env var, else the file the
 * node label selected. */
static int load_config_file(config *c, enum nvdp_program p, char **cli[], const char *selected_file,
                            char **ret_error)
{
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                const struct flag *f = &flags[i];
                if (f->type != T_CONFIG_FILE || !(f->programs & (1u << p)))
                        continue;
                _cleanup_strv_free_ char **ev = NULL;
                const char *env = NULL, *path = NULL;
                if (cli[i])
                        path = cli[i][0];
                else {
                        int r = env_values(f, &ev, &env);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                path = ev[0];
                }
                if (!path)
                        path = selected_file;
                if (!isempty(path)) {
                        int r = config_load_file(c, path, ret_error);
                        if (r < 0)
                                return r;
                        free(c->config_source);
                        if ((cli[i] ? asprintf(&c->config_source, "config file %s (--%s)", path, f->name)
                             : env  ? asprintf(&c->config_source, "config file %s (%s)", path, env)
                                    : asprintf(&c->config_source, "config file %s", path)) < 0) {
                                c->config_source = NULL;
                                return -ENOMEM;
                        }
                }
        }
        return 0;
}

/* Every flag given on the command line, else by its env var. */
static int apply_flags(config *c, enum nvdp_program p, char **cli[], char **ret_error)
{
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                const struct flag *f = &flags[i];
                if (!(f->programs & (1u << p)) || f->type == T_CONFIG_FILE)
                        continue;
                struct origin o = { .flag = f };
                _cleanup_strv_free_ char **ev = NULL;
                char **values = cli[i];
                int r;
                if (!values) {
                        r = env_values(f, &ev, &o.env);
                        if (r < 0)
                                return r;
                        values = ev;
                }
                if (!values)
                        continue;
                if (strv_length(values) == 0) {
                        /* An empty slice ("--imex-channel-ids=" or IMEX_CHANNEL_IDS=""): none. */
                        if (f->type == T_IMEX) {
                                c->imex.channel_ids = mfree(c->imex.channel_ids);
                                c->imex.n_channel_ids = 0;
                        } else if (f->type == T_STRV)
                                *(char ***)field(c, f) = strv_free(*(char ***)field(c, f));
                        else
                                return bad_value(ret_error, &o, "must name at least one value");
                        continue;
                }
                r = flag_apply(c, p, &o, values, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

int config_from_args_selected(enum nvdp_program p, int argc, char **argv, const char *selected_file,
                              config **ret, char **ret_error)
{
        char **cli[ELEMENTSOF(flags)] = {};
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *err = NULL;
        int r = parse_command_line(p, argc, argv, cli, &err);
        if (r == 0)
                r = config_new_default(&c);
        if (r == 0)
                r = apply_strict_config(c, p, cli, &err);
        if (r == 0)
                r = load_config_file(c, p, cli, selected_file, &err);
        if (r == 0)
                r = apply_flags(c, p, cli, &err);
        if (r == 0 && !c->flags.nvidia_dev_root)
                r = set_string(&c->flags.nvidia_dev_root, c->flags.nvidia_driver_root);
        if (r == 0)
                r = config_validate(c, p, &err);
        if (r == 0 && !c->config_source)
                r = set_string(&c->config_source, "no config file (defaults)");
        cli_values_free(cli);
        if (r < 0 && ret_error)
                *ret_error = TAKE_PTR(err);
        if (r == 0)
                *ret = TAKE_PTR(c);
        return r;
}
