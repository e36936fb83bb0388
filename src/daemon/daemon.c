/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/daemon.h"

#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/filewatch.h"
#include "base/log.h"
#include "base/pidfile.h"
#include "base/strv.h"
#include "cdi/cdi.h"
#include "daemon/healthz.h"
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
        healthz_server *healthz; /* NULL: --health-address is empty */
        health_monitor *health;  /* NULL: health checks off */
        file_watch *config_watch;
        kube_client *kube; /* made on first use: the node label watch, Node events */
        node_config_watch *node_config;
        node_reporter *reporter; /* NULL: no Node events */
        char *cdi_error;         /* the CDI spec error line last logged (each is logged once) */
        bool cdi_flags_logged;
        char *pid_file; /* written at start, removed at exit */
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

/* ---- IMEX channels ------------------------------------------------------------------------------- */

/* Upstream's rule, at start and on each reload: a configured IMEX channel whose device node is missing is
 * dropped from c (Allocate and the CDI spec leave it out) with a warning, or, with --imex-required, fails.
 * The node is looked for where the CDI spec's device nodes come from (cdi_imex_channel_exists). */
static int imex_channels_resolve(config *c, char **ret_error)
{
        struct cdi_options o;
        cdi_options_from_config(c, &o);
        size_t kept = 0;
        for (size_t i = 0; i < c->imex.n_channel_ids; i++) {
                unsigned id = c->imex.channel_ids[i];
                _cleanup_free_ char *looked = NULL, *error = NULL;
                int r = cdi_imex_channel_exists(&o, id, &looked, &error);
                if (r == -ENOMEM)
                        return r;
                if (r > 0) {
                        c->imex.channel_ids[kept++] = id;
                        continue;
                }
                const char *why = r < 0 ? strna(error) : looked;
                if (c->imex.required)
                        return error_set(
                                ret_error, -ENOENT,
                                "requested IMEX channel %u does not exist (%s%s) and --imex-required "
                                "is set",
                                id, r < 0 ? "" : "looked at ", why);
                log_warning("Ignoring requested IMEX channel %u: it does not exist (%s%s)", id,
                            r < 0 ? "" : "looked at ", why);
        }
        c->imex.n_channel_ids = kept;
        return 0;
}

/* ---- the CDI spec ------------------------------------------------------------------------------- */

static bool cdi_strategy(const config *c)
{
        return c->flags.plugin.device_list_strategy & (DEVICE_LIST_CDI_ANNOTATIONS | DEVICE_LIST_CDI_CRI);
}

/* Whether every CDI name Allocate can return for plan p under c is a device of a spec already in dir: ours
 * from an earlier start, or another program's under the plugin's kind (nvidia-ctk cdi generate --vendor
 * k8s.device-plugin.nvidia.com --class gpu). 1 yes, 0 no. */
static int cdi_names_resolve(const plan *p, const config *c, const char *dir)
{
        _cleanup_strv_free_ char **names = NULL;
        struct cdi_spec_file *f = NULL;
        size_t n = 0;
        char *const dirs[] = { (char *)dir, NULL };
        int r = cdi_allocate_names(p, c, &names);
        if (r >= 0)
                r = cdi_spec_dirs_read(dirs, &f, &n);
        if (r < 0)
                return r;
        bool all = names[0] != NULL;
        STRV_FOREACH (name, names) {
                bool found = false;
                const char *eq = strchr(*name, '=');
                for (size_t i = 0; eq && !found && i < n; i++)
                        found = f[i].kind && strlen(f[i].kind) == (size_t)(eq - *name) &&
                                strneq(f[i].kind, *name, (size_t)(eq - *name)) &&
                                strv_contains(f[i].devices, eq + 1);
                all = all && found;
        }
        cdi_spec_files_free(f, n);
        return all;
}

/* Builds and writes the CDI spec of config c into its --cdi-spec-dir: the names Allocate's CDI strategies
 * return for plan p resolve there. A file already holding the same bytes is left alone, so a reload that
 * changes nothing the spec says changes no file. On failure the error is logged once (until another one);
 * unless the names resolve in the specs already there, Allocate leaves the CDI strategies out until a
 * later write succeeds. The spec stays on exit (docs/cdi.md). */
