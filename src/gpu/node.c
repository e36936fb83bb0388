/* SPDX-License-Identifier: Apache-2.0 */
#include "gpu/node.h"

#include <sys/stat.h>

#include "nvml/nvml-loader.h"

static bool is_root(const char *p)
{
        return isempty(p) || streq(p, "/");
}

const char *node_driver_search_root(const struct node_roots *r)
{
        struct stat st;
        if (!is_root(r->container_driver_root) && stat(r->container_driver_root, &st) == 0 &&
            S_ISDIR(st.st_mode))
                return r->container_driver_root;
        if (!is_root(r->driver_root))
                return r->driver_root;
        return NULL;
}

int node_open(const struct node_roots *r, struct node **ret, char **ret_error)
{
        _cleanup_(node_closep) struct node *n = new0(struct node, 1);
        if (!n)
                return -ENOMEM;
        const char *search = node_driver_search_root(r);
        int k = r->library ? nvml_load_library(search, r->library, &n->nvml, ret_error)
                           : nvml_load(search, &n->nvml, ret_error);
        if (k < 0)
                return k;
        k = inventory_load(n->nvml, is_root(r->root) ? "/" : r->root, &n->inventory, ret_error);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(n);
        return 0;
}

bool node_error_is_nvml_load(int error)
{
        return error == -EOPNOTSUPP || error == -ELIBBAD || error == -ENODEV;
}

const char *node_nvml_hint(int error)
{
        if (error != -EOPNOTSUPP || isempty(getenv("KUBERNETES_SERVICE_HOST")))
                return "";
        /* What `nvdp doctor` says of a plugin pod that logs "could not load NVML" (doctor/check-cluster.c).
         */
        return " In a pod this usually means the pod does not run under the NVIDIA container runtime: give "
               "it "
               "runtimeClassName: nvidia (Helm: --set runtimeClassName=nvidia) or start k3s with "
               "--default-runtime nvidia, and check that the NVIDIA container toolkit is installed on the "
               "node "
               "(nvdp doctor says which).";
}

struct node *node_close(struct node *n)
{
        if (!n)
                return NULL;
        inventory_free(n->inventory);
        nvml_unload(n->nvml);
        free(n);
        return NULL;
}
