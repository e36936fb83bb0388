/* SPDX-License-Identifier: Apache-2.0 */
/* A CUDA driver-API check for the GPU test pods: loads libcuda.so.1 at run time (no CUDA headers or
 * toolkit at build time: the few entry points are declared here), then cuInit, picks device 0, makes
 * its primary context current, JIT-compiles a kernel from the PTX text below, copies 1 Mi floats to
 * the GPU, launches the kernel, copies the result back and compares every element with the value
 * computed on the CPU. Prints the device's name and UUID (the form nvidia-smi prints) and one verdict
 * line, "cuda-check: PASS" or "cuda-check: FAIL: <why>"; exits 0 only on PASS.
 *
 *   cuda-check [--p2p] [--hold SECONDS]
 * --hold keeps the context open that long after the check ("cuda-check: holding the context"), so
 * that a test can see two pods use one GPU at the same time (time-slicing).
 * --p2p checks peer-to-peer copies instead of the kernel: it names every visible device (one "device N:"
 * line each), then for every ordered pair asks cuDeviceCanAccessPeer, enables peer access
 * (cuCtxEnablePeerAccess), copies 64 MiB with cuMemcpyPeer from one device's memory into the other's and
 * compares every word with what was written ("p2p: device 0 -> device 1: ... verified, N GB/s"). With one
 * device it prints "p2p: 1 device, nothing to copy" and passes. No NVLink multicast (cuMulticast*) is used.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int CUresult; /* 0 = CUDA_SUCCESS */
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef unsigned long long CUdeviceptr;
typedef struct {
        unsigned char bytes[16];
} CUuuid;

enum {
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
        CU_JIT_ERROR_LOG_BUFFER = 5,
        CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
        CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED = 704,
        MAX_DEVICES = 64,
};

/* out[i] = a * in[i] + i for i < n; PTX ISA 7.0 for sm_75 (Turing) and newer, JIT-compiled by the driver. */
static const char kernel_ptx[] = ".version 7.0\n"
                                 ".target sm_75\n"
                                 ".address_size 64\n"
                                 "\n"
                                 ".visible .entry axpi(\n"
                                 "        .param .u64 p_out,\n"
                                 "        .param .u64 p_in,\n"
                                 "        .param .f32 p_a,\n"
                                 "        .param .u32 p_n\n"
                                 ")\n"
                                 "{\n"
                                 "        .reg .pred %p<2>;\n"
                                 "        .reg .b32 %r<6>;\n"
                                 "        .reg .f32 %f<5>;\n"
                                 "        .reg .b64 %rd<8>;\n"
                                 "\n"
                                 "        ld.param.u64 %rd1, [p_out];\n"
                                 "        ld.param.u64 %rd2, [p_in];\n"
                                 "        ld.param.f32 %f1, [p_a];\n"
                                 "        ld.param.u32 %r1, [p_n];\n"
                                 "        mov.u32 %r2, %ctaid.x;\n"
                                 "        mov.u32 %r3, %ntid.x;\n"
                                 "        mov.u32 %r4, %tid.x;\n"
                                 "        mad.lo.s32 %r5, %r2, %r3, %r4;\n"
                                 "        setp.ge.u32 %p1, %r5, %r1;\n"
                                 "        @%p1 bra DONE;\n"
                                 "        cvta.to.global.u64 %rd3, %rd1;\n"
                                 "        cvta.to.global.u64 %rd4, %rd2;\n"
                                 "        mul.wide.u32 %rd5, %r5, 4;\n"
                                 "        add.s64 %rd6, %rd4, %rd5;\n"
                                 "        ld.global.f32 %f2, [%rd6];\n"
                                 "        cvt.rn.f32.u32 %f3, %r5;\n"
                                 "        fma.rn.f32 %f4, %f1, %f2, %f3;\n"
                                 "        add.s64 %rd7, %rd3, %rd5;\n"
                                 "        st.global.f32 [%rd7], %f4;\n"
                                 "DONE:\n"
                                 "        ret;\n"
                                 "}\n";

