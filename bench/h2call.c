/* SPDX-License-Identifier: Apache-2.0 */
/* The bench's latency client: gRPC unary calls over one HTTP/2 connection (libnghttp2, blocking socket),
 * one after another, as the kubelet makes them, but costing a few microseconds itself so the figure is
 * the plugin's. Shares no code with nvdp: messages are encoded here by hand (they are two nested lists of
 * strings). Prints one line per call: its wall time in nanoseconds. The first call is not counted (the
 * connection's SETTINGS exchange).
 *
 * Usage: h2call allocate SOCKET N ID[,ID...]
 *        h2call preferred SOCKET N SIZE ID[,ID...]
 * H2CALL_PATH, if set, replaces the method path (the same bytes to another unary method, e.g. an echo).
 * H2CALL_DUMP, if set, names a file that gets the last reply's message (protobuf bytes, no gRPC prefix):
 * what the bench's floor servers answer with. */
#include <errno.h>
#include <inttypes.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct buf {
        uint8_t *p;
        size_t n, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
        if (b->n + n > b->cap) {
                b->cap = (b->n + n) * 2 + 64;
                b->p = realloc(b->p, b->cap);
                if (!b->p)
                        abort();
        }
        memcpy(b->p + b->n, d, n);
        b->n += n;
}

static void put_varint(struct buf *b, uint64_t v)
{
        do {
                uint8_t c = v & 0x7f;
                v >>= 7;
                if (v)
                        c |= 0x80;
                put(b, &c, 1);
        } while (v);
}

/* field of wire type 2 (length-delimited) */
static void put_bytes(struct buf *b, unsigned field, const void *d, size_t n)
{
        put_varint(b, field << 3 | 2);
        put_varint(b, n);
        put(b, d, n);
}

struct call {
        const uint8_t *req;
        size_t req_len, req_off;
        bool done;
        int grpc_status;
        struct buf *resp; /* the reply's DATA bytes (prefixed message), or NULL */
};

static int fd = -1;

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *u)
{
        ssize_t n = write(fd, data, len);
        if (n < 0)
                return errno == EAGAIN ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
        return n;
}

static ssize_t read_cb(nghttp2_session *s, int32_t stream_id, uint8_t *out, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *u)
{
        struct call *c = src->ptr;
        size_t n = c->req_len - c->req_off;
        if (n > len)
                n = len;
        memcpy(out, c->req + c->req_off, n);
        c->req_off += n;
        if (c->req_off == c->req_len)
                *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
}

static int header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *u)
{
        struct call *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (c && namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
                c->grpc_status = atoi((const char *)value);
        return 0;
}

static int data_cb(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                   void *u)
{
        struct call *c = nghttp2_session_get_stream_user_data(s, stream_id);
        if (c && c->resp)
                put(c->resp, data, len);
        return 0;
}

static int close_cb(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *u)
{
        struct call *c = nghttp2_session_get_stream_user_data(s, stream_id);
        if (c)
                c->done = true;
        return 0;
}

static uint64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define NV(n, v)                                                                                            \
        {                                                                                                   \
                (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE          \
        }

static int one_call(nghttp2_session *s, const char *path, const struct buf *msg, struct buf *resp)
{
        struct call c = { .req = msg->p, .req_len = msg->n, .grpc_status = -1, .resp = resp };
        nghttp2_nv nva[] = {
                NV(":method", "POST"),
                NV(":scheme", "http"),
                { (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE },
                NV(":authority", "localhost"),
                NV("content-type", "application/grpc"),
                NV("te", "trailers"),
        };
        nghttp2_data_provider dp = { .source = { .ptr = &c }, .read_callback = read_cb };
        if (nghttp2_submit_request(s, NULL, nva, sizeof(nva) / sizeof(nva[0]), &dp, &c) < 0)
                return -1;
        uint8_t in[65536];
        while (!c.done) {
                if (nghttp2_session_send(s) != 0)
                        return -1;
                if (c.done)
                        break;
                ssize_t n = read(fd, in, sizeof in);
                if (n <= 0) {
                        fprintf(stderr, "h2call: connection closed\n");
                        return -1;
                }
                if (nghttp2_session_mem_recv(s, in, (size_t)n) < 0)
                        return -1;
        }
        if (c.grpc_status != 0) {
                fprintf(stderr, "h2call: %s: grpc-status %d\n", path, c.grpc_status);
                return -1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        bool preferred = argc == 6 && strcmp(argv[1], "preferred") == 0;
        if (!preferred && !(argc == 5 && strcmp(argv[1], "allocate") == 0)) {
                fprintf(stderr,
                        "usage: h2call allocate SOCKET N IDS | h2call preferred SOCKET N SIZE IDS\n");
                return 2;
        }
        long n = strtol(argv[3], NULL, 10);
        if (n < 1)
                return 2;

        /* The message: one container request holding the IDs (field 1 of the container request for both
         * messages: devices_ids / available_deviceIDs), allocation_size (field 3) for preferred. */
        struct buf inner = { 0 }, outer = { 0 }, msg = { 0 };
        char *ids = strdup(argv[preferred ? 5 : 4]);
        for (char *save = NULL, *id = strtok_r(ids, ",", &save); id; id = strtok_r(NULL, ",", &save))
                put_bytes(&inner, 1, id, strlen(id));
        if (preferred) {
                put_varint(&inner, 3 << 3 | 0);
                put_varint(&inner, strtoul(argv[4], NULL, 10));
        }
        put_bytes(&outer, 1, inner.p, inner.n);
        uint8_t prefix[5] = { 0, (uint8_t)(outer.n >> 24), (uint8_t)(outer.n >> 16), (uint8_t)(outer.n >> 8),
                              (uint8_t)outer.n };
        put(&msg, prefix, 5);
        put(&msg, outer.p, outer.n);
        const char *path = getenv("H2CALL_PATH");
        if (!path)
                path = preferred ? "/v1beta1.DevicePlugin/GetPreferredAllocation"
                                 : "/v1beta1.DevicePlugin/Allocate";

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(argv[2]) >= sizeof sa.sun_path)
                return 2;
        strcpy(sa.sun_path, argv[2]);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                fprintf(stderr, "h2call: connect %s: %s\n", argv[2], strerror(errno));
                return 1;
        }
        nghttp2_session_callbacks *cbs;
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
        nghttp2_session_callbacks_set_on_header_callback(cbs, header_cb);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, data_cb);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, close_cb);
        nghttp2_session *s;
        nghttp2_session_client_new(&s, cbs, NULL);
        nghttp2_settings_entry settings[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 } };
        nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, settings, 1);
        nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0, 1 << 24);

        struct buf resp = { 0 };
        if (one_call(s, path, &msg, &resp) < 0)
                return 1;
        const char *dump = getenv("H2CALL_DUMP");
        if (dump) {
                FILE *f = fopen(dump, "we");
                if (!f || resp.n < 5 || fwrite(resp.p + 5, 1, resp.n - 5, f) != resp.n - 5 ||
                    fclose(f) != 0) {
                        fprintf(stderr, "h2call: cannot write the reply to %s\n", dump);
                        return 1;
                }
        }
        uint64_t *t = calloc((size_t)n, sizeof *t);
        for (long i = 0; i < n; i++) {
                uint64_t t0 = now_ns();
                if (one_call(s, path, &msg, NULL) < 0)
                        return 1;
                t[i] = now_ns() - t0;
        }
        for (long i = 0; i < n; i++)
                printf("%" PRIu64 "\n", t[i]);
        return 0;
}
