/* SPDX-License-Identifier: Apache-2.0 */
/* The gRPC server and client driven over socketpairs / temporary unix sockets, with an nghttp2 peer or raw
 * bytes on the other end. */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <sys/stat.h>
#include <sys/un.h>

#include "rpc-peer.c"
#include "rpc/grpc-wire.h"
#include "rpc/rpc.h"

static const nghttp2_settings_entry default_settings[] = { { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 } };

struct fixture {
        loop *loop;
        rpc_server *server;
        unsigned n_closed, n_handled;
        rpc_call *held;
        bool free_in_close;
        char dir[64];
};

static void echo(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        struct fixture *f = userdata;
        f->n_handled++;
        assert_int_equal(rpc_call_reply(c, msg, size), 0);
        /* finished: the call is no longer ours */
        assert_int_equal(rpc_call_send(c, msg, size), -ESTALE);
}

static void hold_closed(rpc_call *c, void *userdata)
{
        struct fixture *f = userdata;
        f->n_closed++;
        if (f->held == c)
                f->held = NULL;
        if (f->free_in_close)
                f->server = rpc_server_free(f->server);
}

static void shutdown_method(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        /* e.g. the plugin restarting its server after the kubelet restarted, from inside a handler */
        rpc_server_shutdown(rpc_call_get_server(c));
        assert_int_equal(rpc_call_reply(c, msg, size), -ESTALE);
}

static void hold(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        struct fixture *f = userdata;
        f->n_handled++;
        rpc_call_set_close_handler(c, hold_closed, f);
        f->held = c;
        /* a message bigger than the default windows: flow control decides how much goes out */
        size_t n = size == 0 ? 100000 : size;
        uint8_t *m = malloc(n);
        memset(m, 'h', n);
        assert_int_equal(rpc_call_send(c, m, n), 0);
        free(m);
}

static void failing_method(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        assert_int_equal(rpc_call_fail(c, GRPC_FAILED_PRECONDITION, "device %s is %d%% gone", "GPU-0", 100),
                         0);
}

static const struct rpc_method methods[] = {
        { "/t.T/Echo", RPC_UNARY, echo },
        { "/t.T/Hold", RPC_SERVER_STREAM, hold },
        { "/t.T/Fail", RPC_UNARY, failing_method },
        { "/t.T/Shutdown", RPC_UNARY, shutdown_method },
};