static struct {
        CUresult (*Init)(unsigned);
        CUresult (*DriverGetVersion)(int *);
        CUresult (*DeviceGetCount)(int *);
        CUresult (*DeviceGet)(CUdevice *, int);
        CUresult (*DeviceGetName)(char *, int, CUdevice);
        CUresult (*DeviceGetUuid)(CUuuid *, CUdevice);
        CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
        CUresult (*DeviceTotalMem)(size_t *, CUdevice);
        CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
        CUresult (*CtxSetCurrent)(CUcontext);
        CUresult (*ModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *, void **);
        CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
        CUresult (*MemAlloc)(CUdeviceptr *, size_t);
        CUresult (*MemFree)(CUdeviceptr);
        CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
        CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
        CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                 unsigned, CUstream, void **, void **);
        CUresult (*CtxSynchronize)(void);
        CUresult (*GetErrorName)(CUresult, const char **);
        CUresult (*DeviceCanAccessPeer)(int *, CUdevice, CUdevice);
        CUresult (*CtxEnablePeerAccess)(CUcontext, unsigned);
        CUresult (*MemcpyPeer)(CUdeviceptr, CUcontext, CUdeviceptr, CUcontext, size_t);
} cu;

static void *lib;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
        va_list ap;

        fputs("cuda-check: FAIL: ", stdout);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        exit(1);
}

static void check(CUresult r, const char *what)
{
        const char *name = NULL;

        if (r == 0)
                return;
        if (cu.GetErrorName)
                cu.GetErrorName(r, &name);
        fail("%s: error %d (%s)", what, r, name ? name : "?");
}

/* The first of the given symbol names that libcuda exports (a _v2 entry point before the old one). */
static void *sym(const char *name, const char *alt)
{
        void *p = dlsym(lib, name);

        if (!p && alt)
                p = dlsym(lib, alt);
        if (!p)
                fail("libcuda.so.1 has no %s", name);
        return p;
}

/* "cuda-check: device N: NAME, GPU-<uuid>, compute capability X.Y, M MiB" (the form nvidia-smi prints the
 * UUID) */
static void describe(int ordinal, CUdevice dev)
{
        char name[256] = "";
        int major = 0, minor = 0;
        size_t total = 0;
        CUuuid uuid;

        check(cu.DeviceGetName(name, sizeof(name), dev), "cuDeviceGetName");
        check(cu.DeviceGetUuid(&uuid, dev), "cuDeviceGetUuid");
        check(cu.DeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev),
              "cuDeviceGetAttribute");
        check(cu.DeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev),
              "cuDeviceGetAttribute");
        check(cu.DeviceTotalMem(&total, dev), "cuDeviceTotalMem");
        const unsigned char *u = uuid.bytes;
        printf("cuda-check: device %d: %s, "
               "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x, "
               "compute capability %d.%d, %zu MiB\n",
               ordinal, name, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
               u[12], u[13], u[14], u[15], major, minor, total >> 20);
}

static uint32_t pattern(int device, size_t k)
{
        return (uint32_t)(k * 2654435761u) ^ (0x9e3779b9u * (uint32_t)(device + 1));
}

