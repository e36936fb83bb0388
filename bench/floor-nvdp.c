/* SPDX-License-Identifier: Apache-2.0 */
/* The latency floor of nvdp's own stack: a gRPC server on src/rpc (the loop, HTTP/2, gRPC framing the
 * plugin uses) that answers each method with fixed bytes and does no other work. The bench gives it the
 * plugin's own replies, so the same request gets the same response bytes: nvdp's latency minus this one's
 * is what its handlers cost. Not part of nvdp.
 *
 * Usage: floor-nvdp SOCKET METHOD=REPLYFILE...
 *   METHOD is a gRPC path ("/v1beta1.DevicePlugin/Allocate"); REPLYFILE holds the reply message (protobuf
 *   bytes, without the 5-byte gRPC prefix). Prints "ready" once listening; SIGTERM ends it. */
#include <signal.h>
#include <stdio.h>

#include "base/fileio.h"
#include "base/parse.h"
#include "rpc/rpc.h"

#define METHODS_MAX 8

struct reply {
        const char *path;
        char *msg;
        size_t size;
};

static struct reply replies[METHODS_MAX];
static size_t n_replies;

/* One handler per method (the server routes on the path), each answering with its own reply. */
static void answer(rpc_call *c, size_t i)
{
        (void)rpc_call_reply(c, (const uint8_t *)replies[i].msg, replies[i].size);
}

#define ANSWER(i)                                                                                           \
        static void answer##i(rpc_call *c, const uint8_t *msg, size_t size, void *userdata)                \
        {                                                                                                   \
                answer(c, i);                                                                               \
        }
ANSWER(0)
ANSWER(1)
ANSWER(2)
ANSWER(3)
ANSWER(4)
ANSWER(5)
ANSWER(6)
ANSWER(7)
static const rpc_handler answers[METHODS_MAX] = { answer0, answer1, answer2, answer3,
                                                  answer4, answer5, answer6, answer7 };

static void on_signal(loop_source *s, int signo, void *userdata)
{
        loop_exit(userdata, 0);
}

int main(int argc, char **argv)
{
        struct rpc_method methods[METHODS_MAX];
        if (argc < 3 || argc - 2 > METHODS_MAX) {
                fprintf(stderr, "usage: floor-nvdp SOCKET METHOD=REPLYFILE... (at most %d)\n", METHODS_MAX);
                return 2;
        }
        for (int i = 2; i < argc; i++) {
                char *eq = strchr(argv[i], '=');
                if (!eq || eq == argv[i]) {
                        fprintf(stderr, "floor-nvdp: %s: expected METHOD=REPLYFILE\n", argv[i]);
                        return 2;
                }
                *eq = '\0';
                struct reply *r = &replies[n_replies];
                int k = read_full_file(eq + 1, RPC_MAX_MESSAGE, &r->msg, &r->size);
                if (k < 0) {
                        fprintf(stderr, "floor-nvdp: %s: %s\n", eq + 1, strerror(-k));
                        return 1;
                }
                r->path = argv[i];
                methods[n_replies] = (struct rpc_method){ argv[i], RPC_UNARY, answers[n_replies] };
                n_replies++;
        }

        _cleanup_(loop_freep) loop *l = NULL;
        rpc_server *server = NULL;
        static const int handled[] = { SIGTERM, SIGINT, 0 };
        int r = signals_block(handled);
        if (r >= 0)
                r = loop_new(&l);
        if (r >= 0)
                r = rpc_server_new(l, methods, n_replies, NULL, &server);
        if (r >= 0)
                r = rpc_server_listen(server, argv[1]);
        if (r >= 0)
                r = loop_add_signal(l, SIGTERM, on_signal, l, NULL);
        if (r >= 0)
                r = loop_add_signal(l, SIGINT, on_signal, l, NULL);
        if (r < 0) {
                fprintf(stderr, "floor-nvdp: %s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        printf("ready\n");
        fflush(stdout);
        r = loop_run(l);
        server = rpc_server_free(server);
        for (size_t i = 0; i < n_replies; i++)
                free(replies[i].msg);
        return r < 0 ? 1 : 0;
}
