/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/dra-daemon.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/strv.h"
#include "cdi/cdi.h"
#include "dra/dra-publisher.h"
#include "dra/dra-service.h"
#include "gpu/node.h"
#include "health/health.h"
#include "kube/kube.h"

/* How often the driver checks that its sockets are still there (a wiped kubelet directory). */
#define SOCKET_CHECK_INTERVAL (30 * NSEC_PER_SEC)

struct dra_daemon {
        loop *loop;
        config *config;
        struct node *node; /* NULL when NVML could not be loaded and failOnInitError is false */
        char *plugin_dir;
        health_monitor *health;
        kube_client *kube;
        dra_publisher *publisher;
        dra_service *service;
        loop_source *socket_timer;
        struct dra_device *devs; /* for the health log and the claims' CDI specs */
        size_t n_devs;
        cdi_specs *cdi;  /* the node's CDI spec, whose devices' edits the claim specs copy; NULL: see
                            cdi_error */
        char *cdi_error; /* why it could not be built */
        bool *was_healthy;
};

static const inventory *daemon_inventory(const struct dra_daemon *d)
{
        return d->node ? d->node->inventory : NULL;
}

static const health_tracker *daemon_health(const struct dra_daemon *d)
{
        return d->health ? health_monitor_tracker(d->health) : NULL;
}

/* ---- claim CDI specs --------------------------------------------------------------------------------- */

/* The claim's spec, <cdi root>/k8s.gpu.nvidia.com-claim_<uid>.json: its devices under the names the kubelet
 * gets ("k8s.gpu.nvidia.com/claim=<uid>-<device>"), their edits copied from the node's spec, which was
 * discovered once at start (the driver's files do not change under a running driver; the inventory is
 * fixed). Per claim only the copy and one atomic write. A claim that cannot get its spec is not prepared:
 * no container starts without its GPU. */
static int write_spec(void *userdata, const struct dra_claim *c, char **ret_error)
{
        struct dra_daemon *d = userdata;
        if (!d->cdi && c->n_devices > 0)
                return error_set(ret_error, -ENOENT, "the CDI edits of this node's GPUs are unknown: %s",
                                 d->cdi_error ? d->cdi_error : "no GPUs");
        struct dra_claim_specs w = {
                .dir = d->config->flags.dra.cdi_root,
                .node_spec = d->cdi ? d->cdi->specs[0] : NULL,
                .inventory = daemon_inventory(d),
                .devs = d->devs,
                .n_devs = d->n_devs,
        };
        return dra_claim_spec_write(&w, c, ret_error);
}

static int remove_spec(void *userdata, const char *uid, char **ret_error)
{
        struct dra_daemon *d = userdata;
        return dra_claim_spec_remove(d->config->flags.dra.cdi_root, uid, ret_error);
}

static bool not_hidden(const char *name)
{
        return name[0] != '.';
}

/* The names in the CDI directory (empty when it does not exist yet), at most CDI_DIR_MAX. */
#define CDI_DIR_MAX 65536
static int cdi_dir_names(const char *dir, char ***ret)
{
        int r = dir_list(dir, not_hidden, CDI_DIR_MAX, ret);
        if (r != -ENOENT)
                return r;
        char **none = new0(char *, 1);
        if (!none)
                return -ENOMEM;
        *ret = none;
        return 0;
}

/* ---- what the kubelet asked ------------------------------------------------------------------------- */

static void on_registration(bool registered, const char *error, void *userdata)
{
        struct dra_daemon *d = userdata;
        if (!registered) {
                log_error("The kubelet refused the registration of DRA driver " DRA_DRIVER ": %s", error);
                return;
        }
        log_info("Registered with the kubelet as DRA driver " DRA_DRIVER);
        /* A kubelet that (re)starts deletes the node's ResourceSlices: publish them again if so. */
        dra_publisher_sync(d->publisher);
}

