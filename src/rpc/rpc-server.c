/* SPDX-License-Identifier: Apache-2.0 */
/* gRPC server: unary and server-streaming methods over HTTP/2 (nghttp2) on a unix socket. */
#include <malloc.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "base/parse.h"
#include "grpc-wire.h"
#include "net/h2conn.h"
#include "rpc.h"

/* Longest :path we look at; longer ones cannot name one of our methods. */
#define MAX_PATH_HEADER 1024
/* After EMFILE/ENFILE the listener pauses this long instead of spinning on a level-triggered fd. */
#define ACCEPT_BACKOFF_NSEC (100 * NSEC_PER_MSEC)
/* After a request at least this big is freed, or a connection that had this many streams open at once
 * closes, free memory goes back to the kernel (malloc_trim, TRIM_DELAY later, once for a burst): one
 * unusual client must not leave the daemon's RSS high for the rest of its life. */
#define TRIM_THRESHOLD (256u * 1024)
#define TRIM_STREAMS   16u
#define TRIM_DELAY     (100 * NSEC_PER_MSEC)
/* Peers remembered for the refusal reports' rate limit. */
#define REPORTED_PEERS 16

typedef struct server_conn server_conn;

struct out_chunk {
        struct out_chunk *next;
        size_t len, off;
        uint8_t data[];
};

struct rpc_call {
        server_conn *conn;
        int32_t stream_id;
        struct rpc_call *next; /* in conn->calls */

        /* request */
        char *path;
        bool method_post, content_type_ok, seen_content_type, headers_too_big;
        size_t header_bytes;
        uint64_t deadline;
        const struct rpc_method *method;
        struct grpc_reader reader;
        uint8_t *request;
        size_t request_size;
        size_t held; /* request bytes counted in request_bytes */
        bool remote_closed;

        /* response */
        bool rejected;       /* answered before the request was complete (error): ignore the rest */
        bool handler_called; /* the call belongs to the user from here ... */
        bool finished;       /* ... until reply/fail */
        bool response_submitted, finishing, end_sent;
        int status;
        char *status_message;
        struct out_chunk *out_head, *out_tail;
        size_t out_bytes;

        rpc_close_handler close_cb;
        void *close_userdata;
};

struct server_conn {
        rpc_server *server;
        h2conn *h2;
        server_conn *next; /* in server->conns */
        rpc_call *calls;
        size_t n_calls, peak_calls;
        struct rpc_peer peer;
        loop_source *timer;   /* the handshake timeout, then the idle timeout */
        bool handshake_done;  /* the client's preface and SETTINGS arrived */
        bool expected;        /* accepted while the server expected its client (never closed for room) */
        uint64_t last_active; /* accepted, or a call began or ended */
};

struct rpc_server {
        unsigned n_ref;
        loop *loop;
        struct rpc_method *methods;
        size_t n_methods;
        void *userdata;
        char *socket_path;
        dev_t socket_dev;
        ino_t socket_ino;
        int listen_fd;
        loop_source *listen_source, *backoff_timer, *trim_timer;
        server_conn *conns;
        size_t n_conns;
        nghttp2_session_callbacks *callbacks;
        nghttp2_option *option;
        uint64_t handshake_timeout, idle_timeout;
        size_t max_request;
        bool expecting;
        rpc_server *prev_server, *next_server; /* in servers */
        rpc_refusal_handler refusal_cb;
        void *refusal_userdata;
        struct {
                struct rpc_peer peer;
                uint64_t at; /* 0: free slot */
        } reported[REPORTED_PEERS];
        uint64_t window_start, suppressed;
        unsigned window_reports;
};

/* Every server of the process and the request bytes they hold together: all run on the one loop thread. */
static rpc_server *servers;
static size_t request_bytes;

static rpc_server *server_unref(rpc_server *s);

static void on_trim(loop_source *src, void *userdata)
{
        (void)malloc_trim(0);
}

/* Free memory back to the kernel soon (one trim for a burst of big frees). */
static void schedule_trim(rpc_server *s)
{
        if (!s->trim_timer) {
                (void)loop_add_timer(s->loop, TRIM_DELAY, on_trim, s, &s->trim_timer);
                return;
        }
        if (!loop_timer_armed(s->trim_timer))
                loop_timer_arm(s->trim_timer, TRIM_DELAY);
}

size_t rpc_request_bytes(void)
{
        return request_bytes;
}

/* ---- connections: activity, refusal reports ---------------------------------------------------------- */

