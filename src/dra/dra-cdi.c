/* SPDX-License-Identifier: Apache-2.0 */
/* A prepared claim's CDI spec: its devices under the names the kubelet was given, with the edits of the
 * node's CDI spec (built once by src/cdi from the inventory and the driver root), written to and removed
 * from the CDI directory. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/strv.h"
#include "cdi/cdi.h"
#include "dra.h"

/* The node spec names every GPU by index and every MIG device by "<gpu index>:<mig index>" (cdi/build.c),
 * whatever its UUID looks like (a legacy MIG UUID is no CDI name). */
static int source_name(const inventory *inv, const struct dra_device *d, char *out, size_t size)
{
        const struct gpu *g = &inv->gpus[d->gpu];
        if (d->mig < 0)
                return snprintf(out, size, "%u", g->index) < (int)size ? 0 : -ENAMETOOLONG;
        return snprintf(out, size, "%u:%u", g->index, g->mig[d->mig].index) < (int)size ? 0 : -ENAMETOOLONG;
}

int dra_claim_spec_build(const cdi_spec *node_spec, const inventory *inv, const struct dra_device *devs,
                         size_t n_devs, const struct dra_claim *c, cdi_spec **ret, char **ret_error)
{
        _cleanup_strv_free_ char **names = NULL, **sources = NULL;
        int r;
        for (size_t i = 0; i < c->n_devices; i++) {
                const struct dra_prepared_device *p = &c->devices[i];
                const struct dra_device *d = dra_devices_find(devs, n_devs, p->device);
                /* The name after "k8s.gpu.nvidia.com/claim=": exactly what the kubelet got. */
                const char *name = startswith(p->cdi_id, DRA_CDI_KIND "=")
                                           ? p->cdi_id + strlen(DRA_CDI_KIND "=")
                                           : NULL;
                char source[32];
                if (!d || !inv || d->gpu >= inv->n_gpus)
                        return error_set(ret_error, -ENODEV, "device %s is not one of this node's devices",
                                         p->device);
                if (!name)
                        return error_set(ret_error, -EINVAL,
                                         "device %s has the CDI name \"%s\", not one of %s", p->device,
                                         p->cdi_id, DRA_CDI_KIND);
                if (strv_contains(names, name))
                        continue;
                if ((r = source_name(inv, d, source, sizeof source)) < 0 ||
                    (r = strv_extend(&names, name)) < 0 || (r = strv_extend(&sources, source)) < 0)
                        return r;
        }
        if (!names)
                return error_set(ret_error, -ENODEV, "claim %s has no device of driver " DRA_DRIVER, c->uid);
        return cdi_spec_derive(node_spec, DRA_CDI_KIND, DRA_CDI_GENERATOR, names, sources, ret, ret_error);
}

static int spec_path(const char *dir, const char *uid, char **ret)
{
        _cleanup_free_ char *name = NULL;
        int r = dra_claim_spec_filename(uid, &name);
        if (r < 0)
                return r;
        return asprintf(ret, "%s/%s", dir, name) < 0 ? -ENOMEM : 0;
}

int dra_claim_spec_write(const struct dra_claim_specs *w, const struct dra_claim *c, char **ret_error)
{
        _cleanup_(cdi_spec_freep) cdi_spec *spec = NULL;
        _cleanup_free_ char *path = NULL;
        int r;
        if (c->n_devices == 0)
                return 0; /* nothing of this driver's in it: no name to resolve */
        if ((r = dra_claim_spec_build(w->node_spec, w->inventory, w->devs, w->n_devs, c, &spec, ret_error)) <
            0)
                return r;
        if ((r = spec_path(w->dir, c->uid, &path)) < 0)
                return r;
        /* Made at start too; again here, so that a removed directory does not fail every claim after. */
        if ((r = mkdir_p(w->dir, 0755)) < 0)
                return error_set(ret_error, r, "cannot create the CDI directory %s: %s", w->dir,
                                 strerror(-r));
        r = cdi_spec_write_file(path, spec, ret_error);
        return r < 0 ? r : 0;
}

int dra_claim_spec_remove(const char *dir, const char *uid, char **ret_error)
{
        _cleanup_free_ char *path = NULL;
        int r = spec_path(dir, uid, &path);
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT)
                return error_set(ret_error, negative_errno(), "cannot remove the CDI spec %s: %m", path);
        return 0;
}
