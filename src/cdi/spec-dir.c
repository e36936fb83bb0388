/* SPDX-License-Identifier: Apache-2.0 */
/* The CDI spec directory (/var/run/cdi): nvdp's files written atomically (containerd and CRI-O watch
 * the directory and must never see half a file), replaced when stale, removed when no longer wanted;
 * other files (nvidia-ctk's nvidia.yaml, other vendors) are never touched. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/strv.h"
#include "cdi/cdi-internal.h"
#include "doctor/json.h"

#define SPEC_FILE_MAX  (16u * 1024 * 1024)
#define SPEC_FILES_MAX 4096

int cdi_spec_file_name(const cdi_spec *s, char **ret)
{
        _cleanup_free_ char *vendor = NULL, *class = NULL;
        int r = cdi_kind_split(s->kind, &vendor, &class);
        if (r < 0)
                return r;
        return asprintf(ret, "%s-%s.json", vendor, class) < 0 ? -ENOMEM : 0;
}

static int mkdir_parents(const char *dir)
{
        _cleanup_free_ char *p = strdup(dir);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1;; s++) {
                char c = *s;
                if (c != '/' && c != '\0')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = c;
                if (!c)
                        return 0;
        }
}

static bool is_spec_name(const char *n)
{
        return n[0] != '.' && (endswith(n, ".json") || endswith(n, ".yaml"));
}

/* Whether the file carries nvdp's generator annotation (only nvdp's own files are removed). */
static bool file_is_own(const char *path)
{
        _cleanup_free_ char *data = NULL;
        if (read_full_file(path, SPEC_FILE_MAX, &data, NULL) < 0)
                return false;
        return strstr(data, "\"" CDI_ANNOTATION_GENERATOR "\": \"nvdp\"") != NULL;
}

static int list_specs(const char *dir, char ***ret)
{
        DIR *d = opendir(dir);
        if (!d)
                return negative_errno();
        _cleanup_strv_free_ char **names = NULL;
        int r = 0;
        for (struct dirent *de; (de = readdir(d)) && strv_length(names) < SPEC_FILES_MAX;)
                if (is_spec_name(de->d_name) && (r = strv_extend(&names, de->d_name)) < 0)
                        break;
        closedir(d);
        if (r < 0)
                return r;
        strv_sort(names);
        *ret = TAKE_PTR(names);
        return 0;
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

int cdi_spec_dir_write(const char *dir, const cdi_specs *s, char **ret_error)
{
        _cleanup_strv_free_ char **written = NULL;
        bool changed = false;
        int r = mkdir_parents(dir);
        if (r < 0)
                return error_set(ret_error, r, "cannot create the CDI spec directory %s: %s", dir,
                                 strerror(-r));
        for (size_t i = 0; i < s->n_specs; i++) {
                _cleanup_free_ char *name = NULL, *path = NULL, *data = NULL;
                size_t size;
                if ((r = cdi_spec_file_name(s->specs[i], &name)) < 0 ||
                    (r = cdi_spec_format(s->specs[i], CDI_FORMAT_JSON, &data, &size)) < 0)
                        return r;
                if (asprintf(&path, "%s/%s", dir, name) < 0)
                        return -ENOMEM;
                r = write_file_atomic(path, data, size, 0644);
                if (r < 0)
                        return error_set(ret_error, r, "cannot write the CDI spec %s: %s", path,
                                         strerror(-r));
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
        _cleanup_(json_doc_freep) json_doc *doc = NULL;
        size_t size;
        int r = read_full_file(path, SPEC_FILE_MAX, &data, &size);
        if (r == -ENOMEM)
                return r;
        const char *why = NULL;
        if (r < 0)
                why = strerror(-r);
        else if (json_doc_parse(data, size, &doc) < 0)
                why = "not JSON or YAML";
        json_node root = json_root(doc);
        const char *kind = json_string(doc, json_get(doc, root, "kind"));
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
        json_node devices = json_get(doc, root, "devices");
        for (size_t i = 0; i < json_array_length(doc, devices); i++) {
                const char *name = json_string(doc, json_get(doc, json_array_item(doc, devices, i), "name"));
                if (name && (r = strv_extend(&f->devices, name)) < 0)
                        return r;
        }
        json_node ann = json_get(doc, root, "annotations");
        for (size_t i = 0; i < json_object_length(doc, ann); i++) {
                const char *k = json_object_key(doc, ann, i),
                           *v = json_string(doc, json_object_value(doc, ann, i));
                if (k && v &&
                    ((r = strv_extend(&f->annotations, k)) < 0 || (r = strv_extend(&f->annotations, v)) < 0))
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
