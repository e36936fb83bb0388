/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>

#include "base/json.h"

static enum log_level max_level = LOG_INFO;
static enum log_format format = LOG_FORMAT_KLOG;

void log_set_max_level(enum log_level level)
{
        max_level = level;
}

void log_set_format(enum log_format f)
{
        format = f;
}

int log_format_from_string(const char *s, enum log_format *ret)
{
        if (streq(s, "klog") || streq(s, "text"))
                *ret = LOG_FORMAT_KLOG;
        else if (streq(s, "json"))
                *ret = LOG_FORMAT_JSON;
        else
                return -EINVAL;
        return 0;
}

static char level_letter(enum log_level level)
{
        switch (level) {
        case LOG_ERR: return 'E';
        case LOG_WARNING: return 'W';
        case LOG_INFO: return 'I';
        default: return 'D';
        }
}

static const char *level_name(enum log_level level)
{
        switch (level) {
        case LOG_ERR: return "error";
        case LOG_WARNING: return "warning";
        case LOG_INFO: return "info";
        default: return "debug";
        }
}

int log_internal(enum log_level level, int error, const char *file, int line, const char *fmt, ...)
{
        int ret = error > 0 ? -error : error;
        if (level > max_level)
                return ret;

        int saved_errno = errno;
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        if (error != 0)
                errno = error > 0 ? error : -error; /* for %m */
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        const char *base = strrchr(file, '/');
        base = base ? base + 1 : file;

        char buf[4608];
        int n;
        if (format == LOG_FORMAT_JSON) {
                char esc[4096];
                json_escape(esc, sizeof esc, msg);
                n = snprintf(buf, sizeof buf,
                             "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\",\"level\":\"%s\","
                             "\"caller\":\"%s:%d\",\"msg\":\"%s\"}\n",
                             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                             ts.tv_nsec / 1000, level_name(level), base, line, esc);
        } else
                n = snprintf(buf, sizeof buf, "%c%02d%02d %02d:%02d:%02d.%06ld %7ld %s:%d] %s\n",
                             level_letter(level), tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                             tm.tm_sec, ts.tv_nsec / 1000, (long)syscall(SYS_gettid), base, line, msg);
        if (n > (int)sizeof buf - 1) {
                n = (int)sizeof buf - 1;
                buf[n - 1] = '\n';
        }
        if (n > 0 && write(STDERR_FILENO, buf, (size_t)n) < 0) {
                /* nowhere left to report it */
        }
        errno = saved_errno;
        return ret;
}
