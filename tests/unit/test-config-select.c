/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include <sys/stat.h>

#include "base/fileio.h"
#include "config/config.h"

static char dir[64];

static void add(const char *name)
{
        _cleanup_free_ char *p = path_join_root(dir, name);
        assert_int_equal(write_file_atomic(p, "version: v1\n", 12, 0644), 1);
}

static int setup(void **state)
{
        snprintf(dir, sizeof dir, "/tmp/nvdp-select-XXXXXX");
        assert_non_null(mkdtemp(dir));
        /* a ConfigMap volume: the configs plus its own "..data" entries */
        add("/default");
        add("/a100-mig");
        add("/..data");
        return 0;
}

static int teardown(void **state)
{
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        return system(cmd);
}

static void expect(const char *label, const char *def, const char *fallbacks, const char *want,
                   const char *want_why)
{
        _cleanup_free_ char *got = NULL, *why = NULL, *err = NULL, *full = NULL;
        assert_int_equal(config_select_file(dir, label, def, fallbacks, &got, &why, &err), 0);
        assert_string_equal(why, want_why);
        if (streq(want, "/dev/null"))
                assert_string_equal(got, want);
        else {
                full = path_join_root(dir, want);
                assert_string_equal(got, full);
        }
}

static void test_label_then_default_then_fallbacks(void **state)
{
        expect("a100-mig", "default", "named,single", "/a100-mig",
               "node label nvidia.com/device-plugin.config=a100-mig");
        expect(NULL, "a100-mig", "named,single", "/a100-mig", "DEFAULT_CONFIG=a100-mig");
        expect("", NULL, "named,single", "/default", "fallback \"named\"");
        expect(NULL, "missing", "named", "/default", "fallback \"named\"");
        expect(NULL, NULL, "empty", "/dev/null", "fallback \"empty\"");
}

static void test_single(void **state)
{
        _cleanup_free_ char *p = path_join_root(dir, "/default");
        assert_int_equal(unlink(p), 0);
        expect(NULL, NULL, "named,single", "/a100-mig", "fallback \"single\"");
        _cleanup_free_ char *got = NULL, *err = NULL;
        assert_int_equal(config_select_file(dir, NULL, NULL, "named", &got, NULL, &err), -ENOENT);
        assert_non_null(strstr(err, "no fallback applies"));
        add("/default");
}

static void test_errors_name_the_input(void **state)
{
        _cleanup_free_ char *got = NULL, *err = NULL, *err2 = NULL, *want = NULL;
        assert_int_equal(config_select_file(dir, "h100-shared", "default", "named", &got, NULL, &err),
                         -ENOENT);
        assert_true(asprintf(&want,
                             "node label nvidia.com/device-plugin.config=h100-shared names no config in %s "
                             "(have: a100-mig, default)",
                             dir) > 0);
        assert_string_equal(err, want);
        assert_null(got);
        assert_int_equal(config_select_file(dir, NULL, NULL, "sometimes", &got, NULL, &err2), -EINVAL);
        assert_string_equal(err2,
                            "FALLBACK_STRATEGIES: unknown strategy \"sometimes\" (named, single, empty)");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_label_then_default_then_fallbacks),
                cmocka_unit_test(test_single),
                cmocka_unit_test(test_errors_name_the_input),
        };
        return cmocka_run_group_tests_name("config-select", tests, setup, teardown);
}
