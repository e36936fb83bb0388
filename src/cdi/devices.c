/* SPDX-License-Identifier: Apache-2.0 */
/* Device nodes: where they are (the dev root rule), which belong to a GPU or a MIG device, and the
 * MIG capability minors. A driver installed into one directory (/usr/local/nvidia: bin/, lib64/, no
 * dev/) keeps its device nodes in the host's /dev, so a dev root without /dev/nvidiactl falls back to
 * "/" instead of producing a spec without devices. */
#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/strv.h"
#include "cdi/cdi-internal.h"

/* /proc/driver/nvidia-caps/mig-minors has a few lines per GPU instance; a real one is ~30 KiB. */
#define MIG_MINORS_MAX (1024 * 1024)
#define DRM_NODES_MAX  64

int dev_root_pick(struct cdi_where *w, const char *dev, const char *dev_ctr, char **ret_error)
{
        const char *candidates[2][2] = { { dev, dev_ctr }, { "/", w->host_ctr } };
        size_t n = streq(dev, "/") ? 1 : 2;
        _cleanup_free_ char *seen0 = root_local(dev_ctr, "/dev/nvidiactl");
        _cleanup_free_ char *seen1 = root_local(w->host_ctr, "/dev/nvidiactl");
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
        _cleanup_free_ char *local = root_local(w->dev_ctr, path), *host = NULL;
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

/* The DRM nodes of a GPU (sysfs names them under its PCI device) and their /dev/dri/by-path links. */
static int drm_edits(const struct cdi_where *w, const struct gpu *g, struct cdi_edits *e, char ***links)
{
        _cleanup_free_ char *sys = NULL, *local = NULL;
        if (isempty(g->bus_id))
                return 0;
        if (asprintf(&sys, "/sys/bus/pci/devices/%s/drm", g->bus_id) < 0 ||
            !(local = root_local(w->host_ctr, sys)))
                return -ENOMEM;
        DIR *d = opendir(local);
        if (!d)
                return 0;
        _cleanup_strv_free_ char **names = NULL;
        int r = 0;
        for (struct dirent *de; (de = readdir(d)) && strv_length(names) < DRM_NODES_MAX;)
                if ((startswith(de->d_name, "card") || startswith(de->d_name, "renderD")) &&
                    (r = strv_extend(&names, de->d_name)) < 0)
                        break;
        closedir(d);
        if (r < 0)
                return r;
        strv_sort(names);
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
                    !(link_local = root_local(w->dev_ctr, link)))
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

/* ---- MIG capability minors ---- */

struct mig_minor {
        unsigned gpu, gi;
        int ci; /* -1: the GPU instance's own access capability */
        unsigned minor;
};

struct mig_minors {
        struct mig_minor *m;
        size_t n;
};

struct mig_minors *mig_minors_free(struct mig_minors *m)
{
        if (!m)
                return NULL;
        free(m->m);
        return mfree(m);
}

/* TODO(arch): use inventory gi_cap_minor/ci_cap_minor */
int mig_minors_read(const char *host_ctr, struct mig_minors **ret, char **ret_error)
{
        _cleanup_free_ char *path = root_local(host_ctr, "/proc/driver/nvidia-caps/mig-minors"),
                            *data = NULL;
        if (!path)
                return -ENOMEM;
        int r = read_full_file(path, MIG_MINORS_MAX, &data, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return error_set(ret_error, r,
                                 "cannot read %s, needed for the device nodes of MIG devices: %s", path,
                                 strerror(-r));
        _cleanup_(mig_minors_freep) struct mig_minors *m = new0(struct mig_minors, 1);
        if (!m)
                return -ENOMEM;
        char *save = NULL;
        for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                struct mig_minor x = { .ci = -1 };
                unsigned ci;
                char tail;
                if (sscanf(line, "gpu%u/gi%u/ci%u/access %u%c", &x.gpu, &x.gi, &ci, &x.minor, &tail) == 4) {
                        if (ci > INT_MAX)
                                continue;
                        x.ci = (int)ci;
                } else if (sscanf(line, "gpu%u/gi%u/access %u%c", &x.gpu, &x.gi, &x.minor, &tail) != 3)
                        continue; /* "config N", "monitor N" */
                struct mig_minor *n = realloc(m->m, sizeof(*n) * (m->n + 1));
                if (!n)
                        return -ENOMEM;
                m->m = n;
                m->m[m->n++] = x;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

int mig_minors_find(const struct mig_minors *m, unsigned gpu_minor, unsigned gi, int ci, unsigned *ret)
{
        for (size_t i = 0; m && i < m->n; i++)
                if (m->m[i].gpu == gpu_minor && m->m[i].gi == gi && m->m[i].ci == ci) {
                        *ret = m->m[i].minor;
                        return 0;
                }
        return -ENOENT;
}
