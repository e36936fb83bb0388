/* SPDX-License-Identifier: Apache-2.0 */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <sys/socket.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/parse.h"
#include "kube.h"
#include "net/h2-client.h"
#include "net/transport-tls.h"
#include "token-bucket.h"

/* client-go re-reads a token file at most once a minute (bound service account tokens rotate hourly). */
#define TOKEN_REREAD_NSEC (60 * NSEC_PER_SEC)
#define MAX_TOKEN_SIZE    (64u * 1024)

enum call_state { CALL_RATE_WAIT, CALL_CONN_WAIT, CALL_SENT };

struct kube_call {
        kube_client *client;
        kube_call *prev, *next;
        enum call_state state;
        char *method, *path, *content_type, *body;
        uint64_t timeout_nsec;
        loop_source *timer; /* the deadline, or a zero timer delivering a result decided early */
        kube_response_fn cb;
        kube_line_fn on_line;
        void *userdata;
        h2_request *req;
        int status;       /* HTTP status once the response headers came */
        int early_result; /* a result decided before or without a response (-errno) */
        char *early_error;
        bool lines;        /* streaming a 2xx body line by line */
        unsigned conn_gen; /* the connection attempt a CALL_CONN_WAIT call waits for */
        bool delivering;   /* inside its final callback: freed right after, cancelling does nothing */
        bool in_line;      /* inside on_line: a cancel is recorded and carried out when it returns */
        bool cancelled;
        char *buf;
        size_t len, cap;
};

struct conn {
        struct conn *next;
        h2_client *h2;
};

struct kube_client {
        unsigned n_ref;
        bool dead;
        loop *loop;
        char *server, *host, *verify_host, *authority, *namespace;
        struct sockaddr_storage addr;
        socklen_t addrlen;
        SSL_CTX *ssl;
        char *token, *token_file;
        uint64_t token_read_at;

        struct token_bucket bucket;
        loop_source *rate_timer;

        struct conn *conns; /* every open HTTP/2 connection; the first usable one takes new requests */
        /* connecting: */
        int fd;
        net_transport *tls;
        loop_source *conn_io, *conn_timer; /* conn_timer exists while connecting */
        unsigned conn_gen;
        int conn_error; /* a failure found inside connect_start, reported from conn_timer */

        kube_call *calls, *calls_tail; /* in submission order (the rate limit serves them FIFO) */
};

static kube_client *client_ref(kube_client *c)
{
        c->n_ref++;
        return c;
}

static void connecting_stop(kube_client *c)
{
        c->conn_io = loop_source_free(c->conn_io);
        c->conn_timer = loop_source_free(c->conn_timer);
        c->tls = net_transport_free(c->tls);
        c->fd = safe_close(c->fd);
}

static void conns_free(kube_client *c)
{
        while (c->conns) {
                struct conn *n = c->conns;
                c->conns = n->next;
                h2_client_free(n->h2);
                free(n);
        }
}

static kube_client *client_unref(kube_client *c)
{
        if (!c || --c->n_ref > 0)
                return NULL;
        connecting_stop(c);
        conns_free(c);
        c->rate_timer = loop_source_free(c->rate_timer);
        SSL_CTX_free(c->ssl);
        free(c->server);
        free(c->host);
        free(c->verify_host);
        free(c->authority);
        free(c->namespace);
        if (c->token) {
                explicit_bzero(c->token, strlen(c->token));
                free(c->token);
        }
        free(c->token_file);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(kube_client *, client_unref);

/* ---- calls ------------------------------------------------------------------------------------------ */

static void call_unlink(kube_call *k)
{
        kube_client *c = k->client;
        if (!c)
                return;
        if (k->prev)
                k->prev->next = k->next;
        else
                c->calls = k->next;
        if (k->next)
                k->next->prev = k->prev;
        else
                c->calls_tail = k->prev;
        k->prev = k->next = NULL;
        k->client = NULL;
}

static void call_free(kube_call *k)
{
        call_unlink(k);
        k->timer = loop_source_free(k->timer);
        h2_request_cancel(TAKE_PTR(k->req));
        free(k->method);
        free(k->path);
        free(k->content_type);
        free(k->body);
        free(k->buf);
        free(k->early_error);
        free(k);
}

static const char *http_reason(int status)
{
        switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 409: return "Conflict";
        case 410: return "Gone";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Entity";
        case 429: return "Too Many Requests";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default: return status >= 500 ? "Server Error" : "Error";
        }
}

