/* SPDX-License-Identifier: Apache-2.0 */
/* The NVML loader: where it looks, and its three distinct failures (no library, a library missing a
 * required symbol, nvmlInit_v2 failing), each with a message that says what a person needs to know. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>

#include "base/fileio.h"
#include "nvml/nvml.h"

static char mock_lib[512], fixtures[512];
static char tmp[] = "/tmp/nvdp-test-loader-XXXXXX";

static void sh(const char *fmt, ...) _printf_(1, 2);
static void sh(const char *fmt, ...)
{
        char cmd[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        if (system(cmd) != 0)
                fail_msg("command failed: %s", cmd);
}

static int setup(void **state)
{
        const char *build = getenv("NVDP_BUILD"), *src = getenv("NVDP_SRC");
        snprintf(mock_lib, sizeof(mock_lib), "%s/mock-nvml/libnvidia-ml.so.1", build ? build : "build");
        snprintf(fixtures, sizeof(fixtures), "%s/mock/nvml/fixtures", src ? src : ".");
        if (!mkdtemp(tmp))
                return -1;
        return 0;
}

static int teardown(void **state)
{
        sh("rm -rf '%s'", tmp);
        return 0;
}

/* A library with the first few required symbols only: nvmlDeviceGetCount_v2 is the first one missing. */
static void build_partial_library(const char *dir)
{
        sh("mkdir -p '%s'", dir);
        sh("printf '%%s\\n' 'int nvmlInit_v2(void) { return 0; }' 'int nvmlShutdown(void) { return 0; }' "
           "'const char *nvmlErrorString(int r) { return \"x\"; }' "
           "'int nvmlSystemGetDriverVersion(char *v, unsigned l) { return 0; }' "
           "'int nvmlSystemGetNVMLVersion(char *v, unsigned l) { return 0; }' "
           "'int nvmlSystemGetCudaDriverVersion(int *v) { return 0; }' > '%s/partial.c'",
           tmp);
        /* CC: the compiler of the build under test (a cross build loads only its own architecture). */
        const char *cc = getenv("CC");
        sh("%s -shared -fPIC -o '%s/libnvidia-ml.so.1' '%s/partial.c'", cc && *cc ? cc : "cc", dir, tmp);
}

static void test_not_found_under_driver_root(void **state)
{
        _cleanup_free_ char *error = NULL;
        nvml *n = NULL;
        char empty[600], want[4096];

        snprintf(empty, sizeof(empty), "%s/empty-root", tmp);
        sh("mkdir -p '%s'", empty);
        assert_int_equal(nvml_load_library(empty, "libnvdp-no-such-nvml.so.1", &n, &error), -EOPNOTSUPP);
        assert_null(n);
        assert_non_null(error);
        /* Names the library and every directory it tried, then the loader path. */
        assert_non_null(strstr(error, "NVML library libnvdp-no-such-nvml.so.1 not found"));
        snprintf(want, sizeof(want),
                 "%s/usr/lib64, %s/usr/lib/x86_64-linux-gnu, %s/usr/lib/aarch64-linux-gnu, "
                 "%s/lib64, %s/lib/x86_64-linux-gnu, %s/lib/aarch64-linux-gnu and the dynamic loader's path",
                 empty, empty, empty, empty, empty, empty);
        assert_non_null(strstr(error, want));
}

static void test_not_found_plain(void **state)
{
        _cleanup_free_ char *error = NULL;
        nvml *n = NULL;

        /* Root "/": only the loader path is searched, and the message says so. */
        assert_int_equal(nvml_load_library("/", "libnvdp-no-such-nvml.so.1", &n, &error), -EOPNOTSUPP);
        assert_non_null(strstr(error, "looked in the dynamic loader's path"));
        free(error);
        error = NULL;
        assert_int_equal(nvml_load_library(NULL, "/nonexistent/libnvidia-ml.so.1", &n, &error), -EOPNOTSUPP);
        assert_string_equal(error, "NVML library /nonexistent/libnvidia-ml.so.1 not found.");
}

static void test_missing_symbol(void **state)
{
        _cleanup_free_ char *error = NULL;
        nvml *n = NULL;
        char root[600], lib[700];

        snprintf(root, sizeof(root), "%s/partial-root", tmp);
        snprintf(lib, sizeof(lib), "%s/usr/lib64", root);
        build_partial_library(lib);
        /* Found through the driver root's usr/lib64, and refused as a whole. */
        assert_int_equal(nvml_load(root, &n, &error), -ELIBBAD);
        assert_null(n);
        assert_non_null(error);
        assert_non_null(strstr(error, "lacks the required symbol nvmlDeviceGetCount_v2"));
}

static void test_not_a_library(void **state)
{
        _cleanup_free_ char *error = NULL;
        nvml *n = NULL;
        char root[600], path[700];

        snprintf(root, sizeof(root), "%s/garbage-root", tmp);
        sh("mkdir -p '%s/lib/x86_64-linux-gnu' '%s/lib/aarch64-linux-gnu'", root, root);
        snprintf(path, sizeof(path), "%s/lib/%s-linux-gnu/libnvidia-ml.so.1", root,
#if defined(__aarch64__)
                 "aarch64"
#else
                 "x86_64"
#endif
        );
        assert_true(write_file_atomic(path, "not an ELF file\n", 16, 0644) >= 0);
        assert_int_equal(nvml_load(root, &n, &error), -ELIBBAD);
        assert_non_null(strstr(error, "Failed to load NVML library"));
        assert_non_null(strstr(error, path));
}

