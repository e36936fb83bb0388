/* SPDX-License-Identifier: Apache-2.0 */
/* The simulated NVML as the health thread and other clients will use it: XID events injected through
 * the FIFO, lost GPUs, blocking waits that do not spin, and answers to calls that make no sense. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "base/parse.h"
#include "nvml/nvml.h"

static char mock_lib[512], fixtures[512], events[600];
static char tmp[] = "/tmp/nvdp-test-mock-XXXXXX";

static int setup(void **state)
{
        const char *build = getenv("NVDP_BUILD"), *src = getenv("NVDP_SRC");
        snprintf(mock_lib, sizeof(mock_lib), "%s/mock-nvml/libnvidia-ml.so.1", build ? build : "build");
        snprintf(fixtures, sizeof(fixtures), "%s/mock/nvml/fixtures", src ? src : ".");
        if (!mkdtemp(tmp))
                return -1;
        snprintf(events, sizeof(events), "%s/events", tmp);
        return 0;
}

static int teardown(void **state)
{
        unlink(events);
        rmdir(tmp);
        return 0;
}

static nvml *load(const char *fixture)
{
        char path[600];
        _cleanup_free_ char *error = NULL;
        nvml *n = NULL;
        snprintf(path, sizeof(path), "%s/%s.yaml", fixtures, fixture);
        setenv("MOCK_NVML_FIXTURE", path, 1);
        setenv("MOCK_NVML_EVENTS", events, 1);
        if (nvml_load_library(NULL, mock_lib, &n, &error) < 0)
                fail_msg("loading the mock: %s", strna(error));
        return n;
}

static void inject(const char *line)
{
        /* O_WRONLY on a FIFO blocks without a reader: the mock holds one open since nvmlInit. */
        FILE *f = fopen(events, "we");
        assert_non_null(f);
        fprintf(f, "%s\n", line);
        assert_int_equal(fclose(f), 0);
}

static void test_xid_on_gpu_written_before_wait(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = load("dgx-h100");
        nvmlDevice_t d3, d5;
        nvmlEventSet_t set;
        nvmlEventData_t e = {};
        unsigned long long types = 0;

        /* Written before any event set exists: must not be lost. */
        inject("xid GPU-e7f01b38-64c2-4d5a-b7e9-8c0d1e2f3a34 79");

        assert_int_equal(n->DeviceGetHandleByIndex_v2(3, &d3), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetHandleByIndex_v2(5, &d5), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetSupportedEventTypes(d3, &types), NVML_SUCCESS);
        assert_true(types & nvmlEventTypeXidCriticalError);
        assert_int_equal(n->EventSetCreate(&set), NVML_SUCCESS);
        assert_int_equal(n->DeviceRegisterEvents(d3, nvmlEventTypeXidCriticalError, set), NVML_SUCCESS);
        assert_int_equal(n->DeviceRegisterEvents(d5, nvmlEventTypeXidCriticalError, set), NVML_SUCCESS);

        assert_int_equal(n->EventSetWait_v2(set, &e, 1000), NVML_SUCCESS);
        assert_ptr_equal(e.device, d3);
        assert_true(e.eventType == nvmlEventTypeXidCriticalError);
        assert_true(e.eventData == 79);
        assert_int_equal(e.gpuInstanceId, NVML_EVENT_INSTANCE_ID_NONE);
        assert_int_equal(e.computeInstanceId, NVML_EVENT_INSTANCE_ID_NONE);

        /* Two lines in one write arrive as two events, in order. */
        inject("xid GPU-8f2b4d63-7c19-4e0a-8b5d-2c3d4e5f6a56 48\nxid "
               "GPU-8f2b4d63-7c19-4e0a-8b5d-2c3d4e5f6a56 13");
        assert_int_equal(n->EventSetWait_v2(set, &e, 1000), NVML_SUCCESS);
        assert_ptr_equal(e.device, d5);
        assert_true(e.eventData == 48);
        assert_int_equal(n->EventSetWait_v2(set, &e, 1000), NVML_SUCCESS);
        assert_true(e.eventData == 13);
        assert_int_equal(n->EventSetFree(set), NVML_SUCCESS);
}

