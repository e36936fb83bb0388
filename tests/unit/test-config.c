/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>

#include "base/fileio.h"
#include "base/parse.h"
#include "base/strv.h"
#include "config/config-internal.h"
#include "config/config.h"

static char *fixture(const char *name)
{
        const char *src = getenv("NVDP_SRC");
        char *p;
        assert_true(asprintf(&p, "%s/tests/unit/fixtures/config/%s", src ? src : ".", name) > 0);
        return p;
}

/* Loads a fixture over the defaults; returns the error (or NULL) and the config in *ret. */
static int load(const char *name, config **ret, char **ret_error)
{
        _cleanup_free_ char *path = fixture(name);
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(config_new_default(&c), 0);
        int r = config_load_file(c, path, ret_error);
        if (r >= 0)
                *ret = TAKE_PTR(c);
        return r;
}

/* The error for a fixture, with the source directory cut off so the expected text is short. */
static char *load_error(const char *name)
{
        _cleanup_(config_freep) config *c = NULL;
        char *err = NULL;
        assert_true(load(name, &c, &err) < 0);
        assert_non_null(err);
        const char *src = getenv("NVDP_SRC");
        _cleanup_free_ char *prefix = NULL;
        assert_true(asprintf(&prefix, "%s/tests/unit/fixtures/config/", src ? src : ".") > 0);
        assert_true(startswith(err, prefix));
        char *short_err = strdup(err + strlen(prefix));
        free(err);
        return short_err;
}

static const char *const env_names[] = {
        "MIG_STRATEGY",       "GFD_MIG_STRATEGY",   "FAIL_ON_INIT_ERROR",       "DEVICE_LIST_STRATEGY",
        "DEVICE_ID_STRATEGY", "CONFIG_FILE",        "GFD_CONFIG_FILE",          "MPS_ROOT",
        "NVIDIA_DRIVER_ROOT", "NVIDIA_DEV_ROOT",    "KUBELET_SOCKET",           "HEALTH_POLICY",
        "IMEX_CHANNEL_IDS",   "NVIDIA_CTK_PATH",    "NVIDIA_CDI_HOOK_PATH",     "GFD_OUTPUT_FILE",
        "NODE_NAME",          "GFD_SLEEP_INTERVAL", "METRICS_ADDRESS",          "LOG_FORMAT",
        "NVDP_ROOT",          "GFD_ONESHOT",        "HEALTH_RECOVERY_INTERVAL", "STRICT_CONFIG",
};

static int clear_env(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(env_names); i++)
                unsetenv(env_names[i]);
        return 0;
}

static int args(enum nvdp_program p, config **ret, char **ret_error, ...)
{
        char *argv[32] = { p == PROGRAM_GFD ? "gpu-feature-discovery" : "nvidia-device-plugin" };
        int argc = 1;
        va_list ap;
        va_start(ap, ret_error);
        for (const char *a; (a = va_arg(ap, const char *));)
                argv[argc++] = (char *)a;
        va_end(ap);
        return config_from_args(p, argc, argv, ret, ret_error);
}

static void test_defaults(void **state)
{
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, NULL), 0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_NONE);
        assert_true(c->flags.fail_on_init_error);
        assert_string_equal(c->flags.nvidia_driver_root, "/");
        assert_string_equal(c->flags.nvidia_dev_root, "/");
        assert_string_equal(c->flags.mps_root, "");
        assert_false(c->flags.plugin.pass_device_specs);
        assert_int_equal(c->flags.plugin.device_list_strategy, DEVICE_LIST_ENVVAR);
        assert_int_equal(c->flags.plugin.device_id_strategy, DEVICE_ID_UUID);
        assert_string_equal(c->flags.plugin.cdi_annotation_prefix, "cdi.k8s.io/");
        assert_string_equal(c->flags.plugin.nvidia_ctk_path, "/usr/bin/nvidia-ctk");
        assert_string_equal(c->flags.plugin.container_driver_root, "/driver-root");
        assert_int_equal(c->flags.plugin.shared_devices_allocation_policy, ALLOCATION_DISTRIBUTED);
        assert_string_equal(c->flags.plugin.kubelet_socket, "/var/lib/kubelet/device-plugins/kubelet.sock");
        assert_string_equal(c->flags.device_discovery_strategy, "auto");
        assert_int_equal(c->flags.plugin.health_policy, HEALTH_POLICY_CATALOG);
        assert_true(c->flags.plugin.health_recovery_interval == 300 * NSEC_PER_SEC);
        assert_null(c->flags.plugin.metrics_address);
        assert_true(c->flags.plugin.node_events);
        assert_string_equal(c->flags.root, "/");
        assert_int_equal(c->flags.log_format, LOG_FORMAT_KLOG);
        assert_true(c->flags.use_node_feature_api);
        assert_true(c->flags.gfd.sleep_interval == 60 * NSEC_PER_SEC);
        assert_string_equal(c->flags.gfd.output_file,
                            "/etc/kubernetes/node-feature-discovery/features.d/gfd");
        assert_string_equal(c->flags.gfd.machine_type_file, "/sys/class/dmi/id/product_name");
        assert_int_equal(c->sharing.strategy, SHARING_NONE);
        assert_int_equal(c->sharing.n_resources, 0);
        assert_int_equal(c->imex.n_channel_ids, 0);
        assert_null(c->config_file);
        assert_false(c->print_config);
        c = config_free(c);

        /* the chart's events.enabled=false */
        setenv("NODE_EVENTS", "false", 1);
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, NULL), 0);
        assert_false(c->flags.plugin.node_events);
        unsetenv("NODE_EVENTS");
}

