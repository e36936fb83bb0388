/* SPDX-License-Identifier: Apache-2.0 */
/* A CUDA client for the real-GPU MPS check (tests/gpu/mps-real): allocates device memory in steps
 * through the driver API (libcuda.so.1, loaded at run time: nothing CUDA is needed to build it) until
 * an allocation fails or a cap is reached, and reports every step as one JSON line on stdout.
 *
 *   cuda-mem-client [--name N] [--step-mib N] [--max-mib N] [--ready-file F] [--wait-file F]
 *                   [--extra-mib N] [--hold-file F] [--timeout S]
 *
 * Order: allocate (steps of --step-mib up to --max-mib, or until the first failure), write the bytes
 * of every block (cuMemsetD8, so the memory is really used), create --ready-file, wait for
 * --wait-file and then allocate --extra-mib more, wait for --hold-file while holding everything, free,
 * exit. Exit status: 0 when every step ran (an allocation failure is a result, not an error), 1 when
 * the driver could not be used, 2 for bad arguments, 3 when a file did not appear within --timeout. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef unsigned long long CUdeviceptr;

static struct {
        CUresult (*init)(unsigned);
        CUresult (*device_get)(CUdevice *, int);
        CUresult (*device_get_name)(char *, int, CUdevice);
        CUresult (*primary_ctx_retain)(CUcontext *, CUdevice);
        CUresult (*ctx_set_current)(CUcontext);
        CUresult (*mem_get_info)(size_t *, size_t *);
        CUresult (*mem_alloc)(CUdeviceptr *, size_t);
        CUresult (*memset_d8)(CUdeviceptr, unsigned char, size_t);
        CUresult (*ctx_synchronize)(void);
        CUresult (*mem_free)(CUdeviceptr);
        CUresult (*get_error_name)(CUresult, const char **);
} cu;

static const char *name = "client";

static const char *error_name(CUresult r)
{
        const char *s = NULL;
        if (cu.get_error_name && cu.get_error_name(r, &s) == 0 && s)
                return s;
        return "unknown";
}

static void *sym(void *lib, const char *a, const char *b)
{
        void *p = dlsym(lib, a);
        if (!p && b)
                p = dlsym(lib, b);
        if (!p) {
                printf("{\"client\":\"%s\",\"event\":\"error\",\"what\":\"libcuda.so.1 has no %s\"}\n", name,
                       a);
                exit(1);
        }
        return p;
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for path to exist; 0 when it did within timeout seconds. */
static int wait_file(const char *path, double timeout)
{
        double end = now() + timeout;
        while (access(path, F_OK) < 0) {
                if (now() > end)
                        return -1;
                usleep(50000);
        }
        return 0;
}

static void touch(const char *path)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
                close(fd);
}

static void report_mem(const char *event)
{
        size_t free_b = 0, total_b = 0;
        CUresult r = cu.mem_get_info(&free_b, &total_b);
        printf("{\"client\":\"%s\",\"event\":\"%s\",\"pid\":%d,\"free_mib\":%zu,\"total_mib\":%zu,"
               "\"result\":%d}\n",
               name, event, (int)getpid(), free_b >> 20, total_b >> 20, r);
}

#define BLOCKS_MAX 4096

