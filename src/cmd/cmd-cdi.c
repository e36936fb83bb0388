/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp cdi generate | list: the command-line side of src/cdi, as nvidia-ctk's "cdi generate" and
 * "cdi list". generate writes the spec the plugin writes, from this node's GPUs and driver. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "base/fileio.h"
#include "base/strv.h"
#include "cdi/cdi.h"
#include "cmd/cmd.h"
#include "gpu/node.h"

static void help(FILE *f)
{
        fprintf(f,
                "Usage: nvdp cdi generate [OPTIONS]\n"
                "       nvdp cdi list [--spec-dir DIR]...\n"
                "       nvdp cdi remove [--spec-dir DIR]\n"
                "       nvdp cdi install-hook [--from FILE] DIR\n\n"
                "generate: write the CDI spec of this node's GPUs (what the plugin writes when a cdi-*\n"
                "device-list strategy is on): devices by index, UUID, <gpu>:<mig> and \"all\".\n"
                "  -o, --output FILE             write the spec to FILE (atomically) instead of stdout\n"
                "      --format yaml|json        default: json for a FILE ending in .json, else yaml\n"
                "      --spec-dir DIR            write every spec (GPU, IMEX) into DIR as the plugin does\n"
                "      --kind VENDOR/CLASS       default " CDI_KIND_GPU "\n"
                "                                (nvidia-ctk's is nvidia.com/gpu)\n"
                "      --driver-root DIR         host path of the driver root (env NVIDIA_DRIVER_ROOT;\n"
                "                                default /)\n"
                "      --dev-root DIR            host root of /dev (env NVIDIA_DEV_ROOT; default the\n"
                "                                driver root, then / when it has no /dev/nvidiactl)\n"
                "      --driver-root-ctr-path DIR  where the driver root is seen from here (default:\n"
                "                                the driver root itself)\n"
                "      --nvidia-cdi-hook-path P  the hook written into the spec (env NVIDIA_CDI_HOOK_PATH;\n"
                "                                default this nvdp binary; nvidia-cdi-hook and nvidia-ctk\n"
                "                                work too)\n"
                "      --cdi-disable-hooks LIST  create-symlinks, update-ldcache, or all\n"
                "      --imex-channel-ids LIST   IMEX channels for the imex-channel spec (--spec-dir)\n"
                "      --root DIR                the host root whose /sys and /proc are read (env "
                "NVDP_ROOT)\n"
                "list: the CDI device names of the spec files in each DIR (default /etc/cdi,\n"
                "      /var/run/cdi)\n"
                "remove: remove nvdp's own spec files from DIR (default " CDI_SPEC_DIR_DEFAULT
                "); others stay\n"
                "install-hook: copy the static hook nvdp-cdi-hook (default: the one next to this program)\n"
                "      into DIR on the host, atomically; the spec then names DIR/nvdp-cdi-hook\n");
}

#define HOOK_MAX (64u * 1024 * 1024)

static const char *env_or(const char *name, const char *fallback)
{
        const char *v = getenv(name);
        return isempty(v) ? fallback : v;
}

/* This program's real path (the default hook); NULL, said on stderr, when it cannot be found. */
static char *self_path(const char *verb, const char *flag)
{
        char buf[PATH_MAX];
        ssize_t k = readlink("/proc/self/exe", buf, sizeof buf - 1);
        if (k <= 0) {
                fprintf(stderr, "nvdp cdi %s: cannot find this program's path: %m; give %s.\n", verb, flag);
                return NULL;
        }
        buf[k] = '\0';
        return strdup(buf);
}

static int write_output(const char *path, const char *data, size_t size)
{
        if (!path) {
                if (fwrite(data, 1, size, stdout) != size || fflush(stdout) != 0) {
                        fprintf(stderr, "nvdp cdi generate: cannot write the spec to stdout: %m\n");
                        return 1;
                }
                return 0;
        }
        int r = write_file_atomic(path, data, size, 0644);
        if (r < 0) {
                fprintf(stderr, "nvdp cdi generate: cannot write %s: %s\n", path, strerror(-r));
                return 1;
        }
        return 0;
}