static int setup(void **state)
{
        struct fixture *f = new0(struct fixture, 1);
        assert_int_equal(loop_new(&f->loop), 0);
        assert_int_equal(rpc_server_new(f->loop, methods, ELEMENTSOF(methods), f, &f->server), 0);
        strcpy(f->dir, "/tmp/nvdp-rpc-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        f->server = rpc_server_free(f->server);
        loop_free(f->loop);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

/* A connected nghttp2 client peer on a socketpair served by f->server. */
static void connect_peer(struct fixture *f, struct peer *p, const nghttp2_settings_entry *settings,
                         size_t n_settings, bool auto_window_update)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(rpc_server_add_connection(f->server, sv[0]), 0);
        assert_int_equal(peer_init(p, sv[1], false, settings, n_settings, auto_window_update), 0);
}

static int32_t unary(struct fixture *f, struct peer *p, const char *path, const char *msg, size_t chunk)
{
        size_t len;
        static uint8_t *body[16];
        static unsigned i;
        free(body[i % 16]);
        body[i % 16] = grpc_frame(msg, strlen(msg), &len);
        return peer_request(p, path, "application/grpc", "POST", body[i++ % 16], len, chunk, true, NULL, 0);
}

static void test_unary_echo(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        int32_t id = unary(f, &p, "/t.T/Echo", "hello", 0);
        struct peer_stream *st = peer_stream(&p, id);
        assert_true(PUMP_UNTIL(f->loop, &p, st->closed));
        assert_int_equal(p.first_frame_type, NGHTTP2_SETTINGS);
        assert_true(has_line(st->headers, ":status: 200"));
        assert_true(has_line(st->headers, "content-type: application/grpc"));
        assert_false(st->headers_end_stream);
        assert_int_equal(st->data_len, 10);
        assert_memory_equal(st->data, "\0\0\0\0\x05hello", 10);
        assert_string_equal(st->trailers, "grpc-status: 0\n");
        assert_int_equal(st->close_error, NGHTTP2_NO_ERROR);
        assert_false(st->rst_received);
        assert_int_equal(rpc_server_connections(f->server), 1);
        peer_done(&p);
        /* the server notices the peer went away */
        for (int i = 0; i < 100 && rpc_server_connections(f->server) > 0; i++)
                loop_run_once(f->loop, NSEC_PER_MSEC);
        assert_int_equal(rpc_server_connections(f->server), 0);
}

static void test_request_split_into_one_byte_frames(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        int32_t id = unary(f, &p, "/t.T/Echo", "split across many DATA frames", 1);
        struct peer_stream *st = peer_stream(&p, id);
        assert_true(PUMP_UNTIL(f->loop, &p, st->closed));
        assert_int_equal(st->data_len, 5 + 29);
        assert_memory_equal(st->data + 5, "split across many DATA frames", 29);
        assert_string_equal(st->trailers, "grpc-status: 0\n");
        peer_done(&p);
}

static void test_big_message_split_into_16k_frames(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        /* The peer allows huge frames and windows; we must still never send a payload over 16384. */
        const nghttp2_settings_entry big[] = { { NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1u << 20 },
                                               { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 24 } };
        connect_peer(f, &p, big, ELEMENTSOF(big), true);
        nghttp2_session_set_local_window_size(p.session, NGHTTP2_FLAG_NONE, 0, 1 << 24);
        size_t n = 300000, len;
        char *msg = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
                msg[i] = (char)('a' + i % 26);
        msg[n] = 0;
        uint8_t *body = grpc_frame(msg, n, &len);
        int32_t id = peer_request(&p, "/t.T/Echo", "application/grpc", "POST", body, len, 0, true, NULL, 0);
        struct peer_stream *st = peer_stream(&p, id);
        assert_true(PUMP_UNTIL(f->loop, &p, st->closed));
        assert_int_equal(st->data_len, n + 5);
        assert_memory_equal(st->data + 5, msg, n);
        assert_true(p.max_frame <= 16384);
        assert_true(p.n_data_frames >= (n + 5) / 16384);
        assert_string_equal(st->trailers, "grpc-status: 0\n");
        free(body);
        free(msg);
        peer_done(&p);
}

static void test_flow_control_and_initial_window_delta(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        /* Stream window 0 and no WINDOW_UPDATEs from the peer: HEADERS only. */
        const nghttp2_settings_entry zero[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0 } };
        connect_peer(f, &p, zero, 1, false);
        size_t len;
        uint8_t *body = grpc_frame("", 0, &len);
        int32_t id = peer_request(&p, "/t.T/Hold", "application/grpc", "POST", body, len, 0, true, NULL, 0);
        struct peer_stream *st = peer_stream(&p, id);
        assert_true(PUMP_UNTIL(f->loop, &p, st->n_headers_frames == 1 && f->held));
        for (int i = 0; i < 20; i++) {
                peer_io(&p);
                loop_run_once(f->loop, NSEC_PER_MSEC);
        }
        assert_int_equal(st->data_len, 0);
        /* Raising INITIAL_WINDOW_SIZE mid-stream opens the stream window by the delta (RFC 7540 6.9.2); the
         * connection window (65535) is the limit now. */
        const nghttp2_settings_entry open[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20 } };
        nghttp2_submit_settings(p.session, NGHTTP2_FLAG_NONE, open, 1);
        assert_true(PUMP_UNTIL(f->loop, &p, st->data_len == 65535));
        for (int i = 0; i < 20; i++) {
                peer_io(&p);
                loop_run_once(f->loop, NSEC_PER_MSEC);
        }
        assert_int_equal(st->data_len, 65535);
        /* Connection WINDOW_UPDATE: the rest of the 100005 bytes. */
        nghttp2_submit_window_update(p.session, NGHTTP2_FLAG_NONE, 0, 100000);
        assert_true(PUMP_UNTIL(f->loop, &p, st->data_len == 100005));
        assert_false(st->closed);
        free(body);
        peer_done(&p);
}

static void test_errors_before_data_are_trailers_only(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        size_t len;
        uint8_t *body = grpc_frame("x", 1, &len);
        int32_t wrong_path =
                peer_request(&p, "/t.T/Nope", "application/grpc", "POST", body, len, 0, true, NULL, 0);
        int32_t wrong_ct =
                peer_request(&p, "/t.T/Echo", "application/json", "POST", body, len, 0, true, NULL, 0);
        int32_t wrong_method =
                peer_request(&p, "/t.T/Echo", "application/grpc", "GET", NULL, 0, 0, true, NULL, 0);
        int32_t failing =
                peer_request(&p, "/t.T/Fail", "application/grpc", "POST", body, len, 0, true, NULL, 0);
        int32_t no_message =
                peer_request(&p, "/t.T/Echo", "application/grpc", "POST", NULL, 0, 0, true, NULL, 0);
        struct peer_stream *a = peer_stream(&p, wrong_path), *b = peer_stream(&p, wrong_ct),
                           *c = peer_stream(&p, wrong_method), *d = peer_stream(&p, failing),
                           *e = peer_stream(&p, no_message);
        assert_true(PUMP_UNTIL(f->loop, &p, a->closed && b->closed && c->closed && d->closed && e->closed));

        assert_true(a->headers_end_stream);
        assert_true(has_line(a->headers, ":status: 200"));
        assert_true(has_line(a->headers, "content-type: application/grpc"));
        assert_true(has_line(a->headers, "grpc-status: 12"));
        assert_true(has_line(a->headers, "grpc-message: unknown method /t.T/Nope"));
        assert_int_equal(a->data_len, 0);

        assert_true(b->headers_end_stream);
        assert_true(has_line(b->headers, ":status: 415"));
        assert_true(has_line(b->headers, "grpc-status: 13"));

        assert_true(c->headers_end_stream);
        assert_true(has_line(c->headers, ":status: 405"));

        assert_true(d->headers_end_stream);
        assert_true(has_line(d->headers, ":status: 200"));
        assert_true(has_line(d->headers, "grpc-status: 9"));
        assert_true(has_line(d->headers, "grpc-message: device GPU-0 is 100%25 gone"));

        assert_true(has_line(e->headers, "grpc-status: 13"));
        assert_int_equal(f->n_handled, 0);
        free(body);
        peer_done(&p);
}

