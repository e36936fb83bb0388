/* SPDX-License-Identifier: Apache-2.0 */
/* A gRPC server over src/rpc for the interop tests (grpcio is the client). Usage: rpc-test-server SOCKET
 * Methods (raw bytes, no protobuf):
 *   /test.Test/Echo    unary: replies with the request.
 *   /test.Test/Stream  server stream: request "N SIZE" sends N messages of SIZE bytes ('a'+i%26), then OK.
 *   /test.Test/Hold    server stream: sends "hello", stays open until the client goes away.
 *   /test.Test/Slow    unary: replies with the request after 300 ms.
 *   /test.Test/Fail    unary: request "CODE message" fails with that status and message.
 *   /test.Test/Tick    server stream: request "N" sends "tick-0".."tick-N-1" 20 ms apart, then OK.
 *   /test.Test/Stats   unary: "closed=C connections=N" (C = Hold streams whose close handler ran).
 * Prints "ready" once listening; SIGTERM/SIGINT shut it down. */
#include <signal.h>
#include <stdio.h>

#include "base/parse.h"
#include "rpc/rpc.h"

static unsigned n_closed;
static rpc_server *server;

static void echo(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        (void)rpc_call_reply(c, msg, size);
}

static void stream(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        char buf[64] = "";
        unsigned n = 0, len = 0;
        memcpy(buf, msg, MIN(size, sizeof buf - 1));
        if (sscanf(buf, "%u %u", &n, &len) != 2 || len > RPC_MAX_MESSAGE) {
                (void)rpc_call_fail(c, GRPC_INVALID_ARGUMENT, "want \"N SIZE\"");
                return;
        }
        _cleanup_free_ uint8_t *m = malloc(len + 1);
        if (!m) {
                (void)rpc_call_fail(c, GRPC_RESOURCE_EXHAUSTED, NULL);
                return;
        }
        for (unsigned i = 0; i < n; i++) {
                memset(m, 'a' + (int)(i % 26), len);
                int r = rpc_call_send(c, m, len);
                if (r < 0) {
                        (void)rpc_call_fail(c, GRPC_RESOURCE_EXHAUSTED, "send: %s", strerror(-r));
                        return;
                }
        }
        (void)rpc_call_fail(c, GRPC_OK, NULL);
}

static void hold_closed(rpc_call *c, void *userdata)
{
        n_closed++;
}

static void hold(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        rpc_call_set_close_handler(c, hold_closed, NULL);
        (void)rpc_call_send(c, (const uint8_t *)"hello", 5);
}

struct slow {
        rpc_call *call;
        loop_source *timer;
        uint8_t *msg;
        size_t size;
};

static void slow_free(struct slow *s)
{
        loop_source_free(s->timer);
        free(s->msg);
        free(s);
}

static void slow_fire(loop_source *t, void *userdata)
{
        struct slow *s = userdata;
        (void)rpc_call_reply(s->call, s->msg, s->size);
        slow_free(s);
}

static void slow_closed(rpc_call *c, void *userdata)
{
        slow_free(userdata);
}

static void slow(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        loop *l = userdata;
        struct slow *s = new0(struct slow, 1);
        if (!s || !(s->msg = malloc(size + 1)) ||
            loop_add_timer(l, 300 * NSEC_PER_MSEC, slow_fire, s, &s->timer) < 0) {
                if (s)
                        free(s->msg);
                free(s);
                (void)rpc_call_fail(c, GRPC_RESOURCE_EXHAUSTED, NULL);
                return;
        }
        memcpy(s->msg, msg, size);
        s->size = size;
        s->call = c;
        rpc_call_set_close_handler(c, slow_closed, s);
}

struct tick {
        rpc_call *call;
        loop_source *timer;
        unsigned i, n;
};

static void tick_free(struct tick *t)
{
        loop_source_free(t->timer);
        free(t);
}

static void tick_closed(rpc_call *c, void *userdata)
{
        tick_free(userdata);
}

static void tick_fire(loop_source *s, void *userdata)
{
        struct tick *t = userdata;
        char buf[32];
        int n = snprintf(buf, sizeof buf, "tick-%u", t->i++);
        (void)rpc_call_send(t->call, (const uint8_t *)buf, (size_t)n);
        if (t->i < t->n) {
                loop_timer_arm(t->timer, 20 * NSEC_PER_MSEC);
                return;
        }
        (void)rpc_call_fail(t->call, GRPC_OK, NULL);
        tick_free(t);
}

static void tick(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        char buf[16] = "";
        memcpy(buf, msg, MIN(size, sizeof buf - 1));
        struct tick *t = new0(struct tick, 1);
        if (!t || loop_add_timer(userdata, 20 * NSEC_PER_MSEC, tick_fire, t, &t->timer) < 0) {
                free(t);
                (void)rpc_call_fail(c, GRPC_RESOURCE_EXHAUSTED, NULL);
                return;
        }
        t->call = c;
        t->n = (unsigned)strtoul(buf, NULL, 10);
        rpc_call_set_close_handler(c, tick_closed, t);
}

static void fail(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        char buf[256] = "";
        int code = 0, off = 0;
        memcpy(buf, msg, MIN(size, sizeof buf - 1));
        if (sscanf(buf, "%d %n", &code, &off) < 1)
                code = GRPC_UNKNOWN;
        (void)rpc_call_fail(c, code, "%s", buf + off);
}

static void stats(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)
{
        char buf[64];
        int n = snprintf(buf, sizeof buf, "closed=%u connections=%zu", n_closed,
                         rpc_server_connections(server));
        (void)rpc_call_reply(c, (const uint8_t *)buf, (size_t)n);
}

static void on_signal(loop_source *s, int signo, void *userdata)
{
        loop_exit(userdata, 0);
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
                return 2;
        }
        _cleanup_(loop_freep) loop *l = NULL;
        if (loop_new(&l) < 0)
                return 1;
        const struct rpc_method methods[] = {
                { "/test.Test/Echo", RPC_UNARY, echo },
                { "/test.Test/Stream", RPC_SERVER_STREAM, stream },
                { "/test.Test/Hold", RPC_SERVER_STREAM, hold },
                { "/test.Test/Slow", RPC_UNARY, slow },
                { "/test.Test/Fail", RPC_UNARY, fail },
                { "/test.Test/Tick", RPC_SERVER_STREAM, tick },
                { "/test.Test/Stats", RPC_UNARY, stats },
        };
        int r = rpc_server_new(l, methods, ELEMENTSOF(methods), l, &server);
        if (r >= 0)
                r = rpc_server_listen(server, argv[1]);
        if (r < 0) {
                fprintf(stderr, "Failed to serve %s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        (void)loop_add_signal(l, SIGTERM, on_signal, l, NULL);
        (void)loop_add_signal(l, SIGINT, on_signal, l, NULL);
        printf("ready\n");
        fflush(stdout);
        r = loop_run(l);
        server = rpc_server_free(server);
        return r < 0 ? 1 : 0;
}
