/* SPDX-License-Identifier: Apache-2.0 */
/* The byte stream an HTTP/2 connection runs over. The session code (h2conn) reads and writes only through
 * this, so a TLS transport (for the Kubernetes API server) can be added without touching it. */
#pragma once

#include <sys/types.h>

#include "base/macro.h"

typedef struct net_transport net_transport;

struct net_transport_ops {
        /* Bytes read, 0 at end of stream, -EAGAIN when nothing is there now, or another -errno. */
        ssize_t (*read)(net_transport *t, void *buf, size_t n);
        /* Bytes written (maybe fewer than n), -EAGAIN when it would block, or another -errno. */
        ssize_t (*write)(net_transport *t, const void *buf, size_t n);
        /* Closes and frees. */
        void (*free)(net_transport *t);
};

struct net_transport {
        const struct net_transport_ops *ops;
        int fd; /* what the loop polls; a TLS transport would poll its socket here too */
};

/* Plain stream socket (unix or TCP). Takes ownership of fd, also on failure. */
int net_transport_new_fd(int fd, net_transport **ret);
net_transport *net_transport_free(net_transport *t);