static void conn_touch(server_conn *conn)
{
        conn->last_active = now_nsec();
        /* Idle (no open stream) after the handshake: the idle timeout runs. */
        if (conn->handshake_done && conn->timer) {
                if (conn->n_calls == 0 && conn->server->idle_timeout > 0)
                        loop_timer_arm(conn->timer, conn->server->idle_timeout);
                else
                        loop_timer_disarm(conn->timer);
        }
}

static bool peer_equal(const struct rpc_peer *a, const struct rpc_peer *b)
{
        return a->pid == b->pid && a->uid == b->uid && a->gid == b->gid;
}

/* Tells the refusal handler, once per peer per RPC_REFUSAL_REPORT_INTERVAL and at most
 * RPC_REFUSAL_REPORTS_MAX times in one; the rest is counted and told with the next report. */
static void report(rpc_server *s, const struct rpc_peer *peer, enum rpc_refusal why)
{
        if (!s->refusal_cb)
                return;
        uint64_t now = now_nsec();
        if (now - s->window_start >= RPC_REFUSAL_REPORT_INTERVAL) {
                s->window_start = now;
                s->window_reports = 0;
        }
        size_t slot = REPORTED_PEERS, oldest = 0;
        for (size_t i = 0; i < REPORTED_PEERS; i++) {
                if (s->reported[i].at && peer_equal(&s->reported[i].peer, peer)) {
                        slot = i;
                        break;
                }
                if (s->reported[i].at < s->reported[oldest].at)
                        oldest = i;
        }
        if ((slot < REPORTED_PEERS && now - s->reported[slot].at < RPC_REFUSAL_REPORT_INTERVAL) ||
            s->window_reports >= RPC_REFUSAL_REPORTS_MAX) {
                s->suppressed++;
                return;
        }
        if (slot == REPORTED_PEERS)
                slot = oldest;
        s->reported[slot].peer = *peer;
        s->reported[slot].at = MAX(now, 1u);
        s->window_reports++;
        uint64_t suppressed = s->suppressed;
        s->suppressed = 0;
        s->refusal_cb(peer, why, s->n_conns, suppressed, s->refusal_userdata);
}

const char *rpc_refusal_to_string(enum rpc_refusal why)
{
        switch (why) {
        case RPC_REFUSED_FULL: return "refused a new connection: every connection is busy, none idle";
        case RPC_CLOSED_FOR_ROOM: return "closed an idle connection to make room for a new one";
        case RPC_CLOSED_IDLE: return "closed a connection without an open stream";
        }
        return "closed a connection";
}

/* ---- calls ------------------------------------------------------------------------------------------ */

/* Brings the call's share of request_bytes up to date: its partial message at the size its prefix
 * announced (the buffer is allocated at once) and a complete one waiting for the stream's end. */
static void call_account(rpc_call *c)
{
        size_t now = c->rejected ? 0 : grpc_reader_reserved(&c->reader) + (c->request ? c->request_size : 0);
        request_bytes = request_bytes - MIN(request_bytes, c->held) + now;
        c->held = now;
}

static void call_free(rpc_call *c)
{
        if (!c)
                return;
        server_conn *conn = c->conn;
        for (rpc_call **p = &conn->calls; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        conn->n_calls--;
                        break;
                }
        bool big = c->held >= TRIM_THRESHOLD;
        request_bytes -= MIN(request_bytes, c->held);
        grpc_reader_done(&c->reader);
        while (c->out_head) {
                struct out_chunk *ch = c->out_head;
                c->out_head = ch->next;
                free(ch);
        }
        free(c->request);
        free(c->path);
        free(c->status_message);
        free(c);
        conn_touch(conn);
        if (big)
                schedule_trim(conn->server);
}

/* Runs the user's close handler, if the call is still the user's. */
static void call_abandon(rpc_call *c)
{
        if (c->handler_called && !c->finished && c->close_cb) {
                c->finished = true;
                c->close_cb(c, c->close_userdata);
        }
        c->finished = true;
}

static nghttp2_nv make_nv(const char *name, const char *value)
{
        return (nghttp2_nv){ .name = (uint8_t *)name,
                             .value = (uint8_t *)value,
                             .namelen = strlen(name),
                             .valuelen = strlen(value),
                             .flags = NGHTTP2_NV_FLAG_NONE };
}