static void test_time_slicing(void **state)
{
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(load("time-slicing.yaml", &c, NULL), 0);
        assert_int_equal(c->sharing.strategy, SHARING_TIME_SLICING);
        assert_string_equal(sharing_strategy_to_string(c->sharing.strategy), "time-slicing");
        assert_false(c->sharing.fail_requests_greater_than_one);
        assert_int_equal(c->sharing.n_resources, 1);
        assert_string_equal(c->sharing.resources[0].name, "nvidia.com/gpu");
        assert_int_equal(c->sharing.resources[0].replicas, 10);
        assert_null(c->sharing.resources[0].rename);
        assert_true(c->sharing.resources[0].devices_all);
        assert_null(c->sharing.resources[0].devices_list);

        /* "gpu" gets the nvidia.com/ prefix. */
        _cleanup_(config_freep) config *c4 = NULL;
        assert_int_equal(load("time-slicing-4.yaml", &c4, NULL), 0);
        assert_string_equal(c4->sharing.resources[0].name, "nvidia.com/gpu");
        assert_int_equal(c4->sharing.resources[0].replicas, 4);
}

static void test_mps(void **state)
{
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(load("mps.yaml", &c, NULL), 0);
        assert_int_equal(c->sharing.strategy, SHARING_MPS);
        /* MPS fails requests for more than one replica unless told otherwise. */
        assert_true(c->sharing.fail_requests_greater_than_one);
        assert_int_equal(c->sharing.resources[0].replicas, 10);

        _cleanup_(config_freep) config *f = NULL;
        assert_int_equal(load("mps-fail-false.yaml", &f, NULL), 0);
        assert_int_equal(f->sharing.strategy, SHARING_MPS);
        assert_false(f->sharing.fail_requests_greater_than_one);
}

static void test_rename_and_devices(void **state)
{
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(load("rename.yaml", &c, NULL), 0);
        struct replicated_resource *rr = &c->sharing.resources[0];
        assert_string_equal(rr->rename, "nvidia.com/gpu.shared");
        assert_false(rr->devices_all);
        assert_int_equal(strv_length(rr->devices_list), 2);
        assert_string_equal(rr->devices_list[0], "0");
        assert_string_equal(rr->devices_list[1], "GPU-00000000-0000-0000-0000-000000000005");

        _cleanup_(config_freep) config *d = NULL;
        assert_int_equal(load("rename-by-default.yaml", &d, NULL), 0);
        assert_true(d->sharing.rename_by_default);
        assert_true(d->sharing.fail_requests_greater_than_one);
        assert_int_equal(d->sharing.n_resources, 2);
        assert_string_equal(d->sharing.resources[0].rename, "nvidia.com/gpu.shared");
        /* An explicit rename wins over renameByDefault. */
        assert_string_equal(d->sharing.resources[1].name, "nvidia.com/mig-1g.5gb");
        assert_string_equal(d->sharing.resources[1].rename, "nvidia.com/small");

        _cleanup_(config_freep) config *n = NULL;
        assert_int_equal(load("devices-count.yaml", &n, NULL), 0);
        assert_false(n->sharing.resources[0].devices_all);
        assert_int_equal(n->sharing.resources[0].devices_count, 3);

        _cleanup_(config_freep) config *l = NULL;
        assert_int_equal(load("devices-list.yaml", &l, NULL), 0);
        assert_int_equal(l->flags.mig_strategy, MIG_STRATEGY_MIXED);
        assert_string_equal(l->sharing.resources[0].devices_list[0], "0:2");
        assert_string_equal(l->sharing.resources[0].devices_list[1],
                            "MIG-a1000000-0000-0000-0000-000000000000");
        assert_string_equal(l->sharing.resources[1].devices_list[0],
                            "GPU-20000000-0000-0000-0000-000000000000");
        assert_string_equal(l->sharing.resources[1].devices_list[1], "7");
}

static void test_json_all_keys(void **state)
{
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(load("all-keys.json", &c, &err), 0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_MIXED);
        assert_false(c->flags.fail_on_init_error);
        assert_string_equal(c->flags.mps_root, "/run/nvidia/mps");
        assert_string_equal(c->flags.nvidia_driver_root, "/run/nvidia/driver");
        assert_string_equal(c->flags.nvidia_dev_root, "/");
        assert_true(c->flags.gdrcopy_enabled && c->flags.gds_enabled && c->flags.mofed_enabled);
        assert_false(c->flags.use_node_feature_api);
        assert_string_equal(c->flags.device_discovery_strategy, "nvml");
        assert_true(c->flags.plugin.pass_device_specs);
        assert_int_equal(c->flags.plugin.device_list_strategy,
                         DEVICE_LIST_ENVVAR | DEVICE_LIST_CDI_ANNOTATIONS);
        assert_int_equal(c->flags.plugin.device_id_strategy, DEVICE_ID_INDEX);
        assert_string_equal(c->flags.plugin.cdi_annotation_prefix, "nvidia.cdi.k8s.io/");
        assert_string_equal(c->flags.plugin.nvidia_ctk_path, "/usr/local/bin/nvidia-ctk");
        assert_string_equal(c->flags.plugin.container_driver_root, "/host-driver");
        assert_int_equal(c->flags.plugin.shared_devices_allocation_policy, ALLOCATION_PACKED);
        assert_true(c->flags.gfd.oneshot && c->flags.gfd.no_timestamp);
        assert_true(c->flags.gfd.sleep_interval == 90 * NSEC_PER_SEC);
        assert_string_equal(c->flags.gfd.output_file, "/tmp/gfd-labels");
        assert_string_equal(c->flags.gfd.machine_type_file, "/tmp/product_name");
        assert_int_equal(c->sharing.strategy, SHARING_TIME_SLICING);
        assert_int_equal(c->sharing.resources[0].replicas, 5);
        assert_true(c->sharing.resources[0].devices_all);
        assert_int_equal(c->imex.n_channel_ids, 1);
        assert_int_equal(c->imex.channel_ids[0], 0);
        assert_true(c->imex.required);
        /* resources.gpus / resources.mig are validated, then ignored with a warning, as upstream. */
        assert_int_equal(strv_length(c->warnings), 2);
        assert_true(endswith(c->warnings[0],
                             "all-keys.json:32: resources.gpus: custom resource naming is not "
                             "supported and is ignored, as upstream"));
}