static void on_prepared(const struct dra_claim_ref *ref, const struct dra_prepare_result *r, void *userdata)
{
        if (!r->claim) {
                log_warning("ResourceClaim %s/%s (%s) not prepared: %s", ref->namespace, ref->name, ref->uid,
                            r->error);
                return;
        }
        _cleanup_strv_free_ char **devices = NULL;
        for (size_t i = 0; i < r->claim->n_devices; i++)
                if (strv_extend(&devices, r->claim->devices[i].device) < 0)
                        return;
        _cleanup_free_ char *list = strv_join(devices, ", ");
        log_info("ResourceClaim %s/%s (%s) prepared: %s", ref->namespace, ref->name, ref->uid, strna(list));
}

static void on_unprepared(const struct dra_claim_ref *ref, const struct dra_unprepare_result *r,
                          void *userdata)
{
        if (r->error)
                log_warning("ResourceClaim %s/%s (%s) not unprepared: %s", ref->namespace, ref->name,
                            ref->uid, r->error);
        else
                log_info("ResourceClaim %s/%s (%s) unprepared", ref->namespace, ref->name, ref->uid);
}

/* Rate-limited by the rpc layer: once per peer in ten minutes, with a count of the rest. */
static void on_refusal(const char *socket, const struct rpc_peer *peer, enum rpc_refusal why,
                       size_t n_connections, uint64_t suppressed, void *userdata)
{
        char more[64] = "";
        if (suppressed > 0)
                snprintf(more, sizeof more, "; %" PRIu64 " more not logged", suppressed);
        log_warning("%s: %s (pid %d, uid %d; %zu connections open%s)", socket, rpc_refusal_to_string(why),
                    (int)peer->pid, (int)peer->uid, n_connections, more);
}

/* ---- ResourceSlices and health ---------------------------------------------------------------------- */

static void on_publish(enum dra_publish_event e, const char *detail, void *userdata)
{
        switch (e) {
        case DRA_PUBLISHED: log_info("Published %s", detail); break;
        case DRA_PUBLISH_FAILED:
                log_warning("Cannot publish this node's ResourceSlices, retrying with backoff (said once "
                            "until it "
                            "works): %s",
                            detail);
                break;
        case DRA_PUBLISH_RECOVERED: log_info("Published %s, after failed attempts", detail); break;
        case DRA_TAINTS_DROPPED: log_warning("%s", detail); break;
        }
}

/* One line per device that changed, then the slices follow. */
static void on_health_changed(health_monitor *m, void *userdata)
{
        struct dra_daemon *d = userdata;
        const health_tracker *t = health_monitor_tracker(m);
        for (size_t i = 0; i < d->n_devs; i++) {
                const struct health_unit *why = NULL;
                bool ok = dra_device_healthy(t, &d->devs[i], &why);
                if (ok == d->was_healthy[i])
                        continue;
                d->was_healthy[i] = ok;
                if (ok)
                        log_info("Device %s is healthy again", d->devs[i].name);
                else
                        log_warning("Device %s is unhealthy (%s): no new claims get it", d->devs[i].name,
                                    why && !isempty(why->reason) ? why->reason : "no reason recorded");
        }
        dra_publisher_sync(d->publisher);
}

static int start_health(struct dra_daemon *d)
{
        if (!d->node)
                return 0;
        struct health_monitor_options o = {
                .policy = d->config->flags.plugin.health_policy,
                .recovery_interval = d->config->flags.plugin.health_recovery_interval,
                .disable_env = getenv("DP_DISABLE_HEALTHCHECKS"),
                .enable_env = getenv("DP_ENABLE_HEALTHCHECKS"),
        };
        int r = dra_devices_list(daemon_inventory(d), &d->devs, &d->n_devs);
        if (r < 0)
                return r;
        d->was_healthy = new0(bool, d->n_devs + 1);
        if (!d->was_healthy)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_devs; i++)
                d->was_healthy[i] = true;
        return health_monitor_start(d->loop, d->node->nvml, d->node->inventory, &o, on_health_changed, d,
                                    &d->health);
}

/* ---- start, run, stop ---------------------------------------------------------------------------- */

