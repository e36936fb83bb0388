/* SPDX-License-Identifier: Apache-2.0 */
/* The health threads and their hand-off to the loop. An idle plugin wakes neither of them:
 * - the watch thread blocks in nvmlEventSetWait an hour at a time, queues what it sees under a mutex
 *   and writes an eventfd. NVML offers no way to wake a wait, and nothing waits for one to end: at
 *   shutdown the thread is left in its wait (health_monitor_free) and ends with the process;
 * - the probe thread, started on the first re-probe the loop asks for, sleeps on a condition variable
 *   until asked again.
 * The loop thread drains the queue, applies the policy to the tracker it alone owns, logs one line per
 * unit touched and tells the plugin. */
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>

#include "base/log.h"
#include "base/parse.h"
#include "health/health.h"
#include "nvml/nvml-loader.h"
#include "nvml/nvml.h"

#define DEFAULT_WAIT_MS 3600000u /* one nvmlEventSetWait: an hour (see watch_thread) */
#define SHORT_WAIT_MS   5000u    /* NVIDIA's plugin's wait: see watch_thread */
#define QUEUE_MAX       256      /* distinct undelivered events; identical ones are coalesced */
#define BACKOFF_MIN_MS  500
#define BACKOFF_MAX_MS  30000
#define EVENT_TYPES     (nvmlEventTypeXidCriticalError | nvmlEventTypeDoubleBitEccError)

struct health_monitor {
        loop *loop;
        const nvml *nvml;
        const inventory *inv;
        health_tracker *tracker; /* loop thread only */
        health_changed_fn cb;
        void *userdata;
        unsigned wait_ms;
        bool upstream; /* upstream policy: a failed wait condemns every GPU, as upstream does */
        bool recovers; /* re-probes run (a recovery interval is set): a GPU may be registered again */
        size_t n_units;

        /* What NVML watches, under set_lock: the watch thread rebuilds the set, the probe thread
         * registers a GPU on it again. */
        pthread_mutex_t set_lock;
        nvmlEventSet_t set;
        nvmlDevice_t *handles; /* [gpu] the handle its events carry */
        bool *registered;
        bool *unsupported; /* [gpu] too old for events: never watched */
        size_t n_registered, n_unsupported;

        pthread_t watcher, prober;
        bool watcher_started, prober_started, sync_ready;
        void *dl_pin;  /* our own reference to the NVML library (pin_nvml) */
        bool init_pin; /* ... and our own nvmlInit */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        /* Under lock. */
        unsigned refs; /* the owner, and the watch thread while it runs */
        bool stop;
        bool waiting;   /* the watch thread is inside nvmlEventSetWait */
        bool rewatched; /* the probe thread registered a GPU again since the watch thread last looked */
        struct health_event *queue, *spare;
        size_t n_queue;
        uint64_t dropped;
        struct health_ref *requests;
        size_t n_requests;

        int efd;
        loop_source *efd_source;
        loop_source *probe_timer;
        struct health_ref *due;  /* scratch for the loop: n_units */
        struct health_ref *todo; /* scratch for the probe thread: n_units */
};

static const char *nvml_err(const health_monitor *m, nvmlReturn_t r)
{
        return nvml_strerror(m->nvml, r);
}

/* The last reference frees the struct: the owner's (health_monitor_free) or, when the watch thread was
 * left in its wait at shutdown, that thread's once the wait ends. */
static void monitor_unref(health_monitor *m)
{
        pthread_mutex_lock(&m->lock);
        bool last = --m->refs == 0;
        pthread_mutex_unlock(&m->lock);
        if (!last)
                return;
        pthread_mutex_destroy(&m->lock);
        pthread_mutex_destroy(&m->set_lock);
        pthread_cond_destroy(&m->cond);
        free(m);
}

/* ---- thread side ---------------------------------------------------------------------------------- */

static bool same_event(const struct health_event *a, const struct health_event *b)
{
        return a->kind == b->kind && a->gpu == b->gpu && a->mig == b->mig && a->gi == b->gi &&
               a->ci == b->ci && a->xid == b->xid && a->nvml_error == b->nvml_error &&
               a->kind != HEALTH_EVENT_PROBE_OK && a->kind != HEALTH_EVENT_PROBE_FAILED;
}

