/* SPDX-License-Identifier: Apache-2.0 */
#include "plugin/plugin-internal.h"

#include <sys/inotify.h>
#include <sys/un.h>

#include "base/log.h"
#include "base/parse.h"
#include "base/strv.h"
#include "health/health.h"

/* Socket-directory events are coalesced: a kubelet restart deletes every socket and creates its own,
 * which arrives as a burst; one resync after it settles re-creates and re-registers once. */
#define RESYNC_DELAY (20 * NSEC_PER_MSEC)

bool plugin_device_healthy(const plugin *p, const struct plan_device *d)
{
        if (!p->health || !p->inventory || d->gpu >= p->inventory->n_gpus)
                return true;
        const struct health_unit *g = health_tracker_unit(p->health, d->gpu, -1);
        if (g && !g->healthy)
                return false;
        const struct health_unit *m = d->mig >= 0 ? health_tracker_unit(p->health, d->gpu, d->mig) : NULL;
        return !m || m->healthy;
}

void plugin_health_changed(plugin *p)
{
        for (size_t i = 0; i < p->n_endpoints; i++)
                endpoint_send_list_if_changed(p->endpoints[i]);
}

bool plugin_resource_ready(const plugin *p, const struct plan_resource *r)
{
        return !p->gate.ready || p->gate.ready(r, p->gate.userdata);
}

/* A resource held back by the gate is not started; one already served restarts as usual (its devices
 * stay Unhealthy while it is not ready). */
static bool endpoint_may_start(const plugin *p, const endpoint *e)
{
        return endpoint_serving(e) || plugin_resource_ready(p, endpoint_resource(e));
}

void plugin_gate_changed(plugin *p)
{
        for (size_t i = 0; i < p->n_endpoints; i++) {
                endpoint *e = p->endpoints[i];
                if (!endpoint_serving(e) && plugin_resource_ready(p, endpoint_resource(e)))
                        (void)endpoint_start(e);
                else
                        endpoint_send_list_if_changed(e);
        }
}

void plugin_set_health(plugin *p, const health_tracker *t)
{
        p->health = t;
        plugin_health_changed(p);
}

const plan *plugin_plan(const plugin *p)
{
        return p->plan;
}

bool plugin_resource_registered(const plugin *p, size_t i)
{
        return i < p->n_endpoints && endpoint_registered(p->endpoints[i]);
}

bool plugin_resource_serving(const plugin *p, size_t i)
{
        return i < p->n_endpoints && endpoint_serving(p->endpoints[i]);
}

bool plugin_resource_held(const plugin *p, size_t i)
{
        return i < p->n_endpoints && !endpoint_serving(p->endpoints[i]) &&
               !plugin_resource_ready(p, endpoint_resource(p->endpoints[i]));
}

bool plugin_registers(const plugin *p)
{
        return p->kubelet_socket;
}

/* ---- the socket directory watch ---------------------------------------------------------------- */

static void resync(loop_source *s, void *userdata)
{
        plugin *p = userdata;
        bool all = p->kubelet_restarted;
        p->kubelet_restarted = false;
        if (all) {
                log_info("inotify: %s created, re-registering every resource", p->kubelet_socket);
                if (p->observer.on_kubelet_restart)
                        p->observer.on_kubelet_restart(p->observer.userdata);
        }
        for (size_t i = 0; i < p->n_endpoints; i++) {
                endpoint *e = p->endpoints[i];
                if ((!all && !endpoint_socket_missing(e)) || !endpoint_may_start(p, e))
                        continue;
                if (!all)
                        log_info("inotify: socket of %s removed, serving it again",
                                 endpoint_resource(e)->name);
                (void)endpoint_start(e);
        }
}

static void schedule_resync(plugin *p)
{
        if (!p->resync_timer) {
                if (loop_add_timer(p->loop, RESYNC_DELAY, resync, p, &p->resync_timer) < 0)
                        log_error("Cannot schedule re-registration");
        } else if (!loop_timer_armed(p->resync_timer))
                loop_timer_arm(p->resync_timer, RESYNC_DELAY);
}

static void inotify_event(loop_source *s, int fd, uint32_t revents, void *userdata)
{
        plugin *p = userdata;
        const char *kubelet_name = p->kubelet_socket ? strrchr(p->kubelet_socket, '/') + 1 : NULL;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n <= 0)
                        return;
                for (char *ptr = buf; ptr < buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *)ptr;
                        ptr += sizeof(*ev) + ev->len;
                        if (ev->mask & IN_Q_OVERFLOW) {
                                p->kubelet_restarted = true;
                                schedule_resync(p);
                                continue;
                        }
                        if (ev->len == 0)
                                continue;
                        if (kubelet_name && streq(ev->name, kubelet_name) &&
                            (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
                                p->kubelet_restarted = true;
                                schedule_resync(p);
                        } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
                                for (size_t i = 0; i < p->n_endpoints; i++)
                                        if (streq(ev->name, endpoint_resource(p->endpoints[i])->socket_name))
                                                schedule_resync(p);
                }
        }
}

