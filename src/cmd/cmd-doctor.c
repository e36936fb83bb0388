/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp doctor: runs the node checklist (src/doctor) and prints it. Exit code 0 all ok, 1 warnings,
 * 2 failures (or bad usage). */
#include <getopt.h>
#include <stdio.h>

#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/strv.h"
#include "cmd/cmd.h"
#include "config/config.h"
#include "doctor/doctor.h"
#include "gpu/inventory.h"
#include "nvml/nvml-loader.h"

static void help(FILE *f)
{
        fprintf(f,
                "Usage: nvdp doctor [OPTIONS]\n\n"
                "Checks this node's GPU setup (driver, container toolkit, k3s/containerd config, kubelet,\n"
                "cluster) and prints one verdict per check, with a fix for each warning and failure.\n\n"
                "Options:\n"
                "  --root DIR                  check a node filesystem mounted at DIR (default /)\n"
                "  --json                      print JSON (see docs/doctor.md)\n"
                "  --no-cluster                skip the checks that use kubectl\n"
                "  --node NAME                 node name for the cluster checks (default $NODE_NAME,\n"
                "                              then DIR/etc/hostname)\n"
                "  --kubectl PATH              kubectl to run (default: kubectl from PATH)\n"
                "  --kubeconfig FILE           kubeconfig for kubectl (default $KUBECONFIG, else\n"
                "                              DIR/etc/rancher/k3s/k3s.yaml when it exists)\n"
                "  --timeout SECONDS           limit for each kubectl call (default 10)\n"
                "  --device-list-strategy LIST the plugin's strategy (default $DEVICE_LIST_STRATEGY);\n"
                "                              a cdi-* strategy makes the CDI checks required\n"
                "  --config-file FILE          also check the plugin's config file (default $CONFIG_FILE):\n"
                "                              keys the plugin does not know or reads another way\n"
                "  -h, --help                  show this help\n\n"
                "Exit status: 0 all ok, 1 warnings, 2 failures.\n");
}

/* Loads NVML (from the lib dirs under root first, when checking a mounted node filesystem) and reads
 * the inventory, so the driver checks can report what the plugin itself would see. */
static void doctor_probe_nvml(const char *root, struct doctor_nvml_probe *p)
{
        *p = (struct doctor_nvml_probe){ .attempted = true };
        _cleanup_(nvml_unloadp) nvml *n = NULL;
        _cleanup_(inventory_freep) inventory *inv = NULL;
        _cleanup_free_ char *error = NULL;
        int r = nvml_load(root && !streq(root, "/") ? root : NULL, &n, &error);
        if (r >= 0)
                r = inventory_load(n, root, &inv, &error);
        if (r < 0) {
                snprintf(p->error, sizeof p->error, "%s", error ? error : strerror(-r));
                return;
        }
        p->loaded = true;
        p->gpu_count = (unsigned)inv->n_gpus;
        snprintf(p->driver_version, sizeof p->driver_version, "%s", inv->driver_version);
        p->cuda_driver_version = inv->cuda_driver_version;
}

/* The plugin's config file read as the plugin reads it: what the plugin would only warn about (unknown
 * keys, a key spelled with other case, ignored sections) is listed; a file it refuses is a failure. */
static int check_config_file(doctor_report *r, const char *path)
{
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *err = NULL, *all = NULL;
        int k = config_new_default(&c);
        if (k >= 0)
                k = config_load_file(c, path, &err);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return doctor_report_addf(r, "config.keys", DOCTOR_FAIL,
                                          "correct the key on the line named; the plugin exits on this file",
                                          "%s", err ? err : strerror(-k));
        if (strv_length(c->warnings) == 0)
                return doctor_report_addf(r, "config.keys", DOCTOR_OK, NULL, "%s: every key is known", path);
        all = strv_join(c->warnings, "; ");
        if (!all)
                return -ENOMEM;
        return doctor_report_addf(
                r, "config.keys", DOCTOR_WARN,
                "correct or remove those keys (nvdp plugin --strict-config refuses such a file)",
                "%zu warning(s): %s", strv_length(c->warnings), all);
}

static bool strategy_uses_cdi(const char *list)
{
        _cleanup_strv_free_ char **l = NULL;
        if (isempty(list) || strv_split(list, ",", &l) < 0)
                return false;
        STRV_FOREACH (s, l)
                if (startswith(*s, "cdi-"))
                        return true;
        return false;
}

