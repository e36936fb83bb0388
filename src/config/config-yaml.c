/* SPDX-License-Identifier: Apache-2.0 */
/* --print-config: the effective config in upstream's v1 layout plus our keys; it loads back. */
#include "base/parse.h"
#include "base/strv.h"
#include "config/config-internal.h"
#include "config/config.h"

static void put_string(FILE *f, const char *s)
{
        fputc('"', f);
        for (; s && *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch < 0x20 || ch == 0x7f)
                        fprintf(f, "\\x%02x", ch);
                else if (ch >= 0x80) {
                        /* YAML reads NEL, LS and PS as line breaks (folded to a space inside quotes) and
                         * refuses C1 controls and U+FFFE/F: escape them, or the value does not load back
                         * the same (found by fuzzing, tests/fuzz fuzz-config). */
                        const unsigned char *u = (const unsigned char *)s;
                        uint32_t cp = 0;
                        size_t len = 0;
                        if ((ch & 0xe0) == 0xc0 && (u[1] & 0xc0) == 0x80) {
                                cp = (uint32_t)(ch & 0x1f) << 6 | (u[1] & 0x3f);
                                len = 2;
                        } else if ((ch & 0xf0) == 0xe0 && (u[1] & 0xc0) == 0x80 && (u[2] & 0xc0) == 0x80) {
                                cp = (uint32_t)(ch & 0x0f) << 12 | (uint32_t)(u[1] & 0x3f) << 6 |
                                     (u[2] & 0x3f);
                                len = 3;
                        }
                        if (len > 0 && (cp <= 0x9f || cp == 0x2028 || cp == 0x2029 || cp >= 0xfffe)) {
                                fprintf(f, "\\u%04x", (unsigned)cp);
                                s += len - 1;
                        } else
                                fputc(ch, f);
                } else
                        fputc(ch, f);
        }
        fputc('"', f);
}

static void put_key_string(FILE *f, const char *indent, const char *key, const char *value)
{
        fprintf(f, "%s%s: ", indent, key);
        put_string(f, value);
        fputc('\n', f);
}

static void put_bool(FILE *f, const char *indent, const char *key, bool b)
{
        fprintf(f, "%s%s: %s\n", indent, key, b ? "true" : "false");
}

static void put_duration(FILE *f, const char *indent, const char *key, uint64_t ns)
{
        if (ns == DURATION_INFINITE)
                fprintf(f, "%s%s: infinite\n", indent, key);
        else if (ns % NSEC_PER_SEC == 0)
                fprintf(f, "%s%s: %llus\n", indent, key, (unsigned long long)(ns / NSEC_PER_SEC));
        else
                fprintf(f, "%s%s: %lluns\n", indent, key, (unsigned long long)ns);
}

static void put_sharing(FILE *f, const config *c)
{
        const char *i1 = "  ", *i2 = "    ", *i3 = "      ";
        if (c->sharing.strategy == SHARING_NONE || c->sharing.n_resources == 0)
                return;
        fprintf(f, "sharing:\n%s%s:\n", i1, c->sharing.strategy == SHARING_MPS ? "mps" : "timeSlicing");
        put_bool(f, i2, "renameByDefault", c->sharing.rename_by_default);
        put_bool(f, i2, "failRequestsGreaterThanOne", c->sharing.fail_requests_greater_than_one);
        fprintf(f, "%sresources:\n", i2);
        for (size_t i = 0; i < c->sharing.n_resources; i++) {
                const struct replicated_resource *rr = &c->sharing.resources[i];
                fprintf(f, "%s- name: ", i2);
                put_string(f, rr->name);
                fprintf(f, "\n%sreplicas: %u\n", i3, rr->replicas);
                if (rr->rename)
                        put_key_string(f, i3, "rename", rr->rename);
                if (rr->devices_list) {
                        fprintf(f, "%sdevices: [", i3);
                        STRV_FOREACH (d, rr->devices_list) {
                                if (d != rr->devices_list)
                                        fputs(", ", f);
                                put_string(f, *d);
                        }
                        fprintf(f, "]\n");
                } else if (!rr->devices_all && rr->devices_count > 0)
                        fprintf(f, "%sdevices: %u\n", i3, rr->devices_count);
                else
                        fprintf(f, "%sdevices: all\n", i3);
        }
}