static void post(health_monitor *m, const struct health_event *e)
{
        bool queued = false;
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->n_queue && !queued; i++)
                if (same_event(&m->queue[i], e)) {
                        m->queue[i].count++;
                        queued = true;
                }
        if (!queued && m->n_queue < QUEUE_MAX) {
                m->queue[m->n_queue] = *e;
                m->queue[m->n_queue++].count = 1;
                queued = true;
        }
        if (!queued)
                m->dropped++;
        pthread_mutex_unlock(&m->lock);
        uint64_t one = 1;
        (void)!write(m->efd, &one, sizeof(one));
}

/* Sleeps up to ms (ms 0: until woken), or until stop, or (rewatch) until a GPU is registered again.
 * Returns true when stopping. */
static bool sleep_or_stop(health_monitor *m, unsigned ms, bool rewatch)
{
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&m->lock);
        while (!m->stop && !(rewatch && m->rewatched)) {
                if (ms == 0)
                        pthread_cond_wait(&m->cond, &m->lock);
                else if (pthread_cond_timedwait(&m->cond, &m->lock, &until) != 0)
                        break;
        }
        bool stop = m->stop;
        pthread_mutex_unlock(&m->lock);
        return stop;
}

/* Watches the GPU's XID and double-bit ECC events, those it supports. *ret_what names the failed call.
 * Called with set_lock held (or before the threads start). */
static nvmlReturn_t register_gpu(health_monitor *m, size_t g, nvmlDevice_t h, const char **ret_what)
{
        const nvml *n = m->nvml;
        unsigned long long supported = 0;
        nvmlReturn_t r = n->DeviceGetSupportedEventTypes(h, &supported);
        *ret_what = "nvmlDeviceGetSupportedEventTypes";
        if (r != NVML_SUCCESS)
                return r;
        *ret_what = "nvmlDeviceRegisterEvents";
        if (!(supported & EVENT_TYPES))
                r = NVML_ERROR_NOT_SUPPORTED;
        else
                r = n->DeviceRegisterEvents(h, supported & EVENT_TYPES, m->set);
        if (r == NVML_ERROR_NOT_SUPPORTED && !m->unsupported[g]) {
                m->unsupported[g] = true;
                m->n_unsupported++;
        }
        if (r != NVML_SUCCESS)
                return r;
        m->handles[g] = h;
        if (!m->registered[g]) {
                m->registered[g] = true;
                m->n_registered++;
        }
        return NVML_SUCCESS;
}

/* The re-probe: the device answers by UUID with the same UUID, reports its memory, has no retired
 * pages waiting for a reset (where the driver tells), and (a GPU) its events are watched again. */
