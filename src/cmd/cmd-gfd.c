/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp gfd (also argv[0] "gpu-feature-discovery"): label the node with its GPUs' features.
 * Each round loads NVML and the inventory, builds the labels and writes them; then it sleeps
 * --sleep-interval in the event loop. SIGHUP reloads the config (new timestamp), SIGTERM/SIGINT exit 0
 * and leave the file in place: removing it would make the node's labels flap (upstream #796).
 * In the chart's per-node mode (CONFIG_FILE_SRCDIR, NODE_NAME) GFD follows the node label
 * nvidia.com/device-plugin.config as the plugin and the MPS daemon do (upstream's config-manager sidecar
 * does it for upstream's GFD), so that nvidia.com/mps.capable and the sharing labels describe the
 * config the node really uses; the first round waits for the label. */
#include <signal.h>
#include <time.h>

#include "base/fileio.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/parse.h"
#include "base/strv.h"
#include "cmd/cmd.h"
#include "config/config.h"
#include "daemon/node-config.h"
#include "gpu/node.h"
#include "kube/kube.h"
#include "labels/labels.h"

struct gfd {
        int argc;
        char **argv;
        config *config;
        int64_t timestamp; /* taken once per start or SIGHUP, as upstream */
        loop *loop;
        loop_source *timer;
        kube_client *kube;              /* --output=node, NodeFeature, the node label */
        node_config_watch *node_config; /* NULL: not in the per-node mode */
        bool started;                   /* a round succeeded since the start */
        uint64_t backoff;               /* after a failed round: the wait before the next try */
};

/* After a failed round (the API server down, say), the next comes after RETRY_FIRST, doubling up to the
 * sleep interval, rather than a whole interval later. */
#define RETRY_FIRST (1 * NSEC_PER_SEC)
/* How long the first round waits for the node's labels before it uses the default config. */
#define FIRST_ANSWER_TIMEOUT (10 * NSEC_PER_SEC)

static void arm_timer(struct gfd *g, bool failed);

/* After each round: the first failure after a start ends the program (the pod restarts and says why);
 * a later one keeps the labels as they are and tries again, sooner than the interval, with backoff. */
static void round_done(struct gfd *g, int r)
{
        if (r < 0 && !g->started) {
                loop_exit(g->loop, 1);
                return;
        }
        g->started = g->started || r >= 0;
        if (g->config->flags.gfd.oneshot)
                loop_exit(g->loop, r < 0 ? 1 : 0);
        else
                arm_timer(g, r < 0);
}

/* Where the labels go: the features.d file, the Node object (ours: --output=node, which wins), or the
 * node's NodeFeature object (--use-node-feature-api, upstream's default). */
enum output { OUTPUT_FILE, OUTPUT_NODE, OUTPUT_NODEFEATURE };

static enum output output_of(const config *c)
{
        return c->flags.gfd.output_node        ? OUTPUT_NODE
               : c->flags.use_node_feature_api ? OUTPUT_NODEFEATURE
                                               : OUTPUT_FILE;
}

static void node_applied(int r, const char *error, bool changed, void *userdata)
{
        struct gfd *g = userdata;
        const char *node = g->config->flags.gfd.node_name;
        bool nf = output_of(g->config) == OUTPUT_NODEFEATURE;
        if (r < 0)
                log_error_errno(r, "Failed to label node %s%s: %s", node,
                                nf ? " through its NodeFeature" : "", strna(error));
        else if (changed)
                log_info("applied the labels to %s%s", nf ? "the NodeFeature of node " : "node ", node);
        else
                log_info("labels unchanged on %s%s", nf ? "the NodeFeature of node " : "node ", node);
        round_done(g, r);
}

/* Loads NVML and the inventory. *ret stays NULL (a node without GPUs) when that fails and
 * failOnInitError is false, as upstream. */
static int load_node(const config *c, struct node **ret)
{
        _cleanup_free_ char *err = NULL;
        struct node_roots roots = config_node_roots(c);
        int r = node_open(&roots, ret, &err);
        if (r >= 0)
                return 0;
        if (c->flags.fail_on_init_error)
                return log_error_errno(r, "%s%s", err ? err : "Failed to read the GPUs.", node_nvml_hint(r));
        log_warning("%s%s Labelling the node as one without GPUs (failOnInitError is false).",
                    err ? err : "Failed to read the GPUs.", node_nvml_hint(r));
        *ret = NULL;
        return 0;
}

static int gfd_round(struct gfd *g)
{
        const config *c = g->config;
        _cleanup_(node_closep) struct node *n = NULL;
        int r = load_node(c, &n);
        if (r < 0)
                return r;
        const inventory *inv = n ? n->inventory : NULL;

        /* A missing or unreadable DMI file is not an error: gpu.machine says "unknown". */
        _cleanup_free_ char *machine = NULL;
        if (!isempty(c->flags.gfd.machine_type_file) &&
            (r = read_one_line_file(c->flags.gfd.machine_type_file, &machine)) < 0)
                log_debug_errno(r, "Failed to read the machine type from %s: %m",
                                c->flags.gfd.machine_type_file);

        _cleanup_(labels_freep) labels *l = NULL;
        _cleanup_free_ char *err = NULL;
        r = labels_build(inv, c, machine, c->flags.gfd.no_timestamp ? LABELS_NO_TIMESTAMP : g->timestamp, &l,
                         &err);
        if (r < 0 && err)
                return log_error_errno(r, "%s", err);
        if (r < 0)
                return log_error_errno(r, "Failed to build the labels: %m");
        _cleanup_free_ char *clique = NULL, *why = NULL;
        if (labels_gpu_clique(inv, &clique, &why, NULL) >= 0 && why)
                log_warning("%s", why);

        if (output_of(c) != OUTPUT_FILE) {
                r = output_of(c) == OUTPUT_NODE
                            ? labels_node_apply(g->kube, c->flags.gfd.node_name, l, node_applied, g)
                            : labels_nodefeature_apply(g->kube, c->flags.gfd.namespace,
                                                       c->flags.gfd.node_name, l, node_applied, g);
                if (r < 0)
                        return log_error_errno(r, "Failed to label node %s: %m",
                                               strna(c->flags.gfd.node_name));
                return 1; /* node_applied() finishes the round */
        }

        const char *out = strempty(c->flags.gfd.output_file);
        r = labels_write(l, out);
        if (r < 0)
                return log_error_errno(r, "Failed to write the labels to %s: %m", out);
        if (r == 0)
                log_info("labels unchanged");
        else
                log_info("wrote %zu labels to %s", l->n, isempty(out) ? "stdout" : out);
        return 0;
}

static void arm_timer(struct gfd *g, bool failed)
{
        uint64_t interval = g->config->flags.gfd.sleep_interval;
        if (!failed)
                g->backoff = RETRY_FIRST;
        if (failed && g->backoff < interval) {
                log_info("trying again in %.0f s", (double)g->backoff / NSEC_PER_SEC);
                loop_timer_arm(g->timer, g->backoff);
                g->backoff *= 2;
        } else if (interval == DURATION_INFINITE)
                loop_timer_disarm(g->timer);
        else
                loop_timer_arm(g->timer, interval);
}

static void on_timer(loop_source *s, void *userdata)
{
        struct gfd *g = userdata;
        if (g->node_config && !g->started && !node_config_watch_answered(g->node_config))
                log_warning("No answer about node %s from the API server yet: labelling from %s until the "
                            "node label %s is known",
                            strna(getenv("NODE_NAME")), g->config->config_source, NODE_CONFIG_LABEL);
        int r = gfd_round(g);
        if (r <= 0)
                round_done(g, r);
}

/* The API client, for the modes that need one (made once, kept across reloads). Logs why not. */
static int gfd_kube(struct gfd *g, const config *c)
{
        enum output o = output_of(c);
        if (o == OUTPUT_FILE || g->kube)
                return 0;
        const char *mode = o == OUTPUT_NODE ? "--output=node" : "--use-node-feature-api";
        /* upstream's words for the NodeFeature mode */
        if (isempty(c->flags.gfd.node_name))
                return log_error_errno(-EINVAL,
                                       "%s: required flag node-name not set (--node-name, NODE_NAME)", mode);
        if (o == OUTPUT_NODEFEATURE && isempty(c->flags.gfd.namespace))
                return log_error_errno(-EINVAL,
                                       "%s: required flag namespace not set (--namespace, NAMESPACE)", mode);
        _cleanup_free_ char *err = NULL;
        const struct kube_client_options ko = { .qps = c->flags.gfd.kube_api_qps,
                                                .burst = c->flags.gfd.kube_api_burst };
        int r = kube_client_new_from_env_with(g->loop, c->flags.gfd.kubeconfig, &ko, &g->kube, &err);
        if (r < 0)
                return log_error_errno(r, "%s: %s", mode, err ? err : "cannot reach the API server");
        return 0;
}

/* The config again (flags and env as given, the file the node label selects as it is now), with a new
 * timestamp, and a round at once. */
static void reload(struct gfd *g, const char *why)
{
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *err = NULL;
        int r = config_from_env_and_args(PROGRAM_GFD, g->argc, g->argv,
                                         node_config_watch_value(g->node_config), &c, &err);
        if (r != 0) {
                log_error_errno(r < 0 ? r : -EINVAL, "%s: %s Keeping the previous configuration.", why,
                                err ? err : "The configuration did not load.");
                return;
        }
        if (gfd_kube(g, c) < 0) {
                log_error("%s: keeping the previous configuration", why);
                return;
        }
        log_info("%s: configuration reloaded, using %s", why, c->config_source);
        STRV_FOREACH (w, c->warnings)
                log_warning("%s", *w);
        config_free(g->config);
        g->config = TAKE_PTR(c);
        g->timestamp = (int64_t)time(NULL);
        g->started = false;
        loop_timer_arm(g->timer, 0);
}

static void on_hup(loop_source *s, int signo, void *userdata)
{
        reload(userdata, "SIGHUP");
}

static void on_node_config(const char *why, void *userdata)
{
        reload(userdata, why);
}

/* The node's labels are known: the first round, with the config the label selects (on_node_config
 * already loaded it when the label is set). */
static void on_first_answer(void *userdata)
{
        struct gfd *g = userdata;
        loop_timer_arm(g->timer, 0);
}

static void on_term(loop_source *s, int signo, void *userdata)
{
        struct gfd *g = userdata;
        log_info("%s: exiting, the labels stay in place", signo == SIGTERM ? "SIGTERM" : "SIGINT");
        loop_exit(g->loop, 0);
}

static void gfd_done(struct gfd *g)
{
        g->node_config = node_config_watch_free(g->node_config);
        g->kube = kube_client_free(g->kube);
        g->config = config_free(g->config);
}

int cmd_gfd(int argc, char **argv)
{
        _cleanup_(gfd_done) struct gfd g = { .argc = argc, .argv = argv, .backoff = RETRY_FIRST };
        _cleanup_free_ char *err = NULL;
        int r = config_from_env_and_args(PROGRAM_GFD, argc, argv, NULL, &g.config, &err);
        if (r < 0) {
                /* A klog (or JSON) line like every other, in the format asked for. */
                log_set_format(config_log_format(argc, argv));
                log_error("%s: %s", streq(argv[0], "gfd") ? "nvdp gfd" : argv[0],
                          err ? err : "Invalid arguments.");
                return 1; /* as NVIDIA's GFD */
        }
        if (r > 0) /* --help */
                return 0;

        log_set_format(g.config->flags.log_format);
        STRV_FOREACH (w, g.config->warnings)
                log_warning("%s", *w);

        static const int handled[] = { SIGTERM, SIGINT, SIGHUP, 0 };
        if ((r = signals_block(handled)) < 0) {
                log_error_errno(r, "Failed to block signals: %m");
                return 1;
        }
        g.timestamp = (int64_t)time(NULL);

        _cleanup_(loop_freep) loop *l = NULL;
        r = loop_new(&l);
        if (r >= 0) {
                g.loop = l;
                /* the first round runs at once, from the loop, so node mode can wait for the API server */
                if ((r = loop_add_timer(l, 0, on_timer, &g, &g.timer)) >= 0 &&
                    (r = loop_add_signal(l, SIGHUP, on_hup, &g, NULL)) >= 0 &&
                    (r = loop_add_signal(l, SIGTERM, on_term, &g, NULL)) >= 0)
                        r = loop_add_signal(l, SIGINT, on_term, &g, NULL);
        }
        if (r < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                return 1;
        }
        if (gfd_kube(&g, g.config) < 0)
                return 1;
        /* The node label selects the config: the first round waits for it (or FIRST_ANSWER_TIMEOUT). */
        node_config_watch_start(l, &g.kube, on_node_config, &g, &g.node_config);
        if (g.node_config) {
                node_config_watch_on_first_answer(g.node_config, on_first_answer);
                loop_timer_arm(g.timer, FIRST_ANSWER_TIMEOUT);
        }
        r = loop_run(l);
        /* The client's connection holds sources of l, which is freed before g: free them first (ASan found
         * the use after free under `make asan`, tests/integration/test_gfd_node.py). */
        g.node_config = node_config_watch_free(g.node_config);
        g.kube = kube_client_free(g.kube);
        return r < 0 ? 1 : r;
}
