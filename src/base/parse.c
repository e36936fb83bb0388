/* SPDX-License-Identifier: Apache-2.0 */
#include "parse.h"

#include <ctype.h>
#include <strings.h>
#include <time.h>

int parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "1", "t", "true", "yes", "y", "on" };
        static const char *const no[] = { "0", "f", "false", "no", "n", "off" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

int parse_uint64(const char *s, uint64_t *ret)
{
        if (!s || !isdigit((unsigned char)*s))
                return -EINVAL;
        uint64_t v = 0;
        for (; *s; s++) {
                if (!isdigit((unsigned char)*s))
                        return -EINVAL;
                unsigned d = (unsigned)(*s - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

int parse_int64(const char *s, int64_t *ret)
{
        bool neg = s && *s == '-';
        uint64_t v;
        int r = parse_uint64(neg ? s + 1 : s, &v);
        if (r < 0)
                return r;
        if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
                return -ERANGE;
        *ret = neg ? (int64_t)(0 - v) : (int64_t)v;
        return 0;
}

int parse_duration(const char *s, uint64_t *ret_nsec)
{
        static const struct {
                const char *suffix;
                uint64_t mult;
        } units[] = {
                { "ns", 1 },
                { "us", NSEC_PER_USEC },
                { "µs", NSEC_PER_USEC },
                { "ms", NSEC_PER_MSEC },
                { "s", NSEC_PER_SEC },
                { "m", 60 * NSEC_PER_SEC },
                { "h", 3600 * NSEC_PER_SEC },
        };
        if (isempty(s))
                return -EINVAL;
        if (streq(s, "infinite")) {
                *ret_nsec = DURATION_INFINITE;
                return 0;
        }
        uint64_t v;
        if (parse_uint64(s, &v) >= 0) {
                *ret_nsec = v;
                return 0;
        }
        uint64_t total = 0;
        while (*s) {
                if (!isdigit((unsigned char)*s))
                        return -EINVAL;
                uint64_t n = 0;
                while (isdigit((unsigned char)*s)) {
                        if (n > UINT64_MAX / 10 - 10)
                                return -ERANGE;
                        n = n * 10 + (uint64_t)(*s++ - '0');
                }
                /* longest unit first so "ms" is not read as "m" */
                size_t best = SIZE_MAX, best_len = 0;
                for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                        size_t l = strlen(units[i].suffix);
                        if (strneq(s, units[i].suffix, l) && l > best_len) {
                                best = i;
                                best_len = l;
                        }
                }
                if (best == SIZE_MAX)
                        return -EINVAL;
                if (n && units[best].mult > (UINT64_MAX - total) / n)
                        return -ERANGE;
                total += n * units[best].mult;
                s += best_len;
        }
        *ret_nsec = total;
        return 0;
}

int unhexchar(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

uint64_t now_nsec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}
