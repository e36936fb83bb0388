/* SPDX-License-Identifier: Apache-2.0 */
/* The prepared claims, in memory and in the checkpoint file that carries them over a restart of nvdp or of
 * the kubelet, and the names of the claims' CDI spec files. */
#include <json-c/json.h>
#include <stdarg.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/json.h"
#include "dra.h"

#define CHECKPOINT_KIND    "nvdp-dra-checkpoint"
#define CHECKPOINT_VERSION 1
#define SPEC_PREFIX        DRA_CDI_VENDOR "-" DRA_CDI_CLASS "_"
#define SPEC_SUFFIX        ".json"
/* root, claims, a claim, devices, a device: 5 deep; anything deeper is not a checkpoint. */
#define CHECKPOINT_MAX_DEPTH 8

void dra_state_done(struct dra_state *s)
{
        for (size_t i = 0; i < s->n_claims; i++)
                dra_claim_free(s->claims[i]);
        s->claims = mfree(s->claims);
        s->n_claims = 0;
}

static ssize_t state_index(const struct dra_state *s, const char *uid)
{
        for (size_t i = 0; uid && i < s->n_claims; i++)
                if (streq(s->claims[i]->uid, uid))
                        return (ssize_t)i;
        return -1;
}

struct dra_claim *dra_state_find(const struct dra_state *s, const char *uid)
{
        ssize_t i = state_index(s, uid);
        return i < 0 ? NULL : s->claims[i];
}

int dra_state_put(struct dra_state *s, struct dra_claim *c)
{
        ssize_t i = state_index(s, c->uid);
        if (i >= 0) {
                dra_claim_free(s->claims[i]);
                s->claims[i] = c;
                return 0;
        }
        if (s->n_claims >= DRA_MAX_CLAIMS) {
                dra_claim_free(c);
                return -ENOSPC;
        }
        struct dra_claim **n = realloc(s->claims, (s->n_claims + 1) * sizeof *n);
        if (!n) {
                dra_claim_free(c);
                return -ENOMEM;
        }
        n[s->n_claims++] = c;
        s->claims = n;
        return 0;
}

struct dra_claim *dra_state_take(struct dra_state *s, const char *uid)
{
        ssize_t i = state_index(s, uid);
        if (i < 0)
                return NULL;
        struct dra_claim *c = s->claims[i];
        memmove(&s->claims[i], &s->claims[i + 1], (s->n_claims - (size_t)i - 1) * sizeof *s->claims);
        s->n_claims--;
        return c;
}

static const char *sharing_to_string(enum dra_sharing s)
{
        return s == DRA_SHARING_TIME_SLICING ? "TimeSlicing" : "None";
}

