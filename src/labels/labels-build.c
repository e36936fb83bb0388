/* SPDX-License-Identifier: Apache-2.0 */
/* labels_build(): the labels of reference 8.1 from (inventory, config). Pure: no I/O, no clock. */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>

#include "base/error.h"
#include "base/strv.h"
#include "labels.h"

#define P "nvidia.com/"

/* Kubernetes label values are at most 63 characters. */
#define VALUE_MAX 63
/* Room for a value being composed from parts, before it is cut to VALUE_MAX. */
#define COMPOSE_MAX 128

void labels_sanitise(const char *in, char *out, size_t max_len)
{
        size_t n = 0;
        bool blank = false;
        max_len = MIN(max_len, (size_t)VALUE_MAX);
        for (const char *p = in; *p && n < max_len; p++) {
                unsigned char ch = (unsigned char)*p;
                if (isspace(ch)) {
                        blank = true;
                        continue;
                }
                if (!isalnum(ch) && ch != '-' && ch != '_' && ch != '.')
                        continue;
                if (blank && n > 0) {
                        if (n + 1 >= max_len)
                                break;
                        out[n++] = '-';
                }
                blank = false;
                out[n++] = (char)ch;
        }
        /* A label value must start and end with a letter or digit; upstream does not check, and NFD
         * then drops the label. */
        while (n > 0 && !isalnum((unsigned char)out[n - 1]))
                n--;
        out[n] = '\0';
        size_t skip = strspn(out, "-_.");
        if (skip > 0)
                memmove(out, out + skip, n - skip + 1);
}

/* Reference 8.1 "gpu.family". */
static const char *gpu_family(unsigned major, unsigned minor)
{
        switch (major) {
        case 1: return "tesla";
        case 2: return "fermi";
        case 3: return "kepler";
        case 5: return "maxwell";
        case 6: return "pascal";
        case 7: return minor < 5 ? "volta" : "turing";
        case 8: return minor < 9 ? "ampere" : minor == 9 ? "ada-lovelace" : "undefined";
        case 9: return "hopper";
        case 10:
        case 12: return "blackwell";
        case 13: return "rubin";
        default: return "undefined";
        }
}

/* A MIG profile as it may appear in a label key or value: '+' (as in "1g.10gb+me") is not allowed
 * there, so it becomes '-'. */
static void profile_for_label(const char *profile, char *out, size_t size)
{
        snprintf(out, size, "%s", profile);
        for (char *p = out; *p; p++)
                if (*p == '+')
                        *p = '-';
}

/* A device of a labelled group: a whole GPU (mig < 0) or one MIG device. */
struct device_ref {
        size_t gpu;
        int mig;
        size_t ordinal; /* position among the devices of its resource, for a `devices: N` count */
};

static const struct replicated_resource *sharing_entry(const config *c, const char *resource)
{
        if (c->sharing.strategy == SHARING_NONE)
                return NULL;
        for (size_t i = 0; i < c->sharing.n_resources; i++)
                if (c->sharing.resources[i].name && streq(c->sharing.resources[i].name, resource))
                        return &c->sharing.resources[i];
        return NULL;
}

static bool entry_selects(const struct replicated_resource *e, const inventory *inv,
                          const struct device_ref *d)
{
        if (e->devices_all || (!e->devices_list && e->devices_count == 0))
                return true;
        if (!e->devices_list)
                return d->ordinal < e->devices_count;

        const struct gpu *g = &inv->gpus[d->gpu];
        const struct mig_device *m = d->mig >= 0 ? &g->mig[d->mig] : NULL;
        char idx[32];
        if (m)
                snprintf(idx, sizeof idx, "%u:%u", g->index, m->index);
        else
                snprintf(idx, sizeof idx, "%u", g->index);
        STRV_FOREACH (s, e->devices_list)
                if (streq(*s, idx) || streq(*s, m ? m->uuid : g->uuid))
                        return true;
        return false;
}

struct sharing {
        unsigned replicas;
        const char *strategy;
        bool suffix; /* "-SHARED" on the product */
};