/* Status + message as trailer fields (nv must have room for 2). Returns the count. */
static size_t status_fields(rpc_call *c, nghttp2_nv *nv, char code[static 12])
{
        size_t n = 0;
        snprintf(code, 12, "%d", c->status);
        nv[n++] = make_nv("grpc-status", code);
        if (!isempty(c->status_message))
                nv[n++] = make_nv("grpc-message", c->status_message);
        return n;
}

static ssize_t call_read_data(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                              uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
        rpc_call *c = source->ptr;
        size_t copied = 0;
        while (copied < length && c->out_head) {
                struct out_chunk *ch = c->out_head;
                size_t k = MIN(length - copied, ch->len - ch->off);
                memcpy(buf + copied, ch->data + ch->off, k);
                copied += k;
                ch->off += k;
                c->out_bytes -= k;
                if (ch->off == ch->len) {
                        c->out_head = ch->next;
                        if (!c->out_head)
                                c->out_tail = NULL;
                        free(ch);
                }
        }
        if (!c->out_head && c->finishing) {
                /* Trailers carry END_STREAM: a DATA frame with END_STREAM would be "server closed the
                 * stream without sending trailers" for grpc-go. */
                *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
                nghttp2_nv nv[2];
                char code[12];
                size_t n = status_fields(c, nv, code);
                if (nghttp2_submit_trailer(session, stream_id, nv, n) != 0)
                        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
                c->end_sent = true;
                return (ssize_t)copied;
        }
        if (copied == 0)
                return NGHTTP2_ERR_DEFERRED;
        return (ssize_t)copied;
}

/* HEADERS :status 200 + content-type, followed by DATA from the queue. */
static int call_submit_response(rpc_call *c)
{
        if (c->response_submitted)
                return 0;
        nghttp2_nv nv[] = { make_nv(":status", "200"), make_nv("content-type", "application/grpc") };
        nghttp2_data_provider prd = { .source.ptr = c, .read_callback = call_read_data };
        int rv =
                nghttp2_submit_response(h2conn_session(c->conn->h2), c->stream_id, nv, ELEMENTSOF(nv), &prd);
        if (rv != 0)
                return rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EIO;
        c->response_submitted = true;
        return 0;
}

static int call_queue(rpc_call *c, const uint8_t *msg, size_t size)
{
        if (size > RPC_MAX_MESSAGE)
                return -EMSGSIZE;
        struct out_chunk *ch = malloc(sizeof(struct out_chunk) + GRPC_PREFIX_SIZE + size);
        if (!ch)
                return -ENOMEM;
        ch->next = NULL;
        ch->off = 0;
        ch->len = GRPC_PREFIX_SIZE + size;
        grpc_prefix_write(ch->data, size);
        if (size > 0)
                memcpy(ch->data + GRPC_PREFIX_SIZE, msg, size);
        if (c->out_tail)
                c->out_tail->next = ch;
        else
                c->out_head = ch;
        c->out_tail = ch;
        c->out_bytes += ch->len;
        return 0;
}

static void call_kick(rpc_call *c)
{
        if (c->response_submitted)
                (void)nghttp2_session_resume_data(h2conn_session(c->conn->h2), c->stream_id);
        h2conn_flush(c->conn->h2);
}

static bool call_usable(const rpc_call *c)
{
        return c && !c->finished && !h2conn_is_closing(c->conn->h2);
}

/* One message more on the stream, headers first if they are not out yet. */
static int call_queue_submit(rpc_call *c, const uint8_t *msg, size_t size)
{
        int r = call_queue(c, msg, size);
        if (r < 0)
                return r;
        return call_submit_response(c);
}

int rpc_call_reply(rpc_call *c, const uint8_t *msg, size_t size)
{
        if (!call_usable(c))
                return -ESTALE;
        int r = call_queue_submit(c, msg, size);
        if (r < 0)
                return r;
        c->status = GRPC_OK;
        c->finishing = true;
        c->finished = true;
        call_kick(c);
        return 0;
}

int rpc_call_send(rpc_call *c, const uint8_t *msg, size_t size)
{
        if (!call_usable(c))
                return -ESTALE;
        if (c->out_bytes > RPC_MAX_STREAM_QUEUE)
                return -ENOBUFS;
        int r = call_queue_submit(c, msg, size);
        if (r < 0)
                return r;
        call_kick(c);
        return 0;
}