static void test_empty_file(void **state)
{
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(load("empty.yaml", &c, NULL), 0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_NONE);
        assert_int_equal(c->sharing.strategy, SHARING_NONE);
}

static void check_error(const char *file, const char *expected)
{
        _cleanup_free_ char *e = load_error(file);
        assert_string_equal(e, expected);
}

static void test_file_errors(void **state)
{
        check_error(
                "err-wrong-type.yaml",
                "err-wrong-type.yaml:3: flags.failOnInitError: must be a boolean (true or false), got \"yes "
                "please\"");
        check_error(
                "err-bad-value.yaml",
                "err-bad-value.yaml:3: flags.migStrategy: must be one of none, single, mixed, got \"half\"");
        check_error("err-version.yaml",
                    "err-version.yaml:1: version: unknown version \"v2\" (only v1 is supported)");
        check_error(
                "err-replicas-1.yaml",
                "err-replicas-1.yaml:6: sharing.timeSlicing.resources[0].replicas: must be an integer >= 2, "
                "got \"1\"");
        check_error("err-replicas-word.yaml",
                    "err-replicas-word.yaml:6: sharing.timeSlicing.resources[0].replicas: must be an "
                    "integer >= 2, "
                    "got \"one\"");
        check_error(
                "err-resource-name.yaml",
                "err-resource-name.yaml:5: sharing.timeSlicing.resources[0].name: must be a DNS subdomain "
                "(lower case letters, digits, '-' and '.'), got \"Big_GPU\"");
        check_error(
                "err-no-resources.yaml",
                "err-no-resources.yaml:4: sharing.timeSlicing: resources must list at least one resource");
        check_error("err-devices.yaml", "err-devices.yaml:7: sharing.timeSlicing.resources[0].devices[1]: "
                                        "must be a GPU index, a MIG "
                                        "index (\"0:1\") or a GPU-/MIG- UUID, got \"GPU\"");
        check_error("err-imex.yaml",
                    "err-imex.yaml:3: imex.channelIDs[0]: only channel 0 is supported, got \"1\"");
        check_error("err-syntax.yaml",
                    "err-syntax.yaml:3: not valid YAML or JSON: did not find expected ',' or "
                    "']' while parsing a flow sequence");
        check_error("does-not-exist.yaml",
                    "does-not-exist.yaml: cannot read config file: No such file or directory");
}

static void test_long_resource_name(void **state)
{
        char path[] = "/tmp/nvdp-test-config-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        /* nvidia.com/ + 53 characters = 64 > 63 */
        const char *yaml = "sharing:\n  mps:\n    resources:\n    - name: "
                           "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij\n      replicas: 2\n";
        assert_true(write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml));
        close(fd);
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *err = NULL, *expected = NULL;
        assert_int_equal(config_new_default(&c), 0);
        assert_int_equal(config_load_file(c, path, &err), -EINVAL);
        assert_true(
                asprintf(
                        &expected,
                        "%s:4: sharing.mps.resources[0].name: must be at most 63 characters with its "
                        "nvidia.com/ prefix, got \"abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij\"",
                        path) > 0);
        assert_string_equal(err, expected);
        unlink(path);
}

static void test_deep_nesting(void **state)
{
        char path[] = "/tmp/nvdp-test-config-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        /* nested far deeper than the schema: refused before libyaml's loader spends quadratic time on it */
        for (int i = 0; i < 100000; i++)
                assert_int_equal(write(fd, "[", 1), 1);
        close(fd);
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *err = NULL, *expected = NULL;
        assert_int_equal(config_new_default(&c), 0);
        assert_int_equal(config_load_file(c, path, &err), -EINVAL);
        assert_true(asprintf(&expected, "%s:1: nested more than 16 levels deep", path) > 0);
        assert_string_equal(err, expected);
        unlink(path);
}

static void test_file_too_big(void **state)
{
        char path[] = "/tmp/nvdp-test-config-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        _cleanup_free_ char *big = malloc(1024 * 1024 + 1);
        memset(big, '#', 1024 * 1024);
        big[1024 * 1024] = '\n';
        assert_true(write(fd, big, 1024 * 1024 + 1) == 1024 * 1024 + 1);
        close(fd);
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *err = NULL, *expected = NULL;
        assert_int_equal(config_new_default(&c), 0);
        assert_int_equal(config_load_file(c, path, &err), -EFBIG);
        assert_true(asprintf(&expected, "%s: config file is larger than 1048576 bytes", path) > 0);
        assert_string_equal(err, expected);
        unlink(path);
}

