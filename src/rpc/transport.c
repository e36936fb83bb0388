/* SPDX-License-Identifier: Apache-2.0 */
#include "transport.h"

#include <sys/socket.h>

static ssize_t fd_read(rpc_transport *t, void *buf, size_t n)
{
        for (;;) {
                ssize_t k = recv(t->fd, buf, n, 0);
                if (k >= 0)
                        return k;
                if (errno == EINTR)
                        continue;
                return errno == EWOULDBLOCK ? -EAGAIN : negative_errno();
        }
}

static ssize_t fd_write(rpc_transport *t, const void *buf, size_t n)
{
        for (;;) {
                /* MSG_NOSIGNAL: a peer that went away is an error here, not a SIGPIPE. */
                ssize_t k = send(t->fd, buf, n, MSG_NOSIGNAL);
                if (k >= 0)
                        return k;
                if (errno == EINTR)
                        continue;
                return errno == EWOULDBLOCK ? -EAGAIN : negative_errno();
        }
}

static void fd_free(rpc_transport *t)
{
        safe_close(t->fd);
        free(t);
}

static const struct rpc_transport_ops fd_ops = {
        .read = fd_read,
        .write = fd_write,
        .free = fd_free,
};

int rpc_transport_new_fd(int fd, rpc_transport **ret)
{
        rpc_transport *t = new0(rpc_transport, 1);
        if (!t) {
                safe_close(fd);
                return -ENOMEM;
        }
        t->ops = &fd_ops;
        t->fd = fd;
        *ret = t;
        return 0;
}

rpc_transport *rpc_transport_free(rpc_transport *t)
{
        if (t)
                t->ops->free(t);
        return NULL;
}