static void test_init_fails(void **state)
{
        _cleanup_free_ char *error = NULL;
        nvml *n = NULL;

        /* The mock without a fixture behaves like a library whose driver is not loaded. */
        unsetenv("MOCK_NVML_FIXTURE");
        assert_int_equal(nvml_load_library(NULL, mock_lib, &n, &error), -ENODEV);
        assert_null(n);
        assert_string_equal(error, "nvmlInit_v2 failed: Driver Not Loaded.");
}

static void test_load_mock(void **state)
{
        _cleanup_free_ char *error = NULL;
        char path[600];
        nvml *n = NULL;
        unsigned count = 0;
        char version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];

        snprintf(path, sizeof(path), "%s/rtx4070ti.yaml", fixtures);
        setenv("MOCK_NVML_FIXTURE", path, 1);
        assert_int_equal(nvml_load_library(NULL, mock_lib, &n, &error), 0);
        assert_null(error);
        /* Required and optional entry points resolved into the table. */
        assert_non_null(n->DeviceGetHandleByIndex_v2);
        assert_non_null(n->EventSetWait_v2);
        assert_non_null(n->DeviceGetRetiredPages_v2);
        assert_non_null(n->DeviceGetHandleByUUID);
        assert_int_equal(n->DeviceGetCount_v2(&count), NVML_SUCCESS);
        assert_int_equal(count, 1);
        assert_int_equal(n->SystemGetDriverVersion(version, sizeof(version)), NVML_SUCCESS);
        assert_string_equal(version, "580.95.05");
        assert_string_equal(nvml_strerror(n, NVML_ERROR_GPU_IS_LOST), "GPU is lost");
        n = nvml_unload(n);
        assert_null(n);
        assert_null(nvml_unload(NULL));
}

/* Found through the loader's path but a library it needs is missing (the real libnvidia-ml.so.1 needs
 * libdl, libpthread, librt and libm, which an image with libc alone lacks): the error names that
 * dependency instead of calling NVML absent. A child process, for LD_LIBRARY_PATH. */
static void test_missing_dependency(void **state)
{
        const char *build = getenv("NVDP_BUILD");
        const char *exec = getenv("NVDP_TEST_EXEC"); /* e.g. qemu-aarch64 for a cross build */
        const char *cc = getenv("CC");               /* the libraries are built for nvdp's architecture */
        cc = cc ? cc : "cc";
        sh("mkdir -p '%s/dep' && echo 'int nvdp_dep(void) { return 1; }' > '%s/dep.c' && "
           "%s -shared -fPIC -Wl,-soname,libnvdp-test-dep.so.1 -o '%s/dep/libnvdp-test-dep.so.1' '%s/dep.c' "
           "&& "
           "echo 'int nvdp_dep(void); int nvmlInit_v2(void) { return nvdp_dep(); }' > '%s/lib.c' && "
           "%s -shared -fPIC -Wl,--no-as-needed -o '%s/dep/libnvidia-ml.so.1' '%s/lib.c' "
           "'%s/dep/libnvdp-test-dep.so.1' && "
           "rm '%s/dep/libnvdp-test-dep.so.1'",
           tmp, tmp, cc, tmp, tmp, tmp, cc, tmp, tmp, tmp, tmp);
        sh("out=$(LD_LIBRARY_PATH='%s/dep' %s '%s/nvdp' info 2>&1); echo \"$out\" | grep -q "
           "'Failed to load NVML library libnvidia-ml.so.1: libnvdp-test-dep.so.1: cannot open shared "
           "object file' "
           "|| { echo \"$out\"; exit 1; }",
           tmp, exec ? exec : "", build ? build : "build");
}

/* LD_LIBRARY_PATH is honoured: it is read at process start, so check through a child process. */
static void test_ld_library_path(void **state)
{
        const char *build = getenv("NVDP_BUILD");
        char dir[600];
        snprintf(dir, sizeof(dir), "%s/mock-nvml", build ? build : "build");
        const char *exec = getenv("NVDP_TEST_EXEC");
        sh("MOCK_NVML_FIXTURE='%s/rtx4070ti.yaml' LD_LIBRARY_PATH='%s' %s '%s/nvdp' info --json | grep -q "
           "'\"name\": \"NVIDIA GeForce RTX 4070 Ti\"'",
           fixtures, dir, exec ? exec : "", build ? build : "build");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_not_found_under_driver_root),
                cmocka_unit_test(test_not_found_plain),
                cmocka_unit_test(test_missing_symbol),
                cmocka_unit_test(test_not_a_library),
                cmocka_unit_test(test_init_fails),
                cmocka_unit_test(test_load_mock),
                cmocka_unit_test(test_ld_library_path),
                cmocka_unit_test(test_missing_dependency),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
