/* SPDX-License-Identifier: Apache-2.0 */
/* One blocking HTTP/1.1 GET with a deadline, for the `nvdp healthz` probe (a short-lived command, never
 * the daemon's loop). */
#pragma once

#include <stdint.h>

#include "base/macro.h"

/* Largest response read; more is an error. */
#define HTTP_GET_MAX (64u * 1024)

/* GETs path from address ([host]:port, as http_address_parse reads it; an empty host means this host),
 * connect, send and answer all within timeout_nsec. Returns the HTTP status (> 0) with the body in
 * *ret_body, or -errno with a sentence naming the address in *ret_error: -ETIMEDOUT, -ECONNREFUSED,
 * -EBADMSG for a reply that is not HTTP/1.x, -EFBIG over HTTP_GET_MAX. */
int http_get(const char *address, const char *path, uint64_t timeout_nsec, char **ret_body,
             char **ret_error);
