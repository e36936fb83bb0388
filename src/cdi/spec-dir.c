/* SPDX-License-Identifier: Apache-2.0 */
/* The CDI spec directory (/var/run/cdi): nvdp's files written atomically (containerd and CRI-O watch
 * the directory and must never see half a file), replaced when stale, removed when no longer wanted;
 * other files (nvidia-ctk's nvidia.yaml, other vendors) are never touched. */
#include <fcntl.h>
#include <json-c/json.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/strv.h"
#include "cdi/cdi-internal.h"

#define SPEC_FILE_MAX  (16u * 1024 * 1024)
#define SPEC_FILES_MAX 4096
#define SPEC_DEPTH_MAX 32 /* a CDI spec nests 6 deep */

int cdi_spec_file_name(const cdi_spec *s, char **ret)
{
        _cleanup_free_ char *vendor = NULL, *class = NULL;
        int r = cdi_kind_split(s->kind, &vendor, &class);
        if (r < 0)
                return r;
        return asprintf(ret, "%s-%s.json", vendor, class) < 0 ? -ENOMEM : 0;
}

static bool is_spec_name(const char *n)
{
        return n[0] != '.' && (endswith(n, ".json") || endswith(n, ".yaml"));
}

static int list_specs(const char *dir, char ***ret)
{
        return dir_list(dir, is_spec_name, SPEC_FILES_MAX, ret);
}

/* A spec file by its name, as the CDI library reads it: *.json as JSON, *.yaml as YAML. */
static int cdi_spec_parse(const char *path, const char *data, size_t size, json_object **ret)
{
        return endswith(path, ".json") ? json_parse(data, size, SPEC_FILE_MAX, SPEC_DEPTH_MAX, ret)
                                       : json_parse_yaml(data, size, SPEC_FILE_MAX, SPEC_DEPTH_MAX, ret);
}

/* Whether the file carries nvdp's generator annotation (only nvdp's own files are removed). */
static bool file_is_own(const char *path)
{
        _cleanup_free_ char *data = NULL;
        _cleanup_json_ json_object *doc = NULL;
        size_t size;
        if (read_full_file(path, SPEC_FILE_MAX, &data, &size) < 0 ||
            cdi_spec_parse(path, data, size, &doc) < 0)
                return false;
        const char *g = json_text(
                json_get_path(doc, (const char *const[]){ "annotations", CDI_ANNOTATION_GENERATOR, NULL }));
        return g && streq(g, "nvdp");
}

/* Removes own files in dir not named in keep; returns how many went. */
static int remove_own_except(const char *dir, char *const *keep, char **ret_error)
{
        _cleanup_strv_free_ char **names = NULL;
        int r = list_specs(dir, &names), removed = 0;
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return error_set(ret_error, r, "cannot list the CDI spec directory %s: %s", dir,
                                 strerror(-r));
        STRV_FOREACH (n, names) {
                _cleanup_free_ char *p = NULL;
                if (strv_contains(keep, *n))
                        continue;
                if (asprintf(&p, "%s/%s", dir, *n) < 0)
                        return -ENOMEM;
                if (!file_is_own(p))
                        continue;
                if (unlink(p) < 0 && errno != ENOENT)
                        return error_set(ret_error, negative_errno(), "cannot remove the CDI spec %s: %m",
                                         p);
                removed++;
        }
        return removed;
}

int cdi_spec_write_file(const char *path, const cdi_spec *s, char **ret_error)
{
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = cdi_spec_format(s, CDI_FORMAT_JSON, &data, &size);
        if (r < 0)
                return r;
        r = write_file_atomic(path, data, size, 0644);
        if (r < 0)
                return error_set(ret_error, r, "cannot write the CDI spec %s: %s", path, strerror(-r));
        return r > 0;
}

