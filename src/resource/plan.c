/* SPDX-License-Identifier: Apache-2.0 */
/* (inventory, config) -> the resources this node advertises. */
#include "plan.h"

#include <stdarg.h>
#include <stdio.h>

#include "base/strv.h"

/* One kubelet-facing device before replication: a whole GPU or one MIG device. */
struct unit {
        unsigned gpu;
        int mig;
        char *name;     /* its resource before sharing */
        ssize_t shared; /* index into config.sharing.resources, -1 when not shared */
};

struct builder {
        const inventory *inv;
        const config *c;
        struct unit *units;
        size_t n_units;
        char *error;
};

_printf_(2, 3) static int fail(struct builder *b, const char *fmt, ...)
{
        free(b->error);
        b->error = format_va(fmt);
        return b->error ? -EINVAL : -ENOMEM;
}

static void plan_resource_done(struct plan_resource *r)
{
        for (size_t i = 0; i < r->n_devices; i++) {
                free(r->devices[i].id);
                free(r->devices[i].runtime_id);
                strv_free(r->devices[i].paths);
        }
        free(r->devices);
        free(r->by_id);
        free(r->name);
        free(r->socket_name);
}

plan *plan_free(plan *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_resources; i++)
                plan_resource_done(&p->resources[i]);
        free(p->resources);
        return mfree(p);
}

static int add_unit(struct builder *b, unsigned gpu, int mig, const char *name)
{
        struct unit *n = realloc(b->units, sizeof(struct unit) * (b->n_units + 1));
        if (!n)
                return -ENOMEM;
        b->units = n;
        char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        b->units[b->n_units++] = (struct unit){ .gpu = gpu, .mig = mig, .name = copy, .shared = -1 };
        return 0;
}

static const struct gpu *unit_gpu(const struct builder *b, const struct unit *u)
{
        return &b->inv->gpus[u->gpu];
}

static const struct mig_device *unit_mig(const struct builder *b, const struct unit *u)
{
        return u->mig < 0 ? NULL : &b->inv->gpus[u->gpu].mig[u->mig];
}

static const char *unit_uuid(const struct builder *b, const struct unit *u)
{
        return u->mig < 0 ? unit_gpu(b, u)->uuid : unit_mig(b, u)->uuid;
}

/* Compute-instance-sliced profiles ("1c.3g.20gb") get no resource in upstream's mixed strategy. */
static bool profile_is_ci_sliced(const char *profile)
{
        const char *p = profile;
        while (*p >= '0' && *p <= '9')
                p++;
        return p > profile && *p == 'c' && p[1] == '.';
}

static bool mig_same_type(const struct mig_device *a, const struct mig_device *b)
{
        return streq(a->profile, b->profile) && a->memory_mib == b->memory_mib &&
               a->multiprocessors == b->multiprocessors && a->slices_gi == b->slices_gi &&
               a->slices_ci == b->slices_ci && a->engines_copy == b->engines_copy &&
               a->engines_decoder == b->engines_decoder && a->engines_encoder == b->engines_encoder &&
               a->engines_jpeg == b->engines_jpeg && a->engines_ofa == b->engines_ofa;
}