static int open_node(struct dra_daemon *d)
{
        _cleanup_free_ char *error = NULL;
        struct node_roots roots = config_node_roots(d->config);
        int r = node_open(&roots, &d->node, &error);
        if (r >= 0) {
                const inventory *inv = d->node->inventory;
                log_info("Found %zu GPUs (driver %s, CUDA %d.%d)", inv->n_gpus, inv->driver_version,
                         inv->cuda_driver_version / 1000, inv->cuda_driver_version % 1000 / 10);
                return 0;
        }
        if (d->config->flags.fail_on_init_error)
                return log_error_errno(r, "could not load NVML library: %s", error ? error : strerror(-r));
        log_warning("could not load NVML library: %s", error ? error : strerror(-r));
        log_warning("failOnInitError is false: publishing no devices");
        return 0;
}

/* The node's CDI spec, once: driver discovery reads the driver root (libraries, ld.so.cache, device nodes),
 * too much to repeat per claim. When it fails (no driver files under the driver root, no /dev/nvidiactl)
 * the driver still publishes its devices, and every claim fails with this reason. */
static int build_cdi(struct dra_daemon *d)
{
        if (!d->node)
                return 0;
        struct cdi_options o;
        cdi_options_from_config(d->config, &o);
        _cleanup_free_ char *error = NULL;
        int r = cdi_specs_build(daemon_inventory(d), &o, &d->cdi, &error);
        if (r == -ENOMEM)
                return -ENOMEM;
        if (r < 0) {
                d->cdi_error = error ? TAKE_PTR(error) : strdup(strerror(-r));
                if (!d->cdi_error)
                        return -ENOMEM;
                log_error("Cannot build the CDI edits of this node's GPUs, so no claim can be prepared: %s",
                          d->cdi_error);
                return 0;
        }
        const cdi_spec *s = d->cdi->specs[0];
        log_info("Claim CDI specs go to %s: driver %s from the driver root %s, "
                 "device nodes from the dev root %s, %zu mounts, %zu hooks",
                 d->config->flags.dra.cdi_root, daemon_inventory(d)->driver_version, d->cdi->driver_root,
                 d->cdi->dev_root, s->edits.n_mounts, s->edits.n_hooks);
        return 0;
}

static int make_dir(const char *path, mode_t mode)
{
        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Cannot create %s: %m", path);
        return 0;
}

static void on_socket_timer(loop_source *s, void *userdata)
{
        struct dra_daemon *d = userdata;
        _cleanup_free_ char *error = NULL;
        int n = dra_service_check_sockets(d->service, &error);
        if (n < 0)
                log_error("%s", error ? error : strerror(-n));
        else if (n > 0)
                log_warning("A socket of this driver was removed: serving it again");
        loop_timer_arm(s, SOCKET_CHECK_INTERVAL);
}

static void on_exit_signal(loop_source *s, int signo, void *userdata)
{
        log_info("Received signal %d, shutting down", signo);
        loop_exit(loop_source_get_loop(s), 0);
}

static int start_service(struct dra_daemon *d)
{
        const config *c = d->config;
        static const struct dra_service_observer observer = {
                .on_registration = on_registration,
                .on_prepared = on_prepared,
                .on_unprepared = on_unprepared,
                .on_refusal = on_refusal,
        };
        struct dra_service_observer ob = observer;
        ob.userdata = d;
        struct dra_service_options o = {
                .node = c->flags.dra.node_name,
                .registrar_dir = c->flags.dra.registrar_dir,
                .plugin_dir = d->plugin_dir,
                .inventory = daemon_inventory(d),
                .health = daemon_health(d),
                .kube = d->kube,
                .write_spec = write_spec,
                .remove_spec = remove_spec,
                .spec_userdata = d,
                .observer = &ob,
        };
        _cleanup_free_ char *error = NULL;
        int r = dra_service_new(d->loop, &o, &d->service, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ? error : strerror(-r));
        const struct dra_state *state = dra_claims_state(dra_service_claims(d->service));
        log_info("%zu prepared ResourceClaims in the checkpoint", state->n_claims);

        /* After a restart: every recorded claim's spec again, orphans (a crash mid-prepare) removed. */
        _cleanup_strv_free_ char **names = NULL;
        size_t removed = 0;
        if ((r = cdi_dir_names(c->flags.dra.cdi_root, &names)) < 0)
                return log_error_errno(r, "Cannot read %s: %m", c->flags.dra.cdi_root);
        if ((r = dra_claims_recover(dra_service_claims(d->service), names, &removed, &error)) < 0)
                log_warning("Restoring the CDI specs of prepared claims: %s", error ? error : strerror(-r));
        if (removed > 0)
                log_info("Removed %zu CDI specs of claims that were never recorded as prepared", removed);

        if ((r = dra_service_start(d->service, &error)) < 0)
                return log_error_errno(r, "%s", error ? error : strerror(-r));
        log_info("Serving DRA driver " DRA_DRIVER " on %s/" DRA_SERVICE_SOCKET
                 ", registration on %s/" DRA_REGISTRATION_SOCKET,
                 d->plugin_dir, c->flags.dra.registrar_dir);
        return loop_add_timer(d->loop, SOCKET_CHECK_INTERVAL, on_socket_timer, d, &d->socket_timer);
}