static void test_xid_on_mig_device(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = load("a100-mig");
        nvmlDevice_t gpu0, gpu1, mig;
        nvmlEventSet_t set;
        nvmlEventData_t e = {};
        unsigned is_mig = 0;

        assert_int_equal(n->DeviceGetHandleByIndex_v2(0, &gpu0), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetHandleByIndex_v2(1, &gpu1), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetHandleByUUID("MIG-a1b2c3d4-0003-5e6f-8a9b-0c1d2e3f4a03", &mig),
                         NVML_SUCCESS);
        assert_int_equal(n->DeviceIsMigDeviceHandle(mig, &is_mig), NVML_SUCCESS);
        assert_int_equal(is_mig, 1);
        assert_int_equal(n->EventSetCreate(&set), NVML_SUCCESS);
        assert_int_equal(n->DeviceRegisterEvents(gpu0, nvmlEventTypeXidCriticalError, set), NVML_SUCCESS);
        /* MIG handles cannot register; events come on the parent. */
        assert_int_equal(n->DeviceRegisterEvents(mig, nvmlEventTypeXidCriticalError, set),
                         NVML_ERROR_INVALID_ARGUMENT);

        /* An event on GPU 1, which this set did not register, is not delivered to it. */
        inject("xid MIG-f0e1d2c3-0011-4b5a-9687-a5b4c3d2e111 31");
        assert_int_equal(n->EventSetWait_v2(set, &e, 50), NVML_ERROR_TIMEOUT);

        inject("xid MIG-a1b2c3d4-0003-5e6f-8a9b-0c1d2e3f4a03 94");
        assert_int_equal(n->EventSetWait_v2(set, &e, 1000), NVML_SUCCESS);
        assert_ptr_equal(e.device, gpu0);
        assert_true(e.eventData == 94);
        assert_int_equal(e.gpuInstanceId, 13);
        assert_int_equal(e.computeInstanceId, 0);
        assert_int_equal(n->EventSetFree(set), NVML_SUCCESS);
}