static void cdi_spec_sync(struct daemon *d, const config *c, const plan *p)
{
        _cleanup_(cdi_specs_freep) cdi_specs *s = NULL;
        _cleanup_free_ char *error = NULL, *line = NULL;
        /* The plugin's: after the GPUs were read again it is already the new one (a changed MIG layout),
         * while d->node is swapped once the reload took effect. */
        const inventory *inv = plugin_inventory(d->plugin);
        if (!inv || !cdi_strategy(c)) {
                d->cdi_error = mfree(d->cdi_error);
                (void)plugin_set_cdi_error(d->plugin, NULL);
                return;
        }
        if (!d->cdi_flags_logged && c->flags.plugin.cdi_feature_flags &&
            c->flags.plugin.cdi_feature_flags[0]) {
                _cleanup_free_ char *flags = strv_join(c->flags.plugin.cdi_feature_flags, ",");
                log_warning("--cdi-feature-flags %s: nvdp's CDI spec has no optional features, ignored",
                            strna(flags));
                d->cdi_flags_logged = true;
        }
        struct cdi_options o;
        cdi_options_from_config(c, &o);
        const char *dir = c->flags.plugin.cdi_spec_dir;
        int r = cdi_specs_build(inv, &o, &s, &error);
        if (r >= 0)
                r = cdi_spec_dir_write(dir, s, &error);
        if (r < 0) {
                if (!error && !(error = strdup(strerror(-r))))
                        return;
                int k = p ? cdi_names_resolve(p, c, dir) : 0;
                if (k > 0)
                        r = asprintf(&line,
                                     "CDI spec not written: %s; the CDI names Allocate returns resolve "
                                     "in the specs already in %s: Allocate keeps them",
                                     error, dir);
                else
                        r = asprintf(&line,
                                     "CDI spec not written: %s; Allocate leaves the CDI device-list "
                                     "strategies out until it is",
                                     error);
                if (r < 0)
                        return;
                if (!d->cdi_error || !streq(d->cdi_error, line))
                        log_error("%s", line);
                free(d->cdi_error);
                d->cdi_error = TAKE_PTR(line);
                (void)plugin_set_cdi_error(d->plugin, k > 0 ? NULL : error);
                return;
        }
        if (d->cdi_error)
                log_info("CDI spec written: Allocate passes devices by CDI again");
        d->cdi_error = mfree(d->cdi_error);
        (void)plugin_set_cdi_error(d->plugin, NULL);
        STRV_FOREACH (w, s->warnings)
                log_warning("CDI spec: %s", *w);
        for (size_t i = 0; r > 0 && i < s->n_specs; i++) {
                _cleanup_free_ char *name = NULL;
                if (cdi_spec_file_name(s->specs[i], &name) >= 0)
                        log_info("Wrote the CDI spec %s/%s (%zu devices; driver %s from the driver root %s, "
                                 "device nodes from the dev root %s)",
                                 dir, name, s->specs[i]->n_devices, inv->driver_version, s->driver_root,
                                 s->dev_root);
        }
}

/* ---- reload ------------------------------------------------------------------------------------ */

static int new_health(struct daemon *d, const config *c, const struct node *n, health_monitor **ret);
static void use_node(struct daemon *d, struct node *n, health_monitor *h);

/* The GPUs read again through node_open(), with c's roots: the new node when its devices differ from the
 * running ones (a changed MIG layout), NULL when they do not or it could not be read (logged: the running
 * devices stay). */
