/* SPDX-License-Identifier: Apache-2.0 */
/* One-shot unary gRPC client call on a fresh unix-socket connection (the plugin's Register), on the one
 * HTTP/2 client (net/h2-client.h). */
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/parse.h"
#include "grpc-wire.h"
#include "net/h2-client.h"
#include "rpc.h"

/* Response header list we accept (the kubelet's are a few hundred bytes). */
#define MAX_RESPONSE_HEADERS 65536
/* Retry interval while the server's accept backlog is full (connect gives EAGAIN on unix sockets). */
#define CONNECT_RETRY_NSEC (20 * NSEC_PER_MSEC)

struct rpc_client_call {
        loop *loop;
        char *socket_path, *method_path;
        uint8_t *request; /* prefix + message */
        size_t request_len;
        uint64_t timeout_nsec;
        rpc_client_done cb;
        void *userdata;

        int fd;                     /* while connecting */
        loop_source *connect_io;    /* while connect is in progress */
        loop_source *timer;         /* deadline */
        loop_source *deliver_timer; /* reports a result outside of rpc_client_call_start and nghttp2 */
        loop_source *retry_timer;   /* connect again after EAGAIN */
        h2_client *h2;
        h2_request *req;

        int http_status;
        bool content_type_ok, have_status, delivering;
        int hdr_status;    /* grpc-status as received */
        char *hdr_message; /* grpc-message, decoded */
        int status;        /* the result */
        char *message;
        struct grpc_reader reader;
        uint8_t *response;
        size_t response_size;
        bool too_many_messages;
        /* A result decided (status set); delivered when the connection is down. */
        bool result_set;
};

static rpc_client_call *client_call_free(rpc_client_call *c)
{
        if (!c)
                return NULL;
        c->timer = loop_source_free(c->timer);
        c->deliver_timer = loop_source_free(c->deliver_timer);
        c->retry_timer = loop_source_free(c->retry_timer);
        c->connect_io = loop_source_free(c->connect_io);
        c->fd = safe_close(c->fd);
        h2_request_cancel(TAKE_PTR(c->req));
        c->h2 = h2_client_free(c->h2); /* GOAWAY, no more callbacks */
        grpc_reader_done(&c->reader);
        free(c->socket_path);
        free(c->method_path);
        free(c->request);
        free(c->message);
        free(c->hdr_message);
        free(c->response);
        free(c);
        return NULL;
}

static _printf_(3, 4) void set_result(rpc_client_call *c, int status, const char *fmt, ...)
{
        if (c->result_set)
                return;
        c->result_set = true;
        c->status = status;
        c->message = mfree(c->message);
        if (fmt)
                c->message = format_va(fmt);
}

/* Tears the connection down (GOAWAY), then runs the callback and frees the call. */
static void deliver(rpc_client_call *c)
{
        if (c->delivering)
                return;
        c->delivering = true;
        h2_request_cancel(TAKE_PTR(c->req));
        c->h2 = h2_client_free(c->h2);
        if (!c->result_set)
                set_result(c, GRPC_UNAVAILABLE, "connection to %s closed before the response",
                           c->socket_path);
        const uint8_t *resp = c->status == GRPC_OK ? c->response : NULL;
        size_t size = c->status == GRPC_OK ? c->response_size : 0;
        c->cb(c->status, strempty(c->message), resp, size, c->userdata);
        client_call_free(c);
}

static void on_deliver_timer(loop_source *s, void *userdata)
{
        deliver(userdata);
}

/* For results found where the callback must not run yet (inside start, inside nghttp2). */
static void deliver_soon(rpc_client_call *c)
{
        if (c->deliver_timer)
                loop_timer_arm(c->deliver_timer, 0);
        else if (loop_add_timer(c->loop, 0, on_deliver_timer, c, &c->deliver_timer) < 0)
                deliver(c); /* out of memory: better now than never */
}

static void on_timeout(loop_source *s, void *userdata)
{
        rpc_client_call *c = userdata;
        char t[16];
        grpc_timeout_format(c->timeout_nsec, t);
        set_result(c, GRPC_DEADLINE_EXCEEDED, "deadline exceeded (%s) calling %s on %s", t, c->method_path,
                   c->socket_path);
        deliver(c); /* resets the stream (CANCEL), then GOAWAY */
}

/* ---- the response ------------------------------------------------------------------------------------ */

static bool header_is(const uint8_t *name, size_t namelen, const char *s)
{
        return namelen == strlen(s) && memcmp(name, s, namelen) == 0;
}

