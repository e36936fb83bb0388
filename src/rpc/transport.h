/* SPDX-License-Identifier: Apache-2.0 */
/* The byte stream an HTTP/2 connection runs over. The session code (h2conn) reads and writes only through
 * this, so a TLS transport (for the Kubernetes API server) can be added without touching it. */
#pragma once

#include <sys/types.h>

#include "base/macro.h"

typedef struct rpc_transport rpc_transport;

struct rpc_transport_ops {
        /* Bytes read, 0 at end of stream, -EAGAIN when nothing is there now, or another -errno. */
        ssize_t (*read)(rpc_transport *t, void *buf, size_t n);
        /* Bytes written (maybe fewer than n), -EAGAIN when it would block, or another -errno. */
        ssize_t (*write)(rpc_transport *t, const void *buf, size_t n);
        /* Closes and frees. */
        void (*free)(rpc_transport *t);
};

struct rpc_transport {
        const struct rpc_transport_ops *ops;
        int fd; /* what the loop polls; a TLS transport would poll its socket here too */
};

/* Plain stream socket (unix or TCP). Takes ownership of fd, also on failure. */
int rpc_transport_new_fd(int fd, rpc_transport **ret);
rpc_transport *rpc_transport_free(rpc_transport *t);