int config_format_yaml(const config *c, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;

        fprintf(f, "version: v1\nflags:\n");
        const char *i1 = "  ", *i2 = "    ";
        fprintf(f, "%smigStrategy: %s\n", i1, mig_strategy_to_string(c->flags.mig_strategy));
        put_bool(f, i1, "failOnInitError", c->flags.fail_on_init_error);
        put_key_string(f, i1, "mpsRoot", c->flags.mps_root);
        put_key_string(f, i1, "nvidiaDriverRoot", c->flags.nvidia_driver_root);
        put_key_string(f, i1, "nvidiaDevRoot",
                       c->flags.nvidia_dev_root ? c->flags.nvidia_dev_root : c->flags.nvidia_driver_root);
        put_bool(f, i1, "gdrcopyEnabled", c->flags.gdrcopy_enabled);
        put_bool(f, i1, "gdsEnabled", c->flags.gds_enabled);
        put_bool(f, i1, "mofedEnabled", c->flags.mofed_enabled);
        put_bool(f, i1, "useNodeFeatureAPI", c->flags.use_node_feature_api);
        put_key_string(f, i1, "deviceDiscoveryStrategy", c->flags.device_discovery_strategy);
        put_key_string(f, i1, "root", c->flags.root);
        fprintf(f, "%slogFormat: %s\n", i1, c->flags.log_format == LOG_FORMAT_JSON ? "json" : "klog");

        fprintf(f, "%splugin:\n", i1);
        put_bool(f, i2, "passDeviceSpecs", c->flags.plugin.pass_device_specs);
        fprintf(f, "%sdeviceListStrategy: [", i2);
        bool first = true;
        for (size_t i = 0; i < ELEMENTSOF(device_list_strategy_names); i++)
                if (c->flags.plugin.device_list_strategy & device_list_strategy_names[i].bit) {
                        fprintf(f, "%s%s", first ? "" : ", ", device_list_strategy_names[i].name);
                        first = false;
                }
        fprintf(f, "]\n");
        fprintf(f, "%sdeviceIDStrategy: %s\n", i2,
                device_id_strategy_to_string(c->flags.plugin.device_id_strategy));
        put_key_string(f, i2, "cdiAnnotationPrefix", c->flags.plugin.cdi_annotation_prefix);
        put_key_string(f, i2, "nvidiaCTKPath", c->flags.plugin.nvidia_ctk_path);
        put_key_string(f, i2, "containerDriverRoot", c->flags.plugin.container_driver_root);
        fprintf(f, "%ssharedDevicesAllocationPolicy: %s\n", i2,
                allocation_policy_to_string(c->flags.plugin.shared_devices_allocation_policy));
        put_key_string(f, i2, "kubeletSocket", c->flags.plugin.kubelet_socket);
        put_key_string(f, i2, "cdiSpecDir", c->flags.plugin.cdi_spec_dir);
        put_bool(f, i2, "nodeEvents", c->flags.plugin.node_events);
        fprintf(f, "%shealthPolicy: %s\n", i2, health_policy_to_string(c->flags.plugin.health_policy));
        put_duration(f, i2, "healthRecoveryInterval", c->flags.plugin.health_recovery_interval);
        if (c->flags.plugin.metrics_address)
                put_key_string(f, i2, "metricsAddress", c->flags.plugin.metrics_address);
        if (c->flags.plugin.health_address)
                put_key_string(f, i2, "healthAddress", c->flags.plugin.health_address);

        fprintf(f, "%sgfd:\n", i1);
        put_bool(f, i2, "oneshot", c->flags.gfd.oneshot);
        put_bool(f, i2, "noTimestamp", c->flags.gfd.no_timestamp);
        put_duration(f, i2, "sleepInterval", c->flags.gfd.sleep_interval);
        put_key_string(f, i2, "outputFile", c->flags.gfd.output_file);
        put_key_string(f, i2, "machineTypeFile", c->flags.gfd.machine_type_file);
        put_bool(f, i2, "outputNode", c->flags.gfd.output_node);
        if (c->flags.gfd.kubeconfig)
                put_key_string(f, i2, "kubeconfig", c->flags.gfd.kubeconfig);
        fprintf(f, "%skubeAPIQPS: %u\n%skubeAPIBurst: %u\n", i2, c->flags.gfd.kube_api_qps, i2,
                c->flags.gfd.kube_api_burst);
        put_key_string(f, i2, "namespace", c->flags.gfd.namespace);
        if (c->flags.gfd.node_name)
                put_key_string(f, i2, "nodeName", c->flags.gfd.node_name);
        if (c->flags.gfd.pod_name)
                put_key_string(f, i2, "podName", c->flags.gfd.pod_name);

        put_sharing(f, c);

        fprintf(f, "imex:\n%schannelIDs: [%s]\n", i1, c->imex.n_channel_ids ? "0" : "");
        put_bool(f, i1, "required", c->imex.required);

        /* open_memstream grows with malloc: a failed write shows only as the stream's error flag */
        bool failed = ferror(f);
        if (fclose(f) != 0 || failed || !buf)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}