static int watch_start(plugin *p)
{
        p->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (p->inotify_fd < 0)
                return log_error_errno(errno, "Failed to create an inotify instance: %m");
        if (inotify_add_watch(p->inotify_fd, p->socket_dir,
                              IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ONLYDIR) < 0)
                return log_error_errno(errno, "Failed to watch the device plugin directory %s: %m",
                                       p->socket_dir);
        return loop_add_io(p->loop, p->inotify_fd, EPOLLIN, inotify_event, p, &p->inotify_source);
}

/* ---- start, stop, reload ----------------------------------------------------------------------- */

/* The endpoints of new_plan: those whose resource did not change are taken from p->endpoints (their slot
 * there set to NULL), the others are new (fresh[i]). On failure p->endpoints is as it was. */
static int endpoints_for_plan(plugin *p, plan *new_plan, endpoint ***ret, bool **ret_fresh, size_t *ret_n)
{
        size_t n = new_plan->n_resources;
        _cleanup_free_ endpoint **eps = new0(endpoint *, n + 1);
        _cleanup_free_ bool *fresh = new0(bool, n + 1);
        _cleanup_free_ size_t *slot = new0(size_t, n + 1);
        if (!eps || !fresh || !slot)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct plan_resource *r = &new_plan->resources[i];
                for (size_t j = 0; j < p->n_endpoints && !eps[i]; j++)
                        if (p->endpoints[j] && plan_resource_equal(endpoint_resource(p->endpoints[j]), r)) {
                                eps[i] = p->endpoints[j];
                                p->endpoints[j] = NULL;
                                slot[i] = j;
                        }
                if (eps[i])
                        continue;
                fresh[i] = true;
                int k = endpoint_new(p, r, &eps[i]);
                if (k < 0) {
                        /* undo: kept endpoints go back to their slots (they used to be freed here and
                         * left NULL holes in p->endpoints), new ones are freed */
                        for (size_t j = 0; j < i; j++)
                                if (fresh[j])
                                        endpoint_free(eps[j]);
                                else
                                        p->endpoints[slot[j]] = eps[j];
                        return k;
                }
        }
        for (size_t i = 0; i < n; i++)
                if (!fresh[i])
                        endpoint_rebind(eps[i], &new_plan->resources[i]);
        *ret = TAKE_PTR(eps);
        *ret_fresh = TAKE_PTR(fresh);
        *ret_n = n;
        return 0;
}

/* Takes new_plan, also on failure. */
static int plugin_apply(plugin *p, plan *new_plan)
{
        endpoint **eps;
        _cleanup_free_ bool *fresh = NULL;
        size_t n;
        int r = endpoints_for_plan(p, new_plan, &eps, &fresh, &n);
        if (r < 0) {
                plan_free(new_plan);
                return r;
        }
        /* Whatever is left of the old set is gone from the new plan. */
        for (size_t j = 0; j < p->n_endpoints; j++)
                if (p->endpoints[j]) {
                        const struct plan_resource *res = endpoint_resource(p->endpoints[j]);
                        const struct plan_resource *next = plan_find_resource(new_plan, res->name);
                        /* A resource whose devices changed is served again at once: not an outage. */
                        if (next)
                                log_info("Resource %s changed from %zu to %zu devices: serving the new list",
                                         res->name, res->n_devices, next->n_devices);
                        else
                                log_info("Resource %s is no longer advertised", res->name);
                        endpoint_retire(p->endpoints[j]);
                        endpoint_free(p->endpoints[j]);
                }
        free(p->endpoints);
        p->endpoints = eps;
        p->n_endpoints = n;
        _cleanup_(plan_freep) plan *old_plan = p->plan;
        p->plan = new_plan;
        /* New endpoints start, unless the gate holds them back; a kept one only if it is not serving at all.
         * One that is registering (after a kubelet restart) or waiting to retry is left to finish: starting
         * it again re-created its socket and registered twice (found by the soak,
         * tests/failinject/test_reload_races.py). */
        for (size_t i = 0; i < n; i++)
                if ((fresh[i] || (!endpoint_registered(eps[i]) && endpoint_streams(eps[i]) == 0 &&
                                  endpoint_socket_missing(eps[i]))) &&
                    endpoint_may_start(p, eps[i]))
                        (void)endpoint_start(eps[i]);
        if (p->observer.on_plan_changed)
                p->observer.on_plan_changed(old_plan, new_plan, p->observer.userdata);
        return 0;
}

static int plan_for(const inventory *inv, const config *c, plan **ret)
{
        _cleanup_free_ char *error = NULL;
        int r = plan_build(inv, c, ret, &error);
        if (r < 0)
                return log_error_errno(r, "Invalid device configuration: %s", error ? error : strerror(-r));
        return 0;
}

/* A socket path longer than sun_path cannot be bound or dialled: say so at start, once, and stop, rather
 * than retry for ever with an error per resource. */
