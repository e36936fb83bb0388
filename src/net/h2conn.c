/* SPDX-License-Identifier: Apache-2.0 */
#include "net/h2conn.h"

#include "base/loop.h"

/* Bytes read per read() call, and read() calls per wakeup (so one busy peer cannot starve the others). */
#define READ_CHUNK     16384
#define READS_PER_WAKE 8

struct h2conn {
        unsigned n_ref;
        loop *loop;
        net_transport *transport;
        loop_source *io;
        nghttp2_session *session;
        h2conn_closed_fn closed_cb;
        void *owner;
        unsigned in_session; /* > 0 while inside nghttp2_session_mem_recv/mem_send */
        bool close_pending, closed;
        uint32_t close_error_code;
        int close_errno;
        /* Output nghttp2 produced that the transport did not take yet. */
        uint8_t *out;
        size_t out_len, out_off;
};

static void on_io(loop_source *s, int fd, uint32_t revents, void *userdata);

int h2conn_new(loop *l, net_transport *t, bool server, const nghttp2_session_callbacks *cbs,
               const nghttp2_option *opt, const nghttp2_settings_entry *settings, size_t n_settings,
               h2conn_closed_fn closed, void *owner, h2conn **ret)
{
        h2conn *c = new0(h2conn, 1);
        if (!c) {
                net_transport_free(t);
                return -ENOMEM;
        }
        c->n_ref = 1;
        c->loop = l;
        c->transport = t;
        c->closed_cb = closed;
        c->owner = owner;
        int rv = server ? nghttp2_session_server_new2(&c->session, cbs, owner, opt)
                        : nghttp2_session_client_new2(&c->session, cbs, owner, opt);
        if (rv != 0) {
                net_transport_free(t);
                free(c);
                return -ENOMEM;
        }
        if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, n_settings) != 0)
                goto fail;
        if (loop_add_io(l, t->fd, EPOLLIN, on_io, c, &c->io) < 0)
                goto fail;
        *ret = c;
        return 0;
fail:
        nghttp2_session_del(c->session);
        net_transport_free(t);
        free(c);
        return -ENOMEM;
}

h2conn *h2conn_ref(h2conn *c)
{
        c->n_ref++;
        return c;
}

h2conn *h2conn_unref(h2conn *c)
{
        if (!c || --c->n_ref > 0)
                return NULL;
        /* The last reference can only go away outside of session calls: every caller of
         * nghttp2_session_mem_* holds a reference. */
        loop_source_free(c->io);
        net_transport_free(c->transport);
        nghttp2_session_del(c->session);
        free(c->out);
        free(c);
        return NULL;
}

nghttp2_session *h2conn_session(h2conn *c)
{
        return c->session;
}

bool h2conn_is_closing(const h2conn *c)
{
        return c->closed || c->close_pending;
}

static void finish_close(h2conn *c)
{
        if (c->closed)
                return;
        c->closed = true;
        c->close_pending = false;
        c->io = loop_source_free(c->io);
        c->transport = net_transport_free(c->transport);
        if (c->closed_cb)
                c->closed_cb(c, c->close_errno, c->owner);
}

/* Writes buffered output; true when all of it went out. */
static bool write_pending(h2conn *c)
{
        while (c->out_off < c->out_len) {
                ssize_t n =
                        c->transport->ops->write(c->transport, c->out + c->out_off, c->out_len - c->out_off);
                if (n == -EAGAIN)
                        return false;
                if (n < 0) {
                        c->close_errno = (int)n;
                        return false;
                }
                c->out_off += (size_t)n;
        }
        c->out = mfree(c->out);
        c->out_len = c->out_off = 0;
        return true;
}

/* Pushes nghttp2 output to the transport: the frames nghttp2 has ready go out in one write (up to 16 KiB
 * at a time), so a unary reply (HEADERS, DATA, trailers) costs one syscall and wakes the peer once.
 * Returns false when the connection must close now. */
