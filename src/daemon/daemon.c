/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/daemon.h"

#include <signal.h>
#include <sys/stat.h>

#include "base/filewatch.h"
#include "base/log.h"
#include "base/strv.h"
#include "daemon/mps-gate.h"
#include "daemon/node-config.h"
#include "daemon/node-reporter.h"
#include "daemon/plugin-metrics.h"
#include "gpu/node.h"
#include "health/health.h"
#include "kube/kube.h"
#include "plugin/plugin.h"

struct daemon {
        loop *loop;
        config *config;
        daemon_load_config_fn load_config;
        void *userdata;
        struct node *node;      /* NULL when NVML could not be loaded and failOnInitError is false */
        char **control_devices; /* existing /dev/nvidiactl, ... (checked once) */
        plugin *plugin;
        mps_gate *mps_gate;      /* holds MPS resources back while their control daemon is not ready */
        plugin_metrics *metrics; /* NULL: --metrics-address is empty */
        health_monitor *health;  /* NULL: health checks off */
        file_watch *config_watch;
        kube_client *kube; /* made on first use: the node label watch, Node events */
        node_config_watch *node_config;
        node_reporter *reporter; /* NULL: no Node events */
};

static const inventory *daemon_inventory(const struct daemon *d)
{
        return d->node ? d->node->inventory : NULL;
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

/* ---- reload ------------------------------------------------------------------------------------ */

static void reload(struct daemon *d, const char *why)
{
        config *c = NULL;
        _cleanup_free_ char *error = NULL;
        log_info("%s, reloading the configuration", why);
        int r = d->load_config(node_config_watch_value(d->node_config), &c, &error, d->userdata);
        if (r < 0 || !c) {
                log_error("Configuration reload failed, keeping the running one: %s",
                          error ? error : strerror(r < 0 ? -r : EINVAL));
                plugin_metrics_reload(d->metrics, false);
                return;
        }
        STRV_FOREACH (w, c->warnings)
                log_warning("%s", *w);
        /* The new config is the daemon's while the plugin applies it: on_plan_changed reads it. */
        config *old = d->config;
        d->config = c;
        r = plugin_reload(d->plugin, c);
        if (r >= 0)
                config_free(old);
        else {
                d->config = old;
                config_free(c);
        }
        plugin_metrics_reload(d->metrics, r >= 0);
}

static void on_reload_signal(loop_source *s, int signo, void *userdata)
{
        reload(userdata, "Received SIGHUP");
}

static void on_config_changed(file_watch *w, void *userdata)
{
        struct daemon *d = userdata;
        _cleanup_free_ char *why = NULL;
        if (asprintf(&why, "%s changed", d->config->config_file) < 0)
                return;
        reload(d, why);
}

static void on_exit_signal(loop_source *s, int signo, void *userdata)
{
        log_info("Received signal %d, shutting down", signo);
        loop_exit(loop_source_get_loop(s), 0);
}

/* ---- the Node: its config label, its events ------------------------------------------------------ */

/* The daemon's one API client (one connection), made on first use. */
static int daemon_kube(struct daemon *d, char **ret_error)
{
        if (d->kube)
                return 0;
        return kube_client_new_from_env(d->loop, getenv("KUBECONFIG"), &d->kube, ret_error);
}

/* A new value of the node label selects another config. */
static void on_node_config(const char *why, void *userdata)
{
        reload(userdata, why);
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

/* ---- health ------------------------------------------------------------------------------------ */

static void on_health_changed(health_monitor *m, void *userdata)
{
        struct daemon *d = userdata;
        plugin_health_changed(d->plugin);
        node_reporter_sync(d->reporter, daemon_inventory(d), health_monitor_tracker(m));
}

/* Health checks read upstream's env vars directly, as upstream does. */
static int start_health(struct daemon *d)
{
        if (!d->node)
                return 0;
        struct health_monitor_options o = {
                .policy = d->config->flags.plugin.health_policy,
                .recovery_interval = d->config->flags.plugin.health_recovery_interval,
                .disable_env = getenv("DP_DISABLE_HEALTHCHECKS"),
                .enable_env = getenv("DP_ENABLE_HEALTHCHECKS"),
        };
        int r = health_monitor_start(d->loop, d->node->nvml, d->node->inventory, &o, on_health_changed, d,
                                     &d->health);
        if (r < 0 || !d->health)
                return r;
        plugin_set_health(d->plugin, health_monitor_tracker(d->health));
        plugin_metrics_set_health(d->metrics, health_monitor_tracker(d->health));
        return 0;
}

/* ---- the plugin and its observer ----------------------------------------------------------------- */

static void on_allocate(const char *resource, bool ok, uint64_t nsec, void *userdata)
{
        struct daemon *d = userdata;
        plugin_metrics_allocate(d->metrics, resource, ok, nsec);
}

static void on_preferred(const char *resource, bool ok, uint64_t nsec, void *userdata)
{
        struct daemon *d = userdata;
        plugin_metrics_preferred(d->metrics, resource, ok, nsec);
}

static void on_registered(const char *resource, void *userdata)
{
        struct daemon *d = userdata;
        plugin_metrics_registered(d->metrics, resource);
}

static void on_kubelet_restart(void *userdata)
{
        struct daemon *d = userdata;
        plugin_metrics_kubelet_restart(d->metrics);
}

static bool plans_equal(const plan *a, const plan *b)
{
        if (!a || !b || a->n_resources != b->n_resources)
                return false;
        for (size_t i = 0; i < a->n_resources; i++)
                if (!plan_resource_equal(&a->resources[i], &b->resources[i]))
                        return false;
        return true;
}

/* One line at start and after every reload that took effect, for whoever reads the log: which config,
 * why it was chosen, what is advertised. */
static void log_plan(const struct daemon *d, const plan *old_plan, const plan *new_plan)
{
        _cleanup_free_ char *what = plan_describe(new_plan);
        log_info("Using %s; advertising %s%s", d->config->config_source, strna(what),
                 plans_equal(old_plan, new_plan) ? " (unchanged)" : "");
}

/* Every consumer of the plan (metrics read it at scrape time; the MPS readiness gate) hangs off this one
 * place. */
static void on_plan_changed(const plan *old_plan, const plan *new_plan, void *userdata)
{
        struct daemon *d = userdata;
        log_plan(d, old_plan, new_plan);
        _cleanup_free_ char *error = NULL;
        int r = mps_gate_set_plan(d->mps_gate, d->config->flags.mps_root, new_plan, &error);
        if (r < 0)
                log_error_errno(r, "Resources shared with MPS are not advertised: %s",
                                error ? error : strerror(-r));
}

/* ---- the MPS readiness gate ---------------------------------------------------------------------- */

static bool gate_ready(const struct plan_resource *r, void *userdata)
{
        struct daemon *d = userdata;
        return mps_gate_ready(d->mps_gate, r);
}

/* Whether the plugin serves resource already, and its device count. */
static bool resource_served(const struct daemon *d, const char *resource, size_t *ret_devices)
{
        const plan *p = plugin_plan(d->plugin);
        for (size_t i = 0; p && i < p->n_resources; i++)
                if (streq(p->resources[i].name, resource)) {
                        *ret_devices = p->resources[i].n_devices;
                        return plugin_resource_serving(d->plugin, i);
                }
        *ret_devices = 0;
        return false;
}

static void on_mps_gate(const char *resource, bool ready, const char *why, void *userdata)
{
        struct daemon *d = userdata;
        size_t n;
        bool served = resource_served(d, resource, &n);
        if (ready && !served)
                log_info("The MPS control daemon of %s is ready: advertising %s", resource, resource);
        else if (ready)
                log_info("The MPS control daemon of %s is ready: its %zu devices are Healthy again",
                         resource, n);
        else if (!served)
                log_info("%s waits for its MPS control daemon (%s): it is advertised once the daemon is "
                         "ready",
                         resource, why);
        else
                log_warning("The MPS control daemon of %s is not ready (%s): its %zu devices are Unhealthy "
                            "until it is",
                            resource, why, n);
        plugin_gate_changed(d->plugin);
}

static int new_plugin(struct daemon *d)
{
        static const struct plugin_observer observer = {
                .on_allocate = on_allocate,
                .on_preferred = on_preferred,
                .on_registered = on_registered,
                .on_kubelet_restart = on_kubelet_restart,
                .on_plan_changed = on_plan_changed,
        };
        struct plugin_observer o = observer;
        o.userdata = d;
        const char *kubelet_socket = d->config->flags.plugin.kubelet_socket;
        const struct plugin_gate gate = { gate_ready, d };
        struct plugin_options po = {
                .kubelet_socket = isempty(kubelet_socket) ? NULL : kubelet_socket,
                .control_devices = d->control_devices,
                .observer = &o,
                .gate = &gate,
        };
        return plugin_new(d->loop, d->config, daemon_inventory(d), &po, &d->plugin);
}

/* --metrics-address: /metrics and /healthz (off when empty). */
static int start_metrics(struct daemon *d)
{
        const char *address = d->config->flags.plugin.metrics_address;
        if (isempty(address))
                return 0;
        _cleanup_free_ char *error = NULL;
        int r = plugin_metrics_new(d->loop, d->plugin, daemon_inventory(d), &d->metrics);
        if (r >= 0)
                r = plugin_metrics_serve(d->metrics, address, &error);
        if (r < 0)
                return log_error_errno(r, "--metrics-address: %s", error ? error : strerror(-r));
        log_info("Serving /metrics and /healthz on %s (port %d)", address, plugin_metrics_port(d->metrics));
        return 0;
}

/* ---- start, run, stop ---------------------------------------------------------------------------- */

static int open_node(struct daemon *d)
{
        const config *c = d->config;
        _cleanup_free_ char *error = NULL;
        struct node_roots roots = config_node_roots(c);
        int r = node_open(&roots, &d->node, &error);
        if (r >= 0) {
                const inventory *inv = d->node->inventory;
                log_info("Found %zu GPUs (driver %s, CUDA %d.%d)", inv->n_gpus, inv->driver_version,
                         inv->cuda_driver_version / 1000, inv->cuda_driver_version % 1000 / 10);
                return 0;
        }
        if (c->flags.fail_on_init_error ||
            (c->flags.plugin.device_list_strategy & (DEVICE_LIST_CDI_ANNOTATIONS | DEVICE_LIST_CDI_CRI)))
                return log_error_errno(r, "could not load NVML library: %s%s", error ? error : strerror(-r),
                                       node_nvml_hint(r));
        log_warning("could not load NVML library: %s%s", error ? error : strerror(-r), node_nvml_hint(r));
        log_warning("failOnInitError is false: running without devices");
        log_info("Using %s; advertising nothing (no GPUs: NVML could not be loaded)", c->config_source);
        return 0;
}

static int add_signals(struct daemon *d)
{
        int r;
        if ((r = loop_add_signal(d->loop, SIGTERM, on_exit_signal, d, NULL)) < 0 ||
            (r = loop_add_signal(d->loop, SIGINT, on_exit_signal, d, NULL)) < 0 ||
            (r = loop_add_signal(d->loop, SIGQUIT, on_exit_signal, d, NULL)) < 0 ||
            (r = loop_add_signal(d->loop, SIGHUP, on_reload_signal, d, NULL)) < 0)
                return r;
        (void)signal(SIGPIPE, SIG_IGN);
        return 0;
}

static int daemon_start(struct daemon *d)
{
        static const int handled[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP, 0 };
        int r;
        /* Signals are blocked before NVML starts any thread (see signals_block). */
        if ((r = signals_block(handled)) < 0 || (r = loop_new(&d->loop)) < 0 ||
            (r = find_control_devices(&d->control_devices)) < 0 || (r = open_node(d)) < 0 ||
            (r = add_signals(d)) < 0 || (r = mps_gate_new(d->loop, on_mps_gate, d, &d->mps_gate)) < 0 ||
            (r = new_plugin(d)) < 0 || (r = start_metrics(d)) < 0 || (r = plugin_start(d->plugin)) < 0)
                return r;
        if (d->node)
                start_events(d);
        if ((r = start_health(d)) < 0)
                return r;
        node_config_watch_start(d->loop, &d->kube, on_node_config, d, &d->node_config);
        /* The config file is watched as named at start (a ConfigMap updates it by a symlink swap). */
        const char *file = d->config->config_file;
        if (!isempty(file) &&
            (r = file_watch_new(d->loop, file, on_config_changed, d, &d->config_watch)) < 0)
                log_warning_errno(r, "Cannot watch %s for changes (SIGHUP still reloads): %m", file);
        return 0;
}

static void daemon_stop(struct daemon *d)
{
        /* The plugin reads the tracker and the inventory: it goes before them. */
        d->plugin = plugin_free(d->plugin);
        d->mps_gate = mps_gate_free(d->mps_gate);
        d->health = health_monitor_free(d->health);
        file_watch_free(d->config_watch);
        d->reporter = node_reporter_free(d->reporter);
        d->node_config = node_config_watch_free(d->node_config);
        kube_client_free(d->kube);
        d->metrics = plugin_metrics_free(d->metrics);
        d->node = node_close(d->node);
        strv_free(d->control_devices);
        config_free(d->config);
        loop_free(d->loop);
}

int daemon_run(const struct daemon_options *o)
{
        struct daemon d = { .config = o->config, .load_config = o->load_config, .userdata = o->userdata };
        int ret = 1;
        int r = daemon_start(&d);
        if (r >= 0) {
                r = loop_run(d.loop);
                ret = r < 0 ? 1 : 0;
        }
        daemon_stop(&d);
        if (r < 0 && ret != 0)
                log_info("Exiting with an error");
        return ret;
}