static void test_mig_strategy_from_flags(void **state)
{
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, "--mig-strategy=mixed", NULL), 0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_MIXED);
        c = config_free(c);
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, "--mig-strategy", "single", NULL), 0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_SINGLE);
        c = config_free(c);
        /* GFD reads GFD_MIG_STRATEGY before MIG_STRATEGY. */
        setenv("MIG_STRATEGY", "single", 1);
        setenv("GFD_MIG_STRATEGY", "mixed", 1);
        assert_int_equal(args(PROGRAM_GFD, &c, NULL, NULL), 0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_MIXED);
        c = config_free(c);
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, NULL), 0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_SINGLE);
}

/* flag > env > file > default, one step at a time. */
static void test_precedence(void **state)
{
        _cleanup_free_ char *file =
                fixture("single-index.yaml"); /* migStrategy single, deviceIDStrategy index */
        _cleanup_free_ char *flag = NULL;
        assert_true(asprintf(&flag, "--config-file=%s", file) > 0);
        _cleanup_(config_freep) config *c = NULL;

        _cleanup_free_ char *from_flag = NULL, *from_env = NULL;
        assert_true(asprintf(&from_flag, "config file %s (--config-file)", file) > 0);
        assert_true(asprintf(&from_env, "config file %s (CONFIG_FILE)", file) > 0);

        /* default */
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, NULL), 0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_NONE);
        assert_int_equal(c->flags.plugin.device_id_strategy, DEVICE_ID_UUID);
        assert_string_equal(c->config_source, "no config file (defaults)");
        c = config_free(c);

        /* file over default */
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, flag, NULL), 0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_SINGLE);
        assert_int_equal(c->flags.plugin.device_id_strategy, DEVICE_ID_INDEX);
        assert_string_equal(c->config_file, file);
        assert_string_equal(c->config_source, from_flag);
        c = config_free(c);

        /* the file named by CONFIG_FILE works the same */
        setenv("CONFIG_FILE", file, 1);
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, NULL), 0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_SINGLE);
        assert_string_equal(c->config_source, from_env);
        c = config_free(c);

        /* env over file */
        setenv("MIG_STRATEGY", "mixed", 1);
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, NULL), 0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_MIXED);
        assert_int_equal(c->flags.plugin.device_id_strategy, DEVICE_ID_INDEX);
        c = config_free(c);

        /* flag over env */
        assert_int_equal(
                args(PROGRAM_PLUGIN, &c, NULL, "--mig-strategy=none", "--device-id-strategy", "uuid", NULL),
                0);
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_NONE);
        assert_int_equal(c->flags.plugin.device_id_strategy, DEVICE_ID_UUID);
}

static void test_flag_forms(void **state)
{
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, "--pass-device-specs", "--fail-on-init-error=false",
                              "--device-list-strategy=envvar", "--device-list-strategy",
                              "cdi-cri,volume-mounts", "-nvidia-driver-root", "/run/nvidia/driver",
                              "--imex-channel-ids=0", "--metrics-address=:9400", "--log-format=json",
                              "--health-policy=upstream", "--health-recovery-interval=90s", "--root=/host",
                              "--print-config", NULL),
                         0);
        assert_true(c->flags.plugin.pass_device_specs);
        assert_false(c->flags.fail_on_init_error);
        assert_int_equal(c->flags.plugin.device_list_strategy,
                         DEVICE_LIST_ENVVAR | DEVICE_LIST_CDI_CRI | DEVICE_LIST_VOLUME_MOUNTS);
        assert_string_equal(c->flags.nvidia_driver_root, "/run/nvidia/driver");
        /* dev root follows the driver root when not given */
        assert_string_equal(c->flags.nvidia_dev_root, "/run/nvidia/driver");
        assert_int_equal(c->imex.n_channel_ids, 1);
        assert_string_equal(c->flags.plugin.metrics_address, ":9400");
        assert_int_equal(c->flags.log_format, LOG_FORMAT_JSON);
        assert_int_equal(c->flags.plugin.health_policy, HEALTH_POLICY_UPSTREAM);
        assert_true(c->flags.plugin.health_recovery_interval == 90 * NSEC_PER_SEC);
        assert_string_equal(c->flags.root, "/host");
        assert_true(c->print_config);
        c = config_free(c);

        /* env: comma list; aliases; an empty KUBELET_SOCKET turns registration off */
        setenv("DEVICE_LIST_STRATEGY", "cdi-annotations, envvar", 1);
        setenv("NVIDIA_CTK_PATH", "/opt/nvidia-ctk", 1);
        setenv("KUBELET_SOCKET", "", 1);
        setenv("NVDP_ROOT", "/fixture", 1);
        setenv("HEALTH_RECOVERY_INTERVAL", "10m", 1);
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, NULL), 0);
        assert_int_equal(c->flags.plugin.device_list_strategy,
                         DEVICE_LIST_CDI_ANNOTATIONS | DEVICE_LIST_ENVVAR);
        assert_string_equal(c->flags.plugin.nvidia_ctk_path, "/opt/nvidia-ctk");
        assert_string_equal(c->flags.plugin.kubelet_socket, "");
        assert_string_equal(c->flags.root, "/fixture");
        assert_true(c->flags.plugin.health_recovery_interval == 600 * NSEC_PER_SEC);
        c = config_free(c);
        /* NVIDIA_CDI_HOOK_PATH is read before NVIDIA_CTK_PATH */
        setenv("NVIDIA_CDI_HOOK_PATH", "/opt/nvidia-cdi-hook", 1);
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, "--container-driver-root", "/drv", NULL), 0);
        assert_string_equal(c->flags.plugin.nvidia_ctk_path, "/opt/nvidia-cdi-hook");
        assert_string_equal(c->flags.plugin.container_driver_root, "/drv");
}