static void on_header(h2_request *r, const uint8_t *name, size_t namelen, const uint8_t *value,
                      size_t valuelen, void *userdata)
{
        rpc_client_call *c = userdata;
        if (header_is(name, namelen, ":status")) {
                c->http_status = 0;
                for (size_t i = 0; i < valuelen && i < 3; i++)
                        c->http_status = c->http_status * 10 + (value[i] - '0');
        } else if (header_is(name, namelen, "content-type"))
                c->content_type_ok = grpc_content_type_ok(value, valuelen);
        else if (header_is(name, namelen, "grpc-status")) {
                uint64_t v = 0;
                bool ok = valuelen > 0 && valuelen < 4;
                for (size_t i = 0; ok && i < valuelen; i++) {
                        ok = value[i] >= '0' && value[i] <= '9';
                        v = v * 10 + (uint64_t)(value[i] - '0');
                }
                if (ok) {
                        c->have_status = true;
                        c->hdr_status = (int)v;
                }
        } else if (header_is(name, namelen, "grpc-message")) {
                free(c->hdr_message);
                c->hdr_message = grpc_message_decode(value, valuelen);
        }
}

static int on_message(const uint8_t *msg, size_t size, void *userdata)
{
        rpc_client_call *c = userdata;
        if (c->response) {
                c->too_many_messages = true;
                return -EPROTO;
        }
        c->response = malloc(size + 1);
        if (!c->response)
                return -ENOMEM;
        memcpy(c->response, msg, size);
        c->response_size = size;
        return 0;
}

static int on_data(h2_request *req, const uint8_t *data, size_t len, void *userdata)
{
        rpc_client_call *c = userdata;
        if (c->result_set)
                return 0;
        int r = grpc_reader_feed(&c->reader, data, len, on_message, c);
        if (r == -EMSGSIZE)
                set_result(c, GRPC_RESOURCE_EXHAUSTED, "response from %s larger than %u bytes",
                           c->socket_path, RPC_MAX_MESSAGE);
        else if (r == -EPROTO && c->too_many_messages)
                set_result(c, GRPC_INTERNAL, "more than one response message from %s", c->socket_path);
        else if (r == -EPROTO)
                set_result(c, GRPC_INTERNAL, "compressed response from %s", c->socket_path);
        else if (r < 0)
                set_result(c, GRPC_INTERNAL, "failed to read the response from %s", c->socket_path);
        return r < 0 ? r : 0; /* <0 resets the stream */
}

/* grpc's mapping of HTTP statuses for responses that are not gRPC. */
static int http_to_grpc(int http_status)
{
        switch (http_status) {
        case 400: return GRPC_INTERNAL;
        case 401: return 16; /* UNAUTHENTICATED */
        case 403: return 7;  /* PERMISSION_DENIED */
        case 404: return GRPC_UNIMPLEMENTED;
        case 429:
        case 502:
        case 503:
        case 504: return GRPC_UNAVAILABLE;
        default: return GRPC_UNKNOWN;
        }
}

/* The result from what arrived, once the stream closed with this HTTP/2 error code. */
static void decide(rpc_client_call *c, uint32_t error_code)
{
        if (c->result_set)
                return;
        if (c->http_status != 200 && c->http_status != 0 && !c->content_type_ok) {
                set_result(c, http_to_grpc(c->http_status), "unexpected HTTP status %d from %s",
                           c->http_status, c->socket_path);
                return;
        }
        if (c->have_status) {
                if (c->hdr_status == GRPC_OK && !grpc_reader_idle(&c->reader))
                        set_result(c, GRPC_INTERNAL, "response from %s ended inside a message",
                                   c->socket_path);
                else if (c->hdr_status == GRPC_OK && !c->response)
                        set_result(c, GRPC_INTERNAL, "no response message from %s", c->socket_path);
                else {
                        set_result(c, c->hdr_status, NULL);
                        c->message = TAKE_PTR(c->hdr_message);
                }
                return;
        }
        if (error_code == NGHTTP2_REFUSED_STREAM)
                set_result(c, GRPC_UNAVAILABLE, "%s refused the stream", c->socket_path);
        else if (error_code == NGHTTP2_CANCEL)
                set_result(c, GRPC_CANCELLED, "%s cancelled the call", c->socket_path);
        else if (error_code != NGHTTP2_NO_ERROR)
                set_result(c, GRPC_INTERNAL, "%s reset the stream (HTTP/2 error %u)", c->socket_path,
                           error_code);
        else if (!c->content_type_ok && c->http_status != 0)
                set_result(c, GRPC_UNKNOWN,
                           "response from %s is not gRPC (no application/grpc content-type)",
                           c->socket_path);
        else
                set_result(c, GRPC_UNKNOWN, "response from %s has no grpc-status", c->socket_path);
}

static void on_close(h2_request *r, int error, void *userdata)
{
        rpc_client_call *c = userdata;
        int64_t code = h2_request_close_code(r);
        c->req = NULL;
        if (error == -EPROTO)
                set_result(c, GRPC_INTERNAL, "malformed or too large response headers from %s",
                           c->socket_path);
        else if (code < 0)
                set_result(c, GRPC_UNAVAILABLE, "connection to %s closed before the response",
                           c->socket_path);
        else
                decide(c, (uint32_t)code);
        deliver_soon(c);
}

static void on_connection_closed(h2_client *h, int error, void *userdata)
{
        rpc_client_call *c = userdata;
        if (c->delivering)
                return;
        set_result(c, GRPC_UNAVAILABLE, "connection to %s closed before the response", c->socket_path);
        deliver_soon(c);
}

