/* SPDX-License-Identifier: Apache-2.0 */
/* CDI spec generation on fixture node filesystems (cdi-fixture.h): the four driver layouts give the
 * specs in tests/unit/fixtures/cdi/, every CDI name Allocate can return resolves in them, bad roots
 * fail with the roots named; the ld.so.cache reader/writer, the SONAME reader and the spec directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>

#include "base/fileio.h"
#include "base/strv.h"
#include "cdi-fixture.h"
#include "cdi/cdi-internal.h"
#include "cdi/cdi.h"
#include "cdi/elf-soname.h"
#include "cdi/ldcache.h"
#include "plugin/allocate.h"
#include "test-plan-inventories.h"

static char tmp[256];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

static int setup(void **state)
{
        snprintf(tmp, sizeof tmp, "/tmp/nvdp-test-cdi-XXXXXX");
        assert_non_null(mkdtemp(tmp));
        return 0;
}

static int teardown(void **state)
{
        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

static struct fx fixture_at(const char *name)
{
        struct fx f = {};
        snprintf(f.root, sizeof f.root, "%s/%s", tmp, name);
        assert_int_equal(mkdir(f.root, 0755), 0);
        return f;
}

static char *expected_path(const char *name)
{
        const char *src = getenv("NVDP_SRC");
        char *p;
        assert_true(asprintf(&p, "%s/tests/unit/fixtures/cdi/%s", src ? src : ".", name) > 0);
        return p;
}

/* ---- ld.so.cache ------------------------------------------------------------------------------ */

static void test_ldcache_libcmp(void **state)
{
        /* Digit runs compare as numbers: libfoo.so.10 is after libfoo.so.9. */
        assert_true(ldcache_libcmp("libfoo.so.10", "libfoo.so.9") > 0);
        assert_true(ldcache_libcmp("libfoo.so.9", "libfoo.so.10") < 0);
        assert_int_equal(ldcache_libcmp("libc.so.6", "libc.so.6"), 0);
        assert_true(ldcache_libcmp("libc.so", "libc.so.6") < 0);
        /* A digit sorts after any other character. */
        assert_true(ldcache_libcmp("lib2.so", "libz.so") > 0);
        assert_true(ldcache_libcmp("libA.so", "liba.so") < 0);
}

static void test_ldcache_round_trip(void **state)
{
        struct ldcache_entry in[] = {
                { ldcache_native_flags(), 0, "libcuda.so.1", "/lib64/libcuda.so.1" },
                { ldcache_native_flags(), 0, "libnvidia-ml.so.1", "/lib64/libnvidia-ml.so.1" },
                { ldcache_native_flags(), 0, "libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6" },
                { ldcache_native_flags(), 0, "libcuda.so.1", "/usr/lib/libcuda.so.1" }, /* second: loses */
                { ldcache_native_flags(), 0, "libfoo.so.9", "/a/libfoo.so.9" },
                { ldcache_native_flags(), 0, "libfoo.so.10", "/a/libfoo.so.10" },
        };
        _cleanup_free_ void *data = NULL;
        size_t size;
        assert_int_equal(ldcache_format(in, ELEMENTSOF(in), &data, &size), 0);
        /* 48-byte header, 24 bytes per entry, then the strings. */
        assert_memory_equal(data, "glibc-ld.so.cache1.1", 20);
        _cleanup_(ldcache_freep) ldcache *c = NULL;
        assert_int_equal(ldcache_parse(data, size, &c), 0);
        assert_int_equal(c->n_entries, 6);
        /* Descending in ld.so's order; of two equal names the first given comes first. */
        static const char *const names[] = { "libnvidia-ml.so.1", "libfoo.so.10", "libfoo.so.9",
                                             "libcuda.so.1",      "libcuda.so.1", "libc.so.6" };
        static const char *const paths[] = { "/lib64/libnvidia-ml.so.1", "/a/libfoo.so.10",
                                             "/a/libfoo.so.9",           "/lib64/libcuda.so.1",
                                             "/usr/lib/libcuda.so.1",    "/lib/x86_64-linux-gnu/libc.so.6" };
        for (size_t i = 0; i < 6; i++) {
                assert_string_equal(c->entries[i].name, names[i]);
                assert_string_equal(c->entries[i].path, paths[i]);
                assert_int_equal(c->entries[i].flags, ldcache_native_flags());
        }
}