static double now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every ordered pair of the count devices: peer access, a 64 MiB cuMemcpyPeer, every word compared. */
static void p2p(int count)
{
        enum { WORDS = 16 << 20 };
        const size_t bytes = WORDS * sizeof(uint32_t);
        CUdevice dev[MAX_DEVICES];
        CUcontext ctx[MAX_DEVICES];
        CUdeviceptr src[MAX_DEVICES], dst[MAX_DEVICES];

        if (count < 2) {
                printf("cuda-check: p2p: %d device, nothing to copy\n", count);
                return;
        }
        if (count > MAX_DEVICES)
                fail("p2p: %d devices, more than the %d this check handles", count, MAX_DEVICES);
        uint32_t *host = malloc(bytes), *back = malloc(bytes);
        if (!host || !back)
                fail("out of memory");
        for (int i = 0; i < count; i++) {
                check(cu.DeviceGet(&dev[i], i), "cuDeviceGet");
                check(cu.DevicePrimaryCtxRetain(&ctx[i], dev[i]), "cuDevicePrimaryCtxRetain");
                check(cu.CtxSetCurrent(ctx[i]), "cuCtxSetCurrent");
                check(cu.MemAlloc(&src[i], bytes), "cuMemAlloc");
                check(cu.MemAlloc(&dst[i], bytes), "cuMemAlloc");
                for (size_t k = 0; k < WORDS; k++)
                        host[k] = pattern(i, k);
                check(cu.MemcpyHtoD(src[i], host, bytes), "cuMemcpyHtoD");
        }
        for (int i = 0; i < count; i++)
                for (int j = 0; j < count; j++) {
                        int can = 0;
                        if (i == j)
                                continue;
                        check(cu.DeviceCanAccessPeer(&can, dev[i], dev[j]), "cuDeviceCanAccessPeer");
                        if (!can)
                                fail("p2p: device %d cannot access device %d's memory "
                                     "(cuDeviceCanAccessPeer: 0)",
                                     i, j);
                        check(cu.CtxSetCurrent(ctx[i]), "cuCtxSetCurrent");
                        CUresult r = cu.CtxEnablePeerAccess(ctx[j], 0);
                        if (r != CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED)
                                check(r, "cuCtxEnablePeerAccess");
                        /* the first copy sets the path up; the second is timed */
                        check(cu.MemcpyPeer(dst[j], ctx[j], src[i], ctx[i], bytes), "cuMemcpyPeer");
                        check(cu.CtxSynchronize(), "cuCtxSynchronize");
                        double t = now();
                        check(cu.MemcpyPeer(dst[j], ctx[j], src[i], ctx[i], bytes), "cuMemcpyPeer");
                        check(cu.CtxSynchronize(), "cuCtxSynchronize");
                        t = now() - t;
                        check(cu.CtxSetCurrent(ctx[j]), "cuCtxSetCurrent");
                        memset(back, 0, bytes);
                        check(cu.MemcpyDtoH(back, dst[j], bytes), "cuMemcpyDtoH");
                        size_t wrong = 0;
                        for (size_t k = 0; k < WORDS; k++)
                                if (back[k] != pattern(i, k) && wrong++ < 3)
                                        printf("cuda-check: p2p: device %d -> device %d: word %zu = 0x%08x, "
                                               "want 0x%08x\n",
                                               i, j, k, back[k], pattern(i, k));
                        if (wrong)
                                fail("p2p: device %d -> device %d: %zu of %d words wrong", i, j, wrong,
                                     (int)WORDS);
                        printf("cuda-check: p2p: device %d -> device %d: peer access, %zu MiB copied and "
                               "verified, "
                               "%.1f GB/s\n",
                               i, j, bytes >> 20, t > 0 ? (double)bytes / t / 1e9 : 0.0);
                }
        for (int i = 0; i < count; i++) {
                check(cu.CtxSetCurrent(ctx[i]), "cuCtxSetCurrent");
                check(cu.MemFree(src[i]), "cuMemFree");
                check(cu.MemFree(dst[i]), "cuMemFree");
        }
        free(host);
        free(back);
        printf("cuda-check: p2p: %d devices, all %d ordered pairs copied peer to peer\n", count,
               count * (count - 1));
}

