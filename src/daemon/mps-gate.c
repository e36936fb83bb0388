/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/mps-gate.h"

#include <sys/inotify.h>

#include "base/error.h"
#include "base/strv.h"
#include "mps/mps-root.h"

#define WATCH_MASK                                                                                          \
        (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct gate_entry {
        char *resource;
        char **dirs;  /* root, root/nvidia.com, root/nvidia.com/gpu: each level watched once it exists */
        bool started; /* .started was there at the last look */
        bool ready;
        bool known; /* the handler was told */
};

struct mps_gate {
        loop *loop;
        mps_gate_handler cb;
        void *userdata;
        char *root; /* NULL: not found, or nothing shared with MPS */
        struct gate_entry *entries;
        size_t n_entries;
        int inotify_fd;
        loop_source *source;
};

static void entry_done(struct gate_entry *e)
{
        free(e->resource);
        strv_free(e->dirs);
}

static void entries_free(struct gate_entry *entries, size_t n)
{
        for (size_t i = 0; i < n; i++)
                entry_done(&entries[i]);
        free(entries);
}

static void watch_stop(mps_gate *g)
{
        g->source = loop_source_free(g->source);
        g->inotify_fd = safe_close(g->inotify_fd);
}

mps_gate *mps_gate_free(mps_gate *g)
{
        if (!g)
                return NULL;
        watch_stop(g);
        entries_free(g->entries, g->n_entries);
        free(g->root);
        free(g);
        return NULL;
}

int mps_gate_new(loop *l, mps_gate_handler cb, void *userdata, mps_gate **ret)
{
        mps_gate *g = new0(mps_gate, 1);
        if (!g)
                return -ENOMEM;
        g->loop = l;
        g->cb = cb;
        g->userdata = userdata;
        g->inotify_fd = -EBADF;
        *ret = g;
        return 0;
}

static const struct gate_entry *gate_find(const mps_gate *g, const char *resource)
{
        for (size_t i = 0; i < g->n_entries; i++)
                if (streq(g->entries[i].resource, resource))
                        return &g->entries[i];
        return NULL;
}

bool mps_gate_ready(const mps_gate *g, const struct plan_resource *r)
{
        if (r->sharing != SHARING_MPS)
                return true;
        const struct gate_entry *e = g ? gate_find(g, r->name) : NULL;
        return e && e->ready;
}

/* Looks at one resource again: watches the levels that exist now, and on a change of its .started file
 * probes the socket. Tells the handler when the readiness is new or changed. */
static void entry_check(mps_gate *g, struct gate_entry *e)
{
        STRV_FOREACH (d, e->dirs)
                if (inotify_add_watch(g->inotify_fd, *d, WATCH_MASK) < 0)
                        break; /* the levels below do not exist either */
        _cleanup_free_ char *started = mps_path(g->root, e->resource, MPS_STARTED_FILE);
        if (!started)
                return;
        bool now = access(started, F_OK) == 0;
        if (e->known && now == e->started)
                return;
        e->started = now;
        bool ready = now && mps_resource_ready(g->root, e->resource, true) == 1;
        if (e->known && ready == e->ready)
                return;
        e->ready = ready;
        e->known = true;
        _cleanup_free_ char *why = NULL;
        if (!ready &&
            asprintf(&why,
                     now ? "%s exists but nothing listens on %s/%s/" MPS_PIPE_DIR "/" MPS_CONTROL_SOCKET
                         : "%s is missing",
                     started, g->root, e->resource) < 0)
                why = NULL;
        g->cb(e->resource, ready, ready ? NULL : why ? why : "not ready", g->userdata);
}

static void gate_check(mps_gate *g)
{
        for (size_t i = 0; i < g->n_entries; i++)
                entry_check(g, &g->entries[i]);
}

static void on_inotify(loop_source *s, int fd, uint32_t revents, void *userdata)
{
        mps_gate *g = userdata;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool any = false;
        /* A burst (a daemon's files rewritten) is read whole, then looked at once. */
        while (read(fd, buf, sizeof buf) > 0)
                any = true;
        if (any)
                gate_check(g);
}

/* root, root/a, root/a/b for resource "a/b". */
static int resource_dirs(const char *root, const char *resource, char ***ret)
{
        _cleanup_strv_free_ char **dirs = NULL;
        int r = strv_extend(&dirs, root);
        for (const char *end = strchr(resource, '/'); r >= 0; end = strchr(end + 1, '/')) {
                int len = end ? (int)(end - resource) : (int)strlen(resource);
                r = strv_extendf(&dirs, "%s/%.*s", root, len, resource);
                if (!end)
                        break;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(dirs);
        return 0;
}

static int entries_for_plan(const mps_gate *g, const char *root, const plan *p, struct gate_entry **ret,
                            size_t *ret_n)
{
        size_t n = 0;
        for (size_t i = 0; p && i < p->n_resources; i++)
                n += p->resources[i].sharing == SHARING_MPS;
        struct gate_entry *entries = new0(struct gate_entry, n + 1);
        if (!entries)
                return -ENOMEM;
        size_t k = 0;
        int r = 0;
        for (size_t i = 0; r >= 0 && p && i < p->n_resources; i++) {
                const struct plan_resource *res = &p->resources[i];
                if (res->sharing != SHARING_MPS)
                        continue;
                struct gate_entry *e = &entries[k++];
                e->resource = strdup(res->name);
                r = e->resource ? 0 : -ENOMEM;
                if (r >= 0 && root)
                        r = resource_dirs(root, res->name, &e->dirs);
                /* Same root, same resource: what was seen still holds. */
                const struct gate_entry *old =
                        g->root && root && streq(g->root, root) ? gate_find(g, res->name) : NULL;
                if (old) {
                        e->started = old->started;
                        e->ready = old->ready;
                        e->known = old->known;
                }
        }
        if (r < 0) {
                entries_free(entries, k);
                return r;
        }
        *ret = entries;
        *ret_n = k;
        return 0;
}

int mps_gate_set_plan(mps_gate *g, const char *configured_root, const plan *p, char **ret_error)
{
        bool shares = false;
        for (size_t i = 0; p && i < p->n_resources; i++)
                shares = shares || p->resources[i].sharing == SHARING_MPS;
        _cleanup_free_ char *root = NULL, *error = NULL;
        int k = shares ? mps_root_resolve(configured_root, &root, &error) : 0;
        if (k < 0 && k != -ENOENT)
                return k;

        struct gate_entry *entries;
        size_t n;
        int r = entries_for_plan(g, root, p, &entries, &n);
        if (r < 0)
                return r;
        watch_stop(g);
        entries_free(g->entries, g->n_entries);
        g->entries = entries;
        g->n_entries = n;
        free(g->root);
        g->root = TAKE_PTR(root);

        if (g->root) {
                g->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
                if (g->inotify_fd < 0)
                        return negative_errno();
                r = loop_add_io(g->loop, g->inotify_fd, EPOLLIN, on_inotify, g, &g->source);
                if (r < 0)
                        return r;
                gate_check(g);
        }
        /* Without a root every MPS resource is held back, until a reload finds it. */
        return k < 0 ? error_set(ret_error, k, "%s", strna(error)) : 0;
}
