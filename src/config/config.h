/* SPDX-License-Identifier: Apache-2.0 */
/* The effective configuration: upstream's config file v1 (reference 1.4) plus its flags and env vars,
 * with precedence flag = env > file > default, typed into one struct. Nothing walks YAML elsewhere. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "base/log.h"
#include "base/macro.h"
#include "gpu/node.h"

enum mig_strategy { MIG_STRATEGY_NONE, MIG_STRATEGY_SINGLE, MIG_STRATEGY_MIXED };
enum device_id_strategy { DEVICE_ID_UUID, DEVICE_ID_INDEX };
/* A bit set: strategies combine ("envvar,cdi-annotations"). */
enum device_list_strategy {
        DEVICE_LIST_ENVVAR = 1 << 0,
        DEVICE_LIST_VOLUME_MOUNTS = 1 << 1,
        DEVICE_LIST_CDI_ANNOTATIONS = 1 << 2,
        DEVICE_LIST_CDI_CRI = 1 << 3,
};
enum sharing_strategy { SHARING_NONE, SHARING_TIME_SLICING, SHARING_MPS };
enum allocation_policy { ALLOCATION_DISTRIBUTED, ALLOCATION_PACKED };
enum health_policy { HEALTH_POLICY_CATALOG, HEALTH_POLICY_UPSTREAM };
/* Which upstream program's flag set config_from_args() speaks. */
enum nvdp_program { PROGRAM_PLUGIN, PROGRAM_GFD, PROGRAM_MPS, PROGRAM_DRA };

/* One entry of sharing.timeSlicing.resources / sharing.mps.resources. */
struct replicated_resource {
        char *name;        /* full name: "nvidia.com/gpu" ("gpu" in the file gets the prefix) */
        char *rename;      /* full name or NULL; "<name>.shared" with renameByDefault */
        unsigned replicas; /* >= 2 */
        /* devices: all (default), a count of GPUs, or a list of GPU indexes, "i:j" MIG indexes, UUIDs */
        bool devices_all;
        unsigned devices_count;
        char **devices_list;
};

typedef struct config {
        struct {
                enum mig_strategy mig_strategy;
                bool fail_on_init_error;
                char *mps_root;
                char *nvidia_driver_root;
                char *nvidia_dev_root; /* defaults to nvidia_driver_root */
                bool gdrcopy_enabled, gds_enabled, mofed_enabled;
                bool use_node_feature_api;
                char *device_discovery_strategy; /* "auto" | "nvml" | "tegra" (GFD also "vfio") */
                char *root;                      /* ours: host root for /proc and /sys reads; "/" */
                enum log_format log_format;      /* ours: klog (default) | json */
                struct {
                        bool pass_device_specs;
                        unsigned device_list_strategy; /* enum device_list_strategy bits */
                        enum device_id_strategy device_id_strategy;
                        char *cdi_annotation_prefix; /* "cdi.k8s.io/" */
                        char *nvidia_ctk_path;       /* nvidia-cdi-hook path */
                        char *container_driver_root; /* "/driver-root" */
                        enum allocation_policy shared_devices_allocation_policy;
                        char *kubelet_socket;              /* "" = do not register */
                        enum health_policy health_policy;  /* ours */
                        uint64_t health_recovery_interval; /* ours, nsec; default 5m */
                        char *metrics_address;             /* ours; NULL = off */
                        char *health_address;              /* ours; NULL = off */
                        char **cdi_feature_flags;          /* passed to CDI spec generation */
                        char **cdi_disable_hooks;          /* OCI hooks to omit; "all" = none */
                        char *cdi_spec_dir;                /* ours: where the CDI spec is written */
                        bool node_events; /* ours: Events on the Node for health changes (with NODE_NAME) */
                } plugin;
                struct {
                        bool oneshot, no_timestamp;
                        uint64_t sleep_interval; /* nsec; DURATION_INFINITE */
                        char *output_file;       /* "" = stdout */
                        char *machine_type_file;
                        bool output_node; /* ours: --output=node, labels go to the Node object */
                        char *kubeconfig; /* NULL = in-cluster */
                        unsigned kube_api_qps, kube_api_burst;
                        char *namespace; /* "default" */
                        char *node_name, *pod_name;
                } gfd;
                struct {
                        char *node_name;     /* required: the node whose GPUs are published */
                        char *kubeconfig;    /* NULL: in-cluster, else $KUBECONFIG */
                        char *registrar_dir; /* the kubelet's plugins_registry */
                        char *plugins_dir;   /* the kubelet's plugins dir; ours is <it>/gpu.nvidia.com */
                        char *cdi_root;      /* where claim CDI specs go */
                } dra;
        } flags;
        struct {
                /* mps if sharing.mps has resources, else time-slicing, else none */
                enum sharing_strategy strategy;
                bool rename_by_default;
                bool fail_requests_greater_than_one;
                struct replicated_resource *resources;
                size_t n_resources;
        } sharing;
        struct {
                unsigned *channel_ids; /* [] or [0] */
                size_t n_channel_ids;
                bool required;
        } imex;
        char *config_file; /* the file this came from, or NULL */
        /* ours, for the log: which config and why it was chosen, "config file /etc/c.yaml (--config-file)",
         * "config \"mps-4\" (node label nvidia.com/device-plugin.config=mps-4)", "no config file (defaults)"
         */
        char *config_source;
        bool print_config; /* ours: --print-config; the caller prints config_format_yaml() and exits 0 */
        bool rescan;       /* ours: --rescan (plugin); the caller signals the running plugin and exits */
        /* ours: --strict-config. Set before config_load_file(): an unknown key in the file is an error.
         * Otherwise it is ignored, as upstream ignores it, with a warning naming it (in warnings). */
        bool strict_config;
        /* Things a person should know that are not errors (e.g. "resources.gpus is ignored");
         * library code does not log, so the caller logs these at warning level. */
        char **warnings;
} config;

