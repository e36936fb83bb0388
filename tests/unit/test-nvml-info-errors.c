/* SPDX-License-Identifier: Apache-2.0 */
/* `nvdp info` on bad input, as a person sees it: a short error on stderr, a non-zero exit, never a
 * crash. Runs the real binary against the simulated NVML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <sys/wait.h>

#include "base/fileio.h"

static char build[512], fixtures[512];
static char tmp[] = "/tmp/nvdp-test-info-XXXXXX";

static int setup(void **state)
{
        const char *b = getenv("NVDP_BUILD"), *src = getenv("NVDP_SRC");
        snprintf(build, sizeof(build), "%s", b ? b : "build");
        snprintf(fixtures, sizeof(fixtures), "%s/mock/nvml/fixtures", src ? src : ".");
        return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        return system(cmd) == 0 ? 0 : -1;
}

struct result {
        int exit_code; /* -1: killed by a signal */
        char *out, *err;
        unsigned err_lines;
};

static void result_done(struct result *r)
{
        free(r->out);
        free(r->err);
}

/* Runs "env... nvdp info args" through sh, capturing stdout and stderr. */
static struct result run(const char *env, const char *args)
{
        char cmd[4096], out[600], err[600];
        struct result r = {};
        const char *exec = getenv("NVDP_TEST_EXEC"); /* e.g. qemu-aarch64 for a cross build */

        snprintf(out, sizeof(out), "%s/out", tmp);
        snprintf(err, sizeof(err), "%s/err", tmp);
        snprintf(cmd, sizeof(cmd),
                 "env -u MOCK_NVML_EVENTS -u NVIDIA_DRIVER_ROOT -u NVDP_ROOT %s %s '%s/nvdp' info %s >'%s' "
                 "2>'%s'",
                 env, exec ? exec : "", build, args, out, err);
        int status = system(cmd);
        assert_true(status != -1);
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        assert_int_equal(read_full_file(out, 1 << 20, &r.out, NULL), 0);
        assert_int_equal(read_full_file(err, 1 << 20, &r.err, NULL), 0);
        for (const char *p = r.err; *p; p++)
                r.err_lines += *p == '\n';
        return r;
}

static void write_fixture(const char *name, const char *yaml)
{
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", tmp, name);
        assert_true(write_file_atomic(path, yaml, strlen(yaml), 0644) >= 0);
}

static void test_no_library(void **state)
{
        char env[1200];
        void *real = dlopen("libnvidia-ml.so.1", RTLD_NOW);
        if (real) {
                /* A host with a real driver cannot show "no library" through the default search. */
                dlclose(real);
                skip();
        }
        snprintf(env, sizeof(env), "LD_LIBRARY_PATH=%s/nowhere", tmp);
        struct result r = run(env, "--driver-root /nonexistent-driver-root");
        assert_int_equal(r.exit_code, 2);
        assert_string_equal(r.out, "");
        assert_int_equal(r.err_lines, 1);
        assert_non_null(strstr(r.err, "nvdp info: NVML library libnvidia-ml.so.1 not found (is the NVIDIA "
                                      "driver installed?): looked in /nonexistent-driver-root/usr/lib64, "));
        assert_non_null(strstr(r.err, "LD_LIBRARY_PATH="));
        result_done(&r);
}

static void test_missing_symbol(void **state)
{
        char cmd[2048], env[64];
        const char *cc = getenv("CC"); /* the build's compiler: a cross build loads only its own arch */
        /* A driver root whose libnvidia-ml.so.1 has nvmlInit_v2 and little else. */
        snprintf(cmd, sizeof(cmd),
                 "mkdir -p '%s/root/usr/lib64' && echo 'int nvmlInit_v2(void) { return 0; }' > '%s/tiny.c' "
                 "&& "
                 "%s -shared -fPIC -o '%s/root/usr/lib64/libnvidia-ml.so.1' '%s/tiny.c'",
                 tmp, tmp, cc && *cc ? cc : "cc", tmp, tmp);
        assert_int_equal(system(cmd), 0);
        snprintf(env, sizeof(env), "LD_LIBRARY_PATH=/nonexistent");
        char args[700];
        snprintf(args, sizeof(args), "--driver-root '%s/root'", tmp);
        struct result r = run(env, args);
        assert_int_equal(r.exit_code, 2);
        assert_int_equal(r.err_lines, 1);
        assert_non_null(strstr(r.err, "lacks the required symbol nvmlShutdown"));
        result_done(&r);
}

/* The mock writes its one line naming file, line and key; nvdp adds its own one line. */
static void check_fixture_error(const char *name, const char *yaml, const char *want)
{
        char env[2048], path[600];
        write_fixture(name, yaml);
        snprintf(path, sizeof(path), "%s/%s", tmp, name);
        snprintf(env, sizeof(env), "LD_LIBRARY_PATH='%s/mock-nvml' MOCK_NVML_FIXTURE='%s'", build, path);
        struct result r = run(env, "");
        assert_int_equal(r.exit_code, 2);
        assert_string_equal(r.out, "");
        char *first_nl = strchr(r.err, '\n');
        assert_non_null(first_nl);
        *first_nl = '\0';
        char expect[1200];
        if (isempty(want))
                snprintf(expect, sizeof(expect), "mock-nvml: fixture %s: the file is empty", path);
        else
                snprintf(expect, sizeof(expect), "mock-nvml: fixture %s %s", path, want);
        assert_string_equal(r.err, expect);
        assert_string_equal(first_nl + 1, "nvdp info: nvmlInit_v2 failed: Unknown Error.\n");
        assert_int_equal(r.err_lines, 2);
        result_done(&r);
}

