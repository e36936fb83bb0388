/* SPDX-License-Identifier: Apache-2.0 */
#include "dra/dra-service.h"

#include <sys/stat.h>

#include "base/error.h"
#include "base/parse.h"
#include "base/strv.h"
#include "rpc/rpc.h"

/* A claim read must finish well within the kubelet's 45 s for the whole NodePrepareResources call. */
#define CLAIM_READ_TIMEOUT (20 * NSEC_PER_SEC)

struct fetch {
        dra_service *service;
        uint64_t token;
        kube_call *call;
        struct fetch *prev, *next;
};

/* One NodePrepareResources call waiting for its claims. */
struct prepare_call {
        dra_service *service;
        rpc_call *call; /* NULL once the kubelet went away */
        struct dra_claim_list claims;
        struct prepare_call *prev, *next;
};

struct dra_service {
        loop *loop;
        char *node;
        char *registration_socket, *service_socket, *checkpoint;
        kube_client *kube;
        dra_claims *claims;
        rpc_server *registration, *dra;
        struct dra_service_observer observer;
        struct dra_claims_ops ops;
        void *spec_userdata;
        struct fetch *fetches;
        struct prepare_call *prepares;
};

#define CHAIN_REMOVE(head, x)                                                                               \
        do {                                                                                                \
                if ((x)->prev)                                                                              \
                        (x)->prev->next = (x)->next;                                                        \
                else                                                                                        \
                        (head) = (x)->next;                                                                 \
                if ((x)->next)                                                                              \
                        (x)->next->prev = (x)->prev;                                                        \
                (x)->prev = (x)->next = NULL;                                                               \
        } while (0)

#define CHAIN_PREPEND(head, x)                                                                              \
        do {                                                                                                \
                (x)->next = (head);                                                                         \
                if (head)                                                                                   \
                        (head)->prev = (x);                                                                 \
                (head) = (x);                                                                               \
        } while (0)

/* ---- reading claims ------------------------------------------------------------------------------ */

static void fetch_done(int status, const char *body, size_t size, const char *error, void *userdata)
{
        struct fetch *f = userdata;
        dra_service *s = f->service;
        CHAIN_REMOVE(s->fetches, f);
        uint64_t token = f->token;
        free(f);
        dra_claims_fetched(s->claims, token, status, body, size, error);
}

static int fetch(void *userdata, const struct dra_claim_ref *ref, uint64_t token, char **ret_error)
{
        dra_service *s = userdata;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/apis/resource.k8s.io/v1/namespaces/%s/resourceclaims/%s", ref->namespace,
                     ref->name) < 0)
                return -ENOMEM;
        struct fetch *f = new0(struct fetch, 1);
        if (!f)
                return -ENOMEM;
        f->service = s;
        f->token = token;
        int r = kube_request(s->kube, "GET", path, NULL, NULL, CLAIM_READ_TIMEOUT, fetch_done, f, &f->call);
        if (r < 0) {
                free(f);
                return error_set(ret_error, r, "cannot start the request: %s", strerror(-r));
        }
        CHAIN_PREPEND(s->fetches, f);
        return 0;
}

static int write_spec(void *userdata, const struct dra_claim *c, char **ret_error)
{
        dra_service *s = userdata;
        return s->ops.write_spec(s->spec_userdata, c, ret_error);
}

static int remove_spec(void *userdata, const char *uid, char **ret_error)
{
        dra_service *s = userdata;
        return s->ops.remove_spec(s->spec_userdata, uid, ret_error);
}

/* ---- the DRA service ------------------------------------------------------------------------------- */

static void prepare_call_free(struct prepare_call *pc)
{
        dra_claim_list_done(&pc->claims);
        free(pc);
}

static void prepare_close(rpc_call *call, void *userdata)
{
        struct prepare_call *pc = userdata;
        pc->call = NULL; /* the claims are still prepared: a retry is answered from the records */
}

