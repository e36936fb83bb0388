/* SPDX-License-Identifier: Apache-2.0 */
/* The exported NVML entry points of the simulated libnvidia-ml.so.1. Every exported call checks its
 * arguments and answers NVML_ERROR_NOT_SUPPORTED where the fixture has nothing to say: clients built
 * against the real library must never crash on it. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "mock.h"

/* Every exported table function, with NVML's name and our declaration of its signature. */
#define MOCK_DECLARE_(name, ret, args) ret nvml##name args;
NVML_FUNCTIONS(MOCK_DECLARE_, MOCK_DECLARE_)

/* Older and alternative names that clients (go-nvml among them) resolve. */
nvmlReturn_t nvmlInit(void);
nvmlReturn_t nvmlInitWithFlags(unsigned int flags);
nvmlReturn_t nvmlDeviceGetCount(unsigned int *count);
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t *pci);
nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci);
nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index);
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version);
nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo(nvmlDevice_t device, unsigned int link, nvmlPciInfo_t *pci);
nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms);
nvmlReturn_t nvmlDeviceGetGpuInstances(nvmlDevice_t device, unsigned int profile,
                                       nvmlGpuInstance_t *instances, unsigned int *count);
nvmlReturn_t nvmlGpuInstanceGetComputeInstances(nvmlGpuInstance_t gi, unsigned int profile,
                                                nvmlComputeInstance_t *instances, unsigned int *count);

#ifndef NVML_ERROR_ARGUMENT_VERSION_MISMATCH
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25
#endif

#define EVENT_QUEUE_MAX 256 /* events not yet waited for; more are dropped */
#define EVENT_LINE_MAX  256

#define EVENT_SETS_MAX 64 /* live event sets; an event keeps a bit per set still to receive it */

struct nvmlEventSet_st {
        unsigned slot;    /* index in sets[] */
        uint64_t devices; /* bit i: GPU i registered */
        unsigned long long types;
};

/* As NVML: an event goes to every event set registered for its device and type when it happens (here:
 * when its line is read), each set receiving its own copy. One that happens before any set is
 * registered for it waits for the first that is, and then goes to every set registered at that point. */
struct mock_event {
        unsigned gpu, gi, ci;
        unsigned long long type, xid;
        bool open;        /* no recipient yet */
        uint64_t pending; /* bit s: sets[s] has still to take it */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned init_count;
static struct mock_node *node;
/* The fixture file as read (a replaced file is read again at the next nvmlInit_v2), and the nodes it
 * replaced: their handles stay valid until the last nvmlShutdown. */
static struct stat node_stat;
static struct mock_node **retired;
static size_t n_retired;
static int events_fd = -EBADF;
static char events_buf[EVENT_LINE_MAX];
static size_t events_len;
static bool events_skip; /* discarding an over-long line */
static struct mock_event queue[EVENT_QUEUE_MAX];
static size_t queue_len;
static struct nvmlEventSet_st *sets[EVENT_SETS_MAX];
/* Waiters: one of them (the reader) sleeps in poll() on the FIFO, the others on `queued`, which is
 * broadcast whenever lines were read, so every set hears of its copy at once. */
static pthread_cond_t queued;
static pthread_once_t queued_once = PTHREAD_ONCE_INIT;
static bool reader_active;

static void queued_init(void)
{
        pthread_condattr_t a;
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&queued, &a);
        pthread_condattr_destroy(&a);
}
static nvmlReturn_t wait_error; /* a "wait-error" line: the next nvmlEventSetWait answers this */

/* The live event sets registered for this GPU and event type. Called with lock held. */
static uint64_t recipients(unsigned gpu, unsigned long long type)
{
        uint64_t mask = 0;
        for (unsigned s = 0; s < EVENT_SETS_MAX; s++)
                if (sets[s] && (sets[s]->devices & (1ULL << gpu)) && (sets[s]->types & type))
                        mask |= 1ULL << s;
        return mask;
}

static void queue_remove(size_t i)
{
        memmove(&queue[i], &queue[i + 1], (queue_len - i - 1) * sizeof(queue[0]));
        queue_len--;
}

static struct mock_gpu *find_uuid(const char *uuid, struct mock_mig **ret_mig)
{
        *ret_mig = NULL;
        for (unsigned i = 0; node && i < node->n_gpus; i++) {
                struct mock_gpu *g = &node->gpus[i];
                if (streq(g->uuid, uuid))
                        return g;
                for (unsigned j = 0; j < g->n_mig; j++)
                        if (streq(g->mig[j].uuid, uuid)) {
                                *ret_mig = &g->mig[j];
                                return g;
                        }
        }
        return NULL;
}

/* One line from the events FIFO (docs/mock-nvml.md): "xid <uuid> <xid>", "dbe <uuid>", "lost <uuid>",
 * "found <uuid>" or "wait-error <nvml return code>". Called with lock held. */