static void test_ldcache_bad(void **state)
{
        struct ldcache_entry in[] = { { ldcache_native_flags(), 0, "libcuda.so.1", "/lib64/libcuda.so.1" },
                                      { ldcache_native_flags(), 0, "libc.so.6", "/lib64/libc.so.6" } };
        _cleanup_free_ uint8_t *data = NULL;
        size_t size;
        assert_int_equal(ldcache_format(in, 2, (void **)&data, &size), 0);
        ldcache *c = NULL;
        /* Cut inside the entry table: the header promises more than there is. */
        assert_int_equal(ldcache_parse(data, 48 + 24 + 10, &c), -EBADMSG);
        assert_int_equal(ldcache_parse(data, 20, &c), -EBADMSG);
        assert_int_equal(ldcache_parse("not a cache at all, just some text padding it out", 50, &c),
                         -EBADMSG);
        assert_null(c);
        /* Cut inside the strings: entries whose strings are gone are left out, the rest is read. */
        _cleanup_(ldcache_freep) ldcache *cut = NULL;
        size_t strings = 48 + 2 * 24;
        assert_int_equal(ldcache_parse(data, strings + strlen("libnvidia"), &cut), 0);
        assert_int_equal(cut->n_entries, 0);
}

static void test_ldcache_old_format(void **state)
{
        /* glibc < 2.32: "ld.so-1.7.0", nlibs, old entries, then the new table at an 8-byte boundary,
         * its strings counted from the new header. */
        struct ldcache_entry in[] = { { ldcache_native_flags(), 0, "libcuda.so.1", "/lib64/libcuda.so.1" } };
        _cleanup_free_ uint8_t *new_part = NULL, *file = NULL;
        size_t new_size;
        assert_int_equal(ldcache_format(in, 1, (void **)&new_part, &new_size), 0);
        size_t old_size = 16 + 12; /* header + one old entry, then 4 bytes of padding to 32 */
        file = calloc(1, 32 + new_size);
        assert_non_null(file);
        memcpy(file, "ld.so-1.7.0", 11);
        file[12] = 1; /* nlibs, little-endian */
        memcpy(file + 32, new_part, new_size);
        (void)old_size;
        _cleanup_(ldcache_freep) ldcache *c = NULL;
        assert_int_equal(ldcache_parse(file, 32 + new_size, &c), 0);
        assert_int_equal(c->n_entries, 1);
        assert_string_equal(c->entries[0].path, "/lib64/libcuda.so.1");
        /* An old table claiming more entries than the file holds. */
        file[13] = 0xff;
        ldcache *bad = NULL;
        assert_int_equal(ldcache_parse(file, 32 + new_size, &bad), -EBADMSG);
}

/* ---- ELF SONAME -------------------------------------------------------------------------------- */