/* Runs the callback (the call is out of the client's list first: the callback may free the client) and
 * frees the call. */
static void call_deliver(kube_call *k, int status, const char *error)
{
        kube_client *c = k->client;
        _cleanup_free_ char *msg = NULL;
        if (!error && (status < 200 || status > 299)) {
                _cleanup_free_ char *api = status > 0 ? kube_status_message(k->buf, k->len) : NULL;
                if (asprintf(&msg, "%s %s%s: %d %s%s%s", k->method, c ? c->server : "", k->path, status,
                             http_reason(status), api ? ": " : "", strempty(api)) < 0)
                        msg = NULL;
                error = msg ? msg : "request failed";
        }
        k->delivering = true;
        call_unlink(k);
        k->timer = loop_source_free(k->timer);
        h2_request_cancel(TAKE_PTR(k->req));
        kube_response_fn cb = k->cb;
        if (cb)
                cb(status, k->buf ? k->buf : "", k->buf ? k->len : 0, error, k->userdata);
        call_free(k);
}

static _printf_(3, 4) void call_fail(kube_call *k, int error, const char *fmt, ...)
{
        _cleanup_free_ char *what = format_va(fmt), *msg = NULL;
        if (asprintf(&msg, "%s %s%s: %s", k->method, k->client ? k->client->server : "", k->path,
                     what ? what : strerror(-error)) < 0)
                msg = NULL;
        call_deliver(k, error, msg ? msg : strerror(-error));
}

/* A result known where the callback must not run (inside kube_request): delivered from the call's timer. */
static void call_fail_soon(kube_call *k, int error, const char *msg)
{
        if (k->early_result)
                return;
        k->early_result = error;
        k->early_error = msg ? strdup(msg) : NULL;
        loop_timer_arm(k->timer, 0);
}

static void on_call_timer(loop_source *s, void *userdata)
{
        kube_call *k = userdata;
        if (k->early_result) {
                if (k->early_error)
                        call_fail(k, k->early_result, "%s", k->early_error);
                else
                        call_fail(k, k->early_result, NULL);
                return;
        }
        char t[32];
        snprintf(t, sizeof t, "%.1fs", (double)k->timeout_nsec / (double)NSEC_PER_SEC);
        call_fail(k, -ETIMEDOUT, "no response within %s", t);
}

static int buf_append(kube_call *k, const uint8_t *data, size_t len)
{
        if (k->len + len > KUBE_MAX_RESPONSE)
                return -EMSGSIZE;
        if (k->len + len + 1 > k->cap) {
                size_t cap = MAX(k->cap * 2, k->len + len + 1);
                cap = MAX(cap, (size_t)4096);
                char *p = realloc(k->buf, cap);
                if (!p)
                        return -ENOMEM;
                k->buf = p;
                k->cap = cap;
        }
        memcpy(k->buf + k->len, data, len);
        k->len += len;
        k->buf[k->len] = '\0';
        return 0;
}

static int on_response(h2_request *r, int status, void *userdata)
{
        kube_call *k = userdata;
        k->status = status;
        k->lines = k->on_line && status >= 200 && status <= 299;
        return 0;
}

