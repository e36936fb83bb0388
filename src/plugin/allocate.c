/* SPDX-License-Identifier: Apache-2.0 */
#include "plugin/allocate.h"

#include <sys/random.h>

#include "base/error.h"
#include "base/fileio.h"

#define CDI_KIND                   "k8s.device-plugin.nvidia.com/gpu"
#define CDI_IMEX_KIND              "k8s.device-plugin.nvidia.com/imex-channel"
#define VOLUME_MOUNT_ROOT          "/var/run/nvidia-container-devices"
#define IMEX_CHANNEL_DEVICE_FORMAT "/dev/nvidia-caps-imex-channels/channel%u"

struct allocate_response *allocate_response_free(struct allocate_response *r)
{
        if (!r)
                return NULL;
        strv_free(r->envs);
        strv_free(r->annotations);
        for (size_t i = 0; i < r->n_mounts; i++) {
                free(r->mounts[i].container_path);
                free(r->mounts[i].host_path);
        }
        free(r->mounts);
        for (size_t i = 0; i < r->n_devices; i++) {
                free(r->devices[i].container_path);
                free(r->devices[i].host_path);
                free(r->devices[i].permissions);
        }
        free(r->devices);
        strv_free(r->cdi_devices);
        free(r);
        return NULL;
}

/* Sets key in a "key","value" pair list, replacing an earlier value (later strategies win, as upstream). */
static int pairs_set(char ***pairs, const char *key, const char *value)
{
        for (char **p = *pairs; p && p[0]; p += 2)
                if (streq(p[0], key)) {
                        char *v = strdup(value);
                        if (!v)
                                return -ENOMEM;
                        free(p[1]);
                        p[1] = v;
                        return 0;
                }
        int r = strv_extend(pairs, key);
        if (r < 0)
                return r;
        return strv_extend(pairs, value);
}

const char *allocate_response_env(const struct allocate_response *r, const char *key)
{
        for (char **p = r->envs; p && p[0]; p += 2)
                if (streq(p[0], key))
                        return p[1];
        return NULL;
}

static int add_mount(struct allocate_response *r, const char *container_path, const char *host_path, bool ro)
{
        for (size_t i = 0; i < r->n_mounts; i++)
                if (streq(r->mounts[i].container_path, container_path))
                        return 0; /* the kubelet keys mounts by container path, first wins */
        struct mount_spec *m = realloc(r->mounts, sizeof(*m) * (r->n_mounts + 1));
        if (!m)
                return -ENOMEM;
        r->mounts = m;
        m = &r->mounts[r->n_mounts];
        *m = (struct mount_spec){ strdup(container_path), strdup(host_path), ro };
        r->n_mounts++;
        if (!m->container_path || !m->host_path)
                return -ENOMEM;
        return 0;
}

static int add_device(struct allocate_response *r, const char *dev_root, const char *path)
{
        for (size_t i = 0; i < r->n_devices; i++)
                if (streq(r->devices[i].container_path, path))
                        return 0;
        struct device_spec *d = realloc(r->devices, sizeof(*d) * (r->n_devices + 1));
        if (!d)
                return -ENOMEM;
        r->devices = d;
        d = &r->devices[r->n_devices];
        *d = (struct device_spec){ strdup(path), path_join_root(dev_root, path), strdup("rw") };
        r->n_devices++;
        if (!d->container_path || !d->host_path || !d->permissions)
                return -ENOMEM;
        return 0;
}

/* A peer's ID is quoted up to this many bytes (a request may carry megabytes in one ID), control
 * characters as '?': the message ends up in the log, which must stay one line per message. */
#define ID_IN_ERROR_MAX 256u

static const char *quote_id(const char *id, char buf[static ID_IN_ERROR_MAX + 4])
{
        size_t n = 0;
        for (; n < ID_IN_ERROR_MAX && id[n]; n++)
                buf[n] = (unsigned char)id[n] < 0x20 || id[n] == 0x7f ? '?' : id[n];
        strcpy(buf + n, id[n] ? "..." : "");
        return buf;
}

