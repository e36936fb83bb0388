/* SPDX-License-Identifier: Apache-2.0 */
/* Included by the rpc unit tests (the Makefile builds one .c per test binary). */
#include "rpc-peer.h"

struct peer_stream *peer_stream(struct peer *p, int32_t id)
{
        for (size_t i = 0; i < p->n_streams; i++)
                if (p->streams[i].id == id)
                        return &p->streams[i];
        if (p->n_streams == PEER_MAX_STREAMS)
                return NULL;
        struct peer_stream *st = &p->streams[p->n_streams++];
        memset(st, 0, sizeof *st);
        st->id = id;
        return st;
}

static int p_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
        struct peer_stream *st = peer_stream(ud, f->hd.stream_id);
        if (st)
                st->n_headers_frames++;
        return 0;
}

static int p_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                    const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
        struct peer_stream *st = peer_stream(ud, f->hd.stream_id);
        if (!st)
                return 0;
        char *block = st->n_headers_frames <= 1 ? st->headers : st->trailers;
        size_t len = strlen(block);
        snprintf(block + len, sizeof st->headers - len, "%.*s: %.*s\n", (int)namelen, name, (int)valuelen,
                 value);
        return 0;
}

static int p_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
        struct peer_stream *st = peer_stream(ud, id);
        if (!st)
                return 0;
        st->data = realloc(st->data, st->data_len + len + 1);
        memcpy(st->data + st->data_len, data, len);
        st->data_len += len;
        return 0;
}

static int p_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
        struct peer *p = ud;
        if (p->first_frame_type < 0)
                p->first_frame_type = f->hd.type;
        p->max_frame = MAX(p->max_frame, f->hd.length);
        if (f->hd.type == NGHTTP2_DATA) {
                p->n_data_frames++;
                p->max_data_frame = MAX(p->max_data_frame, f->hd.length);
        } else if (f->hd.type == NGHTTP2_GOAWAY) {
                p->goaway = true;
                p->goaway_code = f->goaway.error_code;
        } else if (f->hd.type == NGHTTP2_RST_STREAM) {
                struct peer_stream *st = peer_stream(p, f->hd.stream_id);
                if (st) {
                        st->rst_received = true;
                        st->rst_code = f->rst_stream.error_code;
                }
        } else if (f->hd.type == NGHTTP2_HEADERS) {
                struct peer_stream *st = peer_stream(p, f->hd.stream_id);
                if (st && st->n_headers_frames == 1 && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
                        st->headers_end_stream = true;
                if (st && p->on_request && f->headers.cat == NGHTTP2_HCAT_REQUEST &&
                    (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
                        p->on_request(p, st);
        }
        if (f->hd.type == NGHTTP2_DATA && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && p->on_request) {
                struct peer_stream *st = peer_stream(p, f->hd.stream_id);
                if (st)
                        p->on_request(p, st);
        }
        return 0;
}

static int p_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
        struct peer_stream *st = peer_stream(ud, id);
        if (st) {
                st->closed = true;
                st->close_error = error_code;
        }
        return 0;
}

int peer_init(struct peer *p, int fd, bool server, const nghttp2_settings_entry *settings, size_t n_settings,
              bool auto_window_update)
{
        memset(p, 0, sizeof *p);
        p->fd = fd;
        p->first_frame_type = -1;
        nghttp2_session_callbacks *cbs;
        nghttp2_option *opt;
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_option_new(&opt);
        nghttp2_option_set_no_auto_window_update(opt, !auto_window_update);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, p_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, p_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, p_data);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, p_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, p_stream_close);
        int r = server ? nghttp2_session_server_new2(&p->session, cbs, p, opt)
                       : nghttp2_session_client_new2(&p->session, cbs, p, opt);
        nghttp2_session_callbacks_del(cbs);
        nghttp2_option_del(opt);
        if (r != 0)
                return -ENOMEM;
        return nghttp2_submit_settings(p->session, NGHTTP2_FLAG_NONE, settings, n_settings) == 0 ? 0 : -EIO;
}

