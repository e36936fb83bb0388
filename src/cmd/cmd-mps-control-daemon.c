/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp mps-control-daemon (also argv[0] mps-control-daemon): upstream's MPS control daemon, with its
 * flags (--config-file/CONFIG_FILE, --mig-strategy/MIG_STRATEGY) and its `mount-shm` subcommand; the
 * daemon itself is src/daemon/mps-daemon.c. docs/mps.md. */
#include "base/fileio.h"
#include "base/log.h"
#include "base/strv.h"
#include "cmd/cmd.h"
#include "config/config.h"
#include "daemon/mps-daemon.h"
#include "mps/mps-root.h"

static const char *program(char **argv)
{
        return streq(argv[0], "mps-control-daemon") ? "nvdp mps-control-daemon" : argv[0];
}

struct args {
        int argc;
        char **argv;
};

/* At start (node_label NULL) and on every reload: flags and env as given, the file as it is now. */
static int load_config(const char *node_label, config **ret, char **ret_error, void *userdata)
{
        const struct args *a = userdata;
        return config_from_env_and_args(PROGRAM_MPS, a->argc, a->argv, node_label, ret, ret_error);
}

/* Upstream's `mount-shm` (the DaemonSet's init container): a tmpfs on <root>/shm. */
static int mount_shm(int argc, char **argv)
{
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *error = NULL, *root = NULL, *meminfo = NULL;
        int r = config_from_args(PROGRAM_MPS, argc, argv, &c, &error);
        if (r > 0)
                return 0;
        if (r < 0) {
                log_set_format(config_log_format(argc, argv));
                log_error("%s mount-shm: %s", program(argv), error ? error : strerror(-r));
                return 1;
        }
        log_set_format(c->flags.log_format);
        if ((r = mps_root_resolve(c->flags.mps_root, &root, &error)) < 0 ||
            !(meminfo = path_join_root(c->flags.root, "/proc/meminfo")) ||
            (r = mps_mount_shm(root, meminfo, &error)) < 0) {
                log_error("mount-shm: %s", error ? error : strerror(r < 0 ? -r : ENOMEM));
                return 1;
        }
        log_info("Mounted a tmpfs on %s/%s", root, MPS_SHM_DIR);
        return 0;
}

/* argv without its first "mount-shm" argument; *ret_found says whether there was one. */
static char **strip_subcommand(int argc, char **argv, bool *ret_found)
{
        char **l = new0(char *, (size_t)argc + 1);
        if (!l)
                return NULL;
        int k = 0;
        *ret_found = false;
        for (int i = 0; i < argc; i++) {
                if (i > 0 && !*ret_found && streq(argv[i], "mount-shm")) {
                        *ret_found = true;
                        continue;
                }
                l[k++] = argv[i];
        }
        return l;
}

static bool wants_help(int argc, char **argv)
{
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--help") || streq(argv[i], "-h"))
                        return true;
        return false;
}

int cmd_mps_control_daemon(int argc, char **argv)
{
        if (wants_help(argc, argv)) {
                config_help(PROGRAM_MPS, argv[0], stdout);
                printf("\nCommands:\n"
                       "  mount-shm  mount the tmpfs the MPS daemons and their clients share as /dev/shm "
                       "on\n"
                       "             <mps-root>/shm (upstream's init container; needs CAP_SYS_ADMIN)\n\n"
                       "The MPS root is --mps-root as seen by this process when it is a directory, "
                       "else\n" MPS_CONTAINER_ROOT " (where upstream's chart mounts it). docs/mps.md.\n");
                return 0;
        }
        bool subcommand;
        _cleanup_free_ char **args = strip_subcommand(argc, argv, &subcommand);
        if (!args)
                return log_error_errno(-ENOMEM, "Out of memory."), 1;
        if (subcommand)
                return mount_shm(argc - 1, args);

        struct args a = { argc, argv };
        config *c = NULL;
        _cleanup_free_ char *error = NULL;
        int r = load_config(NULL, &c, &error, &a);
        if (r > 0)
                return 0;
        if (r < 0) {
                /* As upstream (klog.Error, exit 1); a klog (or JSON) line like every other. */
                log_set_format(config_log_format(argc, argv));
                log_error("%s: %s", program(argv), error ? error : strerror(-r));
                return 1;
        }
        if (c->print_config) {
                _cleanup_free_ char *yaml = NULL;
                r = config_format_yaml(c, &yaml);
                if (r >= 0)
                        fputs(yaml, stdout);
                config_free(c);
                return r < 0 ? 1 : 0;
        }
        log_set_format(c->flags.log_format);
        log_info("nvdp %s starting as the MPS control daemon", NVDP_VERSION);
        STRV_FOREACH (w, c->warnings)
                log_warning("%s", *w);

        struct daemon_options o = { .config = c, .load_config = load_config, .userdata = &a };
        return mps_daemon_run(&o);
}
