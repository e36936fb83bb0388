/* SPDX-License-Identifier: Apache-2.0 */
#include "net/http-client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "base/error.h"
#include "base/parse.h"
#include "net/http-server.h"

/* Waits until fd is ready for events or the deadline passes (-ETIMEDOUT). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
        for (;;) {
                uint64_t now = now_nsec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                struct pollfd p = { .fd = fd, .events = events };
                int n = poll(&p, 1,
                             (int)MIN((deadline - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC, 60000ULL));
                if (n < 0 && errno != EINTR)
                        return negative_errno();
                if (n > 0)
                        return 0;
        }
}

static int get_error(char **ret_error, int r, const char *address, const char *what)
{
        return error_set(ret_error, r, "GET http://%s: %s: %s", address, what,
                         r == -ETIMEDOUT ? "no answer in time" : strerror(-r));
}

int http_get(const char *address, const char *path, uint64_t timeout_nsec, char **ret_body, char **ret_error)
{
        struct sockaddr_storage ss;
        socklen_t len;
        int r = http_address_parse(address, &ss, &len, ret_error);
        if (r < 0)
                return r;
        uint64_t deadline = now_nsec() + timeout_nsec;
        _cleanup_close_ int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return get_error(ret_error, negative_errno(), address, "socket");
        if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
                if (errno != EINPROGRESS)
                        return get_error(ret_error, negative_errno(), address, "connect");
                if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
                        return get_error(ret_error, r, address, "connect");
                int err = 0;
                socklen_t elen = sizeof err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
                        err = errno;
                if (err != 0)
                        return get_error(ret_error, -err, address, "connect");
        }
        _cleanup_free_ char *req = NULL;
        int n = asprintf(&req,
                         "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: nvdp/" NVDP_VERSION
                         "\r\nConnection: close\r\n\r\n",
                         path, address);
        if (n < 0)
                return -ENOMEM;
        for (size_t off = 0; off < (size_t)n;) {
                ssize_t k = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
                if (k < 0 && errno == EAGAIN && (r = wait_fd(fd, POLLOUT, deadline)) >= 0)
                        continue;
                if (k < 0 && errno != EINTR)
                        return get_error(ret_error, errno == EAGAIN ? r : negative_errno(), address, "send");
                if (k > 0)
                        off += (size_t)k;
        }
        _cleanup_free_ char *buf = malloc(HTTP_GET_MAX + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
        for (;;) {
                if (got == HTTP_GET_MAX)
                        return get_error(ret_error, -EFBIG, address, "reading the answer");
                ssize_t k = recv(fd, buf + got, HTTP_GET_MAX - got, 0);
                if (k == 0)
                        break;
                if (k > 0) {
                        got += (size_t)k;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return get_error(ret_error, negative_errno(), address, "reading the answer");
                if ((r = wait_fd(fd, POLLIN, deadline)) < 0)
                        return get_error(ret_error, r, address, "reading the answer");
        }
        buf[got] = '\0';
        unsigned status = 0;
        char *body = strstr(buf, "\r\n\r\n");
        if (!startswith(buf, "HTTP/1.") || got < 12 || sscanf(buf + 8, " %3u", &status) != 1 ||
            status < 100 || !body)
                return error_set(ret_error, -EBADMSG, "GET http://%s%s: the answer is not HTTP/1.x", address,
                                 path);
        char *b = strdup(body + 4);
        if (!b)
                return -ENOMEM;
        *ret_body = b;
        return (int)status;
}
