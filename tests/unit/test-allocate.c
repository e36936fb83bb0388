/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "deviceplugin.pb-c.h"
#include "plugin/allocate.h"
#include "plugin/kubelet-wire.h"
#include "test-plan-inventories.h"

#define U(i) "GPU-00000000-0000-0000-0000-00000000000" #i

struct fx {
        inventory *inv;
        config *c;
        plan *p;
};

static struct fx *fx_new(unsigned replicas, bool fail_gt1)
{
        struct fx *f = new0(struct fx, 1);
        f->inv = fixture_h100x8();
        assert_int_equal(config_new_default(&f->c), 0);
        if (replicas > 1) {
                f->c->sharing.strategy = SHARING_TIME_SLICING;
                f->c->sharing.fail_requests_greater_than_one = fail_gt1;
                f->c->sharing.resources = new0(struct replicated_resource, 1);
                f->c->sharing.resources[0] = (struct replicated_resource){ .name = strdup("nvidia.com/gpu"),
                                                                           .replicas = replicas,
                                                                           .devices_all = true };
                f->c->sharing.n_resources = 1;
        }
        return f;
}

static const struct plan_resource *fx_plan(struct fx *f)
{
        _cleanup_free_ char *err = NULL;
        if (f->p) /* built once per fixture (a second build leaked the first; make asan found it) */
                return &f->p->resources[0];
        if (plan_build(f->inv, f->c, &f->p, &err) < 0)
                fail_msg("plan_build: %s", strna(err));
        return &f->p->resources[0];
}

static void fx_free(struct fx *f)
{
        plan_free(f->p);
        config_free(f->c);
        fixture_inventory_free(f->inv);
        free(f);
}

static struct allocate_response *alloc(struct fx *f, char *const *ids, char *const *control)
{
        struct allocate_context ctx = {
                .config = f->c,
                .resource = fx_plan(f),
                .control_devices = control,
                .annotation_uuid = "11111111-2222-4333-8444-555555555555",
        };
        struct allocate_response *r = NULL;
        _cleanup_free_ char *err = NULL;
        if (allocate_container(&ctx, ids, strv_length(ids), &r, &err) < 0)
                fail_msg("allocate: %s", strna(err));
        return r;
}

static void test_envvar_order_and_dedup(void **state)
{
        struct fx *f = fx_new(1, false);
        char *ids[] = { U(3), U(1), U(3), NULL };
        struct allocate_response *r = alloc(f, ids, NULL);
        assert_int_equal(strv_length(r->envs), 2);
        assert_string_equal(allocate_response_env(r, "NVIDIA_VISIBLE_DEVICES"), U(3) "," U(1));
        assert_int_equal(r->n_mounts, 0);
        assert_int_equal(r->n_devices, 0);
        assert_null(r->cdi_devices);
        assert_null(r->annotations);
        allocate_response_free(r);
        fx_free(f);
}

static void test_unknown_id(void **state)
{
        struct fx *f = fx_new(1, false);
        struct allocate_context ctx = { .config = f->c, .resource = fx_plan(f) };
        char *ids[] = { U(0), (char *)"GPU-nope", NULL };
        struct allocate_response *r = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(allocate_container(&ctx, ids, 2, &r, &err), -EINVAL);
        assert_null(r);
        assert_string_equal(
                err, "invalid allocation request for \"nvidia.com/gpu\": invalid request: unknown device: "
                     "GPU-nope");
        fx_free(f);
}

/* Found by fuzzing (tests/fuzz, messages): a peer's ID with a newline forged a second log line, and a
 * megabyte ID went whole into the log and the grpc-message trailer. */
static void test_unknown_id_quoted_safely(void **state)
{
        struct fx *f = fx_new(1, false);
        struct allocate_context ctx = { .config = f->c, .resource = fx_plan(f) };
        char *ids[] = { (char *)"GPU-x\nE1127 12:00:00.000000 1 forged.c:1] hello", NULL };
        _cleanup_free_ char *err = NULL, *err2 = NULL, *big = malloc(100001);
        struct allocate_response *r = NULL;
        assert_int_equal(allocate_container(&ctx, ids, 1, &r, &err), -EINVAL);
        assert_string_equal(
                err, "invalid allocation request for \"nvidia.com/gpu\": invalid request: unknown device: "
                     "GPU-x?E1127 12:00:00.000000 1 forged.c:1] hello");
        memset(big, 'A', 100000);
        big[100000] = '\0';
        ids[0] = big;
        assert_int_equal(allocate_container(&ctx, ids, 1, &r, &err2), -EINVAL);
        assert_int_equal(strlen(err2),
                         strlen("invalid allocation request for \"nvidia.com/gpu\": invalid request: "
                                "unknown device: ") +
                                 256 + 3);
        assert_string_equal(err2 + strlen(err2) - 4, "A...");
        fx_free(f);
}