static int open_at(const struct fx *f, const char *path)
{
        char p[4096];
        assert_int_equal(fx_path(f, path, p), 0);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static void test_elf_soname(void **state)
{
        struct fx f = fixture_at("elf");
        assert_int_equal(fx_elf(&f, "/with.so", "libwith.so.3", false), 0);
        assert_int_equal(fx_elf(&f, "/without.so", NULL, false), 0);
        assert_int_equal(fx_elf(&f, "/lib32.so", "lib32.so.1", true), 0);
        assert_int_equal(fx_text(&f, "/script.so", "/* GNU ld script */\nGROUP ( libc.so.6 )\n", 0644), 0);

        _cleanup_free_ char *s = NULL;
        _cleanup_close_ int a = open_at(&f, "/with.so"), b = open_at(&f, "/without.so"),
                            c = open_at(&f, "/lib32.so"), d = open_at(&f, "/script.so");
        assert_int_equal(elf_read_soname(a, &s), 0);
        assert_string_equal(s, "libwith.so.3");
        char *none = (char *)"unchanged";
        assert_int_equal(elf_read_soname(b, &none), 0);
        assert_null(none);
        assert_int_equal(elf_read_soname(c, &none), -ENOEXEC);
        assert_int_equal(elf_read_soname(d, &none), -ENOEXEC);

        /* A truncated library: its headers point past the end. */
        char p[4096];
        assert_int_equal(fx_path(&f, "/with.so", p), 0);
        assert_int_equal(truncate(p, 100), 0);
        assert_int_equal(elf_read_soname(a, &none), -EBADMSG);
}

/* ---- specs on the fixture layouts ------------------------------------------------------------- */

static inventory *h200(void)
{
        inventory *inv = fixture_inventory_new(1);
        struct gpu *g = &inv->gpus[0];
        snprintf(g->uuid, sizeof g->uuid, "GPU-30000000-0000-0000-0000-000000000000");
        snprintf(g->name, sizeof g->name, "NVIDIA H200");
        snprintf(g->bus_id, sizeof g->bus_id, "0000:1b:00.0");
        g->numa_node = -1;
        g->cc_major = 9;
        return inv;
}

static inventory *h100x2(void)
{
        inventory *inv = fixture_h100x8();
        inv->n_gpus = 2; /* the first two are enough; the link matrix is not read */
        return inv;
}

struct layout {
        const char *name;
        int (*build)(const struct fx *f);
        inventory *(*inventory)(void);
        const char *driver, *dev, *hook;
        const char *driver_ctr; /* relative to tmp: the driver root moved out of the host tree */
        enum cdi_format format;
};

static const struct layout layouts[] = {
        { "fhs", fx_layout_fhs, fixture_rtx4070ti, "/", NULL, "/usr/local/bin/nvdp", NULL, CDI_FORMAT_YAML },
        { "usr-local-nvidia", fx_layout_usr_local_nvidia, h200, "/usr/local/nvidia", NULL,
          "/usr/bin/nvidia-cdi-hook", NULL, CDI_FORMAT_YAML },
        { "operator", fx_layout_operator, h100x2, "/run/nvidia/driver", NULL,
          "/usr/local/nvidia/toolkit/nvidia-ctk", "driver-root", CDI_FORMAT_JSON },
        { "mig", fx_layout_mig, fixture_a100_mig, "/", NULL, "/var/lib/nvdp/bin/nvdp", NULL,
          CDI_FORMAT_YAML },
};

static const unsigned imex_channel0[] = { 0 };

/* Builds the layout's fixture and its specs (the IMEX spec for the MIG node, which has channel 0). */
static cdi_specs *layout_specs(const struct layout *l, inventory **ret_inv)
{
        struct fx f = fixture_at(l->name);
        assert_int_equal(l->build(&f), 0);
        char ctr[512] = "";
        if (l->driver_ctr) {
                /* The plugin's container: the host's driver root is mounted at /driver-root. */
                char from[4096];
                snprintf(ctr, sizeof ctr, "%s/%s", tmp, l->driver_ctr);
                assert_int_equal(fx_path(&f, l->driver, from), 0);
                assert_int_equal(rename(from, ctr), 0);
        }
        inventory *inv = l->inventory();
        assert_int_equal(inventory_read_mig_minors(inv, f.root), 0);
        struct cdi_options o = {
                .roots = { .host = f.root,
                           .driver = l->driver,
                           .driver_ctr = l->driver_ctr ? ctr : NULL,
                           .dev = l->dev },
                .hook_path = l->hook,
                .kernel_release = "6.18.0-test",
                .imex_channel_ids = imex_channel0,
                .n_imex_channel_ids = startswith(l->name, "mig") ? 1 : 0,
        };
        cdi_specs *s = NULL;
        _cleanup_free_ char *error = NULL;
        int r = cdi_specs_build(inv, &o, &s, &error);
        if (r < 0)
                fail_msg("%s: %s", l->name, strna(error));
        *ret_inv = inv;
        return s;
}

/* On a difference the spec built is left in $NVDP_BUILD/cdi-<name> for diffing. */
static void assert_file_content(const char *name, const char *actual)
{
        _cleanup_free_ char *path = expected_path(name), *want = NULL, *got = NULL;
        (void)read_full_file(path, 1 << 20, &want, NULL);
        if (want && streq(want, actual))
                return;
        const char *build = getenv("NVDP_BUILD");
        assert_true(asprintf(&got, "%s/cdi-%s", build ? build : "/tmp", name) > 0);
        assert_true(write_file_atomic(got, actual, strlen(actual), 0644) >= 0);
        fail_msg("the spec built differs from %s: diff %s %s", path, path, got);
}

static void test_layout(const struct layout *l)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = NULL;
        _cleanup_(cdi_specs_freep) cdi_specs *s = layout_specs(l, &inv);
        _cleanup_free_ char *text = NULL, *name = NULL;
        assert_int_equal(cdi_spec_format(s->specs[0], l->format, &text, NULL), 0);
        assert_true(asprintf(&name, "%s.%s", l->name, l->format == CDI_FORMAT_JSON ? "json" : "yaml") > 0);
        assert_file_content(name, text);
}

static void test_layout_fhs(void **state)
{
        test_layout(&layouts[0]);
}

static void test_layout_usr_local_nvidia(void **state)
{
        test_layout(&layouts[1]);
}

static void test_layout_operator(void **state)
{
        test_layout(&layouts[2]);
}

static void test_layout_mig(void **state)
{
        test_layout(&layouts[3]);
        /* The IMEX spec: channel 0 from the node's /dev. */
        _cleanup_(fixture_inventory_freep) inventory *inv = NULL;
        struct layout again = layouts[3];
        again.name = "mig-imex";
        _cleanup_(cdi_specs_freep) cdi_specs *s = layout_specs(&again, &inv);
        assert_int_equal(s->n_specs, 2);
        _cleanup_free_ char *text = NULL;
        assert_int_equal(cdi_spec_format(s->specs[1], CDI_FORMAT_YAML, &text, NULL), 0);
        assert_string_equal(text, "---\n"
                                  "cdiVersion: \"0.6.0\"\n"
                                  "kind: k8s.device-plugin.nvidia.com/imex-channel\n"
                                  "annotations:\n"
                                  "  nvdp.nvidia.com/generator: nvdp\n"
                                  "devices:\n"
                                  "  - name: \"0\"\n"
                                  "    containerEdits:\n"
                                  "      deviceNodes:\n"
                                  "        - path: /dev/nvidia-caps-imex-channels/channel0\n");
}

/* ---- every name Allocate returns resolves ----------------------------------------------------- */