/* The sharing rule (docs/gfd.md): a group is shared when the config's entry for its resource name
 * selects at least one of its devices; replicas and strategy are then that entry's, and the product
 * gets "-SHARED" unless the entry renames the resource. */
static struct sharing group_sharing(const config *c, const inventory *inv, const char *resource,
                                    const struct device_ref *devs, size_t n)
{
        const struct replicated_resource *e = sharing_entry(c, resource);
        struct sharing s = { .replicas = 1, .strategy = "none" };
        if (!e || e->replicas < 2)
                return s;
        for (size_t i = 0; i < n; i++)
                if (entry_selects(e, inv, &devs[i])) {
                        s.replicas = e->replicas;
                        s.strategy = sharing_strategy_to_string(c->sharing.strategy);
                        s.suffix = isempty(e->rename);
                        break;
                }
        return s;
}

/* "<prefix>.<name>" */
static int set_key(labels *l, const char *prefix, const char *name, const char *fmt, ...) _printf_(4, 5);
static int set_key(labels *l, const char *prefix, const char *name, const char *fmt, ...)
{
        _cleanup_free_ char *key = NULL, *v = format_va(fmt);
        if (!v || asprintf(&key, "%s.%s", prefix, name) < 0)
                return -ENOMEM;
        return labels_set(l, key, v);
}

/* product, count, replicas, sharing-strategy, memory of one resource. */
static int set_resource(labels *l, const char *prefix, const char *product, const struct sharing *s,
                        size_t count, uint64_t memory_mib)
{
        char value[COMPOSE_MAX];
        int r;
        if (s->suffix && s->replicas > 1) {
                char base[VALUE_MAX + 1] = "";
                labels_sanitise(product, base, VALUE_MAX - strlen("-SHARED"));
                snprintf(value, sizeof value, "%s-SHARED", base);
        } else
                snprintf(value, sizeof value, "%s", product);
        if ((r = set_key(l, prefix, "product", "%s", value)) < 0 ||
            (r = set_key(l, prefix, "count", "%zu", count)) < 0 ||
            (r = set_key(l, prefix, "replicas", "%u", s->replicas)) < 0 ||
            (r = set_key(l, prefix, "sharing-strategy", "%s", s->strategy)) < 0)
                return r;
        if (memory_mib > 0)
                return set_key(l, prefix, "memory", "%" PRIu64, memory_mib);
        return 0;
}

/* multiprocessors, slices and engines of a MIG resource. */
static int set_mig_attributes(labels *l, const char *prefix, const struct mig_device *m)
{
        int r;
        if ((r = set_key(l, prefix, "multiprocessors", "%u", m->multiprocessors)) < 0 ||
            (r = set_key(l, prefix, "slices.gi", "%u", m->slices_gi)) < 0 ||
            (r = set_key(l, prefix, "slices.ci", "%u", m->slices_ci)) < 0 ||
            (r = set_key(l, prefix, "engines.copy", "%u", m->engines_copy)) < 0 ||
            (r = set_key(l, prefix, "engines.decoder", "%u", m->engines_decoder)) < 0 ||
            (r = set_key(l, prefix, "engines.encoder", "%u", m->engines_encoder)) < 0 ||
            (r = set_key(l, prefix, "engines.jpeg", "%u", m->engines_jpeg)) < 0 ||
            (r = set_key(l, prefix, "engines.ofa", "%u", m->engines_ofa)) < 0)
                return r;
        return 0;
}

/* "<sanitised parent name>-MIG-<profile>" */
static void mig_product(const struct gpu *parent, const char *profile, char *out, size_t size)
{
        char model[VALUE_MAX + 1] = "", p[32];
        profile_for_label(profile, p, sizeof p);
        size_t room = VALUE_MAX - strlen("-MIG-") - strlen(p);
        labels_sanitise(parent->name, model, room);
        snprintf(out, size, "%s-MIG-%s", model, p);
}

/* The whole-GPU labels (nvidia.com/gpu.*). Upstream labels every product and the last one wins;
 * we label the product with the most GPUs, the lowest GPU index breaking ties (docs/gfd.md). */
