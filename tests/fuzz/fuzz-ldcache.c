/* SPDX-License-Identifier: Apache-2.0 */
/* The ld.so.cache reader (a container image's own cache reaches it through the update-ldcache hook;
 * a driver root's through spec generation): any bytes parse or fail with -EBADMSG, never read out of
 * bounds; what parsed has non-empty strings and writes back into a cache that parses to the same
 * entries (the writer's order is the loader's, so the entries come back sorted). */
#include <string.h>

#include "cdi/ldcache.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(ldcache_freep) ldcache *c = NULL;
        int r = ldcache_parse(data, size, &c);
        if (r < 0) {
                if (r != -EBADMSG && r != -ENOMEM)
                        abort();
                return 0;
        }
        for (size_t i = 0; i < c->n_entries; i++)
                if (!*c->entries[i].name || !*c->entries[i].path)
                        abort();

        _cleanup_free_ void *out = NULL;
        size_t out_size;
        if (ldcache_format(c->entries, c->n_entries, &out, &out_size) < 0)
                return 0; /* larger than a cache may be */
        _cleanup_(ldcache_freep) ldcache *back = NULL;
        if (ldcache_parse(out, out_size, &back) < 0 || back->n_entries != c->n_entries)
                abort();
        /* Sorted as the loader's binary search needs: descending. */
        for (size_t i = 1; i < back->n_entries; i++)
                if (ldcache_libcmp(back->entries[i - 1].name, back->entries[i].name) < 0)
                        abort();
        /* The same entries, each name with its path. */
        for (size_t i = 0; i < c->n_entries; i++) {
                bool found = false;
                for (size_t k = 0; k < back->n_entries && !found; k++)
                        found = strcmp(back->entries[k].name, c->entries[i].name) == 0 &&
                                strcmp(back->entries[k].path, c->entries[i].path) == 0;
                if (!found)
                        abort();
        }
        return 0;
}
