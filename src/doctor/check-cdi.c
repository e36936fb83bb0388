/* SPDX-License-Identifier: Apache-2.0 */
/* CDI: the spec the plugin's cdi-* strategies depend on is for the running driver, and every CDI name
 * Allocate returns resolves in the spec directory. A stale spec (from before a driver upgrade) mounts
 * libraries that no longer exist, and the container fails to start with a mount error that names a
 * library, not the spec. */
#include <fnmatch.h>

#include "base/json.h"
#include "base/strv.h"
#include "doctor/doctor.h"
#include "doctor/node.h"
#include "doctor/rootfs.h"

#define CDI_DIR_DEFAULT "/var/run/cdi"
#define OUR_KIND        "k8s.device-plugin.nvidia.com/gpu"
#define SPEC_MAX        (16u * 1024 * 1024)
#define SPEC_DEPTH_MAX  32 /* a CDI spec nests 6 deep */
#define MISSING_SHOWN   5

static const char *spec_dir(const struct doctor_options *o)
{
        return isempty(o->cdi_spec_dir) ? CDI_DIR_DEFAULT : o->cdi_spec_dir;
}

static int fix_line(const struct doctor_options *o, char **ret)
{
        return asprintf(ret,
                        "nvdp cdi generate --spec-dir %s   # on the node; or restart the device plugin pod, "
                        "which rewrites its spec when it starts",
                        spec_dir(o)) < 0
                       ? -ENOMEM
                       : 0;
}

struct spec_file {
        char *path;
        json_object *doc;
};

static void spec_files_free(struct spec_file *f, size_t n)
{
        for (size_t i = 0; f && i < n; i++) {
                free(f[i].path);
                json_putp(&f[i].doc);
        }
        free(f);
}

/* The spec files of the directory that parse (*.json, *.yaml). */
static int read_specs(const struct doctor_options *o, struct spec_file **ret, size_t *ret_n)
{
        _cleanup_strv_free_ char **names = NULL;
        struct spec_file *files = NULL;
        size_t n = 0;
        (void)rootfs_list(o->root, spec_dir(o), 4096, &names);
        STRV_FOREACH (name, names) {
                if (fnmatch("*.json", *name, 0) != 0 && fnmatch("*.yaml", *name, 0) != 0)
                        continue;
                _cleanup_free_ char *path = NULL, *data = NULL;
                json_object *doc = NULL;
                size_t size;
                if (asprintf(&path, "%s/%s", spec_dir(o), *name) < 0)
                        goto oom;
                /* As the CDI library reads them: *.json as JSON, *.yaml as YAML. */
                if (rootfs_read(o->root, path, SPEC_MAX, &data, &size) < 0 ||
                    (endswith(*name, ".json")
                             ? json_parse(data, size, SPEC_MAX, SPEC_DEPTH_MAX, &doc)
                             : json_parse_yaml(data, size, SPEC_MAX, SPEC_DEPTH_MAX, &doc)) < 0)
                        continue;
                struct spec_file *grown = realloc(files, sizeof(*grown) * (n + 1));
                if (!grown) {
                        json_putp(&doc);
                        goto oom;
                }
                files = grown;
                files[n++] = (struct spec_file){ TAKE_PTR(path), doc };
        }
        *ret = files;
        *ret_n = n;
        return 0;
oom:
        spec_files_free(files, n);
        return -ENOMEM;
}

static const char *spec_kind(const struct spec_file *f)
{
        return json_text(json_get(f->doc, "kind"));
}

/* The driver version a spec was made for: nvdp's annotation, else the version suffix of the
 * libcuda/libnvidia-ml it mounts (specs of nvidia-ctk and NVIDIA's plugin). */
