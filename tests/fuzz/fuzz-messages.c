/* SPDX-License-Identifier: Apache-2.0 */
/* The kubelet's request messages, decoded as the plugin decodes them and run through the same logic as
 * its handlers (src/plugin/endpoint.c) against fixed plans: 8x H100 whole GPUs, 8x H100 time-sliced x4
 * (distributed, and packed with failRequestsGreaterThanOne), 2x A100 MIG mixed.
 * Input: byte 0 picks plan (bits 0-1), message (bits 2-3) and resource (bits 4-7); byte 1 marks devices
 * unhealthy (bit i -> device i mod 8); the rest is the protobuf message. */
#include <string.h>

#include "base/strv.h"
#include "config/config.h"
#include "deviceplugin.pb-c.h"
#include "fuzz-common.h"
#include "plugin/allocate.h"
#include "plugin/kubelet-wire.h"
#include "plugin/prefer.h"
#include "resource/plan.h"
#include "test-plan-inventories.h"

struct scenario {
        inventory *inv;
        config *config;
        plan *plan;
};
static struct scenario scenarios[4];
static char *control[] = { (char *)"/dev/nvidiactl", (char *)"/dev/nvidia-uvm", NULL };

static void scenario_init(struct scenario *s, inventory *inv, unsigned replicas, bool packed, bool fail_gt1,
                          unsigned list_strategy, enum mig_strategy mig, const char *root)
{
        s->inv = inv;
        if (config_new_default(&s->config) < 0)
                abort();
        config *c = s->config;
        c->flags.mig_strategy = mig;
        c->flags.plugin.device_list_strategy = list_strategy;
        c->flags.plugin.shared_devices_allocation_policy =
                packed ? ALLOCATION_PACKED : ALLOCATION_DISTRIBUTED;
        if (replicas > 1) {
                c->sharing.strategy = SHARING_TIME_SLICING;
                c->sharing.fail_requests_greater_than_one = fail_gt1;
                c->sharing.resources = new0(struct replicated_resource, 1);
                c->sharing.resources[0] = (struct replicated_resource){ .name = strdup("nvidia.com/gpu"),
                                                                        .replicas = replicas,
                                                                        .devices_all = true };
                c->sharing.n_resources = 1;
        }
        char *err = NULL;
        if (inventory_read_mig_minors(inv, root) < 0 || plan_build(inv, c, &s->plan, &err) < 0) {
                fprintf(stderr, "plan_build: %s\n", err);
                abort();
        }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        const char *src = getenv("NVDP_SRC");
        char *root;
        if (asprintf(&root, "%s/tests/unit/fixtures/config/a100-root", src ? src : ".") < 0)
                abort();
        scenario_init(&scenarios[0], fixture_h100x8(), 1, false, false, DEVICE_LIST_ENVVAR,
                      MIG_STRATEGY_NONE, "/nonexistent");
        scenario_init(&scenarios[1], fixture_h100x8(), 4, false, false,
                      DEVICE_LIST_ENVVAR | DEVICE_LIST_VOLUME_MOUNTS, MIG_STRATEGY_NONE, "/nonexistent");
        scenario_init(&scenarios[2], fixture_h100x8(), 4, true, true,
                      DEVICE_LIST_CDI_ANNOTATIONS | DEVICE_LIST_CDI_CRI, MIG_STRATEGY_NONE, "/nonexistent");
        scenario_init(&scenarios[3], fixture_a100_mig(), 1, false, false, DEVICE_LIST_ENVVAR,
                      MIG_STRATEGY_MIXED, root);
        free(root);
        return 0;
}

static bool in_list(char *const *l, size_t n, const char *id)
{
        for (size_t i = 0; i < n; i++)
                if (streq(l[i], id))
                        return true;
        return false;
}

