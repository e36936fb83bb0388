/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/mps-daemon.h"

#include <inttypes.h>
#include <signal.h>

#include "base/filewatch.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/strv.h"
#include "daemon/healthz.h"
#include "daemon/mps-metrics.h"
#include "daemon/node-config.h"
#include "gpu/node.h"
#include "kube/kube.h"
#include "mps/mps-control.h"
#include "mps/mps-root.h"
#include "mps/mps-spec.h"
#include "mps/mps-supervisor.h"
#include "nvml/nvml-loader.h"
#include "resource/plan.h"

/* How long SIGTERM waits for the daemons to quit (each step has 10 s) before killing what is left. */
#define EXIT_DEADLINE (25 * NSEC_PER_SEC)

struct mpsd {
        config *config;
        daemon_load_config_fn load_config;
        void *userdata;
        struct node *node; /* NULL when NVML could not be loaded and failOnInitError is false */
        char *root;
        loop *loop;
        mps_supervisor *supervisor;
        mps_metrics *metrics;
        healthz_server *healthz; /* NULL: --health-address is empty */
        file_watch *config_watch;
        loop_source *exit_timer;
        bool exiting;
        kube_client *kube; /* made for the node label watch */
        node_config_watch *node_config;
};

static void on_state(const char *resource, enum mps_state state, const char *reason, void *userdata)
{
        struct mpsd *m = userdata;
        if (state == MPS_STATE_FAILED)
                log_error("MPS control daemon for %s: %s%s%s", resource, mps_state_to_string(state),
                          reason ? ": " : "", strempty(reason));
        else if (reason)
                log_info("MPS control daemon for %s: %s (%s)", resource, mps_state_to_string(state), reason);
        else
                log_info("MPS control daemon for %s: %s", resource, mps_state_to_string(state));
        mps_metrics_state(m->metrics, resource, state);
}

/* After a stop signal: exits once every daemon has quit. */
static void on_idle(void *userdata)
{
        struct mpsd *m = userdata;
        if (m->exiting)
                loop_exit(m->loop, 0);
}

/* The specs of config c on this node; with a sentence in *ret_error when the plan cannot be built. */
static int build_specs(struct mpsd *m, const config *c, mps_specs **ret, char **ret_error)
{
        static const inventory none = {};
        const inventory *inv = m->node ? m->node->inventory : &none;
        _cleanup_(plan_freep) plan *p = NULL;
        int r = plan_build(inv, c, &p, ret_error);
        if (r < 0)
                return r;
        return mps_specs_build(inv, p, ret);
}

/* One line at start and after every reload, for whoever reads the log: which config, why it was chosen,
 * which daemons it runs. */
static void log_specs(const struct mpsd *m, const mps_specs *specs)
{
        _cleanup_free_ char *what = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&what, &size);
        if (!f)
                return;
        for (size_t i = 0; i < specs->n; i++) {
                const struct mps_spec *s = &specs->specs[i];
                fprintf(f, "%s%s", i ? ", " : "", s->resource);
                if (s->error)
                        fputs(" (none: see below)", f);
                else
                        fprintf(f, " (%zu GPU%s x %u replicas)", s->n_gpus, s->n_gpus == 1 ? "" : "s",
                                s->n_gpus ? s->gpus[0].replicas : 0);
        }
        if (fclose(f) != 0)
                return;
        if (specs->n == 0)
                log_info("Using %s; no resource is shared with MPS", m->config->config_source);
        else
                log_info("Using %s; sharing with MPS: %s", m->config->config_source, what);
}

static int apply(struct mpsd *m, const mps_specs *specs)
{
        log_specs(m, specs);
        for (size_t i = 0; i < specs->n; i++) {
                const struct mps_spec *s = &specs->specs[i];
                if (s->error)
                        continue;
                for (size_t g = 0; g < s->n_gpus; g++)
                        log_info("MPS resource %s: GPU %u (%s): %u replicas, pinned device memory %" PRIu64
                                 " MiB and %u%% of the threads per client",
                                 s->resource, s->gpus[g].index, s->gpus[g].uuid, s->gpus[g].replicas,
                                 s->gpus[g].limit_mib, s->thread_percentage);
        }
        if (specs->n == 0)
                log_info("No devices are configured for MPS sharing; waiting for a config that shares some");
        return mps_supervisor_apply(m->supervisor, specs->specs, specs->n);
}