static void event_line(char *line)
{
        char cmd[16], uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        unsigned long long xid = 0;
        struct mock_mig *mig;
        struct mock_gpu *g;
        int k = sscanf(line, "%15s %95s %llu", cmd, uuid, &xid);

        if (k < 1)
                return;
        if (streq(cmd, "wait-error") && k == 2) {
                char *end;
                unsigned long code = strtoul(uuid, &end, 10);
                if (*end || code == NVML_SUCCESS || code > 999) {
                        fprintf(stderr,
                                "mock-nvml: ignoring event line '%s': expected 'wait-error <code>'\n", line);
                        return;
                }
                wait_error = (nvmlReturn_t)code;
                return;
        }
        g = k >= 2 ? find_uuid(uuid, &mig) : NULL;
        if (!g) {
                fprintf(stderr, "mock-nvml: ignoring event line '%s': unknown command or device\n", line);
                return;
        }
        if ((streq(cmd, "lost") || streq(cmd, "found")) && k == 2) {
                __atomic_store_n(&g->lost, streq(cmd, "lost") ? 1 : 0, __ATOMIC_RELEASE);
                return;
        }
        bool is_xid = streq(cmd, "xid") && k == 3, is_dbe = streq(cmd, "dbe") && k == 2;
        if (!is_xid && !is_dbe) {
                fprintf(stderr,
                        "mock-nvml: ignoring event line '%s': expected 'xid <uuid> <xid>', 'dbe <uuid>', "
                        "'lost <uuid>', 'found <uuid>' or 'wait-error <code>'\n",
                        line);
                return;
        }
        if (queue_len >= EVENT_QUEUE_MAX) {
                fprintf(stderr, "mock-nvml: event queue full, dropping '%s'\n", line);
                return;
        }
        unsigned long long type = is_xid ? nvmlEventTypeXidCriticalError : nvmlEventTypeDoubleBitEccError;
        uint64_t to = recipients(g->index, type);
        queue[queue_len++] = (struct mock_event){
                .gpu = g->index,
                .gi = mig ? mig->gi_id : NVML_EVENT_INSTANCE_ID_NONE,
                .ci = mig ? mig->ci_id : NVML_EVENT_INSTANCE_ID_NONE,
                .type = type,
                .xid = is_xid ? xid : 0,
                .open = to == 0,
                .pending = to,
        };
}

/* Reads whatever the FIFO holds, without blocking. Called with lock held. */
static void events_pump_locked(void)
{
        char buf[512];
        ssize_t n;
        bool any = false;

        if (events_fd < 0)
                return;
        while ((n = read(events_fd, buf, sizeof(buf))) > 0) {
                any = true;
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] == '\n') {
                                events_buf[events_len] = '\0';
                                if (!events_skip)
                                        event_line(events_buf);
                                events_len = 0;
                                events_skip = false;
                        } else if (events_len < sizeof(events_buf) - 1)
                                events_buf[events_len++] = buf[i];
                        else
                                events_skip = true;
                }
        }
        if (any) {
                pthread_once(&queued_once, queued_init);
                pthread_cond_broadcast(&queued);
        }
}

static void events_pump(void)
{
        pthread_mutex_lock(&lock);
        events_pump_locked();
        pthread_mutex_unlock(&lock);
}

static bool initialized(void)
{
        return __atomic_load_n(&init_count, __ATOMIC_ACQUIRE) > 0;
}

/* The common check of every device call: initialised, a handle of ours, GPU not lost. */
static nvmlReturn_t check_device(nvmlDevice_t d)
{
        if (!initialized())
                return NVML_ERROR_UNINITIALIZED;
        if (!d || (d->kind != MOCK_GPU && d->kind != MOCK_MIG) || !d->gpu)
                return NVML_ERROR_INVALID_ARGUMENT;
        events_pump();
        if (__atomic_load_n(&d->gpu->lost, __ATOMIC_ACQUIRE))
                return NVML_ERROR_GPU_IS_LOST;
        return NVML_SUCCESS;
}

#define CHECK(d)                                                                                            \
        do {                                                                                                \
                nvmlReturn_t r_ = check_device(d);                                                          \
                if (r_ != NVML_SUCCESS)                                                                     \
                        return r_;                                                                          \
        } while (0)

static nvmlReturn_t copy_string(char *dst, unsigned int length, const char *src)
{
        if (!dst)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (strlen(src) >= length)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        strcpy(dst, src);
        return NVML_SUCCESS;
}

