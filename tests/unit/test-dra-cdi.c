/* SPDX-License-Identifier: Apache-2.0 */
/* The DRA driver's claim CDI specs (src/dra/dra-cdi.c) on fixture node filesystems (cdi-fixture.h):
 * claims prepared through dra_claims with the real spec writer, the file read back (kind, device names,
 * device nodes, a library mount, the hooks), removed by unprepare, written again by a restart's recovery,
 * left alone by the device plugin's spec directory writer; errors name the path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>

#include "base/fileio.h"
#include "base/json.h"
#include "base/strv.h"
#include "cdi-fixture.h"
#include "cdi/cdi.h"
#include "dra/dra.h"
#include "test-plan-inventories.h"

#define UID_A "aaaaaaaa-0000-4000-8000-000000000001"
#define UID_B "bbbbbbbb-0000-4000-8000-000000000002"
#define HOOK  "/usr/local/bin/nvdp-cdi-hook"

static char tmp[256];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

/* A node: the fixture root, its inventory and node spec, the CDI root, the claims over a checkpoint
 * whose ResourceClaims the fake API server answers at once. */
struct tnode {
        struct fx fx;
        inventory *inv;
        cdi_specs *specs;
        struct dra_device *devs;
        size_t n_devs;
        char cdi_root[1024], checkpoint[512];
        struct dra_claim_specs writer;
        dra_claims *claims;
        char **names, **bodies;
        char **results; /* the last answer: "<uid> ok" or "<uid> error <text>" */
};

static int fake_fetch(void *userdata, const struct dra_claim_ref *ref, uint64_t token, char **ret_error)
{
        struct tnode *n = userdata;
        for (size_t i = 0; n->names && n->names[i]; i++)
                if (streq(n->names[i], ref->name)) {
                        dra_claims_fetched(n->claims, token, 200, n->bodies[i], strlen(n->bodies[i]), NULL);
                        return 0;
                }
        dra_claims_fetched(n->claims, token, 404, "{}", 2, "GET ...: 404 Not Found");
        return 0;
}

static int real_write_spec(void *userdata, const struct dra_claim *c, char **ret_error)
{
        struct tnode *n = userdata;
        return dra_claim_spec_write(&n->writer, c, ret_error);
}

static int real_remove_spec(void *userdata, const char *uid, char **ret_error)
{
        struct tnode *n = userdata;
        return dra_claim_spec_remove(n->cdi_root, uid, ret_error);
}

static const struct dra_claims_ops OPS = {
        .fetch = fake_fetch,
        .write_spec = real_write_spec,
        .remove_spec = real_remove_spec,
};

static void record(void *userdata, const struct dra_prepare_result *r, size_t n_results)
{
        struct tnode *n = userdata;
        n->results = strv_free(n->results);
        for (size_t i = 0; i < n_results; i++) {
                char *line = NULL;
                assert_true(asprintf(&line, "%s %s%s", r[i].uid, r[i].claim ? "ok" : "error ",
                                     r[i].claim ? "" : r[i].error) > 0);
                assert_int_equal(strv_push(&n->results, line), 0);
        }
}

static void record_unprepare(void *userdata, const struct dra_unprepare_result *r, size_t n_results)
{
        struct tnode *n = userdata;
        n->results = strv_free(n->results);
        for (size_t i = 0; i < n_results; i++) {
                char *line = NULL;
                assert_true(asprintf(&line, "%s %s", r[i].uid, r[i].error ? r[i].error : "ok") > 0);
                assert_int_equal(strv_push(&n->results, line), 0);
        }
}

static void add_claim(struct tnode *n, const char *name, const char *uid, const char *device)
{
        char *body = NULL;
        assert_true(asprintf(&body,
                             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"uid\":\"%s\"},"
                             "\"status\":{\"allocation\":{\"devices\":{\"results\":[{\"request\":\"gpu\","
                             "\"driver\":\"gpu.nvidia.com\",\"pool\":\"node-a\",\"device\":\"%s\"}]}}}}",
                             name, uid, device) > 0);
        assert_int_equal(strv_extend(&n->names, name), 0);
        assert_int_equal(strv_push(&n->bodies, body), 0);
}