static bool spec_resolves(const cdi_specs *s, const char *qualified)
{
        const char *eq = strchr(qualified, '=');
        assert_non_null(eq);
        for (size_t i = 0; i < s->n_specs; i++)
                if (strlen(s->specs[i]->kind) == (size_t)(eq - qualified) &&
                    strneq(s->specs[i]->kind, qualified, (size_t)(eq - qualified)))
                        return cdi_spec_find_device(s->specs[i], eq + 1) != NULL;
        return false;
}

static void check_allocate_names(const cdi_specs *s, const inventory *inv, enum mig_strategy mig,
                                 enum device_id_strategy ids, bool shared, size_t want_names)
{
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(config_new_default(&c), 0);
        c->flags.mig_strategy = mig;
        c->flags.plugin.device_id_strategy = ids;
        c->flags.plugin.device_list_strategy = DEVICE_LIST_CDI_CRI;
        if (shared) {
                c->sharing.strategy = SHARING_TIME_SLICING;
                c->sharing.n_resources = 1;
                c->sharing.resources = new0(struct replicated_resource, 1);
                assert_non_null(c->sharing.resources);
                c->sharing.resources[0] = (struct replicated_resource){ .name = strdup("nvidia.com/gpu"),
                                                                        .replicas = 4,
                                                                        .devices_all = true };
        }
        _cleanup_(plan_freep) plan *p = NULL;
        _cleanup_free_ char *error = NULL;
        if (plan_build(inv, c, &p, &error) < 0)
                fail_msg("plan: %s", strna(error));
        _cleanup_strv_free_ char **names = NULL;
        assert_int_equal(cdi_allocate_names(p, c, &names), 0);
        assert_int_equal(strv_length(names), want_names);
        STRV_FOREACH (n, names)
                if (!spec_resolves(s, *n))
                        fail_msg("%s is not in the spec", *n);
        /* The same names as Allocate itself returns, device by device. */
        for (size_t i = 0; i < p->n_resources; i++)
                for (size_t k = 0; k < p->resources[i].n_devices; k++) {
                        struct allocate_context ctx = { .config = c, .resource = &p->resources[i] };
                        char *id = p->resources[i].devices[k].id;
                        _cleanup_(allocate_response_freep) struct allocate_response *resp = NULL;
                        assert_int_equal(allocate_container(&ctx, &id, 1, &resp, NULL), 0);
                        assert_int_equal(strv_length(resp->cdi_devices), 1);
                        assert_true(strv_contains(names, resp->cdi_devices[0]));
                }
}

static void test_allocate_names_resolve(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = NULL;
        _cleanup_(cdi_specs_freep) cdi_specs *s = layout_specs(&layouts[3], &inv);
        /* none: the two GPUs whole; by UUID or index; shared: the replicas name their GPU. */
        check_allocate_names(s, inv, MIG_STRATEGY_NONE, DEVICE_ID_UUID, false, 2);
        check_allocate_names(s, inv, MIG_STRATEGY_NONE, DEVICE_ID_INDEX, false, 2);
        check_allocate_names(s, inv, MIG_STRATEGY_NONE, DEVICE_ID_UUID, true, 2);
        /* mixed: the six MIG devices whose profile gets a resource (not the compute-instance slice). */
        check_allocate_names(s, inv, MIG_STRATEGY_MIXED, DEVICE_ID_UUID, false, 6);
        check_allocate_names(s, inv, MIG_STRATEGY_MIXED, DEVICE_ID_INDEX, false, 6);

        _cleanup_(fixture_inventory_freep) inventory *uniform = fixture_a100_mig_uniform();
        struct fx f = fixture_at("mig-uniform");
        assert_int_equal(fx_layout_mig(&f), 0);
        assert_int_equal(inventory_read_mig_minors(uniform, f.root), 0);
        struct cdi_options o = { .roots = { .host = f.root, .driver = "/" }, .hook_path = "/usr/bin/nvdp" };
        _cleanup_(cdi_specs_freep) cdi_specs *su = NULL;
        _cleanup_free_ char *error = NULL;
        if (cdi_specs_build(uniform, &o, &su, &error) < 0)
                fail_msg("%s", strna(error));
        /* single: four 3g.20gb devices under nvidia.com/gpu. */
        check_allocate_names(su, uniform, MIG_STRATEGY_SINGLE, DEVICE_ID_UUID, false, 4);
        check_allocate_names(su, uniform, MIG_STRATEGY_SINGLE, DEVICE_ID_INDEX, false, 4);
}

/* ---- bad input ---------------------------------------------------------------------------------- */

static char *build_error(const struct fx *f, const inventory *inv, const char *driver, const char *dev)
{
        struct cdi_options o = { .roots = { .host = f->root, .driver = driver, .dev = dev },
                                 .hook_path = "/usr/bin/nvdp" };
        cdi_specs *s = NULL;
        char *error = NULL;
        assert_true(cdi_specs_build(inv, &o, &s, &error) < 0);
        assert_null(s);
        assert_non_null(error);
        return error;
}

