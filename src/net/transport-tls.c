/* SPDX-License-Identifier: Apache-2.0 */
#include "net/transport-tls.h"

#include "base/error.h"
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>

struct tls_transport {
        net_transport base; /* first: the net_transport pointer is this struct's */
        SSL *ssl;
        bool handshake_done;
};

/* read/write results of OpenSSL as the transport contract wants them. */
static ssize_t tls_result(struct tls_transport *t, int n)
{
        switch (SSL_get_error(t->ssl, n)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE: return -EAGAIN;
        case SSL_ERROR_ZERO_RETURN: return 0; /* close_notify: a clean end of stream */
        case SSL_ERROR_SYSCALL: return errno > 0 ? -errno : -ECONNRESET;
        default: return -EPROTO; /* a bad record, an unexpected EOF, ... */
        }
}

static ssize_t tls_read(net_transport *b, void *buf, size_t n)
{
        struct tls_transport *t = (struct tls_transport *)b;
        if (n > INT32_MAX)
                n = INT32_MAX;
        ERR_clear_error();
        errno = 0;
        int k = SSL_read(t->ssl, buf, (int)n);
        return k > 0 ? k : tls_result(t, k);
}

static ssize_t tls_write(net_transport *b, const void *buf, size_t n)
{
        struct tls_transport *t = (struct tls_transport *)b;
        if (n == 0)
                return 0;
        if (n > INT32_MAX)
                n = INT32_MAX;
        ERR_clear_error();
        errno = 0;
        int k = SSL_write(t->ssl, buf, (int)n);
        return k > 0 ? k : tls_result(t, k);
}

static void tls_free(net_transport *b)
{
        struct tls_transport *t = (struct tls_transport *)b;
        if (t->ssl) {
                /* close_notify if the socket takes it now; we never wait for the peer's. */
                if (t->handshake_done) {
                        ERR_clear_error();
                        (void)SSL_shutdown(t->ssl);
                }
                SSL_free(t->ssl);
        }
        safe_close(b->fd);
        ERR_clear_error();
        free(t);
}

static const struct net_transport_ops tls_ops = {
        .read = tls_read,
        .write = tls_write,
        .free = tls_free,
};

/* OpenSSL's socket BIO writes with write(): a peer that went away would raise SIGPIPE and kill the process.
 * This BIO uses send(MSG_NOSIGNAL), as the plain transport does, and recv(). */
static int bio_sock_write(BIO *b, const char *buf, int n)
{
        int fd = (int)(intptr_t)BIO_get_data(b);
        BIO_clear_retry_flags(b);
        ssize_t k;
        do
                k = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
        while (k < 0 && errno == EINTR);
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                BIO_set_retry_write(b);
        return (int)k;
}

static int bio_sock_read(BIO *b, char *buf, int n)
{
        int fd = (int)(intptr_t)BIO_get_data(b);
        BIO_clear_retry_flags(b);
        ssize_t k;
        do
                k = recv(fd, buf, (size_t)n, 0);
        while (k < 0 && errno == EINTR);
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                BIO_set_retry_read(b);
        return (int)k;
}

static long bio_sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
        return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *bio_method;
static void bio_method_init(void)
{
        BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "nvdp socket");
        if (m && BIO_meth_set_write(m, bio_sock_write) && BIO_meth_set_read(m, bio_sock_read) &&
            BIO_meth_set_ctrl(m, bio_sock_ctrl))
                bio_method = m;
        else
                BIO_meth_free(m);
}

static BIO *bio_new_socket(int fd)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        (void)pthread_once(&once, bio_method_init);
        if (!bio_method)
                return NULL;
        BIO *b = BIO_new(bio_method);
        if (!b)
                return NULL;
        BIO_set_data(b, (void *)(intptr_t)fd);
        BIO_set_init(b, 1);
        return b;
}

static bool is_ip_literal(const char *host)
{
        unsigned char buf[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int net_transport_tls_new(int fd, SSL_CTX *ctx, const char *host, net_transport **ret)
{
        struct tls_transport *t = new0(struct tls_transport, 1);
        if (!t) {
                safe_close(fd);
                return -ENOMEM;
        }
        t->base.ops = &tls_ops;
        t->base.fd = fd;
        t->ssl = SSL_new(ctx);
        BIO *bio = t->ssl ? bio_new_socket(fd) : NULL;
        if (!bio) {
                tls_free(&t->base);
                return -ENOMEM;
        }
        SSL_set_bio(t->ssl, bio, bio); /* the SSL owns the BIO; the transport owns the fd */
        /* h2conn retries a write that would block from its own copy of the bytes (another address), and
         * takes partial writes. */
        SSL_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
        int ok;
        if (is_ip_literal(host))
                ok = X509_VERIFY_PARAM_set1_ip_asc(param, host);
        else {
                X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                ok = X509_VERIFY_PARAM_set1_host(param, host, 0) && SSL_set_tlsext_host_name(t->ssl, host);
        }
        static const unsigned char alpn[] = { 2, 'h', '2' };
        if (!ok || SSL_set_alpn_protos(t->ssl, alpn, sizeof alpn) != 0) {
                tls_free(&t->base);
                return -EINVAL;
        }
        SSL_set_connect_state(t->ssl);
        *ret = &t->base;
        return 0;
}

static char *openssl_error(const char *what)
{
        unsigned long e = ERR_peek_last_error();
        char buf[256] = "";
        if (e != 0)
                ERR_error_string_n(e, buf, sizeof buf);
        char *s = NULL;
        if (asprintf(&s, "%s%s%s", what, e ? ": " : "", buf) < 0)
                return NULL;
        return s;
}

int net_transport_tls_handshake(net_transport *b, uint32_t *ret_events, char **ret_error)
{
        struct tls_transport *t = (struct tls_transport *)b;
        if (t->handshake_done)
                return 0;
        ERR_clear_error();
        errno = 0;
        int k = SSL_do_handshake(t->ssl);
        if (k == 1) {
                const unsigned char *proto = NULL;
                unsigned len = 0;
                SSL_get0_alpn_selected(t->ssl, &proto, &len);
                if (len != 2 || memcmp(proto, "h2", 2) != 0)
                        return error_set(ret_error, -EPROTONOSUPPORT,
                                         "the server did not agree to HTTP/2 (ALPN \"h2\")");
                t->handshake_done = true;
                return 0;
        }
        int e = SSL_get_error(t->ssl, k);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                *ret_events = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
                return -EAGAIN;
        }
        long v = SSL_get_verify_result(t->ssl);
        if (v != X509_V_OK)
                return error_set(ret_error, -EKEYREJECTED, "TLS certificate verification failed: %s",
                                 X509_verify_cert_error_string(v));
        int r;
        if (e == SSL_ERROR_SYSCALL && errno > 0)
                r = error_set(ret_error, -errno, "TLS handshake failed: %s", strerror(errno));
        else if (e == SSL_ERROR_SYSCALL || ERR_peek_last_error() == 0)
                r = error_set(ret_error, -ECONNRESET, "the connection closed during the TLS handshake");
        else {
                _cleanup_free_ char *msg = openssl_error("TLS handshake failed");
                r = error_set(ret_error, -EPROTO, "%s", strna(msg));
        }
        ERR_clear_error();
        return r;
}
