/* SPDX-License-Identifier: Apache-2.0 */
/* One resource's DevicePlugin service: its socket, the five RPCs, the open ListAndWatch streams and
 * the registration with the kubelet. */
#include <inttypes.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/parse.h"
#include "base/strv.h"
#include "plugin/allocate.h"
#include "plugin/kubelet-wire.h"
#include "plugin/plugin-internal.h"
#include "plugin/prefer.h"
#include "rpc/rpc.h"

#define REGISTER_TIMEOUT (15 * NSEC_PER_SEC)
#define BACKOFF_FIRST    (500 * NSEC_PER_MSEC)
#define BACKOFF_MAX      (30 * NSEC_PER_SEC)

struct endpoint {
        plugin *plugin;
        const struct plan_resource *resource;
        char *socket_path;
        rpc_server *server;
        rpc_call **streams;
        size_t n_streams;
        bool *sent_health; /* health of each device as last sent; NULL before the first send */
        rpc_client_call *register_call;
        loop_source *retry_timer;
        uint64_t backoff;
        bool registered;
        bool closing; /* we close the streams ourselves (stop, reload): not worth a line each */
};

static void observe_allocate(endpoint *e, bool ok, uint64_t nsec)
{
        const struct plugin_observer *o = &e->plugin->observer;
        if (o->on_allocate)
                o->on_allocate(e->resource->name, ok, nsec, o->userdata);
}

static void observe_preferred(endpoint *e, bool ok, uint64_t nsec)
{
        const struct plugin_observer *o = &e->plugin->observer;
        if (o->on_preferred)
                o->on_preferred(e->resource->name, ok, nsec, o->userdata);
}

static void endpoint_handle_options(rpc_call *call, const uint8_t *msg, size_t size, void *userdata);
static void endpoint_handle_list_and_watch(rpc_call *call, const uint8_t *msg, size_t size, void *userdata);
static void endpoint_handle_preferred(rpc_call *call, const uint8_t *msg, size_t size, void *userdata);
static void endpoint_handle_allocate(rpc_call *call, const uint8_t *msg, size_t size, void *userdata);
static void endpoint_handle_prestart(rpc_call *call, const uint8_t *msg, size_t size, void *userdata);

static const struct rpc_method methods[] = {
        { DP_PATH_OPTIONS, RPC_UNARY, endpoint_handle_options },
        { DP_PATH_LIST_WATCH, RPC_SERVER_STREAM, endpoint_handle_list_and_watch },
        { DP_PATH_PREFERRED, RPC_UNARY, endpoint_handle_preferred },
        { DP_PATH_ALLOCATE, RPC_UNARY, endpoint_handle_allocate },
        { DP_PATH_PRE_START, RPC_UNARY, endpoint_handle_prestart },
};

/* protobuf-c repeated strings are counted, not NULL-terminated. */
static char *join_ids(char *const *ids, size_t n)
{
        size_t len = 1;
        for (size_t i = 0; i < n; i++)
                len += strlen(ids[i]) + 1;
        char *s = malloc(len), *e = s;
        if (!s)
                return NULL;
        *e = '\0';
        for (size_t i = 0; i < n; i++)
                e = stpcpy(stpcpy(e, i ? "," : ""), ids[i]);
        return s;
}

static endpoint *call_endpoint(rpc_call *call)
{
        return rpc_server_get_userdata(rpc_call_get_server(call));
}

const struct plan_resource *endpoint_resource(const endpoint *e)
{
        return e->resource;
}

bool endpoint_registered(const endpoint *e)
{
        return e->registered;
}

size_t endpoint_streams(const endpoint *e)
{
        return e->n_streams;
}

bool endpoint_serving(const endpoint *e)
{
        return e->server;
}

/* What the kubelet is told: the device's health, and Unhealthy for every device while the gate holds
 * the resource back. */
static bool device_healthy(const endpoint *e, const struct plan_device *d)
{
        return plugin_resource_ready(e->plugin, e->resource) && plugin_device_healthy(e->plugin, d);
}