int kube_lines_split(char *buf, size_t *len, kube_split_fn on_line, void *userdata)
{
        size_t start = 0;
        int r = 0;
        for (;;) {
                char *nl = memchr(buf + start, '\n', *len - start);
                if (!nl)
                        break;
                *nl = '\0';
                size_t n = (size_t)(nl - (buf + start));
                if (n > 0 && (r = on_line(buf + start, n, userdata)) < 0)
                        break;
                start += n + 1;
        }
        if (r < 0)
                return r;
        memmove(buf, buf + start, *len - start);
        *len -= start;
        buf[*len] = '\0';
        return 0;
}

static int call_line(char *line, size_t size, void *userdata)
{
        kube_call *k = userdata;
        k->in_line = true;
        int r = k->on_line(line, size, k->userdata);
        k->in_line = false;
        return k->cancelled ? -ECANCELED : r;
}

/* Hands every complete line to on_line, keeps the rest. */
static int feed_lines(kube_call *k)
{
        return k->buf ? kube_lines_split(k->buf, &k->len, call_line, k) : 0;
}

static int on_data(h2_request *r, const uint8_t *data, size_t len, void *userdata)
{
        kube_call *k = userdata;
        int e = buf_append(k, data, len);
        if (e == 0 && k->lines)
                e = feed_lines(k);
        if (e < 0) {
                k->early_result = e;
                return e;
        }
        return 0;
}

static void on_request_close(h2_request *r, int error, void *userdata)
{
        kube_call *k = userdata;
        k->req = NULL; /* freed by h2-client after this returns */
        if (k->cancelled)
                return call_free(k); /* cancelled from inside on_line */
        if (k->early_result == -EMSGSIZE)
                return call_fail(k, -EMSGSIZE, "response larger than %u bytes", KUBE_MAX_RESPONSE);
        if (k->early_result < 0 && error == -ECANCELED)
                return call_fail(k, k->early_result, "%s", k->lines ? "stopped by the reader" : "failed");
        if (error == -EPROTO)
                return call_fail(k, -EPROTO, "malformed response (header list too large?)");
        if (error < 0)
                return call_fail(k, error == -ECANCELED ? -ECONNRESET : error,
                                 "the stream was reset or the connection lost before the response ended");
        if (k->lines && k->len > 0) {
                /* A last line without its newline. */
                k->in_line = true;
                int e = k->on_line(k->buf, k->len, k->userdata);
                k->in_line = false;
                k->len = 0;
                if (k->cancelled)
                        return call_free(k);
                if (e < 0)
                        return call_fail(k, e, "stopped by the reader");
        }
        call_deliver(k, k->status, NULL);
}

static const struct h2_request_handler request_handler = {
        .on_response = on_response,
        .on_data = on_data,
        .on_close = on_request_close,
};

/* ---- authentication --------------------------------------------------------------------------------- */

static int token_refresh(kube_client *c, bool force)
{
        if (!c->token_file)
                return 0;
        uint64_t now = now_nsec();
        if (!force && c->token && now - c->token_read_at < TOKEN_REREAD_NSEC)
                return 0;
        _cleanup_free_ char *t = NULL;
        int r = read_full_file(c->token_file, MAX_TOKEN_SIZE, &t, NULL);
        if (r < 0)
                return c->token ? 0 : r; /* keep the last good one */
        t[strcspn(t, "\r\n")] = '\0';
        if (c->token) {
                explicit_bzero(c->token, strlen(c->token));
                free(c->token);
        }
        c->token = TAKE_PTR(t);
        c->token_read_at = now;
        return 0;
}

/* ---- sending ---------------------------------------------------------------------------------------- */

static h2_client *usable_connection(kube_client *c)
{
        for (struct conn *n = c->conns; n; n = n->next)
                if (h2_client_usable(n->h2))
                        return n->h2;
        return NULL;
}