/* ---- connecting ------------------------------------------------------------------------------------- */

static int start_http2(rpc_client_call *c)
{
        static const struct h2_request_handler handler = {
                .on_header = on_header,
                .on_data = on_data,
                .on_close = on_close,
        };
        net_transport *t;
        int r = net_transport_new_fd(TAKE_FD(c->fd), &t);
        if (r < 0)
                return r;
        r = h2_client_new(c->loop, t, "http", "localhost", MAX_RESPONSE_HEADERS, on_connection_closed, c,
                          &c->h2);
        if (r < 0)
                return r;
        char timeout[16];
        nghttp2_nv nv[3];
        size_t n = 0;
#define NV(k, v) (nghttp2_nv){ (uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE }
        nv[n++] = NV("content-type", "application/grpc");
        nv[n++] = NV("te", "trailers");
        if (c->timeout_nsec > 0) {
                grpc_timeout_format(c->timeout_nsec, timeout);
                nv[n++] = NV("grpc-timeout", timeout);
        }
#undef NV
        return h2_client_request(c->h2, "POST", c->method_path, nv, n, c->request, c->request_len, &handler,
                                 c, &c->req);
}

static void connected(rpc_client_call *c)
{
        int r = start_http2(c);
        if (r < 0) {
                set_result(c, GRPC_INTERNAL, "failed to start HTTP/2 on %s: %s", c->socket_path,
                           strerror(-r));
                deliver_soon(c);
        }
}

static void connect_failed(rpc_client_call *c, int error)
{
        set_result(c, GRPC_UNAVAILABLE, "failed to connect to %s: %s", c->socket_path, strerror(error));
        c->fd = safe_close(c->fd);
        deliver_soon(c);
}

static void try_connect(rpc_client_call *c);

static void on_connect_io(loop_source *s, int fd, uint32_t revents, void *userdata)
{
        rpc_client_call *c = userdata;
        c->connect_io = loop_source_free(c->connect_io);
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        if (err != 0)
                connect_failed(c, err);
        else
                connected(c);
}

static void on_connect_retry(loop_source *s, void *userdata)
{
        rpc_client_call *c = userdata;
        c->retry_timer = loop_source_free(c->retry_timer);
        try_connect(c);
}

static void try_connect(rpc_client_call *c)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, c->socket_path);
        if (c->fd < 0) {
                c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (c->fd < 0)
                        return connect_failed(c, errno);
        }
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0)
                return connected(c);
        if (errno == EINPROGRESS) {
                if (loop_add_io(c->loop, c->fd, EPOLLOUT, on_connect_io, c, &c->connect_io) < 0)
                        connect_failed(c, ENOMEM);
                return;
        }
        if (errno == EAGAIN) {
                /* Backlog full: nothing to poll for on a unix socket, so try again shortly (the deadline
                 * timer still applies). */
                if (loop_add_timer(c->loop, CONNECT_RETRY_NSEC, on_connect_retry, c, &c->retry_timer) < 0)
                        connect_failed(c, ENOMEM);
                return;
        }
        connect_failed(c, errno);
}

int rpc_client_call_start(loop *l, const char *socket_path, const char *method_path, const uint8_t *req,
                          size_t size, uint64_t timeout_nsec, rpc_client_done cb, void *userdata,
                          rpc_client_call **ret)
{
        struct sockaddr_un sa;
        if (isempty(socket_path) || isempty(method_path) || method_path[0] != '/' || !cb)
                return -EINVAL;
        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        if (size > RPC_MAX_MESSAGE)
                return -EMSGSIZE;
        rpc_client_call *c = new0(rpc_client_call, 1);
        if (!c)
                return -ENOMEM;
        c->loop = l;
        c->fd = -EBADF;
        c->cb = cb;
        c->userdata = userdata;
        c->timeout_nsec = timeout_nsec;
        grpc_reader_init(&c->reader, RPC_MAX_MESSAGE);
        c->socket_path = strdup(socket_path);
        c->method_path = strdup(method_path);
        c->request = malloc(GRPC_PREFIX_SIZE + size);
        if (!c->socket_path || !c->method_path || !c->request) {
                client_call_free(c);
                return -ENOMEM;
        }
        grpc_prefix_write(c->request, size);
        if (size > 0)
                memcpy(c->request + GRPC_PREFIX_SIZE, req, size);
        c->request_len = GRPC_PREFIX_SIZE + size;
        if (timeout_nsec > 0 && loop_add_timer(l, timeout_nsec, on_timeout, c, &c->timer) < 0) {
                client_call_free(c);
                return -ENOMEM;
        }
        try_connect(c);
        if (ret)
                *ret = c;
        return 0;
}

rpc_client_call *rpc_client_call_cancel(rpc_client_call *c)
{
        if (!c || c->delivering)
                return NULL;
        c->delivering = true;       /* no callback from on_connection_closed */
        return client_call_free(c); /* resets the stream (CANCEL), GOAWAY */
}