static void reload(struct mpsd *m, const char *why)
{
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_(mps_specs_freep) mps_specs *specs = NULL;
        _cleanup_free_ char *error = NULL;
        log_info("%s, reloading the configuration", why);
        int r = m->load_config(node_config_watch_value(m->node_config), &c, &error, m->userdata);
        if (r == 0)
                r = build_specs(m, c, &specs, &error);
        if (r != 0) {
                log_error("Configuration reload failed, keeping the running MPS daemons: %s",
                          error ? error : strerror(r < 0 ? -r : EINVAL));
                return;
        }
        STRV_FOREACH (w, c->warnings)
                log_warning("%s", *w);
        config_free(m->config);
        m->config = TAKE_PTR(c);
        r = apply(m, specs);
        if (r < 0)
                log_error_errno(r, "Cannot apply the new configuration: %m");
}

static void on_hup(loop_source *s, int signo, void *userdata)
{
        reload(userdata, "Received SIGHUP");
}

static void on_config_changed(file_watch *w, void *userdata)
{
        struct mpsd *m = userdata;
        _cleanup_free_ char *why = NULL;
        if (asprintf(&why, "%s changed", m->config->config_file) >= 0)
                reload(m, why);
}

/* A new value of the node label selects another config, as it does for the plugin (the two must agree
 * on which resources are shared with MPS). */
static void on_node_config(const char *why, void *userdata)
{
        reload(userdata, why);
}

static void on_exit_deadline(loop_source *s, void *userdata)
{
        log_warning("MPS control daemons still running after %llu s: killing them",
                    (unsigned long long)(EXIT_DEADLINE / NSEC_PER_SEC));
        loop_exit(loop_source_get_loop(s), 1);
}

static void on_term(loop_source *s, int signo, void *userdata)
{
        struct mpsd *m = userdata;
        if (m->exiting)
                return;
        log_info("Received signal %d, stopping the MPS control daemons", signo);
        m->exiting = true;
        int r = mps_supervisor_apply(m->supervisor, NULL, 0);
        if (r < 0 || loop_add_timer(m->loop, EXIT_DEADLINE, on_exit_deadline, m, &m->exit_timer) < 0)
                loop_exit(m->loop, 1);
        else if (!mps_supervisor_busy(m->supervisor))
                loop_exit(m->loop, 0);
}

static int open_node(struct mpsd *m)
{
        const config *c = m->config;
        _cleanup_free_ char *error = NULL;
        struct node_roots roots = config_node_roots(c);
        int r = node_open(&roots, &m->node, &error);
        if (r >= 0) {
                log_info("Found %zu GPUs (driver %s)", m->node->inventory->n_gpus,
                         m->node->inventory->driver_version);
                return 0;
        }
        if (c->flags.fail_on_init_error)
                return log_error_errno(r, "could not load NVML library: %s%s", error ? error : strerror(-r),
                                       node_nvml_hint(r));
        log_warning("could not load NVML library: %s%s", error ? error : strerror(-r), node_nvml_hint(r));
        log_warning("failOnInitError is false: running without GPUs");
        return 0;
}

/* The children's PATH is where the control binary is looked for (our PATH, or a default one, then the
 * driver root's bin folders): nvidia-cuda-mps-control finds nvidia-cuda-mps-server through it. When NVML
 * came from the driver root (no NVIDIA runtime put the driver's files on the paths: the CDI path, the chart
 * mounting the driver root at /driver-root), NVML's folder goes first in LD_LIBRARY_PATH, so that both find
 * libcuda.so.1 and the rest of that driver. */
static int child_env(const struct mpsd *m, char *const *search, const char *driver_search_root, char ***ret)
{
        _cleanup_strv_free_ char **env = new0(char *, 1);
        _cleanup_free_ char *lib_dir = NULL, *ld_path = NULL, *path = strv_join(search, ":");
        if (!env || !path)
                return -ENOMEM;
        int r = strv_extendf(&env, "PATH=%s", path);
        const char *ld = getenv("LD_LIBRARY_PATH");
        if (r >= 0 && m->node && driver_search_root && nvml_library_dir(m->node->nvml, &lib_dir) >= 0) {
                if (asprintf(&ld_path, "%s%s%s", lib_dir, isempty(ld) ? "" : ":", strempty(ld)) < 0)
                        return -ENOMEM;
                log_info("The MPS control daemons get the driver's libraries from %s (LD_LIBRARY_PATH)",
                         lib_dir);
                ld = ld_path;
        }
        if (r >= 0 && !isempty(ld))
                r = strv_extendf(&env, "LD_LIBRARY_PATH=%s", ld);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(env);
        return 0;
}

