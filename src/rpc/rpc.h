/* SPDX-License-Identifier: Apache-2.0 */
/* gRPC over HTTP/2 (libnghttp2) over unix sockets: a server for unary and server-streaming methods, and a
 * one-shot unary client (Register). Everything runs in the one event loop; no call ever blocks it.
 * Messages are opaque bytes here (see deviceplugin.h for the protobuf-c helpers). */
#pragma once

#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/loop.h"

enum {
        GRPC_OK = 0,
        GRPC_CANCELLED = 1,
        GRPC_UNKNOWN = 2,
        GRPC_INVALID_ARGUMENT = 3,
        GRPC_DEADLINE_EXCEEDED = 4,
        GRPC_NOT_FOUND = 5,
        GRPC_FAILED_PRECONDITION = 9,
        GRPC_RESOURCE_EXHAUSTED = 8,
        GRPC_UNIMPLEMENTED = 12,
        GRPC_INTERNAL = 13,
        GRPC_UNAVAILABLE = 14,
};

/* grpc-go's default receive limit: the largest message either side sends. */
#define RPC_MAX_MESSAGE (4u * 1024 * 1024)
/* The largest request a server takes (rpc_server_set_max_request changes it). The kubelet's largest, a
 * PreferredAllocationRequest naming every device of a resource, is some 50 bytes per device: 1 MiB is
 * 20,000 devices. */
#define RPC_MAX_REQUEST (1u * 1024 * 1024)
/* Request bytes held by every server of the process together: messages being received (counted at the
 * length their prefix announces) and complete ones waiting for their stream to end. Past it, the call
 * holding the most is failed with RESOURCE_EXHAUSTED: a kubelet's small request is never the one. */
#define RPC_REQUEST_BUDGET (4u * 1024 * 1024)
/* Advertised SETTINGS_MAX_CONCURRENT_STREAMS, and the bound on open calls per connection. */
#define RPC_MAX_STREAMS 100u
/* Open connections per server (the kubelet needs one per plugin socket). A new connection beyond makes
 * room by closing the connection idle the longest; it is refused only when none is idle, unless it is
 * the expected client (rpc_server_expect_client). */
#define RPC_MAX_CONNECTIONS 64u
/* Advertised SETTINGS_MAX_HEADER_LIST_SIZE (RFC 7541 size: name + value + 32 per field), enforced. */
#define RPC_MAX_HEADER_LIST 16384u
/* Response bytes a stream may have queued but not yet written (rpc_call_send fails with -ENOBUFS beyond). */
#define RPC_MAX_STREAM_QUEUE (16u * 1024 * 1024)

/* A connection must deliver the client preface and SETTINGS within this time (grpc-go allows 120 s; the
 * kubelet sends them at once). */
#define RPC_HANDSHAKE_TIMEOUT (10ULL * 1000 * 1000 * 1000)
/* A connection without an open stream this long is closed (GOAWAY): the kubelet keeps ListAndWatch open
 * on its connection for as long as it uses it. */
#define RPC_IDLE_TIMEOUT (30ULL * 1000 * 1000 * 1000)

typedef struct rpc_server rpc_server;
typedef struct rpc_call rpc_call;

enum rpc_kind { RPC_UNARY, RPC_SERVER_STREAM };

/* Called once with the complete request message (after END_STREAM from the client). For unary calls the
 * handler replies (now or later) with rpc_call_reply or rpc_call_fail; for streams it keeps the call and
 * sends with rpc_call_send until the close handler runs. A handler that keeps the call beyond its return
 * must set a close handler: the call pointer is valid until rpc_call_reply/rpc_call_fail returns or the
 * close handler returns, whichever is first. */
typedef void (*rpc_handler)(rpc_call *call, const uint8_t *msg, size_t size, void *userdata);
/* The peer cancelled the stream or the connection went away; the call is freed right after this returns.
 * Runs only for calls whose handler ran and that were not yet finished with rpc_call_reply/rpc_call_fail. */
typedef void (*rpc_close_handler)(rpc_call *call, void *userdata);

struct rpc_method {
        const char *path; /* ":path", e.g. "/v1beta1.DevicePlugin/Allocate" */
        enum rpc_kind kind;
        rpc_handler handler;
};

/* methods is copied. userdata goes to every handler. */
int rpc_server_new(loop *l, const struct rpc_method *methods, size_t n_methods, void *userdata,
                   rpc_server **ret);
/* Unlinks a stale socket at path (-EEXIST if something else is there), binds with mode 0600 (only the
 * owner, normally root like the kubelet, can connect), listens, starts accepting. -ENAMETOOLONG if the path
 * does not fit sockaddr_un.sun_path. May be called again after rpc_server_shutdown. */
int rpc_server_listen(rpc_server *s, const char *socket_path);
/* Serves an already connected stream socket (taken over, also on failure). For socket activation and tests.
 */
int rpc_server_add_connection(rpc_server *s, int fd);
/* Closes the listener and every connection (GOAWAY), running close handlers of open calls; path unlinked
 * (only if it is still the socket we created). Safe to call from inside handlers. */
