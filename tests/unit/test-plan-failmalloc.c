/* SPDX-License-Identifier: Apache-2.0 */
/* Allocation failures on purpose (nghttp2's failmalloc idea): run a scenario once to count its
 * allocations, then again failing allocation 1, 2, ... N. Each run must fail cleanly (< 0, no
 * crash) and leave no block allocated. malloc is interposed here; under ASan or valgrind (which
 * own malloc) the test is skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/strv.h"
#include "config/config.h"
#include "resource/plan.h"
#include "test-plan-inventories.h"

/* Under ASan the interposer is off and the test skips: its helpers are then unused. */
#include "failmalloc.h"

_unused_ static char *fixture(const char *name)
{
        const char *src = getenv("NVDP_SRC");
        char *p;
        assert_true(asprintf(&p, "%s/tests/unit/fixtures/config/%s", src ? src : ".", name) > 0);
        return p;
}

/* Config from flags and a file, plan on the A100 MIG node with shared MIG devices, YAML output. */
_unused_ static int scenario(const char *config_flag, inventory *inv)
{
        char *argv[] = { "nvidia-device-plugin", (char *)config_flag, "--mig-strategy=mixed", NULL };
        config *c = NULL;
        plan *p = NULL;
        char *err = NULL, *yaml = NULL;
        int r = config_from_args(PROGRAM_PLUGIN, 3, argv, &c, &err);
        if (r >= 0)
                r = config_format_yaml(c, &yaml);
        if (r >= 0)
                if (r >= 0)
                        r = plan_build(inv, c, &p, &err);
        /* libc may absorb a failed allocation (vasprintf retries); then the result must still be right */
        if (r >= 0) {
                const struct plan_resource *s = plan_find_resource(p, "nvidia.com/mig-1g.5gb.shared");
                if (p->n_resources != 5 || !s || s->n_devices != 4 ||
                    !streq(s->devices[3].id, "MIG-a1000000-0000-0000-0000-000000000000::1") ||
                    !streq(s->devices[3].paths[2], "/dev/nvidia-caps/nvidia-cap202") ||
                    !strstr(yaml, "      rename: \"nvidia.com/mig-1g.5gb.shared\"\n"))
                        r = -EBADMSG;
        }
        plan_free(p);
        config_free(c);
        free(err);
        free(yaml);
        return r;
}

static void test_failmalloc(void **state)
{
#if FAILMALLOC
        /* valgrind replaces malloc in the executable too, so these hooks never run there */
        const char *preload = getenv("LD_PRELOAD");
        if (preload && strstr(preload, "vgpreload"))
                skip();
        _cleanup_free_ char *file = fixture("devices-list-a100.yaml"), *root = fixture("a100-root"),
                            *flag = NULL;
        assert_true(asprintf(&flag, "--config-file=%s", file) > 0);
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        assert_int_equal(inventory_read_mig_minors(inv, root), 0);

        armed = true;
        n_allocs = live = 0;
        countdown = -1;
        int r = scenario(flag, inv);
        long total = n_allocs, leaked = live;
        armed = false;
        assert_int_equal(r, 0);
        assert_int_equal(leaked, 0);
        assert_true(total > 50);

        long failed = 0;
        for (long i = 0; i < total; i++) {
                armed = true;
                n_allocs = live = 0;
                countdown = i;
                r = scenario(flag, inv);
                leaked = live;
                armed = false;
                if (r == -EBADMSG || (r < 0 && r != -ENOMEM) || leaked != 0)
                        fail_msg("failing allocation %ld of %ld: r=%d, %ld blocks leaked", i + 1, total, r,
                                 leaked);
                failed += r < 0;
        }
        /* nearly every failure must surface as -ENOMEM; only libc-internal retries may absorb one (about
         * 48 of them, in config_format_yaml's stdio, whatever the plan's own count) */
        assert_true(failed > total * 4 / 5);
#else
        skip();
#endif
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_failmalloc),
        };
        return cmocka_run_group_tests_name("plan-failmalloc", tests, NULL, NULL);
}