static int random_uuid(char out[37])
{
        uint8_t b[16];
        if (getrandom(b, sizeof b, 0) != sizeof b)
                return -EIO;
        b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
        b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}

/* ---- the strategies --------------------------------------------------------------------------------- */

/* What every strategy reads and writes for one container. */
struct allocation {
        const struct allocate_context *ctx;
        const config *c;
        const struct plan_device **devs; /* the requested devices, each once, in request order */
        size_t n_devs;
        char **runtime_ids; /* what the runtime names them by; replicas of one GPU once */
        struct allocate_response *resp;
};

static unsigned list_strategies(const struct allocation *a)
{
        return a->c->flags.plugin.device_list_strategy;
}

/* CDI device names: the devices, then the IMEX channels. */
static int cdi_names(const struct allocation *a, char ***ret)
{
        _cleanup_strv_free_ char **names = new0(char *, 1);
        if (!names)
                return -ENOMEM;
        STRV_FOREACH (id, a->runtime_ids)
                if (strv_extendf(&names, CDI_KIND "=%s", *id) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < a->c->imex.n_channel_ids; i++)
                if (strv_extendf(&names, CDI_IMEX_KIND "=%u", a->c->imex.channel_ids[i]) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(names);
        return 0;
}

static bool want_cdi_annotations(const struct allocation *a)
{
        return list_strategies(a) & DEVICE_LIST_CDI_ANNOTATIONS;
}

/* "<prefix>nvidia-device-plugin_<uuid>": "<kind>=<id>,...". */
static int apply_cdi_annotations(struct allocation *a)
{
        _cleanup_strv_free_ char **names = NULL;
        int r = cdi_names(a, &names);
        if (r < 0 || !names[0])
                return r;
        char uuid[37];
        if (a->ctx->annotation_uuid)
                snprintf(uuid, sizeof uuid, "%s", a->ctx->annotation_uuid);
        else if ((r = random_uuid(uuid)) < 0)
                return r;
        _cleanup_free_ char *key = NULL, *value = strv_join(names, ",");
        if (asprintf(&key, "%snvidia-device-plugin_%s", a->c->flags.plugin.cdi_annotation_prefix, uuid) <
                    0 ||
            !value)
                return -ENOMEM;
        return pairs_set(&a->resp->annotations, key, value);
}

static bool want_cdi_cri(const struct allocation *a)
{
        return list_strategies(a) & DEVICE_LIST_CDI_CRI;
}

static int apply_cdi_cri(struct allocation *a)
{
        _cleanup_strv_free_ char **names = NULL;
        int r = cdi_names(a, &names);
        if (r >= 0 && names[0])
                a->resp->cdi_devices = TAKE_PTR(names);
        return r;
}

static bool want_mps(const struct allocation *a)
{
        return a->ctx->resource->sharing == SHARING_MPS;
}

/* The resource's pipe directory under --mps-root, and its /dev/shm. */
static int apply_mps(struct allocation *a)
{
        const char *name = a->ctx->resource->name, *root = strempty(a->c->flags.mps_root);
        _cleanup_free_ char *pipe = NULL, *host_pipe = NULL, *host_shm = NULL;
        int r;
        if (asprintf(&pipe, "/mps/%s/pipe", name) < 0 ||
            asprintf(&host_pipe, "%s/%s/pipe", root, name) < 0 || asprintf(&host_shm, "%s/shm", root) < 0)
                return -ENOMEM;
        if ((r = pairs_set(&a->resp->envs, "CUDA_MPS_PIPE_DIRECTORY", pipe)) < 0 ||
            (r = add_mount(a->resp, pipe, host_pipe, false)) < 0)
                return r;
        return add_mount(a->resp, "/dev/shm", host_shm, false);
}

static bool want_features(const struct allocation *a)
{
        return a->c->flags.gdrcopy_enabled || a->c->flags.gds_enabled || a->c->flags.mofed_enabled;
}

static int apply_features(struct allocation *a)
{
        int r = 0;
        if ((a->c->flags.gdrcopy_enabled &&
             (r = pairs_set(&a->resp->envs, "NVIDIA_GDRCOPY", "enabled")) < 0) ||
            (a->c->flags.gds_enabled && (r = pairs_set(&a->resp->envs, "NVIDIA_GDS", "enabled")) < 0) ||
            (a->c->flags.mofed_enabled && (r = pairs_set(&a->resp->envs, "NVIDIA_MOFED", "enabled")) < 0))
                return r;
        return 0;
}

static bool want_envvar(const struct allocation *a)
{
        return list_strategies(a) & DEVICE_LIST_ENVVAR;
}

static int apply_envvar(struct allocation *a)
{
        _cleanup_free_ char *list = strv_join(a->runtime_ids, ",");
        if (!list)
                return -ENOMEM;
        return pairs_set(&a->resp->envs, "NVIDIA_VISIBLE_DEVICES", list);
}

static bool want_volume_mounts(const struct allocation *a)
{
        return list_strategies(a) & DEVICE_LIST_VOLUME_MOUNTS;
}

/* The runtime reads the devices from the mount points under VOLUME_MOUNT_ROOT. */
static int apply_volume_mounts(struct allocation *a)
{
        int r = pairs_set(&a->resp->envs, "NVIDIA_VISIBLE_DEVICES", VOLUME_MOUNT_ROOT);
        if (r < 0)
                return r;
        STRV_FOREACH (id, a->runtime_ids) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, VOLUME_MOUNT_ROOT "/%s", *id) < 0)
                        return -ENOMEM;
                if ((r = add_mount(a->resp, p, "/dev/null", false)) < 0)
                        return r;
        }
        return 0;
}

