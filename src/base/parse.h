/* SPDX-License-Identifier: Apache-2.0 */
/* Parsing of the small value types flags, env vars and config files share. */
#pragma once

#include <stdint.h>

#include "macro.h"

/* "true/false", "1/0", "yes/no", "on/off" (any case, as Go's strconv.ParseBool plus yes/no). */
int parse_bool(const char *s, bool *ret);
/* Decimal, no sign, no trailing junk; -ERANGE on overflow. */
int parse_uint64(const char *s, uint64_t *ret);
int parse_int64(const char *s, int64_t *ret);
/* A Go duration ("60s", "1m30s", "500ms", "5m", "2h"), or a bare integer of nanoseconds.
 * "infinite" gives UINT64_MAX. Result in nanoseconds. */
int parse_duration(const char *s, uint64_t *ret_nsec);

#define NSEC_PER_USEC     1000ULL
#define NSEC_PER_MSEC     1000000ULL
#define NSEC_PER_SEC      1000000000ULL
#define DURATION_INFINITE UINT64_MAX

/* The value of one hex digit, -1 for anything else. */
int unhexchar(char c);

/* CLOCK_MONOTONIC now, in nanoseconds. */
uint64_t now_nsec(void);
