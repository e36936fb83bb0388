/* SPDX-License-Identifier: Apache-2.0 */
#include "mps/mps-spec.h"

#include <inttypes.h>
#include <stdarg.h>

#include "base/strv.h"

unsigned mps_max_clients(unsigned cc_major, unsigned cc_minor)
{
        return cc_major > 7 || (cc_major == 7 && cc_minor >= 5) ? 48 : 16;
}

void mps_spec_done(struct mps_spec *s)
{
        if (!s)
                return;
        free(s->resource);
        free(s->gpus);
        free(s->error);
        *s = (struct mps_spec){};
}

mps_specs *mps_specs_free(mps_specs *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                mps_spec_done(&s->specs[i]);
        free(s->specs);
        free(s);
        return NULL;
}

int mps_spec_copy(const struct mps_spec *s, struct mps_spec *ret)
{
        struct mps_spec c = { .thread_percentage = s->thread_percentage, .n_gpus = s->n_gpus };
        c.resource = strdup(s->resource);
        c.error = s->error ? strdup(s->error) : NULL;
        c.gpus = s->n_gpus ? new0(struct mps_gpu_limit, s->n_gpus) : NULL;
        if (!c.resource || (s->error && !c.error) || (s->n_gpus && !c.gpus)) {
                mps_spec_done(&c);
                return -ENOMEM;
        }
        if (s->n_gpus)
                memcpy(c.gpus, s->gpus, sizeof(struct mps_gpu_limit) * s->n_gpus);
        *ret = c;
        return 0;
}

bool mps_spec_equal(const struct mps_spec *a, const struct mps_spec *b)
{
        if (!streq(a->resource, b->resource) || a->thread_percentage != b->thread_percentage ||
            a->n_gpus != b->n_gpus || !streq(strempty(a->error), strempty(b->error)))
                return false;
        for (size_t i = 0; i < a->n_gpus; i++)
                if (!streq(a->gpus[i].uuid, b->gpus[i].uuid) || a->gpus[i].limit_mib != b->gpus[i].limit_mib)
                        return false;
        return true;
}

_printf_(2, 3) static int spec_fail(struct mps_spec *s, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        free(s->error);
        int r = vasprintf(&s->error, fmt, ap);
        va_end(ap);
        if (r < 0) {
                s->error = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* The GPUs of one resource with their replica counts, in NVML index order. */
static int spec_fill(const inventory *inv, const struct plan_resource *res, struct mps_spec *s)
{
        s->resource = strdup(res->name);
        s->gpus = new0(struct mps_gpu_limit, inv->n_gpus ? inv->n_gpus : 1);
        if (!s->resource || !s->gpus)
                return -ENOMEM;

        for (size_t i = 0; i < res->n_devices; i++) {
                const struct plan_device *d = &res->devices[i];
                if (d->mig >= 0)
                        return spec_fail(s, "MPS sharing is not supported for MIG devices (%s is one)",
                                         inv->gpus[d->gpu].mig[d->mig].uuid);
        }
        for (unsigned g = 0; g < inv->n_gpus; g++) {
                unsigned replicas = 0;
                for (size_t i = 0; i < res->n_devices; i++)
                        if (res->devices[i].gpu == g)
                                replicas++;
                if (replicas == 0)
                        continue;
                const struct gpu *gpu = &inv->gpus[g];
                unsigned max = mps_max_clients(gpu->cc_major, gpu->cc_minor);
                if (replicas > max)
                        return spec_fail(
                                s,
                                "%u replicas of GPU %u (%s, compute capability %u.%u) exceed the %u "
                                "clients an MPS server supports there",
                                replicas, gpu->index, gpu->uuid, gpu->cc_major, gpu->cc_minor, max);
                struct mps_gpu_limit *l = &s->gpus[s->n_gpus++];
                snprintf(l->uuid, sizeof l->uuid, "%s", gpu->uuid);
                l->index = gpu->index;
                l->replicas = replicas;
                l->limit_mib = gpu->memory_mib / replicas;
        }
        /* The plan gives every GPU of a resource the same replica count. */
        s->thread_percentage = s->n_gpus > 0 ? 100 / s->gpus[0].replicas : 100;
        return 0;
}

int mps_specs_build(const inventory *inv, const plan *p, mps_specs **ret)
{
        _cleanup_(mps_specs_freep) mps_specs *s = new0(mps_specs, 1);
        if (!s)
                return -ENOMEM;
        s->specs = new0(struct mps_spec, p->n_resources ? p->n_resources : 1);
        if (!s->specs)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_resources; i++) {
                const struct plan_resource *res = &p->resources[i];
                if (res->sharing != SHARING_MPS)
                        continue;
                int r = spec_fill(inv, res, &s->specs[s->n++]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

char *mps_spec_visible_devices(const struct mps_spec *s)
{
        _cleanup_strv_free_ char **l = new0(char *, 1);
        if (!l)
                return NULL;
        for (size_t i = 0; i < s->n_gpus; i++)
                if (strv_extend(&l, s->gpus[i].uuid) < 0)
                        return NULL;
        return strv_join(l, ",");
}

int mps_spec_commands(const struct mps_spec *s, char ***ret)
{
        _cleanup_strv_free_ char **l = new0(char *, 1);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_gpus; i++) {
                char *cmd;
                if (asprintf(&cmd, "set_default_device_pinned_mem_limit %s %" PRIu64 "M", s->gpus[i].uuid,
                             s->gpus[i].limit_mib) < 0)
                        return -ENOMEM;
                int r = strv_push(&l, cmd);
                if (r < 0) {
                        free(cmd);
                        return r;
                }
        }
        char *cmd;
        if (asprintf(&cmd, "set_default_active_thread_percentage %u", s->thread_percentage) < 0)
                return -ENOMEM;
        int r = strv_push(&l, cmd);
        if (r < 0) {
                free(cmd);
                return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}