static void call_submit(kube_call *k, h2_client *h2)
{
        kube_client *c = k->client;
        (void)token_refresh(c, false);
        _cleanup_free_ char *auth = NULL;
        if (c->token && asprintf(&auth, "Bearer %s", c->token) < 0)
                return call_fail_soon(k, -ENOMEM, NULL);
        nghttp2_nv nv[4];
        size_t n = 0;
#define NV(k, v, f) (nghttp2_nv){ (uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), (f) }
        nv[n++] = NV("accept", "application/json", NGHTTP2_NV_FLAG_NONE);
        nv[n++] = NV("user-agent", "nvdp/" NVDP_VERSION, NGHTTP2_NV_FLAG_NONE);
        if (k->content_type)
                nv[n++] = NV("content-type", k->content_type, NGHTTP2_NV_FLAG_NONE);
        if (auth) /* never in the HPACK dynamic table */
                nv[n++] = NV("authorization", auth, NGHTTP2_NV_FLAG_NO_INDEX);
#undef NV
        int r = h2_client_request(h2, k->method, k->path, nv, n, k->body, k->body ? strlen(k->body) : 0,
                                  &request_handler, k, &k->req);
        if (auth)
                explicit_bzero(auth, strlen(auth));
        if (r < 0)
                return call_fail_soon(k, r, NULL);
        k->state = CALL_SENT;
}

static void conn_closed(h2_client *h2, int error, void *userdata)
{
        kube_client *c = userdata;
        for (struct conn **p = &c->conns; *p; p = &(*p)->next)
                if ((*p)->h2 == h2) {
                        struct conn *n = *p;
                        *p = n->next;
                        free(n);
                        break;
                }
        h2_client_free(h2);
}

static void connect_start(kube_client *c);

/* Every call waiting for this connection attempt fails with error. */
static void connect_failed(kube_client *c, int error, const char *why)
{
        connecting_stop(c);
        /* held until the end: a callback may drop the last other reference */
        _cleanup_(client_unrefp) _unused_ kube_client *ref = client_ref(c);
        _cleanup_free_ char *msg = NULL;
        if (asprintf(&msg, "connecting: %s", why ? why : strerror(-error)) < 0)
                msg = NULL;
        unsigned gen = c->conn_gen;
        /* A callback may cancel other calls or start new ones (a new attempt, another generation): rescan
         * from the head after each. */
        for (kube_call *k = c->calls; k && !c->dead;) {
                if (k->state == CALL_CONN_WAIT && k->conn_gen == gen) {
                        call_fail(k, error, "%s", msg ? msg : "connecting failed");
                        k = c->calls;
                } else
                        k = k->next;
        }
}

static void connected(kube_client *c)
{
        c->conn_io = loop_source_free(c->conn_io);
        c->conn_timer = loop_source_free(c->conn_timer);
        struct conn *n = new0(struct conn, 1);
        if (!n)
                return connect_failed(c, -ENOMEM, NULL);
        c->fd = -EBADF; /* owned by the transport */
        int r = h2_client_new(c->loop, TAKE_PTR(c->tls), "https", c->authority, KUBE_MAX_HEADER_LIST,
                              conn_closed, c, &n->h2);
        if (r < 0) {
                free(n);
                return connect_failed(c, r, NULL);
        }
        n->next = c->conns;
        c->conns = n;
        for (kube_call *k = c->calls; k; k = k->next)
                if (k->state == CALL_CONN_WAIT)
                        call_submit(k, n->h2);
}

static void handshake(kube_client *c)
{
        uint32_t events = 0;
        _cleanup_free_ char *err = NULL;
        int r = net_transport_tls_handshake(c->tls, &events, &err);
        if (r == -EAGAIN) {
                (void)loop_source_set_io_events(c->conn_io, events);
                return;
        }
        if (r < 0)
                return connect_failed(c, r, err);
        connected(c);
}

static void on_conn_io(loop_source *s, int fd, uint32_t revents, void *userdata)
{
        kube_client *c = userdata;
        if (c->tls)
                return handshake(c);
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        if (err != 0)
                return connect_failed(c, -err, NULL);
        int r = net_transport_tls_new(c->fd, c->ssl, c->verify_host, &c->tls);
        c->fd = -EBADF; /* taken by net_transport_tls_new, also on failure */
        if (r < 0)
                return connect_failed(c, r, NULL);
        handshake(c);
}

