/* SPDX-License-Identifier: Apache-2.0 */
/* Failures on purpose in the Kubernetes API client (src/kube, net/h2-client, net/transport-tls): the
 * client is made from a kubeconfig file, watches one Node (list, then watch) and PATCHes it, against an
 * API server played in the same process (OpenSSL and nghttp2 on a loopback socket, a certificate made at
 * start). The scenario runs once to count the client side's allocations and reads (read() for files,
 * recv() for the socket), then again failing allocation 1, 2, ... N, and read 1, 2, ... M, in turn.
 * Every run must end, leave no block allocated and give a clean outcome: the labels and the PATCH
 * answered, or an error reported (the watch retries by itself; the PATCH reports its error). The
 * server's own allocations and reads are neither counted nor failed. Skipped under ASan and valgrind,
 * which own malloc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/strv.h"
#include "kube/kube.h"

/* Under ASan the interposer is off and the test skips: its helpers are then unused. */
#include "failmalloc.h"

#if FAILMALLOC
/* read() and recv() fail (EIO) at the one whose countdown reaches 0, while armed. */
static long read_countdown = -1, n_reads;

static bool read_should_fail(void)
{
        if (!armed)
                return false;
        n_reads++;
        return read_countdown >= 0 && read_countdown-- == 0;
}

ssize_t read(int fd, void *buf, size_t n)
{
        if (read_should_fail()) {
                errno = EIO;
                return -1;
        }
        return syscall(SYS_read, fd, buf, n);
}

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
        if (read_should_fail()) {
                errno = EIO;
                return -1;
        }
        return syscall(SYS_recvfrom, fd, buf, n, flags, NULL, NULL);
}
#endif

#if FAILMALLOC
/* json-c 0.16 does not survive a failed allocation inside its tokener (a key whose strdup failed goes on
 * as NULL into lh_char_hash: strlen(NULL)). Those allocations are left alone; the next one fails. */
static bool inside_json_c(void)
{
        void *frames[24];
        int n = backtrace(frames, 24);
        for (int i = 0; i < n; i++) {
                Dl_info info;
                if (dladdr(frames[i], &info) && info.dli_sname &&
                    (startswith(info.dli_sname, "json_tokener_") ||
                     startswith(info.dli_sname, "json_object_") || startswith(info.dli_sname, "lh_") ||
                     startswith(info.dli_sname, "printbuf_")))
                        return true;
        }
        return false;
}
#endif

/* For messages: what fails in this run. */
static const char *what_fails = "nothing";
static long which_fails = -1;

enum outcome { OUTCOME_ANSWERED, OUTCOME_ERROR, OUTCOME_SETUP_FAILED, OUTCOME_HUNG, OUTCOME_WRONG };

_unused_ static const char *outcome_name(enum outcome o)
{
        static const char *const names[] = { "answered", "error", "setup failed", "hung", "wrong answer" };
        return names[o];
}

/* ---- the API server ------------------------------------------------------------------------------------
 */

static const char node_list[] =
        "{\"kind\":\"NodeList\",\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[{"
        "\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"a\":\"1\",\"b\":\"x\"}}}]}";
static const char watch_events[] =
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"11\"}}}\n"
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"gpu-1\","
        "\"resourceVersion\":\"12\",\"labels\":{\"a\":\"2\"}}}}\n";
static const char patched_node[] = "{\"kind\":\"Node\",\"metadata\":{\"name\":\"gpu-1\"}}";

struct server_stream {
        char path[256], method[16];
        const char *body;
        size_t len, off;
};

struct server;
struct server_conn {
        struct server *server;
        struct server_conn *next;
        int fd;
        SSL *ssl;
        nghttp2_session *h2;
        loop_source *io;
        bool handshake_done;
};

