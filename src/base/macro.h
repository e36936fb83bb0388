/* SPDX-License-Identifier: Apache-2.0 */
/* Small macros used everywhere: cleanup attributes, ownership transfer, array sizes. */
#pragma once

#include <stdarg.h>

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _unused_       __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_     __attribute__((noreturn))

#define ELEMENTSOF(x)   (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b)       ((a) < (b) ? (a) : (b))
#define MAX(a, b)       ((a) > (b) ? (a) : (b))
#define streq(a, b)     (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)
#define isempty(s)      (!(s) || (s)[0] == '\0')
#define strna(s)        ((s) ? (s) : "n/a")
#define strempty(s)     ((s) ? (s) : "")

/* Take ownership of a pointer: returns it and clears the variable so its cleanup does nothing. */
#define TAKE_PTR(p)                                                                                         \
        ({                                                                                                  \
                __typeof__(p) _p_ = (p);                                                                    \
                (p) = NULL;                                                                                 \
                _p_;                                                                                        \
        })

#define TAKE_FD(fd)                                                                                         \
        ({                                                                                                  \
                int _fd_ = (fd);                                                                            \
                (fd) = -EBADF;                                                                              \
                _fd_;                                                                                       \
        })

/* For types with a NULL-accepting destructor `type *name(type *)`, define `namep(type **)`. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                             \
        static inline void func##p(type *p)                                                                 \
        {                                                                                                   \
                if (*p)                                                                                     \
                        *p = func(*p);                                                                      \
        }

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd)
{
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* -errno from a libc call that returned -1; never 0, so callers can `return negative_errno();`. */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

/* Allocation that cannot fail silently: callers check for NULL and return -ENOMEM. */
#define new0(type, n) ((type *)calloc((n), sizeof(type)))

static inline void *mfree(void *p)
{
        free(p);
        return NULL;
}

static inline bool startswith(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static inline bool endswith(const char *s, const char *suffix)
{
        size_t l = strlen(s), k = strlen(suffix);
        return l >= k && memcmp(s + l - k, suffix, k) == 0;
}

/* Inside a function declared (..., const char *fmt, ...): its arguments after fmt formatted by fmt into a
 * new string; NULL when out of memory. The one way we format variadic arguments. */
#define format_va(fmt)                                                                                      \
        ({                                                                                                  \
                va_list _ap;                                                                                \
                char *_s = NULL;                                                                            \
                va_start(_ap, fmt);                                                                         \
                if (vasprintf(&_s, fmt, _ap) < 0)                                                           \
                        _s = NULL;                                                                          \
                va_end(_ap);                                                                                \
                _s;                                                                                         \
        })