static struct node *read_gpus_again(struct daemon *d, const config *c)
{
        _cleanup_free_ char *error = NULL;
        struct node_roots roots = config_node_roots(c);
        struct node *n = NULL;
        int r = node_open(&roots, &n, &error);
        if (r < 0) {
                log_error("Reading the GPUs again failed, the devices stay as they were: %s%s",
                          error ? error : strerror(-r), node_nvml_hint(r));
                return NULL;
        }
        size_t was = d->node ? inventory_mig_devices(d->node->inventory) : 0;
        size_t now = inventory_mig_devices(n->inventory);
        if (d->node && inventory_same_devices(d->node->inventory, n->inventory)) {
                log_info("The GPUs and MIG devices are as they were (%zu GPUs, %zu MIG devices)",
                         n->inventory->n_gpus, now);
                return node_close(n);
        }
        log_info("The GPUs or MIG devices changed: %zu GPUs, %zu MIG devices (were %zu GPUs, %zu MIG "
                 "devices)",
                 n->inventory->n_gpus, now, d->node ? d->node->inventory->n_gpus : 0, was);
        return n;
}

/* The configuration loaded again and, with read_gpus, the GPUs read again: the plugin re-registers only
 * the resources whose devices changed. */
static void reload(struct daemon *d, const char *why, bool read_gpus)
{
        config *c = NULL;
        _cleanup_free_ char *error = NULL;
        log_info("%s, reloading the configuration%s", why, read_gpus ? " and reading the GPUs again" : "");
        int r = d->load_config(node_config_watch_value(d->node_config), &c, &error, d->userdata);
        if (r < 0 || !c) {
                log_error("Configuration reload failed, keeping the running one: %s",
                          error ? error : strerror(r < 0 ? -r : EINVAL));
                plugin_metrics_reload(d->metrics, false);
                return;
        }
        STRV_FOREACH (w, c->warnings)
                log_warning("%s", *w);
        if (d->node && (r = imex_channels_resolve(c, &error)) < 0) {
                log_error("Configuration reload failed, keeping the running one: %s",
                          error ? error : strerror(-r));
                config_free(c);
                plugin_metrics_reload(d->metrics, false);
                return;
        }
        _cleanup_(node_closep) struct node *n = read_gpus ? read_gpus_again(d, c) : NULL;
        health_monitor *h = NULL;
        if (n && new_health(d, c, n, &h) < 0)
                n = node_close(n); /* logged; the running devices stay */
        /* The new config is the daemon's while the plugin applies it: on_plan_changed reads it. */
        config *old = d->config;
        d->config = c;
        r = plugin_reload(d->plugin, c, n ? n->inventory : NULL);
        if (r >= 0) {
                config_free(old);
                if (n)
                        use_node(d, TAKE_PTR(n), h);
        } else {
                d->config = old;
                config_free(c);
                health_monitor_free(h);
        }
        plugin_metrics_reload(d->metrics, r >= 0);
}

/* SIGHUP: as upstream's restart, the config and the GPUs (a changed MIG layout; nvdp plugin --rescan
 * sends it too). */
static void on_reload_signal(loop_source *s, int signo, void *userdata)
{
        reload(userdata, "Received SIGHUP", true);
}

static void on_config_changed(file_watch *w, void *userdata)
{
        struct daemon *d = userdata;
        _cleanup_free_ char *why = NULL;
        if (asprintf(&why, "%s changed", d->config->config_file) < 0)
                return;
        reload(d, why, false);
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
        reload(userdata, why, false);
}

/* NVIDIA's MIG manager finished a new MIG layout. Under the none strategy MIG devices are not advertised:
 * nothing to read again. */
static void on_mig_configured(const char *why, void *userdata)
{
        struct daemon *d = userdata;
        if (d->config->flags.mig_strategy == MIG_STRATEGY_NONE)
                log_info("%s; the MIG strategy is none: nothing to read again", why);
        else
                reload(d, why, true);
}

static void on_event_error(const char *error, void *userdata)
{
        log_warning("Node event not posted: %s", error);
}

/* Events on our Node for device health changes, when NODE_NAME is set, the API server configured and
 * --node-events is not false (the chart's events.enabled=false: NODE_NAME may be there for the config
 * label, and the service account may not create events). */
