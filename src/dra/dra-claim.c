/* SPDX-License-Identifier: Apache-2.0 */
/* What a ResourceClaim's allocation asks of this node: its devices of driver gpu.nvidia.com, checked against
 * the node's pool and health, and the opaque configuration nvdp understands (docs/dra.md). */
#include <json-c/json.h>

#include "base/error.h"
#include "base/json.h"
#include "dra.h"
#include "kube/kube.h"

/* NVIDIA's DRA driver's configuration types (api/nvidia.com/resource/v1beta1). */
#define CONFIG_API_VERSION "resource.nvidia.com/v1beta1"
#define CONFIG_KIND_GPU    "GpuConfig"
#define CONFIG_KIND_MIG    "MigDeviceConfig"

/* The member key of o when it has that type, else NULL. */
static json_object *get_typed(json_object *o, const char *key, json_type type)
{
        json_object *v = json_get(o, key);
        return json_object_is_type(v, type) ? v : NULL;
}

/* A string member's text, NULL for anything else. */
static const char *get_string(json_object *o, const char *key)
{
        return json_object_get_string(get_typed(o, key, json_type_string));
}

struct dra_claim *dra_claim_free(struct dra_claim *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_devices; i++) {
                free(c->devices[i].request);
                free(c->devices[i].pool);
                free(c->devices[i].device);
                free(c->devices[i].cdi_id);
        }
        free(c->devices);
        free(c->uid);
        free(c->namespace);
        free(c->name);
        return mfree(c);
}

