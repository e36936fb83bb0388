/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp plugin (also argv[0] nvidia-device-plugin): upstream's flags, then the daemon. */
#include <signal.h>
#include <sys/stat.h>

#include "base/filewatch.h"
#include "base/log.h"
#include "base/strv.h"
#include "cmd/cmd.h"
#include "config/config.h"
#include "gpu/inventory.h"
#include "health/health.h"
#include "kube/kube.h"
#include "metrics/node-reporter.h"
#include "metrics/plugin-metrics.h"
#include "nvml/nvml-loader.h"
#include "plugin/plugin.h"

struct daemon {
        plugin plugin;
        nvml *nvml;
        file_watch *config_watch;
        int argc;
        char **argv;
        char *node_config; /* value of the node label nvidia.com/device-plugin.config, NULL unknown */
        kube_client *kube; /* made on first use: the node label watch, Node events */
        kube_node_watch *node_watch;
        node_reporter *reporter; /* NULL: no Node events */
};

#define NODE_CONFIG_LABEL "nvidia.com/device-plugin.config"

static int load_config(struct daemon *d, config **ret, char **ret_error)
{
        return config_from_env_and_args(PROGRAM_PLUGIN, d->argc, d->argv, d->node_config, ret, ret_error);
}

/* Checked once: upstream stats these on every Allocate. */
static const char *const control_device_paths[] = {
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
        "/dev/nvidia-modeset",
};