static nvmlReturn_t open_events(void)
{
        const char *path = getenv("MOCK_NVML_EVENTS");
        if (isempty(path))
                return NVML_SUCCESS;
        if (mkfifo(path, 0600) < 0 && errno != EEXIST) {
                fprintf(stderr, "mock-nvml: cannot create events FIFO %s: %s\n", path, strerror(errno));
                return NVML_ERROR_UNKNOWN;
        }
        /* O_RDWR: we hold a writer ourselves, so writers never block or fail for lack of a reader and
         * lines written before the first nvmlEventSetWait wait in the pipe. */
        events_fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (events_fd < 0) {
                fprintf(stderr, "mock-nvml: cannot open events FIFO %s: %s\n", path, strerror(errno));
                return NVML_ERROR_UNKNOWN;
        }
        return NVML_SUCCESS;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The fixture file was replaced or rewritten since it was read (a test changing the MIG layout at run
 * time): read it again, as a client that opens NVML anew sees the node as it is now. Called with lock held
 * while initialised; a file that does not read keeps the node as it was. */
static void reread_fixture(void)
{
        const char *path = getenv("MOCK_NVML_FIXTURE");
        struct stat st;
        if (isempty(path) || stat(path, &st) < 0 || same_file(&st, &node_stat))
                return;
        struct mock_node *fresh = NULL, **l = NULL;
        char *error = NULL;
        if (mock_fixture_load(path, &fresh, &error) < 0) {
                fprintf(stderr, "%s (the node stays as it was)\n",
                        error ? error : "mock-nvml: cannot read the fixture");
                free(error);
                return;
        }
        l = realloc(retired, (n_retired + 1) * sizeof(*retired));
        if (!l) {
                mock_fixture_free(fresh);
                return;
        }
        retired = l;
        retired[n_retired++] = node;
        __atomic_store_n(&node, fresh, __ATOMIC_RELEASE);
        node_stat = st;
}

/* The first nvmlInit_v2: the fixture and the events FIFO. Called with lock held. */
static nvmlReturn_t first_init(void)
{
        const char *path = getenv("MOCK_NVML_FIXTURE");
        char *error = NULL;
        if (isempty(path)) {
                fprintf(stderr,
                        "mock-nvml: MOCK_NVML_FIXTURE is not set; it names the node's fixture file\n");
                return NVML_ERROR_DRIVER_NOT_LOADED;
        }
        if (mock_fixture_load(path, &node, &error) < 0) {
                fprintf(stderr, "%s\n", error ? error : "mock-nvml: cannot read the fixture");
                free(error);
                return NVML_ERROR_UNKNOWN;
        }
        if (stat(path, &node_stat) < 0)
                node_stat = (struct stat){};
        nvmlReturn_t ret = open_events();
        if (ret != NVML_SUCCESS) {
                mock_fixture_free(node);
                node = NULL;
        }
        return ret;
}

nvmlReturn_t nvmlInit_v2(void)
{
        MOCK_FAIL_POINT();
        nvmlReturn_t ret = NVML_SUCCESS;

        pthread_mutex_lock(&lock);
        if (init_count > 0)
                reread_fixture();
        else
                ret = first_init();
        if (ret == NVML_SUCCESS)
                __atomic_add_fetch(&init_count, 1, __ATOMIC_ACQ_REL);
        pthread_mutex_unlock(&lock);
        return ret;
}

nvmlReturn_t nvmlInit(void)
{
        MOCK_FAIL_POINT();
        return nvmlInit_v2();
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
        MOCK_FAIL_POINT();
        return nvmlInit_v2();
}

nvmlReturn_t nvmlShutdown(void)
{
        MOCK_FAIL_POINT();
        pthread_mutex_lock(&lock);
        if (init_count == 0) {
                pthread_mutex_unlock(&lock);
                return NVML_ERROR_UNINITIALIZED;
        }
        if (__atomic_sub_fetch(&init_count, 1, __ATOMIC_ACQ_REL) == 0) {
                mock_fixture_free(node);
                node = NULL;
                for (size_t i = 0; i < n_retired; i++)
                        mock_fixture_free(retired[i]);
                retired = mfree(retired);
                n_retired = 0;
                events_fd = safe_close(events_fd);
                events_len = queue_len = 0;
                wait_error = NVML_SUCCESS;
                events_skip = false;
        }
        pthread_mutex_unlock(&lock);
        return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result)
{
        switch (result) {
        case NVML_SUCCESS: return "Success";
        case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
        case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
        case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
        case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
        case NVML_ERROR_NOT_FOUND: return "Not Found";
        case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
        case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
        case NVML_ERROR_TIMEOUT: return "Timeout";
        case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
        case NVML_ERROR_UNKNOWN: return "Unknown Error";
        default: return "Unknown Error";
        }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
        MOCK_FAIL_POINT();
        if (!initialized())
                return NVML_ERROR_UNINITIALIZED;
        return copy_string(version, length, node->driver_version);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
        MOCK_FAIL_POINT();
        if (!initialized())
                return NVML_ERROR_UNINITIALIZED;
        return copy_string(version, length, node->nvml_version);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version)
{
        MOCK_FAIL_POINT();
        if (!version)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!initialized())
                return NVML_ERROR_UNINITIALIZED;
        *version = node->cuda_driver_version;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version)
{
        MOCK_FAIL_POINT();
        return nvmlSystemGetCudaDriverVersion(version);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
        MOCK_FAIL_POINT();
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!initialized())
                return NVML_ERROR_UNINITIALIZED;
        *count = node->n_gpus;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *count)
{
        MOCK_FAIL_POINT();
        return nvmlDeviceGetCount_v2(count);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
        MOCK_FAIL_POINT();
        if (!device)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!initialized())
                return NVML_ERROR_UNINITIALIZED;
        if (index >= node->n_gpus)
                return NVML_ERROR_INVALID_ARGUMENT;
        /* As the driver: no new handle for a GPU that fell off the bus. */
        nvmlReturn_t r = check_device(&node->gpus[index].dev);
        if (r != NVML_SUCCESS)
                return r;
        *device = &node->gpus[index].dev;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
        MOCK_FAIL_POINT();
        return nvmlDeviceGetHandleByIndex_v2(index, device);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
        MOCK_FAIL_POINT();
        struct mock_mig *mig;
        struct mock_gpu *g;
        if (!uuid || !device)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!initialized())
                return NVML_ERROR_UNINITIALIZED;
        g = find_uuid(uuid, &mig);
        if (!g)
                return NVML_ERROR_NOT_FOUND;
        nvmlReturn_t r = check_device(&g->dev);
        if (r != NVML_SUCCESS)
                return r;
        *device = mig ? &mig->dev : &g->dev;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, nvmlDevice_t *device)
{
        MOCK_FAIL_POINT();
        unsigned domain, bus, dev;
        if (!bus_id || !device)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!initialized())
                return NVML_ERROR_UNINITIALIZED;
        if (sscanf(bus_id, "%x:%x:%x", &domain, &bus, &dev) != 3)
                return NVML_ERROR_INVALID_ARGUMENT;
        for (unsigned i = 0; i < node->n_gpus; i++)
                if (node->gpus[i].domain == domain && node->gpus[i].bus == bus &&
                    node->gpus[i].device == dev) {
                        *device = &node->gpus[i].dev;
                        return NVML_SUCCESS;
                }
        return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!index || device->kind != MOCK_GPU)
                return NVML_ERROR_INVALID_ARGUMENT;
        *index = device->gpu->index;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        return copy_string(uuid, length, device->mig ? device->mig->uuid : device->gpu->uuid);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (device->mig) {
                /* The real driver names a MIG device after its parent and profile. */
                char buf[NVML_DEVICE_NAME_V2_BUFFER_SIZE +
                         32]; /* room for the suffix; copy_string bounds it */
                snprintf(buf, sizeof(buf), "%.96s MIG %ug", device->gpu->name, device->mig->profile->slices);
                return copy_string(name, length, buf);
        }
        return copy_string(name, length, device->gpu->name);
}

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!minor)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (device->mig)
                return NVML_ERROR_NOT_SUPPORTED;
        *minor = device->gpu->minor;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
        MOCK_FAIL_POINT();
        const struct mock_gpu *g;
        CHECK(device);
        if (!pci)
                return NVML_ERROR_INVALID_ARGUMENT;
        g = device->gpu;
        memset(pci, 0, sizeof(*pci));
        pci->domain = g->domain;
        pci->bus = g->bus;
        pci->device = g->device;
        pci->pciDeviceId = g->pci_device_id;
        pci->pciSubSystemId = g->pci_subsystem_id;
        snprintf(pci->busId, sizeof(pci->busId), "%s", g->bus_id);
        snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%s", g->bus_id + 4);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
        MOCK_FAIL_POINT();
        return nvmlDeviceGetPciInfo_v3(device, pci);
}

nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
        MOCK_FAIL_POINT();
        return nvmlDeviceGetPciInfo_v3(device, pci);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!memory)
                return NVML_ERROR_INVALID_ARGUMENT;
        uint64_t mib = device->mig ? device->mig->profile->memory_mib : device->gpu->memory_mib;
        memory->total = mib * 1024 * 1024;
        memory->used = 0;
        memory->free = memory->total;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!major || !minor)
                return NVML_ERROR_INVALID_ARGUMENT;
        *major = device->gpu->cc_major;
        *minor = device->gpu->cc_minor;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetBrand(nvmlDevice_t device, nvmlBrandType_t *type)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!type)
                return NVML_ERROR_INVALID_ARGUMENT;
        *type = device->gpu->brand;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, nvmlDeviceArchitecture_t *arch)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!arch)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (device->gpu->architecture == NVML_DEVICE_ARCH_UNKNOWN)
                return NVML_ERROR_NOT_SUPPORTED;
        *arch = device->gpu->architecture;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!current || !pending)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (device->mig || !device->gpu->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        *current = *pending = device->gpu->mig_enabled ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (device->mig || !device->gpu->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        /* NVML: "Returns zero if MIG is not supported or enabled". Clients that walk MIG devices by
         * this count (go-nvlib's VisitMigDevices) must find none on a GPU with MIG disabled. */
        *count = device->gpu->mig_enabled ? MOCK_MAX_MIG : 0;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *mig)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!mig || device->mig || index >= MOCK_MAX_MIG)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!device->gpu->mig_enabled)
                return NVML_ERROR_NOT_SUPPORTED;
        if (index >= device->gpu->n_mig)
                return NVML_ERROR_NOT_FOUND;
        *mig = &device->gpu->mig[index].dev;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig, nvmlDevice_t *device)
{
        MOCK_FAIL_POINT();
        CHECK(mig);
        if (!device || !mig->mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        *device = &mig->gpu->dev;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *is_mig)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!is_mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        *is_mig = device->mig != NULL;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!id)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!device->mig)
                return NVML_ERROR_NOT_SUPPORTED;
        *id = device->mig->gi_id;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!id)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!device->mig)
                return NVML_ERROR_NOT_SUPPORTED;
        *id = device->mig->ci_id;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t device, nvmlDeviceAttributes_t *a)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!a)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!device->mig)
                return NVML_ERROR_NOT_SUPPORTED;
        const struct mock_mig *m = device->mig;
        const struct mock_profile *p = m->profile;
        *a = (nvmlDeviceAttributes_t){
                .multiprocessorCount = p->multiprocessors * m->ci_slices / p->slices,
                .sharedCopyEngineCount = p->copy_engines,
                .sharedDecoderCount = p->decoders,
                .sharedEncoderCount = p->encoders,
                .sharedJpegCount = p->jpeg,
                .sharedOfaCount = p->ofa,
                .gpuInstanceSliceCount = p->slices,
                .computeInstanceSliceCount = m->ci_slices,
                .memorySizeMB = p->memory_mib,
        };
        return NVML_SUCCESS;
}

static const struct mock_profile *find_profile(const struct mock_gpu *g, unsigned id)
{
        for (unsigned i = 0; i < g->n_profiles; i++)
                if (g->profiles[i].id == id)
                        return &g->profiles[i];
        return NULL;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(nvmlDevice_t device, unsigned int profile,
                                                 nvmlGpuInstanceProfileInfo_t *info)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!info || device->mig || profile >= NVML_GPU_INSTANCE_PROFILE_COUNT)
                return NVML_ERROR_INVALID_ARGUMENT;
        const struct mock_profile *p = find_profile(device->gpu, profile);
        if (!device->gpu->mig_capable || !p)
                return NVML_ERROR_NOT_SUPPORTED;
        *info = (nvmlGpuInstanceProfileInfo_t){
                .id = p->profile_id,
                .isP2pSupported = 0,
                .sliceCount = p->slices,
                .instanceCount = p->instances,
                .multiprocessorCount = p->multiprocessors,
                .copyEngineCount = p->copy_engines,
                .decoderCount = p->decoders,
                .encoderCount = p->encoders,
                .jpegCount = p->jpeg,
                .ofaCount = p->ofa,
                .memorySizeMB = p->memory_mib,
        };
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceById(nvmlDevice_t device, unsigned int id, nvmlGpuInstance_t *gi)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!gi || device->mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!device->gpu->mig_enabled)
                return NVML_ERROR_NOT_SUPPORTED;
        for (unsigned i = 0; i < device->gpu->n_mig; i++)
                if (device->gpu->mig[i].gi_id == id) {
                        *gi = &device->gpu->mig[i].gi;
                        return NVML_SUCCESS;
                }
        return NVML_ERROR_NOT_FOUND;
}