/* Trailers-Only: one HEADERS with END_STREAM carrying :status, content-type and the status. */
static int call_send_trailers_only(rpc_call *c, const char *http_status)
{
        nghttp2_nv nv[4] = { make_nv(":status", http_status), make_nv("content-type", "application/grpc") };
        char code[12];
        size_t n = 2 + status_fields(c, nv + 2, code);
        int rv = nghttp2_submit_response(h2conn_session(c->conn->h2), c->stream_id, nv, n, NULL);
        if (rv != 0)
                return rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EIO;
        c->response_submitted = true;
        c->end_sent = true;
        return 0;
}

__attribute__((format(printf, 4, 0))) static int call_end(rpc_call *c, int status, const char *http_status,
                                                          const char *fmt, va_list ap)
{
        c->status = status;
        c->status_message = mfree(c->status_message);
        if (fmt) {
                _cleanup_free_ char *raw = NULL;
                if (vasprintf(&raw, fmt, ap) < 0)
                        return -ENOMEM;
                c->status_message = grpc_message_encode(raw);
                if (!c->status_message)
                        return -ENOMEM;
        }
        c->finished = true;
        if (!c->response_submitted)
                return call_send_trailers_only(c, http_status);
        c->finishing = true;
        return 0;
}

int rpc_call_fail(rpc_call *c, int grpc_status, const char *fmt, ...)
{
        if (!call_usable(c))
                return -ESTALE;
        va_list ap;
        va_start(ap, fmt);
        int r = call_end(c, grpc_status, "200", fmt, ap);
        va_end(ap);
        if (r < 0) {
                /* Out of memory for the status: reset the stream rather than leave the client waiting, and
                 * the whole connection if even that cannot be queued. */
                c->finished = true;
                if (nghttp2_submit_rst_stream(h2conn_session(c->conn->h2), NGHTTP2_FLAG_NONE, c->stream_id,
                                              NGHTTP2_INTERNAL_ERROR) != 0)
                        h2conn_close(c->conn->h2, NGHTTP2_INTERNAL_ERROR);
        }
        call_kick(c);
        return r;
}

/* An error found by us before the handler ran (bad request). The rest of the request is ignored. */
static _printf_(4, 5) void call_reject(rpc_call *c, int status, const char *http_status, const char *fmt,
                                       ...)
{
        if (c->rejected || c->finished)
                return;
        c->rejected = true;
        grpc_reader_done(&c->reader);
        c->request = mfree(c->request);
        call_account(c);
        va_list ap;
        va_start(ap, fmt);
        if (call_end(c, status, http_status, fmt, ap) < 0)
                (void)nghttp2_submit_rst_stream(h2conn_session(c->conn->h2), NGHTTP2_FLAG_NONE, c->stream_id,
                                                NGHTTP2_INTERNAL_ERROR);
        va_end(ap);
}

void rpc_call_set_close_handler(rpc_call *c, rpc_close_handler cb, void *userdata)
{
        c->close_cb = cb;
        c->close_userdata = userdata;
}

rpc_server *rpc_call_get_server(rpc_call *c)
{
        return c->conn->server;
}