int cmd_doctor(int argc, char **argv)
{
        enum {
                ARG_ROOT = 0x100,
                ARG_JSON,
                ARG_NO_CLUSTER,
                ARG_NODE,
                ARG_KUBECTL,
                ARG_KUBECONFIG,
                ARG_TIMEOUT,
                ARG_STRATEGY,
                ARG_NO_NVML,
                ARG_CONFIG_FILE,
        };
        static const struct option options[] = {
                { "root", required_argument, NULL, ARG_ROOT },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-cluster", no_argument, NULL, ARG_NO_CLUSTER },
                { "no-nvml", no_argument, NULL, ARG_NO_NVML },
                { "node", required_argument, NULL, ARG_NODE },
                { "kubectl", required_argument, NULL, ARG_KUBECTL },
                { "kubeconfig", required_argument, NULL, ARG_KUBECONFIG },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "device-list-strategy", required_argument, NULL, ARG_STRATEGY },
                { "config-file", required_argument, NULL, ARG_CONFIG_FILE },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *root = "/", *node = NULL, *strategy = getenv("DEVICE_LIST_STRATEGY"),
                   *config_file = getenv("CONFIG_FILE");
        bool json = false, cluster = true, probe_nvml = true;
        struct doctor_kubectl_exec_config kc = { .kubeconfig = getenv("KUBECONFIG") };
        _cleanup_free_ char *k3s_kubeconfig = NULL;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_ROOT: root = optarg; break;
                case ARG_JSON: json = true; break;
                case ARG_NO_CLUSTER: cluster = false; break;
                case ARG_NO_NVML: probe_nvml = false; break;
                case ARG_NODE: node = optarg; break;
                case ARG_KUBECTL: kc.kubectl = optarg; break;
                case ARG_KUBECONFIG: kc.kubeconfig = optarg; break;
                case ARG_STRATEGY: strategy = optarg; break;
                case ARG_CONFIG_FILE: config_file = optarg; break;
                case ARG_TIMEOUT: {
                        uint64_t t;
                        if (parse_uint64(optarg, &t) < 0 || t == 0 || t > 3600) {
                                fprintf(stderr,
                                        "nvdp doctor: --timeout '%s' is not a number of seconds (1-3600).\n",
                                        optarg);
                                return 2;
                        }
                        kc.timeout_sec = (unsigned)t;
                        break;
                }
                case 'h': help(stdout); return 0;
                default:
                        fprintf(stderr, "nvdp doctor: unknown option or missing value: '%s'.\n",
                                argv[optind - 1]);
                        help(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "nvdp doctor: unexpected argument '%s'.\n", argv[optind]);
                return 2;
        }
        if (access(root, R_OK | X_OK) < 0) {
                fprintf(stderr, "nvdp doctor: --root '%s' cannot be read: %m.\n", root);
                return 2;
        }

        /* k3s's admin kubeconfig, when nothing else is set (k3s does not write ~/.kube/config). */
        if (!kc.kubeconfig) {
                k3s_kubeconfig = path_join_root(streq(root, "/") ? NULL : root, "/etc/rancher/k3s/k3s.yaml");
                if (!k3s_kubeconfig)
                        return log_error_errno(-ENOMEM, "Out of memory."), 2;
                if (access(k3s_kubeconfig, R_OK) == 0)
                        kc.kubeconfig = k3s_kubeconfig;
        }

        struct doctor_nvml_probe probe = {};
        if (probe_nvml)
                doctor_probe_nvml(root, &probe);

        struct doctor_options o = {
                .root = root,
                .nvml = &probe,
                .kubectl = cluster ? doctor_kubectl_exec : NULL,
                .kubectl_userdata = &kc,
                .node_name = node,
                .cdi_expected = strategy_uses_cdi(strategy),
        };
        _cleanup_(doctor_report_freep) doctor_report *r = NULL;
        int k = doctor_run(&o, &r);
        if (k >= 0 && !isempty(config_file))
                k = check_config_file(r, config_file);
        if (k < 0) {
                log_error_errno(k, "Doctor checks failed to run: %m");
                return 2;
        }
        k = json ? doctor_report_print_json(r, stdout) : doctor_report_print_text(r, stdout);
        if (fflush(stdout) != 0 || k < 0) {
                log_error_errno(k < 0 ? k : -EIO, "Cannot write the report: %m");
                return 2;
        }
        return doctor_report_exit_code(r);
}
