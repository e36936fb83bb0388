/* SPDX-License-Identifier: Apache-2.0 */
/* protobuf-c views over our structs: the messages borrow our strings, are packed, and the views freed. */
#include "plugin/kubelet-wire.h"

#include "base/strv.h"
#include "deviceplugin.pb-c.h"
#include "rpc/rpc.h"

static int pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_size)
{
        size_t n = protobuf_c_message_get_packed_size(m);
        if (n > RPC_MAX_MESSAGE)
                return -EMSGSIZE;
        uint8_t *buf = malloc(n + 1); /* +1: an empty message still gets a buffer */
        if (!buf)
                return -ENOMEM;
        if (protobuf_c_message_pack(m, buf) != n) {
                free(buf);
                return -EIO;
        }
        *ret = buf;
        *ret_size = n;
        return 0;
}

int kubelet_wire_pack_register(const char *endpoint, const char *resource, uint8_t **ret, size_t *ret_size)
{
        V1beta1__DevicePluginOptions o = V1BETA1__DEVICE_PLUGIN_OPTIONS__INIT;
        o.get_preferred_allocation_available = true; /* identical to GetDevicePluginOptions */
        V1beta1__RegisterRequest req = V1BETA1__REGISTER_REQUEST__INIT;
        req.version = (char *)DP_VERSION;
        req.endpoint = (char *)endpoint;
        req.resource_name = (char *)resource;
        req.options = &o;
        return pack(&req.base, ret, ret_size);
}

int kubelet_wire_pack_options(uint8_t **ret, size_t *ret_size)
{
        V1beta1__DevicePluginOptions o = V1BETA1__DEVICE_PLUGIN_OPTIONS__INIT;
        o.get_preferred_allocation_available = true;
        return pack(&o.base, ret, ret_size);
}

int kubelet_wire_pack_list(const struct plan_device *devices, const bool *healthy, size_t n, uint8_t **ret,
                           size_t *ret_size)
{
        _cleanup_free_ V1beta1__Device *devs = new0(V1beta1__Device, n + 1);
        _cleanup_free_ V1beta1__Device **devp = new0(V1beta1__Device *, n + 1);
        _cleanup_free_ V1beta1__TopologyInfo *topo = new0(V1beta1__TopologyInfo, n + 1);
        _cleanup_free_ V1beta1__NUMANode *numa = new0(V1beta1__NUMANode, n + 1);
        _cleanup_free_ V1beta1__NUMANode **numap = new0(V1beta1__NUMANode *, n + 1);
        if (!devs || !devp || !topo || !numa || !numap)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct plan_device *d = &devices[i];
                v1beta1__device__init(&devs[i]);
                devs[i].id = d->id;
                devs[i].health = healthy[i] ? DP_HEALTHY : DP_UNHEALTHY;
                /* Never send NUMA node -1: the kubelet would match it to no node (reference 4). */
                if (d->numa_node >= 0) {
                        v1beta1__topology_info__init(&topo[i]);
                        v1beta1__numanode__init(&numa[i]);
                        numa[i].id = d->numa_node;
                        numap[i] = &numa[i];
                        topo[i].nodes = &numap[i];
                        topo[i].n_nodes = 1;
                        devs[i].topology = &topo[i];
                }
                devp[i] = &devs[i];
        }
        V1beta1__ListAndWatchResponse resp = V1BETA1__LIST_AND_WATCH_RESPONSE__INIT;
        resp.devices = devp;
        resp.n_devices = n;
        return pack(&resp.base, ret, ret_size);
}

int kubelet_wire_pack_preferred(char **const *ids, size_t n, uint8_t **ret, size_t *ret_size)
{
        _cleanup_free_ V1beta1__ContainerPreferredAllocationResponse *cr =
                new0(V1beta1__ContainerPreferredAllocationResponse, n + 1);
        _cleanup_free_ V1beta1__ContainerPreferredAllocationResponse **crp =
                new0(V1beta1__ContainerPreferredAllocationResponse *, n + 1);
        if (!cr || !crp)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                v1beta1__container_preferred_allocation_response__init(&cr[i]);
                cr[i].deviceids = ids[i];
                cr[i].n_deviceids = strv_length(ids[i]);
                crp[i] = &cr[i];
        }
        V1beta1__PreferredAllocationResponse resp = V1BETA1__PREFERRED_ALLOCATION_RESPONSE__INIT;
        resp.container_responses = crp;
        resp.n_container_responses = n;
        return pack(&resp.base, ret, ret_size);
}

/* ---- AllocateResponse ------------------------------------------------------------------------------ */

