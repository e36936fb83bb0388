/* SPDX-License-Identifier: Apache-2.0 */
/* Per-node config selection from a directory of named configs (the chart's ConfigMap). */
#include <dirent.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/strv.h"
#include "config/config.h"

/* The config names in srcdir: regular files (or links to them), "..data" and friends left out. */
static int list_configs(const char *srcdir, char ***ret)
{
        _cleanup_strv_free_ char **names = new0(char *, 1);
        if (!names)
                return -ENOMEM;
        DIR *d = opendir(srcdir);
        if (!d)
                return negative_errno();
        struct dirent *de;
        int r = 0;
        while (r >= 0 && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;
                r = strv_extend(&names, de->d_name);
        }
        closedir(d);
        if (r < 0)
                return r;
        strv_sort(names);
        *ret = TAKE_PTR(names);
        return 0;
}

int config_select_file(const char *srcdir, const char *label_value, const char *default_name,
                       const char *fallbacks, char **ret, char **ret_why, char **ret_error)
{
        _cleanup_strv_free_ char **names = NULL, **order = NULL;
        int r = list_configs(srcdir, &names);
        if (r < 0)
                return error_set(ret_error, r, "cannot list the configs in %s: %s", srcdir, strerror(-r));

        const char *pick = NULL;
        _cleanup_free_ char *why = NULL;
        if (!isempty(label_value)) {
                if (!strv_contains(names, label_value)) {
                        _cleanup_free_ char *have = strv_join(names, ", ");
                        return error_set(
                                ret_error, -ENOENT,
                                "node label nvidia.com/device-plugin.config=%s names no config in %s "
                                "(have: %s)",
                                label_value, srcdir, have && *have ? have : "none");
                }
                pick = label_value;
                r = asprintf(&why, "node label nvidia.com/device-plugin.config=%s", label_value);
        } else if (!isempty(default_name) && strv_contains(names, default_name)) {
                pick = default_name;
                r = asprintf(&why, "DEFAULT_CONFIG=%s", default_name);
        } else {
                r = strv_split(strempty(fallbacks), ",", &order);
                if (r < 0)
                        return r;
                STRV_FOREACH (f, order) {
                        if (streq(*f, "named") && strv_contains(names, "default"))
                                pick = "default";
                        else if (streq(*f, "single") && strv_length(names) == 1)
                                pick = names[0];
                        else if (streq(*f, "empty"))
                                pick = "";
                        else if (!streq(*f, "named") && !streq(*f, "single"))
                                return error_set(
                                        ret_error, -EINVAL,
                                        "FALLBACK_STRATEGIES: unknown strategy \"%s\" (named, single, "
                                        "empty)",
                                        *f);
                        if (pick) {
                                r = asprintf(&why, "fallback \"%s\"", *f);
                                break;
                        }
                }
        }
        if (r < 0)
                return -ENOMEM;
        if (!pick)
                return error_set(ret_error, -ENOENT,
                                 "no config selected in %s: no node label, no default config%s%s, and no "
                                 "fallback applies",
                                 srcdir, isempty(default_name) ? "" : " named ", strempty(default_name));
        char *p;
        if (isempty(pick) ? !(p = strdup("/dev/null")) : asprintf(&p, "%s/%s", srcdir, pick) < 0)
                return -ENOMEM;
        *ret = p;
        if (ret_why)
                *ret_why = TAKE_PTR(why);
        return 0;
}

int config_from_env_and_args(enum nvdp_program p, int argc, char **argv, const char *node_label,
                             config **ret, char **ret_error)
{
        const char *srcdir = getenv("CONFIG_FILE_SRCDIR");
        _cleanup_free_ char *selected = NULL, *why = NULL;
        if (!isempty(srcdir)) {
                const char *fallbacks = getenv("FALLBACK_STRATEGIES");
                int r = config_select_file(srcdir, node_label, getenv("DEFAULT_CONFIG"),
                                           fallbacks ? fallbacks : "named,single", &selected, &why,
                                           ret_error);
                if (r < 0)
                        return r;
        }
        config *c;
        int r = config_from_args_selected(p, argc, argv, selected, &c, ret_error);
        if (r != 0)
                return r;
        /* The selected file is the config unless --config-file or CONFIG_FILE named another. */
        if (selected && c->config_file && streq(c->config_file, selected)) {
                char *source;
                const char *slash = strrchr(selected, '/');
                if (streq(selected, "/dev/null")
                            ? asprintf(&source, "no config (%s)", why) < 0
                            : asprintf(&source, "config \"%s\" (%s)", slash + 1, why) < 0) {
                        config_free(c);
                        return -ENOMEM;
                }
                free(c->config_source);
                c->config_source = source;
        }
        *ret = c;
        return 0;
}