/* The server has its own loop, in its own thread (never armed: `armed` is per thread). */
struct server {
        SSL_CTX *ctx;
        int fd;
        loop_source *io;
        struct server_conn *conns;
        loop *loop;
        pthread_t thread;
        atomic_bool stop;
        nghttp2_session_callbacks *cbs;
        unsigned patches, lists, watches;
};

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *user_data)
{
        struct server_stream *st = src->ptr;
        size_t k = MIN(length, st->len - st->off);
        memcpy(buf, st->body + st->off, k);
        st->off += k;
        if (st->off == st->len)
                *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)k;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user_data)
{
        struct server_stream *st = calloc(1, sizeof *st);
        assert_non_null(st);
        nghttp2_session_set_stream_user_data(s, frame->hd.stream_id, st);
        return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
        struct server_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
        if (!st)
                return 0;
        if (namelen == 5 && memcmp(name, ":path", 5) == 0)
                snprintf(st->path, sizeof st->path, "%.*s", (int)valuelen, value);
        else if (namelen == 7 && memcmp(name, ":method", 7) == 0)
                snprintf(st->method, sizeof st->method, "%.*s", (int)valuelen, value);
        return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user_data)
{
        struct server *srv = user_data;
        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
            (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA))
                return 0;
        struct server_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
        if (!st)
                return 0;
        const char *status = "200";
        if (streq(st->method, "PATCH") && streq(st->path, "/api/v1/nodes/gpu-1")) {
                st->body = patched_node;
                srv->patches++;
        } else if (streq(st->method, "GET") && strstr(st->path, "watch=1")) {
                st->body = watch_events;
                srv->watches++;
        } else if (streq(st->method, "GET") && startswith(st->path, "/api/v1/nodes?")) {
                st->body = node_list;
                srv->lists++;
        } else {
                status = "404";
                st->body = "{}";
        }
        st->len = strlen(st->body);
        nghttp2_nv nv[] = {
                { (uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE },
                { (uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16, NGHTTP2_NV_FLAG_NONE },
        };
        nghttp2_data_provider prd = { .source.ptr = st, .read_callback = body_read };
        return nghttp2_submit_response(s, frame->hd.stream_id, nv, ELEMENTSOF(nv), &prd);
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *user_data)
{
        free(nghttp2_session_get_stream_user_data(s, id));
        nghttp2_session_set_stream_user_data(s, id, NULL);
        return 0;
}

static void server_conn_free(struct server *srv, struct server_conn *c)
{
        for (struct server_conn **p = &srv->conns; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        loop_source_free(c->io);
        nghttp2_session_del(c->h2);
        SSL_free(c->ssl);
        close(c->fd);
        free(c);
}

/* Reads what the client sent and writes the answers; false when the connection is done. */
static bool server_conn_pump(struct server *srv, struct server_conn *c)
{
        if (!c->handshake_done) {
                int k = SSL_do_handshake(c->ssl);
                if (k != 1) {
                        int e = SSL_get_error(c->ssl, k);
                        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
                }
                c->handshake_done = true;
        }
        uint8_t buf[16384];
        for (;;) {
                int k = SSL_read(c->ssl, buf, sizeof buf);
                if (k <= 0) {
                        int e = SSL_get_error(c->ssl, k);
                        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                                return false;
                        break;
                }
                if (nghttp2_session_mem_recv(c->h2, buf, (size_t)k) < 0)
                        return false;
        }
        for (;;) {
                const uint8_t *out;
                ssize_t n = nghttp2_session_mem_send(c->h2, &out);
                if (n < 0)
                        return false;
                if (n == 0)
                        break;
                for (ssize_t off = 0; off < n;) {
                        int k = SSL_write(c->ssl, out + off, (int)(n - off));
                        if (k <= 0) {
                                int e = SSL_get_error(c->ssl, k);
                                if (e != SSL_ERROR_WANT_WRITE)
                                        return false;
                                continue; /* loopback: the client reads in the same loop; small answers */
                        }
                        off += k;
                }
        }
        return nghttp2_session_want_read(c->h2) || nghttp2_session_want_write(c->h2);
}

static void server_conn_io(loop_source *s, int fd, uint32_t revents, void *userdata)
{
        struct server_conn *c = userdata;
        struct server *srv = c->server;
        if (!server_conn_pump(srv, c))
                server_conn_free(srv, c);
        ERR_clear_error();
}

static void server_accept(loop_source *s, int fd, uint32_t revents, void *userdata)
{
        struct server *srv = userdata;
        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd >= 0) {
                struct server_conn *c = calloc(1, sizeof *c);
                assert_non_null(c);
                c->server = srv;
                c->fd = cfd;
                c->ssl = SSL_new(srv->ctx);
                assert_non_null(c->ssl);
                assert_int_equal(SSL_set_fd(c->ssl, cfd), 1);
                SSL_set_accept_state(c->ssl);
                assert_int_equal(nghttp2_session_server_new(&c->h2, srv->cbs, srv), 0);
                assert_int_equal(nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0), 0);
                int one = 1;
                assert_int_equal(fcntl(cfd, F_SETFL, O_NONBLOCK), 0);
                assert_int_equal(setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
                assert_int_equal(loop_add_io(srv->loop, cfd, EPOLLIN, server_conn_io, c, &c->io), 0);
                c->next = srv->conns;
                srv->conns = c;
        }
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
        static const unsigned char h2[] = { 2, 'h', '2' };
        unsigned char *o;
        if (SSL_select_next_proto(&o, outlen, h2, sizeof h2, in, inlen) != OPENSSL_NPN_NEGOTIATED)
                return SSL_TLSEXT_ERR_ALERT_FATAL;
        *out = o;
        return SSL_TLSEXT_ERR_OK;
}

static void *server_run(void *userdata)
{
        struct server *srv = userdata;
        while (!atomic_load(&srv->stop))
                (void)loop_run_once(srv->loop, 2 * NSEC_PER_MSEC);
        return NULL;
}

/* ---- the fixture: a certificate for 127.0.0.1, a kubeconfig trusting it ------------------------------- */

struct fixture {
        char dir[64];
        char kubeconfig[128];
        SSL_CTX *ctx;
        uint16_t port;
        int listen_fd;
};

static void add_ext(X509 *x, int nid, const char *value)
{
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
}

static int setup(void **state)
{
        log_set_max_level(LOG_ERR - 1);
        (void)signal(SIGPIPE, SIG_IGN); /* the server writes to clients that went away */
        struct fixture *fx = calloc(1, sizeof *fx);
        snprintf(fx->dir, sizeof fx->dir, "/tmp/nvdp-test-failkube-XXXXXX");
        if (!mkdtemp(fx->dir))
                return -1;
        /* A self-signed certificate for IP 127.0.0.1, its own CA. */
        EVP_PKEY *key = EVP_EC_gen("P-256");
        X509 *x = X509_new();
        assert_true(key && x);
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
        X509_set_pubkey(x, key);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"nvdp-test", -1, -1, 0);
        X509_set_issuer_name(x, name);
        add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, NID_subject_alt_name, "IP:127.0.0.1");
        assert_true(X509_sign(x, key, EVP_sha256()) > 0);
        fx->ctx = SSL_CTX_new(TLS_server_method());
        assert_non_null(fx->ctx);
        assert_int_equal(SSL_CTX_use_certificate(fx->ctx, x), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(fx->ctx, key), 1);
        SSL_CTX_set_alpn_select_cb(fx->ctx, alpn_select, NULL);

        char ca[128];
        snprintf(ca, sizeof ca, "%s/ca.pem", fx->dir);
        FILE *f = fopen(ca, "we");
        assert_non_null(f);
        assert_int_equal(PEM_write_X509(f, x), 1);
        fclose(f);
        X509_free(x);
        EVP_PKEY_free(key);

        fx->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        assert_int_equal(bind(fx->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(listen(fx->listen_fd, 16), 0);
        assert_int_equal(getsockname(fx->listen_fd, (struct sockaddr *)&sa, &len), 0);
        fx->port = ntohs(sa.sin_port);

        snprintf(fx->kubeconfig, sizeof fx->kubeconfig, "%s/kubeconfig", fx->dir);
        _cleanup_free_ char *text = NULL;
        assert_true(asprintf(&text,
                             "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
                             "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:%u\n"
                             "    certificate-authority: ca.pem\n"
                             "contexts:\n- name: t\n  context: {cluster: c, user: u}\n"
                             "users:\n- name: u\n  user:\n    token: test-token\n",
                             fx->port) > 0);
        assert_int_equal(write_file_atomic(fx->kubeconfig, text, strlen(text), 0600), 1);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        SSL_CTX_free(fx->ctx);
        close(fx->listen_fd);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
        assert_int_equal(system(cmd), 0);
        free(fx);
        return 0;
}

/* ---- the scenario --------------------------------------------------------------------------------------
 */

struct seen {
        unsigned deliveries;
        bool final_labels; /* "a=2" alone, from the watch event */
        bool patch_done;
        int patch_status;
        unsigned errors; /* reported by the watch, which retries */
};

static void on_labels(char *const *labels, void *userdata)
{
        struct seen *s = userdata;
        s->deliveries++;
        s->final_labels = strv_length(labels) == 1 && streq(labels[0], "a=2");
}

static void on_watch_error(const char *error, void *userdata)
{
        struct seen *s = userdata;
        assert_non_null(error);
        s->errors++;
}

static void on_patched(int status, const char *body, size_t size, const char *error, void *userdata)
{
        struct seen *s = userdata;
        s->patch_done = true;
        s->patch_status = status;
        /* an error always comes with its sentence */
        if (status < 200 || status > 299)
                assert_non_null(error);
}

_unused_ static enum outcome scenario(struct fixture *fx)
{
        struct server srv = { .ctx = fx->ctx, .fd = fx->listen_fd };
        struct seen seen = {};
        enum outcome o = OUTCOME_HUNG;
        loop *l = NULL;
        kube_client *client = NULL;
        kube_node_watch *watch = NULL;
        char *error = NULL;

        assert_int_equal(loop_new(&srv.loop), 0);
        assert_int_equal(nghttp2_session_callbacks_new(&srv.cbs), 0);
        nghttp2_session_callbacks_set_on_begin_headers_callback(srv.cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(srv.cbs, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(srv.cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(srv.cbs, on_stream_close);
        assert_int_equal(loop_add_io(srv.loop, srv.fd, EPOLLIN, server_accept, &srv, &srv.io), 0);
        atomic_init(&srv.stop, false);
        assert_int_equal(pthread_create(&srv.thread, NULL, server_run, &srv), 0);

#if FAILMALLOC
        armed = true;
#endif
        static const struct kube_node_watch_handler h = { on_labels, on_watch_error };
        char *set[] = { (char *)"nvidia.com/x=1", NULL };
        int r = loop_new(&l);
        if (r >= 0)
                r = kube_client_new_from_env(l, fx->kubeconfig, &client, &error);
        if (r >= 0)
                r = kube_node_watch_new(client, "gpu-1", &h, &seen, &watch);
        if (r >= 0) {
                kube_node_watch_set_timing(watch, NSEC_PER_MSEC, 1);
                r = kube_patch_node(client, "gpu-1", set, NULL, NULL, 2 * NSEC_PER_SEC, on_patched, &seen);
        }
#if FAILMALLOC
        armed = false;
#endif
        if (r < 0) {
                /* out of memory, or the kubeconfig or CA could not be read (then with a sentence) */
                if (r != -ENOMEM && !error)
                        fail_msg("setup failed with %s and no message (%s %ld)", strerror(-r), what_fails,
                                 which_fails + 1);
                o = OUTCOME_SETUP_FAILED;
                goto done;
        }
        uint64_t end = now_nsec() + 4 * NSEC_PER_SEC;
        /* Until both are answered, or the PATCH failed and the watch keeps failing (OpenSSL may hand out a
         * TLS context that cannot finish a handshake when one of its allocations failed). */
        while (now_nsec() < end && !(seen.patch_done && (seen.final_labels || seen.errors >= 3))) {
#if FAILMALLOC
                armed = true;
#endif
                (void)loop_run_once(l, 10 * NSEC_PER_MSEC);
#if FAILMALLOC
                armed = false;
#endif
        }
        if (seen.patch_done && seen.final_labels)
                o = seen.patch_status == 200 ? OUTCOME_ANSWERED : OUTCOME_ERROR;
        else if (seen.patch_done && seen.errors)
                o = OUTCOME_ERROR; /* the watch was still retrying */
        if (o == OUTCOME_ANSWERED && (srv.patches != 1 || srv.lists < 1))
                o = OUTCOME_WRONG;
done:
#if FAILMALLOC
        armed = true;
#endif
        kube_node_watch_free(watch);
        kube_client_free(client);
        loop_free(l);
        free(error);
#if FAILMALLOC
        armed = false;
#endif
        atomic_store(&srv.stop, true);
        assert_int_equal(pthread_join(srv.thread, NULL), 0);
        while (srv.conns)
                server_conn_free(&srv, srv.conns);
        loop_source_free(srv.io);
        loop_free(srv.loop);
        nghttp2_session_callbacks_del(srv.cbs);
        return o;
}

static void test_failures_in_the_kube_client(void **state)
{
#if FAILMALLOC
        const char *preload = getenv("LD_PRELOAD");
        if (preload && strstr(preload, "vgpreload"))
                skip();
        struct fixture *fx = *state;

        /* OpenSSL and glibc make one-time allocations on first use (the thread's error queue, at the
         * first error): not ours to count. */
        countdown = read_countdown = -1;
        assert_int_equal(scenario(fx), OUTCOME_ANSWERED);
        ERR_raise_data(ERR_LIB_SSL, ERR_R_INTERNAL_ERROR, "%s", "warm-up");
        ERR_clear_error();
        (void)inside_json_c(); /* backtrace() loads libgcc once */
        failmalloc_exempt = inside_json_c;

        n_allocs = live = n_reads = 0;
        enum outcome o = scenario(fx);
        long total = n_allocs, leaked = live, reads = n_reads;
        assert_int_equal(o, OUTCOME_ANSWERED);
        assert_int_equal(leaked, 0);
        assert_true(total > 100);
        assert_true(reads > 5);

        long counts[5] = { 0 }, read_counts[5] = { 0 };
        n_exempt = 0;
        /* FAILKUBE_FIRST=N starts at allocation N (1-based), to look into one with FAILMALLOC_DEBUG=1;
         * FAILKUBE_VERBOSE=1 prints each run's outcome and time. */
        long first = getenv("FAILKUBE_FIRST") ? strtol(getenv("FAILKUBE_FIRST"), NULL, 10) - 1 : 0;
        for (long i = MAX(first, 0L); i < total; i++) {
                n_allocs = live = 0;
                countdown = i;
                what_fails = "allocation";
                which_fails = i;
                uint64_t t0 = now_nsec();
                o = scenario(fx);
                if (live > 0) {
                        /* OpenSSL keeps a few blocks, once, when some of its allocations fail (caches it
                         * fills on first use): a leak of ours leaks again when the same allocation fails
                         * a second time. */
                        n_allocs = live = 0;
                        countdown = i;
                        o = scenario(fx);
                }
                countdown = -1;
                if (getenv("FAILKUBE_VERBOSE"))
                        fprintf(stderr, "alloc %ld: %s live %ld, %.1f ms\n", i + 1, outcome_name(o), live,
                                (double)(now_nsec() - t0) / 1e6);
                /* live < 0: OpenSSL freed, in the client's turn, what it had kept from before (its
                 * thread error queue when SSL_CTX_free fails to allocate); never a block of ours. */
                if (o == OUTCOME_HUNG || o == OUTCOME_WRONG || live > 0)
                        fail_msg("failing allocation %ld of %ld: %s, %ld blocks leaked", i + 1, total,
                                 outcome_name(o), live);
                counts[o]++;
        }
        for (long i = 0; i < reads; i++) {
                n_allocs = live = 0;
                read_countdown = i;
                what_fails = "read";
                which_fails = i;
                o = scenario(fx);
                read_countdown = -1;
                if (o == OUTCOME_HUNG || o == OUTCOME_WRONG || live > 0)
                        fail_msg("failing read %ld of %ld: %s, %ld blocks leaked", i + 1, reads,
                                 outcome_name(o), live);
                read_counts[o]++;
        }
        print_message("failmalloc kube client: %ld allocations; failing each in turn: %ld answered anyway, "
                      "%ld errors, %ld failed at setup; %ld inside json-c passed on to the next\n",
                      total, counts[OUTCOME_ANSWERED], counts[OUTCOME_ERROR], counts[OUTCOME_SETUP_FAILED],
                      n_exempt);
        print_message(
                "failing reads, kube client: %ld reads; failing each in turn: %ld answered anyway, %ld "
                "errors, %ld failed at setup\n",
                reads, read_counts[OUTCOME_ANSWERED], read_counts[OUTCOME_ERROR],
                read_counts[OUTCOME_SETUP_FAILED]);
#else
        skip();
#endif
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_failures_in_the_kube_client),
        };
        return cmocka_run_group_tests_name("failmalloc-kube", tests, setup, teardown);
}