static void test_gfd_flags(void **state)
{
        _cleanup_(config_freep) config *c = NULL;
        setenv("NODE_NAME", "worker-1", 1);
        setenv("GFD_SLEEP_INTERVAL", "infinite", 1);
        assert_int_equal(args(PROGRAM_GFD, &c, NULL, "--output=node", "--oneshot", "--namespace", "gpu",
                              "--kube-api-qps=20", NULL),
                         0);
        assert_true(c->flags.gfd.output_node);
        assert_true(c->flags.gfd.oneshot);
        assert_string_equal(c->flags.gfd.node_name, "worker-1");
        assert_string_equal(c->flags.gfd.namespace, "gpu");
        assert_int_equal(c->flags.gfd.kube_api_qps, 20);
        assert_true(c->flags.gfd.sleep_interval == DURATION_INFINITE);
        c = config_free(c);

        assert_int_equal(args(PROGRAM_GFD, &c, NULL, "-o", "/tmp/labels", NULL), 0);
        assert_false(c->flags.gfd.output_node);
        assert_string_equal(c->flags.gfd.output_file, "/tmp/labels");
        c = config_free(c);

        /* GFD_CONFIG_FILE wins over CONFIG_FILE */
        _cleanup_free_ char *ts = fixture("time-slicing.yaml"), *mps = fixture("mps.yaml");
        setenv("CONFIG_FILE", ts, 1);
        setenv("GFD_CONFIG_FILE", mps, 1);
        assert_int_equal(args(PROGRAM_GFD, &c, NULL, NULL), 0);
        assert_int_equal(c->sharing.strategy, SHARING_MPS);
        c = config_free(c);

        /* plugin-only flags are unknown to GFD */
        _cleanup_free_ char *err = NULL;
        assert_int_equal(args(PROGRAM_GFD, &c, &err, "--pass-device-specs", NULL), -EINVAL);
        assert_string_equal(err, "unknown flag --pass-device-specs");
}

static void check_args_error(enum nvdp_program p, const char *expected, const char *a1, const char *a2)
{
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *err = NULL;
        assert_true(args(p, &c, &err, a1, a2, NULL) < 0);
        assert_null(c);
        assert_string_equal(err, expected);
}

static void test_args_errors(void **state)
{
        check_args_error(PROGRAM_PLUGIN, "unknown flag --mig-stratgy=mixed", "--mig-stratgy=mixed", NULL);
        check_args_error(PROGRAM_PLUGIN,
                         "invalid value for --mig-strategy: must be one of none, single, mixed, got "
                         "\"both\"",
                         "--mig-strategy=both", NULL);
        check_args_error(
                PROGRAM_PLUGIN,
                "invalid value for --device-list-strategy: must be envvar, volume-mounts, cdi-annotations "
                "or cdi-cri, got \"cdi\"",
                "--device-list-strategy=envvar,cdi", NULL);
        check_args_error(PROGRAM_PLUGIN,
                         "invalid value for --fail-on-init-error: must be true or false, got \"2\"",
                         "--fail-on-init-error=2", NULL);
        check_args_error(PROGRAM_PLUGIN,
                         "invalid value for --imex-channel-ids: only channel 0 is supported, got \"1\"",
                         "--imex-channel-ids=1", NULL);
        check_args_error(PROGRAM_PLUGIN, "flag --mps-root needs a value", "--mps-root", NULL);
        check_args_error(PROGRAM_PLUGIN, "unexpected argument \"extra\"", "extra", NULL);
        check_args_error(PROGRAM_PLUGIN,
                         "invalid value for --device-discovery-strategy: must be one of auto, nvml, "
                         "tegra, got \"vfio\"",
                         "--device-discovery-strategy=vfio", NULL);
        /* upstream's values nvdp does not implement: refused by name, from a flag, the env or the file */
        check_args_error(
                PROGRAM_PLUGIN,
                "--device-discovery-strategy=tegra (DEVICE_DISCOVERY_STRATEGY, "
                "flags.deviceDiscoveryStrategy) is not implemented by nvdp yet: Jetson and other Tegra "
                "systems without NVML need NVIDIA's device plugin; use auto or nvml",
                "--device-discovery-strategy=tegra", NULL);
        check_args_error(
                PROGRAM_GFD,
                "--device-discovery-strategy=vfio (DEVICE_DISCOVERY_STRATEGY, "
                "flags.deviceDiscoveryStrategy) is not implemented by nvdp yet: GPUs bound to vfio-pci "
                "need NVIDIA's gpu-feature-discovery; use auto or nvml",
                "--device-discovery-strategy", "vfio");
        setenv("DEVICE_DISCOVERY_STRATEGY", "tegra", 1);
        check_args_error(
                PROGRAM_GFD,
                "--device-discovery-strategy=tegra (DEVICE_DISCOVERY_STRATEGY, "
                "flags.deviceDiscoveryStrategy) is not implemented by nvdp yet: Jetson and other Tegra "
                "systems without NVML need NVIDIA's gpu-feature-discovery; use auto or nvml",
                NULL, NULL);
        unsetenv("DEVICE_DISCOVERY_STRATEGY");
        _cleanup_free_ char *tegra = NULL;
        char tegra_file[] = "/tmp/nvdp-test-tegra-XXXXXX";
        int tfd = mkstemp(tegra_file);
        assert_true(tfd >= 0);
        static const char tegra_yaml[] = "version: v1\nflags:\n  deviceDiscoveryStrategy: tegra\n";
        assert_int_equal(write(tfd, tegra_yaml, sizeof tegra_yaml - 1), (ssize_t)(sizeof tegra_yaml - 1));
        close(tfd);
        _cleanup_(config_freep) config *tc = NULL;
        assert_true(args(PROGRAM_PLUGIN, &tc, &tegra, "--config-file", tegra_file, NULL) == -EOPNOTSUPP);
        assert_non_null(strstr(tegra, "tegra"));
        unlink(tegra_file);
        check_args_error(PROGRAM_GFD,
                         "invalid value for --sleep-interval: must be a duration such as 60s, 5m or "
                         "infinite, got \"soon\"",
                         "--sleep-interval", "soon");

        setenv("DEVICE_ID_STRATEGY", "name", 1);
        check_args_error(PROGRAM_PLUGIN,
                         "invalid value for $DEVICE_ID_STRATEGY (--device-id-strategy): must be "
                         "uuid or index, got \"name\"",
                         NULL, NULL);
        unsetenv("DEVICE_ID_STRATEGY");

        /* validateFlags: MPS with mixed, MPS without a root */
        _cleanup_free_ char *mixed = fixture("mps-mixed.yaml"), *noroot = fixture("mps-no-root.yaml");
        _cleanup_free_ char *e1 = NULL, *e2 = NULL;
        assert_true(
                asprintf(
                        &e1,
                        "invalid --mig-strategy=mixed: MPS sharing (sharing.mps in %s) does not support the "
                        "mixed MIG strategy",
                        mixed) > 0);
        check_args_error(PROGRAM_PLUGIN, e1, "--config-file", mixed);
        assert_true(asprintf(&e2, "MPS sharing (sharing.mps in %s) requires --mps-root (MPS_ROOT)", noroot) >
                    0);
        check_args_error(PROGRAM_PLUGIN, e2, "--config-file", noroot);
        /* ... which --mps-root fixes */
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(
                args(PROGRAM_PLUGIN, &c, NULL, "--config-file", noroot, "--mps-root=/run/nvidia/mps", NULL),
                0);
        assert_int_equal(c->sharing.strategy, SHARING_MPS);

        /* a config file error comes through with its file and line */
        _cleanup_free_ char *bad = fixture("err-bad-value.yaml"), *e3 = NULL;
        assert_true(asprintf(&e3,
                             "%s:3: flags.migStrategy: must be one of none, single, mixed, got \"half\"",
                             bad) > 0);
        check_args_error(PROGRAM_PLUGIN, e3, "--config-file", bad);
}