static void test_oversized_and_compressed_messages(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        /* Length prefix 4 MiB + 1 (over the 1 MiB request limit), no body, client not half-closed:
         * RESOURCE_EXHAUSTED right away, then RST_STREAM(NO_ERROR) because the client could still be
         * sending. */
        const uint8_t over[] = { 0, 0x00, 0x40, 0x00, 0x01 };
        const uint8_t compressed[] = { 1, 0, 0, 0, 1, 'x' };
        int32_t o = peer_request(&p, "/t.T/Echo", "application/grpc", "POST", over, sizeof over, 0, false,
                                 NULL, 0);
        int32_t c = peer_request(&p, "/t.T/Echo", "application/grpc", "POST", compressed, sizeof compressed,
                                 0, true, NULL, 0);
        struct peer_stream *so = peer_stream(&p, o), *sc = peer_stream(&p, c);
        assert_true(PUMP_UNTIL(f->loop, &p, so->closed && sc->closed));
        assert_true(so->headers_end_stream);
        assert_true(has_line(so->headers, "grpc-status: 8"));
        assert_true(has_line(so->headers,
                             "grpc-message: grpc: received message larger than max (4194305 vs. 1048576)"));
        assert_true(so->rst_received);
        assert_int_equal(so->rst_code, NGHTTP2_NO_ERROR);
        assert_true(has_line(sc->headers, "grpc-status: 13"));
        assert_false(sc->rst_received); /* it had half-closed */
        /* The connection is fine afterwards. */
        int32_t id = unary(f, &p, "/t.T/Echo", "after", 0);
        struct peer_stream *st = peer_stream(&p, id);
        assert_true(PUMP_UNTIL(f->loop, &p, st->closed));
        assert_string_equal(st->trailers, "grpc-status: 0\n");
        peer_done(&p);
}

static void test_header_list_limit(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        char *big = malloc(20000);
        memset(big, 'v', 19999);
        big[19999] = 0;
        nghttp2_nv extra[] = { NV("x-big", big) };
        size_t len;
        uint8_t *body = grpc_frame("x", 1, &len);
        int32_t id = peer_request(&p, "/t.T/Echo", "application/grpc", "POST", body, len, 0, true, extra, 1);
        struct peer_stream *st = peer_stream(&p, id);
        assert_true(PUMP_UNTIL(f->loop, &p, st->closed));
        assert_true(has_line(st->headers, "grpc-status: 8"));
        assert_int_equal(f->n_handled, 0);
        free(big);
        free(body);
        peer_done(&p);
}

static void test_concurrent_calls_while_stream_open(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        size_t len;
        uint8_t *body = grpc_frame("x", 1, &len);
        int32_t h = peer_request(&p, "/t.T/Hold", "application/grpc", "POST", body, len, 0, true, NULL, 0);
        struct peer_stream *sh = peer_stream(&p, h);
        assert_true(PUMP_UNTIL(f->loop, &p, sh->data_len == 6));
        int32_t a = unary(f, &p, "/t.T/Echo", "one", 0), b = unary(f, &p, "/t.T/Echo", "two", 0);
        struct peer_stream *sa = peer_stream(&p, a), *sb = peer_stream(&p, b);
        assert_true(PUMP_UNTIL(f->loop, &p, sa->closed && sb->closed));
        assert_memory_equal(sa->data + 5, "one", 3);
        assert_memory_equal(sb->data + 5, "two", 3);
        assert_false(sh->closed);
        /* more messages on the open stream */
        assert_non_null(f->held);
        assert_int_equal(rpc_call_send(f->held, (const uint8_t *)"again", 5), 0);
        assert_true(PUMP_UNTIL(f->loop, &p, sh->data_len == 6 + 10));
        assert_memory_equal(sh->data + 6,
                            "\0\0\0\0\x05"
                            "again",
                            10);
        /* RST_STREAM(CANCEL) from the client runs the close handler */
        nghttp2_submit_rst_stream(p.session, NGHTTP2_FLAG_NONE, h, NGHTTP2_CANCEL);
        assert_true(PUMP_UNTIL(f->loop, &p, f->n_closed == 1));
        assert_null(f->held);
        assert_int_equal(f->n_handled, 3);
        free(body);
        peer_done(&p);
}

