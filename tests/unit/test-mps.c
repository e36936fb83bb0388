/* SPDX-License-Identifier: Apache-2.0 */
/* The MPS daemon's pure parts: specs from the plan (limits, thread share, commands), the MPS root's
 * layout and readiness check, the shm size, where the control binary is looked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/fileio.h"
#include "base/strv.h"
#include "base/unix-socket.h"
#include "config/config.h"
#include "mps/mps-control.h"
#include "mps/mps-root.h"
#include "mps/mps-spec.h"
#include "resource/plan.h"
#include "test-plan-inventories.h"

static char tmp[] = "/tmp/nvdp-test-mps-XXXXXX";

static int setup_tmp(void **state)
{
        strcpy(tmp, "/tmp/nvdp-test-mps-XXXXXX");
        assert_non_null(mkdtemp(tmp));
        return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

static int teardown_tmp(void **state)
{
        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

static void write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

/* The specs of a config file's text on an inventory. */
static mps_specs *specs_of(const inventory *inv, const char *yaml)
{
        char path[] = "/tmp/nvdp-test-mps-config-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        write_text(path, yaml);
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(config_new_default(&c), 0);
        int r = config_load_file(c, path, &err);
        unlink(path);
        if (r < 0)
                fail_msg("config: %s", strna(err));
        if (strstr(yaml, "migStrategy: single"))
                c->flags.mig_strategy = MIG_STRATEGY_SINGLE;
        _cleanup_(plan_freep) plan *p = NULL;
        if (plan_build(inv, c, &p, &err) < 0)
                fail_msg("plan: %s", strna(err));
        mps_specs *s = NULL;
        assert_int_equal(mps_specs_build(inv, p, &s), 0);
        return s;
}

#define H100_0 "GPU-00000000-0000-0000-0000-000000000000"
#define H100_1 "GPU-00000000-0000-0000-0000-000000000001"

static void test_max_clients(void **state)
{
        assert_int_equal(mps_max_clients(9, 0), 48);
        assert_int_equal(mps_max_clients(7, 5), 48);
        assert_int_equal(mps_max_clients(7, 0), 16);
        assert_int_equal(mps_max_clients(6, 1), 16);
}

/* Two of eight H100s shared with MPS, four replicas each: 81559 MiB / 4 = 20389 MiB, 100 / 4 = 25 %. */
static void test_two_gpus_four_replicas(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(mps_specs_freep) mps_specs *s = specs_of(inv, "sharing:\n"
                                                                "  mps:\n"
                                                                "    resources:\n"
                                                                "    - name: nvidia.com/gpu\n"
                                                                "      rename: gpu.mps\n"
                                                                "      replicas: 4\n"
                                                                "      devices: [0, 1]\n");
        assert_int_equal(s->n, 1);
        const struct mps_spec *m = &s->specs[0];
        assert_string_equal(m->resource, "nvidia.com/gpu.mps");
        assert_null(m->error);
        assert_int_equal(m->thread_percentage, 25);
        assert_int_equal(m->n_gpus, 2);
        assert_string_equal(m->gpus[0].uuid, H100_0);
        assert_int_equal(m->gpus[0].limit_mib, 20389);
        assert_int_equal(m->gpus[1].index, 1);
        assert_int_equal(m->gpus[1].replicas, 4);
        _cleanup_free_ char *visible = mps_spec_visible_devices(m);
        assert_string_equal(visible, H100_0 "," H100_1);
        _cleanup_strv_free_ char **cmds = NULL;
        assert_int_equal(mps_spec_commands(m, &cmds), 0);
        assert_int_equal(strv_length(cmds), 3);
        assert_string_equal(cmds[0], "set_default_device_pinned_mem_limit " H100_0 " 20389M");
        assert_string_equal(cmds[1], "set_default_device_pinned_mem_limit " H100_1 " 20389M");
        assert_string_equal(cmds[2], "set_default_active_thread_percentage 25");

        /* copies compare equal; another limit does not */
        struct mps_spec copy;
        assert_int_equal(mps_spec_copy(m, &copy), 0);
        assert_true(mps_spec_equal(m, &copy));
        copy.gpus[1].limit_mib = 20388;
        assert_false(mps_spec_equal(m, &copy));
        mps_spec_done(&copy);
}

/* Upstream's usual config: every GPU, three replicas: 81559 / 3 = 27186 MiB, 100 / 3 = 33 %. */
static void test_all_gpus_three_replicas(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(mps_specs_freep) mps_specs *s = specs_of(inv, "sharing:\n"
                                                                "  mps:\n"
                                                                "    resources:\n"
                                                                "    - name: gpu\n"
                                                                "      replicas: 3\n");
        assert_int_equal(s->n, 1);
        assert_string_equal(s->specs[0].resource, "nvidia.com/gpu");
        assert_int_equal(s->specs[0].n_gpus, 8);
        assert_int_equal(s->specs[0].thread_percentage, 33);
        for (size_t i = 0; i < 8; i++)
                assert_int_equal(s->specs[0].gpus[i].limit_mib, 27186);
        assert_string_equal(s->specs[0].gpus[7].uuid, "GPU-00000000-0000-0000-0000-000000000007");
}