void rpc_server_shutdown(rpc_server *s);
rpc_server *rpc_server_free(rpc_server *s); /* shutdown + free; accepts NULL */
DEFINE_TRIVIAL_CLEANUP_FUNC(rpc_server *, rpc_server_free);
size_t rpc_server_connections(const rpc_server *s);
/* For connections accepted from now on (tests use short ones). An idle timeout of 0 is none: for a server
 * whose client holds a connection without a stream by design (the kubelet on a DRA driver's socket); the
 * connection cap still holds, and an idle connection is what goes first to make room. */
void rpc_server_set_handshake_timeout(rpc_server *s, uint64_t nsec);
void rpc_server_set_idle_timeout(rpc_server *s, uint64_t nsec);
/* The largest request message (RPC_MAX_REQUEST unless set; at most RPC_MAX_MESSAGE). */
void rpc_server_set_max_request(rpc_server *s, size_t bytes);
/* Request bytes held by all servers now (see RPC_REQUEST_BUDGET). */
size_t rpc_request_bytes(void);

/* While on, connections accepted are the expected client's: the kubelet dialling back inside our Register
 * call. They are never refused nor closed to make room (room is made by closing the least recently active
 * other connection), so a socket full of other connections cannot lock the kubelet out. */
void rpc_server_expect_client(rpc_server *s, bool on);

/* Who is on the other end of a connection (SO_PEERCRED); pid is 0 for a process in another PID
 * namespace. */
struct rpc_peer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
};
enum rpc_refusal {
        RPC_REFUSED_FULL,    /* a new connection refused: every slot busy, none idle */
        RPC_CLOSED_FOR_ROOM, /* closed to make room for a new connection */
        RPC_CLOSED_IDLE,     /* closed after RPC_IDLE_TIMEOUT without an open stream */
};
/* Reported at most once per peer in RPC_REFUSAL_REPORT_INTERVAL, and at most RPC_REFUSAL_REPORTS_MAX
 * reports in that interval overall; suppressed: refusals not reported since the last report. */
#define RPC_REFUSAL_REPORT_INTERVAL (10ULL * 60 * 1000 * 1000 * 1000)
#define RPC_REFUSAL_REPORTS_MAX     16u
typedef void (*rpc_refusal_handler)(const struct rpc_peer *peer, enum rpc_refusal why, size_t n_connections,
                                    uint64_t suppressed, void *userdata);
void rpc_server_set_refusal_handler(rpc_server *s, rpc_refusal_handler cb, void *userdata);
const char *rpc_refusal_to_string(enum rpc_refusal why);

/* unary: HEADERS, DATA, trailers grpc-status 0. Finishes the call. -EMSGSIZE over RPC_MAX_MESSAGE (the
 * call then stays yours: fail it). */
int rpc_call_reply(rpc_call *c, const uint8_t *msg, size_t size);
/* stream: one more message. -ENOBUFS when RPC_MAX_STREAM_QUEUE bytes are already waiting for the peer. */
int rpc_call_send(rpc_call *c, const uint8_t *msg, size_t size);
/* Ends the call with a status (trailers-only if nothing was sent yet, else trailers after the queued
 * messages). GRPC_OK is allowed (ends a stream). fmt may be NULL. Finishes the call. */
int rpc_call_fail(rpc_call *c, int grpc_status, const char *fmt, ...) _printf_(3, 4);
void rpc_call_set_close_handler(rpc_call *c, rpc_close_handler cb, void *userdata);
void *rpc_server_get_userdata(rpc_server *s);
rpc_server *rpc_call_get_server(rpc_call *c);

typedef struct rpc_client_call rpc_client_call;
/* status GRPC_OK with the response message, or an error status with a message (connect failure ->
 * GRPC_UNAVAILABLE naming the socket; timeout -> GRPC_DEADLINE_EXCEEDED). Called exactly once unless
 * cancelled, never from inside rpc_client_call_start. The call is freed right after the callback returns:
 * forget the rpc_client_call pointer there. */
typedef void (*rpc_client_done)(int grpc_status, const char *message, const uint8_t *resp, size_t size,
                                void *userdata);
/* One unary call on a fresh connection (closed with GOAWAY afterwards), asynchronous in the loop; sends
 * grpc-timeout. Never blocks the loop (non-blocking connect). timeout_nsec 0 means no deadline.
 * Returns <0 only for local errors (-ENAMETOOLONG, -EMSGSIZE, -ENOMEM); connect errors go to cb. */
int rpc_client_call_start(loop *l, const char *socket_path, const char *method_path, const uint8_t *req,
                          size_t size, uint64_t timeout_nsec, rpc_client_done cb, void *userdata,
                          rpc_client_call **ret);
rpc_client_call *rpc_client_call_cancel(rpc_client_call *c); /* no callback after this; accepts NULL */

/* "OK", "UNKNOWN", ... ("INVALID_CODE" for numbers outside 0..16). */
const char *grpc_status_to_string(int grpc_status);
