/* SPDX-License-Identifier: Apache-2.0 */
/* Stand-in for nvidia-smi in the e2e GPU test image (the cluster has no GPU and no NVIDIA container
 * runtime): prints what the device plugin handed to the container, NVIDIA_VISIBLE_DEVICES, as one
 * line the test parses, then one line per listed device, and exits 0. A real nvidia-smi would show
 * the same devices in its table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
        const char *vis = getenv("NVIDIA_VISIBLE_DEVICES");
        char *list, *save = NULL;
        int i = 0;

        printf("nvdp-e2e nvidia-smi stand-in\n");
        printf("NVIDIA_VISIBLE_DEVICES=%s\n", vis ? vis : "(unset)");
        if (!vis)
                return 0;
        list = strdup(vis);
        if (!list)
                return 1;
        for (char *id = strtok_r(list, ",", &save); id; id = strtok_r(NULL, ",", &save))
                printf("GPU %d: %s\n", i++, id);
        free(list);
        return 0;
}
