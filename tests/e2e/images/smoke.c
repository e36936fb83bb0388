/* SPDX-License-Identifier: Apache-2.0 */
/* The e2e smoke workload: prints a fixed greeting the test looks for, then what a GPU job would look
 * at first (its PID, NVIDIA_VISIBLE_DEVICES, its cgroup), and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
        const char *vis = getenv("NVIDIA_VISIBLE_DEVICES");
        char line[512];
        FILE *f;

        printf("nvdp-e2e smoke: hello from a pod\n");
        printf("pid=%d\n", (int)getpid());
        printf("NVIDIA_VISIBLE_DEVICES=%s\n", vis ? vis : "(unset)");
        f = fopen("/proc/self/cgroup", "re");
        if (f) {
                while (fgets(line, sizeof(line), f))
                        printf("cgroup %s", line);
                fclose(f);
        }
        return 0;
}
