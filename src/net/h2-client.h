/* SPDX-License-Identifier: Apache-2.0 */
/* The one HTTP/2 client connection over any net_transport: many concurrent requests, response bodies
 * streamed to the caller chunk by chunk. The Kubernetes API client (over TLS) and the gRPC client call
 * (rpc/rpc-client.c, over a unix socket) run on it.
 *
 * Callbacks never run from inside h2_client_request or h2_request_cancel: submitted frames go out from a
 * zero timer in the loop. A request's memory belongs to the client; the h2_request pointer is valid until
 * its on_close returns or h2_request_cancel returns. */
#pragma once

#include <nghttp2/nghttp2.h>

#include "base/loop.h"
#include "net/transport.h"

typedef struct h2_client h2_client;
typedef struct h2_request h2_request;

struct h2_request_handler {
        /* The final response headers arrived (1xx skipped). Return <0 to cancel the request. */
        int (*on_response)(h2_request *r, int status, void *userdata);
        /* Every response header field and trailer (pseudo-headers included), as received. May be NULL. */
        void (*on_header)(h2_request *r, const uint8_t *name, size_t namelen, const uint8_t *value,
                          size_t valuelen, void *userdata);
        /* A chunk of the response body. Return <0 to cancel the request (e.g. over a size limit). */
        int (*on_data)(h2_request *r, const uint8_t *data, size_t len, void *userdata);
        /* Runs once: error 0 when the response ended with END_STREAM, -ECANCELED after on_response or
         * on_data asked for it, -ECONNRESET when the stream was reset by the peer (or refused after a
         * GOAWAY) or the connection was lost, -EPROTO for a malformed response. */
        void (*on_close)(h2_request *r, int error, void *userdata);
};

/* Runs once when the connection is gone (after every open request's on_close), never inside nghttp2.
 * error is as h2conn reports it (-ECONNRESET for end of stream). The client is still allocated: free it
 * (here or later). */
typedef void (*h2_client_closed_fn)(h2_client *c, int error, void *userdata);

/* Takes the transport (also on failure); the connection must be ready for application data (TLS handshake
 * done). authority is the :authority of every request (host:port). max_header_list bounds the response
 * header list of each stream (RFC 7541 size); larger ones fail the request with -EPROTO. */
int h2_client_new(loop *l, net_transport *t, const char *scheme, const char *authority,
                  size_t max_header_list, h2_client_closed_fn closed, void *userdata, h2_client **ret);
/* Closes the connection (GOAWAY) without any further callbacks. Accepts NULL; safe from inside callbacks. */
h2_client *h2_client_free(h2_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(h2_client *, h2_client_free);
/* False once the connection closed, is closing, or the server sent GOAWAY: open a new one for new work. */
bool h2_client_usable(const h2_client *c);

/* Submits a request. headers are extra fields (lower-case names; copied). body may be NULL (no DATA), it
 * is copied. -ENOTCONN when the client is not usable. */
int h2_client_request(h2_client *c, const char *method, const char *path, const nghttp2_nv *headers,
                      size_t n_headers, const void *body, size_t body_len,
                      const struct h2_request_handler *h, void *userdata, h2_request **ret);
/* Resets the stream (CANCEL); no callback runs for it afterwards. Accepts NULL. */
void h2_request_cancel(h2_request *r);
/* Inside on_close: the HTTP/2 error code the stream closed with (NGHTTP2_NO_ERROR for a normal end, e.g.
 * NGHTTP2_REFUSED_STREAM when the peer reset it), or -1 when it never closed by itself (the connection
 * was lost, or the request could not start). */
int64_t h2_request_close_code(const h2_request *r);