static void test_no_mps(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(mps_specs_freep) mps_specs *ts = specs_of(inv, "sharing:\n"
                                                                 "  timeSlicing:\n"
                                                                 "    resources:\n"
                                                                 "    - name: gpu\n"
                                                                 "      replicas: 4\n");
        assert_int_equal(ts->n, 0);
        _cleanup_(mps_specs_freep) mps_specs *none = specs_of(inv, "version: v1\n");
        assert_int_equal(none->n, 0);
}

static void test_too_many_replicas(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(mps_specs_freep) mps_specs *s = specs_of(inv, "sharing:\n"
                                                                "  mps:\n"
                                                                "    resources:\n"
                                                                "    - name: gpu\n"
                                                                "      replicas: 49\n");
        assert_int_equal(s->n, 1);
        assert_string_equal(s->specs[0].error,
                            "49 replicas of GPU 0 (" H100_0
                            ", compute capability 9.0) exceed the 48 clients an MPS server "
                            "supports there");

        /* Before compute capability 7.5 the limit is 16. */
        inv->gpus[0].cc_major = 7;
        _cleanup_(mps_specs_freep) mps_specs *v = specs_of(inv, "sharing:\n"
                                                                "  mps:\n"
                                                                "    resources:\n"
                                                                "    - name: gpu\n"
                                                                "      replicas: 17\n");
        assert_string_equal(v->specs[0].error,
                            "17 replicas of GPU 0 (" H100_0
                            ", compute capability 7.0) exceed the 16 clients an MPS server "
                            "supports there");
}

static void test_mig_devices(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig_uniform();
        _cleanup_(mps_specs_freep) mps_specs *s = specs_of(inv, "flags:\n"
                                                                "  migStrategy: single\n"
                                                                "sharing:\n"
                                                                "  mps:\n"
                                                                "    resources:\n"
                                                                "    - name: gpu\n"
                                                                "      replicas: 2\n");
        assert_int_equal(s->n, 1);
        assert_string_equal(s->specs[0].error, "MPS sharing is not supported for MIG devices "
                                               "(MIG-b0000000-0000-0000-0000-000000000000 is one)");
}

static void test_shm_size(void **state)
{
        char size[64];
        mps_shm_size("MemTotal:       16318412 kB\nMemFree:         1000 kB\n", size, sizeof size);
        assert_string_equal(size, "8159206k");
        mps_shm_size("MemFree: 1 kB\nMemTotal: 1000001 kB\n", size, sizeof size);
        assert_string_equal(size, "500000k");
        mps_shm_size("MemTotal: 4096\n", size, sizeof size);
        assert_string_equal(size, "2048");
        mps_shm_size("MemFree: 1 kB\n", size, sizeof size);
        assert_string_equal(size, "65536k");
        mps_shm_size(NULL, size, sizeof size);
        assert_string_equal(size, "65536k");
}

static void test_paths(void **state)
{
        _cleanup_free_ char *a = mps_path("/run/nvidia/mps", "nvidia.com/gpu", MPS_PIPE_DIR);
        _cleanup_free_ char *b = mps_path("/run/nvidia/mps", "nvidia.com/gpu", NULL);
        _cleanup_free_ char *c = mps_path("/run/nvidia/mps", NULL, MPS_READY_FILE);
        assert_string_equal(a, "/run/nvidia/mps/nvidia.com/gpu/pipe");
        assert_string_equal(b, "/run/nvidia/mps/nvidia.com/gpu");
        assert_string_equal(c, "/run/nvidia/mps/.ready");
}

static void test_root_resolve(void **state)
{
        _cleanup_free_ char *root = NULL, *err = NULL;
        assert_int_equal(mps_root_resolve(tmp, &root, &err), 0);
        assert_string_equal(root, tmp);
        if (access(MPS_CONTAINER_ROOT, F_OK) == 0)
                skip(); /* this machine has /mps: the fallback would take it */
        _cleanup_free_ char *missing = NULL, *r2 = NULL;
        assert_true(asprintf(&missing, "%s/nowhere", tmp) > 0);
        assert_int_equal(mps_root_resolve(missing, &r2, &err), -ENOENT);
        assert_null(r2);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want,
                             "the MPS root is not a directory here: neither %s (--mps-root, MPS_ROOT or "
                             "flags.mpsRoot) nor /mps (where upstream's chart mounts it)",
                             missing) > 0);
        assert_string_equal(err, want);
}