static bool want_imex(const struct allocation *a)
{
        return a->c->imex.n_channel_ids > 0 &&
               (list_strategies(a) & (DEVICE_LIST_ENVVAR | DEVICE_LIST_VOLUME_MOUNTS));
}

/* IMEX channels the way envvar and volume-mounts pass devices (the CDI strategies name them in their
 * device lists, device specs add their nodes). */
static int apply_imex(struct allocation *a)
{
        int r;
        if ((list_strategies(a) & DEVICE_LIST_ENVVAR) &&
            (r = pairs_set(&a->resp->envs, "NVIDIA_IMEX_CHANNELS", "0")) < 0)
                return r;
        for (size_t i = 0; (list_strategies(a) & DEVICE_LIST_VOLUME_MOUNTS) && i < a->c->imex.n_channel_ids;
             i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, VOLUME_MOUNT_ROOT "/imex/%u", a->c->imex.channel_ids[i]) < 0)
                        return -ENOMEM;
                if ((r = add_mount(a->resp, p, "/dev/null", false)) < 0)
                        return r;
        }
        return 0;
}

/* Only with envvar or volume-mounts: with the CDI strategies alone the spec carries the nodes. */
static bool want_device_specs(const struct allocation *a)
{
        return a->c->flags.plugin.pass_device_specs &&
               (list_strategies(a) & (DEVICE_LIST_ENVVAR | DEVICE_LIST_VOLUME_MOUNTS));
}

/* The control devices, each device's nodes, the IMEX channel nodes; host paths under the dev root. */
static int apply_device_specs(struct allocation *a)
{
        const config *c = a->c;
        const char *dev_root =
                c->flags.nvidia_dev_root ? c->flags.nvidia_dev_root : c->flags.nvidia_driver_root;
        int r;
        STRV_FOREACH (p, a->ctx->control_devices)
                if ((r = add_device(a->resp, dev_root, *p)) < 0)
                        return r;
        for (size_t i = 0; i < a->n_devs; i++)
                STRV_FOREACH (p, a->devs[i]->paths)
                        if ((r = add_device(a->resp, dev_root, *p)) < 0)
                                return r;
        for (size_t i = 0; i < c->imex.n_channel_ids; i++) {
                char p[64];
                snprintf(p, sizeof p, IMEX_CHANNEL_DEVICE_FORMAT, c->imex.channel_ids[i]);
                if ((r = add_device(a->resp, dev_root, p)) < 0)
                        return r;
        }
        return 0;
}