void peer_done(struct peer *p)
{
        nghttp2_session_del(p->session);
        for (size_t i = 0; i < p->n_streams; i++)
                free(p->streams[i].data);
        free(p->out);
        if (p->fd >= 0)
                close(p->fd);
        p->fd = -1;
}

static ssize_t p_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                           nghttp2_data_source *src, void *ud)
{
        struct peer_stream *st = src->ptr;
        size_t k = MIN(MIN(length, st->chunk), st->body_len - st->body_off);
        memcpy(buf, st->body + st->body_off, k);
        st->body_off += k;
        if (st->body_off == st->body_len) {
                *flags |= NGHTTP2_DATA_FLAG_EOF;
                if (!st->body_end_stream)
                        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
        return (ssize_t)k;
}

#define NV(k, v)                                                                                            \
        {                                                                                                   \
                (uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE                  \
        }

int32_t peer_request(struct peer *p, const char *path, const char *content_type, const char *method,
                     const uint8_t *body, size_t body_len, size_t chunk, bool end_stream,
                     const nghttp2_nv *extra, size_t n_extra)
{
        nghttp2_nv nv[16] = { NV(":method", method),
                              NV(":scheme", "http"),
                              NV(":path", path),
                              NV(":authority", "localhost"),
                              NV("content-type", content_type),
                              NV("te", "trailers") };
        size_t n = 6;
        for (size_t i = 0; i < n_extra; i++)
                nv[n++] = extra[i];
        struct peer_stream *st = &p->streams[p->n_streams]; /* becomes the stream's record below */
        memset(st, 0, sizeof *st);
        st->body = body;
        st->body_len = body_len;
        st->chunk = chunk ? chunk : 16384;
        st->body_end_stream = end_stream;
        nghttp2_data_provider prd = { .source.ptr = st, .read_callback = p_read_body };
        int32_t id = nghttp2_submit_request(p->session, NULL, nv, n, body ? &prd : NULL, NULL);
        if (id > 0) {
                st->id = id;
                p->n_streams++;
        }
        return id;
}

void peer_io(struct peer *p)
{
        if (p->fd < 0)
                return;
        for (;;) {
                if (p->out_len > 0) {
                        ssize_t k = send(p->fd, p->out, p->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (k <= 0)
                                break;
                        memmove(p->out, p->out + k, p->out_len - (size_t)k);
                        p->out_len -= (size_t)k;
                        continue;
                }
                const uint8_t *data;
                ssize_t n = nghttp2_session_mem_send(p->session, &data);
                if (n <= 0)
                        break;
                p->out = realloc(p->out, (size_t)n);
                memcpy(p->out, data, (size_t)n);
                p->out_len = (size_t)n;
        }
        for (;;) {
                uint8_t buf[65536];
                ssize_t k = recv(p->fd, buf, sizeof buf, MSG_DONTWAIT);
                if (k == 0 || (k < 0 && errno != EAGAIN)) {
                        p->eof = true;
                        break;
                }
                if (k < 0)
                        break;
                if (nghttp2_session_mem_recv(p->session, buf, (size_t)k) < 0)
                        break;
        }
}

uint8_t *grpc_frame(const void *msg, size_t size, size_t *ret_len)
{
        uint8_t *b = malloc(size + 5);
        b[0] = 0;
        b[1] = (uint8_t)(size >> 24);
        b[2] = (uint8_t)(size >> 16);
        b[3] = (uint8_t)(size >> 8);
        b[4] = (uint8_t)size;
        memcpy(b + 5, msg, size);
        *ret_len = size + 5;
        return b;
}

bool has_line(const char *block, const char *line)
{
        size_t n = strlen(line);
        for (const char *s = block; (s = strstr(s, line)); s++)
                if ((s == block || s[-1] == '\n') && s[n] == '\n')
                        return true;
        return false;
}