static void test_errors(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = h200();
        struct fx f = fixture_at("errors");
        char msg[4096];

        /* A driver root that does not exist. */
        _cleanup_free_ char *e1 = build_error(&f, inv, "/opt/nvidia", NULL);
        snprintf(msg, sizeof msg, "the driver root /opt/nvidia does not exist (looked at %s/opt/nvidia)",
                 f.root);
        assert_string_equal(e1, msg);

        /* Device nodes neither in the dev root nor in /. */
        assert_int_equal(fx_mkdirs(&f, "/opt/nvidia/lib64"), 0);
        _cleanup_free_ char *e2 = build_error(&f, inv, "/opt/nvidia", NULL);
        snprintf(msg, sizeof msg,
                 "no /dev/nvidiactl under the dev root /opt/nvidia (looked at %s/opt/nvidia/dev/nvidiactl) "
                 "nor under / (looked at %s/dev/nvidiactl): is the nvidia kernel module loaded? "
                 "(nvidia-modprobe -c 0 or nvidia-smi creates the nodes)",
                 f.root, f.root);
        assert_string_equal(e2, msg);

        /* A driver root with no driver: the libraries of the running version are nowhere. */
        assert_int_equal(fx_control_nodes(&f, "/dev"), 0);
        assert_int_equal(fx_lib(&f, "/opt/nvidia/lib64", "libcuda.so.535.1.1", "libcuda.so.1", false, NULL),
                         0);
        _cleanup_free_ char *e3 = build_error(&f, inv, "/opt/nvidia", NULL);
        snprintf(msg, sizeof msg,
                 "no libraries of NVIDIA driver 580.105.08 (libcuda.so.580.105.08, "
                 "libnvidia-ml.so.580.105.08) "
                 "under the driver root /opt/nvidia (seen at %s/opt/nvidia): looked in "
                 "%s/opt/nvidia/etc/ld.so.cache and /usr/lib64, /usr/lib/x86_64-linux-gnu, "
                 "/usr/lib/aarch64-linux-gnu, /usr/lib/x86_64-linux-gnu/nvidia/current, "
                 "/usr/lib/aarch64-linux-gnu/nvidia/current, /lib64, /lib/x86_64-linux-gnu, "
                 "/lib/aarch64-linux-gnu, /lib/x86_64-linux-gnu/nvidia/current, "
                 "/lib/aarch64-linux-gnu/nvidia/current, /usr/lib, /lib",
                 f.root, f.root);
        assert_string_equal(e3, msg);

        /* The driver is there but a GPU's node is not. */
        assert_int_equal(fx_driver_libs(&f, "/opt/nvidia/lib64", false), 0);
        _cleanup_free_ char *e4 = build_error(&f, inv, "/opt/nvidia", NULL);
        snprintf(msg, sizeof msg,
                 "the device node /dev/nvidia0 of GPU 0 (GPU-30000000-0000-0000-0000-000000000000) is "
                 "missing "
                 "under the dev root / (looked at %s/dev/nvidia0)",
                 f.root);
        assert_string_equal(e4, msg);

        /* MIG devices without mig-minors. */
        _cleanup_(fixture_inventory_freep) inventory *mig = fixture_a100_mig();
        assert_int_equal(fx_gpu_nodes(&f, "/dev", 2), 0);
        assert_int_equal(inventory_read_mig_minors(mig, f.root), 0);
        _cleanup_free_ char *e5 = build_error(&f, mig, "/opt/nvidia", NULL);
        snprintf(msg, sizeof msg,
                 "cannot read %s/proc/driver/nvidia-caps/mig-minors, needed for the device nodes of MIG "
                 "devices: No such file or directory",
                 f.root);
        assert_string_equal(e5, msg);

        /* A capability node missing. */
        assert_int_equal(fx_mig_minors(&f), 0);
        assert_int_equal(inventory_read_mig_minors(mig, f.root), 0);
        _cleanup_free_ char *e6 = build_error(&f, mig, "/opt/nvidia", NULL);
        assert_string_equal(e6,
                            "the device node /dev/nvidia-caps/nvidia-cap12 of MIG device 0:0 "
                            "(MIG-a0000000-0000-0000-0000-000000000000) is missing under the dev root /");

        /* Relative hook paths and bad kinds are refused before anything is read. */
        struct cdi_options o = { .roots = { .host = f.root, .driver = "/opt/nvidia" }, .hook_path = "nvdp" };
        cdi_specs *s = NULL;
        _cleanup_free_ char *e7 = NULL, *e8 = NULL;
        assert_int_equal(cdi_specs_build(inv, &o, &s, &e7), -EINVAL);
        assert_string_equal(e7, "the CDI hook path must be absolute, not \"nvdp\"");
        o.hook_path = "/usr/bin/nvdp";
        o.kind = "nvidia.com";
        assert_int_equal(cdi_specs_build(inv, &o, &s, &e8), -EINVAL);
        assert_string_equal(
                e8, "\"nvidia.com\" is not a CDI kind (vendor/class: letters, digits, '_', '-', '.')");
}