/* Binds a listening socket at path, through the directory's O_PATH descriptor when it is long. */
static int listen_at(const char *dir, const char *name)
{
        int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", dfd, name);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(listen(fd, 4), 0);
        close(dfd);
        return fd;
}

static void test_resource_ready(void **state)
{
        /* A resource directory deeper than sockaddr_un's 108 bytes allow. */
        _cleanup_free_ char *root = NULL, *pipe = NULL, *started = NULL, *sock = NULL;
        assert_true(asprintf(&root, "%s/%s", tmp,
                             "a-long-directory-name-to-pass-the-limit-of-sun-path/"
                             "another-long-directory-name-to-pass-it") > 0);
        assert_true(asprintf(&pipe, "%s/nvidia.com/gpu/pipe", root) > 0);
        assert_true(asprintf(&started, "%s/nvidia.com/gpu/.started", root) > 0);
        assert_true(asprintf(&sock, "%s/control", pipe) > 0);
        assert_true(strlen(sock) > 108);
        assert_int_equal(mps_resource_ready(root, "nvidia.com/gpu", true), 0); /* nothing there */
        assert_int_equal(mkdir_p(pipe, 0755), 0);
        assert_int_equal(mps_resource_ready(root, "nvidia.com/gpu", true), 0);
        write_text(started, "");
        assert_int_equal(mps_resource_ready(root, "nvidia.com/gpu", false), 1);
        assert_int_equal(mps_resource_ready(root, "nvidia.com/gpu", true), 0); /* no daemon listens */
        int fd = listen_at(pipe, "control");
        assert_int_equal(unix_socket_probe(sock), 0);
        assert_int_equal(mps_resource_ready(root, "nvidia.com/gpu", true), 1);
        close(fd); /* the daemon died: its socket file stays */
        assert_int_equal(unix_socket_probe(sock), -ECONNREFUSED);
        assert_int_equal(mps_resource_ready(root, "nvidia.com/gpu", true), 0);
        assert_int_equal(mps_resource_ready(root, "nvidia.com/gpu", false), 1);
}

static void test_search_path(void **state)
{
        _cleanup_strv_free_ char **a = NULL, **b = NULL, **c = NULL;
        assert_int_equal(mps_control_search_path(NULL, "/opt/bin:/usr/bin:/opt/bin", &a), 0);
        _cleanup_free_ char *ja = strv_join(a, ":");
        assert_string_equal(ja, "/opt/bin:/usr/bin:/usr/local/nvidia/bin");
        assert_int_equal(mps_control_search_path("/driver-root", "/usr/bin", &b), 0);
        _cleanup_free_ char *jb = strv_join(b, ":");
        assert_string_equal(jb, "/usr/bin:/usr/local/nvidia/bin:/driver-root/usr/bin:/driver-root/bin");
        assert_int_equal(mps_control_search_path("/", NULL, &c), 0);
        _cleanup_free_ char *jc = strv_join(c, ":");
        assert_string_equal(jc, MPS_DEFAULT_PATH ":/usr/local/nvidia/bin");
}

static void test_find(void **state)
{
        _cleanup_free_ char *d1 = NULL, *d2 = NULL, *f1 = NULL, *f2 = NULL, *found = NULL;
        assert_true(asprintf(&d1, "%s/a", tmp) > 0 && asprintf(&d2, "%s/b", tmp) > 0);
        assert_true(asprintf(&f1, "%s/" MPS_CONTROL_BINARY, d1) > 0);
        assert_true(asprintf(&f2, "%s/" MPS_CONTROL_BINARY, d2) > 0);
        assert_int_equal(mkdir(d1, 0755), 0);
        assert_int_equal(mkdir(d2, 0755), 0);
        char *dirs[] = { d1, d2, NULL };
        assert_int_equal(mps_control_find(dirs, &found), -ENOENT);
        write_text(f1, "not executable");
        write_text(f2, "#!/bin/sh\n");
        assert_int_equal(chmod(f2, 0755), 0);
        assert_int_equal(mps_control_find(dirs, &found), 0);
        assert_string_equal(found, f2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_max_clients),
                cmocka_unit_test(test_two_gpus_four_replicas),
                cmocka_unit_test(test_all_gpus_three_replicas),
                cmocka_unit_test(test_no_mps),
                cmocka_unit_test(test_too_many_replicas),
                cmocka_unit_test(test_mig_devices),
                cmocka_unit_test(test_shm_size),
                cmocka_unit_test(test_paths),
                cmocka_unit_test_setup_teardown(test_root_resolve, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_resource_ready, setup_tmp, teardown_tmp),
                cmocka_unit_test(test_search_path),
                cmocka_unit_test_setup_teardown(test_find, setup_tmp, teardown_tmp),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
