/* SPDX-License-Identifier: Apache-2.0 */
#include "net/transport.h"

#include <sys/socket.h>

static ssize_t fd_read(net_transport *t, void *buf, size_t n)
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

static ssize_t fd_write(net_transport *t, const void *buf, size_t n)
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

static void fd_free(net_transport *t)
{
        safe_close(t->fd);
        free(t);
}

static const struct net_transport_ops fd_ops = {
        .read = fd_read,
        .write = fd_write,
        .free = fd_free,
};

int net_transport_new_fd(int fd, net_transport **ret)
{
        net_transport *t = new0(net_transport, 1);
        if (!t) {
                safe_close(fd);
                return -ENOMEM;
        }
        t->ops = &fd_ops;
        t->fd = fd;
        *ret = t;
        return 0;
}

net_transport *net_transport_free(net_transport *t)
{
        if (t)
                t->ops->free(t);
        return NULL;
}
