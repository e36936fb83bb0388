/* SPDX-License-Identifier: Apache-2.0 */
/* The pure gRPC wire helpers: length-prefix reassembly, grpc-timeout, grpc-message, content-type. */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "deviceplugin.pb-c.h"
#include "plugin/kubelet-wire.h"
#include "rpc/grpc-wire.h"
#include "rpc/rpc.h"

struct got {
        char msgs[8][64];
        size_t sizes[8];
        size_t n;
};

static int collect(const uint8_t *msg, size_t size, void *userdata)
{
        struct got *g = userdata;
        assert_true(g->n < 8);
        memcpy(g->msgs[g->n], msg, MIN(size, 63));
        g->sizes[g->n++] = size;
        return 0;
}

static void test_reader_reassembles_byte_by_byte(void **state)
{
        /* two messages "hello" and "" and "xy", fed one byte at a time (prefix split too) */
        const uint8_t in[] = {
                0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'x', 'y'
        };
        struct grpc_reader r;
        struct got g = { 0 };
        grpc_reader_init(&r, 100);
        for (size_t i = 0; i < sizeof in; i++) {
                assert_int_equal(grpc_reader_feed(&r, in + i, 1, collect, &g), 0);
                assert_int_equal(grpc_reader_idle(&r), i == 9 || i == 14 || i == sizeof in - 1);
        }
        assert_int_equal(g.n, 3);
        assert_string_equal(g.msgs[0], "hello");
        assert_int_equal(g.sizes[1], 0);
        assert_string_equal(g.msgs[2], "xy");
        grpc_reader_done(&r);
}

static void test_reader_limits(void **state)
{
        struct grpc_reader r;
        struct got g = { 0 };
        /* 4 MiB exactly is fine (only the prefix is fed), one more byte is not */
        const uint8_t max[] = { 0, 0x00, 0x40, 0x00, 0x00 };
        const uint8_t over[] = { 0, 0x00, 0x40, 0x00, 0x01 };
        const uint8_t compressed[] = { 1, 0, 0, 0, 1, 'x' };
        grpc_reader_init(&r, RPC_MAX_MESSAGE);
        assert_int_equal(grpc_reader_feed(&r, max, sizeof max, collect, &g), 0);
        assert_int_equal(grpc_reader_buffered(&r), 5);
        grpc_reader_done(&r);
        grpc_reader_init(&r, RPC_MAX_MESSAGE);
        assert_int_equal(grpc_reader_feed(&r, over, sizeof over, collect, &g), -EMSGSIZE);
        grpc_reader_done(&r);
        grpc_reader_init(&r, RPC_MAX_MESSAGE);
        assert_int_equal(grpc_reader_feed(&r, compressed, sizeof compressed, collect, &g), -EPROTO);
        grpc_reader_done(&r);
        assert_int_equal(g.n, 0);
}

static void test_prefix(void **state)
{
        uint8_t p[5];
        grpc_prefix_write(p, 0x01020304);
        assert_memory_equal(p, ((const uint8_t[]){ 0, 1, 2, 3, 4 }), 5);
}

static void test_timeout(void **state)
{
        char t[16];
        grpc_timeout_format(30ULL * 1000000000ULL, t);
        assert_string_equal(t, "30000000u");
        grpc_timeout_format(15ULL * 1000000000ULL, t);
        assert_string_equal(t, "15000000u");
        grpc_timeout_format(1500, t);
        assert_string_equal(t, "1500n");
        grpc_timeout_format(200ULL * 1000000000ULL, t);
        assert_string_equal(t, "200000m");
        grpc_timeout_format(1000000001ULL * 1000ULL, t); /* needs rounding up to stay >= the timeout */
        assert_string_equal(t, "1000001m");

        uint64_t ns;
        assert_int_equal(grpc_timeout_parse("29999990u", 9, &ns), 0);
        assert_true(ns == 29999990000ULL);
        assert_int_equal(grpc_timeout_parse("2H", 2, &ns), 0);
        assert_true(ns == 7200ULL * 1000000000ULL);
        assert_int_equal(grpc_timeout_parse("100", 3, &ns), -EINVAL);
        assert_int_equal(grpc_timeout_parse("123456789S", 10, &ns), -EINVAL);
        assert_int_equal(grpc_timeout_parse("1x", 2, &ns), -EINVAL);
        assert_int_equal(grpc_timeout_parse("-1S", 3, &ns), -EINVAL);
}

static void test_message_encoding(void **state)
{
        _cleanup_free_ char *e = grpc_message_encode("50% on GPU-\xc3\xbc\n");
        assert_string_equal(e, "50%25 on GPU-%C3%BC%0A");
        _cleanup_free_ char *d = grpc_message_decode((const uint8_t *)e, strlen(e));
        assert_string_equal(d, "50% on GPU-\xc3\xbc\n");
        /* malformed escapes pass through */
        _cleanup_free_ char *m = grpc_message_decode((const uint8_t *)"100%zz%4", 8);
        assert_string_equal(m, "100%zz%4");
}