static void test_replicas_name_the_gpu_once(void **state)
{
        struct fx *f = fx_new(4, false);
        char *ids[] = { U(2) "::1", U(2) "::3", U(5) "::0", NULL };
        struct allocate_response *r = alloc(f, ids, NULL);
        assert_string_equal(allocate_response_env(r, "NVIDIA_VISIBLE_DEVICES"), U(2) "," U(5));
        allocate_response_free(r);
        fx_free(f);
}

static void test_fail_requests_greater_than_one(void **state)
{
        struct fx *f = fx_new(4, true);
        struct allocate_context ctx = { .config = f->c, .resource = fx_plan(f) };
        char *two[] = { U(2) "::1", U(2) "::3", NULL };
        struct allocate_response *r = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(allocate_container(&ctx, two, 2, &r, &err), -EINVAL);
        assert_string_equal(
                err, "invalid allocation request for \"nvidia.com/gpu\": invalid request: maximum request "
                     "size for shared resources is 1; found 2");
        /* the same replica twice is one request */
        char *dup[] = { U(2) "::1", U(2) "::1", NULL };
        assert_int_equal(allocate_container(&ctx, dup, 2, &r, NULL), 0);
        assert_string_equal(allocate_response_env(r, "NVIDIA_VISIBLE_DEVICES"), U(2));
        allocate_response_free(r);
        fx_free(f);
}

static void test_volume_mounts_and_envvar(void **state)
{
        struct fx *f = fx_new(1, false);
        f->c->flags.plugin.device_list_strategy = DEVICE_LIST_ENVVAR | DEVICE_LIST_VOLUME_MOUNTS;
        char *ids[] = { U(0), U(7), NULL };
        struct allocate_response *r = alloc(f, ids, NULL);
        /* volume-mounts wins the env var, as upstream */
        assert_string_equal(allocate_response_env(r, "NVIDIA_VISIBLE_DEVICES"),
                            "/var/run/nvidia-container-devices");
        assert_int_equal(r->n_mounts, 2);
        assert_string_equal(r->mounts[0].container_path, "/var/run/nvidia-container-devices/" U(0));
        assert_string_equal(r->mounts[0].host_path, "/dev/null");
        assert_false(r->mounts[0].read_only);
        assert_string_equal(r->mounts[1].container_path, "/var/run/nvidia-container-devices/" U(7));
        allocate_response_free(r);
        fx_free(f);
}

static void test_cdi(void **state)
{
        struct fx *f = fx_new(1, false);
        f->c->flags.plugin.device_list_strategy = DEVICE_LIST_CDI_ANNOTATIONS | DEVICE_LIST_CDI_CRI;
        char *ids[] = { U(1), U(2), NULL };
        struct allocate_response *r = alloc(f, ids, NULL);
        assert_null(allocate_response_env(r, "NVIDIA_VISIBLE_DEVICES"));
        assert_int_equal(strv_length(r->annotations), 2);
        assert_string_equal(r->annotations[0],
                            "cdi.k8s.io/nvidia-device-plugin_11111111-2222-4333-8444-555555555555");
        assert_string_equal(r->annotations[1], "k8s.device-plugin.nvidia.com/gpu=" U(
                                                       1) ",k8s.device-plugin.nvidia.com/gpu=" U(2));
        assert_int_equal(strv_length(r->cdi_devices), 2);
        assert_string_equal(r->cdi_devices[0], "k8s.device-plugin.nvidia.com/gpu=" U(1));
        assert_string_equal(r->cdi_devices[1], "k8s.device-plugin.nvidia.com/gpu=" U(2));
        allocate_response_free(r);
        fx_free(f);
}

