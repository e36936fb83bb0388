/* SPDX-License-Identifier: Apache-2.0 */
/* The node's GPUs as resource.k8s.io/v1 ResourceSlice objects (docs/dra.md lists every field). */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>

#include "base/error.h"
#include "base/json.h"
#include "base/strv.h"
#include "dra.h"
#include "kube/kube.h"

/* A string or version attribute value is at most 64 bytes (DeviceAttributeMaxValueLength). */
#define ATTRIBUTE_MAX_VALUE 64

/* {"string": value} (or "version"), cut to the API's limit: product names are ASCII. */
static int attr_text(json_object *attrs, const char *name, const char *kind, const char *value)
{
        json_object *a = json_add_object(attrs, name);
        if (!a)
                return -ENOMEM;
        json_object *v = json_object_new_string_len(value, (int)MIN(strlen(value), ATTRIBUTE_MAX_VALUE));
        return v ? json_add(a, kind, v) : -ENOMEM;
}

static int attr_int(json_object *attrs, const char *name, int64_t value)
{
        json_object *a = json_add_object(attrs, name);
        return a ? json_add_int(a, "int", value) : -ENOMEM;
}

static int capacity(json_object *caps, const char *name, const char *quantity)
{
        json_object *c = json_add_object(caps, name);
        return c ? json_add_string(c, "value", quantity) : -ENOMEM;
}

static int capacity_count(json_object *caps, const char *name, uint64_t n)
{
        char q[32];
        snprintf(q, sizeof q, "%" PRIu64, n);
        return capacity(caps, name, q);
}

static int capacity_mib(json_object *caps, const char *name, uint64_t mib)
{
        char q[32];
        snprintf(q, sizeof q, "%" PRIu64 "Mi", mib);
        return capacity(caps, name, q);
}

/* The attributes a GPU and its MIG devices share: what the GPU is and which driver runs it. */
static int attrs_common(json_object *attrs, const inventory *inv, const struct gpu *g, char **ret_error)
{
        char cc[32], driver[32], cuda[32];
        if (dra_version_compute_capability(g->cc_major, g->cc_minor, cc, sizeof cc) < 0)
                return error_set(ret_error, -EINVAL, "GPU %u (%s) has no CUDA compute capability", g->index,
                                 g->uuid);
        if (dra_version_driver(inv->driver_version, driver, sizeof driver) < 0)
                return error_set(ret_error, -EINVAL, "driver version \"%s\" is not a version number",
                                 inv->driver_version);
        if (dra_version_cuda(inv->cuda_driver_version, cuda, sizeof cuda) < 0)
                return error_set(ret_error, -EINVAL, "CUDA driver version %d is not a version number",
                                 inv->cuda_driver_version);
        int r = 0;
        if (r == 0)
                r = attr_text(attrs, "productName", "string", g->name);
        if (r == 0)
                r = attr_text(attrs, "brand", "string", dra_brand_name(g->brand));
        if (r == 0)
                r = attr_text(attrs, "architecture", "string", dra_architecture_name(g->architecture));
        if (r == 0)
                r = attr_text(attrs, "cudaComputeCapability", "version", cc);
        if (r == 0)
                r = attr_text(attrs, "driverVersion", "version", driver);
        if (r == 0)
                r = attr_text(attrs, "cudaDriverVersion", "version", cuda);
        if (r == 0)
                r = attr_text(attrs, "pcieBusID", "string", g->bus_id);
        /* Kubernetes' standard attributes (k8s.io/dynamic-resource-allocation/deviceattribute), so claims
         * can align GPUs with NICs and CPUs of other drivers. */
        if (r == 0)
                r = attr_text(attrs, "resource.kubernetes.io/pciBusID", "string", g->bus_id);
        if (r == 0 && g->numa_node >= 0)
                r = attr_int(attrs, "resource.kubernetes.io/numaNode", g->numa_node);
        return r;
}

static int device_gpu(json_object *dev, const inventory *inv, const struct gpu *g, char **ret_error)
{
        json_object *attrs = json_add_object(dev, "attributes"),
                    *caps = attrs ? json_add_object(dev, "capacity") : NULL;
        if (!caps)
                return -ENOMEM;
        int r = attr_text(attrs, "type", "string", "gpu");
        if (r == 0)
                r = attr_text(attrs, "uuid", "string", g->uuid);
        if (r == 0)
                r = attr_int(attrs, "index", g->index);
        if (r == 0)
                r = attr_int(attrs, "minor", g->minor);
        if (r == 0)
                r = attrs_common(attrs, inv, g, ret_error);
        if (r == 0)
                r = capacity_mib(caps, "memory", g->memory_mib);
        return r;
}

