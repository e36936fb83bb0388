/* SPDX-License-Identifier: Apache-2.0 */
/* One HTTP/2 connection in the loop: an nghttp2 session fed from and flushed to an net_transport.
 * Shared by the gRPC server and client; knows nothing about gRPC.
 *
 * Re-entrancy: nghttp2 forbids driving a session from inside its own callbacks, and our callbacks run user
 * code that may send, finish calls or shut everything down. So h2conn_flush() and h2conn_close() called
 * while the session is busy only record the request; it is carried out as soon as nghttp2 returns. The
 * object is reference counted so that it outlives whatever callback closed it. */
#pragma once

#include <nghttp2/nghttp2.h>

#include "base/loop.h"
#include "net/transport.h"

typedef struct h2conn h2conn;

/* Runs once, when the connection is closed (by either side, on error, or by h2conn_close), after the
 * transport is gone and never from inside an nghttp2 callback. error is 0 or a -errno (-ECONNRESET for
 * end of stream, -EPROTO for a protocol error). */
typedef void (*h2conn_closed_fn)(h2conn *c, int error, void *owner);

/* Takes the transport (also on failure). owner is the nghttp2 user_data. settings are submitted at once, so
 * they are the first frame we send (after the client preface, which nghttp2 adds for clients). */
int h2conn_new(loop *l, net_transport *t, bool server, const nghttp2_session_callbacks *cbs,
               const nghttp2_option *opt, const nghttp2_settings_entry *settings, size_t n_settings,
               h2conn_closed_fn closed, void *owner, h2conn **ret);
h2conn *h2conn_ref(h2conn *c);
h2conn *h2conn_unref(h2conn *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(h2conn *, h2conn_unref);

nghttp2_session *h2conn_session(h2conn *c);
/* Writes what nghttp2 wants to send until done or the transport would block (then waits for EPOLLOUT). */
void h2conn_flush(h2conn *c);
/* Sends GOAWAY(error_code) as far as the socket takes it without blocking, closes, reports to the owner. */
void h2conn_close(h2conn *c, uint32_t error_code);
/* Closed, or a close is pending: callbacks should stop work. */
bool h2conn_is_closing(const h2conn *c);