static void test_device_specs_under_dev_root(void **state)
{
        struct fx *f = fx_new(4, false);
        f->c->flags.plugin.pass_device_specs = true;
        f->c->flags.plugin.device_id_strategy = DEVICE_ID_INDEX;
        free(f->c->flags.nvidia_dev_root);
        f->c->flags.nvidia_dev_root = strdup("/run/nvidia/driver");
        char *control[] = { (char *)"/dev/nvidiactl", (char *)"/dev/nvidia-uvm", NULL };
        char *ids[] = { U(6) "::0", U(6) "::1", U(1) "::2", NULL };
        struct allocate_response *r = alloc(f, ids, control);
        assert_string_equal(allocate_response_env(r, "NVIDIA_VISIBLE_DEVICES"), "6,1");
        assert_int_equal(r->n_devices, 4);
        const char *expect[][2] = {
                { "/dev/nvidiactl", "/run/nvidia/driver/dev/nvidiactl" },
                { "/dev/nvidia-uvm", "/run/nvidia/driver/dev/nvidia-uvm" },
                { "/dev/nvidia6", "/run/nvidia/driver/dev/nvidia6" },
                { "/dev/nvidia1", "/run/nvidia/driver/dev/nvidia1" },
        };
        for (size_t i = 0; i < 4; i++) {
                assert_string_equal(r->devices[i].container_path, expect[i][0]);
                assert_string_equal(r->devices[i].host_path, expect[i][1]);
                assert_string_equal(r->devices[i].permissions, "rw");
        }
        allocate_response_free(r);
        fx_free(f);
}

static void test_mps(void **state)
{
        struct fx *f = fx_new(4, false);
        f->c->sharing.strategy = SHARING_MPS;
        free(f->c->flags.mps_root);
        f->c->flags.mps_root = strdup("/run/nvidia/mps");
        const struct plan_resource *res = fx_plan(f);
        assert_int_equal(res->sharing, SHARING_MPS);
        char *ids[] = { U(0) "::2", NULL };
        struct allocate_response *r = alloc(f, ids, NULL);
        assert_string_equal(allocate_response_env(r, "CUDA_MPS_PIPE_DIRECTORY"), "/mps/nvidia.com/gpu/pipe");
        assert_string_equal(allocate_response_env(r, "NVIDIA_VISIBLE_DEVICES"), U(0));
        assert_int_equal(r->n_mounts, 2);
        assert_string_equal(r->mounts[0].container_path, "/mps/nvidia.com/gpu/pipe");
        assert_string_equal(r->mounts[0].host_path, "/run/nvidia/mps/nvidia.com/gpu/pipe");
        assert_string_equal(r->mounts[1].container_path, "/dev/shm");
        assert_string_equal(r->mounts[1].host_path, "/run/nvidia/mps/shm");
        allocate_response_free(r);
        fx_free(f);
}

static void test_pack_round_trip(void **state)
{
        struct fx *f = fx_new(1, false);
        f->c->flags.plugin.device_list_strategy = DEVICE_LIST_VOLUME_MOUNTS | DEVICE_LIST_CDI_CRI;
        f->c->flags.plugin.pass_device_specs = true;
        char *a[] = { U(4), NULL }, *b[] = { U(5), U(6), NULL };
        struct allocate_response *resps[2] = { alloc(f, a, NULL), alloc(f, b, NULL) };
        uint8_t *buf;
        size_t size;
        assert_int_equal(kubelet_wire_pack_allocate(resps, 2, &buf, &size), 0);
        V1beta1__AllocateResponse *out = v1beta1__allocate_response__unpack(NULL, size, buf);
        assert_non_null(out);
        assert_int_equal(out->n_container_responses, 2);
        V1beta1__ContainerAllocateResponse *c = out->container_responses[1];
        assert_int_equal(c->n_envs, 1);
        assert_string_equal(c->envs[0]->key, "NVIDIA_VISIBLE_DEVICES");
        assert_string_equal(c->envs[0]->value, "/var/run/nvidia-container-devices");
        assert_int_equal(c->n_mounts, 2);
        assert_string_equal(c->mounts[1]->container_path, "/var/run/nvidia-container-devices/" U(6));
        assert_int_equal(c->n_devices, 2);
        assert_string_equal(c->devices[0]->host_path, "/dev/nvidia5");
        assert_int_equal(c->n_cdi_devices, 2);
        assert_string_equal(c->cdi_devices[1]->name, "k8s.device-plugin.nvidia.com/gpu=" U(6));
        assert_int_equal(out->container_responses[0]->n_mounts, 1);
        v1beta1__allocate_response__free_unpacked(out, NULL);
        free(buf);
        allocate_response_free(resps[0]);
        allocate_response_free(resps[1]);
        fx_free(f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_envvar_order_and_dedup),
                cmocka_unit_test(test_unknown_id),
                cmocka_unit_test(test_unknown_id_quoted_safely),
                cmocka_unit_test(test_replicas_name_the_gpu_once),
                cmocka_unit_test(test_fail_requests_greater_than_one),
                cmocka_unit_test(test_volume_mounts_and_envvar),
                cmocka_unit_test(test_cdi),
                cmocka_unit_test(test_device_specs_under_dev_root),
                cmocka_unit_test(test_mps),
                cmocka_unit_test(test_pack_round_trip),
        };
        return cmocka_run_group_tests_name("allocate", tests, NULL, NULL);
}
