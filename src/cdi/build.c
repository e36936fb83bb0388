/* SPDX-License-Identifier: Apache-2.0 */
/* (inventory, driver root, dev root) -> the GPU spec and the IMEX spec. Every GPU is named by index
 * and UUID, every MIG device by "<gpu>:<mig>" and UUID, plus "all": whatever device-id strategy and
 * MIG strategy the plugin runs with, the names Allocate returns are in the spec. */
#include <sys/stat.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/strv.h"
#include "cdi/cdi-internal.h"

static const char *const control_nodes[] = {
        "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset", NULL,
};

#define IMEX_CHANNEL_FORMAT "/dev/nvidia-caps-imex-channels/channel%u"

cdi_specs *cdi_specs_free(cdi_specs *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_specs; i++)
                cdi_spec_free(s->specs[i]);
        free(s->specs);
        free(s->driver_root);
        free(s->dev_root);
        strv_free(s->warnings);
        return mfree(s);
}

static int specs_add(cdi_specs *s, cdi_spec *spec)
{
        cdi_spec **n = realloc(s->specs, sizeof(*n) * (s->n_specs + 1));
        if (!n)
                return -ENOMEM;
        s->specs = n;
        s->specs[s->n_specs++] = spec;
        return 0;
}

void cdi_options_from_config(const config *c, struct cdi_options *ret)
{
        const char *ctr = c->flags.plugin.container_driver_root;
        *ret = (struct cdi_options){
                .roots = {
                        .host = isempty(c->flags.root) ? "/" : c->flags.root,
                        .driver = isempty(c->flags.nvidia_driver_root) ? "/" : c->flags.nvidia_driver_root,
                        /* Upstream's chart mounts the host driver root there; run on the host, the
                         * driver root is read where it is. */
                        .driver_ctr = !isempty(ctr) && is_dir(ctr) ? ctr : NULL,
                        .dev = isempty(c->flags.nvidia_dev_root) ? NULL : c->flags.nvidia_dev_root,
                },
                .hook_path = c->flags.plugin.nvidia_ctk_path,
                .disabled_hooks = c->flags.plugin.cdi_disable_hooks,
                .imex_channel_ids = c->imex.channel_ids,
                .n_imex_channel_ids = c->imex.n_channel_ids,
        };
}

/* ---- hooks ---- */

static bool hook_disabled(const struct cdi_options *o, const char *name)
{
        return strv_contains(o->disabled_hooks, "all") || strv_contains(o->disabled_hooks, name);
}

/* The hook's argv: nvidia-ctk takes hooks under "hook", nvdp under "cdi-hook", nvidia-cdi-hook (and
 * anything else) as its first argument; then the hook's flag repeated before each value. */
static int hook_add(struct cdi_edits *e, const struct cdi_options *o, const char *name, const char *flag,
                    char *const *values)
{
        if (hook_disabled(o, name) || strv_length(values) == 0)
                return 0;
        const char *base = strrchr(o->hook_path, '/');
        base = base ? base + 1 : o->hook_path;
        _cleanup_strv_free_ char **args = NULL;
        int r = strv_extend(&args, base);
        if (r >= 0 && streq(base, "nvidia-ctk"))
                r = strv_extend(&args, "hook");
        else if (r >= 0 && streq(base, "nvdp"))
                r = strv_extend(&args, "cdi-hook");
        if (r >= 0)
                r = strv_extend(&args, name);
        STRV_FOREACH (v, values)
                if (r >= 0 && (r = strv_extend(&args, flag)) >= 0)
                        r = strv_extend(&args, *v);
        if (r < 0)
                return r;
        return cdi_edits_add_hook(e, "createContainer", o->hook_path, TAKE_PTR(args));
}

/* ---- the GPU spec ---- */

static int common_edits(const struct cdi_where *w, const struct cdi_options *o, const struct driver_files *d,
                        struct cdi_edits *e)
{
        int r;
        /* The toolkit's legacy hook, when a container also runs under the nvidia runtime, must not
         * inject a second time. */
        if ((r = cdi_edits_add_env(e, "NVIDIA_VISIBLE_DEVICES=void")) < 0)
                return r;
        for (size_t i = 0; control_nodes[i]; i++)
                if ((r = dev_node_add(w, e, control_nodes[i])) < 0)
                        return r;
        if ((r = hook_add(e, o, "create-symlinks", "--link", d->links)) < 0 ||
            (r = hook_add(e, o, "update-ldcache", "--folder", d->folders)) < 0)
                return r;
        for (size_t i = 0; i < d->n_files; i++)
                if ((r = cdi_edits_add_mount(e, d->files[i].host_path, d->files[i].container_path,
                                             driver_file_mount_options(d->files[i].kind))) < 0)
                        return r;
        return 0;
}

