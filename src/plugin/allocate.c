/* SPDX-License-Identifier: Apache-2.0 */
#include "allocate.h"
#include "base/error.h"

#include <stdarg.h>
#include <sys/random.h>

#include "base/fileio.h"
#include "deviceplugin.pb-c.h"

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

int allocate_container(const struct allocate_context *ctx, char *const *ids, size_t n_ids,
                       struct allocate_response **ret, char **ret_error)
{
        const config *c = ctx->config;
        const struct plan_resource *res = ctx->resource;
        unsigned strategies = c->flags.plugin.device_list_strategy;
        int r;

        /* Validate first and collect the devices, each requested ID once. */
        _cleanup_free_ const struct plan_device **devs = new0(const struct plan_device *, n_ids + 1);
        if (!devs)
                return -ENOMEM;
        size_t n_devs = 0;
        for (size_t i = 0; i < n_ids; i++) {
                ssize_t k = plan_resource_find_device(res, ids[i]);
                char quoted[ID_IN_ERROR_MAX + 4];
                if (k < 0)
                        return error_set(
                                ret_error, -EINVAL,
                                "invalid allocation request for \"%s\": invalid request: unknown device: %s",
                                res->name, quote_id(ids[i], quoted));
                bool seen = false;
                for (size_t j = 0; j < n_devs; j++)
                        seen = seen || devs[j] == &res->devices[k];
                if (!seen)
                        devs[n_devs++] = &res->devices[k];
        }
        if (res->replicas > 1 && res->fail_requests_greater_than_one && n_devs > 1)
                return error_set(
                        ret_error, -EINVAL,
                        "invalid allocation request for \"%s\": invalid request: maximum request size for "
                        "shared resources is 1; found %zu",
                        res->name, n_devs);

        /* Runtime IDs in request order; replicas of one GPU name it once. */
        _cleanup_strv_free_ char **runtime_ids = new0(char *, 1);
        if (!runtime_ids)
                return -ENOMEM;
        for (size_t i = 0; i < n_devs; i++)
                if (!strv_contains(runtime_ids, devs[i]->runtime_id)) {
                        r = strv_extend(&runtime_ids, devs[i]->runtime_id);
                        if (r < 0)
                                return r;
                }

        _cleanup_(allocate_response_freep) struct allocate_response *resp =
                new0(struct allocate_response, 1);
        if (!resp)
                return -ENOMEM;
        resp->envs = new0(char *, 1);
        if (!resp->envs)
                return -ENOMEM;

        /* CDI device names: the devices, then IMEX channels. */
        if (strategies & (DEVICE_LIST_CDI_ANNOTATIONS | DEVICE_LIST_CDI_CRI)) {
                _cleanup_strv_free_ char **names = new0(char *, 1);
                if (!names)
                        return -ENOMEM;
                STRV_FOREACH (id, runtime_ids) {
                        char *n;
                        if (asprintf(&n, CDI_KIND "=%s", *id) < 0)
                                return -ENOMEM;
                        if ((r = strv_push(&names, n)) < 0) {
                                free(n);
                                return r;
                        }
                }
                for (size_t i = 0; i < c->imex.n_channel_ids; i++) {
                        char *n;
                        if (asprintf(&n, CDI_IMEX_KIND "=%u", c->imex.channel_ids[i]) < 0)
                                return -ENOMEM;
                        if ((r = strv_push(&names, n)) < 0) {
                                free(n);
                                return r;
                        }
                }
                if (strv_length(names) > 0) {
                        if (strategies & DEVICE_LIST_CDI_ANNOTATIONS) {
                                char uuid[37];
                                if (ctx->annotation_uuid)
                                        snprintf(uuid, sizeof uuid, "%s", ctx->annotation_uuid);
                                else if ((r = random_uuid(uuid)) < 0)
                                        return r;
                                _cleanup_free_ char *key = NULL, *value = strv_join(names, ",");
                                if (asprintf(&key, "%snvidia-device-plugin_%s",
                                             c->flags.plugin.cdi_annotation_prefix, uuid) < 0 ||
                                    !value)
                                        return -ENOMEM;
                                if ((r = pairs_set(&resp->annotations, key, value)) < 0)
                                        return r;
                        }
                        if (strategies & DEVICE_LIST_CDI_CRI)
                                resp->cdi_devices = TAKE_PTR(names);
                }
        }