static void probe(health_monitor *m, const struct health_ref *ref)
{
        const nvml *n = m->nvml;
        const struct gpu *g = &m->inv->gpus[ref->gpu];
        const char *uuid = ref->mig < 0 ? g->uuid : g->mig[ref->mig].uuid;
        struct health_event e = { .kind = HEALTH_EVENT_PROBE_FAILED,
                                  .gpu = (int)ref->gpu,
                                  .mig = ref->mig,
                                  .probe_seq = ref->probe_seq,
                                  .count = 1 };
        char got[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = "";
        nvmlDevice_t h = NULL;
        nvmlMemory_t mem;
        const char *what;
        nvmlReturn_t r;

        if ((r = n->DeviceGetHandleByUUID(uuid, &h)) != NVML_SUCCESS)
                what = "nvmlDeviceGetHandleByUUID";
        else if ((r = n->DeviceGetUUID(h, got, sizeof(got))) != NVML_SUCCESS)
                what = "nvmlDeviceGetUUID";
        else if (!streq(got, uuid)) {
                snprintf(e.detail, sizeof(e.detail), "the device answers with UUID %.60s", got);
                goto done;
        } else if ((r = n->DeviceGetMemoryInfo(h, &mem)) != NVML_SUCCESS)
                what = "nvmlDeviceGetMemoryInfo";
        else {
                what = NULL;
                if (ref->mig < 0 && n->DeviceGetRetiredPagesPendingStatus) {
                        nvmlEnableState_t pending = NVML_FEATURE_DISABLED;
                        nvmlReturn_t k = n->DeviceGetRetiredPagesPendingStatus(h, &pending);
                        if (k == NVML_SUCCESS && pending == NVML_FEATURE_ENABLED) {
                                snprintf(e.detail, sizeof(e.detail),
                                         "retired pages are pending: the GPU needs a reset");
                                goto done;
                        }
                        if (k != NVML_SUCCESS && k != NVML_ERROR_NOT_SUPPORTED &&
                            k != NVML_ERROR_NO_PERMISSION) {
                                r = k;
                                what = "nvmlDeviceGetRetiredPagesPendingStatus";
                        }
                }
                bool rewatched = false;
                if (!what && ref->mig < 0) {
                        pthread_mutex_lock(&m->set_lock);
                        if (!m->registered[ref->gpu] || m->handles[ref->gpu] != h) {
                                const char *call;
                                r = register_gpu(m, ref->gpu, h, &call);
                                if (r != NVML_SUCCESS && r != NVML_ERROR_NOT_SUPPORTED)
                                        what = call;
                                rewatched = r == NVML_SUCCESS;
                        }
                        pthread_mutex_unlock(&m->set_lock);
                }
                if (rewatched) {
                        pthread_mutex_lock(&m->lock);
                        m->rewatched = true;
                        pthread_cond_broadcast(&m->cond);
                        pthread_mutex_unlock(&m->lock);
                }
                if (!what)
                        e.kind = HEALTH_EVENT_PROBE_OK;
        }
        if (what) {
                e.nvml_error = (int)r;
                e.lost = r == NVML_ERROR_GPU_IS_LOST;
                snprintf(e.detail, sizeof(e.detail), "%s: %s", what, nvml_err(m, r));
        }
done:
        e.time = now_nsec();
        post(m, &e);
}

static void handle_event(health_monitor *m, const nvmlEventData_t *d)
{
        const inventory *inv = m->inv;
        int gpu = -1;

        pthread_mutex_lock(&m->set_lock);
        for (size_t g = 0; g < inv->n_gpus && gpu < 0; g++)
                if (m->handles[g] && m->handles[g] == d->device)
                        gpu = (int)g;
        pthread_mutex_unlock(&m->set_lock);
        if (gpu < 0) {
                /* Upstream: a device whose UUID cannot be read makes every device unhealthy. */
                char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
                nvmlReturn_t r = m->nvml->DeviceGetUUID(d->device, uuid, sizeof(uuid));
                if (r != NVML_SUCCESS) {
                        struct health_event e = { .kind = HEALTH_EVENT_UNKNOWN_DEVICE,
                                                  .gpu = -1,
                                                  .mig = -1,
                                                  .nvml_error = (int)r,
                                                  .time = now_nsec() };
                        snprintf(e.detail, sizeof(e.detail), "nvmlDeviceGetUUID: %s", nvml_err(m, r));
                        post(m, &e);
                        return;
                }
                for (size_t g = 0; g < inv->n_gpus && gpu < 0; g++)
                        if (streq(inv->gpus[g].uuid, uuid))
                                gpu = (int)g;
                if (gpu < 0) {
                        log_info("Ignoring a health event from %s: not a device of this plugin", uuid);
                        return;
                }
        }

        struct health_event e = { .gpu = gpu,
                                  .mig = -1,
                                  .gi = d->gpuInstanceId,
                                  .ci = d->computeInstanceId,
                                  .xid = d->eventData,
                                  .time = now_nsec() };
        if (d->eventType & nvmlEventTypeXidCriticalError)
                e.kind = HEALTH_EVENT_XID;
        else if (d->eventType & nvmlEventTypeDoubleBitEccError) {
                e.kind = HEALTH_EVENT_ECC_DBE;
                e.xid = 0;
        } else
                return;

        const struct gpu *g = &inv->gpus[gpu];
        if (e.gi == NVML_EVENT_INSTANCE_ID_NONE || g->n_mig == 0) {
                post(m, &e);
                return;
        }
        /* A MIG event names its GPU instance (and compute instance, or "any"): it concerns those. */
        bool matched = false;
        for (size_t i = 0; i < g->n_mig; i++)
                if (g->mig[i].gi_id == e.gi &&
                    (e.ci == NVML_EVENT_INSTANCE_ID_NONE || g->mig[i].ci_id == e.ci)) {
                        e.mig = (int)i;
                        post(m, &e);
                        matched = true;
                }
        if (!matched) {
                e.mig = HEALTH_MIG_UNMATCHED;
                post(m, &e);
        }
}

/* A failed wait may come from one GPU that fell off the bus. When some watched GPUs answer
 * NVML_ERROR_GPU_IS_LOST, only they are blamed (as lost) and the event set is rebuilt without them, so
 * the others stay watched; a re-probe registers a GPU again when it is back. Returns false when no GPU
 * is lost (or under the upstream policy): then every GPU is marked, as upstream does. Called with
 * set_lock held. */
static bool blame_lost_gpus_locked(health_monitor *m, nvmlReturn_t wait_error)
{
        const nvml *n = m->nvml;
        const inventory *inv = m->inv;
        bool any = false;

        if (m->upstream)
                return false;
        for (size_t g = 0; g < inv->n_gpus; g++) {
                nvmlMemory_t mem;
                if (!m->registered[g] ||
                    n->DeviceGetMemoryInfo(m->handles[g], &mem) != NVML_ERROR_GPU_IS_LOST)
                        continue;
                struct health_event e = { .kind = HEALTH_EVENT_WAIT_ERROR,
                                          .gpu = (int)g,
                                          .mig = -1,
                                          .nvml_error = (int)wait_error,
                                          .time = now_nsec() };
                snprintf(e.detail, sizeof(e.detail), "%s; the GPU answers NVML_ERROR_GPU_IS_LOST",
                         nvml_err(m, wait_error));
                post(m, &e);
                m->registered[g] = false;
                m->n_registered--;
                any = true;
        }
        if (!any)
                return false;

        nvmlEventSet_t set = NULL;
        nvmlReturn_t r = n->EventSetCreate(&set);
        if (r != NVML_SUCCESS) {
                log_warning("Cannot create a new NVML event set (%s): GPU events are no longer watched",
                            nvml_err(m, r));
                memset(m->registered, 0, inv->n_gpus * sizeof(bool));
                m->n_registered = 0;
                return true;
        }
        n->EventSetFree(m->set);
        m->set = set;
        for (size_t g = 0; g < inv->n_gpus; g++) {
                if (!m->registered[g])
                        continue;
                const char *what;
                m->registered[g] = false;
                m->n_registered--;
                r = register_gpu(m, g, m->handles[g], &what);
                if (r == NVML_SUCCESS || r == NVML_ERROR_NOT_SUPPORTED)
                        continue;
                struct health_event e = { .kind = HEALTH_EVENT_REGISTER_FAILED,
                                          .gpu = (int)g,
                                          .mig = -1,
                                          .nvml_error = (int)r,
                                          .time = now_nsec() };
                snprintf(e.detail, sizeof(e.detail), "%s: %s", what, nvml_err(m, r));
                post(m, &e);
        }
        return true;
}

static bool blame_lost_gpus(health_monitor *m, nvmlReturn_t wait_error)
{
        pthread_mutex_lock(&m->set_lock);
        bool r = blame_lost_gpus_locked(m, wait_error);
        pthread_mutex_unlock(&m->set_lock);
        return r;
}

static bool begin_wait(health_monitor *m)
{
        pthread_mutex_lock(&m->lock);
        bool stop = m->stop;
        m->waiting = !stop;
        pthread_mutex_unlock(&m->lock);
        return !stop;
}

/* True when stopping. Then health_monitor_free may have left this thread in its wait and freed all but
 * the struct itself: nothing else may be touched. */
static bool end_wait(health_monitor *m)
{
        pthread_mutex_lock(&m->lock);
        m->waiting = false;
        bool stop = m->stop;
        pthread_mutex_unlock(&m->lock);
        return stop;
}

/* Nothing depends on a wait ending: an event ends it, shutdown leaves the thread in it. Its timeout is an
 * hour (one wake-up nobody will notice) and shorter in two cases:
 * - while a GPU that lost its registration may get it back from a re-probe: a wait may not watch a GPU
 *   registered after it began, so the thread comes back every SHORT_WAIT_MS to pick it up;
 * - an NVML that ends a long wait early (a timeout it cannot represent) would turn long waits into a busy
 *   loop: after one such return the thread waits SHORT_WAIT_MS at a time, as NVIDIA's plugin does. */
static void *watch_thread(void *userdata)
{
        health_monitor *m = userdata;
        unsigned backoff = 0, wait_ms = m->wait_ms;

        for (;;) {
                if (backoff && sleep_or_stop(m, backoff, false))
                        break;
                /* Cleared before looking: a GPU registered again from here on sets it anew. */
                pthread_mutex_lock(&m->lock);
                m->rewatched = false;
                pthread_mutex_unlock(&m->lock);
                pthread_mutex_lock(&m->set_lock);
                nvmlEventSet_t set = m->set;
                size_t watched = m->n_registered;
                bool unwatched = m->recovers && watched + m->n_unsupported < m->inv->n_gpus;
                pthread_mutex_unlock(&m->set_lock);
                if (watched == 0) {
                        /* Nothing to wait on until a re-probe registers a GPU again. */
                        if (sleep_or_stop(m, 0, true))
                                break;
                        continue;
                }
                unsigned ms = unwatched ? MIN(wait_ms, SHORT_WAIT_MS) : wait_ms;
                if (!begin_wait(m))
                        break;
                uint64_t start = now_nsec();
                nvmlEventData_t d = { 0 };
                nvmlReturn_t r = m->nvml->EventSetWait_v2(set, &d, ms);
                if (end_wait(m))
                        break;
                if (r == NVML_SUCCESS) {
                        backoff = 0;
                        handle_event(m, &d);
                        continue;
                }
                if (r == NVML_ERROR_TIMEOUT) {
                        backoff = 0;
                        if (ms > SHORT_WAIT_MS && now_nsec() - start < ms * NSEC_PER_MSEC / 2) {
                                log_info(
                                        "nvmlEventSetWait ended a %u ms wait early: waiting %u ms at a time "
                                        "from now on",
                                        ms, SHORT_WAIT_MS);
                                wait_ms = SHORT_WAIT_MS;
                        }
                        continue;
                }
                /* Upstream marks every device unhealthy on a failed wait; the catalog policy first looks
                 * for lost GPUs to blame. Back off so a wait that keeps failing at once does not spin. */
                if (!blame_lost_gpus(m, r)) {
                        struct health_event e = { .kind = HEALTH_EVENT_WAIT_ERROR,
                                                  .gpu = -1,
                                                  .mig = -1,
                                                  .nvml_error = (int)r,
                                                  .time = now_nsec() };
                        snprintf(e.detail, sizeof(e.detail), "%s", nvml_err(m, r));
                        post(m, &e);
                }
                backoff = backoff ? MIN(backoff * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
        }
        monitor_unref(m);
        return NULL;
}

/* Runs the re-probes the loop asks for; sleeps in between. */
static void *probe_thread(void *userdata)
{
        health_monitor *m = userdata;

        for (;;) {
                pthread_mutex_lock(&m->lock);
                while (!m->stop && m->n_requests == 0)
                        pthread_cond_wait(&m->cond, &m->lock);
                bool stop = m->stop;
                size_t n = m->n_requests;
                memcpy(m->todo, m->requests, n * sizeof(*m->todo));
                m->n_requests = 0;
                pthread_mutex_unlock(&m->lock);
                if (stop)
                        break;
                for (size_t i = 0; i < n; i++)
                        probe(m, &m->todo[i]);
        }
        return NULL;
}

/* The threads take no signals: the loop reads them from its signalfd. */
static int start_thread(pthread_t *ret, void *(*fn)(void *), void *userdata)
{
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int k = pthread_create(ret, NULL, fn, userdata);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return -k;
}

/* The watch thread may still be inside nvmlEventSetWait when the daemon unloads NVML (health_monitor_free
 * leaves it there): an nvmlInit and a library reference of our own keep nvmlShutdown and dlclose from
 * tearing NVML down under it. Both are dropped when the thread was joined. */
static void pin_nvml(health_monitor *m)
{
        Dl_info info;
        if (dladdr((void *)m->nvml->EventSetWait_v2, &info) && info.dli_fname)
                m->dl_pin = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
        m->init_pin = m->nvml->Init_v2() == NVML_SUCCESS;
}

static void unpin_nvml(health_monitor *m)
{
        if (m->init_pin)
                (void)m->nvml->Shutdown();
        if (m->dl_pin)
                dlclose(m->dl_pin);
}

/* ---- loop side ------------------------------------------------------------------------------------ */

static void unit_name(const health_monitor *m, unsigned gpu, int mig, char *buf, size_t size)
{
        const struct gpu *g = &m->inv->gpus[gpu];
        if (mig < 0)
                snprintf(buf, size, "GPU %u (%s)", g->index, g->uuid);
        else
                snprintf(buf, size, "MIG device %u:%d (%s)", g->index, mig, g->mig[mig].uuid);
}

static void recovery_text(const health_monitor *m, char *buf, size_t size)
{
        const struct health_rules *r = &m->tracker->rules;
        char d[32];
        if (r->policy == HEALTH_POLICY_UPSTREAM)
                snprintf(buf, size, "it stays Unhealthy until the plugin restarts (health policy upstream)");
        else if (r->recovery_interval == DURATION_INFINITE)
                snprintf(buf, size, "it stays Unhealthy until the plugin restarts (no recovery interval)");
        else
                snprintf(buf, size, "it may recover after %s without fatal events and a clean NVML re-probe",
                         health_format_duration(r->recovery_interval, d, sizeof(d)));
}

static void report(void *userdata, unsigned gpu, int mig, enum health_outcome o, const struct health_unit *u,
                   const struct health_event *e, const struct health_verdict *v)
{
        health_monitor *m = userdata;
        char name[160], what[192], rec[128], d[32];

        unit_name(m, gpu, mig < 0 ? -1 : mig, name, sizeof(name));
        if (e->kind == HEALTH_EVENT_XID)
                snprintf(what, sizeof(what), "%s, class %s (%s)", v->reason, xid_class_to_string(v->cls),
                         v->why);
        else
                snprintf(what, sizeof(what), "%s (%s)", v->reason, v->why);
        if (e->count > 1)
                snprintf(what + strlen(what), sizeof(what) - strlen(what), " x%u", e->count);

        switch (o) {
        case HEALTH_IGNORED:
                log_info("%s: %s: ignored, device stays %s", name, what,
                         u->healthy ? "Healthy" : "Unhealthy");
                break;
        case HEALTH_BECAME_UNHEALTHY:
                recovery_text(m, rec, sizeof(rec));
                log_warning("%s: %s: marked Unhealthy%s; %s", name, what, u->lost ? ", the GPU is lost" : "",
                            rec);
                break;
        case HEALTH_STILL_UNHEALTHY:
                recovery_text(m, rec, sizeof(rec));
                log_warning("%s: %s: still Unhealthy, the quiet period starts over; %s", name, what, rec);
                break;
        case HEALTH_RECOVERED:
                log_info("%s: re-probe clean after %s quiet: marked Healthy again (recovery %" PRIu64 ")",
                         name, health_format_duration(now_nsec() - u->last_fatal, d, sizeof(d)),
                         u->recoveries);
                break;
        case HEALTH_PROBE_FAILED:
                log_warning("%s: re-probe failed: %s; stays Unhealthy (%s)%s, next re-probe in %s", name,
                            e->detail, u->reason, u->lost ? ", the GPU is lost" : "",
                            health_format_duration(m->tracker->rules.recovery_interval, d, sizeof(d)));
                break;
        case HEALTH_PROBE_STALE:
                log_debug("%s: re-probe result dropped: a fatal event came while it ran", name);
                break;
        case HEALTH_UNMATCHED:
                log_info("%s: %s for GPU instance %u compute instance %u, none of its MIG devices: ignored",
                         name, v->reason, e->gi, e->ci);
                break;
        }
}

static void schedule_probes(health_monitor *m)
{
        uint64_t next = health_tracker_next_due(m->tracker), now = now_nsec();
        if (next == UINT64_MAX)
                loop_timer_disarm(m->probe_timer);
        else
                loop_timer_arm(m->probe_timer, next > now ? next - now : 0);
}

/* The probe thread is started on the first re-probe: most nodes never need one. */
static bool start_prober(health_monitor *m, size_t n)
{
        if (m->prober_started)
                return true;
        int k = start_thread(&m->prober, probe_thread, m);
        if (k >= 0) {
                m->prober_started = true;
                return true;
        }
        /* The probes fail; the next ones come after another quiet period. */
        for (size_t i = 0; i < n; i++) {
                struct health_event e = { .kind = HEALTH_EVENT_PROBE_FAILED,
                                          .gpu = (int)m->due[i].gpu,
                                          .mig = m->due[i].mig,
                                          .probe_seq = m->due[i].probe_seq,
                                          .time = now_nsec() };
                snprintf(e.detail, sizeof(e.detail), "cannot start the re-probe thread: %s", strerror(-k));
                post(m, &e);
        }
        return false;
}

static void on_probe_timer(loop_source *s, void *userdata)
{
        health_monitor *m = userdata;
        size_t n = health_tracker_take_due(m->tracker, now_nsec(), m->due, m->n_units);
        if (n > 0 && start_prober(m, n)) {
                pthread_mutex_lock(&m->lock);
                for (size_t i = 0; i < n && m->n_requests < m->n_units; i++)
                        m->requests[m->n_requests++] = m->due[i];
                pthread_cond_broadcast(&m->cond);
                pthread_mutex_unlock(&m->lock);
        }
        schedule_probes(m);
}

static void on_events(loop_source *s, int fd, uint32_t revents, void *userdata)
{
        health_monitor *m = userdata;
        uint64_t value, dropped;
        struct health_event *batch;
        size_t n;

        (void)!read(fd, &value, sizeof(value));
        pthread_mutex_lock(&m->lock);
        batch = m->queue;
        n = m->n_queue;
        m->queue = m->spare;
        m->spare = batch;
        m->n_queue = 0;
        dropped = m->dropped;
        m->dropped = 0;
        pthread_mutex_unlock(&m->lock);

        if (dropped)
                log_warning("Health: %" PRIu64 " events dropped: more than %d distinct events were waiting",
                            dropped, QUEUE_MAX);
        for (size_t i = 0; i < n; i++)
                (void)health_tracker_apply(m->tracker, &batch[i], now_nsec());
        if (n && m->cb)
                m->cb(m, m->userdata);
        schedule_probes(m);
}

static void log_rules(const struct health_rules *r)
{
        char d[32], list[256] = "";
        size_t len = 0;
        for (size_t i = 0; i < r->n_disabled && len < sizeof(list) - 24; i++)
                len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%" PRIu64, i ? "," : "",
                                        r->disabled[i]);
        log_info("Health checks: policy %s, %s%s%s, recovery %s", health_policy_to_string(r->policy),
                 r->enable_all                         ? "every XID fatal (DP_ENABLE_HEALTHCHECKS=all)"
                 : r->policy == HEALTH_POLICY_UPSTREAM ? "ignoring XIDs 13,31,43,45,68,109"
                                                       : "XIDs classed by NVIDIA's XID catalog",
                 len ? ", also ignoring " : "", list,
                 r->recovery_interval == DURATION_INFINITE
                         ? "never"
                         : health_format_duration(r->recovery_interval, d, sizeof(d)));
}

static int monitor_setup(health_monitor *m)
{
        const nvml *n = m->nvml;
        const inventory *inv = m->inv;
        pthread_condattr_t ca;

        if (pthread_mutex_init(&m->lock, NULL) != 0)
                return -ENOMEM;
        if (pthread_mutex_init(&m->set_lock, NULL) != 0) {
                pthread_mutex_destroy(&m->lock);
                return -ENOMEM;
        }
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        int k = pthread_cond_init(&m->cond, &ca);
        pthread_condattr_destroy(&ca);
        if (k != 0) {
                pthread_mutex_destroy(&m->lock);
                pthread_mutex_destroy(&m->set_lock);
                return -ENOMEM;
        }
        m->sync_ready = true;
        m->refs = 1;
        for (size_t g = 0; g < inv->n_gpus; g++)
                m->n_units += 1 + inv->gpus[g].n_mig;
        m->queue = new0(struct health_event, QUEUE_MAX);
        m->spare = new0(struct health_event, QUEUE_MAX);
        m->requests = new0(struct health_ref, m->n_units);
        m->due = new0(struct health_ref, m->n_units);
        m->todo = new0(struct health_ref, m->n_units);
        m->handles = new0(nvmlDevice_t, inv->n_gpus);
        m->registered = new0(bool, inv->n_gpus);
        m->unsupported = new0(bool, inv->n_gpus);
        if (!m->queue || !m->spare || !m->requests || !m->due || !m->todo || !m->handles || !m->registered ||
            !m->unsupported)
                return -ENOMEM;
        m->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->efd < 0)
                return log_error_errno(errno, "Failed to create the health eventfd: %m");

        nvmlReturn_t r = n->EventSetCreate(&m->set);
        if (r != NVML_SUCCESS) {
                m->set = NULL;
                log_warning("Cannot create an NVML event set (%s): health checks are off", nvml_err(m, r));
                return 0;
        }
        /* As upstream: a device NVML cannot find or list event types for is unhealthy; one too old for
         * events (none of ours supported, or registering says NOT_SUPPORTED) is only unmonitored. */
        for (size_t g = 0; g < inv->n_gpus; g++) {
                struct health_event e = { .kind = HEALTH_EVENT_REGISTER_FAILED, .gpu = (int)g, .mig = -1 };
                nvmlDevice_t h;
                const char *what = "nvmlDeviceGetHandleByUUID";
                r = n->DeviceGetHandleByUUID(inv->gpus[g].uuid, &h);
                if (r == NVML_SUCCESS)
                        r = register_gpu(m, g, h, &what);
                if (r == NVML_SUCCESS)
                        continue;
                if (r == NVML_ERROR_NOT_SUPPORTED) {
                        log_warning("GPU %u (%s) is too old to support health checking", inv->gpus[g].index,
                                    inv->gpus[g].uuid);
                        continue;
                }
                e.nvml_error = (int)r;
                e.time = now_nsec();
                snprintf(e.detail, sizeof(e.detail), "%s: %s", what, nvml_err(m, r));
                post(m, &e);
        }
        return 1;
}

