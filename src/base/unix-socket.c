/* SPDX-License-Identifier: Apache-2.0 */
#include "base/unix-socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

int unix_socket_probe(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int pfd = -EBADF;
        size_t len = strlen(path);
        if (len < sizeof sa.sun_path)
                memcpy(sa.sun_path, path, len + 1);
        else {
                /* Too long for sun_path: connect through the magic link of an O_PATH descriptor. */
                pfd = open(path, O_PATH | O_CLOEXEC);
                if (pfd < 0)
                        return negative_errno();
                snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d", pfd);
        }
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        /* EPROTOTYPE: a socket of another type is bound there, so something listens (NVIDIA's MPS control
         * socket is SOCK_SEQPACKET); a socket file nobody holds any more gives ECONNREFUSED whatever the
         * type. */
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 || errno == EAGAIN || errno == EINPROGRESS ||
            errno == EPROTOTYPE)
                return 0;
        return errno == ENOTSOCK ? -ECONNREFUSED : negative_errno();
}