static void test_close_handler_on_connection_close(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        size_t len;
        uint8_t *body = grpc_frame("x", 1, &len);
        int32_t h = peer_request(&p, "/t.T/Hold", "application/grpc", "POST", body, len, 0, true, NULL, 0);
        assert_true(PUMP_UNTIL(f->loop, &p, peer_stream(&p, h)->data_len == 6));
        peer_done(&p); /* EOF */
        for (int i = 0; i < 100 && f->n_closed == 0; i++)
                loop_run_once(f->loop, NSEC_PER_MSEC);
        assert_int_equal(f->n_closed, 1);
        assert_int_equal(rpc_server_connections(f->server), 0);
        free(body);
}

static void test_shutdown_sends_goaway_and_runs_close_handlers(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        size_t len;
        uint8_t *body = grpc_frame("x", 1, &len);
        int32_t h = peer_request(&p, "/t.T/Hold", "application/grpc", "POST", body, len, 0, true, NULL, 0);
        assert_true(PUMP_UNTIL(f->loop, &p, peer_stream(&p, h)->data_len == 6));
        rpc_server_shutdown(f->server);
        assert_int_equal(f->n_closed, 1);
        assert_int_equal(rpc_server_connections(f->server), 0);
        assert_true(PUMP_UNTIL(f->loop, &p, p.goaway && p.eof));
        assert_int_equal(p.goaway_code, NGHTTP2_NO_ERROR);
        free(body);
        peer_done(&p);
}

/* Raw bytes in, frames out: returns the frame types the server sent before closing. */
static size_t raw_exchange(struct fixture *f, const void *bytes, size_t n, bool shut_wr, uint8_t *types,
                           size_t max_types, uint32_t *ret_goaway_code)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(rpc_server_add_connection(f->server, sv[0]), 0);
        assert_int_equal(send(sv[1], bytes, n, 0), (ssize_t)n);
        if (shut_wr)
                shutdown(sv[1], SHUT_WR);
        uint8_t buf[65536];
        size_t got = 0;
        for (int i = 0; i < 500; i++) {
                loop_run_once(f->loop, NSEC_PER_MSEC);
                ssize_t k = recv(sv[1], buf + got, sizeof buf - got, MSG_DONTWAIT);
                if (k == 0)
                        break;
                if (k > 0)
                        got += (size_t)k;
        }
        close(sv[1]);
        size_t nt = 0;
        for (size_t off = 0; off + 9 <= got && nt < max_types;) {
                size_t len = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];
                types[nt++] = buf[off + 3];
                if (buf[off + 3] == NGHTTP2_GOAWAY && ret_goaway_code)
                        *ret_goaway_code = (uint32_t)buf[off + 13] << 24 | (uint32_t)buf[off + 14] << 16 |
                                           (uint32_t)buf[off + 15] << 8 | buf[off + 16];
                off += 9 + len;
        }
        return nt;
}

static void test_protocol_breakers_dropped_others_unaffected(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        size_t len;
        uint8_t *body = grpc_frame("x", 1, &len);
        int32_t h = peer_request(&p, "/t.T/Hold", "application/grpc", "POST", body, len, 0, true, NULL, 0);
        assert_true(PUMP_UNTIL(f->loop, &p, peer_stream(&p, h)->data_len == 6));

        static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        uint8_t types[16];
        uint32_t code = 99;

        /* garbage instead of the preface */
        size_t nt = raw_exchange(f, "GET / HTTP/1.1\r\n\r\n", 18, false, types, 16, &code);
        assert_true(nt >= 2);
        assert_int_equal(types[0], NGHTTP2_SETTINGS);
        assert_int_equal(types[nt - 1], NGHTTP2_GOAWAY);
        assert_int_equal(code, NGHTTP2_PROTOCOL_ERROR);

        /* frame length over our MAX_FRAME_SIZE (16384) */
        uint8_t big[24 + 9 + 9];
        memcpy(big, preface, 24);
        memcpy(big + 24, "\0\0\0\x04\0\0\0\0\0", 9);
        memcpy(big + 33, "\x00\x40\x01\x00\x00\x00\x00\x00\x01", 9);
        code = 99;
        nt = raw_exchange(f, big, sizeof big, false, types, 16, &code);
        assert_int_equal(types[nt - 1], NGHTTP2_GOAWAY);
        assert_int_equal(code, NGHTTP2_FRAME_SIZE_ERROR);

        /* truncated frame, then EOF: just closed */
        uint8_t trunc[24 + 9 + 5];
        memcpy(trunc, preface, 24);
        memcpy(trunc + 24, "\0\0\0\x04\0\0\0\0\0", 9);
        memcpy(trunc + 33, "\x00\x00\x20\x01\x04", 5);
        nt = raw_exchange(f, trunc, sizeof trunc, true, types, 16, NULL);
        assert_true(nt >= 1);
        assert_int_equal(types[0], NGHTTP2_SETTINGS);

        for (int i = 0; i < 50; i++)
                loop_run_once(f->loop, NSEC_PER_MSEC);
        assert_int_equal(rpc_server_connections(f->server), 1);
        assert_int_equal(f->n_closed, 0);
        int32_t id = unary(f, &p, "/t.T/Echo", "still here", 0);
        assert_true(PUMP_UNTIL(f->loop, &p, peer_stream(&p, id)->closed));
        assert_memory_equal(peer_stream(&p, id)->data + 5, "still here", 10);
        free(body);
        peer_done(&p);
}