static char *spec_driver_version(const struct spec_file *f)
{
        const char *v = json_text(json_get_path(
                f->doc, (const char *const[]){ "annotations", "nvdp.nvidia.com/driver-version", NULL }));
        if (v)
                return strdup(v);
        json_object *mounts =
                json_get_path(f->doc, (const char *const[]){ "containerEdits", "mounts", NULL });
        for (size_t i = 0; i < json_array_size(mounts); i++) {
                const char *p = json_text(json_get(json_array_at(mounts, i), "containerPath"));
                const char *base = p ? strrchr(p, '/') : NULL;
                base = base ? base + 1 : p;
                if (!base)
                        continue;
                if (startswith(base, "libcuda.so.") && strchr(base + strlen("libcuda.so."), '.'))
                        return strdup(base + strlen("libcuda.so."));
                if (startswith(base, "libnvidia-ml.so.") && strchr(base + strlen("libnvidia-ml.so."), '.'))
                        return strdup(base + strlen("libnvidia-ml.so."));
        }
        return NULL;
}

static int check_driver(const struct doctor_options *o, doctor_report *r, const struct spec_file *f,
                        size_t n)
{
        _cleanup_free_ char *fix = NULL;
        if (fix_line(o, &fix) < 0)
                return -ENOMEM;
        const struct spec_file *ours = NULL;
        for (size_t i = 0; i < n && !ours; i++)
                if (streq(strempty(spec_kind(&f[i])), OUR_KIND))
                        ours = &f[i];
        if (!ours)
                return doctor_report_addf(r, "cdi.spec-driver", DOCTOR_FAIL, fix,
                                          "no spec of kind " OUR_KIND
                                          " in %s: the CDI device names the plugin "
                                          "returns resolve nowhere",
                                          spec_dir(o));
        if (!o->nvml || !o->nvml->loaded)
                return doctor_report_addf(
                        r, "cdi.spec-driver", DOCTOR_SKIP, NULL,
                        "%s found; the running driver's version is unknown (NVML not loaded)", ours->path);
        _cleanup_free_ char *version = spec_driver_version(ours);
        if (!version)
                return doctor_report_addf(r, "cdi.spec-driver", DOCTOR_WARN, fix,
                                          "%s mounts no libcuda or libnvidia-ml: it cannot be for driver %s",
                                          ours->path, o->nvml->driver_version);
        if (!streq(version, o->nvml->driver_version))
                return doctor_report_addf(r, "cdi.spec-driver", DOCTOR_FAIL, fix,
                                          "%s is for driver %s but driver %s is running: containers get "
                                          "libraries that are gone",
                                          ours->path, version, o->nvml->driver_version);
        return doctor_report_addf(r, "cdi.spec-driver", DOCTOR_OK, NULL,
                                  "%s is for driver %s, the running one", ours->path, version);
}

static int check_devices(const struct doctor_options *o, doctor_report *r, const struct spec_file *f,
                         size_t n)
{
        if (!o->cdi_names)
                return doctor_report_add(r, "cdi.spec-devices", DOCTOR_SKIP,
                                         "the devices Allocate names are unknown (NVML not loaded)", NULL);
        _cleanup_strv_free_ char **have = NULL, **missing = NULL;
        int k;
        for (size_t i = 0; i < n; i++) {
                const char *kind = spec_kind(&f[i]);
                json_object *devices = json_get(f[i].doc, "devices");
                for (size_t j = 0; kind && j < json_array_size(devices); j++) {
                        const char *name = json_text(json_get(json_array_at(devices, j), "name"));
                        _cleanup_free_ char *q = NULL;
                        if (!name)
                                continue;
                        if (asprintf(&q, "%s=%s", kind, name) < 0)
                                return -ENOMEM;
                        if ((k = strv_extend(&have, q)) < 0)
                                return k;
                }
        }
        STRV_FOREACH (name, o->cdi_names)
                if (!strv_contains(have, *name) && (k = strv_extend(&missing, *name)) < 0)
                        return k;
        size_t total = strv_length(o->cdi_names), n_missing = strv_length(missing);
        if (n_missing == 0)
                return doctor_report_addf(r, "cdi.spec-devices", DOCTOR_OK, NULL,
                                          "every CDI device Allocate names (%zu) resolves in %s", total,
                                          spec_dir(o));
        _cleanup_free_ char *fix = NULL;
        if (fix_line(o, &fix) < 0)
                return -ENOMEM;
        _cleanup_strv_free_ char **shown = NULL;
        for (size_t i = 0; i < MIN(n_missing, (size_t)MISSING_SHOWN); i++)
                if ((k = strv_extend(&shown, missing[i])) < 0)
                        return k;
        if (n_missing > MISSING_SHOWN) {
                char more[64];
                snprintf(more, sizeof more, "and %zu more", n_missing - MISSING_SHOWN);
                if ((k = strv_extend(&shown, more)) < 0)
                        return k;
        }
        _cleanup_free_ char *list = strv_join(shown, ", ");
        if (!list)
                return -ENOMEM;
        return doctor_report_addf(
                r, "cdi.spec-devices", DOCTOR_FAIL, fix,
                "%zu of %zu CDI devices Allocate names are in no spec in %s: %s (containers "
                "asking for them fail to start)",
                n_missing, total, spec_dir(o), list);
}