/* n messages of type d in one block and an array of pointers to them (freed with view_free), or NULL. */
static void **messages_new(const ProtobufCMessageDescriptor *d, size_t n)
{
        void **v = new0(void *, n);
        uint8_t *storage = calloc(n, d->sizeof_message);
        if (!v || !storage) {
                free(v);
                free(storage);
                return NULL;
        }
        for (size_t i = 0; i < n; i++) {
                v[i] = storage + i * d->sizeof_message;
                protobuf_c_message_init(d, v[i]);
        }
        return v;
}

/* Frees a view array whose elements live in one block starting at element 0. */
static void view_free(void **v)
{
        if (v)
                free(v[0]);
        free(v);
}

/* The map entries of envs or annotations ("key", "value" pairs); both entry types share one layout: base,
 * key, value. */
static int map_view(char **pairs, const ProtobufCMessageDescriptor *d, void ***ret, size_t *ret_n)
{
        size_t n = strv_length(pairs) / 2;
        if (n == 0)
                return 0;
        V1beta1__ContainerAllocateResponse__EnvsEntry **v = (void *)messages_new(d, n);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                v[i]->key = pairs[2 * i];
                v[i]->value = pairs[2 * i + 1];
        }
        *ret = (void **)v;
        *ret_n = n;
        return 0;
}

static int mounts_view(const struct allocate_response *a, V1beta1__ContainerAllocateResponse *c)
{
        if (a->n_mounts > 0 && !(c->mounts = (void *)messages_new(&v1beta1__mount__descriptor, a->n_mounts)))
                return -ENOMEM;
        for (size_t k = 0; k < a->n_mounts; k++) {
                c->mounts[k]->container_path = a->mounts[k].container_path;
                c->mounts[k]->host_path = a->mounts[k].host_path;
                c->mounts[k]->read_only = a->mounts[k].read_only;
        }
        c->n_mounts = a->n_mounts;
        return 0;
}

static int devices_view(const struct allocate_response *a, V1beta1__ContainerAllocateResponse *c)
{
        if (a->n_devices > 0 &&
            !(c->devices = (void *)messages_new(&v1beta1__device_spec__descriptor, a->n_devices)))
                return -ENOMEM;
        for (size_t k = 0; k < a->n_devices; k++) {
                c->devices[k]->container_path = a->devices[k].container_path;
                c->devices[k]->host_path = a->devices[k].host_path;
                c->devices[k]->permissions = a->devices[k].permissions;
        }
        c->n_devices = a->n_devices;
        return 0;
}

static int cdi_view(const struct allocate_response *a, V1beta1__ContainerAllocateResponse *c)
{
        size_t n = strv_length(a->cdi_devices);
        if (n > 0 && !(c->cdi_devices = (void *)messages_new(&v1beta1__cdidevice__descriptor, n)))
                return -ENOMEM;
        for (size_t k = 0; k < n; k++)
                c->cdi_devices[k]->name = a->cdi_devices[k];
        c->n_cdi_devices = n;
        return 0;
}

static int container_view(const struct allocate_response *a, V1beta1__ContainerAllocateResponse *c)
{
        int r;
        v1beta1__container_allocate_response__init(c);
        if ((r = map_view(a->envs, &v1beta1__container_allocate_response__envs_entry__descriptor,
                          (void ***)&c->envs, &c->n_envs)) < 0 ||
            (r = map_view(a->annotations,
                          &v1beta1__container_allocate_response__annotations_entry__descriptor,
                          (void ***)&c->annotations, &c->n_annotations)) < 0 ||
            (r = mounts_view(a, c)) < 0 || (r = devices_view(a, c)) < 0 || (r = cdi_view(a, c)) < 0)
                return r;
        return 0;
}

static void container_view_done(V1beta1__ContainerAllocateResponse *c)
{
        view_free((void **)c->envs);
        view_free((void **)c->annotations);
        view_free((void **)c->mounts);
        view_free((void **)c->devices);
        view_free((void **)c->cdi_devices);
}

int kubelet_wire_pack_allocate(struct allocate_response *const *responses, size_t n, uint8_t **ret,
                               size_t *ret_size)
{
        V1beta1__AllocateResponse out = V1BETA1__ALLOCATE_RESPONSE__INIT;
        V1beta1__ContainerAllocateResponse *cr = new0(V1beta1__ContainerAllocateResponse, n + 1);
        V1beta1__ContainerAllocateResponse **crp = new0(V1beta1__ContainerAllocateResponse *, n + 1);
        int r = cr && crp ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = container_view(responses[i], &cr[i]);
                crp[i] = &cr[i];
        }
        if (r >= 0) {
                out.container_responses = crp;
                out.n_container_responses = n;
                r = pack(&out.base, ret, ret_size);
        }
        for (size_t i = 0; cr && i < n; i++)
                container_view_done(&cr[i]);
        free(cr);
        free(crp);
        return r;
}