static int parse_channels(const char *list, unsigned **ret, size_t *ret_n)
{
        _cleanup_strv_free_ char **l = NULL;
        if (strv_split(list, ",", &l) < 0)
                return -ENOMEM;
        _cleanup_free_ unsigned *ids = new0(unsigned, strv_length(l) + 1);
        if (!ids)
                return -ENOMEM;
        size_t n = 0;
        STRV_FOREACH (s, l) {
                char *end;
                errno = 0;
                unsigned long v = strtoul(*s, &end, 10);
                if (errno || *end || end == *s || v > UINT_MAX)
                        return -EINVAL;
                ids[n++] = (unsigned)v;
        }
        *ret = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

static int cdi_generate(int argc, char **argv)
{
        enum {
                ARG_FORMAT = 0x100,
                ARG_SPEC_DIR,
                ARG_KIND,
                ARG_DRIVER_ROOT,
                ARG_DEV_ROOT,
                ARG_CTR,
                ARG_HOOK,
                ARG_DISABLE,
                ARG_IMEX,
                ARG_ROOT
        };
        static const struct option options[] = {
                { "output", required_argument, NULL, 'o' },
                { "format", required_argument, NULL, ARG_FORMAT },
                { "spec-dir", required_argument, NULL, ARG_SPEC_DIR },
                { "kind", required_argument, NULL, ARG_KIND },
                { "driver-root", required_argument, NULL, ARG_DRIVER_ROOT },
                { "nvidia-driver-root", required_argument, NULL, ARG_DRIVER_ROOT },
                { "dev-root", required_argument, NULL, ARG_DEV_ROOT },
                { "nvidia-dev-root", required_argument, NULL, ARG_DEV_ROOT },
                { "driver-root-ctr-path", required_argument, NULL, ARG_CTR },
                { "nvidia-cdi-hook-path", required_argument, NULL, ARG_HOOK },
                { "nvidia-ctk-path", required_argument, NULL, ARG_HOOK },
                { "cdi-disable-hooks", required_argument, NULL, ARG_DISABLE },
                { "imex-channel-ids", required_argument, NULL, ARG_IMEX },
                { "root", required_argument, NULL, ARG_ROOT },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *output = NULL, *format = NULL, *spec_dir = NULL, *kind = NULL,
                   *driver_root = env_or("NVIDIA_DRIVER_ROOT", "/"),
                   *dev_root = env_or("NVIDIA_DEV_ROOT", NULL), *ctr = NULL,
                   *hook = env_or("NVIDIA_CDI_HOOK_PATH", env_or("NVIDIA_CTK_PATH", NULL)),
                   *root = env_or("NVDP_ROOT", "/");
        _cleanup_strv_free_ char **disabled = NULL;
        _cleanup_free_ unsigned *channels = NULL;
        _cleanup_free_ char *self = NULL;
        size_t n_channels = 0;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0) {
                switch (c) {
                case 'o': output = optarg; break;
                case ARG_FORMAT: format = optarg; break;
                case ARG_SPEC_DIR: spec_dir = optarg; break;
                case ARG_KIND: kind = optarg; break;
                case ARG_DRIVER_ROOT: driver_root = optarg; break;
                case ARG_DEV_ROOT: dev_root = optarg; break;
                case ARG_CTR: ctr = optarg; break;
                case ARG_HOOK: hook = optarg; break;
                case ARG_ROOT: root = optarg; break;
                case ARG_DISABLE:
                        if (strv_split(optarg, ",", &disabled) < 0)
                                return 1;
                        break;
                case ARG_IMEX:
                        if (parse_channels(optarg, &channels, &n_channels) < 0) {
                                fprintf(stderr,
                                        "nvdp cdi generate: --imex-channel-ids '%s' is not a list of "
                                        "numbers.\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'h': help(stdout); return 0;
                default:
                        fprintf(stderr, "nvdp cdi generate: unknown option or missing value: '%s'.\n",
                                argv[optind - 1]);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "nvdp cdi generate: unexpected argument '%s'.\n", argv[optind]);
                return 2;
        }
        enum cdi_format fmt = output && endswith(output, ".json") ? CDI_FORMAT_JSON : CDI_FORMAT_YAML;
        if (format && streq(format, "json"))
                fmt = CDI_FORMAT_JSON;
        else if (format && streq(format, "yaml"))
                fmt = CDI_FORMAT_YAML;
        else if (format) {
                fprintf(stderr, "nvdp cdi generate: --format '%s' is not yaml or json.\n", format);
                return 2;
        }
        if (output && spec_dir) {
                fprintf(stderr, "nvdp cdi generate: --output and --spec-dir do not go together.\n");
                return 2;
        }
        /* The default hook is this binary, by its real path on this host. */
        if (!hook) {
                if (!(self = self_path("generate", "--nvidia-cdi-hook-path")))
                        return 1;
                hook = self;
        }

        _cleanup_free_ char *error = NULL;
        _cleanup_(node_closep) struct node *n = NULL;
        struct node_roots roots = { .root = root, .driver_root = driver_root, .container_driver_root = ctr };
        int r = node_open(&roots, &n, &error);
        if (r < 0) {
                fprintf(stderr, "nvdp cdi generate: %s\n", error ? error : strerror(-r));
                return 1;
        }
        const inventory *inv = n->inventory;

        struct cdi_options o = {
                /* On the command line the roots are paths on this machine: only /sys, /proc and the
                 * fallback dev root "/" are read under --root. */
                .roots = { .host = root,
                           .driver = driver_root,
                           .driver_ctr = ctr ? ctr : driver_root,
                           .dev = dev_root,
                           .dev_ctr = dev_root },
                .kind = kind,
                .hook_path = hook,
                .disabled_hooks = disabled,
                .imex_channel_ids = channels,
                .n_imex_channel_ids = n_channels,
        };
        _cleanup_(cdi_specs_freep) cdi_specs *s = NULL;
        r = cdi_specs_build(inv, &o, &s, &error);
        if (r < 0) {
                fprintf(stderr, "nvdp cdi generate: %s\n", error ? error : strerror(-r));
                return 1;
        }
        STRV_FOREACH (w, s->warnings)
                fprintf(stderr, "nvdp cdi generate: warning: %s\n", *w);
        const cdi_spec *gpu = s->specs[0];
        fprintf(stderr,
                "nvdp cdi generate: driver %s from the driver root %s, device nodes from the dev root %s: "
                "%zu devices, %zu mounts, %zu hooks\n",
                inv->driver_version, s->driver_root, s->dev_root, gpu->n_devices, gpu->edits.n_mounts,
                gpu->edits.n_hooks);

        if (spec_dir) {
                r = cdi_spec_dir_write(spec_dir, s, &error);
                if (r < 0) {
                        fprintf(stderr, "nvdp cdi generate: %s\n", error ? error : strerror(-r));
                        return 1;
                }
                for (size_t i = 0; i < s->n_specs; i++) {
                        _cleanup_free_ char *name = NULL;
                        if (cdi_spec_file_name(s->specs[i], &name) >= 0)
                                fprintf(stderr, "nvdp cdi generate: %s %s/%s\n",
                                        r > 0 ? "wrote" : "unchanged", spec_dir, name);
                }
                return 0;
        }
        _cleanup_free_ char *data = NULL;
        size_t size;
        if ((r = cdi_spec_format(gpu, fmt, &data, &size)) < 0) {
                fprintf(stderr, "nvdp cdi generate: %s\n", strerror(-r));
                return 1;
        }
        return write_output(output, data, size);
}

/* The verbs with one option NAME VALUE besides --help (list, remove, install-hook): every value in
 * *values, in order. Returns -1 to go on, else the exit code. */
static int parse_one_option(int argc, char **argv, const char *verb, const char *name, char ***values)
{
        const struct option options[] = {
                { name, required_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'v':
                        if (strv_extend(values, optarg) < 0)
                                return 1;
                        break;
                case 'h': help(stdout); return 0;
                default:
                        fprintf(stderr, "nvdp cdi %s: unknown option or missing value: '%s'.\n", verb,
                                argv[optind - 1]);
                        return 2;
                }
        }
        return -1;
}

static int cdi_list(int argc, char **argv)
{
        _cleanup_strv_free_ char **dirs = NULL;
        int k = parse_one_option(argc, argv, "list", "spec-dir", &dirs);
        if (k >= 0)
                return k;
        if (!dirs && (strv_extend(&dirs, "/etc/cdi") < 0 || strv_extend(&dirs, "/var/run/cdi") < 0))
                return 1;
        struct cdi_spec_file *files = NULL;
        size_t n = 0;
        int r = cdi_spec_dirs_read(dirs, &files, &n), ret = 0;
        if (r < 0) {
                fprintf(stderr, "nvdp cdi list: %s\n", strerror(-r));
                return 1;
        }
        size_t count = 0;
        for (size_t i = 0; i < n; i++) {
                if (!files[i].kind) {
                        fprintf(stderr, "nvdp cdi list: %s: %s\n", files[i].path,
                                files[i].annotations ? files[i].annotations[1] : "unreadable");
                        ret = 1;
                        continue;
                }
                STRV_FOREACH (d, files[i].devices) {
                        printf("%s=%s\n", files[i].kind, *d);
                        count++;
                }
        }
        cdi_spec_files_free(files, n);
        fprintf(stderr, "nvdp cdi list: %zu CDI devices\n", count);
        return fflush(stdout) == 0 ? ret : 1;
}

/* Uninstall: nvdp's own spec files go, nvidia-ctk's and other vendors' stay. */
static int cdi_remove(int argc, char **argv)
{
        _cleanup_strv_free_ char **dirs = NULL;
        int k = parse_one_option(argc, argv, "remove", "spec-dir", &dirs);
        if (k >= 0)
                return k;
        const char *dir = dirs ? dirs[strv_length(dirs) - 1] : CDI_SPEC_DIR_DEFAULT;
        _cleanup_free_ char *error = NULL;
        int r = cdi_spec_dir_remove_own(dir, &error);
        if (r < 0) {
                fprintf(stderr, "nvdp cdi remove: %s\n", error ? error : strerror(-r));
                return 1;
        }
        fprintf(stderr, "nvdp cdi remove: removed %d spec file%s of nvdp from %s\n", r, r == 1 ? "" : "s",
                dir);
        return 0;
}

/* The chart's init container (cdi.installHook): the image has no shell and no cp. */
static int cdi_install_hook(int argc, char **argv)
{
        _cleanup_free_ char *self = NULL, *dir_self = NULL, *from_default = NULL, *data = NULL, *to = NULL;
        _cleanup_strv_free_ char **froms = NULL;
        int k = parse_one_option(argc, argv, "install-hook", "from", &froms);
        if (k >= 0)
                return k;
        const char *from = froms ? froms[strv_length(froms) - 1] : NULL;
        if (optind != argc - 1 || isempty(argv[optind])) {
                fprintf(stderr, "nvdp cdi install-hook: give the directory to install into.\n");
                return 2;
        }
        const char *dir = argv[optind];
        if (!from) {
                if (!(self = self_path("install-hook", "--from")) || !(dir_self = path_dir_name(self)) ||
                    asprintf(&from_default, "%s/nvdp-cdi-hook", dir_self) < 0)
                        return 1;
                from = from_default;
        }
        size_t size;
        int r = read_full_file(from, HOOK_MAX, &data, &size);
        if (r < 0) {
                fprintf(stderr, "nvdp cdi install-hook: cannot read %s: %s\n", from, strerror(-r));
                return 1;
        }
        if (asprintf(&to, "%s/nvdp-cdi-hook", dir) < 0)
                return 1;
        if ((r = mkdir_p(dir, 0755)) >= 0)
                r = write_file_atomic(to, data, size, 0755);
        if (r < 0) {
                fprintf(stderr, "nvdp cdi install-hook: cannot write %s: %s\n", to, strerror(-r));
                return 1;
        }
        fprintf(stderr, "nvdp cdi install-hook: %s %s (from %s)\n", r > 0 ? "installed" : "unchanged", to,
                from);
        return 0;
}

int cmd_cdi(int argc, char **argv)
{
        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                help(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        if (streq(argv[1], "generate"))
                return cdi_generate(argc - 1, argv + 1);
        if (streq(argv[1], "list"))
                return cdi_list(argc - 1, argv + 1);
        if (streq(argv[1], "remove"))
                return cdi_remove(argc - 1, argv + 1);
        if (streq(argv[1], "install-hook"))
                return cdi_install_hook(argc - 1, argv + 1);
        fprintf(stderr, "nvdp cdi: unknown command '%s' (generate, list, remove, install-hook).\n", argv[1]);
        return 2;
}