/* GPU/compute instance handles point at the MIG device that holds them. */
static nvmlReturn_t check_mig(const struct mock_mig *m)
{
        if (!m)
                return NVML_ERROR_INVALID_ARGUMENT;
        return check_device((nvmlDevice_t)&m->dev);
}

nvmlReturn_t nvmlGpuInstanceGetInfo(nvmlGpuInstance_t gi, nvmlGpuInstanceInfo_t *info)
{
        MOCK_FAIL_POINT();
        nvmlReturn_t r = check_mig(gi ? gi->mig : NULL);
        if (r != NVML_SUCCESS)
                return r;
        if (!info)
                return NVML_ERROR_INVALID_ARGUMENT;
        const struct mock_mig *m = gi->mig;
        *info = (nvmlGpuInstanceInfo_t){
                .device = &m->dev.gpu->dev,
                .id = m->gi_id,
                .profileId = m->profile->profile_id,
                .placement = { .start = 0, .size = m->profile->slices },
        };
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstanceById(nvmlGpuInstance_t gi, unsigned int id,
                                                   nvmlComputeInstance_t *ci)
{
        MOCK_FAIL_POINT();
        nvmlReturn_t r = check_mig(gi ? gi->mig : NULL);
        if (r != NVML_SUCCESS)
                return r;
        if (!ci)
                return NVML_ERROR_INVALID_ARGUMENT;
        /* Our fixtures give each GPU instance one compute instance: the MIG device itself. */
        const struct mock_gpu *g = gi->mig->dev.gpu;
        for (unsigned i = 0; i < g->n_mig; i++)
                if (g->mig[i].gi_id == gi->mig->gi_id && g->mig[i].ci_id == id) {
                        *ci = (nvmlComputeInstance_t)&g->mig[i].ci;
                        return NVML_SUCCESS;
                }
        return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlComputeInstanceGetInfo_v2(nvmlComputeInstance_t ci, nvmlComputeInstanceInfo_t *info)
{
        MOCK_FAIL_POINT();
        nvmlReturn_t r = check_mig(ci ? ci->mig : NULL);
        if (r != NVML_SUCCESS)
                return r;
        if (!info)
                return NVML_ERROR_INVALID_ARGUMENT;
        struct mock_mig *m = ci->mig;
        *info = (nvmlComputeInstanceInfo_t){
                .device = &m->dev.gpu->dev,
                .gpuInstance = &m->gi,
                .id = m->ci_id,
                .profileId = m->ci_profile,
                .placement = { .start = 0, .size = m->ci_slices },
        };
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfo(nvmlGpuInstance_t gi, unsigned int profile,
                                                          unsigned int eng_profile,
                                                          nvmlComputeInstanceProfileInfo_t *info)
{
        MOCK_FAIL_POINT();
        nvmlReturn_t r = check_mig(gi ? gi->mig : NULL);
        if (r != NVML_SUCCESS)
                return r;
        if (!info || profile >= NVML_COMPUTE_INSTANCE_PROFILE_COUNT)
                return NVML_ERROR_INVALID_ARGUMENT;
        const struct mock_profile *p = gi->mig->profile;
        unsigned slices = mock_ci_profile_slices(profile);
        if (eng_profile != NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED ||
            profile == NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE_REV1 || slices > p->slices)
                return NVML_ERROR_NOT_SUPPORTED;
        *info = (nvmlComputeInstanceProfileInfo_t){
                .id = profile,
                .sliceCount = slices,
                .instanceCount = p->slices / slices,
                .multiprocessorCount = p->multiprocessors * slices / p->slices,
                .sharedCopyEngineCount = p->copy_engines,
                .sharedDecoderCount = p->decoders,
                .sharedEncoderCount = p->encoders,
                .sharedJpegCount = p->jpeg,
                .sharedOfaCount = p->ofa,
        };
        return NVML_SUCCESS;
}

static nvmlReturn_t nvlink(nvmlDevice_t device, unsigned int link, const struct mock_nvlink **ret)
{
        CHECK(device);
        if (device->mig || link >= NVML_NVLINK_MAX_LINKS)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (device->gpu->n_nvlinks == 0)
                return NVML_ERROR_NOT_SUPPORTED;
        *ret = link < device->gpu->n_nvlinks ? &device->gpu->nvlinks[link] : NULL;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link, nvmlEnableState_t *active)
{
        MOCK_FAIL_POINT();
        const struct mock_nvlink *l;
        nvmlReturn_t r = nvlink(device, link, &l);
        if (r != NVML_SUCCESS)
                return r;
        if (!active)
                return NVML_ERROR_INVALID_ARGUMENT;
        *active = l ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t device, unsigned int link, nvmlPciInfo_t *pci)
{
        MOCK_FAIL_POINT();
        const struct mock_nvlink *l;
        nvmlReturn_t r = nvlink(device, link, &l);
        if (r != NVML_SUCCESS)
                return r;
        if (!pci)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!l)
                return NVML_ERROR_NOT_SUPPORTED;
        memset(pci, 0, sizeof(*pci));
        snprintf(pci->busId, sizeof(pci->busId), "%s", l->remote);
        (void)sscanf(l->remote, "%x:%x:%x", &pci->domain, &pci->bus, &pci->device);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo(nvmlDevice_t device, unsigned int link, nvmlPciInfo_t *pci)
{
        MOCK_FAIL_POINT();
        return nvmlDeviceGetNvLinkRemotePciInfo_v2(device, link, pci);
}

nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t device, unsigned int link,
                                                 nvmlIntNvLinkDeviceType_t *type)
{
        MOCK_FAIL_POINT();
        const struct mock_nvlink *l;
        nvmlReturn_t r = nvlink(device, link, &l);
        if (r != NVML_SUCCESS)
                return r;
        if (!type)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!l)
                return NVML_ERROR_NOT_SUPPORTED;
        *type = l->type;
        return NVML_SUCCESS;
}

static bool same(const char *a, const char *b)
{
        return !isempty(a) && !isempty(b) && streq(a, b);
}

nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t a, nvmlDevice_t b,
                                                 nvmlGpuTopologyLevel_t *level)
{
        MOCK_FAIL_POINT();
        CHECK(a);
        CHECK(b);
        if (!level || a->mig || b->mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        const struct mock_gpu *x = a->gpu, *y = b->gpu;
        if (x == y || same(x->board, y->board))
                *level = NVML_TOPOLOGY_INTERNAL;
        else if (same(x->pcie_switch, y->pcie_switch))
                *level = NVML_TOPOLOGY_SINGLE;
        else if (same(x->host_bridge, y->host_bridge))
                *level = NVML_TOPOLOGY_HOSTBRIDGE;
        else if (x->cpu >= 0 && x->cpu == y->cpu)
                *level = NVML_TOPOLOGY_NODE;
        else
                *level = NVML_TOPOLOGY_SYSTEM;
        return NVML_SUCCESS;
}

#define MOCK_EVENT_TYPES                                                                                    \
        (nvmlEventTypeXidCriticalError | nvmlEventTypeSingleBitEccError | nvmlEventTypeDoubleBitEccError)

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
        MOCK_FAIL_POINT();
        if (!set)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!initialized())
                return NVML_ERROR_UNINITIALIZED;
        nvmlEventSet_t n = calloc(1, sizeof(*n));
        if (!n)
                return NVML_ERROR_MEMORY;
        pthread_mutex_lock(&lock);
        unsigned s = 0;
        while (s < EVENT_SETS_MAX && sets[s])
                s++;
        if (s < EVENT_SETS_MAX) {
                n->slot = s;
                sets[s] = n;
        }
        pthread_mutex_unlock(&lock);
        if (s == EVENT_SETS_MAX) {
                free(n);
                return NVML_ERROR_MEMORY;
        }
        *set = n;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
        MOCK_FAIL_POINT();
        if (!set)
                return NVML_ERROR_INVALID_ARGUMENT;
        pthread_mutex_lock(&lock);
        if (set->slot < EVENT_SETS_MAX && sets[set->slot] == set) {
                sets[set->slot] = NULL;
                /* what it had still to take goes to no one now */
                for (size_t i = queue_len; i-- > 0;) {
                        queue[i].pending &= ~(1ULL << set->slot);
                        if (!queue[i].open && queue[i].pending == 0)
                                queue_remove(i);
                }
        }
        pthread_mutex_unlock(&lock);
        free(set);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device, unsigned long long *types)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!types)
                return NVML_ERROR_INVALID_ARGUMENT;
        *types = MOCK_EVENT_TYPES;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types, nvmlEventSet_t set)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!set || device->mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (types & ~MOCK_EVENT_TYPES)
                return NVML_ERROR_NOT_SUPPORTED;
        pthread_mutex_lock(&lock);
        set->devices |= 1ULL << device->gpu->index;
        set->types |= types;
        pthread_mutex_unlock(&lock);
        return NVML_SUCCESS;
}