static void test_help_version(void **state)
{
        /* --help prints every flag with its env vars and default */
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        assert_non_null(f);
        assert_int_equal(config_help(PROGRAM_PLUGIN, "nvidia-device-plugin", f), 0);
        fclose(f);
        assert_non_null(
                strstr(buf, "  --mig-strategy value\n        the desired strategy for exposing MIG devices: "
                            "none, single or mixed (default: none) [$MIG_STRATEGY]\n"));
        assert_non_null(strstr(buf, "  --nvidia-cdi-hook-path value, --nvidia-ctk-path value\n"));
        assert_non_null(strstr(buf, "[$NVIDIA_CDI_HOOK_PATH, $NVIDIA_CTK_PATH]"));
        assert_non_null(
                strstr(buf, "(default: /var/lib/kubelet/device-plugins/kubelet.sock) [$KUBELET_SOCKET]"));
        assert_non_null(strstr(buf, "(default: 5m) [$HEALTH_RECOVERY_INTERVAL]"));
        assert_null(strstr(buf, "--oneshot"));

        /* --help / --version: printed, return 1 (exit 0), no config */
        int saved = dup(STDOUT_FILENO), devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        fflush(stdout);
        dup2(devnull, STDOUT_FILENO);
        _cleanup_(config_freep) config *c = NULL;
        int r1 = args(PROGRAM_GFD, &c, NULL, "--help", NULL);
        int r2 = args(PROGRAM_PLUGIN, &c, NULL, "--mig-strategy=mixed", "--version", NULL);
        int r3 = args(PROGRAM_PLUGIN, &c, NULL, "-h", NULL);
        fflush(stdout);
        dup2(saved, STDOUT_FILENO);
        close(saved);
        close(devnull);
        assert_int_equal(r1, 1);
        assert_int_equal(r2, 1);
        assert_int_equal(r3, 1);
        assert_null(c);
}

/* Upstream ignores keys it does not know, so a file with a typo or a newer release's key must not stop
 * nvdp either: each is a warning naming file, line and key, with the key it probably meant. */