/* The hook programs a spec names (every hooks[].path, the spec's and its devices'), each once. */
static int spec_hooks(const struct spec_file *f, char ***ret)
{
        _cleanup_strv_free_ char **paths = new0(char *, 1);
        if (!paths)
                return -ENOMEM;
        json_object *devices = json_get(f->doc, "devices");
        for (size_t i = 0; i <= json_array_size(devices); i++) {
                json_object *edits = i == 0 ? json_get(f->doc, "containerEdits")
                                            : json_get(json_array_at(devices, i - 1), "containerEdits");
                json_object *hooks = json_get(edits, "hooks");
                for (size_t j = 0; j < json_array_size(hooks); j++) {
                        const char *p = json_text(json_get(json_array_at(hooks, j), "path"));
                        int k;
                        if (p && !strv_contains(paths, p) && (k = strv_extend(&paths, p)) < 0)
                                return k;
                }
        }
        *ret = TAKE_PTR(paths);
        return 0;
}

static int toolkit_free(const struct doctor_options *o, const struct spec_file *f, size_t n,
                        char **ret_evidence)
{
        const struct spec_file *ours = NULL;
        for (size_t i = 0; i < n && !ours; i++) {
                const char *g = json_text(
                        json_get_path(f[i].doc, (const char *const[]){ "annotations",
                                                                       "nvdp.nvidia.com/generator", NULL }));
                if (streq(strempty(spec_kind(&f[i])), OUR_KIND) && g && streq(g, "nvdp"))
                        ours = &f[i];
        }
        if (!ours)
                return 0;
        _cleanup_strv_free_ char **hooks = NULL;
        int k = spec_hooks(ours, &hooks);
        if (k < 0)
                return k;
        STRV_FOREACH (h, hooks)
                if (!rootfs_is_executable(o->root, *h))
                        return 0; /* a hook that is not there (nvidia-ctk on a node without it) */
        _cleanup_free_ char *containerd = NULL, *list = strv_join(hooks, ", ");
        if (!list)
                return -ENOMEM;
        if ((k = node_containerd_cdi(o, &containerd)) <= 0)
                return k;
        if (asprintf(ret_evidence, "the plugin passes devices by CDI with nvdp's spec %s (hooks: %s) and %s",
                     ours->path, hooks[0] ? list : "none", containerd) < 0)
                return -ENOMEM;
        return 1;
}

int node_toolkit_free(const struct doctor_options *o, char **ret_evidence)
{
        if (!o->cdi_expected)
                return 0;
        struct spec_file *f = NULL;
        size_t n = 0;
        int k = read_specs(o, &f, &n);
        if (k >= 0)
                k = toolkit_free(o, f, n, ret_evidence);
        spec_files_free(f, n);
        return k;
}

int doctor_check_cdi(const struct doctor_options *o, doctor_report *r)
{
        if (!o->cdi_expected) {
                int k = doctor_report_add(r, "cdi.spec-driver", DOCTOR_SKIP,
                                          "no CDI device-list strategy configured", NULL);
                return k < 0 ? k
                             : doctor_report_add(r, "cdi.spec-devices", DOCTOR_SKIP,
                                                 "no CDI device-list strategy configured", NULL);
        }
        struct spec_file *f = NULL;
        size_t n = 0;
        int k = read_specs(o, &f, &n);
        if (k >= 0)
                k = check_driver(o, r, f, n);
        if (k >= 0)
                k = check_devices(o, r, f, n);
        spec_files_free(f, n);
        return k;
}