int health_monitor_start(loop *l, const nvml *n, const inventory *inv,
                         const struct health_monitor_options *o, health_changed_fn cb, void *userdata,
                         health_monitor **ret)
{
        struct health_rules rules;
        int r = health_rules_parse(o->policy, o->recovery_interval, o->disable_env, o->enable_env, &rules);
        if (r < 0)
                return r;
        if (rules.off) {
                log_info("Health checks are disabled (DP_DISABLE_HEALTHCHECKS=%s)", strna(o->disable_env));
                health_rules_done(&rules);
                *ret = NULL;
                return 0;
        }
        if (!n->EventSetCreate || !n->DeviceGetSupportedEventTypes || !n->DeviceRegisterEvents ||
            !n->EventSetWait_v2 || !n->EventSetFree || inv->n_gpus == 0) {
                if (inv->n_gpus > 0)
                        log_warning("This NVML has no event calls: health checks are off");
                health_rules_done(&rules);
                *ret = NULL;
                return 0;
        }

        _cleanup_(health_monitor_freep) health_monitor *m = new0(health_monitor, 1);
        if (!m) {
                health_rules_done(&rules);
                return -ENOMEM;
        }
        m->loop = l;
        m->nvml = n;
        m->inv = inv;
        m->cb = cb;
        m->userdata = userdata;
        m->wait_ms = o->wait_ms ? o->wait_ms : DEFAULT_WAIT_MS;
        m->upstream = o->policy == HEALTH_POLICY_UPSTREAM;
        m->efd = -EBADF;
        r = health_tracker_new(inv, &rules, &m->tracker);
        health_rules_done(&rules);
        if (r < 0)
                return r;
        m->tracker->report = report;
        m->tracker->userdata = m;
        m->recovers = m->tracker->rules.policy != HEALTH_POLICY_UPSTREAM &&
                      m->tracker->rules.recovery_interval != DURATION_INFINITE;
        r = monitor_setup(m);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = NULL;
                return 0;
        }
        if ((r = loop_add_io(l, m->efd, EPOLLIN, on_events, m, &m->efd_source)) < 0 ||
            (r = loop_add_timer(l, 0, on_probe_timer, m, &m->probe_timer)) < 0)
                return r;
        loop_timer_disarm(m->probe_timer);
        log_rules(&m->tracker->rules);

        pin_nvml(m);
        m->refs++;
        r = start_thread(&m->watcher, watch_thread, m);
        if (r < 0) {
                m->refs--;
                return log_error_errno(r, "Failed to start the health thread: %m");
        }
        m->watcher_started = true;
        *ret = TAKE_PTR(m);
        return 0;
}