static double cpu_seconds(void)
{
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
               ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static void test_wait_blocks_without_spinning(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = load("rtx4070ti");
        nvmlDevice_t d;
        nvmlEventSet_t set;
        nvmlEventData_t e = {};

        assert_int_equal(n->DeviceGetHandleByIndex_v2(0, &d), NVML_SUCCESS);
        assert_int_equal(n->EventSetCreate(&set), NVML_SUCCESS);
        assert_int_equal(n->DeviceRegisterEvents(d, nvmlEventTypeXidCriticalError, set), NVML_SUCCESS);

        uint64_t t0 = now_nsec();
        double c0 = cpu_seconds();
        assert_int_equal(n->EventSetWait_v2(set, &e, 300), NVML_ERROR_TIMEOUT);
        uint64_t waited = now_nsec() - t0;
        double cpu = cpu_seconds() - c0;
        assert_true(waited >= 290 * NSEC_PER_MSEC);
        assert_true(waited < 2 * NSEC_PER_SEC);
        assert_true(cpu < 0.05); /* it slept in poll(), it did not spin */
        assert_int_equal(n->EventSetFree(set), NVML_SUCCESS);
}

static void *inject_later(void *arg)
{
        struct timespec ts = { .tv_nsec = 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        inject("xid GPU-d3c2b1a0-7f6e-4d5c-8b4a-392817263544 43");
        return NULL;
}

static void test_wait_wakes_on_line(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = load("rtx4070ti");
        nvmlDevice_t d;
        nvmlEventSet_t set;
        nvmlEventData_t e = {};
        pthread_t t;

        assert_int_equal(n->DeviceGetHandleByIndex_v2(0, &d), NVML_SUCCESS);
        assert_int_equal(n->EventSetCreate(&set), NVML_SUCCESS);
        assert_int_equal(n->DeviceRegisterEvents(d, nvmlEventTypeXidCriticalError, set), NVML_SUCCESS);
        assert_int_equal(pthread_create(&t, NULL, inject_later, NULL), 0);
        uint64_t t0 = now_nsec();
        assert_int_equal(n->EventSetWait_v2(set, &e, 10000), NVML_SUCCESS);
        assert_true(now_nsec() - t0 < 5 * NSEC_PER_SEC);
        assert_true(e.eventData == 43);
        pthread_join(t, NULL);
        assert_int_equal(n->EventSetFree(set), NVML_SUCCESS);
}

static void test_lost_gpu(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = load("a100-mig");
        nvmlDevice_t gpu0, gpu1, mig;
        char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        nvmlMemory_t mem;

        assert_int_equal(n->DeviceGetHandleByIndex_v2(0, &gpu0), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetHandleByIndex_v2(1, &gpu1), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetMigDeviceHandleByIndex(gpu1, 0, &mig), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetUUID(gpu1, uuid, sizeof(uuid)), NVML_SUCCESS);

        inject("lost GPU-9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c61");
        assert_int_equal(n->DeviceGetUUID(gpu1, uuid, sizeof(uuid)), NVML_ERROR_GPU_IS_LOST);
        assert_int_equal(n->DeviceGetMemoryInfo(gpu1, &mem), NVML_ERROR_GPU_IS_LOST);
        assert_int_equal(n->DeviceGetUUID(mig, uuid, sizeof(uuid)), NVML_ERROR_GPU_IS_LOST);
        nvmlDevice_t again;
        assert_int_equal(n->DeviceGetHandleByIndex_v2(1, &again), NVML_ERROR_GPU_IS_LOST);
        assert_int_equal(n->DeviceGetHandleByUUID("MIG-f0e1d2c3-0012-4b5a-9687-a5b4c3d2e112", &again),
                         NVML_ERROR_GPU_IS_LOST);
        /* The other GPU is untouched. */
        assert_int_equal(n->DeviceGetUUID(gpu0, uuid, sizeof(uuid)), NVML_SUCCESS);
        assert_string_equal(uuid, "GPU-4e1f7a2b-8c3d-4e5f-9a0b-1c2d3e4f5a60");
}

/* The instance walks mig-parted and go-nvlib do, through symbols outside our table. */
static void test_instance_enumeration(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = load("a100-mig");
        nvmlReturn_t (*get_gis)(nvmlDevice_t, unsigned, nvmlGpuInstance_t *, unsigned *) =
                (nvmlReturn_t(*)(nvmlDevice_t, unsigned, nvmlGpuInstance_t *, unsigned *))dlsym(
                        n->dl, "nvmlDeviceGetGpuInstances");
        nvmlReturn_t (*get_cis)(nvmlGpuInstance_t, unsigned, nvmlComputeInstance_t *, unsigned *) =
                (nvmlReturn_t(*)(nvmlGpuInstance_t, unsigned, nvmlComputeInstance_t *, unsigned *))dlsym(
                        n->dl, "nvmlGpuInstanceGetComputeInstances");
        nvmlReturn_t (*power)(nvmlDevice_t, unsigned *) =
                (nvmlReturn_t(*)(nvmlDevice_t, unsigned *))dlsym(n->dl, "nvmlDeviceGetPowerUsage");
        assert_non_null(get_gis);
        assert_non_null(get_cis);
        assert_non_null(power);

        nvmlDevice_t d;
        nvmlGpuInstance_t gis[7];
        nvmlComputeInstance_t cis[7];
        nvmlGpuInstanceInfo_t info;
        nvmlComputeInstanceInfo_t ci_info;
        unsigned count = 99, watts = 7;
        assert_int_equal(n->DeviceGetHandleByIndex_v2(0, &d), NVML_SUCCESS);
        /* GPU 0 has two 1g.5gb instances (gi 13, 14) and no 4g.20gb one. */
        assert_int_equal(get_gis(d, NVML_GPU_INSTANCE_PROFILE_1_SLICE, gis, &count), NVML_SUCCESS);
        assert_int_equal(count, 2);
        assert_int_equal(n->GpuInstanceGetInfo(gis[1], &info), NVML_SUCCESS);
        assert_int_equal(info.id, 14);
        /* As a real driver: the profile's own id (nvidia-smi's 19 for 1g.5gb), not the enum index. */
        assert_int_equal(info.profileId, 19);
        assert_ptr_equal(info.device, d);
        assert_int_equal(get_gis(d, NVML_GPU_INSTANCE_PROFILE_4_SLICE, gis, &count), NVML_SUCCESS);
        assert_int_equal(count, 0);
        assert_int_equal(get_gis(d, NVML_GPU_INSTANCE_PROFILE_3_SLICE, gis, &count), NVML_SUCCESS);
        assert_int_equal(count, 1);
        /* Its one compute instance spans it: profile 3_SLICE; none of 1 slice. */
        assert_int_equal(get_cis(gis[0], NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE, cis, &count), NVML_SUCCESS);
        assert_int_equal(count, 1);
        assert_int_equal(n->ComputeInstanceGetInfo_v2(cis[0], &ci_info), NVML_SUCCESS);
        assert_int_equal(ci_info.id, 0);
        assert_ptr_equal(ci_info.gpuInstance, gis[0]);
        assert_int_equal(get_cis(gis[0], NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE, cis, &count), NVML_SUCCESS);
        assert_int_equal(count, 0);
        assert_int_equal(get_cis(gis[0], NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE, cis, &count),
                         NVML_ERROR_NOT_SUPPORTED);
        /* Telemetry is not simulated: an answer, not a missing symbol, and the output is untouched. */
        assert_int_equal(power(d, &watts), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(watts, 7);
}

/* Calls that make no sense get an NVML error, never a crash. */
static void test_bad_calls(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = load("rtx4070ti");
        nvmlDevice_t d, other;
        unsigned cur, pend, count;
        char small[8];
        nvmlEnableState_t st;
        nvmlPciInfo_t pci;
        nvmlDeviceAttributes_t attr;
        nvmlGpuTopologyLevel_t level;

        assert_int_equal(n->DeviceGetHandleByIndex_v2(1, &d), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(n->DeviceGetHandleByIndex_v2(0, NULL), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(n->DeviceGetHandleByIndex_v2(0, &d), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetUUID(NULL, small, sizeof(small)), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(n->DeviceGetUUID(d, small, sizeof(small)), NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(n->DeviceGetUUID(d, NULL, 96), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(n->DeviceGetHandleByUUID("GPU-nope", &other), NVML_ERROR_NOT_FOUND);
        assert_int_equal(n->DeviceGetMigMode(d, &cur, &pend), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(n->DeviceGetMaxMigDeviceCount(d, &count), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(n->DeviceGetMigDeviceHandleByIndex(d, 0, &other), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(n->DeviceGetAttributes_v2(d, &attr), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(n->DeviceGetNvLinkState(d, 0, &st), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(n->DeviceGetNvLinkRemotePciInfo_v2(d, 99, &pci), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(n->DeviceGetTopologyCommonAncestor(d, d, &level), NVML_SUCCESS);
        assert_int_equal(level, NVML_TOPOLOGY_INTERNAL);
        assert_int_equal(n->EventSetWait_v2(NULL, NULL, 0), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(n->EventSetFree(NULL), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(n->DeviceGetRetiredPagesPendingStatus(d, &st), NVML_SUCCESS);
        assert_int_equal(st, NVML_FEATURE_DISABLED);
        count = 5;
        assert_int_equal(n->DeviceGetRetiredPages_v2(d, NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR,
                                                     &count, NULL, NULL),
                         NVML_SUCCESS);
        assert_int_equal(count, 0);
        /* Unknown and malformed event lines are ignored; the mock keeps working. */
        inject("reboot GPU-d3c2b1a0-7f6e-4d5c-8b4a-392817263544");
        inject("xid GPU-d3c2b1a0-7f6e-4d5c-8b4a-392817263544");
        inject("xid GPU-unknown 79");
        char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        assert_int_equal(n->DeviceGetUUID(d, uuid, sizeof(uuid)), NVML_SUCCESS);
}

/* NVIDIA's plugin has one event set per resource, several registered for the same GPU: each gets its
 * own copy of an event, as from NVML. A set registered after an event happened does not get it. */
static void test_event_reaches_every_set(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = load("a100-mig");
        nvmlDevice_t d0;
        nvmlEventSet_t a, b, late;
        nvmlEventData_t e = {};
        assert_int_equal(n->DeviceGetHandleByIndex_v2(0, &d0), NVML_SUCCESS);
        assert_int_equal(n->EventSetCreate(&a), NVML_SUCCESS);
        assert_int_equal(n->EventSetCreate(&b), NVML_SUCCESS);
        assert_int_equal(n->DeviceRegisterEvents(d0, nvmlEventTypeXidCriticalError, a), NVML_SUCCESS);
        assert_int_equal(n->DeviceRegisterEvents(d0, nvmlEventTypeXidCriticalError, b), NVML_SUCCESS);
        inject("xid GPU-4e1f7a2b-8c3d-4e5f-9a0b-1c2d3e4f5a60 79");
        assert_int_equal(n->EventSetWait_v2(a, &e, 1000), NVML_SUCCESS);
        assert_true(e.eventData == 79);
        assert_int_equal(n->EventSetCreate(&late), NVML_SUCCESS);
        assert_int_equal(n->DeviceRegisterEvents(d0, nvmlEventTypeXidCriticalError, late), NVML_SUCCESS);
        e = (nvmlEventData_t){};
        assert_int_equal(n->EventSetWait_v2(b, &e, 1000), NVML_SUCCESS);
        assert_ptr_equal(e.device, d0);
        assert_true(e.eventData == 79);
        /* each copy once */
        assert_int_equal(n->EventSetWait_v2(a, &e, 50), NVML_ERROR_TIMEOUT);
        assert_int_equal(n->EventSetWait_v2(b, &e, 50), NVML_ERROR_TIMEOUT);
        assert_int_equal(n->EventSetWait_v2(late, &e, 50), NVML_ERROR_TIMEOUT);
        /* a set freed before it took its copy: the others still get theirs */
        inject("xid GPU-4e1f7a2b-8c3d-4e5f-9a0b-1c2d3e4f5a60 48");
        assert_int_equal(n->EventSetWait_v2(late, &e, 1000), NVML_SUCCESS);
        assert_true(e.eventData == 48);
        assert_int_equal(n->EventSetFree(a), NVML_SUCCESS);
        assert_int_equal(n->EventSetWait_v2(b, &e, 1000), NVML_SUCCESS);
        assert_true(e.eventData == 48);
        assert_int_equal(n->EventSetFree(b), NVML_SUCCESS);
        assert_int_equal(n->EventSetFree(late), NVML_SUCCESS);
}

struct waiter {
        nvml *n;
        nvmlEventSet_t set;
        nvmlReturn_t r;
        unsigned long long xid;
        uint64_t took;
};

static void *wait_thread(void *arg)
{
        struct waiter *w = arg;
        nvmlEventData_t e = {};
        uint64_t t0 = now_nsec();
        w->r = w->n->EventSetWait_v2(w->set, &e, 5000);
        w->took = now_nsec() - t0;
        w->xid = e.eventData;
        return NULL;
}

/* Two threads waiting at once on two sets (one reads the FIFO, the other sleeps): both wake with their
 * copy when the line arrives, not when their timeout ends. */
static void test_concurrent_waiters_both_wake(void **state)
{
        _cleanup_(nvml_unloadp) nvml *n = load("rtx4070ti");
        nvmlDevice_t d;
        struct waiter w[2] = { { .n = n }, { .n = n } };
        pthread_t t[2];
        assert_int_equal(n->DeviceGetHandleByIndex_v2(0, &d), NVML_SUCCESS);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(n->EventSetCreate(&w[i].set), NVML_SUCCESS);
                assert_int_equal(n->DeviceRegisterEvents(d, nvmlEventTypeXidCriticalError, w[i].set),
                                 NVML_SUCCESS);
                assert_int_equal(pthread_create(&t[i], NULL, wait_thread, &w[i]), 0);
        }
        struct timespec ts = { .tv_nsec = 200 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        inject("xid GPU-d3c2b1a0-7f6e-4d5c-8b4a-392817263544 31");
        for (int i = 0; i < 2; i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(w[i].r, NVML_SUCCESS);
                assert_true(w[i].xid == 31);
                assert_true(w[i].took < 2 * NSEC_PER_SEC);
                assert_int_equal(n->EventSetFree(w[i].set), NVML_SUCCESS);
        }
}

/* What go-nvlib's VisitMigDevices walks: MIG capable but disabled means no MIG devices (NVML's
 * "returns zero if MIG is not supported or enabled"); with MIG on, up to 7. */
static void test_mig_count_follows_mig_mode(void **state)
{
        nvmlDevice_t d;
        unsigned count = 99;
        {
                _cleanup_(nvml_unloadp) nvml *n = load("dgx-h100");
                assert_int_equal(n->DeviceGetHandleByIndex_v2(0, &d), NVML_SUCCESS);
                assert_int_equal(n->DeviceGetMaxMigDeviceCount(d, &count), NVML_SUCCESS);
                assert_int_equal(count, 0);
        }
        _cleanup_(nvml_unloadp) nvml *n = load("a100-mig");
        assert_int_equal(n->DeviceGetHandleByIndex_v2(1, &d), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetMaxMigDeviceCount(d, &count), NVML_SUCCESS);
        assert_int_equal(count, 7);
}

/* A test changes the MIG layout at run time by replacing the fixture file: the next nvmlInit_v2 reads it
 * (a client opening NVML anew sees the node as it is now), handles taken before stay usable. */
static void write_file(const char *path, const char *a, const char *b)
{
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(a, f);
        fputs(b, f);
        assert_int_equal(fclose(f), 0);
}

static void test_replaced_fixture_is_read_at_next_init(void **state)
{
        char src[600], copy[700], next[700];
        snprintf(src, sizeof(src), "%s/a100-mig.yaml", fixtures);
        snprintf(copy, sizeof(copy), "%s/node.yaml", tmp);
        snprintf(next, sizeof(next), "%s/node.yaml.new", tmp);
        _cleanup_free_ char *text = NULL, *seven = NULL;
        size_t size = 0;
        FILE *f = fopen(src, "re");
        assert_non_null(f);
        assert_true(getdelim(&text, &size, '\0', f) > 0);
        fclose(f);
        /* the fixture as it is, through a copy the test replaces */
        write_file(copy, text, "");
        setenv("MOCK_NVML_EVENTS", events, 1);
        setenv("MOCK_NVML_FIXTURE", copy, 1);
        _cleanup_free_ char *error = NULL;
        nvml *n = NULL;
        if (nvml_load_library(NULL, mock_lib, &n, &error) < 0)
                fail_msg("loading the mock: %s", strna(error));
        nvmlDevice_t gpu, old_mig, mig;
        char uuid[96];
        assert_int_equal(n->DeviceGetHandleByIndex_v2(1, &gpu), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetMigDeviceHandleByIndex(gpu, 0, &old_mig), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetMigDeviceHandleByIndex(gpu, 3, &mig), NVML_ERROR_NOT_FOUND);

        /* GPU 1 repartitioned: its three MIG devices become seven 1g.5gb ones */
        char *gpu1 = strstr(text, "      - {uuid: MIG-f0e1d2c3-0011");
        assert_non_null(gpu1);
        *gpu1 = '\0';
        for (unsigned i = 0; i < 7; i++) {
                char *l = NULL;
                assert_true(asprintf(&l,
                                     "%s      - {uuid: MIG-00000000-0000-4000-8000-0000000000%02u, gi: %u, "
                                     "ci: 0, "
                                     "profile: 0}\n",
                                     strempty(seven), i, 7 + i) > 0);
                free(seven);
                seven = l;
        }
        write_file(next, text, seven);
        assert_int_equal(rename(next, copy), 0);

        /* the layout changes at the next nvmlInit_v2, not before; handles of before still answer */
        assert_int_equal(n->DeviceGetMigDeviceHandleByIndex(gpu, 3, &mig), NVML_ERROR_NOT_FOUND);
        assert_int_equal(n->Init_v2(), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetUUID(old_mig, uuid, sizeof(uuid)), NVML_SUCCESS);
        assert_string_equal(uuid, "MIG-f0e1d2c3-0011-4b5a-9687-a5b4c3d2e111");
        assert_int_equal(n->DeviceGetHandleByIndex_v2(1, &gpu), NVML_SUCCESS);
        for (unsigned i = 0; i < 7; i++) {
                char want[96];
                snprintf(want, sizeof(want), "MIG-00000000-0000-4000-8000-0000000000%02u", i);
                assert_int_equal(n->DeviceGetMigDeviceHandleByIndex(gpu, i, &mig), NVML_SUCCESS);
                assert_int_equal(n->DeviceGetUUID(mig, uuid, sizeof(uuid)), NVML_SUCCESS);
                assert_string_equal(uuid, want);
        }
        /* a replaced file that does not parse keeps the node as it was */
        write_file(next, "gpus: [\n", "");
        assert_int_equal(rename(next, copy), 0);
        assert_int_equal(n->Init_v2(), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetHandleByIndex_v2(1, &gpu), NVML_SUCCESS);
        assert_int_equal(n->DeviceGetMigDeviceHandleByIndex(gpu, 6, &mig), NVML_SUCCESS);
        assert_int_equal(n->Shutdown(), NVML_SUCCESS);
        assert_int_equal(n->Shutdown(), NVML_SUCCESS);
        n = nvml_unload(n);
        unlink(copy);
}

/* nvml.h's nvmlGpuFabricInfo_t and nvmlGpuFabricInfo_v3_t, written out here as a client has them. */
typedef struct {
        unsigned char clusterUuid[16];
        nvmlReturn_t status;
        unsigned int cliqueId;
        unsigned char state;
} fabric_v1;
typedef struct {
        unsigned int version;
        unsigned char clusterUuid[16];
        nvmlReturn_t status;
        unsigned int cliqueId;
        unsigned char state;
        unsigned int healthMask;
        unsigned char healthSummary;
} fabric_v3;

/* The GB200 fixture's GPUs are in one fabric clique; a GPU outside a fabric says NOT_SUPPORTED. */
static void test_fabric_info(void **state)
{
        static const unsigned char cluster[16] = { 0x4c, 0x1f, 0x2a, 0x3b, 0x5d, 0x6e, 0x4f, 0x70,
                                                   0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b };
        nvmlDevice_t d;
        _cleanup_(nvml_unloadp) nvml *n = load("gb200-nvl");
        nvmlReturn_t (*v1)(nvmlDevice_t, fabric_v1 *) =
                (nvmlReturn_t(*)(nvmlDevice_t, fabric_v1 *))dlsym(n->dl, "nvmlDeviceGetGpuFabricInfo");
        nvmlReturn_t (*vv)(nvmlDevice_t, fabric_v3 *) =
                (nvmlReturn_t(*)(nvmlDevice_t, fabric_v3 *))dlsym(n->dl, "nvmlDeviceGetGpuFabricInfoV");
        assert_non_null(v1);
        assert_non_null(vv);
        for (unsigned i = 0; i < 4; i++) {
                fabric_v1 a;
                memset(&a, 0xee, sizeof(a));
                assert_int_equal(n->DeviceGetHandleByIndex_v2(i, &d), NVML_SUCCESS);
                assert_int_equal(v1(d, &a), NVML_SUCCESS);
                assert_memory_equal(a.clusterUuid, cluster, 16);
                assert_int_equal(a.cliqueId, 32766);
                assert_int_equal(a.state, 3); /* NVML_GPU_FABRIC_STATE_COMPLETED */
                assert_int_equal(a.status, NVML_SUCCESS);
        }
        /* The versioned call: v3 gets the health summary, v2 stops before it, others are refused. */
        fabric_v3 b = { .version = (unsigned)sizeof(fabric_v3) | 3u << 24 };
        assert_int_equal(vv(d, &b), NVML_SUCCESS);
        assert_memory_equal(b.clusterUuid, cluster, 16);
        assert_int_equal(b.cliqueId, 32766);
        assert_int_equal(b.state, 3);
        assert_int_equal(b.healthSummary, 1); /* NVML_GPU_FABRIC_HEALTH_SUMMARY_HEALTHY */
        assert_int_equal(b.healthMask, 0x1aa);
        fabric_v3 c;
        memset(&c, 0xee, sizeof(c));
        c.version = (unsigned)offsetof(fabric_v3, healthSummary) | 2u << 24; /* sizeof v2: 36 */
        assert_int_equal(vv(d, &c), NVML_SUCCESS);
        assert_int_equal(c.cliqueId, 32766);
        assert_int_equal(c.healthSummary, 0xee);
        c.version = 40 | 1u << 24;       /* v1 has no versioned form */
        assert_int_equal(vv(d, &c), 25); /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
        assert_int_equal(v1(d, NULL), NVML_ERROR_INVALID_ARGUMENT);

        _cleanup_(nvml_unloadp) nvml *h = NULL;
        n = nvml_unload(n);
        h = load("dgx-h100");
        nvmlReturn_t (*h1)(nvmlDevice_t, fabric_v1 *) =
                (nvmlReturn_t(*)(nvmlDevice_t, fabric_v1 *))dlsym(h->dl, "nvmlDeviceGetGpuFabricInfo");
        fabric_v1 e;
        assert_int_equal(h->DeviceGetHandleByIndex_v2(0, &d), NVML_SUCCESS);
        assert_int_equal(h1(d, &e), NVML_ERROR_NOT_SUPPORTED);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_xid_on_gpu_written_before_wait),
                cmocka_unit_test(test_xid_on_mig_device),
                cmocka_unit_test(test_wait_blocks_without_spinning),
                cmocka_unit_test(test_wait_wakes_on_line),
                cmocka_unit_test(test_lost_gpu),
                cmocka_unit_test(test_instance_enumeration),
                cmocka_unit_test(test_bad_calls),
                cmocka_unit_test(test_event_reaches_every_set),
                cmocka_unit_test(test_concurrent_waiters_both_wake),
                cmocka_unit_test(test_mig_count_follows_mig_mode),
                cmocka_unit_test(test_fabric_info),
                cmocka_unit_test(test_replaced_fixture_is_read_at_next_init),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