static int units_none(struct builder *b)
{
        for (size_t g = 0; g < b->inv->n_gpus; g++) {
                int r = add_unit(b, (unsigned)g, -1, "nvidia.com/gpu");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Upstream's single strategy: all GPUs MIG-enabled with one MIG device type, or none MIG-enabled. */
static int units_single(struct builder *b)
{
        const inventory *inv = b->inv;
        const struct gpu *on = NULL, *off = NULL;
        for (size_t g = 0; g < inv->n_gpus; g++) {
                if (inv->gpus[g].mig_enabled)
                        on = on ? on : &inv->gpus[g];
                else
                        off = off ? off : &inv->gpus[g];
        }
        if (!on)
                return units_none(b);
        if (off)
                return fail(b,
                            "MIG strategy single: all devices on the node must be configured with the same "
                            "migEnabled value (GPU %u has MIG enabled, GPU %u does not)",
                            on->index, off->index);

        const struct mig_device *first = NULL;
        const struct gpu *first_gpu = NULL;
        for (size_t g = 0; g < inv->n_gpus; g++) {
                const struct gpu *gpu = &inv->gpus[g];
                if (gpu->n_mig == 0)
                        return fail(b, "MIG strategy single: GPU %u (%s) has MIG enabled but no MIG devices",
                                    gpu->index, gpu->uuid);
                for (size_t m = 0; m < gpu->n_mig; m++) {
                        if (!first) {
                                first = &gpu->mig[m];
                                first_gpu = gpu;
                        } else if (!mig_same_type(first, &gpu->mig[m]))
                                return fail(
                                        b,
                                        "MIG strategy single: more than one MIG device type present on node "
                                        "(%s on GPU %u, %s on GPU %u)",
                                        first->profile, first_gpu->index, gpu->mig[m].profile, gpu->index);
                        int r = add_unit(b, (unsigned)g, (int)m, "nvidia.com/gpu");
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int units_mixed(struct builder *b)
{
        for (size_t g = 0; g < b->inv->n_gpus; g++) {
                const struct gpu *gpu = &b->inv->gpus[g];
                int r;
                if (!gpu->mig_enabled) {
                        r = add_unit(b, (unsigned)g, -1, "nvidia.com/gpu");
                        if (r < 0)
                                return r;
                        continue;
                }
                for (size_t m = 0; m < gpu->n_mig; m++) {
                        if (profile_is_ci_sliced(gpu->mig[m].profile))
                                continue;
                        char name[64];
                        snprintf(name, sizeof name, "nvidia.com/mig-%s", gpu->mig[m].profile);
                        for (char *p = name; *p; p++)
                                if (*p == '+')
                                        *p = '.';
                        r = add_unit(b, (unsigned)g, (int)m, name);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int unit_cmp(const void *x, const void *y, void *userdata)
{
        const struct builder *b = userdata;
        const struct unit *a = x, *c = y;
        unsigned ia = unit_gpu(b, a)->index, ic = unit_gpu(b, c)->index;
        if (ia != ic)
                return ia < ic ? -1 : 1;
        long ma = a->mig < 0 ? -1 : (long)unit_mig(b, a)->index,
             mc = c->mig < 0 ? -1 : (long)unit_mig(b, c)->index;
        return ma < mc ? -1 : ma > mc ? 1 : 0;
}

/* Whether a `devices` entry names this unit: a GPU index or UUID names the GPU and its MIG devices. */
static bool selector_matches(const struct builder *b, const struct unit *u, const char *sel)
{
        const struct gpu *gpu = unit_gpu(b, u);
        const struct mig_device *mig = unit_mig(b, u);
        if (startswith(sel, "GPU-"))
                return streq(gpu->uuid, sel);
        if (startswith(sel, "MIG-"))
                return mig && streq(mig->uuid, sel);
        unsigned gi, mi;
        char tail;
        if (strchr(sel, ':'))
                return mig && sscanf(sel, "%u:%u%c", &gi, &mi, &tail) == 2 && gpu->index == gi &&
                       mig->index == mi;
        return sscanf(sel, "%u%c", &gi, &tail) == 1 && gpu->index == gi;
}

static int share_unit(struct builder *b, struct unit *u, size_t k)
{
        const struct replicated_resource *rr = b->c->sharing.resources;
        if (u->shared >= 0 && (size_t)u->shared != k)
                return fail(b, "sharing resources %zu and %zu (%s) both select device %s", (size_t)u->shared,
                            k, rr[k].name, unit_uuid(b, u));
        u->shared = (ssize_t)k;
        return 0;
}

static int apply_sharing(struct builder *b)
{
        const config *c = b->c;
        if (c->sharing.strategy == SHARING_NONE)
                return 0;
        for (size_t k = 0; k < c->sharing.n_resources; k++) {
                const struct replicated_resource *rr = &c->sharing.resources[k];
                int r;
                if (rr->devices_list) {
                        STRV_FOREACH (sel, rr->devices_list) {
                                bool found = false;
                                for (size_t i = 0; i < b->n_units; i++) {
                                        struct unit *u = &b->units[i];
                                        if (!streq(u->name, rr->name) || !selector_matches(b, u, *sel))
                                                continue;
                                        found = true;
                                        r = share_unit(b, u, k);
                                        if (r < 0)
                                                return r;
                                }
                                if (!found)
                                        return fail(b,
                                                    "sharing resource %s: devices entry \"%s\" names no %s "
                                                    "device "
                                                    "on this node",
                                                    rr->name, *sel, rr->name);
                        }
                        continue;
                }
                /* "all", or the first N devices of the resource (fewer when the node has fewer). */
                unsigned taken = 0;
                for (size_t i = 0; i < b->n_units; i++) {
                        struct unit *u = &b->units[i];
                        if (!streq(u->name, rr->name))
                                continue;
                        if (!rr->devices_all && rr->devices_count > 0 && taken >= rr->devices_count)
                                break;
                        r = share_unit(b, u, k);
                        if (r < 0)
                                return r;
                        taken++;
                }
        }
        return 0;
}

static const char *unit_resource(const struct builder *b, const struct unit *u)
{
        if (u->shared < 0)
                return u->name;
        const struct replicated_resource *rr = &b->c->sharing.resources[u->shared];
        return rr->rename ? rr->rename : rr->name;
}

static unsigned unit_replicas(const struct builder *b, const struct unit *u)
{
        return u->shared < 0 ? 1 : b->c->sharing.resources[u->shared].replicas;
}

/* The capability node of a MIG device's GPU instance (ci false) or compute instance (ci true). */
static int cap_path(struct builder *b, const struct gpu *gpu, const struct mig_device *m, bool ci,
                    char **ret)
{
        int minor = ci ? m->ci_cap_minor : m->gi_cap_minor;
        if (minor >= 0)
                return asprintf(ret, "/dev/nvidia-caps/nvidia-cap%d", minor) < 0 ? -ENOMEM : 0;
        if (b->inv->mig_minors_error < 0)
                return fail(b, "cannot read %s, needed for the device nodes of MIG devices: %s",
                            strna(b->inv->mig_minors_path), strerror(-b->inv->mig_minors_error));
        if (!ci)
                return fail(b, "mig-minors has no gpu%u/gi%u/access entry for GPU %u (%s)", gpu->minor,
                            m->gi_id, gpu->index, gpu->uuid);
        return fail(b, "mig-minors has no gpu%u/gi%u/ci%u/access entry for GPU %u (%s)", gpu->minor,
                    m->gi_id, m->ci_id, gpu->index, gpu->uuid);
}

static int device_fill(struct builder *b, const struct unit *u, int replica, struct plan_device *d)
{
        const struct gpu *gpu = unit_gpu(b, u);
        const struct mig_device *mig = unit_mig(b, u);
        const char *uuid = unit_uuid(b, u);
        int r;

        d->gpu = u->gpu;
        d->mig = u->mig;
        d->replica = replica;
        d->numa_node = gpu->numa_node;
        r = replica >= 0 ? asprintf(&d->id, "%s::%d", uuid, replica) : asprintf(&d->id, "%s", uuid);
        if (r < 0) {
                d->id = NULL;
                return -ENOMEM;
        }
        if (b->c->flags.plugin.device_id_strategy == DEVICE_ID_INDEX)
                r = mig ? asprintf(&d->runtime_id, "%u:%u", gpu->index, mig->index)
                        : asprintf(&d->runtime_id, "%u", gpu->index);
        else
                r = asprintf(&d->runtime_id, "%s", uuid);
        if (r < 0) {
                d->runtime_id = NULL;
                return -ENOMEM;
        }

        char *p;
        if (asprintf(&p, "/dev/nvidia%u", gpu->minor) < 0)
                return -ENOMEM;
        r = strv_push(&d->paths, p);
        if (r < 0) {
                free(p);
                return r;
        }
        if (!mig)
                return 0;
        for (int ci = 0; ci < 2; ci++) {
                r = cap_path(b, gpu, mig, ci, &p);
                if (r < 0)
                        return r;
                r = strv_push(&d->paths, p);
                if (r < 0) {
                        free(p);
                        return r;
                }
        }
        return 0;
}

static int by_id_cmp(const void *x, const void *y, void *userdata)
{
        const struct plan_resource *r = userdata;
        return strcmp(r->devices[*(const size_t *)x].id, r->devices[*(const size_t *)y].id);
}

static int resource_build(struct builder *b, const char *name, struct plan_resource *res)
{
        const struct unit *first = NULL;
        size_t n = 0;
        for (size_t i = 0; i < b->n_units; i++) {
                const struct unit *u = &b->units[i];
                if (!streq(unit_resource(b, u), name))
                        continue;
                if (!first)
                        first = u;
                else if (unit_replicas(b, u) != unit_replicas(b, first) ||
                         (u->shared < 0) != (first->shared < 0))
                        return fail(b,
                                    "resource %s would hold devices with different sharing (%s with %u "
                                    "replicas, "
                                    "%s with %u); give each group its own rename",
                                    name, unit_uuid(b, first), unit_replicas(b, first), unit_uuid(b, u),
                                    unit_replicas(b, u));
                n += unit_replicas(b, u);
        }

        res->name = strdup(name);
        const char *slash = strchr(name, '/');
        if (!res->name || asprintf(&res->socket_name, "nvidia-%s.sock", slash ? slash + 1 : name) < 0) {
                res->socket_name = NULL;
                return -ENOMEM;
        }
        bool shared = first->shared >= 0;
        res->sharing = shared ? b->c->sharing.strategy : SHARING_NONE;
        res->replicas = unit_replicas(b, first);
        res->fail_requests_greater_than_one = shared && b->c->sharing.fail_requests_greater_than_one;
        res->devices = new0(struct plan_device, n);
        res->by_id = new0(size_t, n);
        if (!res->devices || !res->by_id)
                return -ENOMEM;
        for (size_t i = 0; i < b->n_units; i++) {
                const struct unit *u = &b->units[i];
                if (!streq(unit_resource(b, u), name))
                        continue;
                unsigned reps = unit_replicas(b, u);
                for (unsigned k = 0; k < reps; k++) {
                        struct plan_device *d = &res->devices[res->n_devices++];
                        int r = device_fill(b, u, shared ? (int)k : -1, d);
                        if (r < 0)
                                return r;
                }
        }
        for (size_t i = 0; i < n; i++)
                res->by_id[i] = i;
        qsort_r(res->by_id, n, sizeof(size_t), by_id_cmp, res);
        return 0;
}

static void builder_done(struct builder *b)
{
        for (size_t i = 0; i < b->n_units; i++)
                free(b->units[i].name);
        free(b->units);
        free(b->error);
}

int plan_build(const inventory *inv, const config *c, plan **ret, char **ret_error)
{
        struct builder b = { .inv = inv, .c = c };
        _cleanup_(plan_freep) plan *p = NULL;
        _cleanup_strv_free_ char **names = NULL;
        int r;

        switch (c->flags.mig_strategy) {
        case MIG_STRATEGY_SINGLE: r = units_single(&b); break;
        case MIG_STRATEGY_MIXED: r = units_mixed(&b); break;
        default: r = units_none(&b); break;
        }
        if (r < 0)
                goto finish;
        if (b.n_units > 0) /* qsort_r(NULL, 0, ...) is undefined (UBSan: a node without GPUs) */
                qsort_r(b.units, b.n_units, sizeof(struct unit), unit_cmp, &b);
        r = apply_sharing(&b);
        if (r < 0)
                goto finish;

        for (size_t i = 0; i < b.n_units; i++) {
                const char *name = unit_resource(&b, &b.units[i]);
                if (strv_contains(names, name))
                        continue;
                r = strv_extend(&names, name);
                if (r < 0)
                        goto finish;
        }
        strv_sort(names);

        p = new0(plan, 1);
        size_t n = strv_length(names);
        if (!p || !(p->resources = new0(struct plan_resource, MAX(n, 1u)))) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t i = 0; i < n; i++) {
                p->n_resources = i + 1;
                r = resource_build(&b, names[i], &p->resources[i]);
                if (r < 0)
                        goto finish;
        }
        *ret = TAKE_PTR(p);
        r = 0;
finish:
        if (r < 0 && ret_error && b.error)
                *ret_error = TAKE_PTR(b.error);
        builder_done(&b);
        return r;
}

char *plan_describe(const plan *p)
{
        if (!p || p->n_resources == 0)
                return strdup("nothing");
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        for (size_t i = 0; i < p->n_resources; i++) {
                const struct plan_resource *r = &p->resources[i];
                /* Devices are sorted by GPU, MIG device, replica: a unit's replicas are consecutive. */
                size_t units = 0;
                bool mig = false;
                for (size_t k = 0; k < r->n_devices; k++) {
                        const struct plan_device *d = &r->devices[k];
                        mig = mig || d->mig >= 0;
                        units +=
                                k == 0 || r->devices[k - 1].gpu != d->gpu || r->devices[k - 1].mig != d->mig;
                }
                fprintf(f, "%s%s: %zu %s%s", i ? ", " : "", r->name, units, mig ? "MIG device" : "GPU",
                        units == 1 ? "" : "s");
                if (r->replicas > 1)
                        fprintf(f, " x %u replicas", r->replicas);
                if (r->sharing == SHARING_TIME_SLICING)
                        fputs(" (time-slicing)", f);
                else if (r->sharing == SHARING_MPS)
                        fputs(" (MPS)", f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

const struct plan_resource *plan_find_resource(const plan *p, const char *name)
{
        for (size_t i = 0; p && i < p->n_resources; i++)
                if (streq(p->resources[i].name, name))
                        return &p->resources[i];
        return NULL;
}

ssize_t plan_resource_find_device(const struct plan_resource *r, const char *id)
{
        size_t lo = 0, hi = r->n_devices;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(r->devices[r->by_id[mid]].id, id);
                if (c == 0)
                        return (ssize_t)r->by_id[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -1;
}

bool plan_resource_equal(const struct plan_resource *a, const struct plan_resource *b)
{
        if (!streq(a->name, b->name) || !streq(a->socket_name, b->socket_name) || a->sharing != b->sharing ||
            a->replicas != b->replicas ||
            a->fail_requests_greater_than_one != b->fail_requests_greater_than_one ||
            a->n_devices != b->n_devices)
                return false;
        for (size_t i = 0; i < a->n_devices; i++) {
                const struct plan_device *x = &a->devices[i], *y = &b->devices[i];
                if (!streq(x->id, y->id) || !streq(x->runtime_id, y->runtime_id) || x->gpu != y->gpu ||
                    x->mig != y->mig || x->replica != y->replica || x->numa_node != y->numa_node ||
                    !strv_equal(x->paths, y->paths))
                        return false;
        }
        return true;
}
