/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp cdi-hook: the OCI hooks a CDI spec names, with the arguments of NVIDIA's nvidia-cdi-hook, so a
 * spec can name either program. The runtime passes the container state on stdin. As nvidia-cdi-hook,
 * a hook this version does not know (a spec written by a newer nvidia-ctk) is a warning, not an error:
 * the container still starts. */
#include <stdio.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "base/log.h"
#include "base/strv.h"
#include "cdi/hook.h"
#include "cmd/cmd.h"

#define STATE_MAX (1024u * 1024)

static void help(FILE *f)
{
        fprintf(f, "Usage: nvdp cdi-hook [--debug] [--quiet] HOOK [FLAGS]\n\n"
                   "OCI createContainer hooks for CDI specs, argument-compatible with nvidia-cdi-hook.\n"
                   "The container state is read from stdin (or --container-spec FILE).\n\n"
                   "  update-ldcache  --folder DIR...  write the container's /etc/ld.so.cache for the\n"
                   "                                   libraries in DIR (no ldconfig is run;\n"
                   "                                   --ldconfig-path is accepted and not needed)\n"
                   "  create-symlinks --link TARGET::LINK...  create symlinks in the container\n"
                   "  chmod --mode OCTAL --path PATH...       change modes in the container\n");
}

struct hook_args {
        char **folders, **links, **paths;
        const char *mode, *state_file;
};

/* Flags as urfave/cli reads them: "--name value", "--name=value", one or two dashes. */
static int parse_flags(const char *hook, int argc, char **argv, struct hook_args *a)
{
        static const struct {
                const char *hook, *name;
                size_t offset; /* into struct hook_args; for a list flag */
                bool list;
        } flags[] = {
                { "update-ldcache", "folder", offsetof(struct hook_args, folders), true },
                { "update-ldcache", "ldconfig-path", 0, false },
                { "create-symlinks", "link", offsetof(struct hook_args, links), true },
                { "chmod", "path", offsetof(struct hook_args, paths), true },
                { "chmod", "mode", offsetof(struct hook_args, mode), false },
                { NULL, "container-spec", offsetof(struct hook_args, state_file), false },
        };
        for (int i = 0; i < argc; i++) {
                const char *arg = argv[i];
                if (arg[0] != '-') {
                        fprintf(stderr, "nvdp cdi-hook %s: unexpected argument '%s'\n", hook, arg);
                        return -EINVAL;
                }
                arg += arg[1] == '-' ? 2 : 1;
                size_t len = strcspn(arg, "=");
                const char *value = arg[len] == '=' ? arg + len + 1 : NULL;
                size_t k = 0;
                for (; k < ELEMENTSOF(flags); k++)
                        if ((!flags[k].hook || streq(flags[k].hook, hook)) && strlen(flags[k].name) == len &&
                            strneq(flags[k].name, arg, len))
                                break;
                if (k == ELEMENTSOF(flags)) {
                        fprintf(stderr, "nvdp cdi-hook %s: flag provided but not defined: %s\n", hook,
                                argv[i]);
                        return -EINVAL;
                }
                if (!value) {
                        if (i + 1 >= argc) {
                                fprintf(stderr, "nvdp cdi-hook %s: flag needs an argument: %s\n", hook,
                                        argv[i]);
                                return -EINVAL;
                        }
                        value = argv[++i];
                }
                if (flags[k].list) {
                        if (strv_extend((char ***)((char *)a + flags[k].offset), value) < 0)
                                return -ENOMEM;
                } else if (flags[k].offset)
                        *(const char **)((char *)a + flags[k].offset) = value;
        }
        return 0;
}

static int read_root(const char *state_file, char **ret)
{
        _cleanup_free_ char *state = NULL, *error = NULL;
        size_t size;
        /* stdin read as fd 0: the hook may run where no /dev/stdin is (a minimal host root). */
        int r = state_file ? read_full_file(state_file, STATE_MAX, &state, &size)
                           : read_full_fd(STDIN_FILENO, STATE_MAX, &state, &size);
        if (r < 0)
                return log_error_errno(r, "Cannot read the container state from %s: %m",
                                       state_file ? state_file : "stdin");
        r = cdi_hook_container_root(state, size, ret, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ? error : strerror(-r));
        return 0;
}

int cmd_cdi_hook(int argc, char **argv)
{
        int i = 1;
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
                        help(stdout);
                        return 0;
                }
                if (streq(argv[i], "--debug") || streq(argv[i], "-d"))
                        log_set_max_level(LOG_DEBUG);
                else if (streq(argv[i], "--quiet"))
                        log_set_max_level(LOG_ERR);
                else {
                        log_warning("Unsupported hook flag %s: nothing done", argv[i]);
                        return 0;
                }
        }
        if (i >= argc) {
                help(stderr);
                return 1;
        }
        const char *hook = argv[i];
        if (!streq(hook, "update-ldcache") && !streq(hook, "create-symlinks") && !streq(hook, "chmod")) {
                /* "noop" is nvidia-cdi-hook's test hook; other names come from newer specs. */
                if (!streq(hook, "noop"))
                        log_warning("Unsupported hook %s: nothing done (the container starts without it)",
                                    hook);
                return 0;
        }

        struct hook_args a = {};
        _cleanup_free_ char *root = NULL, *error = NULL;
        int r = parse_flags(hook, argc - i - 1, argv + i + 1, &a);
        if (r >= 0 && streq(hook, "chmod") && isempty(a.mode)) {
                fprintf(stderr, "nvdp cdi-hook chmod: a non-empty --mode must be given\n");
                r = -EINVAL;
        }
        mode_t mode = 0;
        if (r >= 0 && a.mode) {
                char *end;
                unsigned long m = strtoul(a.mode, &end, 8);
                if (*end || end == a.mode || m > 07777) {
                        fprintf(stderr, "nvdp cdi-hook chmod: --mode '%s' is not an octal mode\n", a.mode);
                        r = -EINVAL;
                }
                mode = (mode_t)m;
        }
        if (r >= 0)
                r = read_root(a.state_file, &root);
        if (r >= 0) {
                if (streq(hook, "update-ldcache"))
                        r = cdi_hook_update_ldcache(root, a.folders, &error);
                else if (streq(hook, "create-symlinks"))
                        r = cdi_hook_create_symlinks(root, a.links, &error);
                else
                        r = cdi_hook_chmod(root, a.paths, mode, &error);
                if (r < 0)
                        log_error_errno(r, "%s: %s", hook, error ? error : strerror(-r));
        }
        strv_free(a.folders);
        strv_free(a.links);
        strv_free(a.paths);
        return r < 0 ? 1 : 0;
}