static int claim_format(json_object *claims, const struct dra_claim *c)
{
        json_object *o = json_object_new_object(), *devices;
        if (json_append(claims, o) < 0 || json_add_string(o, "uid", c->uid) < 0 ||
            json_add_string(o, "namespace", c->namespace) < 0 || json_add_string(o, "name", c->name) < 0 ||
            !(devices = json_add_array(o, "devices")))
                return -ENOMEM;
        for (size_t i = 0; i < c->n_devices; i++) {
                const struct dra_prepared_device *d = &c->devices[i];
                json_object *dev = json_object_new_object();
                if (json_append(devices, dev) < 0 || json_add_string(dev, "request", d->request) < 0 ||
                    json_add_string(dev, "pool", d->pool) < 0 ||
                    json_add_string(dev, "device", d->device) < 0 ||
                    json_add_string(dev, "cdiID", d->cdi_id) < 0 ||
                    json_add_string(dev, "sharing", sharing_to_string(d->sharing)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int dra_state_format(const struct dra_state *s, const char *node, char **ret)
{
        _cleanup_json_ json_object *root = json_object_new_object();
        json_object *claims = NULL;
        if (!root || json_add_string(root, "kind", CHECKPOINT_KIND) < 0 ||
            json_add_int(root, "version", CHECKPOINT_VERSION) < 0 ||
            json_add_string(root, "node", node) < 0 || !(claims = json_add_array(root, "claims")))
                return -ENOMEM;
        for (size_t i = 0; i < s->n_claims; i++)
                if (claim_format(claims, s->claims[i]) < 0)
                        return -ENOMEM;
        /* Indented: the file stays readable for a person debugging a node. */
        return json_format(root, true, ret);
}

/* A string member that must be there; NULL (with the error naming where) otherwise. */
static const char *need_string(json_object *o, const char *key, char **ret_error, const char *where_fmt, ...)
        _printf_(4, 5);
static const char *need_string(json_object *o, const char *key, char **ret_error, const char *where_fmt, ...)
{
        json_object *v = json_get(o, key);
        if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0)
                return json_object_get_string(v);
        va_list ap;
        va_start(ap, where_fmt);
        _cleanup_free_ char *where = NULL;
        int k = vasprintf(&where, where_fmt, ap);
        va_end(ap);
        error_set(ret_error, -EINVAL, "%s.%s is missing or not a string", k < 0 ? "?" : where, key);
        return NULL;
}

static int device_parse(json_object *o, const struct dra_claim *c, size_t ci, size_t di,
                        struct dra_prepared_device *d, char **ret_error)
{
        if (!json_object_is_type(o, json_type_object))
                return error_set(ret_error, -EINVAL, "claims[%zu].devices[%zu] is not an object", ci, di);
        const char *request = need_string(o, "request", ret_error, "claims[%zu].devices[%zu]", ci, di);
        const char *pool =
                request ? need_string(o, "pool", ret_error, "claims[%zu].devices[%zu]", ci, di) : NULL;
        const char *device =
                pool ? need_string(o, "device", ret_error, "claims[%zu].devices[%zu]", ci, di) : NULL;
        const char *cdi =
                device ? need_string(o, "cdiID", ret_error, "claims[%zu].devices[%zu]", ci, di) : NULL;
        const char *sharing =
                cdi ? need_string(o, "sharing", ret_error, "claims[%zu].devices[%zu]", ci, di) : NULL;
        if (!sharing)
                return -EINVAL;
        _cleanup_free_ char *expected = NULL;
        if (asprintf(&expected, "%s/%s=%s-%s", DRA_CDI_VENDOR, DRA_CDI_CLASS, c->uid, device) < 0)
                return -ENOMEM;
        if (!streq(cdi, expected))
                return error_set(ret_error, -EINVAL, "claims[%zu].devices[%zu].cdiID is \"%s\", not \"%s\"",
                                 ci, di, cdi, expected);
        if (streq(sharing, "TimeSlicing"))
                d->sharing = DRA_SHARING_TIME_SLICING;
        else if (streq(sharing, "None"))
                d->sharing = DRA_SHARING_NONE;
        else
                return error_set(ret_error, -EINVAL, "claims[%zu].devices[%zu].sharing \"%s\" is unknown",
                                 ci, di, sharing);
        if (!(d->request = strdup(request)) || !(d->pool = strdup(pool)) || !(d->device = strdup(device)) ||
            !(d->cdi_id = strdup(cdi)))
                return -ENOMEM;
        return 0;
}

static int claim_parse(json_object *o, size_t ci, struct dra_claim **ret, char **ret_error)
{
        if (!json_object_is_type(o, json_type_object))
                return error_set(ret_error, -EINVAL, "claims[%zu] is not an object", ci);
        const char *uid = need_string(o, "uid", ret_error, "claims[%zu]", ci);
        const char *ns = uid ? need_string(o, "namespace", ret_error, "claims[%zu]", ci) : NULL;
        const char *name = ns ? need_string(o, "name", ret_error, "claims[%zu]", ci) : NULL;
        if (!name)
                return -EINVAL;
        struct dra_claim_ref ref = { .namespace = ns, .uid = uid, .name = name };
        _cleanup_free_ char *why = NULL;
        if (dra_claim_ref_check(&ref, &why) < 0)
                return error_set(ret_error, -EINVAL, "claims[%zu]: %s", ci, why);
        json_object *devices = json_get(o, "devices");
        size_t n = json_object_is_type(devices, json_type_array) ? json_object_array_length(devices) : 0;
        if (n == 0 || n > DRA_MAX_CLAIM_DEVICES)
                return error_set(ret_error, -EINVAL, "claims[%zu].devices must list 1 to %u devices", ci,
                                 DRA_MAX_CLAIM_DEVICES);
        _cleanup_(dra_claim_freep) struct dra_claim *c = new0(struct dra_claim, 1);
        if (!c || !(c->uid = strdup(uid)) || !(c->namespace = strdup(ns)) || !(c->name = strdup(name)) ||
            !(c->devices = new0(struct dra_prepared_device, n)))
                return -ENOMEM;
        for (size_t di = 0; di < n; di++) {
                int r = device_parse(json_object_array_get_idx(devices, di), c, ci, di, &c->devices[di],
                                     ret_error);
                c->n_devices = di + 1; /* freed with the claim, also when half filled */
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int dra_state_parse(const char *json, size_t size, const char *node, struct dra_state *ret, char **ret_error)
{
        _cleanup_json_ json_object *root = NULL;
        if (json_parse(json, size, DRA_MAX_CHECKPOINT_SIZE, CHECKPOINT_MAX_DEPTH, &root) < 0 ||
            !json_object_is_type(root, json_type_object))
                return error_set(ret_error, -EINVAL, "not a JSON object");
        const char *kind = json_object_get_string(json_get(root, "kind"));
        if (!kind || !streq(kind, CHECKPOINT_KIND))
                return error_set(ret_error, -EINVAL, "kind is \"%s\", not \"" CHECKPOINT_KIND "\"",
                                 strna(kind));
        json_object *version = json_get(root, "version");
        if (!json_object_is_type(version, json_type_int) ||
            json_object_get_int(version) != CHECKPOINT_VERSION)
                return error_set(ret_error, -EINVAL, "version is %s; this nvdp reads version %d",
                                 json_object_to_json_string(version), CHECKPOINT_VERSION);
        const char *owner = json_object_get_string(json_get(root, "node"));
        if (!owner || !streq(owner, node))
                return error_set(ret_error, -EINVAL, "it was written on node \"%s\", this is node \"%s\"",
                                 strna(owner), node);
        json_object *claims = json_get(root, "claims");
        if (!json_object_is_type(claims, json_type_array))
                return error_set(ret_error, -EINVAL, "claims is missing or not a list");
        size_t n = json_object_array_length(claims);
        if (n > DRA_MAX_CLAIMS)
                return error_set(ret_error, -EINVAL, "it holds %zu claims (at most %u)", n, DRA_MAX_CLAIMS);

        _cleanup_(dra_state_done) struct dra_state s = {};
        for (size_t i = 0; i < n; i++) {
                struct dra_claim *c = NULL;
                int r = claim_parse(json_object_array_get_idx(claims, i), i, &c, ret_error);
                if (r < 0)
                        return r;
                if (dra_state_find(&s, c->uid)) {
                        r = error_set(ret_error, -EINVAL, "claims[%zu]: claim UID %s is listed twice", i,
                                      c->uid);
                        dra_claim_free(c);
                        return r;
                }
                r = dra_state_put(&s, c);
                if (r < 0)
                        return r;
        }
        *ret = s;
        s = (struct dra_state){};
        return 0;
}

int dra_checkpoint_read(const char *path, const char *node, struct dra_state *ret, char **ret_error)
{
        _cleanup_free_ char *text = NULL, *why = NULL;
        size_t size = 0;
        int r = read_full_file(path, DRA_MAX_CHECKPOINT_SIZE, &text, &size);
        if (r == -ENOENT) {
                *ret = (struct dra_state){};
                return 0;
        }
        if (r == -EFBIG)
                return error_set(ret_error, r, "DRA checkpoint %s is larger than %u bytes", path,
                                 DRA_MAX_CHECKPOINT_SIZE);
        if (r < 0)
                return error_set(ret_error, r, "cannot read DRA checkpoint %s: %s", path, strerror(-r));
        r = dra_state_parse(text, size, node, ret, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return error_set(ret_error, r, "DRA checkpoint %s is damaged: %s", path, why);
        return 0;
}

int dra_checkpoint_write(const char *path, const char *node, const struct dra_state *s, char **ret_error)
{
        _cleanup_free_ char *text = NULL;
        int r = dra_state_format(s, node, &text);
        if (r < 0)
                return r;
        if (strlen(text) > DRA_MAX_CHECKPOINT_SIZE)
                return error_set(ret_error, -EFBIG, "DRA checkpoint %s would be larger than %u bytes", path,
                                 DRA_MAX_CHECKPOINT_SIZE);
        r = write_file_atomic(path, text, strlen(text), 0600);
        if (r < 0)
                return error_set(ret_error, r, "cannot write DRA checkpoint %s: %s", path, strerror(-r));
        return 0;
}

int dra_claim_spec_filename(const char *uid, char **ret)
{
        if (!dra_claim_uid_valid(uid))
                return -EINVAL;
        return asprintf(ret, SPEC_PREFIX "%s" SPEC_SUFFIX, uid) < 0 ? -ENOMEM : 0;
}

bool dra_claim_spec_filename_parse(const char *name, char **ret_uid)
{
        if (!name || strlen(name) <= strlen(SPEC_PREFIX) + strlen(SPEC_SUFFIX) ||
            !startswith(name, SPEC_PREFIX) || !endswith(name, SPEC_SUFFIX))
                return false;
        size_t n = strlen(name) - strlen(SPEC_PREFIX) - strlen(SPEC_SUFFIX);
        _cleanup_free_ char *uid = strndup(name + strlen(SPEC_PREFIX), n);
        if (!uid || !dra_claim_uid_valid(uid))
                return false;
        if (ret_uid)
                *ret_uid = TAKE_PTR(uid);
        return true;
}
