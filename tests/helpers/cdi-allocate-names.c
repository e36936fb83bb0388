/* SPDX-License-Identifier: Apache-2.0 */
/* Prints, one per line, every CDI device name the plugin's Allocate returns on this node with these
 * plugin flags: each device of each resource allocated alone with the cdi-cri strategy, through the
 * real allocate_container(). tests/cdi checks that every one resolves in nvdp's spec.
 *   cdi-allocate-names [PLUGIN FLAGS]   (NVML from the loader path: the simulated one in tests) */
#include <stdio.h>

#include "base/strv.h"
#include "config/config.h"
#include "gpu/node.h"
#include "plugin/allocate.h"
#include "resource/plan.h"

int main(int argc, char **argv)
{
        _cleanup_(config_freep) config *c = NULL;
        _cleanup_(node_closep) struct node *n = NULL;
        _cleanup_(plan_freep) plan *p = NULL;
        _cleanup_free_ char *error = NULL;
        _cleanup_strv_free_ char **names = NULL;
        int r = config_from_args(PROGRAM_PLUGIN, argc, argv, &c, &error);
        if (r >= 0) {
                c->flags.plugin.device_list_strategy = DEVICE_LIST_CDI_CRI;
                r = node_open(&(struct node_roots){ .root = c->flags.root }, &n, &error);
        }
        if (r >= 0)
                r = plan_build(n->inventory, c, &p, &error);
        for (size_t i = 0; r >= 0 && p && i < p->n_resources; i++)
                for (size_t k = 0; r >= 0 && k < p->resources[i].n_devices; k++) {
                        struct allocate_context ctx = { .config = c, .resource = &p->resources[i] };
                        char *id = p->resources[i].devices[k].id;
                        _cleanup_(allocate_response_freep) struct allocate_response *resp = NULL;
                        r = allocate_container(&ctx, &id, 1, &resp, &error);
                        STRV_FOREACH (name, r >= 0 ? resp->cdi_devices : NULL)
                                if (!strv_contains(names, *name) && (r = strv_extend(&names, *name)) < 0)
                                        break;
                }
        if (r < 0) {
                fprintf(stderr, "cdi-allocate-names: %s\n", error ? error : strerror(-r));
                return 1;
        }
        STRV_FOREACH (name, names)
                printf("%s\n", *name);
        return 0;
}
