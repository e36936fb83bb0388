/* SPDX-License-Identifier: Apache-2.0 */
/* Allocation failures on purpose in the serving path: a real endpoint (src/plugin/endpoint.c: its gRPC
 * server, Allocate and ListAndWatch handlers, allocate_container and the response packing) on a socket,
 * and a client that connects, calls Allocate, opens ListAndWatch and goes away. The scenario runs once to
 * count the allocations made on the serving side, then again failing allocation 1, 2, ... N. Each run must
 * end (no hang), leave no block allocated, and the client must see a clean outcome: the right answer, a
 * gRPC error status, or the connection closed. The test client's own allocations are never failed or
 * counted. Skipped under ASan and valgrind, which own malloc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/un.h>

#include "base/log.h"
#include "base/strv.h"
#include "config/config.h"
#include "deviceplugin.pb-c.h"
#include "plugin/kubelet-wire.h"
#include "plugin/plugin-internal.h"
#include "resource/plan.h"
#include "rpc-peer.c"
#include "test-plan-inventories.h"

/* Under ASan the interposer is off and the test skips: its helpers are then unused. */
#include "failmalloc.h"

#define U(i) "GPU-00000000-0000-0000-0000-00000000000" #i

static char dir[] = "/tmp/nvdp-test-failmalloc-XXXXXX";

enum outcome { OUTCOME_ANSWERED, OUTCOME_ERROR, OUTCOME_SETUP_FAILED, OUTCOME_HUNG, OUTCOME_WRONG };

_unused_ static const char *outcome_name(enum outcome o)
{
        static const char *const names[] = { "answered", "error", "setup failed", "hung", "wrong answer" };
        return names[o];
}

/* Allocate: the answer, or an error status, or the stream reset. ListAndWatch: the list, or the stream
 * ended with an error status or reset. Wrong: an OK status without a message, a list stream ended OK. */
static enum outcome judge(const struct peer_stream *a, const struct peer_stream *w)
{
        bool a_ok = has_line(a->trailers, "grpc-status: 0") || has_line(a->headers, "grpc-status: 0");
        bool w_ok_end = has_line(w->trailers, "grpc-status: 0") || has_line(w->headers, "grpc-status: 0");
        if ((a_ok && a->data_len <= 5) || w_ok_end)
                return OUTCOME_WRONG;
        if (a_ok && a->data_len > 5 && w->data_len > 5)
                return OUTCOME_ANSWERED;
        return OUTCOME_ERROR;
}

struct fixture {
        inventory *inv;
        config *config;
        plan *plan;
        uint8_t *alloc_req;
        size_t alloc_req_len;
        uint8_t *empty_req;
        size_t empty_req_len;
};

/* One scenario. Serving-side work runs armed; the client (peer_*) runs unarmed. */
_unused_ static enum outcome scenario(struct fixture *fx)
{
        enum outcome o = OUTCOME_HUNG;
        char *control[] = { NULL };
        plugin p = {
                .config = fx->config,
                .inventory = fx->inv,
                .plan = fx->plan,
                .control_devices = control,
                .socket_dir = dir,
        };
        endpoint *e = NULL;
        struct peer peer = { .fd = -1 };

#if FAILMALLOC
        armed = true;
#endif
        int r = loop_new(&p.loop);
        if (r >= 0)
                r = endpoint_new(&p, &fx->plan->resources[0], &e);
        if (r >= 0)
                r = endpoint_start(e);
#if FAILMALLOC
        armed = false;
#endif
        if (r < 0) {
                assert_int_equal(r, -ENOMEM);
                o = OUTCOME_SETUP_FAILED;
                goto done;
        }

        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/nvidia-gpu.sock", dir);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(peer_init(&peer, fd, false, NULL, 0, true), 0);
        int32_t alloc = peer_request(&peer, DP_PATH_ALLOCATE, "application/grpc", "POST", fx->alloc_req,
                                     fx->alloc_req_len, 0, true, NULL, 0);
        int32_t watch = peer_request(&peer, DP_PATH_LIST_WATCH, "application/grpc", "POST", fx->empty_req,
                                     fx->empty_req_len, 0, true, NULL, 0);
        for (int i = 0; i < 3000; i++) {
                peer_io(&peer);
                struct peer_stream *a = peer_stream(&peer, alloc), *w = peer_stream(&peer, watch);
                bool alloc_done = a->closed, watch_done = w->data_len > 0 || w->closed;
                if ((alloc_done && watch_done) || peer.eof || peer.goaway) {
                        o = judge(a, w);
                        break;
                }
#if FAILMALLOC
                armed = true;
#endif
                loop_run_once(p.loop, i < 100 ? 0 : NSEC_PER_MSEC);
#if FAILMALLOC
                armed = false;
#endif
        }
        if (o == OUTCOME_ANSWERED) {
                /* the answer is the real one: GPU 3's UUID in NVIDIA_VISIBLE_DEVICES */
                struct peer_stream *a = peer_stream(&peer, alloc);
                V1beta1__AllocateResponse *resp =
                        v1beta1__allocate_response__unpack(NULL, a->data_len - 5, a->data + 5);
                if (!resp || resp->n_container_responses != 1 || resp->container_responses[0]->n_envs != 1 ||
                    !streq(resp->container_responses[0]->envs[0]->value, U(3)))
                        o = OUTCOME_WRONG;
                v1beta1__allocate_response__free_unpacked(resp, NULL);
        }
        if (o == OUTCOME_WRONG && getenv("FAILMALLOC_DEBUG")) {
                struct peer_stream *a = peer_stream(&peer, alloc), *w = peer_stream(&peer, watch);
                fprintf(stderr, "allocate: closed=%d data=%zu headers:\n%strailers:\n%s\n", a->closed,
                        a->data_len, a->headers, a->trailers);
                fprintf(stderr, "watch: closed=%d data=%zu headers:\n%strailers:\n%s\n", w->closed,
                        w->data_len, w->headers, w->trailers);
        }
        /* the client goes away; the server must drop its stream */
        peer_done(&peer);
#if FAILMALLOC
        armed = true;
#endif
        for (int i = 0; i < 1000 && endpoint_streams(e) > 0; i++)
                loop_run_once(p.loop, NSEC_PER_MSEC);
        if (endpoint_streams(e) > 0)
                o = OUTCOME_HUNG;
done:
#if FAILMALLOC
        armed = true;
#endif
        endpoint_free(e);
        loop_free(p.loop);
#if FAILMALLOC
        armed = false;
#endif
        return o;
}