static void test_silent_connection_times_out(void **state)
{
        struct fixture *f = *state;
        rpc_server_set_handshake_timeout(f->server, 50 * NSEC_PER_MSEC);
        uint8_t types[16];
        uint32_t code = 99;
        /* half a preface, then nothing: dropped with GOAWAY(SETTINGS_TIMEOUT) after 50 ms */
        size_t nt = raw_exchange(f, "PRI * HTTP/2.0\r\n", 16, false, types, 16, &code);
        assert_true(nt >= 2);
        assert_int_equal(types[0], NGHTTP2_SETTINGS);
        assert_int_equal(types[nt - 1], NGHTTP2_GOAWAY);
        assert_int_equal(code, NGHTTP2_SETTINGS_TIMEOUT);
        assert_int_equal(rpc_server_connections(f->server), 0);
        /* a real client is not affected by the timer */
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        for (int i = 0; i < 100; i++) {
                peer_io(&p);
                loop_run_once(f->loop, NSEC_PER_MSEC);
        }
        assert_int_equal(rpc_server_connections(f->server), 1);
        peer_done(&p);
}

static void test_random_frames_never_hurt_other_connections(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        size_t len;
        uint8_t *body = grpc_frame("x", 1, &len);
        int32_t h = peer_request(&p, "/t.T/Hold", "application/grpc", "POST", body, len, 0, true, NULL, 0);
        assert_true(PUMP_UNTIL(f->loop, &p, peer_stream(&p, h)->data_len == 6));
        /* A valid preface and SETTINGS, then frames with random headers and payloads (fixed seed). */
        unsigned seed = 12345;
        uint8_t buf[24 + 9 + 512], types[16];
        memcpy(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0", 33);
        for (int round = 0; round < 100; round++) {
                size_t n = 33 + (size_t)(rand_r(&seed) % 512);
                for (size_t i = 33; i < n; i++)
                        buf[i] = (uint8_t)rand_r(&seed);
                /* mostly small lengths and known types, so frames get parsed rather than rejected at once */
                buf[33] = 0;
                buf[34] = (uint8_t)(rand_r(&seed) % 2);
                buf[36] = (uint8_t)(rand_r(&seed) % 11);
                (void)raw_exchange(f, buf, n, true, types, 16, NULL);
        }
        assert_int_equal(rpc_server_connections(f->server), 1);
        assert_int_equal(f->n_closed, 0);
        int32_t id = unary(f, &p, "/t.T/Echo", "survived", 0);
        assert_true(PUMP_UNTIL(f->loop, &p, peer_stream(&p, id)->closed));
        assert_memory_equal(peer_stream(&p, id)->data + 5, "survived", 8);
        free(body);
        peer_done(&p);
}

static void test_settings_advertised(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        connect_peer(f, &p, default_settings, 1, true);
        assert_true(PUMP_UNTIL(f->loop, &p, p.first_frame_type == NGHTTP2_SETTINGS));
        assert_int_equal(
                nghttp2_session_get_remote_settings(p.session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
                100);
        assert_int_equal(
                nghttp2_session_get_remote_settings(p.session, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE),
                16384);
        assert_int_equal(nghttp2_session_get_remote_settings(p.session, NGHTTP2_SETTINGS_MAX_FRAME_SIZE),
                         16384);
        peer_done(&p);
}

static void test_listen(void **state)
{
        struct fixture *f = *state;
        char path[200], longp[200];
        snprintf(path, sizeof path, "%s/plugin.sock", f->dir);
        memset(longp, 'x', 120);
        longp[0] = '/';
        longp[120] = 0;
        assert_int_equal(rpc_server_listen(f->server, longp), -ENAMETOOLONG);

        /* a regular file is not ours to remove */
        FILE *file = fopen(path, "w");
        fclose(file);
        assert_int_equal(rpc_server_listen(f->server, path), -EEXIST);
        unlink(path);

        assert_int_equal(rpc_server_listen(f->server, path), 0);
        assert_int_equal(rpc_server_listen(f->server, path), -EBUSY);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0600);
        rpc_server_shutdown(f->server);
        assert_int_equal(stat(path, &st), -1);

        /* a stale socket from a previous run is replaced */
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, path);
        int stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(stale, (struct sockaddr *)&sa, sizeof sa), 0);
        close(stale);
        assert_int_equal(rpc_server_listen(f->server, path), 0);

        /* the kubelet removed our socket and someone else created one at the path: shutdown leaves it */
        assert_int_equal(unlink(path), 0);
        int other = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(other, (struct sockaddr *)&sa, sizeof sa), 0);
        rpc_server_shutdown(f->server);
        assert_int_equal(stat(path, &st), 0);
        close(other);
}