/* In this order: a later strategy's env var replaces an earlier one's (as upstream), mounts and device
 * nodes keep the first of a container path. A new strategy is one entry and its two functions. */
static const struct strategy {
        const char *name;
        bool (*wanted)(const struct allocation *a);
        int (*apply)(struct allocation *a);
} strategies[] = {
        { "cdi-annotations", want_cdi_annotations, apply_cdi_annotations },
        { "cdi-cri", want_cdi_cri, apply_cdi_cri },
        { "mps", want_mps, apply_mps },
        { "gdrcopy/gds/mofed", want_features, apply_features },
        { "envvar", want_envvar, apply_envvar },
        { "volume-mounts", want_volume_mounts, apply_volume_mounts },
        { "imex", want_imex, apply_imex },
        { "device-specs", want_device_specs, apply_device_specs },
};

/* ---- the request ----------------------------------------------------------------------------------- */

/* The requested devices, each ID once; -EINVAL with a sentence for an unknown ID or too many replicas. */
static int collect_devices(const struct allocate_context *ctx, char *const *ids, size_t n_ids,
                           struct allocation *a, char **ret_error)
{
        const struct plan_resource *res = ctx->resource;
        a->devs = new0(const struct plan_device *, n_ids + 1);
        if (!a->devs)
                return -ENOMEM;
        for (size_t i = 0; i < n_ids; i++) {
                ssize_t k = plan_resource_find_device(res, ids[i]);
                char quoted[ID_IN_ERROR_MAX + 4];
                if (k < 0)
                        return error_set(
                                ret_error, -EINVAL,
                                "invalid allocation request for \"%s\": invalid request: unknown device: %s",
                                res->name, quote_id(ids[i], quoted));
                bool seen = false;
                for (size_t j = 0; j < a->n_devs; j++)
                        seen = seen || a->devs[j] == &res->devices[k];
                if (!seen)
                        a->devs[a->n_devs++] = &res->devices[k];
        }
        if (res->replicas > 1 && res->fail_requests_greater_than_one && a->n_devs > 1)
                return error_set(
                        ret_error, -EINVAL,
                        "invalid allocation request for \"%s\": invalid request: maximum request size for "
                        "shared resources is 1; found %zu",
                        res->name, a->n_devs);
        /* Runtime IDs in request order; replicas of one GPU name it once. */
        a->runtime_ids = new0(char *, 1);
        if (!a->runtime_ids)
                return -ENOMEM;
        for (size_t i = 0; i < a->n_devs; i++)
                if (!strv_contains(a->runtime_ids, a->devs[i]->runtime_id)) {
                        int r = strv_extend(&a->runtime_ids, a->devs[i]->runtime_id);
                        if (r < 0)
                                return r;
                }
        return 0;
}

int allocate_container(const struct allocate_context *ctx, char *const *ids, size_t n_ids,
                       struct allocate_response **ret, char **ret_error)
{
        struct allocation a = { .ctx = ctx, .c = ctx->config };
        int r = collect_devices(ctx, ids, n_ids, &a, ret_error);
        if (r >= 0 && !(a.resp = new0(struct allocate_response, 1)))
                r = -ENOMEM;
        if (r >= 0 && !(a.resp->envs = new0(char *, 1)))
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(strategies); i++)
                if (strategies[i].wanted(&a))
                        r = strategies[i].apply(&a);
        free(a.devs);
        strv_free(a.runtime_ids);
        if (r < 0) {
                allocate_response_free(a.resp);
                return r;
        }
        *ret = a.resp;
        return 0;
}