static void on_conn_timeout(loop_source *s, void *userdata)
{
        kube_client *c = userdata;
        if (c->conn_error < 0)
                connect_failed(c, c->conn_error, NULL);
        else
                connect_failed(c, -ETIMEDOUT, "no TLS connection within 10 s");
}

/* Never runs callbacks: a failure here is reported from conn_timer. */
static void connect_start(kube_client *c)
{
        if (c->conn_timer)
                return; /* already connecting */
        c->conn_gen++;
        c->conn_error = 0;
        if (loop_add_timer(c->loop, KUBE_CONNECT_TIMEOUT, on_conn_timeout, c, &c->conn_timer) < 0)
                return; /* out of memory: the calls' own deadlines end them */
        (void)token_refresh(c, true);
        c->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                goto fail;
        int one = 1, idle = 30, intvl = 10, cnt = 3;
        /* A dead server must not keep a watch waiting forever: TCP keepalive notices within ~60 s. */
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        (void)setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
        if (connect(c->fd, (struct sockaddr *)&c->addr, c->addrlen) < 0 && errno != EINPROGRESS)
                goto fail;
        if (loop_add_io(c->loop, c->fd, EPOLLOUT, on_conn_io, c, &c->conn_io) < 0) {
                errno = ENOMEM;
                goto fail;
        }
        return;
fail:
        c->conn_error = negative_errno();
        loop_timer_arm(c->conn_timer, 0);
}

/* The rate limit let the call through: send it now, or once connected. */
static void call_dispatch(kube_call *k)
{
        h2_client *h2 = usable_connection(k->client);
        if (h2)
                return call_submit(k, h2);
        k->state = CALL_CONN_WAIT;
        connect_start(k->client);
        k->conn_gen = k->client->conn_gen;
}

static void on_rate_timer(loop_source *s, void *userdata)
{
        kube_client *c = userdata;
        for (kube_call *k = c->calls; k; k = k->next) {
                if (k->state != CALL_RATE_WAIT)
                        continue;
                uint64_t wait = token_bucket_take(&c->bucket, now_nsec());
                if (wait > 0) {
                        loop_timer_arm(c->rate_timer, wait);
                        return;
                }
                call_dispatch(k); /* never runs callbacks: failures are delivered from timers */
        }
}

static int call_new(kube_client *c, const char *method, const char *path, const char *content_type,
                    const char *body, uint64_t timeout_nsec, kube_response_fn cb, kube_line_fn on_line,
                    void *userdata, kube_call **ret)
{
        if (!c || c->dead || isempty(method) || !path || path[0] != '/' || !cb)
                return -EINVAL;
        if (body && strlen(body) > KUBE_MAX_RESPONSE)
                return -EMSGSIZE;
        kube_call *k = new0(kube_call, 1);
        if (!k)
                return -ENOMEM;
        k->cb = cb;
        k->on_line = on_line;
        k->userdata = userdata;
        k->timeout_nsec = timeout_nsec;
        k->method = strdup(method);
        k->path = strdup(path);
        k->content_type = content_type ? strdup(content_type) : NULL;
        k->body = body ? strdup(body) : NULL;
        if (!k->method || !k->path || (content_type && !k->content_type) || (body && !k->body) ||
            loop_add_timer(c->loop, timeout_nsec ? timeout_nsec : UINT64_MAX, on_call_timer, k, &k->timer) <
                    0) {
                call_free(k);
                return -ENOMEM;
        }
        if (!timeout_nsec)
                loop_timer_disarm(k->timer);
        k->client = c;
        k->prev = c->calls_tail;
        if (c->calls_tail)
                c->calls_tail->next = k;
        else
                c->calls = k;
        c->calls_tail = k;

        k->state = CALL_RATE_WAIT;
        if (!loop_timer_armed(c->rate_timer)) {
                uint64_t wait = token_bucket_take(&c->bucket, now_nsec());
                if (wait == 0)
                        call_dispatch(k);
                else
                        loop_timer_arm(c->rate_timer, wait);
        }
        if (ret)
                *ret = k;
        return 0;
}

