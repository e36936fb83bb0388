/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp doctor: runs the node checklist (src/doctor) and prints it. Exit code 0 all ok, 1 warnings,
 * 2 failures (or bad usage). */
#include <getopt.h>
#include <stdio.h>

#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/strv.h"
#include "cdi/cdi.h"
#include "cmd/cmd.h"
#include "config/config.h"
#include "doctor/doctor.h"
#include "gpu/node.h"
#include "resource/plan.h"

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
                "  --cdi-spec-dir DIR          the CDI spec directory (default $CDI_SPEC_DIR, then\n"
                "                              /var/run/cdi)\n"
                "  --config-file FILE          also check the plugin's config file (default $CONFIG_FILE):\n"
                "                              keys the plugin does not know or reads another way\n"
                "  -h, --help                  show this help\n\n"
                "Exit status: 0 all ok, 1 warnings, 2 failures.\n");
}

/* The CDI names Allocate returns with the plugin's env vars and config file (MIG_STRATEGY,
 * DEVICE_ID_STRATEGY, CONFIG_FILE, ...), for the CDI checks; NULL when the plugin would not start. */
static char **allocate_cdi_names(const inventory *inv)
{
        char *argv[] = { (char *)"nvdp", NULL };
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_(plan_freep) plan *pl = NULL;
        char **names = NULL;
        if (config_from_env_and_args(PROGRAM_PLUGIN, 1, argv, NULL, &c, NULL) == 0 &&
            plan_build(inv, c, &pl, NULL) >= 0)
                (void)cdi_allocate_names(pl, c, &names);
        return names;
}

/* Loads NVML and reads the inventory the way the plugin does (node_open: the driver root, then the
 * container's driver root mount), so the driver checks report what the plugin itself would see. A node
 * filesystem checked under --root is its own driver root. */
static void doctor_probe_nvml(const char *root, struct doctor_nvml_probe *p, char ***ret_cdi_names)
{
        *p = (struct doctor_nvml_probe){ .attempted = true };
        _cleanup_(node_closep) struct node *n = NULL;
        _cleanup_free_ char *error = NULL;
        const char *env_ctr = getenv("DRIVER_ROOT_CTR_PATH");
        struct node_roots roots = {
                .root = root,
                .driver_root = streq(root, "/") ? getenv("NVIDIA_DRIVER_ROOT") : root,
                .container_driver_root = !streq(root, "/") ? NULL
                                         : env_ctr         ? env_ctr
                                                           : "/driver-root",
        };
        int r = node_open(&roots, &n, &error);
        if (r < 0) {
                snprintf(p->error, sizeof p->error, "%s", error ? error : strerror(-r));
                return;
        }
        p->loaded = true;
        p->gpu_count = (unsigned)n->inventory->n_gpus;
        snprintf(p->driver_version, sizeof p->driver_version, "%s", n->inventory->driver_version);
        p->cuda_driver_version = n->inventory->cuda_driver_version;
        *ret_cdi_names = allocate_cdi_names(n->inventory);
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

struct args {
        const char *root, *node, *strategy, *cdi_spec_dir, *config_file;
        bool json, cluster, probe_nvml;
        struct doctor_kubectl_exec_config kubectl;
};

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct args *a)
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
                ARG_CDI_SPEC_DIR,
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
                { "cdi-spec-dir", required_argument, NULL, ARG_CDI_SPEC_DIR },
                { "config-file", required_argument, NULL, ARG_CONFIG_FILE },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_ROOT: a->root = optarg; break;
                case ARG_JSON: a->json = true; break;
                case ARG_NO_CLUSTER: a->cluster = false; break;
                case ARG_NO_NVML: a->probe_nvml = false; break;
                case ARG_NODE: a->node = optarg; break;
                case ARG_KUBECTL: a->kubectl.kubectl = optarg; break;
                case ARG_KUBECONFIG: a->kubectl.kubeconfig = optarg; break;
                case ARG_STRATEGY: a->strategy = optarg; break;
                case ARG_CDI_SPEC_DIR: a->cdi_spec_dir = optarg; break;
                case ARG_CONFIG_FILE: a->config_file = optarg; break;
                case ARG_TIMEOUT: {
                        uint64_t t;
                        if (parse_uint64(optarg, &t) < 0 || t == 0 || t > 3600) {
                                fprintf(stderr,
                                        "nvdp doctor: --timeout '%s' is not a number of seconds (1-3600).\n",
                                        optarg);
                                return 2;
                        }
                        a->kubectl.timeout_sec = (unsigned)t;
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
        if (access(a->root, R_OK | X_OK) < 0) {
                fprintf(stderr, "nvdp doctor: --root '%s' cannot be read: %m.\n", a->root);
                return 2;
        }
        return -1;
}

int cmd_doctor(int argc, char **argv)
{
        struct args a = {
                .root = "/",
                .strategy = getenv("DEVICE_LIST_STRATEGY"),
                .cdi_spec_dir = getenv("CDI_SPEC_DIR"),
                .config_file = getenv("CONFIG_FILE"),
                .cluster = true,
                .probe_nvml = true,
                .kubectl = { .kubeconfig = getenv("KUBECONFIG") },
        };
        _cleanup_free_ char *k3s_kubeconfig = NULL;
        _cleanup_strv_free_ char **cdi_names = NULL;
        int k = parse_args(argc, argv, &a);
        if (k >= 0)
                return k;

        /* k3s's admin kubeconfig, when nothing else is set (k3s does not write ~/.kube/config). */
        if (!a.kubectl.kubeconfig) {
                k3s_kubeconfig =
                        path_join_root(streq(a.root, "/") ? NULL : a.root, "/etc/rancher/k3s/k3s.yaml");
                if (!k3s_kubeconfig)
                        return log_error_errno(-ENOMEM, "Out of memory."), 2;
                if (access(k3s_kubeconfig, R_OK) == 0)
                        a.kubectl.kubeconfig = k3s_kubeconfig;
        }

        struct doctor_nvml_probe probe = {};
        if (a.probe_nvml)
                doctor_probe_nvml(a.root, &probe, &cdi_names);

        struct doctor_options o = {
                .root = a.root,
                .nvml = &probe,
                .kubectl = a.cluster ? doctor_kubectl_exec : NULL,
                .kubectl_userdata = &a.kubectl,
                .node_name = a.node,
                .cdi_expected = strategy_uses_cdi(a.strategy),
                .cdi_spec_dir = a.cdi_spec_dir,
                .cdi_names = cdi_names,
                .mps_root = getenv("MPS_ROOT"),
        };
        _cleanup_(doctor_report_freep) doctor_report *r = NULL;
        k = doctor_run(&o, &r);
        if (k >= 0 && !isempty(a.config_file))
                k = check_config_file(r, a.config_file);
        if (k < 0) {
                log_error_errno(k, "Doctor checks failed to run: %m");
                return 2;
        }
        k = a.json ? doctor_report_print_json(r, stdout) : doctor_report_print_text(r, stdout);
        if (fflush(stdout) != 0 || k < 0) {
                log_error_errno(k < 0 ? k : -EIO, "Cannot write the report: %m");
                return 2;
        }
        return doctor_report_exit_code(r);
}
