/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp mps-control-daemon (also argv[0] mps-control-daemon): upstream's MPS control daemon, with its
 * flags (--config-file/CONFIG_FILE, --mig-strategy/MIG_STRATEGY) and its `mount-shm` subcommand. One
 * nvidia-cuda-mps-control per resource shared with MPS (src/mps/mps-supervisor.h); SIGHUP, a changed
 * config file or (the chart's per-node mode) a changed node label applies the new config (unchanged
 * daemons keep running); SIGTERM, SIGINT and SIGQUIT stop every daemon with `quit` and exit 0.
 * docs/mps.md. */
#include <inttypes.h>
#include <signal.h>

#include "base/fileio.h"
#include "base/filewatch.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/strv.h"
#include "cmd/cmd.h"
#include "config/config.h"
#include "gpu/inventory.h"
#include "kube/kube.h"
#include "mps/mps-control.h"
#include "mps/mps-metrics.h"
#include "mps/mps-root.h"
#include "mps/mps-spec.h"
#include "mps/mps-supervisor.h"
#include "nvml/nvml-loader.h"
#include "resource/plan.h"

/* How long SIGTERM waits for the daemons to quit (each step has 10 s) before killing what is left. */
#define EXIT_DEADLINE (25 * NSEC_PER_SEC)

struct mpsd {
        int argc;
        char **argv;
        config *config;
        inventory *inventory; /* read once at start */
        char *root;
        loop *loop;
        mps_supervisor *supervisor;
        mps_metrics *metrics;
        file_watch *config_watch;
        loop_source *exit_timer;
        bool exiting;
        char *node_config; /* value of the node label nvidia.com/device-plugin.config, NULL unknown */
        kube_client *kube;
        kube_node_watch *node_watch;
};

#define NODE_CONFIG_LABEL "nvidia.com/device-plugin.config"

static const char *program(char **argv)
{
        return streq(argv[0], "mps-control-daemon") ? "nvdp mps-control-daemon" : argv[0];
}

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

/* The specs of config c on this node; with a sentence in *ret_error when the plan cannot be built. */
static int build_specs(struct mpsd *m, const config *c, mps_specs **ret, char **ret_error)
{
        static const inventory none = {};
        _cleanup_(plan_freep) plan *p = NULL;
        int r = plan_build(m->inventory ? m->inventory : &none, c, c->flags.root, &p, ret_error);
        if (r < 0)
                return r;
        return mps_specs_build(m->inventory ? m->inventory : &none, p, ret);
}

