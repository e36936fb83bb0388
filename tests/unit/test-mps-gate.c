/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin daemon's MPS readiness gate (src/daemon/mps-gate.c) on a temporary MPS root: inotify sees
 * the resource's directories and .started appear and go, the socket probe decides on each change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include <ftw.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "base/fileio.h"
#include "base/parse.h"
#include "base/strv.h"
#include "daemon/mps-gate.h"
#include "mps/mps-root.h"
#include "test-plan-inventories.h"

struct calls {
        unsigned n;
        bool ready;
        char resource[64];
        char why[512];
};

static void on_change(const char *resource, bool ready, const char *why, void *userdata)
{
        struct calls *c = userdata;
        c->n++;
        c->ready = ready;
        snprintf(c->resource, sizeof c->resource, "%s", resource);
        snprintf(c->why, sizeof c->why, "%s", strempty(why));
}

/* The whole GPUs and, with mps, GPUs 0 and 1 as nvidia.com/gpu.mps x 4. */
static plan *plan_of(const inventory *inv, bool mps)
{
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(config_new_default(&c), 0);
        if (mps) {
                c->sharing.strategy = SHARING_MPS;
                c->sharing.resources = new0(struct replicated_resource, 1);
                c->sharing.resources[0] = (struct replicated_resource){
                        .name = strdup("nvidia.com/gpu"),
                        .rename = strdup("nvidia.com/gpu.mps"),
                        .replicas = 4,
                };
                assert_int_equal(strv_extend(&c->sharing.resources[0].devices_list, "0"), 0);
                assert_int_equal(strv_extend(&c->sharing.resources[0].devices_list, "1"), 0);
                c->sharing.n_resources = 1;
        }
        plan *p = NULL;
        _cleanup_free_ char *error = NULL;
        assert_int_equal(plan_build(inv, c, &p, &error), 0);
        return p;
}

/* Runs the loop until the handler was called n times in all, or 2 s passed. */
static void run_until(loop *l, const struct calls *c, unsigned n)
{
        uint64_t end = now_nsec() + 2 * NSEC_PER_SEC;
        while (c->n < n && now_nsec() < end)
                (void)loop_run_once(l, 50 * NSEC_PER_MSEC);
        assert_int_equal(c->n, n);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

static void test_gate_follows_started_and_the_socket(void **state)
{
        char root[] = "/tmp/nvdp-test-mps-gate-XXXXXX";
        assert_non_null(mkdtemp(root));
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(plan_freep) plan *p = plan_of(inv, true);
        _cleanup_(plan_freep) plan *whole = plan_of(inv, false);
        const struct plan_resource *gpu = plan_find_resource(p, "nvidia.com/gpu");
        const struct plan_resource *mps = plan_find_resource(p, "nvidia.com/gpu.mps");
        assert_non_null(gpu);
        assert_non_null(mps);
        _cleanup_(loop_freep) loop *l = NULL;
        assert_int_equal(loop_new(&l), 0);
        struct calls calls = {};
        _cleanup_(mps_gate_freep) mps_gate *g = NULL;
        assert_int_equal(mps_gate_new(l, on_change, &calls, &g), 0);

        /* before any plan: an MPS resource is not ready, the others always are */
        assert_false(mps_gate_ready(g, mps));
        assert_true(mps_gate_ready(g, gpu));

        /* nothing under the root yet: told once, not ready */
        assert_int_equal(mps_gate_set_plan(g, root, p, NULL), 0);
        assert_int_equal(calls.n, 1);
        assert_string_equal(calls.resource, "nvidia.com/gpu.mps");
        assert_false(calls.ready);
        _cleanup_free_ char *started = mps_path(root, "nvidia.com/gpu.mps", MPS_STARTED_FILE);
        _cleanup_free_ char *why = NULL;
        assert_true(asprintf(&why, "%s is missing", started) > 0);
        assert_string_equal(calls.why, why);
        assert_true(mps_gate_ready(g, gpu));

        /* the daemon's directories appear level by level, then its socket and .started: ready */
        _cleanup_free_ char *pipe = mps_path(root, "nvidia.com/gpu.mps", MPS_PIPE_DIR);
        _cleanup_free_ char *sock =
                mps_path(root, "nvidia.com/gpu.mps", MPS_PIPE_DIR "/" MPS_CONTROL_SOCKET);
        assert_int_equal(mps_mkdir_p(pipe, 0755), 0);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        assert_true(strlen(sock) < sizeof sa.sun_path);
        strcpy(sa.sun_path, sock);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(listen(fd, 4), 0);
        (void)loop_run_once(l, 100 * NSEC_PER_MSEC);
        assert_int_equal(calls.n, 1); /* directories alone change nothing */
        assert_int_equal(write_file_atomic(started, "", 0, 0644), 1);
        run_until(l, &calls, 2);
        assert_true(calls.ready);
        assert_true(mps_gate_ready(g, mps));

        /* a reload with the same resource keeps what was seen, and says nothing */
        assert_int_equal(mps_gate_set_plan(g, root, p, NULL), 0);
        assert_int_equal(calls.n, 2);
        assert_true(mps_gate_ready(g, mps));

        /* .started gone: not ready */
        assert_int_equal(unlink(started), 0);
        run_until(l, &calls, 3);
        assert_false(calls.ready);
        assert_false(mps_gate_ready(g, mps));

        /* .started back but nobody listens (a daemon killed without cleaning up): not ready, and why */
        close(fd);
        assert_int_equal(write_file_atomic(started, "", 0, 0644), 1);
        (void)loop_run_once(l, 200 * NSEC_PER_MSEC);
        assert_int_equal(calls.n, 3);
        assert_false(mps_gate_ready(g, mps));

        /* a plan without MPS: nothing watched, nothing held back */
        assert_int_equal(mps_gate_set_plan(g, root, whole, NULL), 0);
        assert_true(mps_gate_ready(g, plan_find_resource(whole, "nvidia.com/gpu")));

        nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_gate_without_a_root(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(plan_freep) plan *p = plan_of(inv, true);
        _cleanup_(loop_freep) loop *l = NULL;
        assert_int_equal(loop_new(&l), 0);
        struct calls calls = {};
        _cleanup_(mps_gate_freep) mps_gate *g = NULL;
        assert_int_equal(mps_gate_new(l, on_change, &calls, &g), 0);
        _cleanup_free_ char *error = NULL;
        assert_int_equal(mps_gate_set_plan(g, "/nonexistent/mps", p, &error), -ENOENT);
        if (access(MPS_CONTAINER_ROOT, F_OK) < 0)
                assert_string_equal(error,
                                    "the MPS root is not a directory here: neither /nonexistent/mps "
                                    "(--mps-root, MPS_ROOT or flags.mpsRoot) nor /mps (where upstream's "
                                    "chart mounts it)");
        assert_int_equal(calls.n, 0);
        assert_false(mps_gate_ready(g, plan_find_resource(p, "nvidia.com/gpu.mps")));
        assert_true(mps_gate_ready(g, plan_find_resource(p, "nvidia.com/gpu")));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_gate_follows_started_and_the_socket),
                cmocka_unit_test(test_gate_without_a_root),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