static int start_publisher(struct dra_daemon *d)
{
        struct dra_publisher_options o = {
                .node = d->config->flags.dra.node_name,
                .on_event = on_publish,
                .userdata = d,
        };
        int r = dra_publisher_new(d->kube, daemon_inventory(d), daemon_health(d), &o, &d->publisher);
        if (r < 0)
                return log_error_errno(r, "Cannot publish ResourceSlices for node %s: %m", o.node);
        return 0;
}

static int dra_daemon_start(struct dra_daemon *d)
{
        static const int handled[] = { SIGTERM, SIGINT, SIGQUIT, 0 };
        const config *c = d->config;
        _cleanup_free_ char *error = NULL;
        int r;
        /* Signals are blocked before NVML starts any thread (see signals_block). */
        if ((r = signals_block(handled)) < 0 || (r = loop_new(&d->loop)) < 0)
                return r;
        if ((r = loop_add_signal(d->loop, SIGTERM, on_exit_signal, d, NULL)) < 0 ||
            (r = loop_add_signal(d->loop, SIGINT, on_exit_signal, d, NULL)) < 0 ||
            (r = loop_add_signal(d->loop, SIGQUIT, on_exit_signal, d, NULL)) < 0)
                return r;
        (void)signal(SIGPIPE, SIG_IGN);
        if (asprintf(&d->plugin_dir, "%s/%s", c->flags.dra.plugins_dir, DRA_DRIVER) < 0)
                return -ENOMEM;
        if ((r = make_dir(d->plugin_dir, 0750)) < 0 || (r = make_dir(c->flags.dra.cdi_root, 0755)) < 0 ||
            (r = open_node(d)) < 0 || (r = start_health(d)) < 0 || (r = build_cdi(d)) < 0)
                return r;
        r = kube_client_new_from_env(d->loop, c->flags.dra.kubeconfig, &d->kube, &error);
        if (r < 0)
                return log_error_errno(r, "Cannot reach the API server: %s", error ? error : strerror(-r));
        if ((r = start_publisher(d)) < 0 || (r = start_service(d)) < 0)
                return r;
        return 0;
}

static void dra_daemon_stop(struct dra_daemon *d)
{
        d->service = dra_service_free(d->service);
        d->publisher = dra_publisher_free(d->publisher);
        d->socket_timer = loop_source_free(d->socket_timer);
        d->kube = kube_client_free(d->kube);
        d->health = health_monitor_free(d->health);
        d->node = node_close(d->node);
        d->cdi = cdi_specs_free(d->cdi);
        free(d->cdi_error);
        free(d->devs);
        free(d->was_healthy);
        free(d->plugin_dir);
        config_free(d->config);
        loop_free(d->loop);
}

int dra_daemon_run(config *c)
{
        struct dra_daemon d = { .config = c };
        int ret = 1;
        int r = dra_daemon_start(&d);
        if (r >= 0) {
                r = loop_run(d.loop);
                ret = r < 0 ? 1 : 0;
        }
        dra_daemon_stop(&d);
        if (ret != 0)
                log_info("Exiting with an error");
        return ret;
}