int cdi_spec_dir_write(const char *dir, const cdi_specs *s, char **ret_error)
{
        _cleanup_strv_free_ char **written = NULL;
        bool changed = false;
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return error_set(ret_error, r, "cannot create the CDI spec directory %s: %s", dir,
                                 strerror(-r));
        for (size_t i = 0; i < s->n_specs; i++) {
                _cleanup_free_ char *name = NULL, *path = NULL;
                if ((r = cdi_spec_file_name(s->specs[i], &name)) < 0)
                        return r;
                if (asprintf(&path, "%s/%s", dir, name) < 0)
                        return -ENOMEM;
                if ((r = cdi_spec_write_file(path, s->specs[i], ret_error)) < 0)
                        return r;
                changed = changed || r > 0;
                if ((r = strv_extend(&written, name)) < 0)
                        return r;
        }
        r = remove_own_except(dir, written, ret_error);
        if (r < 0)
                return r;
        return changed || r > 0;
}

int cdi_spec_dir_remove_own(const char *dir, char **ret_error)
{
        return remove_own_except(dir, NULL, ret_error);
}

/* ---- reading ---- */

void cdi_spec_files_free(struct cdi_spec_file *f, size_t n)
{
        for (size_t i = 0; f && i < n; i++) {
                free(f[i].path);
                free(f[i].kind);
                strv_free(f[i].devices);
                strv_free(f[i].annotations);
        }
        free(f);
}

static int spec_file_read(const char *path, struct cdi_spec_file *f)
{
        _cleanup_free_ char *data = NULL;
        _cleanup_json_ json_object *doc = NULL;
        size_t size;
        int r = read_full_file(path, SPEC_FILE_MAX, &data, &size);
        if (r == -ENOMEM)
                return r;
        const char *why = NULL;
        if (r < 0)
                why = strerror(-r);
        else if ((r = cdi_spec_parse(path, data, size, &doc)) == -ENOMEM)
                return r;
        else if (r < 0)
                why = endswith(path, ".json") ? "not JSON" : "not YAML";
        const char *kind = json_text(json_get(doc, "kind"));
        if (!why && !kind)
                why = "no kind";
        if (why) {
                if ((r = strv_extend(&f->annotations, "error")) < 0 ||
                    (r = strv_extend(&f->annotations, why)) < 0)
                        return r;
                return 0;
        }
        if (!(f->kind = strdup(kind)))
                return -ENOMEM;
        json_object *devices = json_get(doc, "devices");
        for (size_t i = 0; i < json_array_size(devices); i++) {
                const char *name = json_text(json_get(json_array_at(devices, i), "name"));
                if (name && (r = strv_extend(&f->devices, name)) < 0)
                        return r;
        }
        json_object *ann = json_get(doc, "annotations");
        if (!json_object_is_type(ann, json_type_object))
                return 0;
        json_object_object_foreach(ann, k, v)
        {
                const char *value = json_text(v);
                if (value && ((r = strv_extend(&f->annotations, k)) < 0 ||
                              (r = strv_extend(&f->annotations, value)) < 0))
                        return r;
        }
        return 0;
}

int cdi_spec_dirs_read(char *const *dirs, struct cdi_spec_file **ret, size_t *ret_n)
{
        struct cdi_spec_file *files = NULL;
        size_t n = 0;
        int r = 0;
        STRV_FOREACH (d, dirs) {
                _cleanup_strv_free_ char **names = NULL;
                if (list_specs(*d, &names) < 0)
                        continue;
                STRV_FOREACH (name, names) {
                        struct cdi_spec_file *grown = realloc(files, sizeof(*grown) * (n + 1));
                        if (!grown) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        files = grown;
                        files[n] = (struct cdi_spec_file){};
                        n++;
                        if (asprintf(&files[n - 1].path, "%s/%s", *d, *name) < 0) {
                                files[n - 1].path = NULL;
                                r = -ENOMEM;
                                goto fail;
                        }
                        if ((r = spec_file_read(files[n - 1].path, &files[n - 1])) < 0)
                                goto fail;
                }
        }
        *ret = files;
        *ret_n = n;
        return 0;
fail:
        cdi_spec_files_free(files, n);
        return r;
}