/* The kernel check on one device: a PTX kernel JIT-compiled, run on 1 Mi floats, every result compared. */
static void kernel(CUdevice dev)
{
        enum { N = 1 << 20, THREADS = 256 };
        char log[4096] = "";
        int mismatches = 0;
        CUcontext ctx;
        CUmodule mod;
        CUfunction fn;
        CUdeviceptr d_in, d_out;

        check(cu.DevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
        check(cu.CtxSetCurrent(ctx), "cuCtxSetCurrent");
        int opts[] = { CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES };
        void *vals[] = { log, (void *)(size_t)sizeof(log) };
        CUresult r = cu.ModuleLoadDataEx(&mod, kernel_ptx, 2, opts, vals);
        if (r != 0 && log[0])
                fail("cuModuleLoadDataEx (PTX JIT): error %d: %s", r, log);
        check(r, "cuModuleLoadDataEx (PTX JIT)");
        check(cu.ModuleGetFunction(&fn, mod, "axpi"), "cuModuleGetFunction");

        float *in = malloc(N * sizeof(float)), *out = malloc(N * sizeof(float));
        if (!in || !out)
                fail("out of memory");
        for (unsigned i = 0; i < N; i++) {
                in[i] = (float)(i % 1000);
                out[i] = -1.0f;
        }
        check(cu.MemAlloc(&d_in, N * sizeof(float)), "cuMemAlloc");
        check(cu.MemAlloc(&d_out, N * sizeof(float)), "cuMemAlloc");
        check(cu.MemcpyHtoD(d_in, in, N * sizeof(float)), "cuMemcpyHtoD");
        float a = 3.0f;
        unsigned n = N;
        void *params[] = { &d_out, &d_in, &a, &n };
        check(cu.LaunchKernel(fn, (N + THREADS - 1) / THREADS, 1, 1, THREADS, 1, 1, 0, NULL, params, NULL),
              "cuLaunchKernel");
        check(cu.CtxSynchronize(), "cuCtxSynchronize");
        check(cu.MemcpyDtoH(out, d_out, N * sizeof(float)), "cuMemcpyDtoH");
        /* Every value is an integer below 2^24: exact in float on both sides. */
        for (unsigned i = 0; i < N; i++) {
                float want = a * in[i] + (float)i;
                if (out[i] != want && mismatches++ < 3)
                        printf("cuda-check: out[%u] = %g, want %g\n", i, out[i], want);
        }
        if (mismatches)
                fail("kernel result: %d of %d elements wrong", mismatches, N);
        printf("cuda-check: kernel axpi (PTX, JIT) on %d floats: all %d results match\n", N, N);
        check(cu.MemFree(d_in), "cuMemFree");
        check(cu.MemFree(d_out), "cuMemFree");
        free(in);
        free(out);
}

int main(int argc, char **argv)
{
        unsigned hold = 0;
        bool peer = false;
        int version = 0, count = 0;
        CUdevice dev;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--p2p") == 0)
                        peer = true;
                else if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc)
                        hold = (unsigned)strtoul(argv[++i], NULL, 10);
                else {
                        fprintf(stderr, "usage: cuda-check [--p2p] [--hold SECONDS]\n");
                        return 2;
                }
        }
        setvbuf(stdout, NULL, _IOLBF, 0);

        lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!lib)
                fail("cannot load the CUDA driver library: %s", dlerror());
        *(void **)&cu.Init = sym("cuInit", NULL);
        *(void **)&cu.DriverGetVersion = sym("cuDriverGetVersion", NULL);
        *(void **)&cu.DeviceGetCount = sym("cuDeviceGetCount", NULL);
        *(void **)&cu.DeviceGet = sym("cuDeviceGet", NULL);
        *(void **)&cu.DeviceGetName = sym("cuDeviceGetName", NULL);
        *(void **)&cu.DeviceGetUuid = sym("cuDeviceGetUuid_v2", "cuDeviceGetUuid");
        *(void **)&cu.DeviceGetAttribute = sym("cuDeviceGetAttribute", NULL);
        *(void **)&cu.DeviceTotalMem = sym("cuDeviceTotalMem_v2", NULL);
        *(void **)&cu.DevicePrimaryCtxRetain = sym("cuDevicePrimaryCtxRetain", NULL);
        *(void **)&cu.CtxSetCurrent = sym("cuCtxSetCurrent", NULL);
        *(void **)&cu.ModuleLoadDataEx = sym("cuModuleLoadDataEx", NULL);
        *(void **)&cu.ModuleGetFunction = sym("cuModuleGetFunction", NULL);
        *(void **)&cu.MemAlloc = sym("cuMemAlloc_v2", NULL);
        *(void **)&cu.MemFree = sym("cuMemFree_v2", NULL);
        *(void **)&cu.MemcpyHtoD = sym("cuMemcpyHtoD_v2", NULL);
        *(void **)&cu.MemcpyDtoH = sym("cuMemcpyDtoH_v2", NULL);
        *(void **)&cu.LaunchKernel = sym("cuLaunchKernel", NULL);
        *(void **)&cu.CtxSynchronize = sym("cuCtxSynchronize", NULL);
        *(void **)&cu.GetErrorName = sym("cuGetErrorName", NULL);
        *(void **)&cu.DeviceCanAccessPeer = sym("cuDeviceCanAccessPeer", NULL);
        *(void **)&cu.CtxEnablePeerAccess = sym("cuCtxEnablePeerAccess", NULL);
        *(void **)&cu.MemcpyPeer = sym("cuMemcpyPeer", NULL);

        check(cu.Init(0), "cuInit");
        check(cu.DriverGetVersion(&version), "cuDriverGetVersion");
        check(cu.DeviceGetCount(&count), "cuDeviceGetCount");
        if (count < 1)
                fail("cuDeviceGetCount: no CUDA device visible");
        printf("cuda-check: driver API %d.%d, %d device(s)\n", version / 1000, version % 1000 / 10, count);
        for (int i = 0; i < (peer ? count : 1); i++) {
                check(cu.DeviceGet(&dev, i), "cuDeviceGet");
                describe(i, dev);
        }
        check(cu.DeviceGet(&dev, 0), "cuDeviceGet");
        if (peer)
                p2p(count);
        else
                kernel(dev);
        printf("cuda-check: PASS\n");
        if (hold) {
                printf("cuda-check: holding the context for %u s\n", hold);
                sleep(hold);
        }
        return 0;
}
