/* SPDX-License-Identifier: Apache-2.0 */
/* glibc's /etc/ld.so.cache: read (which libraries a root's dynamic linker knows) and written (the
 * update-ldcache hook, for containers that have no ldconfig). The format is "glibc-ld.so.cache1.1",
 * alone (glibc >= 2.32) or after the old "ld.so-1.7.0" table (older ldconfig writes both). Only
 * little-endian caches are read and written (x86-64 and aarch64 hosts). */
#pragma once

#include <stdint.h>

#include "base/macro.h"

/* A real cache is ~40 KiB per 600 libraries; anything this large is not one. */
#define LDCACHE_MAX_SIZE (64u * 1024 * 1024)

struct ldcache_entry {
        int32_t flags;  /* FLAG_ELF_LIBC6 (3) | the architecture: 0x0303 x86-64, 0x0a03 aarch64 */
        uint64_t hwcap; /* 0 for plain entries; glibc-hwcaps subdirectory entries have bit 62 set */
        char *name;     /* the key the loader searches: "libcuda.so.1" */
        char *path;     /* "/usr/lib/x86_64-linux-gnu/libcuda.so.1" */
};

typedef struct ldcache {
        struct ldcache_entry *entries;
        size_t n_entries;
} ldcache;

/* Parses a whole cache file. -EBADMSG when it is not a cache or is cut short (the header promises
 * more entries than the bytes hold); an entry whose strings lie outside the data is left out. */
int ldcache_parse(const void *data, size_t size, ldcache **ret);
/* Reads and parses path (at most LDCACHE_MAX_SIZE bytes). */
int ldcache_read(const char *path, ldcache **ret);
ldcache *ldcache_free(ldcache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ldcache *, ldcache_free);

/* The flags of a library of this machine's ABI (what ldconfig writes for it). */
int32_t ldcache_native_flags(void);

/* The order of ld.so's cache: digit runs compare as numbers, the rest byte by byte. The loader
 * binary-searches entries sorted by this, descending. */
int ldcache_libcmp(const char *a, const char *b);

/* Serialises entries in the new format alone. Entries are sorted as the loader's binary search needs;
 * among equal names the earlier one in the input stays first (it wins, as the first directory does
 * for ldconfig). hwcap is written as 0. */
int ldcache_format(const struct ldcache_entry *entries, size_t n, void **ret, size_t *ret_size);
