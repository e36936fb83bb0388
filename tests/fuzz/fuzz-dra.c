/* SPDX-License-Identifier: Apache-2.0 */
/* What reaches nvdp's DRA driver from outside: the kubelet's claims messages, ResourceClaims and
 * ResourceSlice lists from the API server, the checkpoint file, the kubelet's RegistrationStatus.
 * Input: byte 0 picks the parser ((byte - '0') mod 5: '0' claims protobuf, '1' ResourceClaim JSON on the 8x
 * H100 node, '2' ResourceClaim JSON on the A100 MIG node, '3' checkpoint JSON, '4' ResourceSlice list JSON);
 * the rest is the input. A checkpoint that parses must format back to text that parses to the same text. */
#include <string.h>

#include "dra/dra.h"
#include "fuzz-common.h"
#include "test-plan-inventories.h"

static inventory *h100, *a100;
static struct dra_device *h100_devs, *a100_devs;
static size_t n_h100, n_a100;
static health_tracker *h100_health;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        h100 = fixture_h100x8();
        a100 = fixture_a100_mig();
        struct health_rules r;
        if (dra_devices_list(h100, &h100_devs, &n_h100) < 0 ||
            dra_devices_list(a100, &a100_devs, &n_a100) < 0 ||
            health_rules_parse(HEALTH_POLICY_CATALOG, 1, NULL, NULL, &r) < 0 ||
            health_tracker_new(h100, &r, &h100_health) < 0)
                abort();
        /* GPU 6 fell off the bus: claims for it must be refused. */
        struct health_event e = { .kind = HEALTH_EVENT_XID, .gpu = 6, .mig = -1, .xid = 79, .time = 1 };
        health_tracker_apply(h100_health, &e, 1);
        return 0;
}

static void claims(const uint8_t *p, size_t n)
{
        struct dra_claim_list l = {};
        char *error = NULL;
        if (dra_wire_claims_unpack(p, n, &l, &error) == 0) {
                for (size_t i = 0; i < l.n; i++)
                        if (!dra_claim_uid_valid(l.refs[i].uid))
                                abort();
                dra_claim_list_done(&l);
        }
        free(error);
}

static void resolve(const char *text, size_t n, bool mig)
{
        static const struct dra_claim_ref ref = { .namespace = "default",
                                                  .uid = "6b1e3a8c-2d4f-4e5a-9b7c-0d1e2f3a4b5c",
                                                  .name = "claim" };
        struct dra_claim *c = NULL;
        char *error = NULL;
        int r = mig ? dra_claim_resolve(text, n, &ref, "node-a", a100_devs, n_a100, NULL, &c, &error)
                    : dra_claim_resolve(text, n, &ref, "node-a", h100_devs, n_h100, h100_health, &c, &error);
        if (r == 0) {
                for (size_t i = 0; i < c->n_devices; i++)
                        if (streq(c->devices[i].device, "gpu-6")) /* unhealthy: never prepared */
                                abort();
                struct dra_prepare_result res = { .uid = ref.uid, .claim = c };
                uint8_t *buf = NULL;
                size_t size;
                if (dra_wire_prepare_response_pack(&res, 1, &buf, &size) < 0)
                        abort();
                free(buf);
        }
        dra_claim_free(c);
        free(error);
}

static void checkpoint(const char *text, size_t n)
{
        struct dra_state s = {}, back = {};
        char *error = NULL, *out = NULL, *again = NULL;
        if (dra_state_parse(text, n, "node-a", &s, &error) == 0) {
                if (dra_state_format(&s, "node-a", &out) < 0 ||
                    dra_state_parse(out, strlen(out), "node-a", &back, NULL) < 0 ||
                    dra_state_format(&back, "node-a", &again) < 0 || !streq(out, again))
                        abort();
        }
        dra_state_done(&s);
        dra_state_done(&back);
        free(error);
        free(out);
        free(again);
}

static void slice_list(const char *text, size_t n)
{
        char **names = NULL;
        int64_t gen;
        char *error = NULL;
        if (dra_slice_list_parse(text, n, "node-a", &names, &gen, &error) == 0)
                for (char **s = names; *s; s++)
                        free(*s);
        free(names);
        free(error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        const uint8_t *p = data + 1;
        size_t n = size - 1;
        switch ((uint8_t)(data[0] - '0') % 5) {
        case 0: claims(p, n); break;
        case 1: resolve((const char *)p, n, false); break;
        case 2: resolve((const char *)p, n, true); break;
        case 3: checkpoint((const char *)p, n); break;
        default: slice_list((const char *)p, n); break;
        }
        return 0;
}