static int device_mig(json_object *dev, const inventory *inv, const struct gpu *g,
                      const struct mig_device *m, char **ret_error)
{
        json_object *attrs = json_add_object(dev, "attributes"),
                    *caps = attrs ? json_add_object(dev, "capacity") : NULL;
        if (!caps)
                return -ENOMEM;
        int r = attr_text(attrs, "type", "string", "mig");
        if (r == 0)
                r = attr_text(attrs, "uuid", "string", m->uuid);
        if (r == 0)
                r = attr_int(attrs, "index", m->index);
        if (r == 0)
                r = attr_int(attrs, "parentIndex", g->index);
        if (r == 0)
                r = attr_text(attrs, "parentUUID", "string", g->uuid);
        if (r == 0)
                r = attr_text(attrs, "profile", "string", m->profile);
        if (r == 0)
                r = attrs_common(attrs, inv, g, ret_error);
        if (r == 0)
                r = capacity_count(caps, "multiprocessors", m->multiprocessors);
        if (r == 0)
                r = capacity_count(caps, "copyEngines", m->engines_copy);
        if (r == 0)
                r = capacity_count(caps, "decoders", m->engines_decoder);
        if (r == 0)
                r = capacity_count(caps, "encoders", m->engines_encoder);
        if (r == 0)
                r = capacity_count(caps, "jpegEngines", m->engines_jpeg);
        if (r == 0)
                r = capacity_count(caps, "ofaEngines", m->engines_ofa);
        if (r == 0)
                r = capacity_mib(caps, "memory", m->memory_mib);
        return r;
}

/* The taint that says why a device is out of service: the XID, a lost GPU, or another cause. */
static int device_taint(json_object *dev, const struct health_unit *u)
{
        json_object *taints = json_add_array(dev, "taints");
        json_object *t = json_object_new_object();
        if (!taints || json_append(taints, t) < 0)
                return -ENOMEM;
        char xid[32];
        int r;
        if (u->lost)
                r = json_add_string(t, "key", DRA_TAINT_GPU_LOST);
        else if (u->xid != 0) {
                snprintf(xid, sizeof xid, "%" PRIu64, u->xid);
                r = json_add_string(t, "key", DRA_TAINT_XID);
                if (r == 0)
                        r = json_add_string(t, "value", xid);
        } else
                r = json_add_string(t, "key", DRA_TAINT_UNHEALTHY);
        if (r == 0)
                r = json_add_string(t, "effect", "NoSchedule");
        return r;
}

int dra_slice_name(const char *node, size_t i, char **ret)
{
        char *name = NULL;
        if (asprintf(&name, "%s-%s-%zu", node, DRA_DRIVER, i) < 0)
                return -ENOMEM;
        if (strlen(name) > 253) {
                free(name);
                return -ENAMETOOLONG;
        }
        *ret = name;
        return 0;
}

static int slice_new(const struct dra_slice_params *p, size_t index, size_t count, json_object **ret,
                     json_object **ret_devices, char **ret_error)
{
        _cleanup_free_ char *name = NULL;
        if (dra_slice_name(p->node, index, &name) < 0)
                return error_set(ret_error, -ENAMETOOLONG,
                                 "node name \"%s\" is too long for a ResourceSlice name (253 characters)",
                                 p->node);
        _cleanup_json_ json_object *s = json_object_new_object();
        if (!s)
                return -ENOMEM;
        json_object *meta, *spec, *pool;
        int r = json_add_string(s, "apiVersion", "resource.k8s.io/v1");
        if (r == 0)
                r = json_add_string(s, "kind", "ResourceSlice");
        if (r < 0 || !(meta = json_add_object(s, "metadata")) || json_add_string(meta, "name", name) < 0)
                return -ENOMEM;
        if (p->node_uid) {
                /* Owned by the Node: the slices go with it when it is deleted. */
                json_object *owners = json_add_array(meta, "ownerReferences"), *o = json_object_new_object();
                if (!owners || json_append(owners, o) < 0 || json_add_string(o, "apiVersion", "v1") < 0 ||
                    json_add_string(o, "kind", "Node") < 0 || json_add_string(o, "name", p->node) < 0 ||
                    json_add_string(o, "uid", p->node_uid) < 0 || json_add_bool(o, "controller", true) < 0)
                        return -ENOMEM;
        }
        if (!(spec = json_add_object(s, "spec")) || json_add_string(spec, "driver", DRA_DRIVER) < 0 ||
            json_add_string(spec, "nodeName", p->node) < 0 || !(pool = json_add_object(spec, "pool")) ||
            json_add_string(pool, "name", p->node) < 0 ||
            json_add_int(pool, "generation", p->generation) < 0 ||
            json_add_int(pool, "resourceSliceCount", (int64_t)count) < 0)
                return -ENOMEM;
        json_object *devices = json_add_array(spec, "devices");
        if (!devices)
                return -ENOMEM;
        *ret_devices = devices;
        *ret = TAKE_PTR(s);
        return 0;
}