static void open_claims(struct tnode *n)
{
        n->claims = dra_claims_free(n->claims);
        struct dra_claims_params p = { .node = "node-a", .checkpoint = n->checkpoint, .inventory = n->inv };
        _cleanup_free_ char *error = NULL;
        if (dra_claims_new(&p, &OPS, n, &n->claims, &error) < 0)
                fail_msg("dra_claims_new: %s", strna(error));
}

static struct tnode *node_new(const char *name, int (*layout)(const struct fx *), inventory *(*inv)(void))
{
        struct tnode *n = new0(struct tnode, 1);
        assert_non_null(n);
        snprintf(n->fx.root, sizeof n->fx.root, "%s/%s", tmp, name);
        assert_int_equal(mkdir(n->fx.root, 0755), 0);
        assert_int_equal(layout(&n->fx), 0);
        n->inv = inv();
        assert_int_equal(inventory_read_mig_minors(n->inv, n->fx.root), 0);
        struct cdi_options o = {
                .roots = { .host = n->fx.root, .driver = "/" },
                .hook_path = HOOK,
                .kernel_release = "6.18.0-test",
        };
        _cleanup_free_ char *error = NULL;
        if (cdi_specs_build(n->inv, &o, &n->specs, &error) < 0)
                fail_msg("cdi_specs_build: %s", strna(error));
        assert_int_equal(dra_devices_list(n->inv, &n->devs, &n->n_devs), 0);
        snprintf(n->cdi_root, sizeof n->cdi_root, "%s/%s-cdi", tmp, name);
        assert_int_equal(mkdir(n->cdi_root, 0755), 0);
        snprintf(n->checkpoint, sizeof n->checkpoint, "%s/%s-checkpoint.json", tmp, name);
        n->writer = (struct dra_claim_specs){ .dir = n->cdi_root,
                                              .node_spec = n->specs->specs[0],
                                              .inventory = n->inv,
                                              .devs = n->devs,
                                              .n_devs = n->n_devs };
        open_claims(n);
        return n;
}

static void node_free(struct tnode *n)
{
        dra_claims_free(n->claims);
        cdi_specs_free(n->specs);
        fixture_inventory_free(n->inv);
        free(n->devs);
        strv_free(n->names);
        strv_free(n->bodies);
        strv_free(n->results);
        free(n);
}

static int setup(void **state)
{
        snprintf(tmp, sizeof tmp, "/tmp/nvdp-test-dra-cdi-XXXXXX");
        assert_non_null(mkdtemp(tmp));
        return 0;
}