static int find_control_devices(char ***ret)
{
        _cleanup_strv_free_ char **l = new0(char *, 1);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(control_device_paths); i++) {
                struct stat st;
                if (stat(control_device_paths[i], &st) < 0)
                        continue;
                int r = strv_extend(&l, control_device_paths[i]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static void on_exit_signal(loop_source *s, int signo, void *userdata)
{
        log_info("Received signal %d, shutting down", signo);
        loop_exit(loop_source_get_loop(s), 0);
}

static void reload(struct daemon *d, const char *why)
{
        config *c = NULL;
        _cleanup_free_ char *error = NULL;
        log_info("%s, reloading the configuration", why);
        int r = load_config(d, &c, &error);
        if (r < 0) {
                log_error("Configuration reload failed, keeping the running one: %s",
                          error ? error : strerror(-r));
                plugin_metrics_reload(d->plugin.metrics, false);
                return;
        }
        STRV_FOREACH (w, c->warnings)
                log_warning("%s", *w);
        r = plugin_reload(&d->plugin, c);
        plugin_metrics_reload(d->plugin.metrics, r >= 0);
}

/* The node's labels changed: a new value of nvidia.com/device-plugin.config selects another config. */
static void on_node_labels(char *const *labels, void *userdata)
{
        struct daemon *d = userdata;
        const char *value = NULL;
        STRV_FOREACH (kv, labels)
                if (startswith(*kv, NODE_CONFIG_LABEL "="))
                        value = *kv + strlen(NODE_CONFIG_LABEL "=");
        if (streq(strempty(value), strempty(d->node_config)))
                return;
        char *copy = value ? strdup(value) : NULL;
        if (value && !copy)
                return;
        free(d->node_config);
        d->node_config = copy;
        _cleanup_free_ char *why = NULL;
        if (asprintf(&why, "Node label %s is now \"%s\"", NODE_CONFIG_LABEL, strempty(value)) >= 0)
                reload(d, why);
}

static void on_node_watch_error(const char *error, void *userdata)
{
        log_warning("Watching this node's labels: %s (retrying)", error);
}

/* The daemon's one API client (one connection), made on first use. */
static int daemon_kube(struct daemon *d, char **ret_error)
{
        if (d->kube)
                return 0;
        return kube_client_new_from_env(d->plugin.loop, getenv("KUBECONFIG"), &d->kube, ret_error);
}

/* In the chart's per-node mode, follow the node label that selects the config. Without API access
 * the default config stays selected, as upstream's config-manager would fail instead. */
static void watch_node_config(struct daemon *d)
{
        const char *node = getenv("NODE_NAME");
        if (isempty(getenv("CONFIG_FILE_SRCDIR")) || isempty(node))
                return;
        _cleanup_free_ char *error = NULL;
        int r = daemon_kube(d, &error);
        if (r < 0) {
                log_warning("Cannot reach the API server (%s): the node label %s is not followed",
                            error ? error : strerror(-r), NODE_CONFIG_LABEL);
                return;
        }
        static const struct kube_node_watch_handler h = { on_node_labels, on_node_watch_error };
        r = kube_node_watch_new(d->kube, node, &h, d, &d->node_watch);
        if (r < 0)
                log_warning_errno(r, "Cannot watch node %s: %m", node);
}

static void on_health_changed(health_monitor *m, void *userdata)
{
        struct daemon *d = userdata;
        plugin_health_sync(&d->plugin, health_monitor_tracker(m));
        node_reporter_sync(d->reporter, d->plugin.inventory, health_monitor_tracker(m));
}

static void on_event_error(const char *error, void *userdata)
{
        log_warning("Node event not posted: %s", error);
}

/* Events on our Node for device health changes, when NODE_NAME is set and the API server configured. */
static void start_events(struct daemon *d)
{
        const char *node = getenv("NODE_NAME");
        _cleanup_free_ char *error = NULL;
        static const struct node_reporter_options o = { .on_error = on_event_error };
        int r = isempty(node) ? -ENOENT : daemon_kube(d, &error);
        if (r >= 0)
                r = node_reporter_new(d->kube, node, &o, &d->reporter, &error);
        if (isempty(node))
                log_info("No Node events for device health changes: NODE_NAME is not set");
        else if (r < 0)
                log_info("No Node events for device health changes: %s", error ? error : strerror(-r));
        else
                log_info("Posting Node events for device health changes on node %s", node);
}

/* Health checks read upstream's env vars directly, as upstream does. */
static int start_health(struct daemon *d)
{
        plugin *p = &d->plugin;
        if (!p->inventory)
                return 0;
        struct health_monitor_options o = {
                .policy = p->config->flags.plugin.health_policy,
                .recovery_interval = p->config->flags.plugin.health_recovery_interval,
                .disable_env = getenv("DP_DISABLE_HEALTHCHECKS"),
                .enable_env = getenv("DP_ENABLE_HEALTHCHECKS"),
        };
        return health_monitor_start(p->loop, d->nvml, p->inventory, &o, on_health_changed, d, &p->health);
}

static void on_reload_signal(loop_source *s, int signo, void *userdata)
{
        reload(userdata, "Received SIGHUP");
}

static void on_config_changed(file_watch *w, void *userdata)
{
        struct daemon *d = userdata;
        _cleanup_free_ char *why = NULL;
        if (asprintf(&why, "%s changed", d->plugin.config->config_file) < 0)
                return;
        reload(d, why);
}

/* --metrics-address: /metrics and /healthz (off when empty). */
static int start_metrics(plugin *p)
{
        const char *address = p->config->flags.plugin.metrics_address;
        if (isempty(address))
                return 0;
        _cleanup_free_ char *error = NULL;
        int r = plugin_metrics_new(p, &p->metrics);
        if (r >= 0)
                r = plugin_metrics_serve(p->metrics, address, &error);
        if (r < 0)
                return log_error_errno(r, "--metrics-address: %s", error ? error : strerror(-r));
        log_info("Serving /metrics and /healthz on %s (port %d)", address, plugin_metrics_port(p->metrics));
        return 0;
}

static int load_devices(struct daemon *d)
{
        const config *c = d->plugin.config;
        _cleanup_free_ char *error = NULL;
        /* The host driver root is mounted at the container path when it is not "/" (as upstream). */
        const char *search_root = NULL;
        if (c->flags.nvidia_driver_root && !streq(c->flags.nvidia_driver_root, "/"))
                search_root = c->flags.plugin.container_driver_root;
        int r = nvml_load(search_root, &d->nvml, &error);
        if (r >= 0)
                r = inventory_load(d->nvml, d->plugin.root, &d->plugin.inventory, &error);
        if (r >= 0) {
                log_info("Found %zu GPUs (driver %s, CUDA %d.%d)", d->plugin.inventory->n_gpus,
                         d->plugin.inventory->driver_version,
                         d->plugin.inventory->cuda_driver_version / 1000,
                         d->plugin.inventory->cuda_driver_version % 1000 / 10);
                return 0;
        }
        if (c->flags.fail_on_init_error ||
            (c->flags.plugin.device_list_strategy & (DEVICE_LIST_CDI_ANNOTATIONS | DEVICE_LIST_CDI_CRI)))
                return log_error_errno(r, "could not load NVML library: %s", error ? error : strerror(-r));
        log_warning("could not load NVML library: %s", error ? error : strerror(-r));
        log_warning("failOnInitError is false: running without devices");
        return 0;
}

int cmd_plugin(int argc, char **argv)
{
        struct daemon d = { .argc = argc, .argv = argv };
        plugin *p = &d.plugin;
        _cleanup_free_ char *error = NULL;
        int r, ret = 1;

        r = load_config(&d, &p->config, &error);
        if (r > 0)
                return 0;
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", streq(argv[0], "plugin") ? "nvdp plugin" : argv[0],
                        error ? error : strerror(-r));
                return 2;
        }
        if (p->config->print_config) {
                _cleanup_free_ char *yaml = NULL;
                r = config_format_yaml(p->config, &yaml);
                if (r >= 0)
                        fputs(yaml, stdout);
                config_free(p->config);
                return r < 0 ? 1 : 0;
        }
        log_set_format(p->config->flags.log_format);
        log_info("nvdp %s starting as a device plugin", NVDP_VERSION);
        STRV_FOREACH (w, p->config->warnings)
                log_warning("%s", *w);

        /* Copies: a reload replaces the config, these stay as started. */
        p->root = strdup(p->config->flags.root ? p->config->flags.root : "/");
        if (!isempty(p->config->flags.plugin.kubelet_socket))
                p->kubelet_socket = strdup(p->config->flags.plugin.kubelet_socket);
        if (!p->root || (!isempty(p->config->flags.plugin.kubelet_socket) && !p->kubelet_socket)) {
                r = -ENOMEM;
                goto finish;
        }
        static const int handled[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP, 0 };
        if ((r = signals_block(handled)) < 0 || (r = loop_new(&p->loop)) < 0 ||
            (r = find_control_devices(&p->control_devices)) < 0)
                goto finish;
        if ((r = load_devices(&d)) < 0)
                goto finish;
        if ((r = loop_add_signal(p->loop, SIGTERM, on_exit_signal, &d, NULL)) < 0 ||
            (r = loop_add_signal(p->loop, SIGINT, on_exit_signal, &d, NULL)) < 0 ||
            (r = loop_add_signal(p->loop, SIGQUIT, on_exit_signal, &d, NULL)) < 0 ||
            (r = loop_add_signal(p->loop, SIGHUP, on_reload_signal, &d, NULL)) < 0)
                goto finish;
        (void)signal(SIGPIPE, SIG_IGN);
        if ((r = start_metrics(p)) < 0 || (r = plugin_start(p)) < 0)
                goto finish;
        if (p->inventory)
                start_events(&d);
        if ((r = start_health(&d)) < 0)
                goto finish;
        watch_node_config(&d);
        /* The config file is watched as named at start (a ConfigMap updates it by a symlink swap). */
        if (!isempty(p->config->config_file) &&
            (r = file_watch_new(p->loop, p->config->config_file, on_config_changed, &d, &d.config_watch)) <
                    0)
                log_warning_errno(r, "Cannot watch %s for changes (SIGHUP still reloads): %m",
                                  p->config->config_file);
        r = loop_run(p->loop);
        ret = r < 0 ? 1 : 0;
finish:
        p->health = health_monitor_free(p->health);
        file_watch_free(d.config_watch);
        d.reporter = node_reporter_free(d.reporter);
        kube_node_watch_free(d.node_watch);
        kube_client_free(d.kube);
        free(d.node_config);
        p->metrics = plugin_metrics_free(p->metrics);
        plugin_stop(p);
        p->inventory = inventory_free(p->inventory);
        d.nvml = nvml_unload(d.nvml);
        strv_free(p->control_devices);
        free(p->root);
        free(p->kubelet_socket);
        config_free(p->config);
        loop_free(p->loop);
        if (r < 0 && ret != 0)
                log_info("Exiting with an error");
        return ret;
}
