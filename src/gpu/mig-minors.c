/* SPDX-License-Identifier: Apache-2.0 */
/* The minors of the MIG capability device nodes (/dev/nvidia-caps/nvidia-cap<N>), from the driver's
 * <root>/proc/driver/nvidia-caps/mig-minors: lines "gpu<minor>/gi<gi>/access <N>" and
 * "gpu<minor>/gi<gi>/ci<ci>/access <N>" (and "config N", "monitor N", which we skip). */
#include <stdio.h>

#include "base/fileio.h"
#include "gpu/inventory.h"

/* A few lines per GPU instance; a real one is ~30 KiB. */
#define MIG_MINORS_MAX (1024 * 1024)

static void set_minor(inventory *inv, unsigned gpu_minor, unsigned gi, int ci, int minor)
{
        for (size_t g = 0; g < inv->n_gpus; g++) {
                if (inv->gpus[g].minor != gpu_minor)
                        continue;
                for (size_t i = 0; i < inv->gpus[g].n_mig; i++) {
                        struct mig_device *m = &inv->gpus[g].mig[i];
                        if (m->gi_id != gi)
                                continue;
                        if (ci < 0)
                                m->gi_cap_minor = minor;
                        else if (m->ci_id == (unsigned)ci)
                                m->ci_cap_minor = minor;
                }
        }
}

int inventory_read_mig_minors(inventory *inv, const char *root)
{
        bool any = false;
        for (size_t g = 0; g < inv->n_gpus; g++)
                for (size_t i = 0; i < inv->gpus[g].n_mig; i++) {
                        inv->gpus[g].mig[i].gi_cap_minor = -1;
                        inv->gpus[g].mig[i].ci_cap_minor = -1;
                        any = true;
                }
        inv->mig_minors_path = mfree(inv->mig_minors_path);
        inv->mig_minors_error = 0;
        if (!any)
                return 0; /* nothing needs the file (a node without MIG may lack it) */

        inv->mig_minors_path = path_join_root(root, "/proc/driver/nvidia-caps/mig-minors");
        if (!inv->mig_minors_path)
                return -ENOMEM;
        _cleanup_free_ char *data = NULL;
        int r = read_full_file(inv->mig_minors_path, MIG_MINORS_MAX, &data, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                inv->mig_minors_error = r;
                return 0;
        }
        char *save = NULL;
        for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                unsigned gpu, gi, ci, minor;
                char tail;
                if (sscanf(line, "gpu%u/gi%u/ci%u/access %u%c", &gpu, &gi, &ci, &minor, &tail) == 4)
                        set_minor(inv, gpu, gi, (int)MIN(ci, (unsigned)INT32_MAX),
                                  (int)MIN(minor, INT32_MAX));
                else if (sscanf(line, "gpu%u/gi%u/access %u%c", &gpu, &gi, &minor, &tail) == 3)
                        set_minor(inv, gpu, gi, -1, (int)MIN(minor, INT32_MAX));
        }
        return 0;
}
