/* SPDX-License-Identifier: Apache-2.0 */
/* The unary client: against our own server, against an nghttp2 server peer that misbehaves in chosen ways,
 * a socket nobody answers on, and a missing socket. */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <sys/un.h>

#include "rpc-peer.c"
#include "rpc/rpc.h"

struct result {
        bool done;
        int status;
        char message[256];
        uint8_t resp[64];
        size_t size;
};

static void on_done(int status, const char *message, const uint8_t *resp, size_t size, void *userdata)
{
        struct result *r = userdata;
        assert_false(r->done); /* exactly once */
        r->done = true;
        r->status = status;
        snprintf(r->message, sizeof r->message, "%s", message);
        r->size = size;
        if (size > 0)
                memcpy(r->resp, resp, MIN(size, sizeof r->resp));
}

static void echo(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        (void)rpc_call_reply(c, msg, size);
}

static void failing_method(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        (void)rpc_call_fail(c, GRPC_UNKNOWN, "the ResourceName \"%.*s\" is invalid: 100%%", (int)size, msg);
}

struct fixture {
        loop *loop;
        char dir[64], path[128];
};

static int setup(void **state)
{
        struct fixture *f = new0(struct fixture, 1);
        assert_int_equal(loop_new(&f->loop), 0);
        strcpy(f->dir, "/tmp/nvdp-rpcc-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof f->path, "%s/kubelet.sock", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        loop_free(f->loop);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static bool run_until_done(loop *l, struct result *r)
{
        for (int i = 0; i < 3000 && !r->done; i++)
                loop_run_once(l, NSEC_PER_MSEC);
        return r->done;
}

static void test_against_own_server(void **state)
{
        struct fixture *f = *state;
        const struct rpc_method methods[] = { { "/v1beta1.Registration/Register", RPC_UNARY, echo },
                                              { "/v1beta1.Registration/Fail", RPC_UNARY, failing_method } };
        _cleanup_(rpc_server_freep) rpc_server *s = NULL;
        assert_int_equal(rpc_server_new(f->loop, methods, 2, NULL, &s), 0);
        assert_int_equal(rpc_server_listen(s, f->path), 0);

        struct result r = { 0 };
        rpc_client_call *call;
        assert_int_equal(rpc_client_call_start(f->loop, f->path, "/v1beta1.Registration/Register",
                                               (const uint8_t *)"req", 3, 5 * NSEC_PER_SEC, on_done, &r,
                                               &call),
                         0);
        assert_true(run_until_done(f->loop, &r));
        assert_int_equal(r.status, GRPC_OK);
        assert_string_equal(r.message, "");
        assert_int_equal(r.size, 3);
        assert_memory_equal(r.resp, "req", 3);
        /* the client closes its connection after the call */
        for (int i = 0; i < 100 && rpc_server_connections(s) > 0; i++)
                loop_run_once(f->loop, NSEC_PER_MSEC);
        assert_int_equal(rpc_server_connections(s), 0);

        struct result e = { 0 };
        assert_int_equal(rpc_client_call_start(f->loop, f->path, "/v1beta1.Registration/Fail",
                                               (const uint8_t *)"gpu", 3, 5 * NSEC_PER_SEC, on_done, &e,
                                               NULL),
                         0);
        assert_true(run_until_done(f->loop, &e));
        assert_int_equal(e.status, GRPC_UNKNOWN);
        assert_string_equal(e.message, "the ResourceName \"gpu\" is invalid: 100%");
        assert_int_equal(e.size, 0);

        /* a request over the limit is refused locally */
        assert_int_equal(rpc_client_call_start(f->loop, f->path, "/x/y", (const uint8_t *)"",
                                               RPC_MAX_MESSAGE + 1, 0, on_done, &e, NULL),
                         -EMSGSIZE);
}

static void test_missing_socket(void **state)
{
        struct fixture *f = *state;
        struct result r = { 0 };
        assert_int_equal(rpc_client_call_start(f->loop, f->path, "/v1beta1.Registration/Register", NULL, 0,
                                               5 * NSEC_PER_SEC, on_done, &r, NULL),
                         0);
        assert_false(r.done); /* never from inside start */
        assert_true(run_until_done(f->loop, &r));
        assert_int_equal(r.status, GRPC_UNAVAILABLE);
        char want[256];
        snprintf(want, sizeof want, "failed to connect to %s: No such file or directory", f->path);
        assert_string_equal(r.message, want);

        char longp[200];
        memset(longp, 'x', 150);
        longp[0] = '/';
        longp[150] = 0;
        assert_int_equal(rpc_client_call_start(f->loop, longp, "/a/b", NULL, 0, 0, on_done, &r, NULL),
                         -ENAMETOOLONG);
}

static int listen_at(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(listen(fd, 4), 0);
        return fd;
}

static void test_timeout(void **state)
{
        struct fixture *f = *state;
        int lfd = listen_at(f->path); /* connect succeeds (backlog), nobody ever answers */
        struct result r = { 0 };
        uint64_t t0 = now_nsec();
        assert_int_equal(rpc_client_call_start(f->loop, f->path, "/v1beta1.Registration/Register", NULL, 0,
                                               100 * NSEC_PER_MSEC, on_done, &r, NULL),
                         0);
        assert_true(run_until_done(f->loop, &r));
        uint64_t elapsed = now_nsec() - t0;
        assert_int_equal(r.status, GRPC_DEADLINE_EXCEEDED);
        assert_true(elapsed >= 100 * NSEC_PER_MSEC && elapsed < 1000 * NSEC_PER_MSEC);
        assert_non_null(strstr(r.message, "/v1beta1.Registration/Register"));
        close(lfd);
}

static void test_cancel(void **state)
{
        struct fixture *f = *state;
        int lfd = listen_at(f->path);
        struct result r = { 0 };
        rpc_client_call *call = NULL;
        assert_int_equal(rpc_client_call_start(f->loop, f->path, "/a/b", NULL, 0, 50 * NSEC_PER_MSEC,
                                               on_done, &r, &call),
                         0);
        loop_run_once(f->loop, NSEC_PER_MSEC);
        assert_null(rpc_client_call_cancel(call));
        for (int i = 0; i < 150; i++)
                loop_run_once(f->loop, NSEC_PER_MSEC);
        assert_false(r.done);
        assert_null(rpc_client_call_cancel(NULL));
        close(lfd);
}

/* ---- an nghttp2 server peer that answers as told -------------------------------------------------- */

enum answer { ANSWER_NO_GRPC_STATUS, ANSWER_HTTP_503, ANSWER_OK_AFTER_PING, ANSWER_TWO_MESSAGES };
static enum answer answer;
static const uint8_t response_body[] = { 0, 0, 0, 0, 2, 'o', 'k', 0, 0, 0, 0, 2, 'o', 'k' };

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
        size_t n = answer == ANSWER_TWO_MESSAGES ? 14 : 7;
        memcpy(buf, response_body, n);
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv ok[] = { NV("grpc-status", "0") };
        nghttp2_nv other[] = { NV("x-other", "1") };
        nghttp2_submit_trailer(s, id, answer == ANSWER_NO_GRPC_STATUS ? other : ok, 1);
        return (ssize_t)n;
}

static void answer_request(struct peer *p, struct peer_stream *st)
{
        nghttp2_nv grpc[] = { NV(":status", "200"), NV("content-type", "application/grpc") };
        nghttp2_nv unavailable[] = { NV(":status", "503"), NV("content-type", "text/plain") };
        nghttp2_data_provider prd = { .read_callback = body_read };
        if (answer == ANSWER_OK_AFTER_PING) {
                /* interleaved frames the kubelet sends: BDP ping, a window bump, new settings */
                nghttp2_submit_ping(p->session, NGHTTP2_FLAG_NONE,
                                    (const uint8_t *)"\x02\x04\x10\x10\x09\x0e\x07\x07");
                nghttp2_submit_window_update(p->session, NGHTTP2_FLAG_NONE, 0, 1000);
                const nghttp2_settings_entry e[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 } };
                nghttp2_submit_settings(p->session, NGHTTP2_FLAG_NONE, e, 1);
        }
        if (answer == ANSWER_HTTP_503)
                nghttp2_submit_response(p->session, st->id, unavailable, 2, NULL);
        else
                nghttp2_submit_response(p->session, st->id, grpc, 2, &prd);
}