static void test_shutdown_and_free_from_inside_callbacks(void **state)
{
        struct fixture *f = *state;
        struct peer p, q;
        connect_peer(f, &p, default_settings, 1, true);
        connect_peer(f, &q, default_settings, 1, true);
        size_t len;
        uint8_t *body = grpc_frame("x", 1, &len);
        int32_t hp = peer_request(&p, "/t.T/Hold", "application/grpc", "POST", body, len, 0, true, NULL, 0);
        int32_t hq = peer_request(&q, "/t.T/Hold", "application/grpc", "POST", body, len, 0, true, NULL, 0);
        assert_true(PUMP_UNTIL(f->loop, &p, peer_stream(&p, hp)->data_len == 6));
        assert_true(PUMP_UNTIL(f->loop, &q, peer_stream(&q, hq)->data_len == 6));
        /* a handler on p shuts the server down: both Hold streams get their close handler, the first of
         * which frees the server while p's session is still being dispatched */
        f->free_in_close = true;
        int32_t id = unary(f, &p, "/t.T/Shutdown", "bye", 0);
        assert_true(PUMP_UNTIL(f->loop, &p, p.eof));
        assert_int_equal(f->n_closed, 2);
        assert_null(f->server);
        assert_false(peer_stream(&p, id)->closed && peer_stream(&p, id)->data_len > 0);
        assert_true(PUMP_UNTIL(f->loop, &q, q.eof && q.goaway));
        free(body);
        peer_done(&p);
        peer_done(&q);
}

/* ---- connection bounds: idle timeout, room for new ones, the expected client, request budget ---------- */

struct refusal {
        struct rpc_peer peer;
        enum rpc_refusal why;
        size_t n_connections;
        uint64_t suppressed;
};
static struct refusal refusals[16];
static size_t n_refusals;

static void on_refusal(const struct rpc_peer *peer, enum rpc_refusal why, size_t n_connections,
                       uint64_t suppressed, void *userdata)
{
        if (n_refusals < ELEMENTSOF(refusals))
                refusals[n_refusals] = (struct refusal){ *peer, why, n_connections, suppressed };
        n_refusals++;
}

static void pump_all(struct fixture *f, struct peer *peers, size_t n, int rounds)
{
        for (int r = 0; r < rounds; r++) {
                for (size_t i = 0; i < n; i++)
                        if (peers[i].fd >= 0)
                                peer_io(&peers[i]);
                loop_run_once(f->loop, NSEC_PER_MSEC);
        }
}

/* A Hold stream on p, open once its first message arrived. */
static int32_t hold_open(struct fixture *f, struct peer *p)
{
        static uint8_t body[6] = { 0, 0, 0, 0, 1, 'x' };
        int32_t h = peer_request(p, "/t.T/Hold", "application/grpc", "POST", body, sizeof body, 0, true,
                                 NULL, 0);
        assert_true(PUMP_UNTIL(f->loop, p, peer_stream(p, h)->data_len == 6));
        return h;
}

