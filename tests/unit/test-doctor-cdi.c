/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp doctor's CDI checks on node filesystems built here: the spec nvdp writes for the running driver
 * passes both; a spec of another driver version, a missing spec and names Allocate returns that no
 * spec defines fail, with the command that regenerates the spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>

#include "base/fileio.h"
#include "base/strv.h"
#include "cdi-fixture.h"
#include "cdi/cdi.h"
#include "doctor/doctor.h"
#include "test-plan-inventories.h"

#define FIX                                                                                                 \
        "nvdp cdi generate --spec-dir /var/run/cdi   # on the node; or restart the device plugin pod, "     \
        "which "                                                                                            \
        "rewrites its spec when it starts"

static char tmp[256];
static struct fx node;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

static int setup(void **state)
{
        snprintf(tmp, sizeof tmp, "/tmp/nvdp-test-doctor-cdi-XXXXXX");
        assert_non_null(mkdtemp(tmp));
        node = (struct fx){};
        snprintf(node.root, sizeof node.root, "%s/node", tmp);
        assert_int_equal(fx_layout_mig(&node), 0);
        return 0;
}

static int teardown(void **state)
{
        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

static const struct doctor_nvml_probe probe = {
        .attempted = true,
        .loaded = true,
        .gpu_count = 2,
        .driver_version = "580.105.08",
        .cuda_driver_version = 13000,
};

/* The names Allocate returns on the MIG node with the mixed strategy. */
static char **names_mixed(const inventory *inv)
{
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_(plan_freep) plan *p = NULL;
        char **names = NULL;
        assert_int_equal(config_new_default(&c), 0);
        c->flags.mig_strategy = MIG_STRATEGY_MIXED;
        assert_int_equal(plan_build(inv, c, &p, NULL), 0);
        assert_int_equal(cdi_allocate_names(p, c, &names), 0);
        return names;
}

/* nvdp's own spec for the node, written into its /var/run/cdi. */
static void write_spec(const inventory *inv)
{
        struct cdi_options o = { .roots = { .host = node.root, .driver = "/" },
                                 .hook_path = "/usr/bin/nvdp" };
        _cleanup_(cdi_specs_freep) cdi_specs *s = NULL;
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/var/run/cdi", node.root);
        assert_int_equal(cdi_specs_build(inv, &o, &s, NULL), 0);
        assert_true(cdi_spec_dir_write(dir, s, NULL) >= 0);
}

static doctor_report *run(const struct doctor_options *o)
{
        doctor_report *r = doctor_report_new();
        assert_non_null(r);
        assert_int_equal(doctor_check_cdi(o, r), 0);
        assert_int_equal(r->n_results, 2);
        return r;
}

static void assert_result(const doctor_report *r, size_t i, const char *id, enum doctor_verdict v,
                          const char *evidence, const char *fix)
{
        assert_string_equal(r->results[i].id, id);
        assert_string_equal(r->results[i].evidence, evidence);
        assert_int_equal(r->results[i].verdict, v);
        if (fix)
                assert_string_equal(r->results[i].fix, fix);
        else
                assert_null(r->results[i].fix);
}

static void test_not_expected(void **state)
{
        struct doctor_options o = { .root = node.root, .nvml = &probe };
        _cleanup_(doctor_report_freep) doctor_report *r = run(&o);
        assert_result(r, 0, "cdi.spec-driver", DOCTOR_SKIP, "no CDI device-list strategy configured", NULL);
        assert_result(r, 1, "cdi.spec-devices", DOCTOR_SKIP, "no CDI device-list strategy configured", NULL);
}

static void test_current_spec(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        assert_int_equal(inventory_read_mig_minors(inv, node.root), 0);
        _cleanup_strv_free_ char **names = names_mixed(inv);
        write_spec(inv);
        struct doctor_options o = {
                .root = node.root, .nvml = &probe, .cdi_expected = true, .cdi_names = names
        };
        _cleanup_(doctor_report_freep) doctor_report *r = run(&o);
        assert_result(
                r, 0, "cdi.spec-driver", DOCTOR_OK,
                "/var/run/cdi/k8s.device-plugin.nvidia.com-gpu.json is for driver 580.105.08, the running "
                "one",
                NULL);
        assert_result(r, 1, "cdi.spec-devices", DOCTOR_OK,
                      "every CDI device Allocate names (6) resolves in /var/run/cdi", NULL);
}

static void test_no_spec(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        assert_int_equal(inventory_read_mig_minors(inv, node.root), 0);
        _cleanup_strv_free_ char **names = names_mixed(inv);
        struct doctor_options o = {
                .root = node.root, .nvml = &probe, .cdi_expected = true, .cdi_names = names
        };
        _cleanup_(doctor_report_freep) doctor_report *r = run(&o);
        assert_result(
                r, 0, "cdi.spec-driver", DOCTOR_FAIL,
                "no spec of kind k8s.device-plugin.nvidia.com/gpu in /var/run/cdi: the CDI device names the "
                "plugin returns resolve nowhere",
                FIX);
        assert_result(
                r, 1, "cdi.spec-devices", DOCTOR_FAIL,
                "6 of 6 CDI devices Allocate names are in no spec in /var/run/cdi: "
                "k8s.device-plugin.nvidia.com/gpu=MIG-a0000000-0000-0000-0000-000000000000, "
                "k8s.device-plugin.nvidia.com/gpu=MIG-a0100000-0000-0000-0000-000000000000, "
                "k8s.device-plugin.nvidia.com/gpu=MIG-a0200000-0000-0000-0000-000000000000, "
                "k8s.device-plugin.nvidia.com/gpu=MIG-a0300000-0000-0000-0000-000000000000, "
                "k8s.device-plugin.nvidia.com/gpu=MIG-a1000000-0000-0000-0000-000000000000, and 1 more "
                "(containers asking for them fail to start)",
                FIX);
}

/* A spec from before a driver upgrade (nvdp's), then one written by NVIDIA's plugin (no annotation: the
 * version comes from the libcuda it mounts) naming only whole GPUs. */
static void test_stale_and_foreign_specs(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_a100_mig();
        assert_int_equal(inventory_read_mig_minors(inv, node.root), 0);
        _cleanup_strv_free_ char **names = names_mixed(inv);
        char dir[1100], path[1200];
        snprintf(dir, sizeof dir, "%s/var/run/cdi", node.root);
        assert_int_equal(fx_mkdirs(&node, "/var/run/cdi"), 0);
        snprintf(path, sizeof path, "%s/k8s.device-plugin.nvidia.com-gpu.json", dir);
        static const char stale[] =
                "{\"cdiVersion\": \"0.6.0\", \"kind\": \"k8s.device-plugin.nvidia.com/gpu\", "
                "\"annotations\": "
                "{\"nvdp.nvidia.com/driver-version\": \"570.86.10\"}, \"devices\": [{\"name\": "
                "\"MIG-a0000000-0000-0000-0000-000000000000\", \"containerEdits\": {}}]}";
        assert_int_equal(write_file_atomic(path, stale, strlen(stale), 0644), 1);
        struct doctor_options o = {
                .root = node.root, .nvml = &probe, .cdi_expected = true, .cdi_names = names
        };
        _cleanup_(doctor_report_freep) doctor_report *r = run(&o);
        assert_result(
                r, 0, "cdi.spec-driver", DOCTOR_FAIL,
                "/var/run/cdi/k8s.device-plugin.nvidia.com-gpu.json is for driver 570.86.10 but driver "
                "580.105.08 is running: containers get libraries that are gone",
                FIX);
        assert_int_equal(r->results[1].verdict, DOCTOR_FAIL);
        assert_non_null(strstr(r->results[1].evidence, "5 of 6 CDI devices"));

        static const char foreign[] = "cdiVersion: 0.5.0\n"
                                      "kind: k8s.device-plugin.nvidia.com/gpu\n"
                                      "devices:\n"
                                      "- name: GPU-10000000-0000-0000-0000-000000000000\n"
                                      "  containerEdits: {deviceNodes: [{path: /dev/nvidia0}]}\n"
                                      "containerEdits:\n"
                                      "  mounts:\n"
                                      "  - hostPath: /usr/lib/x86_64-linux-gnu/libcuda.so.580.105.08\n"
                                      "    containerPath: /usr/lib/x86_64-linux-gnu/libcuda.so.580.105.08\n";
        assert_int_equal(unlink(path), 0);
        snprintf(path, sizeof path, "%s/k8s.device-plugin.nvidia.com-gpu.yaml", dir);
        assert_int_equal(write_file_atomic(path, foreign, strlen(foreign), 0644), 1);
        _cleanup_(doctor_report_freep) doctor_report *r2 = run(&o);
        assert_result(
                r2, 0, "cdi.spec-driver", DOCTOR_OK,
                "/var/run/cdi/k8s.device-plugin.nvidia.com-gpu.yaml is for driver 580.105.08, the running "
                "one",
                NULL);
        assert_non_null(strstr(r2->results[1].evidence, "6 of 6 CDI devices"));

        /* NVML not loaded: the version cannot be compared, the names are unknown. */
        struct doctor_options blind = { .root = node.root, .cdi_expected = true };
        _cleanup_(doctor_report_freep) doctor_report *r3 = run(&blind);
        assert_result(
                r3, 0, "cdi.spec-driver", DOCTOR_SKIP,
                "/var/run/cdi/k8s.device-plugin.nvidia.com-gpu.yaml found; the running driver's version is "
                "unknown (NVML not loaded)",
                NULL);
        assert_result(r3, 1, "cdi.spec-devices", DOCTOR_SKIP,
                      "the devices Allocate names are unknown (NVML not loaded)", NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_not_expected, setup, teardown),
                cmocka_unit_test_setup_teardown(test_current_spec, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_spec, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stale_and_foreign_specs, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
