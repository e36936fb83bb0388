/* SPDX-License-Identifier: Apache-2.0 */
/* The bytes a client sends to our gRPC server: the HTTP/2 client preface is prepended, the input follows,
 * written into one end of a socketpair whose other end the server owns (rpc_server_add_connection). The
 * loop runs until the input is written and the server is idle; then the client end closes and the server
 * must drop the connection. Whatever comes back is read and dropped. Methods: a unary echo, a unary that
 * fails, a stream that sends twice and stays open, a stream that ends at once. */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include "base/parse.h"
#include "fuzz-common.h"
#include "rpc/rpc.h"

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void on_echo(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        if (rpc_call_reply(call, msg, size) < 0)
                rpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "too big");
}

static void on_fail(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        rpc_call_fail(call, GRPC_INVALID_ARGUMENT, "bad request of %zu bytes: \"%.*s\"", size,
                      (int)MIN(size, 8u), (const char *)msg);
}

static unsigned open_streams;

static void on_stream_close(rpc_call *call, void *userdata)
{
        open_streams--;
}

static void on_watch(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        static const uint8_t list[] = { 0x0a, 0x03, 'a', 'b', 'c' };
        rpc_call_set_close_handler(call, on_stream_close, NULL);
        open_streams++;
        (void)rpc_call_send(call, list, sizeof list);
        (void)rpc_call_send(call, msg, size);
}

static void on_short_stream(rpc_call *call, const uint8_t *msg, size_t size, void *userdata)
{
        (void)rpc_call_send(call, msg, size);
        rpc_call_fail(call, GRPC_OK, NULL);
}

static const struct rpc_method methods[] = {
        { "/v1beta1.DevicePlugin/Allocate", RPC_UNARY, on_echo },
        { "/v1beta1.DevicePlugin/PreStartContainer", RPC_UNARY, on_fail },
        { "/v1beta1.DevicePlugin/ListAndWatch", RPC_SERVER_STREAM, on_watch },
        { "/a", RPC_SERVER_STREAM, on_short_stream },
};

static void drain(int fd)
{
        char buf[65536];
        while (read(fd, buf, sizeof buf) > 0)
                ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(loop_freep) loop *l = NULL;
        _cleanup_(rpc_server_freep) rpc_server *s = NULL;
        int sv[2];
        if (loop_new(&l) < 0 || rpc_server_new(l, methods, ELEMENTSOF(methods), NULL, &s) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        if (rpc_server_add_connection(s, sv[1]) < 0)
                abort();
        _cleanup_close_ int fd = sv[0];

        /* preface, then the input; the server's answers are drained as we go */
        size_t total = sizeof preface - 1 + size, off = 0;
        for (unsigned spins = 0; off < total && spins < 10000; spins++) {
                const uint8_t *p = off < sizeof preface - 1 ? (const uint8_t *)preface + off
                                                            : data + (off - (sizeof preface - 1));
                size_t n = off < sizeof preface - 1 ? sizeof preface - 1 - off : total - off;
                ssize_t k = write(fd, p, n);
                if (k > 0)
                        off += (size_t)k;
                else if (k < 0 && errno != EAGAIN)
                        break; /* the server closed on us: fine */
                loop_run_once(l, 0);
                drain(fd);
        }
        for (unsigned i = 0; i < 8; i++) {
                loop_run_once(l, 0);
                drain(fd);
        }
        /* the client goes away: the server must notice and free the connection and its calls */
        close(TAKE_FD(fd));
        for (unsigned i = 0; i < 100 && rpc_server_connections(s) > 0; i++)
                loop_run_once(l, NSEC_PER_MSEC);
        if (rpc_server_connections(s) != 0 || open_streams != 0) {
                fprintf(stderr, "connection or stream survived its client: %zu connections, %u streams\n",
                        rpc_server_connections(s), open_streams);
                abort();
        }
        return 0;
}