static int set_gpu_labels(labels *l, const inventory *inv, const config *c)
{
        char chosen[VALUE_MAX + 1] = "", name[VALUE_MAX + 1] = "";
        size_t best = 0, first = 0;
        for (size_t i = 0; i < inv->n_gpus; i++) {
                labels_sanitise(inv->gpus[i].name, name, VALUE_MAX);
                size_t n = 0;
                for (size_t j = 0; j < inv->n_gpus; j++) {
                        char other[VALUE_MAX + 1] = "";
                        labels_sanitise(inv->gpus[j].name, other, VALUE_MAX);
                        n += streq(name, other);
                }
                if (n > best) {
                        best = n;
                        first = i;
                        memcpy(chosen, name, sizeof chosen);
                }
        }

        _cleanup_free_ struct device_ref *devs = new0(struct device_ref, inv->n_gpus);
        if (!devs)
                return -ENOMEM;
        size_t n_devs = 0, n_mig_enabled = 0;
        for (size_t i = 0; i < inv->n_gpus; i++) {
                labels_sanitise(inv->gpus[i].name, name, VALUE_MAX);
                if (!streq(name, chosen))
                        continue;
                if (inv->gpus[i].mig_enabled) {
                        n_mig_enabled++;
                        continue;
                }
                /* `devices: N` counts GPUs by index on the node. */
                devs[n_devs++] = (struct device_ref){ .gpu = i, .mig = -1, .ordinal = i };
        }

        /* A MIG-enabled GPU is not shared whole: replicas 0 (upstream). */
        struct sharing s = n_devs == 0 && n_mig_enabled > 0
                                   ? (struct sharing){ .replicas = 0, .strategy = "none" }
                                   : group_sharing(c, inv, P "gpu", devs, n_devs);
        const struct gpu *g = &inv->gpus[first];
        int r = set_resource(l, P "gpu", chosen, &s, best, g->memory_mib);
        if (r < 0)
                return r;
        if (g->cc_major > 0) {
                if ((r = labels_set(l, P "gpu.family", gpu_family(g->cc_major, g->cc_minor))) < 0 ||
                    (r = labels_setf(l, P "gpu.compute.major", "%u", g->cc_major)) < 0 ||
                    (r = labels_setf(l, P "gpu.compute.minor", "%u", g->cc_minor)) < 0)
                        return r;
        }
        return 0;
}

/* MIG "single": the MIG devices are the node's nvidia.com/gpu. Valid when every GPU is MIG-enabled,
 * every one has MIG devices, and all have the same profile. */
static int set_mig_single(labels *l, const inventory *inv, const config *c)
{
        size_t n_enabled = 0, n_mig = 0;
        const struct mig_device *first = NULL;
        const struct gpu *first_parent = NULL, *enabled = NULL;
        bool same = true, empty = false;
        for (size_t i = 0; i < inv->n_gpus; i++) {
                const struct gpu *g = &inv->gpus[i];
                if (!g->mig_enabled)
                        continue;
                n_enabled++;
                empty = empty || g->n_mig == 0;
                if (!enabled)
                        enabled = g;
                for (size_t j = 0; j < g->n_mig; j++) {
                        if (!first) {
                                first = &g->mig[j];
                                first_parent = g;
                        } else if (!streq(first->profile, g->mig[j].profile))
                                same = false;
                        n_mig++;
                }
        }
        if (n_enabled == 0)
                return 0; /* no MIG: the whole-GPU labels stand */

        char product[COMPOSE_MAX];
        int r;
        if (n_enabled != inv->n_gpus || empty || !same) {
                char model[VALUE_MAX + 1] = "";
                labels_sanitise(enabled->name, model, VALUE_MAX - strlen("-MIG-INVALID"));
                snprintf(product, sizeof product, "%s-MIG-INVALID", model);
                if ((r = labels_set(l, P "gpu.product", product)) < 0 ||
                    (r = labels_set(l, P "gpu.count", "0")) < 0 ||
                    (r = labels_set(l, P "gpu.replicas", "0")) < 0 ||
                    (r = labels_set(l, P "gpu.sharing-strategy", "")) < 0 ||
                    (r = labels_set(l, P "gpu.memory", "0")) < 0)
                        return r;
                return 0;
        }

        _cleanup_free_ struct device_ref *devs = new0(struct device_ref, n_mig);
        if (!devs)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < inv->n_gpus; i++)
                for (size_t j = 0; j < inv->gpus[i].n_mig; j++, k++)
                        devs[k] = (struct device_ref){ .gpu = i, .mig = (int)j, .ordinal = k };
        struct sharing s = group_sharing(c, inv, P "gpu", devs, n_mig);
        mig_product(first_parent, first->profile, product, sizeof product);
        if ((r = set_resource(l, P "gpu", product, &s, n_mig, first->memory_mib)) < 0)
                return r;
        return set_mig_attributes(l, P "gpu", first);
}

