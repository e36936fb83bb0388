/* SPDX-License-Identifier: Apache-2.0 */
#include "net/h2-client.h"

#include "net/h2conn.h"

struct h2_request {
        h2_client *client;
        h2_request *prev, *next;
        int32_t stream_id;
        const struct h2_request_handler *h; /* NULL once cancelled or the client is freed: no callbacks */
        void *userdata;
        uint8_t *body;
        size_t body_len, body_off;
        size_t header_bytes;
        int status;
        int error;          /* decided by us before the stream closed (-ECANCELED, -EPROTO) */
        int64_t close_code; /* the stream's HTTP/2 error code once closed; -1 before */
        bool got_response, ended;
};

struct h2_client {
        loop *loop;
        h2conn *h2;
        loop_source *flush_timer;
        char *scheme, *authority;
        size_t max_header_list;
        h2_client_closed_fn closed_cb;
        void *userdata;
        h2_request *requests;
        size_t n_requests;
        bool goaway, closed, freed, dispatching;
};

static void request_unlink_free(h2_request *r)
{
        h2_client *c = r->client;
        if (r->prev)
                r->prev->next = r->next;
        else
                c->requests = r->next;
        if (r->next)
                r->next->prev = r->prev;
        c->n_requests--;
        free(r->body);
        free(r);
}

/* Ends a request: its callback (unless cancelled), then it is freed. */
static void request_finish(h2_request *r, int error)
{
        h2_client *c = r->client;
        if (r->stream_id > 0 && !c->closed)
                (void)nghttp2_session_set_stream_user_data(h2conn_session(c->h2), r->stream_id, NULL);
        const struct h2_request_handler *h = r->h;
        r->h = NULL;
        if (h && h->on_close)
                h->on_close(r, error, r->userdata);
        request_unlink_free(r);
}

static void client_really_free(h2_client *c)
{
        while (c->requests) {
                c->requests->h = NULL;
                request_unlink_free(c->requests);
        }
        c->flush_timer = loop_source_free(c->flush_timer);
        c->h2 = h2conn_unref(c->h2);
        free(c->scheme);
        free(c->authority);
        free(c);
}

static void on_conn_closed(h2conn *h, int error, void *owner)
{
        h2_client *c = owner;
        c->closed = true;
        c->dispatching = true;
        while (c->requests)
                request_finish(c->requests, -ECONNRESET);
        if (!c->freed && c->closed_cb)
                c->closed_cb(c, error, c->userdata);
        c->dispatching = false;
        if (c->freed)
                client_really_free(c);
}

h2_client *h2_client_free(h2_client *c)
{
        if (!c || c->freed)
                return NULL;
        c->freed = true;
        for (h2_request *r = c->requests; r; r = r->next)
                r->h = NULL;
        if (c->dispatching)
                return NULL; /* on_conn_closed frees it when done */
        if (!c->closed) {
                /* Completes now (on_conn_closed frees c) or, inside nghttp2, as soon as it returns. */
                h2conn_close(c->h2, NGHTTP2_NO_ERROR);
                return NULL;
        }
        client_really_free(c);
        return NULL;
}

bool h2_client_usable(const h2_client *c)
{
        return c && !c->closed && !c->freed && !c->goaway && !h2conn_is_closing(c->h2);
}

static void on_flush_timer(loop_source *s, void *userdata)
{
        h2_client *c = userdata;
        if (!c->closed)
                h2conn_flush(c->h2); /* may close the connection and free c: touch nothing after */
}

static void schedule_flush(h2_client *c)
{
        loop_timer_arm(c->flush_timer, 0);
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------------------ */

static h2_request *stream_request(nghttp2_session *session, h2_client *c, int32_t stream_id)
{
        if (c->freed)
                return NULL;
        return nghttp2_session_get_stream_user_data(session, stream_id);
}

static void request_reset(nghttp2_session *session, h2_request *r, int error)
{
        if (r->error == 0)
                r->error = error;
        (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_CANCEL);
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
        h2_client *c = user_data;
        h2_request *r = stream_request(session, c, frame->hd.stream_id);
        if (!r || r->error)
                return 0;
        r->header_bytes += namelen + valuelen + 32;
        if (r->header_bytes > c->max_header_list) {
                r->error = -EPROTO;
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
        }
        if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
                int s = 0;
                for (size_t i = 0; i < valuelen && i < 3; i++)
                        s = s * 10 + (value[i] - '0');
                r->status = s;
        }
        if (r->h && r->h->on_header)
                r->h->on_header(r, name, namelen, value, valuelen, r->userdata);
        return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
        h2_client *c = user_data;
        if (frame->hd.type == NGHTTP2_GOAWAY) {
                c->goaway = true;
                return 0;
        }
        h2_request *r = frame->hd.stream_id > 0 ? stream_request(session, c, frame->hd.stream_id) : NULL;
        if (!r)
                return 0;
        if (frame->hd.type == NGHTTP2_HEADERS && !r->got_response && r->status >= 200) {
                r->got_response = true;
                if (r->h && r->h->on_response && !r->error &&
                    r->h->on_response(r, r->status, r->userdata) < 0)
                        request_reset(session, r, -ECANCELED);
        }
        if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
            (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
                r->ended = true;
        return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data)
{
        h2_client *c = user_data;
        h2_request *r = stream_request(session, c, stream_id);
        if (!r || r->error || !r->h)
                return 0;
        if (r->h->on_data && r->h->on_data(r, data, len, r->userdata) < 0)
                request_reset(session, r, -ECANCELED);
        return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
        h2_client *c = user_data;
        h2_request *r = nghttp2_session_get_stream_user_data(session, stream_id);
        if (!r)
                return 0;
        int error = r->error;
        r->close_code = error_code;
        if (error == 0 && !(r->ended && r->got_response))
                error = -ECONNRESET;
        request_finish(r, error);
        (void)c;
        return 0;
}

static int on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame, int lib_error_code,
                             void *user_data)
{
        h2_client *c = user_data;
        if (frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        /* A request that could not start (GOAWAY received, stream ids exhausted): its stream may never have
         * been opened, so there is no stream user data to find it by, and no on_stream_close will come. */
        if (c->freed)
                return 0;
        for (h2_request *r = c->requests; r; r = r->next)
                if (r->stream_id == frame->hd.stream_id) {
                        request_finish(r, -ECONNRESET);
                        break;
                }
        return 0;
}

static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
        h2_request *r = source->ptr;
        size_t k = MIN(length, r->body_len - r->body_off);
        memcpy(buf, r->body + r->body_off, k);
        r->body_off += k;
        if (r->body_off == r->body_len)
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)k;
}