static void prepare_done(void *userdata, const struct dra_prepare_result *r, size_t n)
{
        struct prepare_call *pc = userdata;
        dra_service *s = pc->service;
        CHAIN_REMOVE(s->prepares, pc);
        for (size_t i = 0; i < n && i < pc->claims.n; i++)
                if (s->observer.on_prepared)
                        s->observer.on_prepared(&pc->claims.refs[i], &r[i], s->observer.userdata);
        if (pc->call) {
                _cleanup_free_ uint8_t *buf = NULL;
                size_t size = 0;
                int k = r ? dra_wire_prepare_response_pack(r, n, &buf, &size) : -ENOMEM;
                if (k >= 0)
                        k = rpc_call_reply(pc->call, buf, size);
                if (k < 0)
                        rpc_call_fail(pc->call, GRPC_INTERNAL, "cannot send the answer: %s", strerror(-k));
        }
        prepare_call_free(pc);
}

static void on_prepare(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        dra_service *s = userdata;
        struct prepare_call *pc = new0(struct prepare_call, 1);
        if (!pc) {
                rpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        _cleanup_free_ char *error = NULL;
        int r = dra_wire_claims_unpack(msg, size, &pc->claims, &error);
        if (r < 0) {
                rpc_call_fail(call, GRPC_INVALID_ARGUMENT, "%s", error ? error : strerror(-r));
                prepare_call_free(pc);
                return;
        }
        pc->service = s;
        pc->call = call;
        rpc_call_set_close_handler(call, prepare_close, pc);
        CHAIN_PREPEND(s->prepares, pc);
        /* done may run inside (every claim answered from its record): pc is ready for it. */
        r = dra_claims_prepare(s->claims, pc->claims.refs, pc->claims.n, prepare_done, pc);
        if (r < 0) {
                CHAIN_REMOVE(s->prepares, pc);
                rpc_call_fail(call, r == -EBUSY ? GRPC_RESOURCE_EXHAUSTED : GRPC_INTERNAL, "%s",
                              r == -EBUSY ? "too many NodePrepareResources calls wait for the API server"
                                          : strerror(-r));
                prepare_call_free(pc);
        }
}

struct unprepare_call {
        dra_service *service;
        rpc_call *call;
        const struct dra_claim_list *claims;
};

static void unprepare_done(void *userdata, const struct dra_unprepare_result *r, size_t n)
{
        struct unprepare_call *uc = userdata;
        dra_service *s = uc->service;
        for (size_t i = 0; i < n; i++)
                if (s->observer.on_unprepared)
                        s->observer.on_unprepared(&uc->claims->refs[i], &r[i], s->observer.userdata);
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size = 0;
        int k = dra_wire_unprepare_response_pack(r, n, &buf, &size);
        if (k >= 0)
                k = rpc_call_reply(uc->call, buf, size);
        if (k < 0)
                rpc_call_fail(uc->call, GRPC_INTERNAL, "cannot send the answer: %s", strerror(-k));
}

static void on_unprepare(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        dra_service *s = userdata;
        _cleanup_(dra_claim_list_done) struct dra_claim_list claims = {};
        _cleanup_free_ char *error = NULL;
        int r = dra_wire_claims_unpack(msg, size, &claims, &error);
        if (r < 0) {
                rpc_call_fail(call, GRPC_INVALID_ARGUMENT, "%s", error ? error : strerror(-r));
                return;
        }
        struct unprepare_call uc = { .service = s, .call = call, .claims = &claims };
        r = dra_claims_unprepare(s->claims, claims.refs, claims.n, unprepare_done, &uc);
        if (r < 0)
                rpc_call_fail(call, GRPC_INTERNAL, "%s", strerror(-r));
}

/* ---- the plugin watcher's registration service --------------------------------------------------- */

static void on_get_info(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        dra_service *s = userdata;
        /* Between GetInfo and NotifyRegistrationStatus the kubelet dials the service socket: that connection
         * gets in however full the socket is, as the device plugin's kubelet does inside Register. */
        rpc_server_expect_client(s->dra, true);
        /* Newest first: the kubelet takes the first it supports. */
        char *versions[] = { (char *)DRA_SERVICE_V1, (char *)DRA_SERVICE_V1BETA1, NULL };
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = 0;
        int r = dra_wire_plugin_info_pack(REGISTRATION_TYPE_DRA, DRA_DRIVER, s->service_socket, versions,
                                          &buf, &n);
        if (r >= 0)
                r = rpc_call_reply(call, buf, n);
        if (r < 0)
                rpc_call_fail(call, GRPC_INTERNAL, "%s", strerror(-r));
}

static void on_notify(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        dra_service *s = userdata;
        bool registered = false;
        _cleanup_free_ char *error = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = 0;
        rpc_server_expect_client(s->dra, false);
        int r = dra_wire_registration_status_unpack(msg, size, &registered, &error);
        if (r < 0) {
                rpc_call_fail(call, GRPC_INVALID_ARGUMENT, "not a RegistrationStatus message");
                return;
        }
        if (s->observer.on_registration)
                s->observer.on_registration(registered, error, s->observer.userdata);
        r = dra_wire_registration_status_response_pack(&buf, &n);
        if (r >= 0)
                r = rpc_call_reply(call, buf, n);
        if (r < 0)
                rpc_call_fail(call, GRPC_INTERNAL, "%s", strerror(-r));
}

/* ---- life ------------------------------------------------------------------------------------------ */

static void on_refusal_dra(const struct rpc_peer *peer, enum rpc_refusal why, size_t n_connections,
                           uint64_t suppressed, void *userdata)
{
        dra_service *s = userdata;
        if (s->observer.on_refusal)
                s->observer.on_refusal(s->service_socket, peer, why, n_connections, suppressed,
                                       s->observer.userdata);
}

static void on_refusal_registration(const struct rpc_peer *peer, enum rpc_refusal why, size_t n_connections,
                                    uint64_t suppressed, void *userdata)
{
        dra_service *s = userdata;
        if (s->observer.on_refusal)
                s->observer.on_refusal(s->registration_socket, peer, why, n_connections, suppressed,
                                       s->observer.userdata);
}

int dra_service_new(loop *l, const struct dra_service_options *o, dra_service **ret, char **ret_error)
{
        static const struct rpc_method dra_methods[] = {
                { DRA_PATH_V1 DRA_METHOD_PREPARE, RPC_UNARY, on_prepare },
                { DRA_PATH_V1 DRA_METHOD_UNPREPARE, RPC_UNARY, on_unprepare },
                { DRA_PATH_V1BETA1 DRA_METHOD_PREPARE, RPC_UNARY, on_prepare },
                { DRA_PATH_V1BETA1 DRA_METHOD_UNPREPARE, RPC_UNARY, on_unprepare },
        };
        static const struct rpc_method registration_methods[] = {
                { REGISTRATION_PATH_GET_INFO, RPC_UNARY, on_get_info },
                { REGISTRATION_PATH_NOTIFY, RPC_UNARY, on_notify },
        };
        _cleanup_(dra_service_freep) dra_service *s = new0(dra_service, 1);
        if (!s)
                return -ENOMEM;
        s->loop = l;
        s->kube = o->kube;
        s->spec_userdata = o->spec_userdata;
        s->ops = (struct dra_claims_ops){ .fetch = fetch,
                                          .write_spec = o->write_spec,
                                          .remove_spec = o->remove_spec };
        if (o->observer)
                s->observer = *o->observer;
        if (!(s->node = strdup(o->node)) ||
            asprintf(&s->registration_socket, "%s/%s", o->registrar_dir, DRA_REGISTRATION_SOCKET) < 0 ||
            asprintf(&s->service_socket, "%s/%s", o->plugin_dir, DRA_SERVICE_SOCKET) < 0 ||
            asprintf(&s->checkpoint, "%s/%s", o->plugin_dir, DRA_CHECKPOINT_FILE) < 0)
                return -ENOMEM;
        struct dra_claims_params p = {
                .node = s->node, .checkpoint = s->checkpoint, .inventory = o->inventory, .health = o->health
        };
        /* dra_claims calls the service's ops; these forward fetches to the API and specs to the caller. */
        static const struct dra_claims_ops forward = { .fetch = fetch,
                                                       .write_spec = write_spec,
                                                       .remove_spec = remove_spec };
        int r = dra_claims_new(&p, &forward, s, &s->claims, ret_error);
        if (r < 0)
                return r;
        if ((r = rpc_server_new(l, dra_methods, ELEMENTSOF(dra_methods), s, &s->dra)) < 0 ||
            (r = rpc_server_new(l, registration_methods, ELEMENTSOF(registration_methods), s,
                                &s->registration)) < 0)
                return r;
        /* The limits of every rpc server (RPC_MAX_CONNECTIONS, the handshake timeout, request sizes and
         * budget), but no idle timeout on the service socket: the kubelet holds one connection there with no
         * call open between claims (DRA has no stream like ListAndWatch). Closed after 30 s, it would be
         * dialled again at once (the kubelet reconnects on every close), waking both every 30 s and racing
         * the kubelet's own 30 s timer that deletes a driver's ResourceSlices while it is not connected. The
         * registration socket keeps it: the plugin watcher's connection lasts two calls. */
        rpc_server_set_idle_timeout(s->dra, 0);
        rpc_server_set_refusal_handler(s->dra, on_refusal_dra, s);
        rpc_server_set_refusal_handler(s->registration, on_refusal_registration, s);
        *ret = TAKE_PTR(s);
        return 0;
}

static int serve(rpc_server *server, const char *path, char **ret_error)
{
        int r = rpc_server_listen(server, path);
        if (r < 0)
                return error_set(ret_error, r, "cannot serve %s: %s", path, strerror(-r));
        return 0;
}

int dra_service_start(dra_service *s, char **ret_error)
{
        int r = serve(s->dra, s->service_socket, ret_error);
        if (r < 0)
                return r;
        return serve(s->registration, s->registration_socket, ret_error);
}

int dra_service_check_sockets(dra_service *s, char **ret_error)
{
        int n = 0;
        struct {
                rpc_server *server;
                const char *path;
        } sockets[] = { { s->dra, s->service_socket }, { s->registration, s->registration_socket } };
        for (size_t i = 0; i < ELEMENTSOF(sockets); i++) {
                struct stat st;
                if (stat(sockets[i].path, &st) == 0 && S_ISSOCK(st.st_mode))
                        continue;
                rpc_server_shutdown(sockets[i].server);
                int r = serve(sockets[i].server, sockets[i].path, ret_error);
                if (r < 0)
                        return r;
                n++;
        }
        return n;
}

dra_service *dra_service_free(dra_service *s)
{
        if (!s)
                return NULL;
        /* The registration socket first: the kubelet deregisters the driver when it goes. */
        rpc_server_free(s->registration);
        rpc_server_free(s->dra);
        while (s->fetches) {
                struct fetch *f = s->fetches;
                CHAIN_REMOVE(s->fetches, f);
                kube_call_cancel(f->call);
                free(f);
        }
        dra_claims_free(s->claims);
        while (s->prepares) {
                struct prepare_call *pc = s->prepares;
                CHAIN_REMOVE(s->prepares, pc);
                prepare_call_free(pc);
        }
        free(s->node);
        free(s->registration_socket);
        free(s->service_socket);
        free(s->checkpoint);
        return mfree(s);
}

dra_claims *dra_service_claims(dra_service *s)
{
        return s->claims;
}