static void test_content_type(void **state)
{
#define CT(s) grpc_content_type_ok((const uint8_t *)(s), strlen(s))
        assert_true(CT("application/grpc"));
        assert_true(CT("application/grpc+proto"));
        assert_true(CT("application/grpc;charset=utf-8"));
        assert_false(CT("application/grpcx"));
        assert_false(CT("application/json"));
        assert_false(CT("application/grp"));
#undef CT
}

static void test_status_names(void **state)
{
        assert_string_equal(grpc_status_to_string(GRPC_UNIMPLEMENTED), "UNIMPLEMENTED");
        assert_string_equal(grpc_status_to_string(GRPC_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
        assert_string_equal(grpc_status_to_string(17), "INVALID_CODE");
}

static void test_deviceplugin_messages(void **state)
{
        /* Wire bytes written out by hand from the key table in the kubelet contract. */
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;
        assert_int_equal(kubelet_wire_pack_register("a.sock", "x/y", &buf, &n), 0);
        const uint8_t want[] = { 0x0A, 7,   'v', '1', 'b',  'e', 't', 'a', '1', 0x12, 6, 'a',  '.',
                                 's',  'o', 'c', 'k', 0x1A, 3,   'x', '/', 'y', 0x22, 2, 0x10, 1 };
        assert_int_equal(n, sizeof want);
        assert_memory_equal(buf, want, sizeof want);

        /* an empty device list is an empty message (a retired resource's last list) */
        _cleanup_free_ uint8_t *e = NULL;
        assert_int_equal(kubelet_wire_pack_list(NULL, NULL, 0, &e, &n), 0);
        assert_int_equal(n, 0);

        /* NUMANode with a negative ID is a 10-byte varint; unknown field 9 is skipped */
        const uint8_t dev[] = { 0x0A, 5,    'G',  'P',  'U',  '-',  '0',  0x12, 7,    'H',  'e',
                                'a',  'l',  't',  'h',  'y',  0x1A, 13,   0x0A, 11,   0x08, 0xFF,
                                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x48, 0x05 };
        V1beta1__Device *d = v1beta1__device__unpack(NULL, sizeof dev, dev);
        assert_non_null(d);
        assert_string_equal(d->id, "GPU-0");
        assert_string_equal(d->health, "Healthy");
        assert_int_equal(d->topology->n_nodes, 1);
        assert_true(d->topology->nodes[0]->id == -1);
        v1beta1__device__free_unpacked(d, NULL);
        assert_null(v1beta1__device__unpack(NULL, 4, dev));
}

/* Requests decode within KUBELET_REQUEST_MEMORY_MAX: real IDs up to the request limit do, a limit-sized
 * request of 1-byte IDs (350,000 of them) is refused while it is unpacked. */
static void test_request_unpack_budget(void **state)
{
        /* 20,000 IDs of 40 bytes: 860 KiB on the wire */
        size_t n_ids = 20000, n = 0;
        size_t inner_len = n_ids * 42;
        uint8_t *msg = malloc(inner_len + 16);
        msg[n++] = 0x0A;
        for (size_t v = inner_len;; v >>= 7) {
                msg[n++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
                if (v <= 0x7F)
                        break;
        }
        for (size_t i = 0; i < n_ids; i++) {
                msg[n++] = 0x0A;
                msg[n++] = 40;
                snprintf((char *)msg + n, 41, "GPU-%036zu", i);
                n += 40;
        }
        assert_true(n <= RPC_MAX_REQUEST);
        _cleanup_(kubelet_request_freep) struct kubelet_request *r = NULL;
        assert_int_equal(kubelet_wire_unpack_allocate(msg, n, &r), 0);
        assert_int_equal(r->n_containers, 1);
        assert_int_equal(r->containers[0].n_ids, n_ids);
        assert_string_equal(r->containers[0].ids[19999], "GPU-000000000000000000000000000000019999");
        assert_true(r->budget.used <= KUBELET_REQUEST_MEMORY_MAX);
        r = kubelet_request_free(r);

        /* the same bytes as 1-byte IDs */
        n = 0;
        n_ids = (RPC_MAX_REQUEST - 8) / 3;
        inner_len = n_ids * 3;
        msg[n++] = 0x0A;
        for (size_t v = inner_len;; v >>= 7) {
                msg[n++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
                if (v <= 0x7F)
                        break;
        }
        msg = realloc(msg, n + inner_len);
        for (size_t i = 0; i < n_ids; i++) {
                msg[n++] = 0x0A;
                msg[n++] = 1;
                msg[n++] = 'x';
        }
        assert_int_equal(kubelet_wire_unpack_allocate(msg, n, &r), -E2BIG);
        assert_int_equal(kubelet_wire_unpack_preferred(msg, n, &r), -E2BIG);
        assert_null(r);
        /* not protobuf at all */
        assert_int_equal(kubelet_wire_unpack_allocate((const uint8_t *)"\x0a\xff", 2, &r), -EBADMSG);
        free(msg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reader_reassembles_byte_by_byte),
                cmocka_unit_test(test_reader_limits),
                cmocka_unit_test(test_prefix),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_message_encoding),
                cmocka_unit_test(test_content_type),
                cmocka_unit_test(test_status_names),
                cmocka_unit_test(test_deviceplugin_messages),
                cmocka_unit_test(test_request_unpack_budget),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