/* ---- public ------------------------------------------------------------------------------------------ */

static void callbacks_freep(nghttp2_session_callbacks **p)
{
        nghttp2_session_callbacks_del(*p);
}

int h2_client_new(loop *l, net_transport *t, const char *scheme, const char *authority,
                  size_t max_header_list, h2_client_closed_fn closed, void *userdata, h2_client **ret)
{
        _cleanup_(callbacks_freep) nghttp2_session_callbacks *cbs = NULL;
        h2_client *c = new0(h2_client, 1);
        if (!c || nghttp2_session_callbacks_new(&cbs) != 0)
                goto oom;
        c->loop = l;
        c->max_header_list = max_header_list;
        c->closed_cb = closed;
        c->userdata = userdata;
        c->scheme = strdup(scheme);
        c->authority = strdup(authority);
        if (!c->scheme || !c->authority ||
            loop_add_timer(l, UINT64_MAX, on_flush_timer, c, &c->flush_timer) < 0)
                goto oom;
        loop_timer_disarm(c->flush_timer);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
        const nghttp2_settings_entry settings[] = {
                { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
                { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)MIN(max_header_list, UINT32_MAX) },
        };
        int r = h2conn_new(l, TAKE_PTR(t), false, cbs, NULL, settings, ELEMENTSOF(settings), on_conn_closed,
                           c, &c->h2);
        if (r < 0) {
                c->closed = true;
                client_really_free(c);
                return r;
        }
        schedule_flush(c); /* the preface and SETTINGS */
        *ret = c;
        return 0;
oom:
        net_transport_free(t);
        if (c) {
                c->closed = true;
                client_really_free(c);
        }
        return -ENOMEM;
}

int h2_client_request(h2_client *c, const char *method, const char *path, const nghttp2_nv *headers,
                      size_t n_headers, const void *body, size_t body_len,
                      const struct h2_request_handler *h, void *userdata, h2_request **ret)
{
        if (!h2_client_usable(c))
                return -ENOTCONN;
        h2_request *r = new0(h2_request, 1);
        if (!r)
                return -ENOMEM;
        _cleanup_free_ nghttp2_nv *nv = new0(nghttp2_nv, n_headers + 4);
        if (!nv || (body && body_len > 0 && !(r->body = malloc(body_len)))) {
                free(r);
                return -ENOMEM;
        }
        if (body && body_len > 0)
                memcpy(r->body, body, body_len);
        r->body_len = body_len;
        r->close_code = -1;
        r->client = c;
        r->h = h;
        r->userdata = userdata;
#define NV(k, v) (nghttp2_nv){ (uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE }
        nv[0] = NV(":method", method);
        nv[1] = NV(":scheme", c->scheme);
        nv[2] = NV(":path", path);
        nv[3] = NV(":authority", c->authority);
#undef NV
        for (size_t i = 0; i < n_headers; i++)
                nv[4 + i] = headers[i];
        nghttp2_data_provider prd = { .source.ptr = r, .read_callback = read_body };
        int32_t id = nghttp2_submit_request(h2conn_session(c->h2), NULL, nv, n_headers + 4,
                                            body ? &prd : NULL, r);
        if (id < 0) {
                free(r->body);
                free(r);
                return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
        }
        r->stream_id = id;
        r->next = c->requests;
        if (c->requests)
                c->requests->prev = r;
        c->requests = r;
        c->n_requests++;
        schedule_flush(c);
        if (ret)
                *ret = r;
        return 0;
}

int64_t h2_request_close_code(const h2_request *r)
{
        return r->close_code;
}

void h2_request_cancel(h2_request *r)
{
        if (!r || !r->h)
                return;
        h2_client *c = r->client;
        r->h = NULL;
        if (c->closed)
                return;
        /* Freed when the stream closes (or with the connection). */
        (void)nghttp2_submit_rst_stream(h2conn_session(c->h2), NGHTTP2_FLAG_NONE, r->stream_id,
                                        NGHTTP2_CANCEL);
        schedule_flush(c);
}
