/* SPDX-License-Identifier: Apache-2.0 */
/* nvidia.com/gpu.clique: the multi-node NVLink domain (GB200 NVL72 and the like) the node's GPUs are in, as
 * NVIDIA's GFD builds it from each GPU's fabric info. */
#include "base/error.h"
#include "labels.h"

int labels_gpu_clique(const inventory *inv, char **ret_clique, char **ret_why, char **ret_error)
{
        const struct gpu *first = NULL;
        size_t n_gpus = inv ? inv->n_gpus : 0;
        /* A GPU whose fabric info could not be read fails the labels, as it fails upstream's labeler. */
        for (size_t i = 0; i < n_gpus; i++)
                if (inv->gpus[i].fabric.error[0])
                        return error_set(
                                ret_error, -EIO,
                                "error creating IMEX labeler: error checking imex capability: error "
                                "getting GPU Fabric Info: %s (GPU %u)",
                                inv->gpus[i].fabric.error, inv->gpus[i].index);
        for (size_t i = 0; i < n_gpus; i++) {
                const struct gpu *g = &inv->gpus[i];
                if (!gpu_fabric_attached(&g->fabric))
                        continue;
                if (!first) {
                        first = g;
                        continue;
                }
                /* Upstream leaves the label out (with a warning) when the attached GPUs name more than one
                 * cluster or more than one clique. */
                const char *what = !streq(g->fabric.cluster_uuid, first->fabric.cluster_uuid)
                                           ? "cluster UUID"
                                   : g->fabric.clique_id != first->fabric.clique_id ? "clique ID"
                                                                                    : NULL;
                if (!what)
                        continue;
                if (ret_why &&
                    asprintf(ret_why,
                             "GPU %u is in fabric cluster %s clique %u, GPU %u in cluster %s clique "
                             "%u: the GPUs disagree on the %s, so no nvidia.com/gpu.clique label",
                             first->index, first->fabric.cluster_uuid, first->fabric.clique_id, g->index,
                             g->fabric.cluster_uuid, g->fabric.clique_id, what) < 0)
                        return -ENOMEM;
                *ret_clique = NULL;
                return 0;
        }
        if (ret_why)
                *ret_why = NULL;
        *ret_clique = NULL;
        if (!first)
                return 0;
        if (asprintf(ret_clique, "%s.%u", first->fabric.cluster_uuid, first->fabric.clique_id) < 0) {
                *ret_clique = NULL;
                return -ENOMEM;
        }
        return 1;
}
