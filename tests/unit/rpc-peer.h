/* SPDX-License-Identifier: Apache-2.0 */
/* A test-side HTTP/2 peer (nghttp2 as client or server) on one end of a socketpair, pumped together with the
 * loop under test. It records what it receives so tests can assert on headers, messages and frames. */
#pragma once

#include <nghttp2/nghttp2.h>
#include <sys/socket.h>

#include "base/loop.h"
#include "base/parse.h"

#define PEER_MAX_STREAMS 16

struct peer_stream {
        int32_t id;
        char headers[4096];  /* "name: value\n" of the first HEADERS */
        char trailers[4096]; /* of the second HEADERS */
        unsigned n_headers_frames;
        bool headers_end_stream; /* the first HEADERS carried END_STREAM (trailers-only) */
        uint8_t *data;
        size_t data_len;
        bool closed, rst_received;
        uint32_t close_error, rst_code;
        /* request body for a client peer, and how it is cut into DATA frames */
        const uint8_t *body;
        size_t body_len, body_off, chunk;
        bool body_end_stream;
};

struct peer {
        int fd;
        nghttp2_session *session;
        struct peer_stream streams[PEER_MAX_STREAMS];
        size_t n_streams;
        size_t max_data_frame, max_frame;
        unsigned n_data_frames;
        bool goaway;
        uint32_t goaway_code;
        bool eof;
        int first_frame_type;
        uint8_t *out;
        size_t out_len;
        /* for a server peer: what to answer (see rpc-peer.c) */
        void (*on_request)(struct peer *p, struct peer_stream *st);
};

int peer_init(struct peer *p, int fd, bool server, const nghttp2_settings_entry *settings, size_t n_settings,
              bool auto_window_update);
void peer_done(struct peer *p);
struct peer_stream *peer_stream(struct peer *p, int32_t id);
/* A gRPC request: standard headers (+ extra name/value pairs), and body cut into chunk-sized DATA frames. */
int32_t peer_request(struct peer *p, const char *path, const char *content_type, const char *method,
                     const uint8_t *body, size_t body_len, size_t chunk, bool end_stream,
                     const nghttp2_nv *extra, size_t n_extra);
/* Sends what nghttp2 has and reads what arrived. */
void peer_io(struct peer *p);
/* Frames a message: 5-byte prefix + bytes; returns malloc'ed buffer. */
uint8_t *grpc_frame(const void *msg, size_t size, size_t *ret_len);
bool has_line(const char *block, const char *line);

/* Pumps the loop and the peer until cond holds (3 s at most). */
#define PUMP_UNTIL(l, p, cond)                                                                              \
        ({                                                                                                  \
                bool _ok = false;                                                                           \
                for (int _i = 0; _i < 3000; _i++) {                                                         \
                        peer_io(p);                                                                         \
                        if (cond) {                                                                         \
                                _ok = true;                                                                 \
                                break;                                                                      \
                        }                                                                                   \
                        loop_run_once((l), NSEC_PER_MSEC);                                                  \
                }                                                                                           \
                _ok;                                                                                        \
        })