static bool do_flush(h2conn *c)
{
        for (;;) {
                if (!write_pending(c)) {
                        if (c->close_errno < 0)
                                return false;
                        (void)loop_source_set_io_events(c->io, EPOLLIN | EPOLLOUT);
                        return true;
                }
                uint8_t stage[16384];
                size_t staged = 0;
                const uint8_t *data = NULL;
                ssize_t n;
                for (;;) {
                        c->in_session++;
                        n = nghttp2_session_mem_send(c->session, &data);
                        c->in_session--;
                        if (n < 0) {
                                c->close_errno = -EPROTO;
                                return false;
                        }
                        if (n == 0 || staged + (size_t)n > sizeof stage)
                                break;
                        memcpy(stage + staged, data, (size_t)n);
                        staged += (size_t)n;
                }
                if (staged == 0 && n == 0)
                        break;
                /* The staged frames, then the one that did not fit (data is valid until the next mem_send).
                 */
                const uint8_t *parts[2] = { stage, data };
                size_t lens[2] = { staged, n > 0 ? (size_t)n : 0 };
                for (int i = 0; i < 2; i++) {
                        if (lens[i] == 0)
                                continue;
                        if (c->out_len > 0) { /* the part before was cut short: queue behind it */
                                uint8_t *o = realloc(c->out, c->out_len + lens[i]);
                                if (!o) {
                                        c->close_errno = -ENOMEM;
                                        return false;
                                }
                                memcpy(o + c->out_len, parts[i], lens[i]);
                                c->out = o;
                                c->out_len += lens[i];
                                continue;
                        }
                        ssize_t k = c->transport->ops->write(c->transport, parts[i], lens[i]);
                        if (k < 0 && k != -EAGAIN) {
                                c->close_errno = (int)k;
                                return false;
                        }
                        size_t off = k < 0 ? 0 : (size_t)k;
                        if (off < lens[i]) {
                                c->out = malloc(lens[i] - off);
                                if (!c->out) {
                                        c->close_errno = -ENOMEM;
                                        return false;
                                }
                                memcpy(c->out, parts[i] + off, lens[i] - off);
                                c->out_len = lens[i] - off;
                                c->out_off = 0;
                        }
                }
                if (n == 0)
                        break;
        }
        (void)loop_source_set_io_events(c->io, c->out_len > 0 ? EPOLLIN | EPOLLOUT : EPOLLIN);
        return true;
}

void h2conn_flush(h2conn *c)
{
        if (c->closed || c->in_session > 0)
                return; /* the caller of the session function flushes afterwards */
        h2conn_ref(c);
        if (c->close_pending || !do_flush(c))
                finish_close(c);
        else if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
                 c->out_len == 0)
                /* Both sides are done (GOAWAY exchanged or a fatal error was sent). */
                finish_close(c);
        h2conn_unref(c);
}

void h2conn_close(h2conn *c, uint32_t error_code)
{
        if (c->closed)
                return;
        if (!c->close_pending) {
                c->close_pending = true;
                c->close_error_code = error_code;
        }
        if (c->in_session > 0)
                return; /* completed by whoever drives the session right now */
        h2conn_ref(c);
        /* Best effort: GOAWAY and whatever else is queued, as far as the socket takes it now. */
        if (nghttp2_session_terminate_session(c->session, c->close_error_code) == 0 && write_pending(c)) {
                for (;;) {
                        const uint8_t *data;
                        c->in_session++;
                        ssize_t n = nghttp2_session_mem_send(c->session, &data);
                        c->in_session--;
                        if (n <= 0 || c->transport->ops->write(c->transport, data, (size_t)n) != n)
                                break;
                }
        }
        finish_close(c);
        h2conn_unref(c);
}

static void read_input(h2conn *c)
{
        uint8_t buf[READ_CHUNK];
        for (unsigned i = 0; i < READS_PER_WAKE && !h2conn_is_closing(c); i++) {
                ssize_t n = c->transport->ops->read(c->transport, buf, sizeof buf);
                if (n == -EAGAIN)
                        return;
                if (n <= 0) {
                        c->close_errno = n == 0 ? -ECONNRESET : (int)n;
                        h2conn_close(c, NGHTTP2_NO_ERROR);
                        return;
                }
                c->in_session++;
                ssize_t rv = nghttp2_session_mem_recv(c->session, buf, (size_t)n);
                c->in_session--;
                if (c->close_pending) {
                        h2conn_close(c, c->close_error_code);
                        return;
                }
                if (rv < 0) {
                        /* Bad preface, bad frame, HPACK error, flood...: nghttp2 has usually queued a GOAWAY
                         * with the right code already; terminate_session does not replace it. */
                        c->close_errno = -EPROTO;
                        h2conn_close(c, rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM
                                                                  : NGHTTP2_PROTOCOL_ERROR);
                        return;
                }
                if ((size_t)n < sizeof buf)
                        return;
        }
}

static void on_io(loop_source *s, int fd, uint32_t revents, void *userdata)
{
        h2conn *c = userdata;
        h2conn_ref(c);
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                read_input(c);
        h2conn_flush(c);
        h2conn_unref(c);
}