bool dra_claim_uid_valid(const char *uid)
{
        size_t n = uid ? strlen(uid) : 0;
        if (n == 0 || n > 128)
                return false;
        return strspn(uid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == n;
}

int dra_claim_ref_check(const struct dra_claim_ref *ref, char **ret_error)
{
        if (!kube_name_valid(ref->namespace))
                return error_set(ret_error, -EINVAL, "claim namespace \"%s\" is not a valid name",
                                 strna(ref->namespace));
        if (!kube_name_valid(ref->name))
                return error_set(ret_error, -EINVAL, "claim name \"%s\" is not a valid name",
                                 strna(ref->name));
        if (!dra_claim_uid_valid(ref->uid))
                return error_set(ret_error, -EINVAL,
                                 "claim UID \"%s\" is not a UID (1-128 letters, digits and '-')",
                                 strna(ref->uid));
        return 0;
}

/* "gpu/big" -> "gpu": a subrequest of firstAvailable counts as its main request (containers name those). */
static char *base_request(const char *request)
{
        const char *slash = strchr(request, '/');
        return slash ? strndup(request, (size_t)(slash - request)) : strdup(request);
}

static bool config_applies(json_object *cfg, const char *request)
{
        json_object *requests = get_typed(cfg, "requests", json_type_array);
        size_t n = requests ? json_array_size(requests) : 0;
        if (n == 0)
                return true;
        _cleanup_free_ char *base = base_request(request);
        for (size_t i = 0; base && i < n; i++) {
                const char *r = json_object_get_string(json_array_at(requests, i));
                /* "gpu" covers "gpu/big"; "gpu/big" covers only itself. */
                if (r && (streq(r, request) || streq(r, base)))
                        return true;
        }
        return false;
}

/* Checks one GpuConfig/MigDeviceConfig's parameters for device d and says what sharing they ask for. */
static int config_sharing(json_object *params, const struct dra_device *d, enum dra_sharing *ret,
                          char **ret_error)
{
        const char *api = get_string(params, "apiVersion"), *kind = get_string(params, "kind");
        if (!api || !kind || !streq(api, CONFIG_API_VERSION) ||
            (!streq(kind, CONFIG_KIND_GPU) && !streq(kind, CONFIG_KIND_MIG)))
                return error_set(ret_error, -EINVAL,
                                 "unknown opaque config for driver " DRA_DRIVER
                                 ": apiVersion \"%s\", kind \"%s\" "
                                 "(nvdp understands " CONFIG_API_VERSION " " CONFIG_KIND_GPU
                                 " and " CONFIG_KIND_MIG ")",
                                 strna(api), strna(kind));
        bool mig_kind = streq(kind, CONFIG_KIND_MIG);
        if (mig_kind != (d->mig >= 0))
                return error_set(ret_error, -EINVAL, "%s cannot configure %s device %s (use %s)", kind,
                                 d->mig >= 0 ? "MIG" : "GPU", d->name,
                                 d->mig >= 0 ? CONFIG_KIND_MIG : CONFIG_KIND_GPU);
        json_object_object_foreach(params, key, val)
        {
                (void)val;
                if (!streq(key, "apiVersion") && !streq(key, "kind") && !streq(key, "sharing"))
                        return error_set(ret_error, -EINVAL, "%s: unknown field \"%s\"", kind, key);
        }
        json_object *sharing = json_get(params, "sharing");
        if (!sharing) {
                *ret = DRA_SHARING_NONE;
                return 0;
        }
        if (!json_object_is_type(sharing, json_type_object))
                return error_set(ret_error, -EINVAL, "%s: sharing is not an object", kind);
        const char *strategy = get_string(sharing, "strategy");
        json_object_object_foreach(sharing, skey, sval)
        {
                (void)sval;
                if (!streq(skey, "strategy") && !streq(skey, "timeSlicingConfig") &&
                    !streq(skey, "mpsConfig"))
                        return error_set(ret_error, -EINVAL, "%s: unknown field \"sharing.%s\"", kind, skey);
        }
        if (strategy && streq(strategy, "TimeSlicing")) {
                if (json_get(sharing, "mpsConfig"))
                        return error_set(ret_error, -EINVAL,
                                         "%s: mpsConfig is set with strategy TimeSlicing", kind);
                json_object *ts = json_get(sharing, "timeSlicingConfig");
                const char *interval = ts ? get_string(ts, "interval") : NULL;
                if (ts && !json_object_is_type(ts, json_type_object))
                        return error_set(ret_error, -EINVAL,
                                         "%s: sharing.timeSlicingConfig is not an object", kind);
                if (ts && json_object_object_length(ts) > (interval ? 1 : 0))
                        return error_set(ret_error, -EINVAL,
                                         "%s: sharing.timeSlicingConfig holds fields other than interval",
                                         kind);
                if (interval &&
                    (streq(interval, "Short") || streq(interval, "Medium") || streq(interval, "Long")))
                        return error_set(
                                ret_error, -EOPNOTSUPP,
                                "%s: time-slice interval %s would change the scheduling of every process on "
                                "%s; nvdp leaves GPU settings alone: use interval Default (or none)",
                                kind, interval, d->name);
                if (interval && !streq(interval, "Default"))
                        return error_set(
                                ret_error, -EINVAL,
                                "%s: unknown time-slice interval \"%s\" (Default, Short, Medium, Long)",
                                kind, interval);
                *ret = DRA_SHARING_TIME_SLICING;
                return 0;
        }
        if (strategy && streq(strategy, "MPS"))
                return error_set(ret_error, -EOPNOTSUPP,
                                 "%s: sharing strategy MPS is not supported by nvdp's DRA driver yet; use "
                                 "TimeSlicing "
                                 "(or the device plugin's MPS sharing)",
                                 kind);
        return error_set(ret_error, -EINVAL, "%s: unknown sharing strategy \"%s\" (TimeSlicing, MPS)", kind,
                         strna(strategy));
}

/* The sharing for a device allocated for request: from the last config for our driver that applies to it,
 * class configs before claim configs (a claim's own configuration overrides its class's). Every applicable
 * config is checked, also those a later one overrides: a mistake in one is never silently ignored. */
static int device_sharing(json_object *configs, const char *request, const struct dra_device *d,
                          enum dra_sharing *ret, char **ret_error)
{
        size_t n = configs ? json_array_size(configs) : 0;
        enum dra_sharing sharing = DRA_SHARING_NONE;
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n; i++) {
                        json_object *cfg = json_array_at(configs, i);
                        const char *source = get_string(cfg, "source");
                        bool from_class = source && streq(source, "FromClass");
                        if (from_class != (pass == 0))
                                continue;
                        json_object *opaque = get_typed(cfg, "opaque", json_type_object);
                        const char *driver = opaque ? get_string(opaque, "driver") : NULL;
                        /* Configs for other drivers are theirs; "parameters" may be anything they define. */
                        if (!driver || !streq(driver, DRA_DRIVER) || !config_applies(cfg, request))
                                continue;
                        json_object *params = json_get(opaque, "parameters");
                        if (!json_object_is_type(params, json_type_object))
                                return error_set(ret_error, -EINVAL,
                                                 "opaque config for driver " DRA_DRIVER
                                                 " has no parameters object");
                        int r = config_sharing(params, d, &sharing, ret_error);
                        if (r < 0)
                                return r;
                }
        *ret = sharing;
        return 0;
}