/* IMEX channels are looked for where the spec's device nodes come from (the daemon drops those missing). */
static void test_imex_channel_exists(void **state)
{
        struct fx f = fixture_at("imex");
        struct cdi_options o = { .roots = { .host = f.root, .driver = "/" } };
        _cleanup_free_ char *looked0 = NULL, *looked1 = NULL, *error = NULL;
        char want[1200];
        assert_int_equal(cdi_imex_channel_exists(&o, 0, NULL, &error), -ENOENT); /* no /dev/nvidiactl */
        assert_non_null(strstr(error, "no /dev/nvidiactl under the dev root /"));
        assert_int_equal(fx_layout_mig(&f), 0); /* its /dev has channel0 */
        assert_int_equal(cdi_imex_channel_exists(&o, 0, &looked0, NULL), 1);
        snprintf(want, sizeof want, "%s/dev/nvidia-caps-imex-channels/channel0", f.root);
        assert_string_equal(looked0, want);
        assert_int_equal(cdi_imex_channel_exists(&o, 1, &looked1, NULL), 0);
        snprintf(want, sizeof want, "%s/dev/nvidia-caps-imex-channels/channel1", f.root);
        assert_string_equal(looked1, want);
}

/* The dev root given explicitly wins over "/" when it has the nodes; hooks can be turned off. */
static void test_dev_root_and_hooks(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = h200();
        struct fx f = fixture_at("devroot");
        assert_int_equal(fx_layout_usr_local_nvidia(&f), 0);
        assert_int_equal(fx_control_nodes(&f, "/host-dev/dev"), 0);
        assert_int_equal(fx_gpu_nodes(&f, "/host-dev/dev", 1), 0);
        char *const all[] = { (char *)"all", NULL }, *const no_ldcache[] = { (char *)"update-ldcache",
                                                                             NULL };
        struct cdi_options o = {
                .roots = { .host = f.root, .driver = "/usr/local/nvidia", .dev = "/host-dev" },
                .hook_path = "/usr/bin/nvidia-ctk",
                .disabled_hooks = no_ldcache
        };
        _cleanup_(cdi_specs_freep) cdi_specs *s = NULL, *none = NULL;
        assert_int_equal(cdi_specs_build(inv, &o, &s, NULL), 0);
        assert_string_equal(s->dev_root, "/host-dev");
        assert_string_equal(s->driver_root, "/usr/local/nvidia");
        const cdi_spec *spec = s->specs[0];
        assert_string_equal(spec->edits.nodes[0].path, "/dev/nvidiactl");
        assert_string_equal(spec->edits.nodes[0].host_path, "/host-dev/dev/nvidiactl");
        assert_int_equal(spec->edits.n_hooks, 1);
        static const char *const args[] = { "nvidia-ctk", "hook", "create-symlinks", "--link",
                                            "libcuda.so.1::/lib64/libcuda.so" };
        for (size_t i = 0; i < ELEMENTSOF(args); i++)
                assert_string_equal(spec->edits.hooks[0].args[i], args[i]);
        o.disabled_hooks = all;
        assert_int_equal(cdi_specs_build(inv, &o, &none, NULL), 0);
        assert_int_equal(none->specs[0]->edits.n_hooks, 0);
}

/* The kernel's firmware_class.path is a host path: its GSP files are found under the host root even
 * when the driver root is elsewhere, and mounted where the container expects firmware. */
static void test_firmware_class_path(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = h200();
        struct fx f = fixture_at("firmware");
        assert_int_equal(fx_layout_usr_local_nvidia(&f), 0);
        assert_int_equal(fx_text(&f, "/sys/module/firmware_class/parameters/path", "/opt/fw\n", 0644), 0);
        assert_int_equal(fx_text(&f, "/opt/fw/nvidia/580.105.08/gsp_gb10x.bin", "gsp", 0644), 0);
        struct cdi_options o = { .roots = { .host = f.root, .driver = "/usr/local/nvidia" },
                                 .hook_path = "/usr/bin/nvdp" };
        _cleanup_(cdi_specs_freep) cdi_specs *s = NULL;
        assert_int_equal(cdi_specs_build(inv, &o, &s, NULL), 0);
        const struct cdi_edits *e = &s->specs[0]->edits;
        size_t found = 0;
        for (size_t i = 0; i < e->n_mounts; i++) {
                if (streq(e->mounts[i].container_path, "/lib/firmware/nvidia/580.105.08/gsp_gb10x.bin")) {
                        assert_string_equal(e->mounts[i].host_path,
                                            "/opt/fw/nvidia/580.105.08/gsp_gb10x.bin");
                        found++;
                }
                if (streq(e->mounts[i].container_path, "/lib/firmware/nvidia/580.105.08/gsp_ga10x.bin")) {
                        assert_string_equal(e->mounts[i].host_path,
                                            "/usr/local/nvidia/firmware/nvidia/580.105.08/gsp_ga10x.bin");
                        found++;
                }
        }
        assert_int_equal(found, 2);
}