int kube_request(kube_client *c, const char *method, const char *path, const char *content_type,
                 const char *body, uint64_t timeout_nsec, kube_response_fn cb, void *userdata,
                 kube_call **ret)
{
        return call_new(c, method, path, content_type, body, timeout_nsec, cb, NULL, userdata, ret);
}

int kube_request_stream(kube_client *c, const char *path, kube_line_fn on_line, kube_response_fn done,
                        void *userdata, kube_call **ret)
{
        if (!on_line)
                return -EINVAL;
        return call_new(c, "GET", path, NULL, NULL, 0, done, on_line, userdata, ret);
}

void kube_call_cancel(kube_call *k)
{
        if (!k || k->delivering)
                return;
        if (k->in_line) {
                k->cancelled = true;
                k->cb = NULL;
                return;
        }
        call_free(k);
}

/* ---- the client ------------------------------------------------------------------------------------- */

static void biop(BIO **b)
{
        BIO_free(*b);
}

static int load_ca(SSL_CTX *ctx, const char *pem)
{
        _cleanup_(biop) BIO *b = BIO_new_mem_buf(pem, -1);
        if (!b)
                return -ENOMEM;
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        unsigned n = 0;
        for (;;) {
                X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
                if (!x)
                        break;
                int ok = X509_STORE_add_cert(store, x);
                X509_free(x);
                if (!ok)
                        return -EINVAL;
                n++;
        }
        ERR_clear_error();
        return n > 0 ? 0 : -EINVAL;
}

static int load_client_cert(SSL_CTX *ctx, const char *cert_pem, const char *key_pem)
{
        _cleanup_(biop) BIO *b = BIO_new_mem_buf(cert_pem, -1);
        _cleanup_(biop) BIO *kb = BIO_new_mem_buf(key_pem, -1);
        if (!b || !kb)
                return -ENOMEM;
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
                return -EINVAL;
        int ok = SSL_CTX_use_certificate(ctx, x);
        X509_free(x);
        if (!ok)
                return -EINVAL;
        while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
                if (!SSL_CTX_add0_chain_cert(ctx, x)) {
                        X509_free(x);
                        return -EINVAL;
                }
        EVP_PKEY *k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        if (!k)
                return -EINVAL;
        ok = SSL_CTX_use_PrivateKey(ctx, k) && SSL_CTX_check_private_key(ctx);
        EVP_PKEY_free(k);
        ERR_clear_error();
        return ok ? 0 : -EINVAL;
}

/* TLS 1.2 or later, no renegotiation, the configuration's CA and client certificate. */
static int tls_context_new(const struct kube_config *cfg, SSL_CTX **ret, char **ret_error)
{
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
                SSL_CTX_free(ctx);
                return -ENOMEM;
        }
        *ret = ctx; /* freed with the client, also on failure */
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
        if (!cfg->ca_pem || load_ca(ctx, cfg->ca_pem) < 0)
                return error_set(ret_error, -EINVAL,
                                 "%s: the certificate authority holds no usable PEM certificate",
                                 cfg->source);
        if (cfg->client_cert_pem && load_client_cert(ctx, cfg->client_cert_pem, cfg->client_key_pem) < 0)
                return error_set(ret_error, -EINVAL,
                                 "%s: the client certificate and key cannot be loaded or do not match",
                                 cfg->source);
        return 0;
}

