/* SPDX-License-Identifier: Apache-2.0 */
/* Every protobuf of the kubelet's DRA API (proto/dra.proto) and of the plugin watcher's registration API
 * (proto/pluginregistration.proto) nvdp reads or writes, packed and unpacked here only. */
#include "base/error.h"
#include "dra.h"
#include "dra.pb-c.h"
#include "pluginregistration.pb-c.h"

char *dra_printable(const char *s)
{
        size_t n = s ? MIN(strlen(s), DRA_MAX_ERROR) : 0;
        char *out = malloc(n + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++)
                out[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
        out[n] = '\0';
        return out;
}

/* Packs m into a new buffer (+1 byte: an empty message still gets one). */
static int pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_size)
{
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(n + 1);
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

void dra_claim_list_done(struct dra_claim_list *l)
{
        free(l->refs);
        if (l->message)
                protobuf_c_message_free_unpacked(l->message, NULL);
        *l = (struct dra_claim_list){};
}

int dra_wire_claims_unpack(const uint8_t *msg, size_t size, struct dra_claim_list *ret, char **ret_error)
{
        /* NodeUnprepareResourcesRequest is the same message: repeated Claim claims = 1. */
        Dra__V1__NodePrepareResourcesRequest *req =
                dra__v1__node_prepare_resources_request__unpack(NULL, size, msg);
        if (!req)
                return error_set(ret_error, -EBADMSG, "the request is not a DRA claims message");
        _cleanup_(dra_claim_list_done) struct dra_claim_list l = { .message = req };
        if (req->n_claims > DRA_MAX_REQUEST_CLAIMS)
                return error_set(ret_error, -EINVAL, "the request names %zu claims (at most %u)",
                                 req->n_claims, DRA_MAX_REQUEST_CLAIMS);
        l.refs = new0(struct dra_claim_ref, req->n_claims + 1);
        if (!l.refs)
                return -ENOMEM;
        for (size_t i = 0; i < req->n_claims; i++) {
                const Dra__V1__Claim *c = req->claims[i];
                struct dra_claim_ref ref = { .namespace = c->namespace_, .uid = c->uid, .name = c->name };
                _cleanup_free_ char *why = NULL, *shown = NULL;
                if (dra_claim_ref_check(&ref, &why) < 0) {
                        shown = dra_printable(why);
                        return error_set(ret_error, -EINVAL, "claim %zu of the request: %s", i,
                                         strna(shown));
                }
                l.refs[l.n++] = ref;
        }
        *ret = l;
        l = (struct dra_claim_list){};
        return 0;
}

static void prepare_response_free(Dra__V1__NodePrepareResourcesResponse *resp)
{
        for (size_t i = 0; i < resp->n_claims; i++) {
                Dra__V1__NodePrepareResourcesResponse__ClaimsEntry *e = resp->claims[i];
                if (!e)
                        continue;
                Dra__V1__NodePrepareResourceResponse *v = e->value;
                for (size_t j = 0; v && j < v->n_devices; j++)
                        free(v->devices[j]);
                if (v && v->error != protobuf_c_empty_string)
                        free(v->error);
                if (v)
                        free(v->devices);
                free(v);
                free(e);
        }
        free(resp->claims);
}

int dra_wire_prepare_response_pack(const struct dra_prepare_result *r, size_t n, uint8_t **ret,
                                   size_t *ret_size)
{
        Dra__V1__NodePrepareResourcesResponse resp = DRA__V1__NODE_PREPARE_RESOURCES_RESPONSE__INIT;
        int rc = -ENOMEM;
        resp.claims = new0(Dra__V1__NodePrepareResourcesResponse__ClaimsEntry *, n + 1);
        if (!resp.claims)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                Dra__V1__NodePrepareResourcesResponse__ClaimsEntry *e =
                        new0(Dra__V1__NodePrepareResourcesResponse__ClaimsEntry, 1);
                Dra__V1__NodePrepareResourceResponse *v = new0(Dra__V1__NodePrepareResourceResponse, 1);
                if (!e || !v) {
                        free(e);
                        free(v);
                        goto finish;
                }
                dra__v1__node_prepare_resources_response__claims_entry__init(e);
                dra__v1__node_prepare_resource_response__init(v);
                e->key = (char *)r[i].uid;
                e->value = v;
                resp.claims[resp.n_claims++] = e;
                if (!r[i].claim) {
                        v->error = dra_printable(isempty(r[i].error) ? "preparing the claim failed"
                                                                     : r[i].error);
                        if (!v->error) {
                                v->error = (char *)protobuf_c_empty_string;
                                goto finish;
                        }
                        continue;
                }
                const struct dra_claim *c = r[i].claim;
                v->devices = new0(Dra__V1__Device *, c->n_devices + 1);
                if (!v->devices)
                        goto finish;
                for (size_t j = 0; j < c->n_devices; j++) {
                        /* One allocation for the device and its two one-element lists. */
                        struct {
                                Dra__V1__Device d;
                                char *request;
                                char *cdi_id;
                        } *x = new0(__typeof__(*x), 1);
                        if (!x)
                                goto finish;
                        dra__v1__device__init(&x->d);
                        x->request = c->devices[j].request;
                        x->cdi_id = c->devices[j].cdi_id;
                        x->d.n_request_names = 1;
                        x->d.request_names = &x->request;
                        x->d.pool_name = c->devices[j].pool;
                        x->d.device_name = c->devices[j].device;
                        x->d.n_cdi_device_ids = 1;
                        x->d.cdi_device_ids = &x->cdi_id;
                        v->devices[v->n_devices++] = &x->d;
                }
        }
        rc = pack(&resp.base, ret, ret_size);
finish:
        prepare_response_free(&resp);
        return rc;
}