/* MIG "mixed": one nvidia.com/mig-<profile>.* set per profile present. */
static int set_mig_mixed(labels *l, const inventory *inv, const config *c)
{
        size_t total = 0;
        for (size_t i = 0; i < inv->n_gpus; i++)
                if (inv->gpus[i].mig_enabled)
                        total += inv->gpus[i].n_mig;
        if (total == 0)
                return 0;
        _cleanup_free_ struct device_ref *devs = new0(struct device_ref, total);
        if (!devs)
                return -ENOMEM;

        for (size_t i = 0; i < inv->n_gpus; i++) {
                const struct gpu *g = &inv->gpus[i];
                if (!g->mig_enabled)
                        continue;
                for (size_t j = 0; j < g->n_mig; j++) {
                        const struct mig_device *m = &g->mig[j];
                        char p[32], prefix[64], product[COMPOSE_MAX];
                        profile_for_label(m->profile, p, sizeof p);
                        snprintf(prefix, sizeof prefix, P "mig-%s", p);
                        /* Handle each profile once, at its first device. */
                        _cleanup_free_ char *key = NULL;
                        if (asprintf(&key, "%s.product", prefix) < 0)
                                return -ENOMEM;
                        if (labels_get(l, key))
                                continue;

                        size_t n = 0;
                        for (size_t a = 0; a < inv->n_gpus; a++) {
                                if (!inv->gpus[a].mig_enabled)
                                        continue;
                                for (size_t b = 0; b < inv->gpus[a].n_mig; b++)
                                        if (streq(inv->gpus[a].mig[b].profile, m->profile)) {
                                                devs[n] = (struct device_ref){ .gpu = a,
                                                                               .mig = (int)b,
                                                                               .ordinal = n };
                                                n++;
                                        }
                        }
                        /* The resource is named like the label prefix: nvidia.com/mig-1g.5gb */
                        struct sharing s = group_sharing(c, inv, prefix, devs, n);
                        mig_product(g, m->profile, product, sizeof product);
                        int r = set_resource(l, prefix, product, &s, n, m->memory_mib);
                        if (r < 0)
                                return r;
                        r = set_mig_attributes(l, prefix, m);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int set_versions(labels *l, const inventory *inv, char **ret_error)
{
        /* "580.105.08" or "580.105": upstream keeps the parts as strings ("08" stays "08"). */
        char major[32], minor[32], rev[32] = "", extra;
        int n = sscanf(inv->driver_version, "%31[0-9].%31[0-9].%31[0-9]%c", major, minor, rev, &extra);
        if (n != 2 && n != 3)
                return error_set(ret_error, -EINVAL, "The driver version \"%s\" is not of the form X.Y[.Z].",
                                 inv->driver_version);
        int r;
        if ((r = labels_set(l, P "cuda.driver.major", major)) < 0 ||
            (r = labels_set(l, P "cuda.driver.minor", minor)) < 0 ||
            (r = labels_set(l, P "cuda.driver.rev", rev)) < 0 ||
            (r = labels_set(l, P "cuda.driver-version.major", major)) < 0 ||
            (r = labels_set(l, P "cuda.driver-version.minor", minor)) < 0 ||
            (r = labels_set(l, P "cuda.driver-version.revision", rev)) < 0 ||
            (r = labels_set(l, P "cuda.driver-version.full", inv->driver_version)) < 0)
                return r;

        if (inv->cuda_driver_version > 0) {
                int cmajor = inv->cuda_driver_version / 1000, cminor = inv->cuda_driver_version % 1000 / 10;
                if ((r = labels_setf(l, P "cuda.runtime.major", "%d", cmajor)) < 0 ||
                    (r = labels_setf(l, P "cuda.runtime.minor", "%d", cminor)) < 0 ||
                    (r = labels_setf(l, P "cuda.runtime-version.major", "%d", cmajor)) < 0 ||
                    (r = labels_setf(l, P "cuda.runtime-version.minor", "%d", cminor)) < 0 ||
                    (r = labels_setf(l, P "cuda.runtime-version.full", "%d.%d", cmajor, cminor)) < 0)
                        return r;
        }
        return 0;
}

/* compute when every GPU is a 3D controller (PCI class 0x0302xx), graphics when every one is a VGA
 * controller (0x0300xx), unknown when they differ or a class is unknown. */
static const char *gpu_mode(const inventory *inv)
{
        uint32_t cls = inv->gpus[0].pci_class >> 8;
        for (size_t i = 1; i < inv->n_gpus; i++)
                if (inv->gpus[i].pci_class >> 8 != cls)
                        return "unknown";
        return cls == 0x0302 ? "compute" : cls == 0x0300 ? "graphics" : "unknown";
}

int labels_build(const inventory *inv, const config *c, const char *machine_type, int64_t timestamp,
                 labels **ret, char **ret_error)
{
        _cleanup_(labels_freep) labels *l = NULL;
        int r = labels_new(&l);
        if (r < 0)
                return r;

        if (timestamp >= 0 && (r = labels_setf(l, P "gfd.timestamp", "%" PRId64, timestamp)) < 0)
                return r;
        if ((r = labels_set(l, P "vgpu.present", "false")) < 0)
                return r;
        if (!inv || inv->n_gpus == 0) {
                *ret = TAKE_PTR(l);
                return 0;
        }

        bool mig_capable = false, mig_enabled = false;
        for (size_t i = 0; i < inv->n_gpus; i++) {
                mig_capable = mig_capable || inv->gpus[i].mig_capable;
                mig_enabled = mig_enabled || inv->gpus[i].mig_enabled;
        }
        if (c->sharing.strategy == SHARING_MPS && mig_enabled)
                return error_set(
                        ret_error, -EINVAL,
                        "MPS sharing is not supported on a node with MIG-enabled GPUs; disable MIG or use "
                        "time-slicing.");

        char machine[VALUE_MAX + 1] = "";
        if (machine_type)
                labels_sanitise(machine_type, machine, VALUE_MAX);
        if ((r = labels_set(l, P "gpu.machine", machine[0] ? machine : "unknown")) < 0)
                return r;
        if ((r = set_versions(l, inv, ret_error)) < 0)
                return r;
        if ((r = labels_set(l, P "mig.capable", mig_capable ? "true" : "false")) < 0 ||
            (r = labels_set(l, P "mps.capable", c->sharing.strategy == SHARING_MPS ? "true" : "false")) <
                    0 ||
            (r = labels_set(l, P "gpu.mode", gpu_mode(inv))) < 0)
                return r;
        if ((r = set_gpu_labels(l, inv, c)) < 0)
                return r;
        _cleanup_free_ char *clique = NULL;
        if ((r = labels_gpu_clique(inv, &clique, NULL, ret_error)) < 0 ||
            (clique && (r = labels_set(l, P "gpu.clique", clique)) < 0))
                return r;

        switch (c->flags.mig_strategy) {
        case MIG_STRATEGY_SINGLE:
                if ((r = labels_set(l, P "mig.strategy", "single")) < 0 ||
                    (r = set_mig_single(l, inv, c)) < 0)
                        return r;
                break;
        case MIG_STRATEGY_MIXED:
                if ((r = labels_set(l, P "mig.strategy", "mixed")) < 0 || (r = set_mig_mixed(l, inv, c)) < 0)
                        return r;
                break;
        default: break;
        }

        *ret = TAKE_PTR(l);
        return 0;
}
