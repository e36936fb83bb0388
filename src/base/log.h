/* SPDX-License-Identifier: Apache-2.0 */
/* The one logger. klog-style lines by default (what kubectl logs readers expect from a Kubernetes
 * component), JSON lines with log_set_format(LOG_FORMAT_JSON). Each line is one write(2), so
 * lines from the health thread and the loop never interleave. Library code does not log. */
#pragma once

#include "macro.h"

enum log_level { LOG_ERR = 3, LOG_WARNING = 4, LOG_INFO = 6, LOG_DEBUG = 7 };
enum log_format { LOG_FORMAT_KLOG, LOG_FORMAT_JSON };

void log_set_max_level(enum log_level level);
void log_set_format(enum log_format format);
/* Parse "klog"/"text" or "json"; -EINVAL otherwise. */
int log_format_from_string(const char *s, enum log_format *ret);

/* Writes one line when level <= max level. Returns -abs(error) so callers can
 * `return log_error_errno(r, "...: %m");` (%m prints strerror(abs(error))). */
int log_internal(enum log_level level, int error, const char *file, int line, const char *fmt, ...)
        _printf_(5, 6);

#define log_full_errno(level, error, ...) log_internal((level), (error), __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...)                    log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)                     log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_warning(...)                  log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)                    log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...)           log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_warning_errno(e, ...)         log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...)           log_full_errno(LOG_ERR, (e), __VA_ARGS__)