static void do_allocate(const struct scenario *s, const struct plan_resource *res, const uint8_t *msg,
                        size_t size)
{
        _cleanup_(kubelet_request_freep) struct kubelet_request *req = NULL;
        int u = kubelet_wire_unpack_allocate(msg, size, &req);
        if (u < 0) {
                if (u != -EBADMSG && u != -E2BIG && u != -ENOMEM)
                        abort();
                return;
        }
        size_t n = req->n_containers;
        struct allocate_response **resps = new0(struct allocate_response *, n + 1);
        struct allocate_context ctx = {
                .config = s->config,
                .resource = res,
                .control_devices = control,
                .annotation_uuid = "11111111-2222-4333-8444-555555555555",
        };
        _cleanup_free_ char *error = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        size_t out_size = 0;
        int r = resps ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const struct container_request *c = &req->containers[i];
                r = allocate_container(&ctx, c->ids, c->n_ids, &resps[i], &error);
                if (r == -EINVAL && (!error || strchr(error, '\n')))
                        abort(); /* a refusal says why, in one line */
                /* a container asking for nothing gets nothing visible */
                const char *vis = r >= 0 ? allocate_response_env(resps[i], "NVIDIA_VISIBLE_DEVICES") : NULL;
                if (vis && c->n_ids == 0 && *vis && !streq(vis, "/var/run/nvidia-container-devices")) {
                        fprintf(stderr, "no IDs asked for, NVIDIA_VISIBLE_DEVICES=%s\n", vis);
                        abort();
                }
        }
        if (r >= 0) {
                r = kubelet_wire_pack_allocate(resps, n, &out, &out_size);
                if (r < 0)
                        abort();
                /* what we send decodes, with one response per container */
                V1beta1__AllocateResponse *back = v1beta1__allocate_response__unpack(NULL, out_size, out);
                if (!back || back->n_container_responses != n)
                        abort();
                v1beta1__allocate_response__free_unpacked(back, NULL);
        }
        for (size_t i = 0; resps && i < n; i++)
                allocate_response_free(resps[i]);
        free(resps);
}

static void do_preferred(const struct scenario *s, const struct plan_resource *res, uint8_t unhealthy,
                         const uint8_t *msg, size_t size)
{
        _cleanup_(kubelet_request_freep) struct kubelet_request *req = NULL;
        int u = kubelet_wire_unpack_preferred(msg, size, &req);
        if (u < 0) {
                if (u != -EBADMSG && u != -E2BIG && u != -ENOMEM)
                        abort();
                return;
        }
        _cleanup_free_ bool *healthy = new0(bool, res->n_devices + 1);
        for (size_t i = 0; i < res->n_devices; i++)
                healthy[i] = !(unhealthy & (1u << (i % 8)));
        for (size_t i = 0; i < req->n_containers; i++) {
                const struct container_request *c = &req->containers[i];
                size_t want = c->size;
                _cleanup_strv_free_ char **ids = NULL;
                int r = preferred_allocation(
                        s->inv, res, healthy, s->config->flags.plugin.shared_devices_allocation_policy,
                        c->ids, c->n_ids, c->must_include, c->n_must_include, want, &ids);
                if (r < 0) {
                        if (r != -ENOMEM && r != -EINVAL)
                                abort();
                        continue;
                }
                size_t n = strv_length(ids);
                /* must_include first, then at most `want` IDs in all; the others offered, known, healthy */
                if (n > want && n > c->n_must_include)
                        abort();
                for (size_t k = 0; k < n; k++) {
                        for (size_t j = 0; j < k; j++)
                                if (streq(ids[j], ids[k]))
                                        abort();
                        if (in_list(c->must_include, c->n_must_include, ids[k]))
                                continue;
                        if (!in_list(c->ids, c->n_ids, ids[k]))
                                abort();
                        ssize_t d = plan_resource_find_device(res, ids[k]);
                        if (d < 0 || !healthy[d])
                                abort();
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 2)
                return 0;
        const struct scenario *s = &scenarios[data[0] & 3];
        const struct plan_resource *res = &s->plan->resources[(data[0] >> 4) % s->plan->n_resources];
        switch ((data[0] >> 2) & 3) {
        case 0:
        case 3: do_allocate(s, res, data + 2, size - 2); break;
        case 1: do_preferred(s, res, data[1], data + 2, size - 2); break;
        case 2: {
                /* PreStartContainer: decoded and answered empty */
                V1beta1__PreStartContainerRequest *req =
                        v1beta1__pre_start_container_request__unpack(NULL, size - 2, data + 2);
                if (req)
                        v1beta1__pre_start_container_request__free_unpacked(req, NULL);
                break;
        }
        }
        return 0;
}
