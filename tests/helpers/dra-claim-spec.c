/* SPDX-License-Identifier: Apache-2.0 */
/* Prepares a claim as `nvdp dra` does, without a kubelet or an API server: a ResourceClaim allocated the
 * given devices of this node is resolved (dra_claim_resolve), and its CDI spec written into CDI_DIR from
 * the node's spec (cdi_specs_build on DRIVER_ROOT, the driver root and the dev root, seen where they are)
 * by dra_claim_spec_write. Prints the claim's CDI device IDs, one per line: what NodePrepareResources
 * answers. tests/cdi loads the spec with the CDI library and injects them.
 *   dra-claim-spec DRIVER_ROOT CDI_DIR UID DEVICE...   (NVML from the driver root or the loader path;
 *                                                       NVDP_ROOT: the host root) */
#include <stdio.h>
#include <stdlib.h>

#include "base/strv.h"
#include "cdi/cdi.h"
#include "dra/dra.h"
#include "gpu/node.h"

#define NODE "node-a"

int main(int argc, char **argv)
{
        if (argc < 5) {
                fprintf(stderr, "usage: %s DRIVER_ROOT CDI_DIR UID DEVICE...\n", argv[0]);
                return 2;
        }
        const char *driver = argv[1], *dir = argv[2], *uid = argv[3];
        const char *host = getenv("NVDP_ROOT") ? getenv("NVDP_ROOT") : "/";
        _cleanup_(node_closep) struct node *n = NULL;
        _cleanup_(cdi_specs_freep) cdi_specs *specs = NULL;
        _cleanup_(dra_claim_freep) struct dra_claim *claim = NULL;
        _cleanup_free_ struct dra_device *devs = NULL;
        _cleanup_free_ char *error = NULL, *json = NULL, *results = NULL;
        size_t n_devs = 0;
        int r = node_open(
                &(struct node_roots){ .root = host, .driver_root = driver, .container_driver_root = driver },
                &n, &error);
        if (r >= 0) {
                struct cdi_options o = {
                        .roots = { .host = host,
                                   .driver = driver,
                                   .driver_ctr = driver,
                                   .dev = driver,
                                   .dev_ctr = driver },
                        .hook_path = "/usr/local/bin/nvdp",
                };
                r = cdi_specs_build(n->inventory, &o, &specs, &error);
        }
        if (r >= 0)
                r = dra_devices_list(n->inventory, &devs, &n_devs);
        for (int i = 4; r >= 0 && i < argc; i++) {
                char *more = NULL;
                if (asprintf(&more,
                             "%s%s{\"request\":\"gpu\",\"driver\":\"" DRA_DRIVER "\",\"pool\":\"" NODE
                             "\",\"device\":\"%s\"}",
                             strempty(results), results ? "," : "", argv[i]) < 0)
                        r = -ENOMEM;
                free(results);
                results = more;
        }
        if (r >= 0 && asprintf(&json,
                               "{\"metadata\":{\"name\":\"claim\",\"namespace\":\"default\",\"uid\":\"%s\"},"
                               "\"status\":{\"allocation\":{\"devices\":{\"results\":[%s]}}}}",
                               uid, results) < 0)
                r = -ENOMEM;
        if (r >= 0) {
                struct dra_claim_ref ref = { .namespace = "default", .uid = uid, .name = "claim" };
                r = dra_claim_resolve(json, strlen(json), &ref, NODE, devs, n_devs, NULL, &claim, &error);
        }
        if (r >= 0) {
                struct dra_claim_specs w = { .dir = dir,
                                             .node_spec = specs->specs[0],
                                             .inventory = n->inventory,
                                             .devs = devs,
                                             .n_devs = n_devs };
                r = dra_claim_spec_write(&w, claim, &error);
        }
        if (r < 0) {
                fprintf(stderr, "dra-claim-spec: %s\n", error ? error : strerror(-r));
                return 1;
        }
        for (size_t i = 0; i < claim->n_devices; i++)
                printf("%s\n", claim->devices[i].cdi_id);
        return 0;
}
