/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp cdi-hook's library side on a container bundle built here: the container root from the OCI
 * state, create-symlinks, update-ldcache writing the container's ld.so.cache (ours first, the image's
 * own entries kept after them), chmod; everything stays inside the container root, even through an
 * image's absolute symlinks. The real dynamic linker reading the cache is tested in
 * tests/integration/test_cdi.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <limits.h>

#include "base/fileio.h"
#include "base/strv.h"
#include "cdi-fixture.h"
#include "cdi/hook.h"
#include "cdi/ldcache.h"

static char tmp[256];
static struct fx rootfs;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

/* A bundle: config.json with a relative root.path, the rootfs with two driver libraries bind-mounted
 * into /lib64 (regular files), an image whose /etc is an absolute symlink to /etc-real and whose own
 * ld.so.cache lists libc and an older libcuda. */
static int setup(void **state)
{
        snprintf(tmp, sizeof tmp, "/tmp/nvdp-test-cdi-hook-XXXXXX");
        assert_non_null(mkdtemp(tmp));
        struct fx bundle = {};
        snprintf(bundle.root, sizeof bundle.root, "%s/bundle", tmp);
        assert_int_equal(
                fx_text(&bundle, "/config.json",
                        "{\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\", \"readonly\": false}}",
                        0644),
                0);
        rootfs = (struct fx){};
        snprintf(rootfs.root, sizeof rootfs.root, "%s/bundle/rootfs", tmp);
        assert_int_equal(fx_elf(&rootfs, "/lib64/libcuda.so.580.105.08", "libcuda.so.1", false), 0);
        assert_int_equal(fx_elf(&rootfs, "/lib64/libnvidia-ml.so.580.105.08", "libnvidia-ml.so.1", false),
                         0);
        assert_int_equal(fx_elf(&rootfs, "/lib64/libnvidia-nosoname.so.580.105.08", NULL, false), 0);
        assert_int_equal(fx_elf(&rootfs, "/lib64/libcuda32.so.580.105.08", "libcuda32.so.1", true), 0);
        assert_int_equal(fx_mkdirs(&rootfs, "/etc-real"), 0);
        assert_int_equal(fx_link(&rootfs, "/etc", "/etc-real"), 0);
        static const char *const image_cache[] = {
                "libc.so.6",    "/lib/x86_64-linux-gnu/libc.so.6",
                "libcuda.so.1", "/usr/local/cuda/compat/libcuda.so.1",
                NULL,
        };
        assert_int_equal(fx_ldcache(&rootfs, "/etc-real/ld.so.cache", image_cache), 0);
        return 0;
}