/* ---- requests ---------------------------------------------------------------------------------------- */

/* protobuf-c's allocator for requests: each block carries its size in front, so that the total in use is
 * known at every allocation and the unpacking stops (protobuf-c frees what it made and returns NULL) at
 * the budget's end, before a request of a million tiny IDs has a million blocks. */
#define BLOCK_HEADER 16u

static void *budget_alloc(void *data, size_t size)
{
        struct unpack_budget *b = data;
        size_t cost = size + BLOCK_HEADER;
        if (cost < size || cost > b->max - MIN(b->max, b->used)) {
                b->exceeded = true;
                return NULL;
        }
        uint8_t *p = malloc(cost);
        if (!p)
                return NULL;
        memcpy(p, &size, sizeof size);
        b->used += cost;
        return p + BLOCK_HEADER;
}

static void budget_free(void *data, void *pointer)
{
        struct unpack_budget *b = data;
        if (!pointer)
                return;
        uint8_t *p = (uint8_t *)pointer - BLOCK_HEADER;
        size_t size;
        memcpy(&size, p, sizeof size);
        b->used -= MIN(b->used, size + BLOCK_HEADER);
        free(p);
}

struct kubelet_request *kubelet_request_free(struct kubelet_request *r)
{
        if (!r)
                return NULL;
        if (r->message) {
                ProtobufCAllocator a = { budget_alloc, budget_free, &r->budget };
                protobuf_c_message_free_unpacked(r->message, &a);
        }
        free(r->containers);
        free(r);
        return NULL;
}

/* Unpacks msg with descriptor d inside r's budget. */
static int request_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t size,
                          struct kubelet_request **ret)
{
        _cleanup_(kubelet_request_freep) struct kubelet_request *r = new0(struct kubelet_request, 1);
        if (!r)
                return -ENOMEM;
        r->budget.max = KUBELET_REQUEST_MEMORY_MAX;
        ProtobufCAllocator a = { budget_alloc, budget_free, &r->budget };
        r->message = protobuf_c_message_unpack(d, &a, size, msg);
        if (!r->message)
                return r->budget.exceeded ? -E2BIG : -EBADMSG;
        *ret = TAKE_PTR(r);
        return 0;
}

static int containers_new(struct kubelet_request *r, size_t n)
{
        r->containers = new0(struct container_request, n + 1);
        if (!r->containers)
                return -ENOMEM;
        r->n_containers = n;
        return 0;
}

int kubelet_wire_unpack_allocate(const uint8_t *msg, size_t size, struct kubelet_request **ret)
{
        _cleanup_(kubelet_request_freep) struct kubelet_request *r = NULL;
        int k = request_unpack(&v1beta1__allocate_request__descriptor, msg, size, &r);
        if (k < 0)
                return k;
        V1beta1__AllocateRequest *m = r->message;
        if ((k = containers_new(r, m->n_container_requests)) < 0)
                return k;
        for (size_t i = 0; i < m->n_container_requests; i++) {
                V1beta1__ContainerAllocateRequest *c = m->container_requests[i];
                r->containers[i] =
                        (struct container_request){ .ids = c->devices_ids, .n_ids = c->n_devices_ids };
        }
        *ret = TAKE_PTR(r);
        return 0;
}

int kubelet_wire_unpack_preferred(const uint8_t *msg, size_t size, struct kubelet_request **ret)
{
        _cleanup_(kubelet_request_freep) struct kubelet_request *r = NULL;
        int k = request_unpack(&v1beta1__preferred_allocation_request__descriptor, msg, size, &r);
        if (k < 0)
                return k;
        V1beta1__PreferredAllocationRequest *m = r->message;
        if ((k = containers_new(r, m->n_container_requests)) < 0)
                return k;
        for (size_t i = 0; i < m->n_container_requests; i++) {
                V1beta1__ContainerPreferredAllocationRequest *c = m->container_requests[i];
                r->containers[i] = (struct container_request){
                        .ids = c->available_deviceids,
                        .n_ids = c->n_available_deviceids,
                        .must_include = c->must_include_deviceids,
                        .n_must_include = c->n_must_include_deviceids,
                        .size = c->allocation_size > 0 ? (size_t)c->allocation_size : 0,
                };
        }
        *ret = TAKE_PTR(r);
        return 0;
}