/* Adds the device under each of its names (a name that is no valid CDI name, such as a legacy
 * "MIG-GPU-<uuid>/1/0" UUID, is left out), and merges it into "all" when wanted. */
static int add_named(cdi_spec *s, char *const *names, const struct cdi_edits *e, struct cdi_edits *all,
                     bool into_all)
{
        int r;
        STRV_FOREACH (n, names) {
                struct cdi_device *d;
                if (!cdi_device_name_valid(*n) || cdi_spec_find_device(s, *n))
                        continue;
                if ((r = cdi_spec_add_device(s, *n, &d)) < 0 || (r = cdi_edits_merge(&d->edits, e)) < 0)
                        return r;
        }
        return into_all ? cdi_edits_merge(all, e) : 0;
}

static int gpu_devices(const struct cdi_where *w, const struct cdi_options *o, const inventory *inv,
                       cdi_spec *s, struct cdi_edits *all, char **ret_error)
{
        int r;
        for (size_t i = 0; i < inv->n_gpus; i++) {
                const struct gpu *g = &inv->gpus[i];
                _cleanup_(cdi_edits_done) struct cdi_edits e = {};
                _cleanup_strv_free_ char **links = NULL, **names = NULL;
                char index[16];
                snprintf(index, sizeof index, "%u", g->index);
                if ((r = dev_gpu_edits(w, g, &e, &links, ret_error)) < 0 ||
                    (r = hook_add(&e, o, "create-symlinks", "--link", links)) < 0 ||
                    (r = strv_extend(&names, index)) < 0 || (r = strv_extend(&names, g->uuid)) < 0)
                        return r;
                /* A MIG-enabled GPU is still a device of its own (the "none" MIG strategy hands it out
                 * whole), but "all" means its MIG devices, as nvidia-ctk has it. */
                if ((r = add_named(s, names, &e, all, !g->mig_enabled)) < 0)
                        return r;

                for (size_t m = 0; g->mig_enabled && m < g->n_mig; m++) {
                        const struct mig_device *mig = &g->mig[m];
                        _cleanup_(cdi_edits_done) struct cdi_edits me = {};
                        _cleanup_strv_free_ char **mig_names = NULL;
                        char path[64];
                        snprintf(path, sizeof path, "/dev/nvidia%u", g->minor);
                        if ((r = dev_node_add(w, &me, path)) < 0)
                                return r;
                        for (int ci = 0; ci < 2; ci++) {
                                _cleanup_free_ char *cap = NULL;
                                if ((r = mig_device_cap_path(inv, g, mig, ci, &cap, ret_error)) < 0 ||
                                    (r = dev_node_add(w, &me, cap)) < 0)
                                        return r;
                                if (r == 0)
                                        return error_set(ret_error, -ENOENT,
                                                         "the device node %s of MIG device %u:%u (%s) is "
                                                         "missing under the dev root %s",
                                                         cap, g->index, mig->index, mig->uuid, w->dev);
                        }
                        char mig_index[32];
                        snprintf(mig_index, sizeof mig_index, "%u:%u", g->index, mig->index);
                        if ((r = strv_extend(&mig_names, mig_index)) < 0 ||
                            (r = strv_extend(&mig_names, mig->uuid)) < 0 ||
                            (r = add_named(s, mig_names, &me, all, true)) < 0)
                                return r;
                }
        }
        return 0;
}