static void test_unknown_keys_are_warnings(void **state)
{
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(load("unknown-keys.yaml", &c, &err), 0);
        assert_null(err);
        /* The known keys around them still apply; a key in other case applies as upstream reads it. */
        assert_int_equal(c->flags.mig_strategy, MIG_STRATEGY_MIXED);
        assert_int_equal(c->flags.plugin.device_id_strategy, DEVICE_ID_INDEX);
        assert_false(c->flags.plugin.pass_device_specs);
        assert_false(c->sharing.rename_by_default);
        assert_int_equal(c->sharing.strategy, SHARING_TIME_SLICING);
        assert_int_equal(c->sharing.resources[0].replicas, 4);
        assert_null(c->sharing.resources[0].rename);
        static const char *const expected[] = {
                "unknown-keys.yaml:4: flags.renameByDefault: unknown key, ignored; did you mean "
                "sharing.timeSlicing.renameByDefault or sharing.mps.renameByDefault?",
                "unknown-keys.yaml:6: flags.plugin.passDevicSpecs: unknown key, ignored; did you mean "
                "\"passDeviceSpecs\"?",
                "unknown-keys.yaml:7: flags.plugin.deviceIdStrategy: read as deviceIDStrategy (keys match "
                "regardless of case, as upstream reads them)",
                "unknown-keys.yaml:8: flags.fromANewerRelease: unknown key, ignored",
                "unknown-keys.yaml:14: sharing.timeSlicing.resources[0].renam: unknown key, ignored; did "
                "you "
                "mean \"rename\"?",
        };
        assert_int_equal(strv_length(c->warnings), ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                const char *slash = strrchr(c->warnings[i], '/');
                assert_string_equal(slash ? slash + 1 : c->warnings[i], expected[i]);
        }
}

/* --strict-config (or STRICT_CONFIG) refuses them as before, naming the first with its suggestion. */
static void test_strict_config_refuses_unknown_keys(void **state)
{
        _cleanup_free_ char *file = fixture("err-unknown-key.yaml"), *flag = NULL, *expected = NULL;
        assert_true(asprintf(&flag, "--config-file=%s", file) > 0);
        assert_true(asprintf(&expected,
                             "%s:5: flags.plugin.passDevicSpecs: unknown key; did you mean "
                             "\"passDeviceSpecs\"?",
                             file) > 0);
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *err = NULL;
        /* the default: the file loads, the known keys apply */
        assert_int_equal(args(PROGRAM_PLUGIN, &c, &err, flag, NULL), 0);
        assert_int_equal(c->flags.plugin.device_id_strategy, DEVICE_ID_INDEX);
        assert_int_equal(strv_length(c->warnings), 1);
        c = config_free(c);
        assert_int_equal(args(PROGRAM_PLUGIN, &c, &err, flag, "--strict-config", NULL), -EINVAL);
        assert_string_equal(err, expected);
        err = mfree(err);
        setenv("STRICT_CONFIG", "true", 1);
        assert_int_equal(args(PROGRAM_GFD, &c, &err, flag, NULL), -EINVAL);
        assert_string_equal(err, expected);
        err = mfree(err);
        /* the flag wins over the env var, as every flag does */
        assert_int_equal(args(PROGRAM_GFD, &c, &err, flag, "--strict-config=false", NULL), 0);
        assert_int_equal(strv_length(c->warnings), 1);
        unsetenv("STRICT_CONFIG");
}

/* The key list behind the suggestions names only keys the reader knows (each path below, loaded with
 * --strict-config, is never "unknown"), and every key --print-config writes is on it. */
static void test_key_list_matches_reader(void **state)
{
        char path[] = "/tmp/nvdp-test-keys-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        for (const char *const *k = config_key_paths(); *k; k++) {
                /* "a.b[].c" -> nested mappings, "[]" a one-item list; the leaf is null */
                _cleanup_free_ char *yaml = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&yaml, &len);
                assert_non_null(f);
                unsigned indent = 0;
                for (const char *p = *k; *p;) {
                        size_t n = strcspn(p, ".[");
                        fprintf(f, "%*s%.*s:", (int)indent, "", (int)n, p);
                        p += n;
                        if (*p == '[') {
                                fprintf(f, "\n%*s- ", (int)indent, "");
                                indent += 2;
                                p += 3; /* "[]." */
                                n = strcspn(p, ".[");
                                fprintf(f, "%.*s:", (int)n, p);
                                p += n;
                        }
                        if (*p == '.')
                                p++;
                        fputc(*p ? '\n' : ' ', f);
                        indent += 2;
                }
                fputs("null\n", f);
                assert_int_equal(fclose(f), 0);
                assert_true(write_file_atomic(path, yaml, strlen(yaml), 0600) >= 0);
                _cleanup_(config_freep) config *c = NULL;
                _cleanup_free_ char *err = NULL;
                assert_int_equal(config_new_default(&c), 0);
                c->strict_config = true;
                if (config_load_file(c, path, &err) < 0 && strstr(err, "unknown key"))
                        fail_msg("%s is on the key list but the reader does not know it:\n%s%s", *k, yaml,
                                 err);
        }
        unlink(path);

        /* everything --print-config writes, with every section present */
        _cleanup_free_ char *file = fixture("all-keys.json"), *flag = NULL, *y = NULL;
        assert_true(asprintf(&flag, "--config-file=%s", file) > 0);
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, flag, "--metrics-address=:9400", NULL), 0);
        assert_int_equal(config_format_yaml(c, &y), 0);
        char stack[8][64] = {};
        for (char *line = y, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                size_t ind = strspn(line, " ");
                bool item = line[ind] == '-';
                const char *key = line + ind + (item ? 2 : 0);
                size_t n = strcspn(key, ":");
                if (!key[n] || n == 0 || n >= 64)
                        continue;
                size_t depth = (ind + (item ? 2 : 0)) / 2;
                assert_true(depth < 8);
                snprintf(stack[depth], sizeof(stack[depth]), "%.*s", (int)n, key);
                /* a list item's keys are one level below the list ("- name:" at the list's indent) */
                char full[512] = "";
                for (size_t d = 0; d <= depth; d++) {
                        strcat(full, d ? "." : "");
                        strcat(full, stack[d]);
                }
                bool found = false;
                for (const char *const *k = config_key_paths(); *k && !found; k++) {
                        char plain[256];
                        size_t o = 0;
                        for (const char *q = *k; *q && o + 1 < sizeof(plain); q++)
                                if (*q != '[' && *q != ']')
                                        plain[o++] = *q;
                        plain[o] = '\0';
                        found = streq(plain, full);
                }
                if (!found)
                        fail_msg("--print-config writes %s, which the key list lacks", full);
        }
}

