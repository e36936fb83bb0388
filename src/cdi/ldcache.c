/* SPDX-License-Identifier: Apache-2.0 */
#include "ldcache.h"

#include "base/fileio.h"

#define MAGIC_OLD     "ld.so-1.7.0" /* 11 bytes, then a NUL of padding */
#define MAGIC_NEW     "glibc-ld.so.cache"
#define VERSION_NEW   "1.1"
#define OLD_HEADER    16u /* magic[11], pad, uint32 nlibs */
#define OLD_ENTRY     12u /* int32 flags, uint32 key, uint32 value */
#define NEW_HEADER    48u /* magic[17] version[3] nlibs len_strings flags pad[3] ext_offset unused[3] */
#define NEW_ENTRY     24u /* int32 flags, uint32 key, uint32 value, uint32 osversion, uint64 hwcap */
#define ENDIAN_LITTLE 2u  /* the header's flags byte: "this cache is little-endian" */

#define FLAG_ELF_LIBC6 0x0003
#if defined(__aarch64__)
#define FLAG_ARCH 0x0a00
#else /* x86-64: the other architecture NVIDIA's driver ships for */
#define FLAG_ARCH 0x0300
#endif

int32_t ldcache_native_flags(void)
{
        return FLAG_ELF_LIBC6 | FLAG_ARCH;
}

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

ldcache *ldcache_free(ldcache *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_entries; i++) {
                free(c->entries[i].name);
                free(c->entries[i].path);
        }
        free(c->entries);
        return mfree(c);
}

/* A NUL-terminated string at off in the table, or NULL when it runs past the end. */
static const char *table_string(const uint8_t *table, size_t size, uint32_t off)
{
        if (off >= size || !memchr(table + off, '\0', size - off))
                return NULL;
        return (const char *)table + off;
}

int ldcache_parse(const void *data, size_t size, ldcache **ret)
{
        const uint8_t *p = data;
        size_t start = 0;

        /* An old table first: skip it, the new one follows at the next 8-byte boundary. */
        if (size >= OLD_HEADER && memcmp(p, MAGIC_OLD, strlen(MAGIC_OLD)) == 0) {
                uint64_t end = OLD_HEADER + (uint64_t)get32(p + 12) * OLD_ENTRY;
                start = (size_t)((end + 7) & ~(uint64_t)7);
                if (end > size || start > size)
                        return -EBADMSG;
        }
        if (size - start < NEW_HEADER || memcmp(p + start, MAGIC_NEW, strlen(MAGIC_NEW)) != 0 ||
            memcmp(p + start + strlen(MAGIC_NEW), VERSION_NEW, strlen(VERSION_NEW)) != 0)
                return -EBADMSG;

        /* Strings are addressed from the start of the new header. */
        const uint8_t *table = p + start;
        size_t table_size = size - start;
        uint32_t nlibs = get32(table + 20);
        if ((uint64_t)nlibs * NEW_ENTRY > table_size - NEW_HEADER)
                return -EBADMSG; /* cut short */

        _cleanup_(ldcache_freep) ldcache *c = new0(ldcache, 1);
        if (!c || !(c->entries = new0(struct ldcache_entry, MAX(nlibs, 1u))))
                return -ENOMEM;
        for (uint32_t i = 0; i < nlibs; i++) {
                const uint8_t *e = table + NEW_HEADER + (size_t)i * NEW_ENTRY;
                const char *name = table_string(table, table_size, get32(e + 4));
                const char *path = table_string(table, table_size, get32(e + 8));
                if (!name || !path || !*name || !*path)
                        continue;
                struct ldcache_entry *o = &c->entries[c->n_entries];
                o->flags = (int32_t)get32(e);
                o->hwcap = (uint64_t)get32(e + 16) | (uint64_t)get32(e + 20) << 32;
                o->name = strdup(name);
                o->path = strdup(path);
                c->n_entries++;
                if (!o->name || !o->path)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int ldcache_read(const char *path, ldcache **ret)
{
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = read_full_file(path, LDCACHE_MAX_SIZE, &data, &size);
        if (r < 0)
                return r;
        return ldcache_parse(data, size, ret);
}

int ldcache_libcmp(const char *a, const char *b)
{
        while (*a) {
                bool da = *a >= '0' && *a <= '9', db = *b >= '0' && *b <= '9';
                if (da && db) {
                        /* Numbers compare by value; a run too long for 64 bits saturates. */
                        uint64_t va = 0, vb = 0;
                        for (; *a >= '0' && *a <= '9'; a++)
                                va = va > UINT64_MAX / 10 ? UINT64_MAX : va * 10 + (uint64_t)(*a - '0');
                        for (; *b >= '0' && *b <= '9'; b++)
                                vb = vb > UINT64_MAX / 10 ? UINT64_MAX : vb * 10 + (uint64_t)(*b - '0');
                        if (va != vb)
                                return va < vb ? -1 : 1;
                        continue;
                }
                if (da)
                        return 1;
                if (db)
                        return -1;
                if (*a != *b)
                        return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
                a++;
                b++;
        }
        return *b ? -1 : 0;
}

struct sorted {
        const struct ldcache_entry *e;
        size_t order;
};

static int sorted_cmp(const void *x, const void *y)
{
        const struct sorted *a = x, *b = y;
        /* Descending by name: ld.so's search walks towards larger names at lower indexes. */
        int c = ldcache_libcmp(b->e->name, a->e->name);
        if (c != 0)
                return c;
        return a->order < b->order ? -1 : a->order > b->order;
}

int ldcache_format(const struct ldcache_entry *entries, size_t n, void **ret, size_t *ret_size)
{
        if (n > UINT32_MAX / NEW_ENTRY)
                return -E2BIG;
        _cleanup_free_ struct sorted *s = new0(struct sorted, MAX(n, 1u));
        if (!s)
                return -ENOMEM;
        uint64_t strings = 0;
        for (size_t i = 0; i < n; i++) {
                s[i] = (struct sorted){ &entries[i], i };
                strings += strlen(entries[i].name) + 1 + strlen(entries[i].path) + 1;
        }
        if (n > 0)
                qsort(s, n, sizeof *s, sorted_cmp);

        uint64_t size = NEW_HEADER + (uint64_t)n * NEW_ENTRY + strings;
        if (size > LDCACHE_MAX_SIZE)
                return -E2BIG;
        _cleanup_free_ uint8_t *buf = calloc(1, (size_t)size);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, MAGIC_NEW, strlen(MAGIC_NEW));
        memcpy(buf + strlen(MAGIC_NEW), VERSION_NEW, strlen(VERSION_NEW));
        put32(buf + 20, (uint32_t)n);
        put32(buf + 24, (uint32_t)strings);
        buf[28] = ENDIAN_LITTLE;

        size_t off = NEW_HEADER + n * NEW_ENTRY;
        for (size_t i = 0; i < n; i++) {
                uint8_t *e = buf + NEW_HEADER + i * NEW_ENTRY;
                put32(e, (uint32_t)s[i].e->flags);
                size_t k = strlen(s[i].e->name) + 1, v = strlen(s[i].e->path) + 1;
                put32(e + 4, (uint32_t)off);
                memcpy(buf + off, s[i].e->name, k);
                off += k;
                put32(e + 8, (uint32_t)off);
                memcpy(buf + off, s[i].e->path, v);
                off += v;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = (size_t)size;
        return 0;
}