int dra_wire_unprepare_response_pack(const struct dra_unprepare_result *r, size_t n, uint8_t **ret,
                                     size_t *ret_size)
{
        Dra__V1__NodeUnprepareResourcesResponse resp = DRA__V1__NODE_UNPREPARE_RESOURCES_RESPONSE__INIT;
        /* Entries, values and error texts in three arrays freed together. */
        _cleanup_free_ Dra__V1__NodeUnprepareResourcesResponse__ClaimsEntry *entries =
                new0(Dra__V1__NodeUnprepareResourcesResponse__ClaimsEntry, n + 1);
        _cleanup_free_ Dra__V1__NodeUnprepareResourceResponse *values =
                new0(Dra__V1__NodeUnprepareResourceResponse, n + 1);
        _cleanup_free_ Dra__V1__NodeUnprepareResourcesResponse__ClaimsEntry **ptrs =
                new0(Dra__V1__NodeUnprepareResourcesResponse__ClaimsEntry *, n + 1);
        _cleanup_free_ char **errors = new0(char *, n + 1);
        if (!entries || !values || !ptrs || !errors)
                return -ENOMEM;
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                dra__v1__node_unprepare_resources_response__claims_entry__init(&entries[i]);
                dra__v1__node_unprepare_resource_response__init(&values[i]);
                entries[i].key = (char *)r[i].uid;
                entries[i].value = &values[i];
                if (r[i].error) {
                        errors[i] = dra_printable(r[i].error);
                        if (!errors[i]) {
                                rc = -ENOMEM;
                                break;
                        }
                        values[i].error = errors[i];
                }
                ptrs[i] = &entries[i];
        }
        resp.n_claims = n;
        resp.claims = ptrs;
        if (rc == 0)
                rc = pack(&resp.base, ret, ret_size);
        for (size_t i = 0; i < n; i++)
                free(errors[i]);
        return rc;
}

int dra_wire_plugin_info_pack(const char *type, const char *name, const char *endpoint,
                              char *const *versions, uint8_t **ret, size_t *ret_size)
{
        Pluginregistration__PluginInfo info = PLUGINREGISTRATION__PLUGIN_INFO__INIT;
        info.type = (char *)type;
        info.name = (char *)name;
        info.endpoint = (char *)endpoint;
        for (info.n_supported_versions = 0; versions && versions[info.n_supported_versions];)
                info.n_supported_versions++;
        info.supported_versions = (char **)versions;
        return pack(&info.base, ret, ret_size);
}

int dra_wire_registration_status_unpack(const uint8_t *msg, size_t size, bool *ret_registered,
                                        char **ret_error)
{
        Pluginregistration__RegistrationStatus *s =
                pluginregistration__registration_status__unpack(NULL, size, msg);
        if (!s)
                return -EBADMSG;
        char *error = dra_printable(s->error);
        bool registered = s->plugin_registered;
        pluginregistration__registration_status__free_unpacked(s, NULL);
        if (!error)
                return -ENOMEM;
        *ret_registered = registered;
        *ret_error = error;
        return 0;
}

int dra_wire_registration_status_response_pack(uint8_t **ret, size_t *ret_size)
{
        Pluginregistration__RegistrationStatusResponse m =
                PLUGINREGISTRATION__REGISTRATION_STATUS_RESPONSE__INIT;
        return pack(&m.base, ret, ret_size);
}