static int socket_paths_fit(plugin *p, const plan *pl)
{
        const size_t max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;
        if (p->kubelet_socket && strlen(p->kubelet_socket) > max)
                return log_error_errno(
                        -ENAMETOOLONG,
                        "--kubelet-socket %s is %zu bytes long, more than the %zu a unix socket "
                        "address allows",
                        p->kubelet_socket, strlen(p->kubelet_socket), max);
        for (size_t i = 0; i < pl->n_resources; i++) {
                size_t len = strlen(p->socket_dir) + 1 + strlen(pl->resources[i].socket_name);
                if (len > max)
                        return log_error_errno(
                                -ENAMETOOLONG,
                                "Socket path %s/%s is %zu bytes long, more than the %zu a unix "
                                "socket address allows: use a shorter --kubelet-socket directory",
                                p->socket_dir, pl->resources[i].socket_name, len, max);
        }
        return 0;
}

int plugin_socket_dir(const char *kubelet_socket, char **ret)
{
        const char *slash = kubelet_socket ? strrchr(kubelet_socket, '/') : NULL;
        if (!isempty(kubelet_socket) && (!slash || slash == kubelet_socket))
                return -EINVAL;
        char *d = isempty(kubelet_socket) ? strdup("/var/lib/kubelet/device-plugins")
                                          : strndup(kubelet_socket, (size_t)(slash - kubelet_socket));
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

int plugin_new(loop *l, const config *c, const inventory *inv, const struct plugin_options *o, plugin **ret)
{
        _cleanup_(plugin_freep) plugin *p = new0(plugin, 1);
        if (!p)
                return -ENOMEM;
        p->loop = l;
        p->config = c;
        p->inventory = inv;
        p->inotify_fd = -EBADF;
        p->health = o->health;
        if (o->observer)
                p->observer = *o->observer;
        if (o->gate)
                p->gate = *o->gate;
        p->control_devices = strv_copy(o->control_devices);
        if (!p->control_devices)
                return -ENOMEM;
        if (o->kubelet_socket) {
                p->kubelet_socket = strdup(o->kubelet_socket);
                if (!p->kubelet_socket)
                        return -ENOMEM;
                int r = plugin_socket_dir(o->kubelet_socket, &p->socket_dir);
                if (r == -EINVAL)
                        return log_error_errno(r, "--kubelet-socket %s: needs a directory part",
                                               o->kubelet_socket);
                if (r < 0)
                        return r;
        } else if (!(p->socket_dir =
                             strdup(o->socket_dir ? o->socket_dir : "/var/lib/kubelet/device-plugins")))
                return -ENOMEM;
        *ret = TAKE_PTR(p);
        return 0;
}

int plugin_start(plugin *p)
{
        int r;
        if (!p->inventory) {
                log_warning("No devices found. Waiting indefinitely.");
                return 0;
        }
        plan *new_plan;
        if ((r = plan_for(p->inventory, p->config, &new_plan)) < 0)
                return r;
        if (new_plan->n_resources == 0)
                log_warning("No devices found. Waiting indefinitely.");
        if ((r = socket_paths_fit(p, new_plan)) < 0) {
                plan_free(new_plan);
                return r;
        }
        if ((r = watch_start(p)) < 0) {
                plan_free(new_plan);
                return r;
        }
        return plugin_apply(p, new_plan);
}

int plugin_reload(plugin *p, const config *c, const inventory *inv)
{
        const inventory *next = inv ? inv : p->inventory;
        if (!next) {
                p->config = c;
                return 0;
        }
        plan *new_plan;
        int r = plan_for(next, c, &new_plan);
        if (r < 0) {
                log_warning("Keeping the running configuration");
                return r;
        }
        /* The first devices ever (NVML came up after a start without it): the socket directory is
         * watched from now on. */
        if (!p->inotify_source && (r = watch_start(p)) < 0) {
                plan_free(new_plan);
                return r;
        }
        const config *old = p->config;
        const inventory *old_inv = p->inventory;
        p->config = c;
        p->inventory = next;
        r = plugin_apply(p, new_plan);
        if (r < 0) {
                p->config = old;
                p->inventory = old_inv;
        }
        return r;
}

const inventory *plugin_inventory(const plugin *p)
{
        return p->inventory;
}

int plugin_set_cdi_error(plugin *p, const char *error)
{
        char *copy = NULL;
        if (error && !(copy = strdup(error)))
                return -ENOMEM;
        free(p->cdi_error);
        p->cdi_error = copy;
        return 0;
}

plugin *plugin_free(plugin *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_endpoints; i++)
                endpoint_free(p->endpoints[i]);
        free(p->endpoints);
        loop_source_free(p->resync_timer);
        loop_source_free(p->inotify_source);
        safe_close(p->inotify_fd);
        plan_free(p->plan);
        strv_free(p->control_devices);
        free(p->cdi_error);
        free(p->socket_dir);
        free(p->kubelet_socket);
        free(p);
        return NULL;
}