/* Defaults exactly as upstream. */
int config_new_default(config **ret);
config *config_free(config *c);
/* What node_open() needs: --root, --driver-root and --driver-root-ctr-path (borrowed from c). */
struct node_roots config_node_roots(const config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(config *, config_free);

/* Parses a config file (YAML or JSON) over c. On error, *ret_error says "<file>:<line>: <key>: <why>".
 * An unknown key is an error with c->strict_config, else a warning appended to c->warnings
 * ("<file>:<line>: <key>: unknown key, ignored", with a "did you mean" where a known key is close). */
int config_load_file(config *c, const char *path, char **ret_error);

/* Flags and env vars of program p (upstream's names, aliases and defaults, plus ours) over the config
 * file they name over the defaults: flag = env > file > default, then upstream's validateFlags
 * (except "CDI strategies need NVML", which the plugin checks once NVML is loaded).
 * argv[0] is the program name. Returns 0 with *ret; 1 when --help or --version was printed to stdout
 * and the caller should exit 0; <0 with a sentence in *ret_error naming the flag/key and value. */
int config_from_args(enum nvdp_program p, int argc, char **argv, config **ret, char **ret_error);
/* The --help text of program p: every flag with its aliases, env vars and default. */
/* As config_from_args; when neither --config-file nor its env var names a file, selected_file (the
 * per-node choice of config_select_file) is the config file. */
int config_from_args_selected(enum nvdp_program p, int argc, char **argv, const char *selected_file,
                              config **ret, char **ret_error);

/* Per-node config selection, as upstream's config-manager: among the files of srcdir (a mounted
 * ConfigMap; names starting with ".." are the volume's own), the one named by the node label's value,
 * else default_name, else the fallbacks in order ("named": a config called "default"; "single": the
 * only config; "empty": no config, i.e. /dev/null). A label value naming no file is an error (the
 * caller keeps its running config). Returns the path in *ret and, in *ret_why (optional), why it was
 * chosen: "node label nvidia.com/device-plugin.config=x", "DEFAULT_CONFIG=x", "fallback \"named\"". */
int config_select_file(const char *srcdir, const char *label_value, const char *default_name,
                       const char *fallbacks, char **ret, char **ret_why, char **ret_error);

/* What the daemons call: config_from_args, and in the chart's per-node mode (env CONFIG_FILE_SRCDIR,
 * DEFAULT_CONFIG, FALLBACK_STRATEGIES) the config file chosen by config_select_file for node_label
 * (the node's nvidia.com/device-plugin.config label; NULL when unknown). */
int config_from_env_and_args(enum nvdp_program p, int argc, char **argv, const char *node_label,
                             config **ret, char **ret_error);

/* The log format that --log-format / LOG_FORMAT ask for, read from the command line and the environment
 * alone (klog when absent or not understood): the format of an error about the rest of the command line
 * or the config, before they could be read. */
enum log_format config_log_format(int argc, char **argv);
int config_help(enum nvdp_program p, const char *argv0, FILE *f);

/* The effective config as YAML in upstream's v1 layout plus our keys (what --print-config shows).
 * The result loads back with config_load_file(). */
int config_format_yaml(const config *c, char **ret);

/* Enum <-> string, for flags, files and --print-config. */
int mig_strategy_from_string(const char *s, enum mig_strategy *ret);
const char *mig_strategy_to_string(enum mig_strategy s);
int device_id_strategy_from_string(const char *s, enum device_id_strategy *ret);
const char *device_id_strategy_to_string(enum device_id_strategy s);
/* One strategy name -> its bit; a comma list is split by the caller. */
int device_list_strategy_from_string(const char *s, unsigned *ret_bit);
const char *sharing_strategy_to_string(enum sharing_strategy s); /* "none" | "time-slicing" | "mps" */
int allocation_policy_from_string(const char *s, enum allocation_policy *ret);
const char *allocation_policy_to_string(enum allocation_policy s);
int health_policy_from_string(const char *s, enum health_policy *ret);
const char *health_policy_to_string(enum health_policy s);