/* Takes the first queued event for this set. Called with lock held. */
static bool take_event(nvmlEventSet_t set, nvmlEventData_t *data)
{
        uint64_t me = 1ULL << set->slot;
        for (size_t i = 0; i < queue_len; i++) {
                struct mock_event *e = &queue[i];
                if (e->open) {
                        /* happened before anyone listened: goes to every set listening now */
                        uint64_t to = recipients(e->gpu, e->type);
                        if (!(to & me))
                                continue;
                        e->open = false;
                        e->pending = to;
                }
                if (!(e->pending & me))
                        continue;
                *data = (nvmlEventData_t){
                        .device = &node->gpus[e->gpu].dev,
                        .eventType = e->type,
                        .eventData = e->xid,
                        .gpuInstanceId = e->gi,
                        .computeInstanceId = e->ci,
                };
                e->pending &= ~me;
                if (e->pending == 0)
                        queue_remove(i);
                return true;
        }
        return false;
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms)
{
        MOCK_FAIL_POINT();
        if (!set || !data)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!initialized())
                return NVML_ERROR_UNINITIALIZED;

        pthread_once(&queued_once, queued_init);
        uint64_t deadline = now_ms() + timeout_ms;
        nvmlReturn_t ret = NVML_ERROR_TIMEOUT;
        pthread_mutex_lock(&lock);
        for (;;) {
                if (!node) {
                        /* nvmlShutdown ran while we waited. */
                        ret = NVML_ERROR_UNINITIALIZED;
                        break;
                }
                events_pump_locked();
                if (wait_error != NVML_SUCCESS) {
                        ret = wait_error;
                        wait_error = NVML_SUCCESS;
                        break;
                }
                if (take_event(set, data)) {
                        ret = NVML_SUCCESS;
                        break;
                }
                uint64_t now = now_ms();
                if (now >= deadline)
                        break;
                if (events_fd >= 0 && !reader_active) {
                        /* The reader: sleep in poll() until the FIFO has data or the time is up. */
                        struct pollfd p = { .fd = events_fd, .events = POLLIN };
                        reader_active = true;
                        pthread_mutex_unlock(&lock);
                        int k = poll(&p, 1, (int)MIN(deadline - now, (uint64_t)INT32_MAX));
                        int e = errno;
                        pthread_mutex_lock(&lock);
                        reader_active = false;
                        pthread_cond_broadcast(&queued); /* another waiter may read now */
                        if (k < 0 && e != EINTR) {
                                ret = NVML_ERROR_UNKNOWN;
                                break;
                        }
                } else {
                        /* Another waiter reads the FIFO and wakes us when lines came (or no FIFO). */
                        struct timespec until = { .tv_sec = (time_t)(deadline / 1000),
                                                  .tv_nsec = (long)(deadline % 1000) * 1000000 };
                        pthread_cond_timedwait(&queued, &lock, &until);
                }
        }
        pthread_mutex_unlock(&lock);
        return ret;
}

nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms)
{
        MOCK_FAIL_POINT();
        return nvmlEventSetWait_v2(set, data, timeout_ms);
}

nvmlReturn_t nvmlDeviceGetRetiredPages_v2(nvmlDevice_t device, nvmlPageRetirementCause_t cause,
                                          unsigned int *count, unsigned long long *addresses,
                                          unsigned long long *timestamps)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!count || device->mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        /* No page has been retired on a simulated GPU. */
        *count = 0;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t device, nvmlEnableState_t *pending)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!pending || device->mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        *pending = NVML_FEATURE_DISABLED;
        return NVML_SUCCESS;
}

/* Fabric (multi-node NVLink domain) membership from the fixture's 'fabric' key; GPUs without one
 * answer NOT_SUPPORTED, as GPUs outside such a fabric do. */
static nvmlReturn_t fabric_of(nvmlDevice_t device, const void *info, const struct mock_fabric **ret)
{
        CHECK(device);
        if (!info || device->mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!device->gpu->fabric.present)
                return NVML_ERROR_NOT_SUPPORTED;
        *ret = &device->gpu->fabric;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuFabricInfo(nvmlDevice_t device, nvmlGpuFabricInfo_t *info)
{
        MOCK_FAIL_POINT();
        const struct mock_fabric *f;
        nvmlReturn_t r = fabric_of(device, info, &f);
        if (r != NVML_SUCCESS)
                return r;
        *info = (nvmlGpuFabricInfo_t){ .status = (nvmlReturn_t)f->status,
                                       .cliqueId = f->clique_id,
                                       .state = (unsigned char)f->state };
        memcpy(info->clusterUuid, f->cluster_uuid, sizeof(info->clusterUuid));
        return NVML_SUCCESS;
}

/* nvml.h's health mask of a healthy fabric GPU: bandwidth not degraded, no route recovery, routes
 * healthy, no access timeout recovery (each "FALSE" = 2), configuration correct ("NONE" = 1). */
#define MOCK_FABRIC_HEALTHY_MASK (2u << 0 | 2u << 2 | 2u << 4 | 2u << 6 | 1u << 8)

/* The versioned call: the caller sets version to nvmlGpuFabricInfo_v2 or _v3 (the _v2 struct is a prefix
 * of _v3); fields follow it. */
nvmlReturn_t nvmlDeviceGetGpuFabricInfoV(nvmlDevice_t device, nvmlGpuFabricInfo_v2_t *info)
{
        MOCK_FAIL_POINT();
        const struct mock_fabric *f;
        nvmlReturn_t r = fabric_of(device, info, &f);
        if (r != NVML_SUCCESS)
                return r;
        unsigned version = info->version;
        if (version != nvmlGpuFabricInfo_v2 && version != MOCK_FABRIC_INFO_V3)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        /* v2 is a prefix of v3 up to healthMask; write only what the caller's version holds. */
        mock_fabric_info_v3_t v = { .version = version,
                                    .status = (nvmlReturn_t)f->status,
                                    .cliqueId = f->clique_id,
                                    .state = (unsigned char)f->state,
                                    .healthMask = MOCK_FABRIC_HEALTHY_MASK,
                                    .healthSummary = 1 /* NVML_GPU_FABRIC_HEALTH_SUMMARY_HEALTHY */ };
        memcpy(v.clusterUuid, f->cluster_uuid, sizeof(v.clusterUuid));
        memcpy(info, &v, version == MOCK_FABRIC_INFO_V3 ? sizeof(v) : sizeof(nvmlGpuFabricInfo_v2_t));
        return NVML_SUCCESS;
}

/* Enumeration of GPU instances of one profile, as mig-parted and go-nvlib walk them. The caller's
 * array holds the profile's instanceCount entries; we never write more. */
nvmlReturn_t nvmlDeviceGetGpuInstances(nvmlDevice_t device, unsigned int profile,
                                       nvmlGpuInstance_t *instances, unsigned int *count)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!instances || !count || device->mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        const struct mock_gpu *g = device->gpu;
        const struct mock_profile *p = find_profile(g, profile);
        if (!g->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        if (!p)
                return NVML_ERROR_INVALID_ARGUMENT;
        unsigned n = 0;
        for (unsigned i = 0; g->mig_enabled && i < g->n_mig && n < p->instances; i++) {
                bool seen = false;
                if (g->mig[i].profile != p)
                        continue;
                for (unsigned j = 0; j < i; j++)
                        seen = seen || g->mig[j].gi_id == g->mig[i].gi_id;
                if (!seen)
                        instances[n++] = (nvmlGpuInstance_t)&g->mig[i].gi;
        }
        *count = n;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstances(nvmlGpuInstance_t gi, unsigned int profile,
                                                nvmlComputeInstance_t *instances, unsigned int *count)
{
        MOCK_FAIL_POINT();
        nvmlReturn_t r = check_mig(gi ? gi->mig : NULL);
        if (r != NVML_SUCCESS)
                return r;
        if (!instances || !count || profile >= NVML_COMPUTE_INSTANCE_PROFILE_COUNT)
                return NVML_ERROR_INVALID_ARGUMENT;
        unsigned slices = mock_ci_profile_slices(profile);
        if (slices > gi->mig->profile->slices)
                return NVML_ERROR_NOT_SUPPORTED;
        const struct mock_gpu *g = gi->mig->dev.gpu;
        unsigned n = 0, max = gi->mig->profile->slices / slices;
        for (unsigned i = 0; i < g->n_mig && n < max; i++)
                if (g->mig[i].gi_id == gi->mig->gi_id && g->mig[i].ci_profile == profile)
                        instances[n++] = (nvmlComputeInstance_t)&g->mig[i].ci;
        *count = n;
        return NVML_SUCCESS;
}

typedef struct {
        unsigned int version;
        unsigned long long total, reserved, free, used;
} mock_memory_v2_t;
#define MOCK_MEMORY_V2_VERSION ((unsigned)sizeof(mock_memory_v2_t) | (2u << 24))

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, mock_memory_v2_t *memory);
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, mock_memory_v2_t *memory)
{
        MOCK_FAIL_POINT();
        nvmlMemory_t m;
        if (!memory)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (memory->version != MOCK_MEMORY_V2_VERSION)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        nvmlReturn_t r = nvmlDeviceGetMemoryInfo(device, &m);
        if (r != NVML_SUCCESS)
                return r;
        memory->total = m.total;
        memory->reserved = 0;
        memory->free = m.free;
        memory->used = m.used;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, unsigned int *mode);
nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, unsigned int *mode)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!mode)
                return NVML_ERROR_INVALID_ARGUMENT;
        *mode = 0; /* NVML_COMPUTEMODE_DEFAULT */
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, nvmlEnableState_t *mode);
nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, nvmlEnableState_t *mode)
{
        MOCK_FAIL_POINT();
        CHECK(device);
        if (!mode || device->mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        *mode = NVML_FEATURE_ENABLED;
        return NVML_SUCCESS;
}

/* Calls clients commonly make whose answer the fixture does not model (telemetry, ECC counters,
 * processes, versioned profile queries). They touch no argument, so whatever the real signature,
 * the caller gets NVML_ERROR_NOT_SUPPORTED and carries on, instead of a missing symbol. */
#define NOT_SUPPORTED_CALL(name)                                                                            \
        nvmlReturn_t name(void);                                                                            \
        nvmlReturn_t name(void)                                                                             \
        {                                                                                                   \
                return initialized() ? NVML_ERROR_NOT_SUPPORTED : NVML_ERROR_UNINITIALIZED;                 \
        }

NOT_SUPPORTED_CALL(nvmlDeviceGetP2PStatus)
NOT_SUPPORTED_CALL(nvmlDeviceGetPowerUsage)
NOT_SUPPORTED_CALL(nvmlDeviceGetPowerManagementLimit)
NOT_SUPPORTED_CALL(nvmlDeviceGetTemperature)
NOT_SUPPORTED_CALL(nvmlDeviceGetFanSpeed)
NOT_SUPPORTED_CALL(nvmlDeviceGetPerformanceState)
NOT_SUPPORTED_CALL(nvmlDeviceGetUtilizationRates)
NOT_SUPPORTED_CALL(nvmlDeviceGetClockInfo)
NOT_SUPPORTED_CALL(nvmlDeviceGetMaxClockInfo)
NOT_SUPPORTED_CALL(nvmlDeviceGetCurrentClocksEventReasons)
NOT_SUPPORTED_CALL(nvmlDeviceGetCurrentClocksThrottleReasons)
NOT_SUPPORTED_CALL(nvmlDeviceGetEccMode)
NOT_SUPPORTED_CALL(nvmlDeviceGetTotalEccErrors)
NOT_SUPPORTED_CALL(nvmlDeviceGetSerial)
NOT_SUPPORTED_CALL(nvmlDeviceGetVbiosVersion)
NOT_SUPPORTED_CALL(nvmlDeviceGetBoardId)
NOT_SUPPORTED_CALL(nvmlDeviceGetBoardPartNumber)
NOT_SUPPORTED_CALL(nvmlDeviceGetDisplayMode)
NOT_SUPPORTED_CALL(nvmlDeviceGetDisplayActive)
NOT_SUPPORTED_CALL(nvmlDeviceGetCurrPcieLinkGeneration)
NOT_SUPPORTED_CALL(nvmlDeviceGetCurrPcieLinkWidth)
NOT_SUPPORTED_CALL(nvmlDeviceGetMaxPcieLinkGeneration)
NOT_SUPPORTED_CALL(nvmlDeviceGetMaxPcieLinkWidth)
NOT_SUPPORTED_CALL(nvmlDeviceGetBAR1MemoryInfo)
NOT_SUPPORTED_CALL(nvmlDeviceGetNumGpuCores)
NOT_SUPPORTED_CALL(nvmlDeviceGetCpuAffinity)
NOT_SUPPORTED_CALL(nvmlDeviceGetMemoryAffinity)
NOT_SUPPORTED_CALL(nvmlDeviceGetNvLinkCapability)
NOT_SUPPORTED_CALL(nvmlDeviceGetNvLinkVersion)
NOT_SUPPORTED_CALL(nvmlDeviceGetComputeRunningProcesses_v3)
NOT_SUPPORTED_CALL(nvmlDeviceGetGraphicsRunningProcesses_v3)
NOT_SUPPORTED_CALL(nvmlDeviceGetGpuInstanceProfileInfoV)
NOT_SUPPORTED_CALL(nvmlGpuInstanceGetComputeInstanceProfileInfoV)
NOT_SUPPORTED_CALL(nvmlDeviceGetGpuInstancePossiblePlacements_v2)
NOT_SUPPORTED_CALL(nvmlDeviceGetGpuInstanceRemainingCapacity)
NOT_SUPPORTED_CALL(nvmlDeviceCreateGpuInstance)
NOT_SUPPORTED_CALL(nvmlGpuInstanceCreateComputeInstance)
NOT_SUPPORTED_CALL(nvmlGpuInstanceDestroy)
NOT_SUPPORTED_CALL(nvmlComputeInstanceDestroy)
NOT_SUPPORTED_CALL(nvmlDeviceSetMigMode)
NOT_SUPPORTED_CALL(nvmlSystemGetProcessName)