int dra_slices_build(const inventory *inv, const health_tracker *health, const struct dra_slice_params *p,
                     char ***ret, char **ret_error)
{
        if (!p || isempty(p->node) || !kube_name_valid(p->node))
                return error_set(ret_error, -EINVAL, "\"%s\" is not a node name",
                                 p ? strna(p->node) : "(null)");
        if (p->generation <= 0)
                return error_set(ret_error, -EINVAL, "pool generation %" PRId64 " is not positive",
                                 p->generation);

        _cleanup_free_ struct dra_device *devs = NULL;
        size_t n_devs = 0;
        int r = dra_devices_list(inv, &devs, &n_devs);
        if (r < 0)
                return r;

        /* Which devices go into the slices, and why the others are tainted (or left out). */
        _cleanup_free_ const struct health_unit **why = new0(const struct health_unit *, n_devs + 1);
        _cleanup_free_ size_t *take = new0(size_t, n_devs + 1);
        if (!why || !take)
                return -ENOMEM;
        size_t n_take = 0;
        for (size_t i = 0; i < n_devs; i++) {
                if (!dra_device_healthy(health, &devs[i], &why[i]) && p->unhealthy == DRA_UNHEALTHY_REMOVE)
                        continue;
                take[n_take++] = i;
        }

        size_t n_slices = n_take == 0 ? 1 : (n_take + DRA_SLICE_MAX_DEVICES - 1) / DRA_SLICE_MAX_DEVICES;
        _cleanup_strv_free_ char **out = new0(char *, n_slices + 1);
        if (!out)
                return -ENOMEM;
        for (size_t s = 0; s < n_slices; s++) {
                _cleanup_json_ json_object *slice = NULL;
                json_object *devices = NULL;
                r = slice_new(p, s, n_slices, &slice, &devices, ret_error);
                if (r < 0)
                        return r;
                for (size_t k = s * DRA_SLICE_MAX_DEVICES; k < n_take && k < (s + 1) * DRA_SLICE_MAX_DEVICES;
                     k++) {
                        const struct dra_device *d = &devs[take[k]];
                        const struct gpu *g = &inv->gpus[d->gpu];
                        json_object *dev = json_object_new_object();
                        if (json_append(devices, dev) < 0 || json_add_string(dev, "name", d->name) < 0)
                                return -ENOMEM;
                        r = d->mig < 0 ? device_gpu(dev, inv, g, ret_error)
                                       : device_mig(dev, inv, g, &g->mig[d->mig], ret_error);
                        if (r == 0 && why[take[k]])
                                r = device_taint(dev, why[take[k]]);
                        if (r < 0)
                                return r;
                }
                /* An empty pool is a slice without devices (no empty list). */
                if (json_object_array_length(devices) == 0)
                        json_object_object_del(json_object_object_get(slice, "spec"), "devices");
                r = json_format(slice, false, &out[s]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

int dra_slice_list_parse(const char *json, size_t size, const char *node, char ***ret_names,
                         int64_t *ret_generation, char **ret_error)
{
        _cleanup_json_ json_object *root = NULL;
        if (kube_json_parse(json, size, &root) < 0 || !json_object_is_type(root, json_type_object))
                return error_set(ret_error, -EINVAL,
                                 "the ResourceSlice list from the API server is not a JSON object");
        json_object *items = json_get(root, "items");
        if (items && !json_object_is_type(items, json_type_array))
                return error_set(ret_error, -EINVAL, "the ResourceSlice list's items are not a list");
        _cleanup_strv_free_ char **names = new0(char *, 1);
        if (!names)
                return -ENOMEM;
        int64_t generation = 0;
        for (size_t i = 0; i < json_array_size(items); i++) {
                json_object *it = json_array_at(items, i), *spec = json_get(it, "spec");
                const char *name =
                        json_text(json_get_path(it, (const char *const[]){ "metadata", "name", NULL }));
                const char *driver = json_text(json_get(spec, "driver"));
                const char *owner = json_text(json_get(spec, "nodeName"));
                if (!name || !driver || !owner || !streq(driver, DRA_DRIVER) || !streq(owner, node))
                        continue;
                if (strv_extend(&names, name) < 0)
                        return -ENOMEM;
                json_object *gen = json_get_path(spec, (const char *const[]){ "pool", "generation", NULL });
                if (json_object_is_type(gen, json_type_int))
                        generation = MAX(generation, json_object_get_int64(gen));
        }
        strv_sort(names);
        *ret_names = TAKE_PTR(names);
        *ret_generation = generation;
        return 0;
}
