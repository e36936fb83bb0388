/* SPDX-License-Identifier: Apache-2.0 */
/* Device nodes: where they are (the dev root rule), and which belong to a GPU (its /dev/nvidia<minor>,
 * its DRM nodes). A driver installed into one directory (/usr/local/nvidia: bin/, lib64/, no dev/) keeps
 * its device nodes in the host's /dev, so a dev root without /dev/nvidiactl falls back to "/" instead of
 * producing a spec without devices. The MIG capability minors come with the inventory
 * (mig_device_cap_path()). */
#include <limits.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/strv.h"
#include "cdi/cdi-internal.h"

#define DRM_NODES_MAX 64

int dev_root_pick(struct cdi_where *w, const char *dev, const char *dev_ctr, char **ret_error)
{
        const char *candidates[2][2] = { { dev, dev_ctr }, { "/", w->host_ctr } };
        size_t n = streq(dev, "/") ? 1 : 2;
        _cleanup_free_ char *seen0 = path_join_root(dev_ctr, "/dev/nvidiactl");
        _cleanup_free_ char *seen1 = path_join_root(w->host_ctr, "/dev/nvidiactl");
        if (!seen0 || !seen1)
                return -ENOMEM;
        const char *seen[2] = { seen0, seen1 };
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                if (stat(seen[i], &st) < 0)
                        continue;
                w->dev = strdup(candidates[i][0]);
                w->dev_ctr = strdup(candidates[i][1]);
                if (!w->dev || !w->dev_ctr)
                        return -ENOMEM;
                return 0;
        }
        if (n == 1)
                return error_set(
                        ret_error, -ENOENT,
                        "no /dev/nvidiactl under the dev root / (looked at %s): is the nvidia kernel "
                        "module loaded? (nvidia-modprobe -c 0 or nvidia-smi creates the nodes)",
                        seen0);
        return error_set(ret_error, -ENOENT,
                         "no /dev/nvidiactl under the dev root %s (looked at %s) nor under / (looked at "
                         "%s): is the nvidia kernel module loaded? (nvidia-modprobe -c 0 or nvidia-smi "
                         "creates the nodes)",
                         dev, seen0, seen1);
}

int dev_node_add(const struct cdi_where *w, struct cdi_edits *e, const char *path)
{
        _cleanup_free_ char *local = path_join_root(w->dev_ctr, path), *host = NULL;
        struct stat st;
        if (!local)
                return -ENOMEM;
        if (stat(local, &st) < 0)
                return 0;
        if (!(host = path_join_root(w->dev, path)))
                return -ENOMEM;
        int r = cdi_edits_add_node(e, path, host);
        return r < 0 ? r : 1;
}

static bool node_listed(const struct cdi_edits *e, const char *path)
{
        for (size_t i = 0; i < e->n_nodes; i++)
                if (streq(e->nodes[i].path, path))
                        return true;
        return false;
}

static bool drm_node_name(const char *n)
{
        return startswith(n, "card") || startswith(n, "renderD");
}

/* The DRM nodes of a GPU (sysfs names them under its PCI device) and their /dev/dri/by-path links. */
static int drm_edits(const struct cdi_where *w, const struct gpu *g, struct cdi_edits *e, char ***links)
{
        _cleanup_free_ char *sys = NULL, *local = NULL;
        if (isempty(g->bus_id))
                return 0;
        if (asprintf(&sys, "/sys/bus/pci/devices/%s/drm", g->bus_id) < 0 ||
            !(local = path_join_root(w->host_ctr, sys)))
                return -ENOMEM;
        _cleanup_strv_free_ char **names = NULL;
        int r = dir_list(local, drm_node_name, DRM_NODES_MAX, &names);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0; /* no DRM nodes (no drm/ for this GPU, or not readable) */
        STRV_FOREACH (n, names) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "/dev/dri/%s", *n) < 0)
                        return -ENOMEM;
                if ((r = dev_node_add(w, e, p)) < 0)
                        return r;
        }

        static const char *const kinds[] = { "card", "render" };
        for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
                _cleanup_free_ char *link = NULL, *link_local = NULL, *node = NULL, *arg = NULL;
                char target[PATH_MAX];
                if (asprintf(&link, "/dev/dri/by-path/pci-%s-%s", g->bus_id, kinds[k]) < 0 ||
                    !(link_local = path_join_root(w->dev_ctr, link)))
                        return -ENOMEM;
                ssize_t t = readlink(link_local, target, sizeof target - 1);
                if (t <= 0)
                        continue;
                target[t] = '\0';
                /* Only a link to a node this device gets ("../card1" from by-path/ is /dev/dri/card1). */
                if (target[0] == '/')
                        node = strdup(target);
                else if (startswith(target, "../") && !strchr(target + 3, '/')) {
                        if (asprintf(&node, "/dev/dri/%s", target + 3) < 0)
                                node = NULL;
                } else
                        continue;
                if (!node)
                        return -ENOMEM;
                if (!node_listed(e, node))
                        continue;
                if (asprintf(&arg, "%s::%s", target, link) < 0)
                        return -ENOMEM;
                if (!strv_contains(*links, arg) && (r = strv_extend(links, arg)) < 0)
                        return r;
        }
        return 0;
}

int dev_gpu_edits(const struct cdi_where *w, const struct gpu *g, struct cdi_edits *e, char ***links,
                  char **ret_error)
{
        char path[64];
        snprintf(path, sizeof path, "/dev/nvidia%u", g->minor);
        int r = dev_node_add(w, e, path);
        if (r < 0)
                return r;
        if (r == 0)
                return error_set(
                        ret_error, -ENOENT,
                        "the device node %s of GPU %u (%s) is missing under the dev root %s (looked "
                        "at %s%s)",
                        path, g->index, g->uuid, w->dev, streq(w->dev_ctr, "/") ? "" : w->dev_ctr, path);
        return drm_edits(w, g, e, links);
}