static int teardown(void **state)
{
        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

static void prepare(struct tnode *n, const char *name, const char *uid)
{
        struct dra_claim_ref ref = { .namespace = "default", .uid = uid, .name = name };
        assert_int_equal(dra_claims_prepare(n->claims, &ref, 1, record, n), 0);
        assert_non_null(n->results);
}

static void unprepare(struct tnode *n, const char *name, const char *uid)
{
        struct dra_claim_ref ref = { .namespace = "default", .uid = uid, .name = name };
        assert_int_equal(dra_claims_unprepare(n->claims, &ref, 1, record_unprepare, n), 0);
}

static char *spec_file(const struct tnode *n, const char *uid)
{
        char *p = NULL;
        assert_true(asprintf(&p, "%s/k8s.gpu.nvidia.com-claim_%s.json", n->cdi_root, uid) > 0);
        return p;
}

static json_object *read_spec(const char *path)
{
        _cleanup_free_ char *text = NULL;
        size_t size;
        json_object *doc = NULL;
        if (read_full_file(path, 1 << 22, &text, &size) < 0)
                fail_msg("no claim spec %s", path);
        assert_int_equal(json_parse(text, size, 1 << 22, 32, &doc), 0);
        return doc;
}

/* The values of key in the objects of array (e.g. every deviceNode's "path"), a strv. */
static char **values_of(json_object *array, const char *key)
{
        char **v = new0(char *, 1);
        for (size_t i = 0; i < json_array_size(array); i++) {
                const char *s = json_text(json_get(json_array_at(array, i), key));
                assert_int_equal(strv_extend(&v, s ? s : "(none)"), 0);
        }
        return v;
}

static bool exists(const char *path)
{
        return access(path, F_OK) == 0;
}

static void test_gpu_claim_spec(void **state)
{
        struct tnode *n = node_new("fhs", fx_layout_fhs, fixture_rtx4070ti);
        add_claim(n, "one-gpu", UID_A, "gpu-0");
        prepare(n, "one-gpu", UID_A);
        assert_string_equal(n->results[0], UID_A " ok");

        _cleanup_free_ char *path = spec_file(n, UID_A);
        _cleanup_json_ json_object *doc = read_spec(path);
        assert_string_equal(json_text(json_get(doc, "kind")), "k8s.gpu.nvidia.com/claim");
        assert_string_equal(json_text(json_get(doc, "cdiVersion")), "0.6.0");
        assert_string_equal(
                json_text(json_get_path(
                        doc, (const char *const[]){ "annotations", "nvdp.nvidia.com/generator", NULL })),
                "nvdp-dra");
        json_object *devices = json_get(doc, "devices");
        assert_int_equal(json_array_size(devices), 1);
        json_object *dev = json_array_at(devices, 0);
        /* The name the kubelet got: k8s.gpu.nvidia.com/claim=<uid>-gpu-0. */
        assert_string_equal(json_text(json_get(dev, "name")), UID_A "-gpu-0");
        _cleanup_strv_free_ char **nodes = values_of(
                json_get_path(dev, (const char *const[]){ "containerEdits", "deviceNodes", NULL }), "path");
        _cleanup_free_ char *joined = strv_join(nodes, " ");
        assert_string_equal(joined, "/dev/nvidia0 /dev/dri/card1 /dev/dri/renderD128");

        /* The common edits: control nodes, the driver's libraries, the hooks. */
        json_object *edits = json_get(doc, "containerEdits");
        _cleanup_strv_free_ char **control = values_of(json_get(edits, "deviceNodes"), "path");
        _cleanup_free_ char *control_joined = strv_join(control, " ");
        assert_string_equal(control_joined,
                            "/dev/nvidiactl /dev/nvidia-uvm /dev/nvidia-uvm-tools /dev/nvidia-modeset");
        _cleanup_strv_free_ char **mounts = values_of(json_get(edits, "mounts"), "containerPath");
        assert_true(strv_contains(mounts, "/usr/lib/x86_64-linux-gnu/libcuda.so.580.105.08"));
        assert_true(strv_contains(mounts, "/usr/bin/nvidia-smi"));
        _cleanup_strv_free_ char **hooks = values_of(json_get(edits, "hooks"), "path");
        _cleanup_free_ char *hooks_joined = strv_join(hooks, " ");
        assert_string_equal(hooks_joined, HOOK " " HOOK);
        json_object *args = json_get(json_array_at(json_get(edits, "hooks"), 1), "args");
        assert_string_equal(json_text(json_array_at(args, 0)), "nvdp-cdi-hook");
        assert_string_equal(json_text(json_array_at(args, 1)), "update-ldcache");

        /* The device plugin's spec directory writer (same directory) leaves the claim's spec alone. */
        _cleanup_free_ char *error = NULL;
        assert_true(cdi_spec_dir_write(n->cdi_root, n->specs, &error) >= 0);
        assert_true(exists(path));
        /* nvdp cdi remove takes the plugin's spec only (one file). */
        assert_int_equal(cdi_spec_dir_remove_own(n->cdi_root, &error), 1);
        assert_true(exists(path));

        /* Unprepare: the spec goes. */
        unprepare(n, "one-gpu", UID_A);
        assert_string_equal(n->results[0], UID_A " ok");
        assert_false(exists(path));
        node_free(n);
}

static void test_mig_claim_spec(void **state)
{
        struct tnode *n = node_new("mig", fx_layout_mig, fixture_a100_mig);
        /* GPU 0's 2g.10gb: GPU instance 5, compute instance 0; mig-minors gives it caps 48 and 49. */
        add_claim(n, "one-mig", UID_B, "gpu-0-mig-5-0");
        prepare(n, "one-mig", UID_B);
        assert_string_equal(n->results[0], UID_B " ok");
        _cleanup_free_ char *path = spec_file(n, UID_B);
        _cleanup_json_ json_object *doc = read_spec(path);
        json_object *dev = json_array_at(json_get(doc, "devices"), 0);
        assert_string_equal(json_text(json_get(dev, "name")), UID_B "-gpu-0-mig-5-0");
        _cleanup_strv_free_ char **nodes = values_of(
                json_get_path(dev, (const char *const[]){ "containerEdits", "deviceNodes", NULL }), "path");
        _cleanup_free_ char *joined = strv_join(nodes, " ");
        assert_string_equal(joined,
                            "/dev/nvidia0 /dev/nvidia-caps/nvidia-cap48 /dev/nvidia-caps/nvidia-cap49");
        node_free(n);
}

/* A restart: the checkpoint's claims get their specs again (here: the CDI root was a tmpfs and is empty),
 * with the same bytes; a claim spec no record owns is removed. */
static void test_restart_rewrites(void **state)
{
        struct tnode *n = node_new("restart", fx_layout_fhs, fixture_rtx4070ti);
        add_claim(n, "one-gpu", UID_A, "gpu-0");
        prepare(n, "one-gpu", UID_A);
        _cleanup_free_ char *path = spec_file(n, UID_A), *orphan = spec_file(n, UID_B), *before = NULL,
                            *after = NULL;
        assert_int_equal(read_full_file(path, 1 << 22, &before, NULL), 0);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(write_file_atomic(orphan, "{}", 2, 0644), 1);

        open_claims(n);
        _cleanup_strv_free_ char **names = NULL;
        assert_int_equal(dir_list(n->cdi_root, NULL, 64, &names), 0);
        size_t removed = 0;
        _cleanup_free_ char *error = NULL;
        assert_int_equal(dra_claims_recover(n->claims, names, &removed, &error), 0);
        assert_int_equal(removed, 1);
        assert_false(exists(orphan));
        assert_int_equal(read_full_file(path, 1 << 22, &after, NULL), 0);
        assert_string_equal(after, before);
        node_free(n);
}

/* A CDI root that cannot be made: the claim is not prepared, the sentence names the directory. */
static void test_unwritable(void **state)
{
        struct tnode *n = node_new("unwritable", fx_layout_fhs, fixture_rtx4070ti);
        char file[512];
        snprintf(file, sizeof file, "%s/not-a-dir", tmp);
        assert_int_equal(write_file_atomic(file, "x", 1, 0644), 1);
        snprintf(n->cdi_root, sizeof n->cdi_root, "%s/cdi", file);
        add_claim(n, "one-gpu", UID_A, "gpu-0");
        prepare(n, "one-gpu", UID_A);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want,
                             UID_A
                             " error cannot write the claim's CDI spec: cannot create the CDI directory "
                             "%s/cdi: Not a directory",
                             file) > 0);
        assert_string_equal(n->results[0], want);
        assert_int_equal(dra_claims_state(n->claims)->n_claims, 0);
        node_free(n);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_gpu_claim_spec, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mig_claim_spec, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restart_rewrites, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
