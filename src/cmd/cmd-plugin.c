/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp plugin (also argv[0] nvidia-device-plugin): upstream's flags, then the daemon (src/daemon). */
#include <signal.h>

#include "base/log.h"
#include "base/pidfile.h"
#include "base/strv.h"
#include "cmd/cmd.h"
#include "config/config.h"
#include "daemon/daemon.h"

struct args {
        int argc;
        char **argv;
};

/* At start (node_label NULL) and on every reload: flags and env as given, the file as it is now. */
static int load_config(const char *node_label, config **ret, char **ret_error, void *userdata)
{
        const struct args *a = userdata;
        return config_from_env_and_args(PROGRAM_PLUGIN, a->argc, a->argv, node_label, ret, ret_error);
}

/* --rescan: SIGHUP to the plugin that serves the same socket directory, found through its pid file (from
 * its pod or from the host). */
static int rescan_running_plugin(const config *c)
{
        _cleanup_free_ char *path = NULL;
        pid_t pid;
        int r = daemon_pid_file(c, &path);
        if (r >= 0)
                r = pidfile_find(path, NULL, &pid);
        if (r >= 0 && kill(pid, SIGHUP) < 0)
                r = negative_errno();
        if (r >= 0) {
                printf("Asked the device plugin (pid %d) to read the GPUs again; its log says what "
                       "changed.\n",
                       (int)pid);
                return 0;
        }
        if (r == -ENOENT || r == -ESRCH)
                log_error("nvdp plugin --rescan: no device plugin runs with this socket directory (%s %s; "
                          "--kubelet-socket names the directory)",
                          strna(path), r == -ENOENT ? "does not exist" : "names a process that is gone");
        else
                log_error_errno(r, "nvdp plugin --rescan: %s: %m", strna(path));
        return 1;
}

int cmd_plugin(int argc, char **argv)
{
        struct args a = { argc, argv };
        config *c = NULL;
        _cleanup_free_ char *error = NULL;

        int r = load_config(NULL, &c, &error, &a);
        if (r > 0) /* --help, --version */
                return 0;
        if (r < 0) {
                /* A klog (or JSON) line like every other, in the format asked for. */
                log_set_format(config_log_format(argc, argv));
                log_error("%s: %s", streq(argv[0], "plugin") ? "nvdp plugin" : argv[0],
                          error ? error : strerror(-r));
                return 1; /* as NVIDIA's plugin */
        }
        if (c->rescan) {
                log_set_format(c->flags.log_format);
                r = rescan_running_plugin(c);
                config_free(c);
                return r;
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
        log_info("nvdp %s starting as a device plugin", NVDP_VERSION);
        STRV_FOREACH (w, c->warnings)
                log_warning("%s", *w);

        struct daemon_options o = { .config = c, .load_config = load_config, .userdata = &a };
        return daemon_run(&o);
}