        if (res->sharing == SHARING_MPS) {
                _cleanup_free_ char *pipe = NULL, *host_pipe = NULL, *host_shm = NULL;
                if (asprintf(&pipe, "/mps/%s/pipe", res->name) < 0 ||
                    asprintf(&host_pipe, "%s/%s/pipe", strempty(c->flags.mps_root), res->name) < 0 ||
                    asprintf(&host_shm, "%s/shm", strempty(c->flags.mps_root)) < 0)
                        return -ENOMEM;
                if ((r = pairs_set(&resp->envs, "CUDA_MPS_PIPE_DIRECTORY", pipe)) < 0 ||
                    (r = add_mount(resp, pipe, host_pipe, false)) < 0 ||
                    (r = add_mount(resp, "/dev/shm", host_shm, false)) < 0)
                        return r;
        }
        if ((c->flags.gdrcopy_enabled && (r = pairs_set(&resp->envs, "NVIDIA_GDRCOPY", "enabled")) < 0) ||
            (c->flags.gds_enabled && (r = pairs_set(&resp->envs, "NVIDIA_GDS", "enabled")) < 0) ||
            (c->flags.mofed_enabled && (r = pairs_set(&resp->envs, "NVIDIA_MOFED", "enabled")) < 0))
                return r;

        /* Only CDI strategies: the runtime gets everything from the CDI spec. */
        if ((strategies & (DEVICE_LIST_ENVVAR | DEVICE_LIST_VOLUME_MOUNTS)) == 0)
                goto done;

        if (strategies & DEVICE_LIST_ENVVAR) {
                _cleanup_free_ char *list = strv_join(runtime_ids, ",");
                if (!list)
                        return -ENOMEM;
                if ((r = pairs_set(&resp->envs, "NVIDIA_VISIBLE_DEVICES", list)) < 0)
                        return r;
                if (c->imex.n_channel_ids > 0 &&
                    (r = pairs_set(&resp->envs, "NVIDIA_IMEX_CHANNELS", "0")) < 0)
                        return r;
        }
        if (strategies & DEVICE_LIST_VOLUME_MOUNTS) {
                if ((r = pairs_set(&resp->envs, "NVIDIA_VISIBLE_DEVICES", VOLUME_MOUNT_ROOT)) < 0)
                        return r;
                STRV_FOREACH (id, runtime_ids) {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, VOLUME_MOUNT_ROOT "/%s", *id) < 0)
                                return -ENOMEM;
                        if ((r = add_mount(resp, p, "/dev/null", false)) < 0)
                                return r;
                }
                for (size_t i = 0; i < c->imex.n_channel_ids; i++) {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, VOLUME_MOUNT_ROOT "/imex/%u", c->imex.channel_ids[i]) < 0)
                                return -ENOMEM;
                        if ((r = add_mount(resp, p, "/dev/null", false)) < 0)
                                return r;
                }
        }
        if (c->flags.plugin.pass_device_specs) {
                const char *dev_root =
                        c->flags.nvidia_dev_root ? c->flags.nvidia_dev_root : c->flags.nvidia_driver_root;
                STRV_FOREACH (p, ctx->control_devices)
                        if ((r = add_device(resp, dev_root, *p)) < 0)
                                return r;
                for (size_t i = 0; i < n_devs; i++)
                        STRV_FOREACH (p, devs[i]->paths)
                                if ((r = add_device(resp, dev_root, *p)) < 0)
                                        return r;
                for (size_t i = 0; i < c->imex.n_channel_ids; i++) {
                        char p[64];
                        snprintf(p, sizeof p, IMEX_CHANNEL_DEVICE_FORMAT, c->imex.channel_ids[i]);
                        if ((r = add_device(resp, dev_root, p)) < 0)
                                return r;
                }
        }
done:
        *ret = TAKE_PTR(resp);
        return 0;
}

static void *proto_pairs(char **pairs, size_t *ret_n, size_t entry_size, const ProtobufCMessageDescriptor *d)
{
        size_t n = strv_length(pairs) / 2;
        *ret_n = n;
        if (n == 0)
                return NULL;
        /* Envs and annotations entries share one layout: base, key, value. */
        V1beta1__ContainerAllocateResponse__EnvsEntry **v =
                new0(V1beta1__ContainerAllocateResponse__EnvsEntry *, n);
        uint8_t *storage = calloc(n, entry_size);
        if (!v || !storage) {
                free(v);
                free(storage);
                return NULL;
        }
        for (size_t i = 0; i < n; i++) {
                V1beta1__ContainerAllocateResponse__EnvsEntry *e = (void *)(storage + i * entry_size);
                protobuf_c_message_init(d, e);
                e->key = pairs[2 * i];
                e->value = pairs[2 * i + 1];
                v[i] = e;
        }
        return v;
}