static int cdi_id(const char *uid, const char *device, char **ret)
{
        return asprintf(ret, "%s/%s=%s-%s", DRA_CDI_VENDOR, DRA_CDI_CLASS, uid, device) < 0 ? -ENOMEM : 0;
}

int dra_claim_resolve(const char *json, size_t size, const struct dra_claim_ref *ref, const char *node,
                      const struct dra_device *devs, size_t n_devs, const health_tracker *health,
                      struct dra_claim **ret, char **ret_error)
{
        int r = dra_claim_ref_check(ref, ret_error);
        if (r < 0)
                return r;
        _cleanup_json_ json_object *root = NULL;
        if (kube_json_parse(json, size, &root) < 0 || !json_object_is_type(root, json_type_object))
                return error_set(ret_error, -EINVAL,
                                 "the ResourceClaim from the API server is not a JSON object");
        json_object *meta = get_typed(root, "metadata", json_type_object);
        const char *uid = meta ? get_string(meta, "uid") : NULL;
        if (!uid || !streq(uid, ref->uid))
                return error_set(ret_error, -EINVAL,
                                 "the ResourceClaim was replaced: it has UID %s, the kubelet asked for %s",
                                 strna(uid), ref->uid);
        json_object *status = get_typed(root, "status", json_type_object);
        json_object *alloc = status ? get_typed(status, "allocation", json_type_object) : NULL;
        if (!alloc)
                return error_set(ret_error, -EINVAL, "the ResourceClaim is not allocated");
        json_object *devices = get_typed(alloc, "devices", json_type_object);
        json_object *results = devices ? get_typed(devices, "results", json_type_array) : NULL;
        json_object *configs = devices ? get_typed(devices, "config", json_type_array) : NULL;
        size_t n_results = results ? json_array_size(results) : 0;
        if (n_results > DRA_MAX_CLAIM_DEVICES)
                return error_set(ret_error, -EINVAL,
                                 "the ResourceClaim has %zu allocated devices (at most %u)", n_results,
                                 DRA_MAX_CLAIM_DEVICES);

        _cleanup_(dra_claim_freep) struct dra_claim *c = new0(struct dra_claim, 1);
        if (!c || !(c->devices = new0(struct dra_prepared_device, n_results + 1)) ||
            !(c->uid = strdup(ref->uid)) || !(c->namespace = strdup(ref->namespace)) ||
            !(c->name = strdup(ref->name)))
                return -ENOMEM;
        for (size_t i = 0; i < n_results; i++) {
                json_object *res = json_array_at(results, i);
                const char *driver = get_string(res, "driver"), *pool = get_string(res, "pool"),
                           *device = get_string(res, "device"), *request = get_string(res, "request");
                if (!driver || !streq(driver, DRA_DRIVER))
                        continue;
                if (!pool || !device || !request)
                        return error_set(ret_error, -EINVAL,
                                         "allocation result %zu lacks its request, pool or device name", i);
                if (!streq(pool, node))
                        return error_set(
                                ret_error, -ENODEV,
                                "device %s of pool %s is not on this node (nvdp on node %s serves pool %s)",
                                device, pool, node, node);
                const struct dra_device *d = dra_devices_find(devs, n_devs, device);
                if (!d)
                        return error_set(ret_error, -ENODEV,
                                         "device %s is not one of the %zu devices of node %s", device,
                                         n_devs, node);
                const struct health_unit *why = NULL;
                if (!dra_device_healthy(health, d, &why))
                        return error_set(ret_error, -EBUSY, "device %s is unhealthy: %s", device,
                                         isempty(why->reason) ? "no reason recorded" : why->reason);
                enum dra_sharing sharing = DRA_SHARING_NONE;
                r = device_sharing(configs, request, d, &sharing, ret_error);
                if (r < 0)
                        return r;
                struct dra_prepared_device *p = &c->devices[c->n_devices++];
                p->sharing = sharing;
                if (!(p->request = base_request(request)) || !(p->pool = strdup(pool)) ||
                    !(p->device = strdup(device)) || cdi_id(ref->uid, device, &p->cdi_id) < 0)
                        return -ENOMEM;
        }
        if (c->n_devices == 0)
                return error_set(ret_error, -EINVAL,
                                 "the ResourceClaim has no device of driver " DRA_DRIVER);
        *ret = TAKE_PTR(c);
        return 0;
}