/* --print-config output loads back into the same config. */
static void test_print_config_round_trip(void **state)
{
        _cleanup_free_ char *file = fixture("rename-by-default.yaml"), *flag = NULL;
        assert_true(asprintf(&flag, "--config-file=%s", file) > 0);
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(args(PROGRAM_PLUGIN, &c, NULL, flag, "--device-list-strategy=envvar,cdi-cri",
                              "--metrics-address=:9400", "--mig-strategy=mixed", NULL),
                         0);
        _cleanup_free_ char *y1 = NULL, *y2 = NULL;
        assert_int_equal(config_format_yaml(c, &y1), 0);
        assert_non_null(strstr(y1, "version: v1\nflags:\n  migStrategy: mixed\n"));
        assert_non_null(strstr(y1, "    deviceListStrategy: [envvar, cdi-cri]\n"));
        assert_non_null(strstr(y1, "    healthRecoveryInterval: 300s\n"));
        assert_non_null(strstr(y1, "sharing:\n  timeSlicing:\n    renameByDefault: true\n"
                                   "    failRequestsGreaterThanOne: true\n    resources:\n"
                                   "    - name: \"nvidia.com/gpu\"\n      replicas: 2\n"
                                   "      rename: \"nvidia.com/gpu.shared\"\n      devices: all\n"));

        char path[] = "/tmp/nvdp-test-config-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_true(write(fd, y1, strlen(y1)) == (ssize_t)strlen(y1));
        close(fd);
        _cleanup_(config_freep) config *d = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(config_new_default(&d), 0);
        assert_int_equal(config_load_file(d, path, &err), 0);
        unlink(path);
        free(d->config_file);
        d->config_file = NULL;
        assert_int_equal(config_format_yaml(d, &y2), 0);
        assert_string_equal(y1, y2);
}

/* Found by fuzzing (tests/fuzz, config): a value holding NEL ("\N" in the file) was written raw and read
 * back as a line break, folded to a space. Such characters are written as escapes now. */
static void test_print_config_escapes_line_breaks(void **state)
{
        char path[] = "/tmp/nvdp-test-config-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        static const char text[] =
                "version: v1\nflags:\n  mpsRoot: \"/a\\Nb\\Lc\\Pd\\x9fe\\x7ff\\ufffeg\"\n";
        assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        close(fd);
        _cleanup_(config_freep) config *c = NULL, *d = NULL;
        _cleanup_free_ char *err = NULL, *y1 = NULL, *y2 = NULL;
        assert_int_equal(config_new_default(&c), 0);
        assert_int_equal(config_load_file(c, path, &err), 0);
        assert_string_equal(c->flags.mps_root, "/a\xc2\x85"
                                               "b\xe2\x80\xa8"
                                               "c\xe2\x80\xa9"
                                               "d\xc2\x9f"
                                               "e\x7f"
                                               "f\xef\xbf\xbe"
                                               "g");
        assert_int_equal(config_format_yaml(c, &y1), 0);
        assert_non_null(strstr(y1, "  mpsRoot: \"/a\\u0085b\\u2028c\\u2029d\\u009fe\\x7ff\\ufffeg\"\n"));
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_true(write(fd, y1, strlen(y1)) == (ssize_t)strlen(y1));
        close(fd);
        assert_int_equal(config_new_default(&d), 0);
        assert_int_equal(config_load_file(d, path, &err), 0);
        unlink(path);
        assert_string_equal(d->flags.mps_root, c->flags.mps_root);
        assert_int_equal(config_format_yaml(d, &y2), 0);
        assert_string_equal(y1, y2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_defaults, clear_env),
                cmocka_unit_test_setup(test_time_slicing, clear_env),
                cmocka_unit_test_setup(test_mps, clear_env),
                cmocka_unit_test_setup(test_rename_and_devices, clear_env),
                cmocka_unit_test_setup(test_json_all_keys, clear_env),
                cmocka_unit_test_setup(test_empty_file, clear_env),
                cmocka_unit_test_setup(test_file_errors, clear_env),
                cmocka_unit_test_setup(test_unknown_keys_are_warnings, clear_env),
                cmocka_unit_test_setup(test_strict_config_refuses_unknown_keys, clear_env),
                cmocka_unit_test_setup(test_key_list_matches_reader, clear_env),
                cmocka_unit_test_setup(test_long_resource_name, clear_env),
                cmocka_unit_test_setup(test_deep_nesting, clear_env),
                cmocka_unit_test_setup(test_file_too_big, clear_env),
                cmocka_unit_test_setup(test_mig_strategy_from_flags, clear_env),
                cmocka_unit_test_setup(test_precedence, clear_env),
                cmocka_unit_test_setup(test_flag_forms, clear_env),
                cmocka_unit_test_setup(test_gfd_flags, clear_env),
                cmocka_unit_test_setup(test_args_errors, clear_env),
                cmocka_unit_test_setup(test_help_version, clear_env),
                cmocka_unit_test_setup(test_print_config_round_trip, clear_env),
                cmocka_unit_test_setup(test_print_config_escapes_line_breaks, clear_env),
        };
        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
