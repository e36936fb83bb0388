/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin daemon's composition root: it opens the node (NVML and the inventory), wires the plugin
 * (src/plugin), health (src/health), metrics, Node events and the node-config label watch (src/kube)
 * together through observers, and owns reload and signals. Nothing below daemon/ knows the others. */
#pragma once

#include "config/config.h"

/* Loads the configuration again for a reload: flags and env as at start, the config file as it is now,
 * node_label the value of the Node label nvidia.com/device-plugin.config (NULL: unknown). Returns as
 * config_from_env_and_args(). */
typedef int (*daemon_load_config_fn)(const char *node_label, config **ret, char **ret_error, void *userdata);

struct daemon_options {
        config *config; /* the configuration loaded at start; taken */
        daemon_load_config_fn load_config;
        void *userdata;
};

/* Runs until SIGTERM, SIGINT or SIGQUIT. Returns the process exit code. */
int daemon_run(const struct daemon_options *o);

/* Where the running plugin records its pid for nvdp plugin --rescan: nvdp/plugin.pid in the directory of
 * its sockets (that of --kubelet-socket; a directory the kubelet leaves alone, on the host and mounted into
 * the plugin's pod), so that it is found from the pod and from the host, one plugin per socket directory. */
int daemon_pid_file(const config *c, char **ret);