static int gpu_spec(const struct cdi_where *w, const struct cdi_options *o, const inventory *inv,
                    cdi_spec **ret, char **ret_error)
{
        _cleanup_(driver_files_done) struct driver_files d = {};
        _cleanup_(cdi_spec_freep) cdi_spec *s = NULL;
        _cleanup_(cdi_edits_done) struct cdi_edits all = {};
        const char *kind = o->kind ? o->kind : CDI_KIND_GPU;
        int r;

        r = driver_files_find(w, inv->driver_version, o->kernel_release, &d, ret_error);
        if (r < 0)
                return r;
        if ((r = cdi_spec_new(kind, &s)) < 0 ||
            (r = cdi_spec_add_annotation(s, CDI_ANNOTATION_GENERATOR, "nvdp")) < 0 ||
            (r = cdi_spec_add_annotation(s, CDI_ANNOTATION_DRIVER_VERSION, inv->driver_version)) < 0 ||
            (r = cdi_spec_add_annotation(s, CDI_ANNOTATION_DRIVER_ROOT, w->driver)) < 0 ||
            (r = cdi_spec_add_annotation(s, CDI_ANNOTATION_DEV_ROOT, w->dev)) < 0)
                return r;
        if ((r = gpu_devices(w, o, inv, s, &all, ret_error)) < 0)
                return r;
        if (all.n_nodes > 0) {
                struct cdi_device *a;
                if ((r = cdi_spec_add_device(s, "all", &a)) < 0 ||
                    (r = cdi_edits_merge(&a->edits, &all)) < 0)
                        return r;
        }
        if (s->n_devices == 0)
                return error_set(ret_error, -ENODEV, "the node has no GPUs: a CDI spec needs a device");
        if ((r = common_edits(w, o, &d, &s->edits)) < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

/* The IMEX channels that exist; NULL when none does. */
static int imex_spec(const struct cdi_where *w, const struct cdi_options *o, cdi_spec **ret,
                     char ***warnings)
{
        _cleanup_(cdi_spec_freep) cdi_spec *s = NULL;
        int r;
        if ((r = cdi_spec_new(CDI_KIND_IMEX, &s)) < 0 ||
            (r = cdi_spec_add_annotation(s, CDI_ANNOTATION_GENERATOR, "nvdp")) < 0)
                return r;
        for (size_t i = 0; i < o->n_imex_channel_ids; i++) {
                char name[16], path[64];
                snprintf(name, sizeof name, "%u", o->imex_channel_ids[i]);
                snprintf(path, sizeof path, IMEX_CHANNEL_FORMAT, o->imex_channel_ids[i]);
                _cleanup_(cdi_edits_done) struct cdi_edits e = {};
                struct cdi_device *d;
                if ((r = dev_node_add(w, &e, path)) < 0)
                        return r;
                if (r == 0) {
                        _cleanup_free_ char *msg = NULL;
                        if (asprintf(&msg, "IMEX channel %u has no device node %s under the dev root %s",
                                     o->imex_channel_ids[i], path, w->dev) < 0) {
                                msg = NULL;
                                return -ENOMEM;
                        }
                        if ((r = strv_extend(warnings, msg)) < 0)
                                return r;
                        continue;
                }
                if ((r = cdi_spec_add_device(s, name, &d)) < 0 || (r = cdi_edits_merge(&d->edits, &e)) < 0)
                        return r;
        }
        *ret = s->n_devices > 0 ? TAKE_PTR(s) : NULL;
        return 0;
}

static void where_done(struct cdi_where *w)
{
        free(w->driver);
        free(w->driver_ctr);
        free(w->dev);
        free(w->dev_ctr);
}

/* The driver root (host path) and where it is seen here. */
static int where_driver(struct cdi_where *w, const struct cdi_options *o)
{
        w->host_ctr = isempty(o->roots.host) ? "/" : o->roots.host;
        w->driver = strdup(isempty(o->roots.driver) ? "/" : o->roots.driver);
        w->driver_ctr =
                o->roots.driver_ctr ? strdup(o->roots.driver_ctr) : path_join_root(w->host_ctr, w->driver);
        return w->driver && w->driver_ctr ? 0 : -ENOMEM;
}

/* The dev root by its rule (dev_root_pick), after where_driver(). */
static int where_dev(struct cdi_where *w, const struct cdi_options *o, char **ret_error)
{
        const char *dev = o->roots.dev ? o->roots.dev : w->driver;
        _cleanup_free_ char *dev_ctr = NULL;
        if (o->roots.dev_ctr)
                dev_ctr = strdup(o->roots.dev_ctr);
        else
                dev_ctr = streq(dev, w->driver) ? strdup(w->driver_ctr) : path_join_root(w->host_ctr, dev);
        if (!dev_ctr)
                return -ENOMEM;
        return dev_root_pick(w, dev, dev_ctr, ret_error);
}

int cdi_imex_channel_exists(const struct cdi_options *o, unsigned id, char **ret_looked_at, char **ret_error)
{
        _cleanup_(where_done) struct cdi_where w = {};
        _cleanup_free_ char *path = NULL, *local = NULL;
        int r;
        if ((r = where_driver(&w, o)) < 0 || (r = where_dev(&w, o, ret_error)) < 0)
                return r;
        if (asprintf(&path, IMEX_CHANNEL_FORMAT, id) < 0 || !(local = path_join_root(w.dev_ctr, path)))
                return -ENOMEM;
        struct stat st;
        bool exists = stat(local, &st) == 0;
        if (ret_looked_at)
                *ret_looked_at = TAKE_PTR(local);
        return exists;
}

int cdi_specs_build(const inventory *inv, const struct cdi_options *o, cdi_specs **ret, char **ret_error)
{
        _cleanup_(where_done) struct cdi_where w = {};
        _cleanup_(cdi_specs_freep) cdi_specs *s = new0(cdi_specs, 1);
        _cleanup_free_ char *vendor = NULL, *class = NULL;
        int r;
        if (!s)
                return -ENOMEM;
        if (!o->hook_path || o->hook_path[0] != '/')
                return error_set(ret_error, -EINVAL, "the CDI hook path must be absolute, not \"%s\"",
                                 strempty(o->hook_path));
        if (o->kind && cdi_kind_split(o->kind, &vendor, &class) < 0)
                return error_set(ret_error, -EINVAL,
                                 "\"%s\" is not a CDI kind (vendor/class: letters, digits, '_', '-', '.')",
                                 o->kind);

        if ((r = where_driver(&w, o)) < 0)
                return r;
        if (!is_dir(w.driver_ctr))
                return error_set(ret_error, -ENOENT, "the driver root %s does not exist (looked at %s)",
                                 w.driver, w.driver_ctr);
        if ((r = where_dev(&w, o, ret_error)) < 0)
                return r;

        cdi_spec *spec = NULL;
        if ((r = gpu_spec(&w, o, inv, &spec, ret_error)) < 0)
                return r;
        if ((r = specs_add(s, spec)) < 0) {
                cdi_spec_free(spec);
                return r;
        }
        spec = NULL;
        if (o->n_imex_channel_ids > 0 && (r = imex_spec(&w, o, &spec, &s->warnings)) < 0)
                return r;
        if (spec && (r = specs_add(s, spec)) < 0) {
                cdi_spec_free(spec);
                return r;
        }
        s->driver_root = TAKE_PTR(w.driver);
        s->dev_root = TAKE_PTR(w.dev);
        *ret = TAKE_PTR(s);
        return 0;
}

int cdi_spec_derive(const cdi_spec *from, const char *kind, const char *generator, char *const *names,
                    char *const *sources, cdi_spec **ret, char **ret_error)
{
        _cleanup_(cdi_spec_freep) cdi_spec *s = NULL;
        _cleanup_free_ char *vendor = NULL, *class = NULL;
        int r;
        if (strv_length(names) != strv_length(sources))
                return -EINVAL;
        if (cdi_kind_split(kind, &vendor, &class) < 0)
                return error_set(ret_error, -EINVAL, "\"%s\" is not a CDI kind", kind);
        if ((r = cdi_spec_new(kind, &s)) < 0)
                return r;
        for (char **p = from->annotations; p && p[0] && p[1]; p += 2)
                if ((r = cdi_spec_add_annotation(
                             s, p[0],
                             streq(p[0], CDI_ANNOTATION_GENERATOR) && generator ? generator : p[1])) < 0)
                        return r;
        for (size_t i = 0; names && names[i]; i++) {
                const struct cdi_device *src = cdi_spec_find_device(from, sources[i]);
                struct cdi_device *d;
                if (!src)
                        return error_set(ret_error, -ENOENT, "the CDI spec of kind %s has no device \"%s\"",
                                         from->kind, sources[i]);
                if (!cdi_device_name_valid(names[i]))
                        return error_set(ret_error, -EINVAL, "\"%s\" is not a CDI device name", names[i]);
                if ((r = cdi_spec_add_device(s, names[i], &d)) < 0 ||
                    (r = cdi_edits_merge(&d->edits, &src->edits)) < 0)
                        return r;
        }
        if ((r = cdi_edits_merge(&s->edits, &from->edits)) < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int cdi_allocate_names(const plan *p, const config *c, char ***ret)
{
        _cleanup_strv_free_ char **names = NULL;
        int r;
        for (size_t i = 0; p && i < p->n_resources; i++)
                for (size_t k = 0; k < p->resources[i].n_devices; k++) {
                        _cleanup_free_ char *n = NULL;
                        if (asprintf(&n, CDI_KIND_GPU "=%s", p->resources[i].devices[k].runtime_id) < 0)
                                return -ENOMEM;
                        if (!strv_contains(names, n) && (r = strv_extend(&names, n)) < 0)
                                return r;
                }
        for (size_t i = 0; i < c->imex.n_channel_ids; i++) {
                _cleanup_free_ char *n = NULL;
                if (asprintf(&n, CDI_KIND_IMEX "=%u", c->imex.channel_ids[i]) < 0)
                        return -ENOMEM;
                if (!strv_contains(names, n) && (r = strv_extend(&names, n)) < 0)
                        return r;
        }
        if (!names && !(names = new0(char *, 1)))
                return -ENOMEM;
        strv_sort(names);
        *ret = TAKE_PTR(names);
        return 0;
}