static void test_malformed_fixture(void **state)
{
        check_fixture_error(
                "malformed.yaml",
                "driver_version: \"1.0\"\ncuda_driver_version: 12000\ngpus:\n  - name: [unclosed\n",
                "line 5: malformed YAML: did not find expected ',' or ']'");
}

static void test_unknown_key(void **state)
{
        check_fixture_error("unknown.yaml",
                            "driver_version: \"1.0\"\ncuda_driver_version: 12000\ngpus:\n"
                            "  - name: \"NVIDIA X\"\n    uuid: GPU-1\n    colour: green\n",
                            "line 6: unknown key 'colour' in a GPU");
}

static void test_bad_value(void **state)
{
        check_fixture_error("badvalue.yaml",
                            "driver_version: \"1.0\"\ncuda_driver_version: 12000\ngpus:\n"
                            "  - name: \"NVIDIA X\"\n    memory_mib: lots\n",
                            "line 5: key 'memory_mib' expects a number up to 4294967296, got 'lots'");
}

/* Found by fuzzing (tests/fuzz, mock-fixture): a bus id without the function part crashed the reader. */
static void test_bus_id_without_function(void **state)
{
        check_fixture_error(
                "busid.yaml",
                "driver_version: \"1.0\"\ncuda_driver_version: 12000\ngpus:\n"
                "  - name: \"NVIDIA X\"\n    bus_id: \"0:1b:0\"\n",
                "line 5: key 'bus_id' expects a PCI address like 00000000:1B:00.0, got '0:1b:0'");
}

static void test_repeated_key(void **state)
{
        check_fixture_error("repeated.yaml",
                            "driver_version: \"1.0\"\ncuda_driver_version: 12000\ngpus:\n"
                            "  - name: \"NVIDIA X\"\n    name: \"NVIDIA Y\"\n",
                            "line 5: key 'name' appears twice");
}

static void test_empty_fixture(void **state)
{
        check_fixture_error("empty.yaml", "", "");
}

static void test_missing_fixture(void **state)
{
        char env[1200];
        snprintf(env, sizeof(env), "LD_LIBRARY_PATH='%s/mock-nvml' MOCK_NVML_FIXTURE=/nonexistent.yaml",
                 build);
        struct result r = run(env, "");
        assert_int_equal(r.exit_code, 2);
        assert_string_equal(r.err,
                            "mock-nvml: cannot open fixture /nonexistent.yaml: No such file or directory\n"
                            "nvdp info: nvmlInit_v2 failed: Unknown Error.\n");
        result_done(&r);
}

static void test_bad_flag(void **state)
{
        struct result r = run("", "--frobnicate");
        assert_int_equal(r.exit_code, 2);
        assert_string_equal(r.err, "nvdp info: unknown flag --frobnicate\n");
        result_done(&r);
        r = run("", "extra");
        assert_int_equal(r.exit_code, 2);
        assert_string_equal(r.err, "nvdp info: unexpected argument \"extra\"\n");
        result_done(&r);
}

/* The good path, for contrast: the H100 fixture with its sysfs tree from NVDP_ROOT. */
static void test_info_ok(void **state)
{
        char env[2048];
        snprintf(env, sizeof(env),
                 "LD_LIBRARY_PATH='%s/mock-nvml' MOCK_NVML_FIXTURE='%s/dgx-h100.yaml' "
                 "NVDP_ROOT='%s/dgx-h100.root'",
                 build, fixtures, fixtures);
        struct result r = run(env, "");
        assert_int_equal(r.exit_code, 0);
        assert_string_equal(r.err, "");
        assert_non_null(strstr(r.out, "Driver 580.105.08, CUDA 13.0, NVML 13.580.105.08\n"));
        assert_non_null(strstr(r.out, "GPUs (8):\n"));
        assert_non_null(strstr(r.out,
                               "  7   7     GPU-0a7c3e85-9b4f-4d1e-a2c3-4e5f6a7b8c78 NVIDIA H100 80GB HBM3"
                               "         81559 MiB  0000:df:00.0 1    9.0 0x030200 hopper  capable\n"));
        assert_non_null(strstr(r.out, "  GPU0       X   NV18   NV18"));
        result_done(&r);

        r = run(env, "--json");
        assert_int_equal(r.exit_code, 0);
        assert_non_null(strstr(r.out, "\"cuda_driver_version\": 13000"));
        assert_non_null(strstr(
                r.out, "\"bus_id\": \"0000:9d:00.0\", \"pci_class\": \"0x030200\", \"numa_node\": 1"));
        assert_non_null(
                strstr(r.out, "{\"a\": 3, \"b\": 4, \"nvlinks\": 18, \"pcie\": \"SYS\", \"score\": 1800}"));
        result_done(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_library),
                cmocka_unit_test(test_missing_symbol),
                cmocka_unit_test(test_malformed_fixture),
                cmocka_unit_test(test_unknown_key),
                cmocka_unit_test(test_bus_id_without_function),
                cmocka_unit_test(test_bad_value),
                cmocka_unit_test(test_repeated_key),
                cmocka_unit_test(test_empty_fixture),
                cmocka_unit_test(test_missing_fixture),
                cmocka_unit_test(test_bad_flag),
                cmocka_unit_test(test_info_ok),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