static struct result call_fake_server(struct fixture *f, enum answer a, struct peer *p)
{
        answer = a;
        int lfd = listen_at(f->path);
        struct result r = { 0 };
        assert_int_equal(rpc_client_call_start(f->loop, f->path, "/v1beta1.Registration/Register",
                                               (const uint8_t *)"x", 1, 5 * NSEC_PER_SEC, on_done, &r, NULL),
                         0);
        int fd = -1;
        for (int i = 0; i < 100 && fd < 0; i++) {
                loop_run_once(f->loop, NSEC_PER_MSEC);
                fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        }
        assert_true(fd >= 0);
        const nghttp2_settings_entry s[] = { { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 } };
        assert_int_equal(peer_init(p, fd, true, s, 1, true), 0);
        p->on_request = answer_request;
        assert_true(PUMP_UNTIL(f->loop, p, r.done));
        /* and the client says goodbye */
        assert_true(PUMP_UNTIL(f->loop, p, p->goaway && p->eof));
        assert_int_equal(p->goaway_code, NGHTTP2_NO_ERROR);
        close(lfd);
        unlink(f->path);
        return r;
}

static void test_request_headers_and_missing_grpc_status(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        struct result r = call_fake_server(f, ANSWER_NO_GRPC_STATUS, &p);
        assert_int_equal(r.status, GRPC_UNKNOWN);
        assert_non_null(strstr(r.message, "no grpc-status"));
        /* what the client sent */
        assert_int_equal(p.n_streams, 1);
        struct peer_stream *st = &p.streams[0];
        assert_int_equal(st->id, 1); /* client streams are odd */
        assert_string_equal(st->headers,
                            ":method: POST\n:scheme: http\n:path: /v1beta1.Registration/Register\n"
                            ":authority: localhost\ncontent-type: application/grpc\nte: trailers\n"
                            "grpc-timeout: 5000000u\n");
        assert_int_equal(st->data_len, 6);
        assert_memory_equal(st->data, "\0\0\0\0\x01x", 6);
        peer_done(&p);
}

static void test_interleaved_ping_settings_window_update(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        struct result r = call_fake_server(f, ANSWER_OK_AFTER_PING, &p);
        assert_int_equal(r.status, GRPC_OK);
        assert_int_equal(r.size, 2);
        assert_memory_equal(r.resp, "ok", 2);
        peer_done(&p);
}

static void test_http_error_and_cardinality(void **state)
{
        struct fixture *f = *state;
        struct peer p;
        struct result r = call_fake_server(f, ANSWER_HTTP_503, &p);
        assert_int_equal(r.status, GRPC_UNAVAILABLE);
        assert_non_null(strstr(r.message, "HTTP status 503"));
        peer_done(&p);
        r = call_fake_server(f, ANSWER_TWO_MESSAGES, &p);
        assert_int_equal(r.status, GRPC_INTERNAL);
        assert_non_null(strstr(r.message, "more than one response message"));
        peer_done(&p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_against_own_server, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_socket, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_request_headers_and_missing_grpc_status, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_interleaved_ping_settings_window_update, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_http_error_and_cardinality, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
