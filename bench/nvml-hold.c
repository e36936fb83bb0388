/* SPDX-License-Identifier: Apache-2.0 */
/* NVML's share of a device plugin's memory: a process that loads NVML and does what every plugin does
 * with it (nvmlInit, a handle and UUID per GPU, an event set watching XIDs), and nothing else. The bench
 * reads its RSS before NVML is loaded and after; a plugin's RSS minus this process's is the plugin's own.
 * Shares no code with nvdp.
 *
 * Usage: nvml-hold. Prints "bare", waits for a line on stdin, loads NVML, prints "loaded N" (N GPUs),
 * then waits until stdin closes. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef int (*init_fn)(void);
typedef int (*count_fn)(unsigned *);
typedef int (*handle_fn)(unsigned, void **);
typedef int (*uuid_fn)(void *, char *, unsigned);
typedef int (*set_create_fn)(void **);
typedef int (*register_fn)(void *, unsigned long long, void *);

#define XID_EVENT 0x8ULL /* nvmlEventTypeXidCriticalError */

static void *sym(void *dl, const char *name)
{
        void *f = dlsym(dl, name);
        if (!f) {
                fprintf(stderr, "nvml-hold: %s: not in the library\n", name);
                _exit(1);
        }
        return f;
}

int main(void)
{
        char line[16];
        printf("bare\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin))
                return 0;
        void *dl = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                fprintf(stderr, "nvml-hold: %s\n", dlerror());
                return 1;
        }
        unsigned n = 0;
        void *set = NULL;
        if (((init_fn)sym(dl, "nvmlInit_v2"))() != 0 ||
            ((count_fn)sym(dl, "nvmlDeviceGetCount_v2"))(&n) != 0 ||
            ((set_create_fn)sym(dl, "nvmlEventSetCreate"))(&set) != 0) {
                fprintf(stderr, "nvml-hold: NVML does not start\n");
                return 1;
        }
        for (unsigned i = 0; i < n; i++) {
                void *h;
                char uuid[96];
                if (((handle_fn)sym(dl, "nvmlDeviceGetHandleByIndex_v2"))(i, &h) == 0 &&
                    ((uuid_fn)sym(dl, "nvmlDeviceGetUUID"))(h, uuid, sizeof uuid) == 0)
                        (void)((register_fn)sym(dl, "nvmlDeviceRegisterEvents"))(h, XID_EVENT, set);
        }
        printf("loaded %u\n", n);
        fflush(stdout);
        while (fgets(line, sizeof line, stdin))
                ;
        return 0;
}