static int teardown(void **state)
{
        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

static char *state_json(void)
{
        char *s;
        assert_true(asprintf(&s,
                             "{\"ociVersion\": \"1.0.2\", \"id\": \"c1\", \"status\": \"creating\", "
                             "\"pid\": 4242, \"bundle\": \"%s/bundle\", \"annotations\": {}}",
                             tmp) > 0);
        return s;
}

static char *link_target(const char *path)
{
        char p[4096], t[PATH_MAX];
        assert_int_equal(fx_path(&rootfs, path, p), 0);
        ssize_t n = readlink(p, t, sizeof t - 1);
        if (n < 0)
                return NULL;
        t[n] = '\0';
        return strdup(t);
}

static void test_container_root(void **state)
{
        _cleanup_free_ char *s = state_json(), *root = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL;
        assert_int_equal(cdi_hook_container_root(s, strlen(s), &root, NULL), 0);
        assert_string_equal(root, rootfs.root);

        char *none = NULL;
        assert_int_equal(cdi_hook_container_root("{", 1, &none, &e1), -EINVAL);
        assert_string_equal(e1, "the container state on stdin is not JSON");
        static const char relative[] = "{\"bundle\": \"bundle\"}";
        assert_int_equal(cdi_hook_container_root(relative, strlen(relative), &none, &e2), -EINVAL);
        assert_string_equal(e2, "the container state has no absolute \"bundle\" path");
        _cleanup_free_ char *missing = NULL, *want = NULL;
        assert_true(asprintf(&missing, "{\"bundle\": \"%s/nope\"}", tmp) > 0);
        assert_int_equal(cdi_hook_container_root(missing, strlen(missing), &none, &e3), -ENOENT);
        assert_true(asprintf(&want,
                             "cannot read the OCI spec %s/nope/config.json: No such file or directory",
                             tmp) > 0);
        assert_string_equal(e3, want);
        assert_null(none);
}

static void test_create_symlinks(void **state)
{
        char *const links[] = {
                (char *)"libcuda.so.580.105.08::/lib64/libcuda.so.1",
                (char *)"libcuda.so.1::/lib64/libcuda.so",
                (char *)"../card1::/dev/dri/by-path/pci-0000:01:00.0-card", /* parents created */
                (char *)"/real/target::/etc/alternatives/nvidia",           /* through /etc -> /etc-real */
                NULL,
        };
        assert_int_equal(fx_link(&rootfs, "/lib64/libcuda.so", "libcuda.so.wrong"), 0); /* replaced */
        assert_int_equal(cdi_hook_create_symlinks(rootfs.root, links, NULL), 0);
        assert_int_equal(cdi_hook_create_symlinks(rootfs.root, links, NULL), 0); /* again: no change */
        _cleanup_free_ char *a = link_target("/lib64/libcuda.so.1"), *b = link_target("/lib64/libcuda.so"),
                            *c = link_target("/dev/dri/by-path/pci-0000:01:00.0-card"),
                            *d = link_target("/etc-real/alternatives/nvidia");
        assert_string_equal(a, "libcuda.so.580.105.08");
        assert_string_equal(b, "libcuda.so.1");
        assert_string_equal(c, "../card1");
        assert_string_equal(d, "/real/target");

        char *const bad[] = { (char *)"no-separator", NULL }, *const relative[] = { (char *)"a::b", NULL };
        _cleanup_free_ char *e1 = NULL, *e2 = NULL;
        assert_int_equal(cdi_hook_create_symlinks(rootfs.root, bad, &e1), -EINVAL);
        assert_string_equal(e1, "invalid link \"no-separator\": expected TARGET::/ABSOLUTE/LINK");
        assert_int_equal(cdi_hook_create_symlinks(rootfs.root, relative, &e2), -EINVAL);
        assert_string_equal(e2, "invalid link \"a::b\": expected TARGET::/ABSOLUTE/LINK");
}

static void test_update_ldcache(void **state)
{
        char *const links[] = { (char *)"libcuda.so.580.105.08::/lib64/libcuda.so.1",
                                (char *)"libcuda.so.1::/lib64/libcuda.so", NULL };
        assert_int_equal(cdi_hook_create_symlinks(rootfs.root, links, NULL), 0);
        char *const folders[] = { (char *)"/lib64", (char *)"/not/in/this/image", NULL };
        assert_int_equal(cdi_hook_update_ldcache(rootfs.root, folders, NULL), 0);

        /* The SONAME link ldconfig would have made. */
        _cleanup_free_ char *ml = link_target("/lib64/libnvidia-ml.so.1");
        assert_string_equal(ml, "libnvidia-ml.so.580.105.08");

        /* Written through the image's /etc -> /etc-real, inside the root. */
        char p[4096];
        assert_int_equal(fx_path(&rootfs, "/etc-real/ld.so.cache", p), 0);
        _cleanup_(ldcache_freep) ldcache *c = NULL;
        assert_int_equal(ldcache_read(p, &c), 0);
        /* In the loader's order; ours before the image's libcuda.so.1; the 32-bit library left out; a
         * library without SONAME under its file name. */
        static const char *const want[][2] = {
                { "libnvidia-nosoname.so.580.105.08", "/lib64/libnvidia-nosoname.so.580.105.08" },
                { "libnvidia-ml.so.1", "/lib64/libnvidia-ml.so.1" },
                { "libcuda.so.1", "/lib64/libcuda.so.1" },
                { "libcuda.so.1", "/usr/local/cuda/compat/libcuda.so.1" },
                { "libcuda.so", "/lib64/libcuda.so" },
                { "libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6" },
        };
        assert_int_equal(c->n_entries, ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                assert_string_equal(c->entries[i].name, want[i][0]);
                assert_string_equal(c->entries[i].path, want[i][1]);
                assert_int_equal(c->entries[i].flags, ldcache_native_flags());
        }

        /* The drop-in keeps the folders for an ldconfig run later; ld.so.conf includes it. */
        _cleanup_free_ char *conf = NULL, *top = NULL;
        assert_int_equal(fx_path(&rootfs, "/etc-real/ld.so.conf.d/00-nvdp-cdi.conf", p), 0);
        assert_int_equal(read_full_file(p, 4096, &conf, NULL), 0);
        assert_string_equal(conf, "# the folders of the NVIDIA driver's libraries (nvdp cdi-hook)\n"
                                  "/lib64\n/not/in/this/image\n");
        assert_int_equal(fx_path(&rootfs, "/etc-real/ld.so.conf", p), 0);
        assert_int_equal(read_full_file(p, 4096, &top, NULL), 0);
        assert_string_equal(top, "include /etc/ld.so.conf.d/*.conf\n");

        /* Run twice (a restarted container): the same cache. */
        assert_int_equal(cdi_hook_update_ldcache(rootfs.root, folders, NULL), 0);
        _cleanup_(ldcache_freep) ldcache *again = NULL;
        assert_int_equal(fx_path(&rootfs, "/etc-real/ld.so.cache", p), 0);
        assert_int_equal(ldcache_read(p, &again), 0);
        assert_int_equal(again->n_entries, ELEMENTSOF(want));

        char *const relative[] = { (char *)"lib64", NULL };
        _cleanup_free_ char *e = NULL;
        assert_int_equal(cdi_hook_update_ldcache(rootfs.root, relative, &e), -EINVAL);
        assert_string_equal(e, "folder \"lib64\" is not an absolute path");
}

static void test_chmod(void **state)
{
        assert_int_equal(fx_mkdirs(&rootfs, "/dev/dri"), 0);
        char p[4096];
        assert_int_equal(fx_path(&rootfs, "/dev/dri", p), 0);
        assert_int_equal(chmod(p, 0700), 0);
        char *const paths[] = { (char *)"/dev/dri", (char *)"/dev/missing", NULL };
        assert_int_equal(cdi_hook_chmod(rootfs.root, paths, 0755, NULL), 0);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_container_root, setup, teardown),
                cmocka_unit_test_setup_teardown(test_create_symlinks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_ldcache, setup, teardown),
                cmocka_unit_test_setup_teardown(test_chmod, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