static void test_idle_connection_closed(void **state)
{
        struct fixture *f = *state;
        rpc_server_set_idle_timeout(f->server, 100 * NSEC_PER_MSEC);
        rpc_server_set_refusal_handler(f->server, on_refusal, NULL);
        n_refusals = 0;
        struct peer idle, busy;
        connect_peer(f, &idle, default_settings, 1, true);
        connect_peer(f, &busy, default_settings, 1, true);
        hold_open(f, &busy);
        /* the idle one: handshake, one call, then nothing */
        int32_t id = unary(f, &idle, "/t.T/Echo", "once", 0);
        assert_true(PUMP_UNTIL(f->loop, &idle, peer_stream(&idle, id)->closed));
        assert_true(PUMP_UNTIL(f->loop, &idle, idle.goaway && idle.eof));
        assert_int_equal(idle.goaway_code, NGHTTP2_NO_ERROR);
        /* the one with an open stream stays, however long it is quiet */
        for (int i = 0; i < 300; i++) {
                peer_io(&busy);
                loop_run_once(f->loop, NSEC_PER_MSEC);
        }
        assert_int_equal(rpc_server_connections(f->server), 1);
        assert_false(busy.goaway);
        assert_int_equal(n_refusals, 1);
        assert_int_equal(refusals[0].why, RPC_CLOSED_IDLE);
        assert_int_equal(refusals[0].peer.pid, getpid());
        assert_int_equal(refusals[0].peer.uid, getuid());
        peer_done(&idle);
        peer_done(&busy);
}

/* Idle timeout 0 (the DRA driver's service socket): a connection without a stream stays open. */
static void test_idle_timeout_off(void **state)
{
        struct fixture *f = *state;
        rpc_server_set_idle_timeout(f->server, 0);
        struct peer quiet;
        connect_peer(f, &quiet, default_settings, 1, true);
        int32_t id = unary(f, &quiet, "/t.T/Echo", "once", 0);
        assert_true(PUMP_UNTIL(f->loop, &quiet, peer_stream(&quiet, id)->closed));
        for (int i = 0; i < 300; i++) {
                peer_io(&quiet);
                loop_run_once(f->loop, NSEC_PER_MSEC);
        }
        assert_false(quiet.goaway);
        assert_int_equal(rpc_server_connections(f->server), 1);
        peer_done(&quiet);
}

/* A full server: a new connection closes the connection idle the longest; one with an open stream stays.
 * Reported once for the peer, the rest counted. */
static void test_full_server_closes_the_idlest(void **state)
{
        struct fixture *f = *state;
        rpc_server_set_refusal_handler(f->server, on_refusal, NULL);
        n_refusals = 0;
        struct peer *peers = calloc(RPC_MAX_CONNECTIONS + 8, sizeof(struct peer));
        assert_non_null(peers);
        connect_peer(f, &peers[0], default_settings, 1, true);
        hold_open(f, &peers[0]); /* the kubelet: ListAndWatch open */
        for (size_t i = 1; i < RPC_MAX_CONNECTIONS; i++) {
                connect_peer(f, &peers[i], default_settings, 1, true);
                pump_all(f, &peers[i], 1, 2);
        }
        pump_all(f, peers, RPC_MAX_CONNECTIONS, 5);
        assert_int_equal(rpc_server_connections(f->server), RPC_MAX_CONNECTIONS);
        for (size_t i = RPC_MAX_CONNECTIONS; i < RPC_MAX_CONNECTIONS + 8; i++) {
                connect_peer(f, &peers[i], default_settings, 1, true);
                pump_all(f, peers, i + 1, 3);
        }
        assert_int_equal(rpc_server_connections(f->server), RPC_MAX_CONNECTIONS);
        /* the 8 oldest idle ones (1..8) went, with GOAWAY; the one with the stream is there */
        for (size_t i = 1; i <= 8; i++)
                assert_true(peers[i].goaway);
        assert_false(peers[9].goaway);
        assert_false(peers[0].goaway);
        int32_t id = unary(f, &peers[0], "/t.T/Echo", "still here", 0);
        assert_true(PUMP_UNTIL(f->loop, &peers[0], peer_stream(&peers[0], id)->closed));
        assert_string_equal(peer_stream(&peers[0], id)->trailers, "grpc-status: 0\n");
        /* one report for this peer (us), the other 7 closings counted, not reported */
        assert_int_equal(n_refusals, 1);
        assert_int_equal(refusals[0].why, RPC_CLOSED_FOR_ROOM);
        assert_int_equal(refusals[0].peer.pid, getpid());
        assert_int_equal(refusals[0].n_connections, RPC_MAX_CONNECTIONS);
        for (size_t i = 0; i < RPC_MAX_CONNECTIONS + 8; i++)
                if (peers[i].fd >= 0)
                        peer_done(&peers[i]);
        free(peers);
}

/* Every connection holding a stream: a new one is refused, unless it is the expected client (the kubelet
 * dialling back inside Register), which closes the least recently active other one and then stays. */
