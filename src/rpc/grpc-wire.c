/* SPDX-License-Identifier: Apache-2.0 */
#include "grpc-wire.h"
#include "base/parse.h"

#include "rpc.h"

void grpc_reader_init(struct grpc_reader *r, size_t max)
{
        *r = (struct grpc_reader){ .max = max };
}

void grpc_reader_done(struct grpc_reader *r)
{
        r->buf = mfree(r->buf);
        r->len = r->want = r->prefix_len = 0;
}

bool grpc_reader_idle(const struct grpc_reader *r)
{
        return r->prefix_len == 0;
}

size_t grpc_reader_buffered(const struct grpc_reader *r)
{
        return r->prefix_len + r->len;
}

size_t grpc_reader_reserved(const struct grpc_reader *r)
{
        return r->buf ? r->want : r->prefix_len;
}

uint8_t *grpc_reader_take(struct grpc_reader *r)
{
        return TAKE_PTR(r->msg);
}

int grpc_reader_feed(struct grpc_reader *r, const uint8_t *data, size_t n, grpc_message_cb cb,
                     void *userdata)
{
        while (n > 0) {
                if (r->prefix_len < GRPC_PREFIX_SIZE) {
                        size_t k = MIN(n, GRPC_PREFIX_SIZE - r->prefix_len);
                        memcpy(r->prefix + r->prefix_len, data, k);
                        r->prefix_len += k;
                        data += k;
                        n -= k;
                        if (r->prefix_len < GRPC_PREFIX_SIZE)
                                return 0;
                        if (r->prefix[0] != 0)
                                return -EPROTO;
                        r->want = (size_t)r->prefix[1] << 24 | (size_t)r->prefix[2] << 16 |
                                  (size_t)r->prefix[3] << 8 | r->prefix[4];
                        if (r->want > r->max)
                                return -EMSGSIZE;
                        r->len = 0;
                        /* +1: a zero-length message still gets a valid pointer. */
                        r->buf = malloc(r->want + 1);
                        if (!r->buf)
                                return -ENOMEM;
                }
                size_t k = MIN(n, r->want - r->len);
                memcpy(r->buf + r->len, data, k);
                r->len += k;
                data += k;
                n -= k;
                if (r->len == r->want) {
                        r->msg = TAKE_PTR(r->buf);
                        size_t size = r->len;
                        r->prefix_len = r->len = r->want = 0;
                        r->n_messages++;
                        int k2 = cb(r->msg, size, userdata);
                        r->msg = mfree(r->msg);
                        if (k2 < 0)
                                return k2;
                }
        }
        return 0;
}

void grpc_prefix_write(uint8_t out[static GRPC_PREFIX_SIZE], size_t len)
{
        out[0] = 0;
        out[1] = (uint8_t)(len >> 24);
        out[2] = (uint8_t)(len >> 16);
        out[3] = (uint8_t)(len >> 8);
        out[4] = (uint8_t)len;
}

static const struct {
        char unit;
        uint64_t nsec;
} timeout_units[] = {
        { 'n', 1ULL },          { 'u', 1000ULL },        { 'm', 1000000ULL },
        { 'S', 1000000000ULL }, { 'M', 60000000000ULL }, { 'H', 3600000000000ULL },
};

void grpc_timeout_format(uint64_t nsec, char out[static 16])
{
        for (size_t i = 0; i < ELEMENTSOF(timeout_units); i++) {
                uint64_t u = timeout_units[i].nsec;
                uint64_t v = nsec / u + (nsec % u != 0);
                if (v <= 99999999ULL || i == ELEMENTSOF(timeout_units) - 1) {
                        snprintf(out, 16, "%llu%c", (unsigned long long)MIN(v, 99999999ULL),
                                 timeout_units[i].unit);
                        return;
                }
        }
}

int grpc_timeout_parse(const char *s, size_t n, uint64_t *ret_nsec)
{
        if (n < 2 || n > 9)
                return -EINVAL;
        uint64_t v = 0;
        for (size_t i = 0; i < n - 1; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        for (size_t i = 0; i < ELEMENTSOF(timeout_units); i++)
                if (timeout_units[i].unit == s[n - 1]) {
                        /* 99999999 hours does not fit in uint64 nanoseconds: saturate. */
                        *ret_nsec = v > UINT64_MAX / timeout_units[i].nsec ? UINT64_MAX
                                                                           : v * timeout_units[i].nsec;
                        return 0;
                }
        return -EINVAL;
}

char *grpc_message_encode(const char *s)
{
        size_t n = strlen(s);
        char *out = malloc(n * 3 + 1), *p = out;
        if (!out)
                return NULL;
        for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
                if (*c >= 0x20 && *c <= 0x7E && *c != '%')
                        *p++ = (char)*c;
                else
                        p += sprintf(p, "%%%02X", *c);
        }
        *p = '\0';
        return out;
}

char *grpc_message_decode(const uint8_t *s, size_t n)
{
        char *out = malloc(n + 1), *p = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;
                if (s[i] == '%' && i + 2 < n && (hi = unhexchar((char)s[i + 1])) >= 0 &&
                    (lo = unhexchar((char)s[i + 2])) >= 0) {
                        *p++ = (char)(hi << 4 | lo);
                        i += 2;
                } else
                        *p++ = (char)s[i];
        }
        *p = '\0';
        return out;
}

bool grpc_content_type_ok(const uint8_t *v, size_t n)
{
        static const char base[] = "application/grpc";
        size_t k = sizeof(base) - 1;
        if (n < k || strncasecmp((const char *)v, base, k) != 0)
                return false;
        return n == k || v[k] == '+' || v[k] == ';';
}

const char *grpc_status_to_string(int s)
{
        static const char *const names[] = {
                "OK",
                "CANCELLED",
                "UNKNOWN",
                "INVALID_ARGUMENT",
                "DEADLINE_EXCEEDED",
                "NOT_FOUND",
                "ALREADY_EXISTS",
                "PERMISSION_DENIED",
                "RESOURCE_EXHAUSTED",
                "FAILED_PRECONDITION",
                "ABORTED",
                "OUT_OF_RANGE",
                "UNIMPLEMENTED",
                "INTERNAL",
                "UNAVAILABLE",
                "DATA_LOSS",
                "UNAUTHENTICATED",
        };
        return s >= 0 && (size_t)s < ELEMENTSOF(names) ? names[s] : "INVALID_CODE";
}
