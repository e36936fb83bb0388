/* SPDX-License-Identifier: Apache-2.0 */
/* A small, strict HTTP/1.1 responder on the event loop, for /metrics and /healthz.
 *
 * GET and HEAD only; one request per connection, answered with "Connection: close"; the request head
 * is at most HTTP_HEAD_MAX bytes (431 beyond) and must arrive within the header timeout (408 after it).
 * Connections are bounded without ever pausing the listener (a paused listener lets one pod starve
 * every probe): at most HTTP_CONNECTIONS_PER_PEER from one address, at most HTTP_CONNECTIONS_MAX in all;
 * a new connection over either bound closes the oldest one still waiting for its request (of that
 * peer, else of the peer holding the most), and is refused only while every slot is busy answering.
 * Writes are non-blocking through the loop, under the write timeout. Why not libmicrohttpd:
 * docs/metrics.md. */
#pragma once

#include <stdint.h>
#include <sys/socket.h>

#include "base/loop.h"

#define HTTP_HEAD_MAX                  8192
#define HTTP_CONNECTIONS_MAX           16
#define HTTP_CONNECTIONS_PER_PEER      4
#define HTTP_HEADER_TIMEOUT_DEFAULT_NS (3ULL * 1000000000ULL)
#define HTTP_TIMEOUT_DEFAULT_NS        (10ULL * 1000000000ULL)
#define HTTP_PATH_MAX                  256

typedef struct http_server http_server;

/* What a route answers. body is owned by the reply (freed by the server). */
struct http_reply {
        int status;
        const char *content_type;
        char *body;
        size_t size;
};

/* Fills reply; <0 answers 500. */
typedef int (*http_handler)(struct http_reply *reply, void *userdata);

struct http_route {
        const char *path; /* exact match on the path, the query string ignored */
        http_handler handler;
        void *userdata;
};

/* Parses a listen address as Go's net.Listen does for TCP: ":2112" (every interface, IPv6 and IPv4
 * when the host has IPv6), "0.0.0.0:2112", "127.0.0.1:2112", "[::1]:2112", "localhost:2112". Hosts are
 * IP literals or "localhost"; the port is a number 0-65535. On -EINVAL, ret_error (if given) gets a
 * sentence naming the address. */
int http_address_parse(const char *address, struct sockaddr_storage *ret, socklen_t *ret_len,
                       char **ret_error);

/* Looks at the bytes of a request received so far. 0: the head is not complete yet. Otherwise the
 * status to answer: 200 for a well-formed GET or HEAD (path, without the query, copied to ret_path),
 * else 400 (malformed; HTTP/1.1 without Host; a body), 405 (another method), 431 (head larger than
 * HTTP_HEAD_MAX), 505 (not HTTP/1.x). ret_head_only is set for HEAD. Pure: for unit tests. */
int http_request_parse(const char *buf, size_t size, char ret_path[static HTTP_PATH_MAX],
                       bool *ret_head_only);

/* The routes array must outlive the server. */
int http_server_new(loop *l, const struct http_route *routes, size_t n_routes, http_server **ret);
http_server *http_server_free(http_server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(http_server *, http_server_free);
/* The header timeout (HTTP_HEADER_TIMEOUT_DEFAULT_NS unless set) and the write timeout
 * (HTTP_TIMEOUT_DEFAULT_NS), both set to nsec. */
void http_server_set_timeout(http_server *s, uint64_t nsec);
/* Binds and listens. Errors: -EINVAL (bad address, with ret_error), or the bind/listen errno, with
 * ret_error naming the address. */
int http_server_listen(http_server *s, const char *address, char **ret_error);
/* The bound port (useful after listening on port 0). */
int http_server_port(const http_server *s);
size_t http_server_connections(const http_server *s);
/* Connections closed to make room for newer ones, and new ones refused (every slot busy answering). */
uint64_t http_server_evicted(const http_server *s);
uint64_t http_server_refused(const http_server *s);
