/* SPDX-License-Identifier: Apache-2.0 */
/* A stand-in libcuda.so.1 for testing cuda-check's --p2p mode without a GPU (tests/integration/
 * test_gpu_multi.py): the driver-API entry points cuda-check resolves, with device memory in host memory.
 *   FAKE_CUDA_DEVICES=N    how many devices cuDeviceGetCount reports (default 1)
 *   FAKE_CUDA_NO_PEER=I,J  cuDeviceCanAccessPeer(I, J) answers 0
 *   FAKE_CUDA_CORRUPT=1    cuMemcpyPeer flips one word of what it copies
 * No kernel runs here: cuModuleLoadDataEx answers CUDA_ERROR_NOT_SUPPORTED (801). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef struct ctx {
        int device;
        int peers[64];
} * CUcontext;
typedef unsigned long long CUdeviceptr;
typedef struct {
        unsigned char bytes[16];
} CUuuid;

static struct ctx contexts[64];
static CUcontext current;

static int devices(void)
{
        const char *n = getenv("FAKE_CUDA_DEVICES");
        int v = n ? atoi(n) : 1;
        return v < 0 ? 0 : v > 64 ? 64 : v;
}

static int bad_device(int d)
{
        return d < 0 || d >= devices();
}

CUresult cuInit(unsigned flags)
{
        (void)flags;
        return 0;
}

CUresult cuDriverGetVersion(int *v)
{
        *v = 13000;
        return 0;
}

CUresult cuDeviceGetCount(int *n)
{
        *n = devices();
        return 0;
}

CUresult cuDeviceGet(int *dev, int ordinal)
{
        if (bad_device(ordinal))
                return 101; /* CUDA_ERROR_INVALID_DEVICE */
        *dev = ordinal;
        return 0;
}

CUresult cuDeviceGetName(char *name, int len, int dev)
{
        snprintf(name, (size_t)len, "Fake GPU %d", dev);
        return bad_device(dev) ? 101 : 0;
}

CUresult cuDeviceGetUuid_v2(CUuuid *u, int dev)
{
        memset(u->bytes, 0, sizeof(u->bytes));
        u->bytes[15] = (unsigned char)dev;
        return bad_device(dev) ? 101 : 0;
}

CUresult cuDeviceGetAttribute(int *v, int attr, int dev)
{
        *v = attr == 75 ? 9 : 0;
        return bad_device(dev) ? 101 : 0;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev)
{
        *bytes = (size_t)1 << 30;
        return bad_device(dev) ? 101 : 0;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *c, int dev)
{
        if (bad_device(dev))
                return 101;
        contexts[dev].device = dev;
        *c = &contexts[dev];
        return 0;
}

CUresult cuCtxSetCurrent(CUcontext c)
{
        current = c;
        return 0;
}

CUresult cuCtxSynchronize(void)
{
        return current ? 0 : 201; /* CUDA_ERROR_INVALID_CONTEXT */
}

CUresult cuModuleLoadDataEx(void *m, const void *image, unsigned n, int *o, void **v)
{
        (void)m, (void)image, (void)n, (void)o, (void)v;
        return 801;
}

CUresult cuModuleGetFunction(void *f, void *m, const char *name)
{
        (void)f, (void)m, (void)name;
        return 801;
}

CUresult cuLaunchKernel(void *f, unsigned a, unsigned b, unsigned c, unsigned d, unsigned e, unsigned g,
                        unsigned h, void *s, void **p, void **x)
{
        (void)f, (void)a, (void)b, (void)c, (void)d, (void)e, (void)g, (void)h, (void)s, (void)p, (void)x;
        return 801;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes)
{
        if (!current)
                return 201;
        void *m = malloc(bytes);
        if (!m)
                return 2; /* CUDA_ERROR_OUT_OF_MEMORY */
        *p = (CUdeviceptr)(size_t)m;
        return 0;
}

CUresult cuMemFree_v2(CUdeviceptr p)
{
        free((void *)(size_t)p);
        return 0;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes)
{
        memcpy((void *)(size_t)dst, src, bytes);
        return 0;
}

CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes)
{
        memcpy(dst, (void *)(size_t)src, bytes);
        return 0;
}

CUresult cuDeviceCanAccessPeer(int *can, int dev, int peer)
{
        const char *no = getenv("FAKE_CUDA_NO_PEER");
        int i = -1, j = -1;
        if (bad_device(dev) || bad_device(peer))
                return 101;
        *can = dev != peer && !(no && sscanf(no, "%d,%d", &i, &j) == 2 && i == dev && j == peer);
        return 0;
}

CUresult cuCtxEnablePeerAccess(CUcontext peer, unsigned flags)
{
        (void)flags;
        if (!current || !peer || current == peer)
                return 201;
        if (current->peers[peer->device])
                return 704; /* CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED */
        current->peers[peer->device] = 1;
        return 0;
}

CUresult cuMemcpyPeer(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t bytes)
{
        if (!dst_ctx || !src_ctx)
                return 201;
        memcpy((void *)(size_t)dst, (void *)(size_t)src, bytes);
        if (getenv("FAKE_CUDA_CORRUPT") && bytes >= 8)
                ((unsigned *)(size_t)dst)[1] ^= 1;
        return 0;
}

CUresult cuGetErrorName(CUresult r, const char **name)
{
        *name = r == 801   ? "CUDA_ERROR_NOT_SUPPORTED"
                : r == 201 ? "CUDA_ERROR_INVALID_CONTEXT"
                           : "CUDA_ERROR_FAKE";
        return 0;
}