int kube_client_new(loop *l, const struct kube_config *cfg, const struct kube_client_options *o,
                    kube_client **ret, char **ret_error)
{
        _cleanup_(client_unrefp) kube_client *c = new0(kube_client, 1);
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->loop = l;
        c->fd = -EBADF;
        c->server = strdup(cfg->server);
        c->host = strdup(cfg->host);
        c->verify_host = strdup(cfg->tls_server_name ? cfg->tls_server_name : cfg->host);
        c->namespace = strdup(cfg->namespace ? cfg->namespace : "default");
        c->token = cfg->token ? strdup(cfg->token) : NULL;
        c->token_file = cfg->token_file ? strdup(cfg->token_file) : NULL;
        bool v6 = strchr(cfg->host, ':') != NULL;
        if (asprintf(&c->authority, "%s%s%s:%u", v6 ? "[" : "", cfg->host, v6 ? "]" : "", cfg->port) < 0)
                c->authority = NULL;
        if (!c->server || !c->host || !c->verify_host || !c->namespace || !c->authority ||
            (cfg->token && !c->token) || (cfg->token_file && !c->token_file))
                return -ENOMEM;

        int r = tls_context_new(cfg, &c->ssl, ret_error);
        if (r < 0) {
                /* What OpenSSL queued about it is ours to drop, not the next caller's to find. */
                ERR_clear_error();
                return r;
        }
        if (c->token_file) {
                r = token_refresh(c, true);
                if (r < 0)
                        return error_set(ret_error, r, "%s: failed to read the token file %s: %s",
                                         cfg->source, c->token_file, strerror(-r));
        }

        /* Resolved once, here: an IP literal (in-cluster always) costs nothing; a name may block briefly,
         * which is acceptable at startup but not later in the loop. */
        char port[8];
        snprintf(port, sizeof port, "%u", cfg->port);
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG };
        struct addrinfo *ai = NULL;
        int e = getaddrinfo(cfg->host, port, &hints, &ai);
        if (e != 0 || !ai)
                return error_set(ret_error, -EHOSTUNREACH, "%s: cannot resolve the API server %s: %s",
                                 cfg->source, cfg->host, gai_strerror(e));
        memcpy(&c->addr, ai->ai_addr, ai->ai_addrlen);
        c->addrlen = ai->ai_addrlen;
        freeaddrinfo(ai);

        token_bucket_init(&c->bucket, o && o->qps ? o->qps : KUBE_DEFAULT_QPS,
                          o && o->burst ? o->burst : KUBE_DEFAULT_BURST, now_nsec());
        if (loop_add_timer(l, UINT64_MAX, on_rate_timer, c, &c->rate_timer) < 0)
                return -ENOMEM;
        loop_timer_disarm(c->rate_timer);
        *ret = TAKE_PTR(c);
        return 0;
}

int kube_client_new_from_env_with(loop *l, const char *kubeconfig, const struct kube_client_options *o,
                                  kube_client **ret, char **ret_error)
{
        _cleanup_(kube_config_freep) struct kube_config *cfg = NULL;
        int r;
        if (!kubeconfig && !isempty(getenv("KUBERNETES_SERVICE_HOST")))
                r = kube_config_in_cluster(o ? o->service_account_dir : NULL, &cfg, ret_error);
        else {
                if (!kubeconfig)
                        kubeconfig = getenv("KUBECONFIG");
                if (isempty(kubeconfig))
                        return error_set(
                                ret_error, -ENOENT,
                                "No Kubernetes API configuration: not in a pod (KUBERNETES_SERVICE_HOST "
                                "unset) and no kubeconfig given (--kubeconfig or KUBECONFIG)");
                r = kube_config_from_file(kubeconfig, &cfg, ret_error);
        }
        if (r < 0)
                return r;
        return kube_client_new(l, cfg, o, ret, ret_error);
}

int kube_client_new_from_env(loop *l, const char *kubeconfig, kube_client **ret, char **ret_error)
{
        return kube_client_new_from_env_with(l, kubeconfig, NULL, ret, ret_error);
}

kube_client *kube_client_free(kube_client *c)
{
        if (!c || c->dead)
                return NULL;
        c->dead = true;
        while (c->calls)
                call_free(c->calls);
        connecting_stop(c);
        conns_free(c);
        client_unref(c);
        return NULL;
}

loop *kube_client_loop(const kube_client *c)
{
        return c->loop;
}