/* ---- the spec directory -------------------------------------------------------------------------- */

static bool exists(const char *dir, const char *name)
{
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, name);
        return stat(p, &st) == 0;
}

static size_t count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        assert_non_null(d);
        size_t n = 0;
        for (struct dirent *de; (de = readdir(d));)
                n += de->d_name[0] != '.' || (de->d_name[1] && de->d_name[1] != '.');
        closedir(d);
        return n;
}

static void test_spec_dir(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = NULL;
        _cleanup_(cdi_specs_freep) cdi_specs *s = layout_specs(&layouts[3], &inv); /* gpu + imex */
        char dir[512], p[600];
        snprintf(dir, sizeof dir, "%s/run/cdi", tmp);

        /* Created, both written; again: nothing changes. */
        _cleanup_free_ char *error = NULL;
        assert_int_equal(cdi_spec_dir_write(dir, s, &error), 1);
        assert_true(exists(dir, "k8s.device-plugin.nvidia.com-gpu.json"));
        assert_true(exists(dir, "k8s.device-plugin.nvidia.com-imex-channel.json"));
        assert_int_equal(cdi_spec_dir_write(dir, s, &error), 0);

        /* nvidia-ctk's spec and an unrelated one stay; a stale spec of ours (another driver) is
         * replaced; ours for a class no longer wanted goes. */
        snprintf(p, sizeof p, "%s/nvidia.yaml", dir);
        assert_int_equal(write_file_atomic(p, "kind: nvidia.com/gpu\n", 21, 0644), 1);
        snprintf(p, sizeof p, "%s/vendor.com-other.json", dir);
        assert_int_equal(write_file_atomic(p, "{\"kind\": \"vendor.com/other\"}", 28, 0644), 1);
        static const char stale[] =
                "{\"cdiVersion\": \"0.6.0\", \"kind\": \"k8s.device-plugin.nvidia.com/gpu\", "
                "\"annotations\": {\"nvdp.nvidia.com/generator\": \"nvdp\", "
                "\"nvdp.nvidia.com/driver-version\": \"570.86.10\"}, \"devices\": []}";
        snprintf(p, sizeof p, "%s/k8s.device-plugin.nvidia.com-gpu.json", dir);
        assert_int_equal(write_file_atomic(p, stale, strlen(stale), 0644), 1);
        cdi_spec *imex = s->specs[1];
        s->n_specs = 1;
        assert_int_equal(cdi_spec_dir_write(dir, s, &error), 1);
        s->n_specs = 2;
        assert_ptr_equal(s->specs[1], imex);
        _cleanup_free_ char *now = NULL;
        assert_int_equal(read_full_file(p, 1 << 20, &now, NULL), 0);
        assert_non_null(strstr(now, "\"nvdp.nvidia.com/driver-version\": \"580.105.08\""));
        assert_false(exists(dir, "k8s.device-plugin.nvidia.com-imex-channel.json"));
        assert_true(exists(dir, "nvidia.yaml"));
        assert_true(exists(dir, "vendor.com-other.json"));
        assert_int_equal(count_entries(dir), 3); /* no temporary file left behind */

        /* nvdp cdi list's reader sees all three. */
        char *const dirs[] = { dir, NULL };
        struct cdi_spec_file *files = NULL;
        size_t n = 0;
        assert_int_equal(cdi_spec_dirs_read(dirs, &files, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(files[0].kind, CDI_KIND_GPU);
        assert_string_equal(files[0].devices[0], "0");
        assert_string_equal(files[1].kind, "nvidia.com/gpu");
        assert_null(files[1].devices);
        assert_string_equal(files[2].kind, "vendor.com/other");
        cdi_spec_files_free(files, n);

        /* Uninstall: only ours goes. */
        assert_int_equal(cdi_spec_dir_remove_own(dir, &error), 1);
        assert_int_equal(count_entries(dir), 2);
        assert_true(exists(dir, "nvidia.yaml"));
}

static void test_spec_dir_unwritable(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = NULL;
        _cleanup_(cdi_specs_freep) cdi_specs *s = layout_specs(&layouts[0], &inv);
        char file[300], under_file[320], blocked[300], taken[360], msg[800];
        /* A spec dir below a regular file cannot be created (root ignores modes; this it cannot). */
        snprintf(file, sizeof file, "%s/not-a-dir", tmp);
        assert_int_equal(write_file_atomic(file, "x", 1, 0644), 1);
        snprintf(under_file, sizeof under_file, "%s/cdi", file);
        _cleanup_free_ char *e1 = NULL, *e2 = NULL;
        assert_int_equal(cdi_spec_dir_write(under_file, s, &e1), -ENOTDIR);
        snprintf(msg, sizeof msg, "cannot create the CDI spec directory %s: Not a directory", under_file);
        assert_string_equal(e1, msg);

        /* The spec's own path taken by a directory: the write fails, nothing half-written stays. */
        snprintf(blocked, sizeof blocked, "%s/cdi-blocked", tmp);
        snprintf(taken, sizeof taken, "%s/k8s.device-plugin.nvidia.com-gpu.json", blocked);
        assert_int_equal(mkdir(blocked, 0755), 0);
        assert_int_equal(mkdir(taken, 0755), 0);
        assert_true(cdi_spec_dir_write(blocked, s, &e2) < 0);
        snprintf(msg, sizeof msg, "cannot write the CDI spec %s: Is a directory", taken);
        assert_string_equal(e2, msg);
        assert_int_equal(count_entries(blocked), 1);
}

/* ---- writers -------------------------------------------------------------------------------------- */

static void test_writers(void **state)
{
        _cleanup_(cdi_spec_freep) cdi_spec *s = NULL;
        struct cdi_device *d;
        assert_int_equal(cdi_spec_new("vendor.com/class", &s), 0);
        assert_string_equal(cdi_spec_version(s), "0.3.0");
        assert_int_equal(cdi_spec_add_device(s, "true", &d), 0);
        assert_int_equal(cdi_edits_add_node(&d->edits, "/dev/x", "/dev/x"), 0); /* same: no hostPath */
        assert_string_equal(cdi_spec_version(s), "0.3.0");
        assert_int_equal(cdi_spec_add_device(s, "0:1", &d), 0);
        assert_string_equal(cdi_spec_version(s), "0.5.0");
        char *const opts[] = { (char *)"ro", NULL };
        assert_int_equal(cdi_edits_add_mount(&s->edits, "/h/a \"b\"", "/c/a", opts), 0);
        assert_int_equal(cdi_edits_add_mount(&s->edits, "/other", "/c/a", opts),
                         0); /* same target: kept once */
        _cleanup_free_ char *yaml = NULL, *json = NULL;
        assert_int_equal(cdi_spec_format(s, CDI_FORMAT_YAML, &yaml, NULL), 0);
        assert_string_equal(yaml, "---\n"
                                  "cdiVersion: \"0.5.0\"\n"
                                  "kind: vendor.com/class\n"
                                  "devices:\n"
                                  "  - name: \"true\"\n"
                                  "    containerEdits:\n"
                                  "      deviceNodes:\n"
                                  "        - path: /dev/x\n"
                                  "  - name: \"0:1\"\n"
                                  "    containerEdits: {}\n"
                                  "containerEdits:\n"
                                  "  mounts:\n"
                                  "    - hostPath: \"/h/a \\\"b\\\"\"\n"
                                  "      containerPath: /c/a\n"
                                  "      options:\n"
                                  "        - ro\n");
        assert_int_equal(cdi_spec_format(s, CDI_FORMAT_JSON, &json, NULL), 0);
        assert_string_equal(
                json, "{\n"
                      "  \"cdiVersion\": \"0.5.0\",\n"
                      "  \"kind\": \"vendor.com/class\",\n"
                      "  \"devices\": [\n"
                      "    {\n"
                      "      \"name\": \"true\",\n"
                      "      \"containerEdits\": {\n"
                      "        \"deviceNodes\": [\n"
                      "          {\"path\": \"/dev/x\"}\n"
                      "        ]\n"
                      "      }\n"
                      "    },\n"
                      "    {\n"
                      "      \"name\": \"0:1\",\n"
                      "      \"containerEdits\": {\n"
                      "      }\n"
                      "    }\n"
                      "  ],\n"
                      "  \"containerEdits\": {\n"
                      "    \"mounts\": [\n"
                      "      {\"hostPath\": \"/h/a \\\"b\\\"\", \"containerPath\": \"/c/a\", \"options\": "
                      "[\"ro\"]}\n"
                      "    ]\n"
                      "  }\n"
                      "}\n");
        assert_true(cdi_device_name_valid("GPU-1234"));
        assert_true(cdi_device_name_valid("0:1"));
        assert_false(cdi_device_name_valid("MIG-GPU-1234/1/0"));
        assert_false(cdi_device_name_valid("-x"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ldcache_libcmp),
                cmocka_unit_test(test_ldcache_round_trip),
                cmocka_unit_test(test_ldcache_bad),
                cmocka_unit_test(test_ldcache_old_format),
                cmocka_unit_test_setup_teardown(test_elf_soname, setup, teardown),
                cmocka_unit_test_setup_teardown(test_layout_fhs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_layout_usr_local_nvidia, setup, teardown),
                cmocka_unit_test_setup_teardown(test_layout_operator, setup, teardown),
                cmocka_unit_test_setup_teardown(test_layout_mig, setup, teardown),
                cmocka_unit_test_setup_teardown(test_allocate_names_resolve, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dev_root_and_hooks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_imex_channel_exists, setup, teardown),
                cmocka_unit_test_setup_teardown(test_firmware_class_path, setup, teardown),
                cmocka_unit_test_setup_teardown(test_spec_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_spec_dir_unwritable, setup, teardown),
                cmocka_unit_test(test_writers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