static int apply(struct mpsd *m, const mps_specs *specs)
{
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
        int r = config_from_env_and_args(PROGRAM_MPS, m->argc, m->argv, m->node_config, &c, &error);
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

/* The node's labels changed: a new value of nvidia.com/device-plugin.config selects another config,
 * as it does for the plugin (the two must agree on which resources are shared with MPS). */
static void on_node_labels(char *const *labels, void *userdata)
{
        struct mpsd *m = userdata;
        const char *value = NULL;
        STRV_FOREACH (kv, labels)
                if (startswith(*kv, NODE_CONFIG_LABEL "="))
                        value = *kv + strlen(NODE_CONFIG_LABEL "=");
        if (streq(strempty(value), strempty(m->node_config)))
                return;
        char *copy = value ? strdup(value) : NULL;
        if (value && !copy)
                return;
        free(m->node_config);
        m->node_config = copy;
        _cleanup_free_ char *why = NULL;
        if (asprintf(&why, "Node label %s is now \"%s\"", NODE_CONFIG_LABEL, strempty(value)) >= 0)
                reload(m, why);
}

static void on_node_watch_error(const char *error, void *userdata)
{
        log_warning("Watching this node's labels: %s (retrying)", error);
}

/* In the chart's per-node mode (CONFIG_FILE_SRCDIR, NODE_NAME), follow the label that selects the
 * config. Without API access the default config stays selected. */
static void watch_node_config(struct mpsd *m)
{
        const char *node = getenv("NODE_NAME");
        if (isempty(getenv("CONFIG_FILE_SRCDIR")) || isempty(node))
                return;
        _cleanup_free_ char *error = NULL;
        int r = kube_client_new_from_env(m->loop, getenv("KUBECONFIG"), &m->kube, &error);
        if (r < 0) {
                log_warning("Cannot reach the API server (%s): the node label %s is not followed",
                            error ? error : strerror(-r), NODE_CONFIG_LABEL);
                return;
        }
        static const struct kube_node_watch_handler h = { on_node_labels, on_node_watch_error };
        r = kube_node_watch_new(m->kube, node, &h, m, &m->node_watch);
        if (r < 0)
                log_warning_errno(r, "Cannot watch node %s: %m", node);
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
}

/* Exits once every daemon has quit after a stop signal. */
static void before_sleep(loop *l, void *userdata)
{
        struct mpsd *m = userdata;
        if (m->exiting && !mps_supervisor_busy(m->supervisor))
                loop_exit(l, 0);
}

static int load_inventory(struct mpsd *m)
{
        const config *c = m->config;
        _cleanup_(nvml_unloadp) nvml *n = NULL;
        _cleanup_free_ char *error = NULL;
        const char *search_root = NULL;
        if (c->flags.nvidia_driver_root && !streq(c->flags.nvidia_driver_root, "/"))
                search_root = c->flags.plugin.container_driver_root;
        int r = nvml_load(search_root, &n, &error);
        if (r >= 0)
                r = inventory_load(n, c->flags.root, &m->inventory, &error);
        if (r >= 0) {
                log_info("Found %zu GPUs (driver %s)", m->inventory->n_gpus, m->inventory->driver_version);
                return 0;
        }
        if (c->flags.fail_on_init_error)
                return log_error_errno(r, "could not load NVML library: %s", error ? error : strerror(-r));
        log_warning("could not load NVML library: %s; failOnInitError is false: running without GPUs",
                    error ? error : strerror(-r));
        return 0;
}

/* Where children find the control binary (and it the server): our PATH, or a default one. */
static int child_env(char ***ret)
{
        _cleanup_strv_free_ char **env = new0(char *, 1);
        if (!env)
                return -ENOMEM;
        const char *path = getenv("PATH");
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "PATH=%s", isempty(path) ? MPS_DEFAULT_PATH : path) < 0 || strv_extend(&env, p) < 0)
                return -ENOMEM;
        const char *ld = getenv("LD_LIBRARY_PATH");
        _cleanup_free_ char *l = NULL;
        if (!isempty(ld) && (asprintf(&l, "LD_LIBRARY_PATH=%s", ld) < 0 || strv_extend(&env, l) < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(env);
        return 0;
}

/* Upstream's `mount-shm` (the DaemonSet's init container): a tmpfs on <root>/shm. */
static int mount_shm(int argc, char **argv)
{
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *error = NULL, *root = NULL, *meminfo = NULL;
        int r = config_from_args(PROGRAM_MPS, argc, argv, &c, &error);
        if (r > 0)
                return 0;
        if (r < 0) {
                log_error("%s mount-shm: %s", program(argv), error ? error : strerror(-r));
                return 1;
        }
        log_set_format(c->flags.log_format);
        if ((r = mps_root_resolve(c->flags.mps_root, &root, &error)) < 0 ||
            !(meminfo = path_join_root(c->flags.root, "/proc/meminfo")) ||
            (r = mps_mount_shm(root, meminfo, &error)) < 0) {
                log_error("mount-shm: %s", error ? error : strerror(r < 0 ? -r : ENOMEM));
                return 1;
        }
        log_info("Mounted a tmpfs on %s/%s", root, MPS_SHM_DIR);
        return 0;
}

/* argv without its first "mount-shm" argument; *ret_found says whether there was one. */
static char **strip_subcommand(int argc, char **argv, bool *ret_found)
{
        char **l = new0(char *, (size_t)argc + 1);
        if (!l)
                return NULL;
        int k = 0;
        *ret_found = false;
        for (int i = 0; i < argc; i++) {
                if (i > 0 && !*ret_found && streq(argv[i], "mount-shm")) {
                        *ret_found = true;
                        continue;
                }
                l[k++] = argv[i];
        }
        return l;
}

static int run(struct mpsd *m)
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
        if ((r = load_inventory(m)) < 0)
                return r;
        if ((r = build_specs(m, c, &specs, &error)) < 0)
                return log_error_errno(r, "%s",
                                       error ? error : "Cannot build the resources of this node: %m");

        if ((r = mps_control_search_path(c->flags.nvidia_driver_root, c->flags.plugin.container_driver_root,
                                         getenv("PATH"), &search)) < 0 ||
            (r = child_env(&env)) < 0 || (r = loop_new(&m->loop)) < 0)
                return log_error_errno(r, "Failed to set up: %m");
        struct mps_supervisor_options o = {
                .root = m->root,
                .search_path = search,
                .env = env,
                .on_state = on_state,
                .userdata = m,
        };
        if ((r = mps_supervisor_new(m->loop, &o, &m->supervisor)) < 0 ||
            (r = loop_add_signal(m->loop, SIGTERM, on_term, m, NULL)) < 0 ||
            (r = loop_add_signal(m->loop, SIGINT, on_term, m, NULL)) < 0 ||
            (r = loop_add_signal(m->loop, SIGQUIT, on_term, m, NULL)) < 0 ||
            (r = loop_add_signal(m->loop, SIGHUP, on_hup, m, NULL)) < 0 ||
            (r = loop_add_before_sleep(m->loop, before_sleep, m)) < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");
        (void)signal(SIGPIPE, SIG_IGN);

        if (!isempty(c->flags.plugin.metrics_address)) {
                if ((r = mps_metrics_new(&m->metrics)) >= 0)
                        r = mps_metrics_serve(m->metrics, m->loop, m->supervisor,
                                              c->flags.plugin.metrics_address, &error);
                if (r < 0)
                        return log_error_errno(r, "--metrics-address: %s", error ? error : strerror(-r));
                log_info("Serving /metrics and /healthz on %s (port %d)", c->flags.plugin.metrics_address,
                         mps_metrics_port(m->metrics));
        }
        if (!isempty(c->config_file) &&
            (r = file_watch_new(m->loop, c->config_file, on_config_changed, m, &m->config_watch)) < 0)
                log_warning_errno(r, "Cannot watch %s for changes (SIGHUP still reloads): %m",
                                  c->config_file);

        if ((r = apply(m, specs)) < 0)
                return log_error_errno(r, "Cannot start the MPS control daemons: %m");
        watch_node_config(m);
        r = loop_run(m->loop);
        return r < 0 ? log_error_errno(r, "Event loop failed: %m") : r;
}

static bool wants_help(int argc, char **argv)
{
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--help") || streq(argv[i], "-h"))
                        return true;
        return false;
}

int cmd_mps_control_daemon(int argc, char **argv)
{
        if (wants_help(argc, argv)) {
                config_help(PROGRAM_MPS, argv[0], stdout);
                printf("\nCommands:\n"
                       "  mount-shm  mount the tmpfs the MPS daemons and their clients share as /dev/shm "
                       "on\n"
                       "             <mps-root>/shm (upstream's init container; needs CAP_SYS_ADMIN)\n\n"
                       "The MPS root is --mps-root as seen by this process when it is a directory, "
                       "else\n" MPS_CONTAINER_ROOT " (where upstream's chart mounts it). docs/mps.md.\n");
                return 0;
        }
        bool subcommand;
        _cleanup_free_ char **args = strip_subcommand(argc, argv, &subcommand);
        if (!args)
                return log_error_errno(-ENOMEM, "Out of memory."), 1;
        if (subcommand)
                return mount_shm(argc - 1, args);

        struct mpsd m = { .argc = argc, .argv = argv };
        _cleanup_free_ char *error = NULL;
        int r = config_from_env_and_args(PROGRAM_MPS, argc, argv, NULL, &m.config, &error);
        if (r > 0)
                return 0;
        if (r < 0) {
                /* As upstream (klog.Error, exit 1); the line is a klog line like every other. */
                log_error("%s: %s", program(argv), error ? error : strerror(-r));
                return 1;
        }
        if (m.config->print_config) {
                _cleanup_free_ char *yaml = NULL;
                r = config_format_yaml(m.config, &yaml);
                if (r >= 0)
                        fputs(yaml, stdout);
                config_free(m.config);
                return r < 0 ? 1 : 0;
        }
        log_set_format(m.config->flags.log_format);
        log_info("nvdp %s starting as the MPS control daemon", NVDP_VERSION);
        STRV_FOREACH (w, m.config->warnings)
                log_warning("%s", *w);

        r = run(&m);

        /* Sources of the loop go before the loop. */
        kube_node_watch_free(m.node_watch);
        kube_client_free(m.kube);
        free(m.node_config);
        file_watch_free(m.config_watch);
        loop_source_free(m.exit_timer);
        mps_metrics_free(m.metrics);
        mps_supervisor_free(m.supervisor);
        loop_free(m.loop);
        inventory_free(m.inventory);
        config_free(m.config);
        free(m.root);
        return r == 0 ? 0 : 1;
}