static void start_events(struct daemon *d)
{
        const char *node = getenv("NODE_NAME");
        _cleanup_free_ char *error = NULL;
        static const struct node_reporter_options o = { .on_error = on_event_error };
        if (!d->config->flags.plugin.node_events) {
                log_info("No Node events for device health changes: --node-events=false (NODE_EVENTS)");
                return;
        }
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

/* A health monitor of node n with c's policy (*ret NULL: checks off). Health checks read upstream's env
 * vars directly, as upstream does. */
static int new_health(struct daemon *d, const config *c, const struct node *n, health_monitor **ret)
{
        struct health_monitor_options o = {
                .policy = c->flags.plugin.health_policy,
                .recovery_interval = c->flags.plugin.health_recovery_interval,
                .disable_env = getenv("DP_DISABLE_HEALTHCHECKS"),
                .enable_env = getenv("DP_ENABLE_HEALTHCHECKS"),
        };
        return health_monitor_start(d->loop, n->nvml, n->inventory, &o, on_health_changed, d, ret);
}

/* The health view of the plugin and the metrics (NULL: checks off). */
static void use_health(struct daemon *d, health_monitor *h)
{
        d->health = h;
        const health_tracker *t = h ? health_monitor_tracker(h) : NULL;
        plugin_set_health(d->plugin, t);
        plugin_metrics_set_health(d->metrics, t);
}

static int start_health(struct daemon *d)
{
        health_monitor *h = NULL;
        if (!d->node)
                return 0;
        int r = new_health(d, d->config, d->node, &h);
        if (r < 0)
                return r;
        if (h)
                use_health(d, h);
        return 0;
}

/* The node read again takes over (the plugin serves its inventory already): the plugin and the metrics see
 * its health from now on; the old monitor stops before the old node closes. */
static void use_node(struct daemon *d, struct node *n, health_monitor *h)
{
        health_monitor *old_health = d->health;
        struct node *old = d->node;
        d->node = n;
        use_health(d, h);
        plugin_metrics_set_inventory(d->metrics, n->inventory);
        health_monitor_free(old_health);
        node_close(old);
        if (!old)
                start_events(d); /* the first GPUs since the start */
        node_reporter_sync(d->reporter, n->inventory, h ? health_monitor_tracker(h) : NULL);
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

/* Every consumer of the plan (metrics read it at scrape time; the MPS readiness gate; the CDI spec
 * writer) hangs off this one place. At start and after each reload that took effect: d->config is already
 * the new one, and no Allocate is answered before this returns (all on the loop thread). */
static void on_plan_changed(const plan *old_plan, const plan *new_plan, void *userdata)
{
        struct daemon *d = userdata;
        log_plan(d, old_plan, new_plan);
        _cleanup_free_ char *error = NULL;
        int r = mps_gate_set_plan(d->mps_gate, d->config->flags.mps_root, new_plan, &error);
        if (r < 0)
                log_error_errno(r, "Resources shared with MPS are not advertised: %s",
                                error ? error : strerror(-r));
        cdi_spec_sync(d, d->config, new_plan);
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

static int answer_healthz(struct http_reply *reply, void *userdata)
{
        const struct daemon *d = userdata;
        return healthz_plugin_reply(d->plugin, reply);
}

/* --health-address: /healthz alone, for the pod's probes (off when empty). */
static int start_healthz(struct daemon *d)
{
        return healthz_server_new(d->loop, d->config->flags.plugin.health_address, answer_healthz, d,
                                  &d->healthz);
}

/* ---- start, run, stop ---------------------------------------------------------------------------- */

int daemon_pid_file(const config *c, char **ret)
{
        _cleanup_free_ char *dir = NULL;
        int r = plugin_socket_dir(c->flags.plugin.kubelet_socket, &dir);
        if (r < 0)
                return r;
        return asprintf(ret, "%s/nvdp/plugin.pid", dir) < 0 ? -ENOMEM : 0;
}

/* For nvdp plugin --rescan. Without it, SIGHUP still does the same. */
static void write_pid_file(struct daemon *d)
{
        _cleanup_free_ char *path = NULL;
        int r = daemon_pid_file(d->config, &path);
        if (r >= 0) {
                char *slash = strrchr(path, '/');
                *slash = '\0';
                r = mkdir(path, 0755) < 0 && errno != EEXIST ? negative_errno() : 0;
                *slash = '/';
        }
        if (r >= 0)
                r = pidfile_write(path);
        if (r < 0)
                log_warning_errno(r,
                                  "Cannot write %s (nvdp plugin --rescan will not find this plugin; SIGHUP "
                                  "does the same): %m",
                                  strna(path));
        else
                d->pid_file = TAKE_PTR(path);
}

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

static int imex_resolve_at_start(struct daemon *d)
{
        _cleanup_free_ char *error = NULL;
        int r = d->node ? imex_channels_resolve(d->config, &error) : 0;
        if (r < 0)
                return log_error_errno(r, "%s", error ? error : strerror(-r));
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

/* The daemon lives for months: memory an unusually large request took must go back to the kernel, not
 * stay in the heap. Blocks from 128 KiB up are mmapped and unmapped when freed (glibc would otherwise
 * raise that threshold to 32 MiB after the first such free, and serve the next ones from the heap), free
 * heap top beyond 128 KiB is trimmed, and threads share two arenas (the rpc layer trims after big
 * requests, see RPC_REQUEST_BUDGET). */
static void memory_policy(void)
{
        (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        (void)mallopt(M_TRIM_THRESHOLD, 128 * 1024);
        (void)mallopt(M_ARENA_MAX, 2);
}

static int daemon_start(struct daemon *d)
{
        static const int handled[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP, 0 };
        int r;
        memory_policy();
        /* Signals are blocked before NVML starts any thread (see signals_block). */
        if ((r = signals_block(handled)) < 0 || (r = loop_new(&d->loop)) < 0 ||
            (r = find_control_devices(&d->control_devices)) < 0 || (r = open_node(d)) < 0 ||
            (r = imex_resolve_at_start(d)) < 0 || (r = add_signals(d)) < 0 ||
            (r = mps_gate_new(d->loop, on_mps_gate, d, &d->mps_gate)) < 0 || (r = new_plugin(d)) < 0 ||
            (r = start_metrics(d)) < 0 || (r = start_healthz(d)) < 0 || (r = plugin_start(d->plugin)) < 0)
                return r;
        if (d->node)
                start_events(d);
        if ((r = start_health(d)) < 0)
                return r;
        write_pid_file(d);
        /* The MIG state label only where MIG devices are advertised (the chart grants the watch then). */
        const struct node_config_watch_options wo = {
                .on_config = on_node_config,
                .on_mig_configured =
                        d->config->flags.mig_strategy != MIG_STRATEGY_NONE ? on_mig_configured : NULL,
                .userdata = d,
        };
        node_config_watch_start_with(d->loop, &d->kube, &wo, &d->node_config);
        /* The config file is watched as named at start (a ConfigMap updates it by a symlink swap). */
        const char *file = d->config->config_file;
        if (!isempty(file) &&
            (r = file_watch_new(d->loop, file, on_config_changed, d, &d->config_watch)) < 0)
                log_warning_errno(r, "Cannot watch %s for changes (SIGHUP still reloads): %m", file);
        return 0;
}

static void daemon_stop(struct daemon *d)
{
        /* The CDI spec stays in --cdi-spec-dir: in a rolling update the next plugin pod writes it again,
         * and containers created meanwhile (whose devices the kubelet already allocated) still resolve
         * their CDI names. `nvdp cdi remove` takes it away on uninstall. */
        if (d->pid_file)
                (void)unlink(d->pid_file);
        free(d->pid_file);
        /* The plugin reads the tracker and the inventory: it goes before them. */
        d->plugin = plugin_free(d->plugin);
        d->mps_gate = mps_gate_free(d->mps_gate);
        d->health = health_monitor_free(d->health);
        file_watch_free(d->config_watch);
        d->reporter = node_reporter_free(d->reporter);
        d->node_config = node_config_watch_free(d->node_config);
        kube_client_free(d->kube);
        free(d->cdi_error);
        d->metrics = plugin_metrics_free(d->metrics);
        d->healthz = healthz_server_free(d->healthz);
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
        if (ret != 0)
                log_info("Exiting with an error");
        return ret;
}