static int setup(void **state)
{
        log_set_max_level(LOG_ERR - 1); /* quiet: thousands of runs */
        if (!mkdtemp(dir))
                return -1;
        struct fixture *fx = new0(struct fixture, 1);
        fx->inv = fixture_h100x8();
        _cleanup_free_ char *err = NULL;
        if (config_new_default(&fx->config) < 0 || plan_build(fx->inv, fx->config, &fx->plan, &err) < 0)
                return -1;
        char *ids[] = { U(3) };
        V1beta1__ContainerAllocateRequest c = V1BETA1__CONTAINER_ALLOCATE_REQUEST__INIT;
        c.devices_ids = ids;
        c.n_devices_ids = 1;
        V1beta1__ContainerAllocateRequest *cs[] = { &c };
        V1beta1__AllocateRequest req = V1BETA1__ALLOCATE_REQUEST__INIT;
        req.container_requests = cs;
        req.n_container_requests = 1;
        size_t n = protobuf_c_message_get_packed_size(&req.base);
        _cleanup_free_ uint8_t *packed = malloc(n + 1);
        if (!packed || protobuf_c_message_pack(&req.base, packed) != n)
                return -1;
        fx->alloc_req = grpc_frame(packed, n, &fx->alloc_req_len);
        fx->empty_req = grpc_frame("", 0, &fx->empty_req_len);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        plan_free(fx->plan);
        config_free(fx->config);
        fixture_inventory_free(fx->inv);
        free(fx->alloc_req);
        free(fx->empty_req);
        free(fx);
        rmdir(dir);
        return 0;
}

static void test_failmalloc_serving(void **state)
{
#if FAILMALLOC
        const char *preload = getenv("LD_PRELOAD");
        if (preload && strstr(preload, "vgpreload"))
                skip();
        struct fixture *fx = *state;

        n_allocs = live = 0;
        countdown = -1;
        enum outcome o = scenario(fx);
        long total = n_allocs, leaked = live;
        assert_int_equal(o, OUTCOME_ANSWERED);
        assert_int_equal(leaked, 0);
        assert_true(total > 30);

        long counts[5] = { 0 };
        for (long i = 0; i < total; i++) {
                n_allocs = live = 0;
                countdown = i;
                o = scenario(fx);
                leaked = live;
                if (o == OUTCOME_HUNG || o == OUTCOME_WRONG || leaked != 0)
                        fail_msg("failing allocation %ld of %ld: %s, %ld blocks leaked", i + 1, total,
                                 outcome_name(o), leaked);
                counts[o]++;
        }
        print_message("failmalloc rpc+allocate: %ld allocations; failing each in turn: %ld answered anyway, "
                      "%ld gRPC errors or closed connections, %ld failed at setup with -ENOMEM\n",
                      total, counts[OUTCOME_ANSWERED], counts[OUTCOME_ERROR], counts[OUTCOME_SETUP_FAILED]);
#else
        skip();
#endif
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_failmalloc_serving),
        };
        return cmocka_run_group_tests_name("failmalloc-rpc", tests, setup, teardown);
}