static void test_expected_client_never_locked_out(void **state)
{
        struct fixture *f = *state;
        rpc_server_set_refusal_handler(f->server, on_refusal, NULL);
        n_refusals = 0;
        struct peer *peers = calloc(RPC_MAX_CONNECTIONS + 1, sizeof(struct peer));
        assert_non_null(peers);
        for (size_t i = 0; i < RPC_MAX_CONNECTIONS; i++) {
                connect_peer(f, &peers[i], default_settings, 1, true);
                hold_open(f, &peers[i]);
        }
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(rpc_server_add_connection(f->server, sv[0]), -EMFILE);
        close(sv[1]);
        assert_int_equal(n_refusals, 1);
        assert_int_equal(refusals[0].why, RPC_REFUSED_FULL);

        rpc_server_expect_client(f->server, true);
        struct peer *kubelet = &peers[RPC_MAX_CONNECTIONS];
        connect_peer(f, kubelet, default_settings, 1, true);
        rpc_server_expect_client(f->server, false);
        pump_all(f, peers, RPC_MAX_CONNECTIONS + 1, 5);
        assert_true(peers[0].goaway); /* the least recently active */
        assert_int_equal(rpc_server_connections(f->server), RPC_MAX_CONNECTIONS);
        /* the kubelet's connection, still without a stream, is not what the next newcomer closes: that
         * one is refused */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(rpc_server_add_connection(f->server, sv[0]), -EMFILE);
        close(sv[1]);
        pump_all(f, peers, RPC_MAX_CONNECTIONS + 1, 5);
        assert_false(kubelet->goaway);
        hold_open(f, kubelet);
        assert_int_equal(n_refusals,
                         1); /* one closed for room and one more refused: same peer, not reported */
        for (size_t i = 0; i < RPC_MAX_CONNECTIONS + 1; i++)
                if (peers[i].fd >= 0)
                        peer_done(&peers[i]);
        free(peers);
}

/* Unfinished requests of several connections: past RPC_REQUEST_BUDGET the largest holder is failed, a
 * small request goes through, and the bytes held come back to 0. */
static void test_request_budget(void **state)
{
        struct fixture *f = *state;
        size_t n = RPC_REQUEST_BUDGET / RPC_MAX_REQUEST + 2;
        struct peer *peers = calloc(n + 1, sizeof(struct peer));
        assert_non_null(peers);
        /* each announces a message of 1 MiB (the limit), sends 64 KiB of it and stops */
        uint8_t *body = calloc(1, 5 + 65536);
        grpc_prefix_write(body, RPC_MAX_REQUEST);
        int32_t *ids = calloc(n, sizeof(int32_t));
        for (size_t i = 0; i < n; i++) {
                connect_peer(f, &peers[i], default_settings, 1, true);
                ids[i] = peer_request(&peers[i], "/t.T/Echo", "application/grpc", "POST", body, 5 + 65536, 0,
                                      false, NULL, 0);
                pump_all(f, peers, i + 1, 10);
        }
        assert_true(rpc_request_bytes() <= RPC_REQUEST_BUDGET);
        size_t failed = 0;
        for (size_t i = 0; i < n; i++) {
                struct peer_stream *st = peer_stream(&peers[i], ids[i]);
                if (st->headers_end_stream) {
                        assert_true(has_line(st->headers, "grpc-status: 8"));
                        failed++;
                }
        }
        assert_int_equal(failed, n - RPC_REQUEST_BUDGET / RPC_MAX_REQUEST);
        struct peer *small = &peers[n];
        connect_peer(f, small, default_settings, 1, true);
        int32_t id = unary(f, small, "/t.T/Echo", "small", 0);
        assert_true(PUMP_UNTIL(f->loop, small, peer_stream(small, id)->closed));
        assert_string_equal(peer_stream(small, id)->trailers, "grpc-status: 0\n");
        for (size_t i = 0; i <= n; i++)
                peer_done(&peers[i]);
        for (int i = 0; i < 100 && rpc_server_connections(f->server) > 0; i++)
                loop_run_once(f->loop, NSEC_PER_MSEC);
        assert_int_equal(rpc_request_bytes(), 0);
        free(ids);
        free(body);
        free(peers);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_unary_echo, setup, teardown),
                cmocka_unit_test_setup_teardown(test_request_split_into_one_byte_frames, setup, teardown),
                cmocka_unit_test_setup_teardown(test_big_message_split_into_16k_frames, setup, teardown),
                cmocka_unit_test_setup_teardown(test_flow_control_and_initial_window_delta, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors_before_data_are_trailers_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oversized_and_compressed_messages, setup, teardown),
                cmocka_unit_test_setup_teardown(test_header_list_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_calls_while_stream_open, setup, teardown),
                cmocka_unit_test_setup_teardown(test_close_handler_on_connection_close, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_sends_goaway_and_runs_close_handlers, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_protocol_breakers_dropped_others_unaffected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_settings_advertised, setup, teardown),
                cmocka_unit_test_setup_teardown(test_random_frames_never_hurt_other_connections, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_silent_connection_times_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_listen, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_and_free_from_inside_callbacks, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_idle_connection_closed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_idle_timeout_off, setup, teardown),
                cmocka_unit_test_setup_teardown(test_full_server_closes_the_idlest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expected_client_never_locked_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_request_budget, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