static void proto_pairs_free(void *v)
{
        V1beta1__ContainerAllocateResponse__EnvsEntry **e = v;
        if (e)
                free(e[0]);
        free(e);
}

/* Builds protobuf-c views over our structs (borrowing the strings), packs, frees the views. */
int allocate_response_pack(struct allocate_response *const *responses, size_t n, uint8_t **ret,
                           size_t *ret_size)
{
        V1beta1__AllocateResponse out = V1BETA1__ALLOCATE_RESPONSE__INIT;
        V1beta1__ContainerAllocateResponse *cr = new0(V1beta1__ContainerAllocateResponse, n + 1);
        V1beta1__ContainerAllocateResponse **crp = new0(V1beta1__ContainerAllocateResponse *, n + 1);
        int r = -ENOMEM;
        if (!cr || !crp)
                goto finish;
        for (size_t i = 0; i < n; i++) {
                struct allocate_response *a = responses[i];
                V1beta1__ContainerAllocateResponse *c = &cr[i];
                v1beta1__container_allocate_response__init(c);
                crp[i] = c;
                if (a->envs && a->envs[0] &&
                    !(c->envs = proto_pairs(a->envs, &c->n_envs,
                                            sizeof(V1beta1__ContainerAllocateResponse__EnvsEntry),
                                            &v1beta1__container_allocate_response__envs_entry__descriptor)))
                        goto finish;
                if (a->annotations && a->annotations[0] &&
                    !(c->annotations = (void *)proto_pairs(
                              a->annotations, &c->n_annotations,
                              sizeof(V1beta1__ContainerAllocateResponse__AnnotationsEntry),
                              &v1beta1__container_allocate_response__annotations_entry__descriptor)))
                        goto finish;
                if (a->n_mounts) {
                        c->mounts = new0(V1beta1__Mount *, a->n_mounts);
                        V1beta1__Mount *m = new0(V1beta1__Mount, a->n_mounts);
                        if (!c->mounts || !m) {
                                free(m);
                                goto finish;
                        }
                        for (size_t k = 0; k < a->n_mounts; k++) {
                                v1beta1__mount__init(&m[k]);
                                m[k].container_path = a->mounts[k].container_path;
                                m[k].host_path = a->mounts[k].host_path;
                                m[k].read_only = a->mounts[k].read_only;
                                c->mounts[k] = &m[k];
                        }
                        c->n_mounts = a->n_mounts;
                }
                if (a->n_devices) {
                        c->devices = new0(V1beta1__DeviceSpec *, a->n_devices);
                        V1beta1__DeviceSpec *d = new0(V1beta1__DeviceSpec, a->n_devices);
                        if (!c->devices || !d) {
                                free(d);
                                goto finish;
                        }
                        for (size_t k = 0; k < a->n_devices; k++) {
                                v1beta1__device_spec__init(&d[k]);
                                d[k].container_path = a->devices[k].container_path;
                                d[k].host_path = a->devices[k].host_path;
                                d[k].permissions = a->devices[k].permissions;
                                c->devices[k] = &d[k];
                        }
                        c->n_devices = a->n_devices;
                }
                size_t nc = strv_length(a->cdi_devices);
                if (nc) {
                        c->cdi_devices = new0(V1beta1__CDIDevice *, nc);
                        V1beta1__CDIDevice *d = new0(V1beta1__CDIDevice, nc);
                        if (!c->cdi_devices || !d) {
                                free(d);
                                goto finish;
                        }
                        for (size_t k = 0; k < nc; k++) {
                                v1beta1__cdidevice__init(&d[k]);
                                d[k].name = a->cdi_devices[k];
                                c->cdi_devices[k] = &d[k];
                        }
                        c->n_cdi_devices = nc;
                }
        }
        out.container_responses = crp;
        out.n_container_responses = n;
        size_t size = v1beta1__allocate_response__get_packed_size(&out);
        uint8_t *buf = malloc(size ? size : 1);
        if (!buf)
                goto finish;
        v1beta1__allocate_response__pack(&out, buf);
        *ret = buf;
        *ret_size = size;
        r = 0;
finish:
        for (size_t i = 0; cr && i < n; i++) {
                proto_pairs_free(cr[i].envs);
                proto_pairs_free(cr[i].annotations);
                if (cr[i].mounts)
                        free(cr[i].mounts[0]);
                free(cr[i].mounts);
                if (cr[i].devices)
                        free(cr[i].devices[0]);
                free(cr[i].devices);
                if (cr[i].cdi_devices)
                        free(cr[i].cdi_devices[0]);
                free(cr[i].cdi_devices);
        }
        free(cr);
        free(crp);
        return r;
}
