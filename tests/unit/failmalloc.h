/* SPDX-License-Identifier: Apache-2.0 */
/* The failmalloc interposer shared by the allocation-failure tests (nghttp2's idea): while `armed`,
 * every malloc/calloc/realloc is counted in n_allocs and the one at which `countdown` reaches 0 fails;
 * `live` counts blocks not freed. `armed` is per thread: a helper thread (a test server) is never
 * counted. FAILMALLOC is 0 under ASan (it owns malloc): the tests skip then.
 * Set FAILMALLOC_DEBUG=1 to print where the failed allocation was made. Include it in one test file. */
#pragma once

#include <dlfcn.h>
#include <execinfo.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define FAILMALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAILMALLOC 0
#endif
#endif
#ifndef FAILMALLOC
#define FAILMALLOC 1
#endif

#if FAILMALLOC
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static __thread bool armed; /* count and fail only inside the scenario (and its thread) */
static long countdown = -1; /* fail when it reaches 0; -1 never */
static long n_allocs, live;

/* A test may exempt allocations that a dependency does not survive failing (its crash, not ours): called
 * when an allocation is about to fail; true lets it succeed and fails the next one instead. */
static bool (*failmalloc_exempt)(void);
static long n_exempt;

static bool should_fail(void)
{
        if (!armed)
                return false;
        n_allocs++;
        if (countdown >= 0 && countdown-- == 0) {
                if (failmalloc_exempt) {
                        armed = false;
                        bool exempt = failmalloc_exempt();
                        armed = true;
                        if (exempt) {
                                n_exempt++;
                                countdown = 0;
                                return false;
                        }
                }
                if (getenv("FAILMALLOC_DEBUG")) {
                        /* where the failed allocation was made (run under gdb or addr2line for names) */
                        void *frames[16];
                        armed = false;
                        int n = backtrace(frames, 16);
                        backtrace_symbols_fd(frames, n, STDERR_FILENO);
                        armed = true;
                }
                return true;
        }
        return false;
}

void *malloc(size_t n)
{
        if (should_fail())
                return NULL;
        void *p = __libc_malloc(n);
        if (p && armed)
                live++;
        return p;
}

void *calloc(size_t n, size_t m)
{
        if (should_fail())
                return NULL;
        void *p = __libc_calloc(n, m);
        if (p && armed)
                live++;
        return p;
}

void *realloc(void *p, size_t n)
{
        if (!p)
                return malloc(n);
        if (should_fail())
                return NULL;
        return __libc_realloc(p, n);
}

void free(void *p)
{
        if (p && armed)
                live--;
        __libc_free(p);
}
#endif
