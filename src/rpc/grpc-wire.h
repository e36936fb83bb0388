/* SPDX-License-Identifier: Apache-2.0 */
/* The gRPC-over-HTTP/2 details that are pure byte work: the 5-byte length prefix, grpc-timeout,
 * grpc-message percent-encoding, content-type matching. No I/O; unit tested on byte buffers. */
#pragma once

#include <stdint.h>

#include "base/macro.h"

#define GRPC_PREFIX_SIZE 5u

/* Reassembles length-prefixed messages from DATA payloads that split them anywhere. */
struct grpc_reader {
        uint8_t prefix[GRPC_PREFIX_SIZE];
        size_t prefix_len;
        uint8_t *buf; /* body of the message being read */
        size_t len, want;
        size_t max; /* largest message accepted */
        size_t n_messages;
        uint8_t *msg; /* the complete message, during the callback */
};

/* Called for each complete message; return <0 to stop feeding (returned from grpc_reader_feed). The
 * message is freed when it returns, unless taken with grpc_reader_take(). */
typedef int (*grpc_message_cb)(const uint8_t *msg, size_t size, void *userdata);

void grpc_reader_init(struct grpc_reader *r, size_t max);
void grpc_reader_done(struct grpc_reader *r);
/* -EMSGSIZE: a length prefix over max; -EPROTO: compressed flag set (we never negotiate compression) or a
 * flag byte other than 0/1. The reader is unusable after an error. */
int grpc_reader_feed(struct grpc_reader *r, const uint8_t *data, size_t n, grpc_message_cb cb,
                     void *userdata);
/* true between messages (no partial message pending). */
bool grpc_reader_idle(const struct grpc_reader *r);
/* Bytes currently held for a partial message. */
size_t grpc_reader_buffered(const struct grpc_reader *r);
/* Bytes the partial message will hold once complete (its length prefix says so; allocated at once). */
size_t grpc_reader_reserved(const struct grpc_reader *r);
/* Inside the message callback: the message buffer (size + 1 bytes), now the caller's to free. */
uint8_t *grpc_reader_take(struct grpc_reader *r);

void grpc_prefix_write(uint8_t out[static GRPC_PREFIX_SIZE], size_t len);

/* grpc-timeout: at most 8 digits and a unit (H M S m u n). Rounds up so the peer never sees less time. */
void grpc_timeout_format(uint64_t nsec, char out[static 16]);
int grpc_timeout_parse(const char *s, size_t n, uint64_t *ret_nsec);

/* grpc-message: bytes outside 0x20..0x7E and '%' become %XX. */
char *grpc_message_encode(const char *s);
/* Reverse; malformed escapes are kept as they are (the spec says to accept them). */
char *grpc_message_decode(const uint8_t *s, size_t n);

/* "application/grpc" alone or followed by '+' or ';'. */
bool grpc_content_type_ok(const uint8_t *v, size_t n);