int endpoint_new(plugin *p, const struct plan_resource *r, endpoint **ret)
{
        endpoint *e = new0(endpoint, 1);
        if (!e)
                return -ENOMEM;
        e->plugin = p;
        e->resource = r;
        e->backoff = BACKOFF_FIRST;
        if (asprintf(&e->socket_path, "%s/%s", p->socket_dir, r->socket_name) < 0) {
                free(e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

static void endpoint_close_streams(endpoint *e)
{
        /* The server shutdown runs each stream's close handler, which removes it from the list. */
        e->closing = true;
        rpc_server_free(e->server);
        e->closing = false;
        e->server = NULL;
        e->n_streams = 0;
        e->sent_health = mfree(e->sent_health);
}

static void endpoint_stop(endpoint *e)
{
        e->register_call = rpc_client_call_cancel(e->register_call);
        e->retry_timer = loop_source_free(e->retry_timer);
        endpoint_close_streams(e);
        e->registered = false;
}

endpoint *endpoint_free(endpoint *e)
{
        if (!e)
                return NULL;
        endpoint_stop(e);
        free(e->streams);
        free(e->socket_path);
        free(e);
        return NULL;
}

void endpoint_rebind(endpoint *e, const struct plan_resource *r)
{
        e->resource = r;
}

bool endpoint_socket_missing(const endpoint *e)
{
        struct stat st;
        return stat(e->socket_path, &st) < 0 || !S_ISSOCK(st.st_mode);
}

/* ---- ListAndWatch ------------------------------------------------------------------------------ */

static int list_pack(endpoint *e, bool empty, uint8_t **ret, size_t *ret_size)
{
        const struct plan_resource *r = e->resource;
        size_t n = empty ? 0 : r->n_devices;
        _cleanup_free_ bool *healthy = new0(bool, n + 1);
        if (!healthy)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                healthy[i] = device_healthy(e, &r->devices[i]);
        return kubelet_wire_pack_list(r->devices, healthy, n, ret, ret_size);
}

/* A stream that missed a list must not stay open with stale devices: end it, so that the kubelet opens a
 * new one and gets the full list. A finished call gets no close handler: forget it here. */
static void stream_abort(endpoint *e, size_t i, int error)
{
        rpc_call *call = e->streams[i];
        e->streams[i] = e->streams[--e->n_streams];
        rpc_call_fail(call, GRPC_UNAVAILABLE, "cannot send the device list: %s", strerror(-error));
}

/* A unary answer that could not be queued (out of memory, or over the message limit) still ends the call. */
static void reply_or_fail(rpc_call *call, int r)
{
        if (r < 0)
                rpc_call_fail(call, r == -EMSGSIZE ? GRPC_RESOURCE_EXHAUSTED : GRPC_INTERNAL,
                              "cannot send the response: %s", strerror(-r));
}

/* Remembers the health just sent, so that only a real change is sent again. */
static void record_sent(endpoint *e)
{
        if (!e->sent_health)
                e->sent_health = new0(bool, e->resource->n_devices + 1);
        for (size_t i = 0; e->sent_health && i < e->resource->n_devices; i++)
                e->sent_health[i] = device_healthy(e, &e->resource->devices[i]);
}

static void endpoint_send_list(endpoint *e, bool empty)
{
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size;
        int r = list_pack(e, empty, &buf, &size);
        if (r < 0) {
                log_error_errno(r, "Failed to build the device list of %s: %m", e->resource->name);
                return;
        }
        for (size_t i = 0; i < e->n_streams;) {
                r = rpc_call_send(e->streams[i], buf, size);
                if (r < 0) {
                        log_warning_errno(r, "Failed to send the device list of %s: %m", e->resource->name);
                        stream_abort(e, i, r);
                        continue;
                }
                i++;
        }
        record_sent(e);
}

void endpoint_send_list_if_changed(endpoint *e)
{
        bool changed = !e->sent_health;
        for (size_t i = 0; !changed && i < e->resource->n_devices; i++)
                changed = e->sent_health[i] != device_healthy(e, &e->resource->devices[i]);
        if (changed && e->n_streams > 0)
                endpoint_send_list(e, false);
}

void endpoint_retire(endpoint *e)
{
        endpoint_send_list(e, true);
        endpoint_stop(e);
        (void)unlink(e->socket_path);
}

static void stream_closed(rpc_call *call, void *userdata)
{
        endpoint *e = userdata;
        for (size_t i = 0; i < e->n_streams; i++)
                if (e->streams[i] == call) {
                        e->streams[i] = e->streams[--e->n_streams];
                        break;
                }
        if (!e->closing)
                log_info("ListAndWatch stream of %s closed (%zu open)", e->resource->name, e->n_streams);
}

static void endpoint_handle_list_and_watch(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        endpoint *e = call_endpoint(call);
        rpc_call **s = realloc(e->streams, sizeof(rpc_call *) * (e->n_streams + 1));
        if (!s) {
                rpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        e->streams = s;
        e->streams[e->n_streams++] = call;
        rpc_call_set_close_handler(call, stream_closed, e);

        /* The full list at once: until it arrives the kubelet has no devices for this resource. */
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;
        int r = list_pack(e, false, &buf, &n);
        if (r >= 0)
                r = rpc_call_send(call, buf, n);
        if (r < 0) {
                /* also off the list of streams: a finished call gets no close handler */
                stream_abort(e, e->n_streams - 1, r);
                return;
        }
        record_sent(e);
        log_info("ListAndWatch of %s opened: sent %zu devices", e->resource->name, e->resource->n_devices);
}

/* ---- unary calls ------------------------------------------------------------------------------- */

static void endpoint_handle_options(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;
        int r = kubelet_wire_pack_options(&buf, &n);
        reply_or_fail(call, r < 0 ? r : rpc_call_reply(call, buf, n));
}

static void endpoint_handle_prestart(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        reply_or_fail(call, rpc_call_reply(call, NULL, 0));
}

/* A request that could not be decoded: not protobuf, or one that would take too much memory. */
static void fail_unpack(rpc_call *call, const char *what, int r)
{
        if (r == -EBADMSG)
                rpc_call_fail(call, GRPC_INVALID_ARGUMENT, "cannot decode %s", what);
        else if (r == -E2BIG)
                rpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED,
                              "%s too large: decoding it takes more than %u bytes", what,
                              KUBELET_REQUEST_MEMORY_MAX);
        else
                rpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
}

/* Logged at debug level: the IDs of every container. */
static void log_allocated(const endpoint *e, const struct kubelet_request *req)
{
        for (size_t i = 0; i < req->n_containers; i++) {
                const struct container_request *c = &req->containers[i];
                _cleanup_free_ char *ids = join_ids(c->ids, c->n_ids);
                log_debug("Allocate %s: %s", e->resource->name, strna(ids));
        }
}

static void endpoint_handle_allocate(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        endpoint *e = call_endpoint(call);
        uint64_t start = now_nsec();
        _cleanup_(kubelet_request_freep) struct kubelet_request *req = NULL;
        int r = kubelet_wire_unpack_allocate(msg, size, &req);
        if (r < 0) {
                fail_unpack(call, "AllocateRequest", r);
                observe_allocate(e, false, now_nsec() - start);
                return;
        }
        size_t n = req->n_containers;
        struct allocate_response **resps = new0(struct allocate_response *, n + 1);
        struct allocate_context ctx = {
                .config = e->plugin->config,
                .resource = e->resource,
                .control_devices = e->plugin->control_devices,
                .cdi_error = e->plugin->cdi_error,
        };
        _cleanup_free_ char *error = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        size_t out_size = 0;
        r = resps ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = allocate_container(&ctx, req->containers[i].ids, req->containers[i].n_ids, &resps[i],
                                       &error);
        if (r >= 0)
                r = kubelet_wire_pack_allocate(resps, n, &out, &out_size);
        if (r >= 0 || r == -EMSGSIZE) {
                reply_or_fail(call, r < 0 ? r : rpc_call_reply(call, out, out_size));
                log_allocated(e, req);
        } else if (error) {
                /* A refused request carries UNKNOWN, as NVIDIA's plugin (a plain Go error): the kubelet
                 * shows the message in the pod's event either way. */
                log_warning("Allocate failed: %s", error);
                rpc_call_fail(call, GRPC_UNKNOWN, "%s", error);
        } else
                rpc_call_fail(call, GRPC_INTERNAL, "allocate failed: %s", strerror(-r));
        observe_allocate(e, r >= 0, now_nsec() - start);
        for (size_t i = 0; resps && i < n; i++)
                allocate_response_free(resps[i]);
        free(resps);
}

static void endpoint_handle_preferred(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        endpoint *e = call_endpoint(call);
        const struct plan_resource *res = e->resource;
        uint64_t start = now_nsec();
        _cleanup_(kubelet_request_freep) struct kubelet_request *req = NULL;
        int r = kubelet_wire_unpack_preferred(msg, size, &req);
        if (r < 0) {
                fail_unpack(call, "PreferredAllocationRequest", r);
                observe_preferred(e, false, now_nsec() - start);
                return;
        }
        size_t n = req->n_containers;
        _cleanup_free_ bool *healthy = new0(bool, res->n_devices + 1);
        char ***ids = new0(char **, n + 1);
        _cleanup_free_ uint8_t *out = NULL;
        size_t out_size = 0;
        r = healthy && ids ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < res->n_devices; i++)
                healthy[i] = device_healthy(e, &res->devices[i]);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const struct container_request *c = &req->containers[i];
                r = preferred_allocation(e->plugin->inventory, res, healthy,
                                         e->plugin->config->flags.plugin.shared_devices_allocation_policy,
                                         c->ids, c->n_ids, c->must_include, c->n_must_include, c->size,
                                         &ids[i]);
        }
        if (r >= 0)
                r = kubelet_wire_pack_preferred(ids, n, &out, &out_size);
        if (r >= 0)
                r = rpc_call_reply(call, out, out_size);
        if (r < 0)
                rpc_call_fail(call, GRPC_INTERNAL, "preferred allocation failed: %s", strerror(-r));
        observe_preferred(e, r >= 0, now_nsec() - start);
        for (size_t i = 0; ids && i < n; i++)
                strv_free(ids[i]);
        free(ids);
}

/* ---- registration ------------------------------------------------------------------------------ */

static void endpoint_register(endpoint *e);

static void retry_fired(loop_source *s, void *userdata)
{
        endpoint_register(userdata);
}

static void schedule_retry(endpoint *e)
{
        if (!e->retry_timer) {
                if (loop_add_timer(e->plugin->loop, e->backoff, retry_fired, e, &e->retry_timer) < 0)
                        return;
        } else
                loop_timer_arm(e->retry_timer, e->backoff);
        e->backoff = MIN(e->backoff * 2, BACKOFF_MAX);
}

static void register_done(int status, const char *message, const uint8_t *resp, size_t size, void *userdata)
{
        endpoint *e = userdata;
        e->register_call = NULL;
        rpc_server_expect_client(e->server, false);
        if (status != GRPC_OK) {
                log_warning(
                        "Registering %s with the kubelet at %s failed (status %d: %s); retrying in %.1fs",
                        e->resource->name, e->plugin->kubelet_socket, status, strna(message),
                        (double)e->backoff / NSEC_PER_SEC);
                schedule_retry(e);
                return;
        }
        e->registered = true;
        e->backoff = BACKOFF_FIRST;
        e->plugin->registrations++;
        if (e->plugin->observer.on_registered)
                e->plugin->observer.on_registered(e->resource->name, e->plugin->observer.userdata);
        log_info("Registered %s with the kubelet: %zu devices on %s", e->resource->name,
                 e->resource->n_devices, e->socket_path);
}

static void endpoint_register(endpoint *e)
{
        const char *endpoint_name = strrchr(e->socket_path, '/') + 1;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;
        int r = kubelet_wire_pack_register(endpoint_name, e->resource->name, &buf, &n);
        if (r < 0) {
                log_error_errno(r, "Cannot build the Register request of %s: %m", e->resource->name);
                return;
        }
        e->register_call = rpc_client_call_cancel(e->register_call);
        /* The kubelet dials back inside Register: its connection gets in however full the socket is. */
        rpc_server_expect_client(e->server, true);
        r = rpc_client_call_start(e->plugin->loop, e->plugin->kubelet_socket, DP_PATH_REGISTER, buf, n,
                                  REGISTER_TIMEOUT, register_done, e, &e->register_call);
        if (r < 0) {
                rpc_server_expect_client(e->server, false);
                log_warning_errno(r, "Cannot call the kubelet at %s: %m; retrying",
                                  e->plugin->kubelet_socket);
                schedule_retry(e);
        }
}

/* Logged by the rpc layer's rate limit: once per peer in ten minutes, with a count of the rest. */
static void on_refusal(const struct rpc_peer *peer, enum rpc_refusal why, size_t n_connections,
                       uint64_t suppressed, void *userdata)
{
        endpoint *e = userdata;
        char more[64] = "";
        if (suppressed > 0)
                snprintf(more, sizeof more, "; %" PRIu64 " more not logged", suppressed);
        log_warning("%s: %s (pid %d, uid %d; %zu connections open%s)", e->socket_path,
                    rpc_refusal_to_string(why), (int)peer->pid, (int)peer->uid, n_connections, more);
}

int endpoint_start(endpoint *e)
{
        endpoint_stop(e);
        int r = rpc_server_new(e->plugin->loop, methods, ELEMENTSOF(methods), e, &e->server);
        if (r < 0)
                return log_error_errno(r, "Failed to create the gRPC server of %s: %m", e->resource->name);
        rpc_server_set_refusal_handler(e->server, on_refusal, e);
        /* Serve first, then register: the kubelet dials back inside Register (reference 3). */
        r = rpc_server_listen(e->server, e->socket_path);
        if (r == -ENAMETOOLONG)
                return log_error_errno(r, "Socket path %s is longer than a unix socket address allows",
                                       e->socket_path);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m", e->socket_path);
        log_info("Serving %s on %s", e->resource->name, e->socket_path);
        e->backoff = BACKOFF_FIRST;
        if (e->plugin->kubelet_socket)
                endpoint_register(e);
        return 0;
}