int main(int argc, char **argv)
{
        size_t step = 1024, max = (size_t)1 << 20, extra = 0;
        const char *ready = NULL, *wait = NULL, *hold = NULL;
        double timeout = 120;
        for (int i = 1; i < argc; i += 2) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!v)
                        goto usage;
                if (!strcmp(a, "--name"))
                        name = v;
                else if (!strcmp(a, "--step-mib"))
                        step = strtoull(v, NULL, 10);
                else if (!strcmp(a, "--max-mib"))
                        max = strtoull(v, NULL, 10);
                else if (!strcmp(a, "--extra-mib"))
                        extra = strtoull(v, NULL, 10);
                else if (!strcmp(a, "--ready-file"))
                        ready = v;
                else if (!strcmp(a, "--wait-file"))
                        wait = v;
                else if (!strcmp(a, "--hold-file"))
                        hold = v;
                else if (!strcmp(a, "--timeout"))
                        timeout = strtod(v, NULL);
                else
                        goto usage;
        }
        if (step == 0 || max == 0 || timeout <= 0)
                goto usage;
        setvbuf(stdout, NULL, _IOLBF, 0);

        void *lib = dlopen("libcuda.so.1", RTLD_NOW);
        if (!lib) {
                printf("{\"client\":\"%s\",\"event\":\"error\",\"what\":\"cannot load libcuda.so.1\"}\n",
                       name);
                return 1;
        }
        cu.init = sym(lib, "cuInit", NULL);
        cu.device_get = sym(lib, "cuDeviceGet", NULL);
        cu.device_get_name = sym(lib, "cuDeviceGetName", NULL);
        cu.primary_ctx_retain = sym(lib, "cuDevicePrimaryCtxRetain", NULL);
        cu.ctx_set_current = sym(lib, "cuCtxSetCurrent", NULL);
        cu.mem_get_info = sym(lib, "cuMemGetInfo_v2", "cuMemGetInfo");
        cu.mem_alloc = sym(lib, "cuMemAlloc_v2", "cuMemAlloc");
        cu.memset_d8 = sym(lib, "cuMemsetD8_v2", "cuMemsetD8");
        cu.ctx_synchronize = sym(lib, "cuCtxSynchronize", NULL);
        cu.mem_free = sym(lib, "cuMemFree_v2", "cuMemFree");
        cu.get_error_name = sym(lib, "cuGetErrorName", NULL);

        CUdevice dev;
        CUcontext ctx;
        char devname[256] = "";
        CUresult r = cu.init(0);
        if (r == 0)
                r = cu.device_get(&dev, 0);
        if (r == 0)
                r = cu.device_get_name(devname, sizeof devname, dev);
        if (r == 0)
                r = cu.primary_ctx_retain(&ctx, dev);
        if (r == 0)
                r = cu.ctx_set_current(ctx);
        if (r != 0) {
                printf("{\"client\":\"%s\",\"event\":\"error\",\"what\":\"CUDA "
                       "init\",\"result\":%d,\"name\":\"%s\"}\n",
                       name, r, error_name(r));
                return 1;
        }
        printf("{\"client\":\"%s\",\"event\":\"init\",\"device\":\"%s\",\"mps_pipe\":\"%s\"}\n", name,
               devname, getenv("CUDA_MPS_PIPE_DIRECTORY") ? getenv("CUDA_MPS_PIPE_DIRECTORY") : "");
        report_mem("meminfo");

        static CUdeviceptr blocks[BLOCKS_MAX];
        size_t n = 0, total = 0;
        int failed = 0;
        while (total + step <= max && n < BLOCKS_MAX) {
                r = cu.mem_alloc(&blocks[n], step << 20);
                if (r != 0) {
                        printf("{\"client\":\"%s\",\"event\":\"alloc_failed\",\"allocated_mib\":%zu,\"asked_"
                               "mib\":%zu,"
                               "\"result\":%d,\"name\":\"%s\"}\n",
                               name, total, step, r, error_name(r));
                        failed = 1;
                        break;
                }
                total += step;
                n++;
                printf("{\"client\":\"%s\",\"event\":\"alloc\",\"allocated_mib\":%zu}\n", name, total);
        }
        /* Touch every byte, so the memory is used, not only reserved. */
        for (size_t i = 0; i < n; i++)
                if ((r = cu.memset_d8(blocks[i], (unsigned char)i, step << 20)) != 0)
                        break;
        if (r == 0 || failed)
                r = cu.ctx_synchronize();
        printf("{\"client\":\"%s\",\"event\":\"written\",\"allocated_mib\":%zu,\"result\":%d,\"name\":\"%"
               "s\"}\n",
               name, total, r, error_name(r));
        report_mem("meminfo");
        if (ready)
                touch(ready);

        if (wait) {
                if (wait_file(wait, timeout) < 0) {
                        printf("{\"client\":\"%s\",\"event\":\"error\",\"what\":\"no %s\"}\n", name, wait);
                        return 3;
                }
                if (extra) {
                        CUdeviceptr p = 0;
                        r = cu.mem_alloc(&p, extra << 20);
                        if (r == 0)
                                r = cu.memset_d8(p, 0x5a, extra << 20);
                        if (r == 0)
                                r = cu.ctx_synchronize();
                        printf("{\"client\":\"%s\",\"event\":\"extra\",\"asked_mib\":%zu,\"result\":%d,"
                               "\"name\":\"%s\"}\n",
                               name, extra, r, error_name(r));
                        if (p && n < BLOCKS_MAX)
                                blocks[n++] = p;
                }
        }
        if (hold && wait_file(hold, timeout) < 0) {
                printf("{\"client\":\"%s\",\"event\":\"error\",\"what\":\"no %s\"}\n", name, hold);
                return 3;
        }
        for (size_t i = 0; i < n; i++)
                (void)cu.mem_free(blocks[i]);
        printf("{\"client\":\"%s\",\"event\":\"done\"}\n", name);
        return 0;
usage:
        fprintf(stderr,
                "usage: %s [--name N] [--step-mib N] [--max-mib N] [--ready-file F] [--wait-file F] "
                "[--extra-mib N] [--hold-file F] [--timeout S]\n",
                argv[0]);
        return 2;
}
