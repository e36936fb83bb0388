/* SPDX-License-Identifier: Apache-2.0 */
/* Writes the seed corpus of fuzz-rpc-server and fuzz-messages (bytes a kubelet would send), so the seeds
 * are reproducible rather than opaque blobs. Run by hand after a change of the targets' input format:
 *   cc -Isrc -Ibuild/gen -o gen-seeds tests/fuzz/gen-seeds.c build/gen/deviceplugin.pb-c.c \
 *      -lnghttp2 -lprotobuf-c && ./gen-seeds tests/fuzz/corpus */
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviceplugin.pb-c.h"

static const char *outdir;

static void put(const char *target, const char *name, const uint8_t *p, size_t n)
{
        char path[512];
        snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
        FILE *f = fopen(path, "we");
        if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
                perror(path);
                exit(1);
        }
}

struct body {
        const uint8_t *p;
        size_t n, off;
};

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
        struct body *b = src->ptr;
        size_t k = b->n - b->off < len ? b->n - b->off : len;
        memcpy(buf, b->p + b->off, k);
        b->off += k;
        if (b->off == b->n)
                *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)k;
}

#define NV(n, v)                                                                                            \
        {                                                                                                   \
                (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE              \
        }

/* One client session: SETTINGS, then one request per path with a gRPC-framed msg; bytes after the preface.
 */
static void session(const char *name, const char *const *paths, size_t n_paths, const uint8_t *msg, size_t n,
                    const char *content_type, bool rst_after)
{
        nghttp2_session_callbacks *cbs;
        nghttp2_session *s;
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_client_new(&s, cbs, NULL);
        nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
        uint8_t *framed = malloc(n + 5);
        framed[0] = 0;
        framed[1] = (uint8_t)(n >> 24);
        framed[2] = (uint8_t)(n >> 16);
        framed[3] = (uint8_t)(n >> 8);
        framed[4] = (uint8_t)n;
        memcpy(framed + 5, msg, n);
        struct body bodies[8];
        for (size_t i = 0; i < n_paths; i++) {
                nghttp2_nv nva[] = { NV(":method", "POST"),
                                     NV(":scheme", "http"),
                                     NV(":path", paths[i]),
                                     NV(":authority", "localhost"),
                                     NV("content-type", content_type),
                                     NV("te", "trailers"),
                                     NV("grpc-timeout", "10S") };
                bodies[i] = (struct body){ framed, n + 5, 0 };
                nghttp2_data_provider dp = { .source.ptr = &bodies[i], .read_callback = read_body };
                int32_t id = nghttp2_submit_request(s, NULL, nva, sizeof nva / sizeof nva[0], &dp, NULL);
                if (rst_after)
                        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        }
        nghttp2_submit_ping(s, NGHTTP2_FLAG_NONE, NULL);
        uint8_t out[65536];
        size_t len = 0;
        for (;;) {
                const uint8_t *p;
                ssize_t k = nghttp2_session_mem_send(s, &p);
                if (k <= 0)
                        break;
                memcpy(out + len, p, (size_t)k);
                len += (size_t)k;
        }
        nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
        /* the 24-byte preface is added by the target */
        put("rpc-server", name, out + 24, len - 24);
        nghttp2_session_del(s);
        nghttp2_session_callbacks_del(cbs);
        free(framed);
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
        *n = protobuf_c_message_get_packed_size(m);
        uint8_t *b = malloc(*n + 2);
        protobuf_c_message_pack(m, b + 2);
        return b;
}

int main(int argc, char **argv)
{
        outdir = argc > 1 ? argv[1] : "tests/fuzz/corpus";
        char *ids[] = { "GPU-00000000-0000-0000-0000-000000000003",
                        "GPU-00000000-0000-0000-0000-000000000001::2",
                        "MIG-a1000000-0000-0000-0000-000000000000",
                        "GPU-00000000-0000-0000-0000-000000000003" };
        V1beta1__ContainerAllocateRequest c1 = V1BETA1__CONTAINER_ALLOCATE_REQUEST__INIT,
                                          c2 = V1BETA1__CONTAINER_ALLOCATE_REQUEST__INIT;
        c1.devices_ids = ids;
        c1.n_devices_ids = 1;
        c2.devices_ids = ids;
        c2.n_devices_ids = 4;
        V1beta1__ContainerAllocateRequest *cs[] = { &c1, &c2 };
        V1beta1__AllocateRequest a = V1BETA1__ALLOCATE_REQUEST__INIT;
        a.container_requests = cs;
        a.n_container_requests = 2;
        size_t n;
        uint8_t *b = pack(&a.base, &n);

        static const char *const unary[] = { "/v1beta1.DevicePlugin/Allocate" };
        static const char *const watch[] = { "/v1beta1.DevicePlugin/ListAndWatch",
                                             "/v1beta1.DevicePlugin/Allocate",
                                             "/v1beta1.DevicePlugin/PreStartContainer", "/a", "/nope" };
        session("allocate", unary, 1, b + 2, n, "application/grpc", false);
        session("watch-and-calls", watch, 5, b + 2, n, "application/grpc+proto", false);
        session("cancelled", watch, 2, b + 2, n, "application/grpc", true);
        session("bad-content-type", unary, 1, b + 2, n, "text/plain", false);

        /* fuzz-messages: byte 0 = plan | message << 2 | resource << 4, byte 1 = unhealthy mask */
        for (unsigned plan = 0; plan < 4; plan++) {
                char name[32];
                b[0] = (uint8_t)plan;
                b[1] = 0;
                snprintf(name, sizeof name, "allocate-%u", plan);
                put("messages", name, b, n + 2);
        }
        free(b);

        V1beta1__ContainerPreferredAllocationRequest p =
                V1BETA1__CONTAINER_PREFERRED_ALLOCATION_REQUEST__INIT;
        char *avail[] = {
                "GPU-00000000-0000-0000-0000-000000000000",    "GPU-00000000-0000-0000-0000-000000000001",
                "GPU-00000000-0000-0000-0000-000000000005",    "GPU-00000000-0000-0000-0000-000000000007",
                "GPU-00000000-0000-0000-0000-000000000002::1", "GPU-00000000-0000-0000-0000-000000000002::3",
                "MIG-a0200000-0000-0000-0000-000000000000"
        };
        p.available_deviceids = avail;
        p.n_available_deviceids = 7;
        p.must_include_deviceids = avail + 1;
        p.n_must_include_deviceids = 1;
        p.allocation_size = 3;
        V1beta1__ContainerPreferredAllocationRequest *ps[] = { &p };
        V1beta1__PreferredAllocationRequest pr = V1BETA1__PREFERRED_ALLOCATION_REQUEST__INIT;
        pr.container_requests = ps;
        pr.n_container_requests = 1;
        b = pack(&pr.base, &n);
        for (unsigned plan = 0; plan < 4; plan++) {
                char name[32];
                b[0] = (uint8_t)(plan | 1u << 2);
                b[1] = plan == 1 ? 0x05 : 0;
                snprintf(name, sizeof name, "preferred-%u", plan);
                put("messages", name, b, n + 2);
        }
        free(b);
        V1beta1__PreStartContainerRequest ps1 = V1BETA1__PRE_START_CONTAINER_REQUEST__INIT;
        ps1.devices_ids = ids;
        ps1.n_devices_ids = 2;
        b = pack(&ps1.base, &n);
        b[0] = 2u << 2;
        b[1] = 0;
        put("messages", "prestart", b, n + 2);
        free(b);
        return 0;
}