void *rpc_server_get_userdata(rpc_server *s)
{
        return s->userdata;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------------------ */

static rpc_call *stream_call(nghttp2_session *session, int32_t stream_id)
{
        return nghttp2_session_get_stream_user_data(session, stream_id);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
        server_conn *conn = user_data;
        if (h2conn_is_closing(conn->h2))
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0;
        if (conn->n_calls >= RPC_MAX_STREAMS) {
                /* nghttp2 enforces our MAX_CONCURRENT_STREAMS once acknowledged; this covers the time
                 * before. */
                (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                                NGHTTP2_REFUSED_STREAM);
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        rpc_call *c = new0(rpc_call, 1);
        if (!c)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        c->conn = conn;
        c->stream_id = frame->hd.stream_id;
        c->deadline = UINT64_MAX;
        grpc_reader_init(&c->reader, conn->server->max_request);
        c->next = conn->calls;
        conn->calls = c;
        conn->n_calls++;
        conn->peak_calls = MAX(conn->peak_calls, conn->n_calls);
        conn_touch(conn);
        if (nghttp2_session_set_stream_user_data(session, c->stream_id, c) != 0) {
                call_free(c);
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return 0;
}

static bool header_is(const uint8_t *name, size_t namelen, const char *s)
{
        return namelen == strlen(s) && memcmp(name, s, namelen) == 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
        server_conn *conn = user_data;
        if (h2conn_is_closing(conn->h2))
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        rpc_call *c = stream_call(session, frame->hd.stream_id);
        if (!c || frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        /* Count the whole list (RFC 7541 entry size) also for trailers; past the limit just remember it. */
        c->header_bytes += namelen + valuelen + 32;
        if (c->header_bytes > RPC_MAX_HEADER_LIST) {
                c->headers_too_big = true;
                return 0;
        }
        if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0; /* client trailers: nothing we need */
        if (header_is(name, namelen, ":method"))
                c->method_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
        else if (header_is(name, namelen, ":path")) {
                if (valuelen <= MAX_PATH_HEADER && !c->path)
                        c->path = strndup((const char *)value, valuelen);
        } else if (header_is(name, namelen, "content-type")) {
                c->seen_content_type = true;
                c->content_type_ok = grpc_content_type_ok(value, valuelen);
        } else if (header_is(name, namelen, "grpc-timeout")) {
                uint64_t t;
                if (grpc_timeout_parse((const char *)value, valuelen, &t) == 0) {
                        uint64_t now = now_nsec();
                        c->deadline = t > UINT64_MAX - now ? UINT64_MAX : now + t;
                }
        }
        return 0;
}

static void call_request_headers_done(rpc_call *c)
{
        rpc_server *s = c->conn->server;
        if (c->headers_too_big) {
                call_reject(c, GRPC_RESOURCE_EXHAUSTED, "200", "request header list larger than %u bytes",
                            RPC_MAX_HEADER_LIST);
                return;
        }
        if (!c->method_post) {
                call_reject(c, GRPC_INTERNAL, "405", "method must be POST");
                return;
        }
        if (!c->content_type_ok) {
                call_reject(c, GRPC_INTERNAL, "415", "invalid gRPC request content-type");
                return;
        }
        for (size_t i = 0; c->path && i < s->n_methods; i++)
                if (streq(s->methods[i].path, c->path)) {
                        c->method = &s->methods[i];
                        return;
                }
        call_reject(c, GRPC_UNIMPLEMENTED, "200", "unknown method %s", strna(c->path));
}

static int on_message(const uint8_t *msg, size_t size, void *userdata)
{
        rpc_call *c = userdata;
        if (c->reader.n_messages > 1) {
                call_reject(c, GRPC_INTERNAL, "200", "more than one request message for %s", c->path);
                return -EPROTO;
        }
        /* The reader's buffer itself: a big request is not copied once more. */
        c->request = grpc_reader_take(&c->reader);
        c->request_size = size;
        return 0;
}

/* Over the budget: fail the call holding the most request bytes, of any connection of any server, until
 * the rest fits. */
static void budget_enforce(void)
{
        while (request_bytes > RPC_REQUEST_BUDGET) {
                rpc_call *victim = NULL;
                for (rpc_server *s = servers; s; s = s->next_server)
                        for (server_conn *conn = s->conns; conn; conn = conn->next)
                                for (rpc_call *c = conn->calls; c; c = c->next)
                                        if (!c->rejected && c->held > 0 &&
                                            (!victim || c->held > victim->held))
                                                victim = c;
                if (!victim)
                        return;
                size_t held = victim->held;
                call_reject(victim, GRPC_RESOURCE_EXHAUSTED, "200",
                            "request of %zu bytes refused: the server holds more than %u bytes of requests "
                            "and this one is the largest",
                            held, RPC_REQUEST_BUDGET);
                if (victim->rejected)
                        call_kick(victim); /* its connection may be another one than the caller's */
                else
                        return; /* finished already; nothing more to take back */
        }
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data)
{
        server_conn *conn = user_data;
        if (h2conn_is_closing(conn->h2))
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        rpc_call *c = stream_call(session, stream_id);
        if (!c || c->rejected || !c->method)
                return 0;
        int r = grpc_reader_feed(&c->reader, data, len, on_message, c);
        call_account(c);
        if (r == -EMSGSIZE)
                call_reject(c, GRPC_RESOURCE_EXHAUSTED, "200",
                            "grpc: received message larger than max (%zu vs. %zu)", c->reader.want,
                            conn->server->max_request);
        else if (r == -EPROTO)
                call_reject(c, GRPC_INTERNAL, "200",
                            "compressed message received but no compression negotiated");
        else if (r < 0)
                call_reject(c, GRPC_INTERNAL, "200", "failed to read the request message");
        else if (request_bytes > RPC_REQUEST_BUDGET)
                budget_enforce();
        return 0;
}

static void call_request_complete(rpc_call *c)
{
        if (c->rejected || !c->method)
                return;
        if (!grpc_reader_idle(&c->reader)) {
                call_reject(c, GRPC_INTERNAL, "200", "request ended inside a message");
                return;
        }
        if (!c->request) {
                call_reject(c, GRPC_INTERNAL, "200", "no request message for %s", c->path);
                return;
        }
        _cleanup_free_ uint8_t *req = TAKE_PTR(c->request);
        size_t size = c->request_size;
        call_account(c);
        c->handler_called = true;
        c->method->handler(c, req, size, c->conn->server->userdata);
        if (size >= TRIM_THRESHOLD)
                schedule_trim(c->conn->server); /* the request and what the handler made of it are freed */
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
        server_conn *conn = user_data;
        if (h2conn_is_closing(conn->h2))
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
            !conn->handshake_done) {
                conn->handshake_done = true;
                conn_touch(conn); /* from now on the idle timeout */
        }
        if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
                return 0;
        rpc_call *c = stream_call(session, frame->hd.stream_id);
        if (!c)
                return 0;
        if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
                call_request_headers_done(c);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
                c->remote_closed = true;
                call_request_complete(c);
        }
        return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
        if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
                return 0;
        rpc_call *c = stream_call(session, frame->hd.stream_id);
        /* Early server closure (PROTOCOL-HTTP2.md): the client may still be sending; tell it to stop. */
        if (c && !c->remote_closed)
                (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                                NGHTTP2_NO_ERROR);
        return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
        rpc_call *c = stream_call(session, stream_id);
        if (!c)
                return 0;
        (void)nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        call_abandon(c);
        call_free(c);
        return 0;
}

/* ---- connections ------------------------------------------------------------------------------------ */

static void conn_closed(h2conn *h2, int error, void *owner)
{
        server_conn *conn = owner;
        rpc_server *s = conn->server;
        for (server_conn **p = &s->conns; *p; p = &(*p)->next)
                if (*p == conn) {
                        *p = conn->next;
                        s->n_conns--;
                        break;
                }
        /* Close handlers may shut the server down or finish other calls: take one call at a time. */
        while (conn->calls) {
                rpc_call *c = conn->calls;
                call_abandon(c);
                call_free(c);
        }
        conn->timer = loop_source_free(conn->timer);
        if (conn->peak_calls >= TRIM_STREAMS)
                schedule_trim(s);
        h2conn_unref(conn->h2);
        free(conn);
        server_unref(s);
}

static void on_conn_timer(loop_source *src, void *userdata)
{
        server_conn *conn = userdata;
        if (h2conn_is_closing(conn->h2))
                return;
        if (!conn->handshake_done) {
                /* A peer that connects and never speaks HTTP/2 would hold a connection slot forever. */
                h2conn_close(conn->h2, NGHTTP2_SETTINGS_TIMEOUT);
                return;
        }
        if (conn->n_calls > 0)
                return;
        report(conn->server, &conn->peer, RPC_CLOSED_IDLE);
        h2conn_close(conn->h2, NGHTTP2_NO_ERROR);
}

static struct rpc_peer peer_of(int fd)
{
        struct ucred cred = { .uid = (uid_t)-1, .gid = (gid_t)-1 };
        socklen_t len = sizeof cred;
        (void)getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
        return (struct rpc_peer){ .pid = cred.pid, .uid = cred.uid, .gid = cred.gid };
}

/* Whom to close for a new connection on a full server: the connection without an open stream that was
 * active the least recently; for the expected client, any other connection if none is idle. Connections
 * of the expected client are never chosen. NULL: refuse the new one. */
static server_conn *pick_victim(rpc_server *s)
{
        server_conn *best = NULL;
        for (int pass = 0; pass < 2 && !best; pass++) {
                if (pass == 1 && !s->expecting)
                        break;
                for (server_conn *c = s->conns; c; c = c->next)
                        if (!c->expected && !h2conn_is_closing(c->h2) && (pass == 1 || c->n_calls == 0) &&
                            (!best || c->last_active < best->last_active))
                                best = c;
        }
        return best;
}

int rpc_server_add_connection(rpc_server *s, int fd)
{
        _cleanup_close_ int owned = fd;
        struct rpc_peer peer = peer_of(fd);
        if (s->n_conns >= RPC_MAX_CONNECTIONS) {
                server_conn *victim = pick_victim(s);
                if (!victim) {
                        report(s, &peer, RPC_REFUSED_FULL);
                        return -EMFILE;
                }
                report(s, &victim->peer, RPC_CLOSED_FOR_ROOM);
                h2conn_close(victim->h2, NGHTTP2_NO_ERROR);
        }
        server_conn *conn = new0(server_conn, 1);
        if (!conn)
                return -ENOMEM;
        net_transport *t;
        int r = net_transport_new_fd(TAKE_FD(owned), &t);
        if (r < 0) {
                free(conn);
                return r;
        }
        const nghttp2_settings_entry settings[] = {
                { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, RPC_MAX_STREAMS },
                { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, RPC_MAX_HEADER_LIST },
                { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
                /* A bigger stream window than 64 KiB: a 1 MiB message needs no round trips. */
                { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20 },
        };
        r = h2conn_new(s->loop, t, true, s->callbacks, s->option, settings, ELEMENTSOF(settings),
                       conn_closed, conn, &conn->h2);
        if (r < 0) {
                free(conn);
                return r;
        }
        (void)nghttp2_session_set_local_window_size(h2conn_session(conn->h2), NGHTTP2_FLAG_NONE, 0,
                                                    4u << 20);
        r = loop_add_timer(s->loop, s->handshake_timeout, on_conn_timer, conn, &conn->timer);
        if (r < 0) {
                h2conn_unref(conn->h2);
                free(conn);
                return r;
        }
        conn->server = s;
        conn->peer = peer;
        conn->expected = s->expecting;
        conn->last_active = now_nsec();
        s->n_ref++;
        conn->next = s->conns;
        s->conns = conn;
        s->n_conns++;
        /* Our SETTINGS go out at once: grpc-go clients wait for them before the channel is ready. */
        h2conn_flush(conn->h2);
        return 0;
}

/* ---- listener --------------------------------------------------------------------------------------- */

static void on_accept(loop_source *src, int fd, uint32_t revents, void *userdata);

static void on_backoff(loop_source *src, void *userdata)
{
        rpc_server *s = userdata;
        if (s->listen_source)
                (void)loop_source_set_io_events(s->listen_source, EPOLLIN);
}

static void on_accept(loop_source *src, int fd, uint32_t revents, void *userdata)
{
        rpc_server *s = userdata;
        for (int i = 0; i < 16 && s->listen_fd >= 0; i++) {
                int cfd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                (void)loop_source_set_io_events(s->listen_source, 0);
                                if (!s->backoff_timer)
                                        (void)loop_add_timer(s->loop, ACCEPT_BACKOFF_NSEC, on_backoff, s,
                                                             &s->backoff_timer);
                                else
                                        loop_timer_arm(s->backoff_timer, ACCEPT_BACKOFF_NSEC);
                        }
                        return;
                }
                (void)rpc_server_add_connection(s, cfd); /* over the limit: closed */
        }
}

int rpc_server_new(loop *l, const struct rpc_method *methods, size_t n_methods, void *userdata,
                   rpc_server **ret)
{
        _cleanup_(rpc_server_freep) rpc_server *s = new0(rpc_server, 1);
        if (!s)
                return -ENOMEM;
        s->n_ref = 1;
        s->loop = l;
        s->userdata = userdata;
        s->listen_fd = -EBADF;
        s->handshake_timeout = RPC_HANDSHAKE_TIMEOUT;
        s->idle_timeout = RPC_IDLE_TIMEOUT;
        s->max_request = RPC_MAX_REQUEST;
        s->next_server = servers;
        if (servers)
                servers->prev_server = s;
        servers = s;
        s->methods = new0(struct rpc_method, n_methods + 1);
        if (!s->methods)
                return -ENOMEM; /* cppcheck-suppress memleak ; s is freed by its cleanup attribute */
        for (size_t i = 0; i < n_methods; i++) {
                if (!methods[i].path || !methods[i].handler)
                        return -EINVAL;
                s->methods[i] = methods[i];
                s->methods[i].path = strdup(methods[i].path);
                s->n_methods++;
                if (!s->methods[i].path)
                        return -ENOMEM;
        }
        if (nghttp2_session_callbacks_new(&s->callbacks) != 0 || nghttp2_option_new(&s->option) != 0)
                return -ENOMEM;
        nghttp2_session_callbacks_set_on_begin_headers_callback(s->callbacks, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(s->callbacks, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->callbacks, on_data_chunk_recv);
        nghttp2_session_callbacks_set_on_frame_recv_callback(s->callbacks, on_frame_recv);
        nghttp2_session_callbacks_set_on_frame_send_callback(s->callbacks, on_frame_send);
        nghttp2_session_callbacks_set_on_stream_close_callback(s->callbacks, on_stream_close);
        /* Bounds on what a peer can make us hold: unacknowledged settings, closed-stream bookkeeping. */
        nghttp2_option_set_max_settings(s->option, 32);
        nghttp2_option_set_max_outbound_ack(s->option, 1000);
        *ret = TAKE_PTR(s);
        return 0;
}

int rpc_server_listen(rpc_server *s, const char *socket_path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (isempty(socket_path))
                return -EINVAL;
        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        if (s->listen_fd >= 0)
                return -EBUSY;
        strcpy(sa.sun_path, socket_path);

        struct stat st;
        if (lstat(socket_path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (unlink(socket_path) < 0 && errno != ENOENT)
                        return negative_errno();
        }
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        /* A unix socket's mode comes from the umask at bind time (fchmod before bind has no effect), and
         * connect() needs write permission: 0600 means only our user (root, like the kubelet). */
        mode_t old = umask(0177);
        int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
        umask(old);
        if (r < 0)
                return negative_errno();
        if (chmod(socket_path, 0600) < 0 || lstat(socket_path, &st) < 0 || listen(fd, SOMAXCONN) < 0) {
                r = negative_errno();
                (void)unlink(socket_path);
                return r;
        }
        s->socket_path = strdup(socket_path);
        r = s->socket_path ? loop_add_io(s->loop, fd, EPOLLIN, on_accept, s, &s->listen_source) : -ENOMEM;
        if (r < 0) {
                s->socket_path = mfree(s->socket_path);
                (void)unlink(socket_path);
                return r;
        }
        s->socket_dev = st.st_dev;
        s->socket_ino = st.st_ino;
        s->listen_fd = TAKE_FD(fd);
        return 0;
}

void rpc_server_shutdown(rpc_server *s)
{
        if (!s)
                return;
        s->listen_source = loop_source_free(s->listen_source);
        s->backoff_timer = loop_source_free(s->backoff_timer);
        s->trim_timer = loop_source_free(s->trim_timer);
        s->listen_fd = safe_close(s->listen_fd);
        if (s->socket_path) {
                /* Only our own socket: after a kubelet restart the path may name someone else's by now. */
                struct stat st;
                if (lstat(s->socket_path, &st) == 0 && st.st_dev == s->socket_dev &&
                    st.st_ino == s->socket_ino)
                        (void)unlink(s->socket_path);
                s->socket_path = mfree(s->socket_path);
        }
        /* conn_closed unlinks each one (later, for a connection whose callback we are in). Close handlers
         * may change the list: start over after each close. */
        s->n_ref++;
        for (;;) {
                server_conn *conn = s->conns;
                while (conn && h2conn_is_closing(conn->h2))
                        conn = conn->next;
                if (!conn)
                        break;
                h2conn_close(conn->h2, NGHTTP2_NO_ERROR);
        }
        server_unref(s);
}

static rpc_server *server_unref(rpc_server *s)
{
        if (!s || --s->n_ref > 0)
                return NULL;
        if (s->prev_server)
                s->prev_server->next_server = s->next_server;
        else
                servers = s->next_server;
        if (s->next_server)
                s->next_server->prev_server = s->prev_server;
        loop_source_free(s->trim_timer); /* scheduled by a connection that closed after the shutdown */
        for (size_t i = 0; i < s->n_methods; i++)
                free((char *)s->methods[i].path);
        free(s->methods);
        nghttp2_session_callbacks_del(s->callbacks);
        nghttp2_option_del(s->option);
        free(s->socket_path);
        free(s);
        return NULL;
}

rpc_server *rpc_server_free(rpc_server *s)
{
        if (!s)
                return NULL;
        rpc_server_shutdown(s);
        return server_unref(s);
}

void rpc_server_set_handshake_timeout(rpc_server *s, uint64_t nsec)
{
        s->handshake_timeout = nsec;
}

void rpc_server_set_idle_timeout(rpc_server *s, uint64_t nsec)
{
        s->idle_timeout = nsec;
}

void rpc_server_set_max_request(rpc_server *s, size_t bytes)
{
        s->max_request = MIN(bytes, (size_t)RPC_MAX_MESSAGE);
}

void rpc_server_expect_client(rpc_server *s, bool on)
{
        s->expecting = on;
}

void rpc_server_set_refusal_handler(rpc_server *s, rpc_refusal_handler cb, void *userdata)
{
        s->refusal_cb = cb;
        s->refusal_userdata = userdata;
}

size_t rpc_server_connections(const rpc_server *s)
{
        return s->n_conns;
}