/* The probe thread is joined (it sleeps on the condition variable or runs a short probe). The watch
 * thread is joined unless it is waiting in NVML, which nothing can end: then it is left there, holding
 * the struct, its event set and the NVML pin, and the process exit ends it. */
health_monitor *health_monitor_free(health_monitor *m)
{
        bool left = false;

        if (!m)
                return NULL;
        if (m->sync_ready) {
                pthread_mutex_lock(&m->lock);
                m->stop = true;
                left = m->waiting;
                pthread_cond_broadcast(&m->cond);
                pthread_mutex_unlock(&m->lock);
        }
        if (m->prober_started)
                pthread_join(m->prober, NULL);
        if (m->watcher_started && left)
                pthread_detach(m->watcher);
        else if (m->watcher_started)
                pthread_join(m->watcher, NULL);
        loop_source_free(m->efd_source);
        loop_source_free(m->probe_timer);
        safe_close(m->efd);
        if (!left) {
                if (m->set)
                        m->nvml->EventSetFree(m->set);
                unpin_nvml(m);
        }
        health_tracker_free(m->tracker);
        free(m->queue);
        free(m->spare);
        free(m->requests);
        free(m->due);
        free(m->todo);
        free(m->handles);
        free(m->registered);
        free(m->unsupported);
        if (m->sync_ready)
                monitor_unref(m);
        else
                free(m);
        return NULL;
}

const health_tracker *health_monitor_tracker(const health_monitor *m)
{
        return m->tracker;
}