static int add_signals(struct mpsd *m)
{
        int r;
        if ((r = loop_add_signal(m->loop, SIGTERM, on_term, m, NULL)) < 0 ||
            (r = loop_add_signal(m->loop, SIGINT, on_term, m, NULL)) < 0 ||
            (r = loop_add_signal(m->loop, SIGQUIT, on_term, m, NULL)) < 0 ||
            (r = loop_add_signal(m->loop, SIGHUP, on_hup, m, NULL)) < 0)
                return r;
        (void)signal(SIGPIPE, SIG_IGN);
        return 0;
}

static int start_metrics(struct mpsd *m)
{
        const char *address = m->config->flags.plugin.metrics_address;
        if (isempty(address))
                return 0;
        _cleanup_free_ char *error = NULL;
        int r = mps_metrics_new(&m->metrics);
        if (r >= 0)
                r = mps_metrics_serve(m->metrics, m->loop, m->supervisor, address, &error);
        if (r < 0)
                return log_error_errno(r, "--metrics-address: %s", error ? error : strerror(-r));
        log_info("Serving /metrics and /healthz on %s (port %d)", address, mps_metrics_port(m->metrics));
        return 0;
}

static int answer_healthz(struct http_reply *reply, void *userdata)
{
        const struct mpsd *m = userdata;
        return healthz_mps_reply(m->supervisor, reply);
}

/* --health-address: /healthz alone, for the pod's readiness probe (off when empty). */
static int start_healthz(struct mpsd *m)
{
        return healthz_server_new(m->loop, m->config->flags.plugin.health_address, answer_healthz, m,
                                  &m->healthz);
}

static int mps_daemon_start(struct mpsd *m)
{
        _cleanup_(mps_specs_freep) mps_specs *specs = NULL;
        _cleanup_strv_free_ char **search = NULL, **env = NULL;
        _cleanup_free_ char *error = NULL;
        const config *c = m->config;
        int r;

        static const int handled[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD, 0 };
        if ((r = signals_block(handled)) < 0)
                return log_error_errno(r, "Failed to block signals: %m");
        if ((r = mps_root_resolve(c->flags.mps_root, &m->root, &error)) < 0)
                return log_error_errno(r, "%s", error);
        log_info("MPS root: %s", m->root);
        if ((r = open_node(m)) < 0)
                return r;
        if ((r = build_specs(m, c, &specs, &error)) < 0)
                return log_error_errno(r, "%s",
                                       error ? error : "Cannot build the resources of this node: %m");

        struct node_roots roots = config_node_roots(c);
        const char *driver_search_root = node_driver_search_root(&roots);
        if ((r = mps_control_search_path(driver_search_root, getenv("PATH"), &search)) < 0 ||
            (r = child_env(m, search, driver_search_root, &env)) < 0 || (r = loop_new(&m->loop)) < 0)
                return log_error_errno(r, "Failed to set up: %m");
        struct mps_supervisor_options o = {
                .root = m->root,
                .search_path = search,
                .env = env,
                .on_state = on_state,
                .on_idle = on_idle,
                .userdata = m,
        };
        if ((r = mps_supervisor_new(m->loop, &o, &m->supervisor)) < 0 || (r = add_signals(m)) < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");
        if ((r = start_metrics(m)) < 0 || (r = start_healthz(m)) < 0)
                return r;
        if (!isempty(c->config_file) &&
            (r = file_watch_new(m->loop, c->config_file, on_config_changed, m, &m->config_watch)) < 0)
                log_warning_errno(r, "Cannot watch %s for changes (SIGHUP still reloads): %m",
                                  c->config_file);

        if ((r = apply(m, specs)) < 0)
                return log_error_errno(r, "Cannot start the MPS control daemons: %m");
        node_config_watch_start(m->loop, &m->kube, on_node_config, m, &m->node_config);
        return 0;
}

int mps_daemon_run(const struct daemon_options *o)
{
        struct mpsd m = { .config = o->config, .load_config = o->load_config, .userdata = o->userdata };
        int r = mps_daemon_start(&m);
        if (r >= 0) {
                r = loop_run(m.loop);
                if (r < 0)
                        log_error_errno(r, "Event loop failed: %m");
        }
        /* Sources of the loop go before the loop. */
        node_config_watch_free(m.node_config);
        kube_client_free(m.kube);
        file_watch_free(m.config_watch);
        loop_source_free(m.exit_timer);
        healthz_server_free(m.healthz);
        mps_metrics_free(m.metrics);
        mps_supervisor_free(m.supervisor);
        loop_free(m.loop);
        node_close(m.node);
        config_free(m.config);
        free(m.root);
        return r == 0 ? 0 : 1;
}
