/* SPDX-License-Identifier: Apache-2.0 */
/* The SONAME reader on any file the update-ldcache hook finds in a container's library folder: it
 * returns a SONAME, none, -ENOEXEC or -EBADMSG, never reads out of bounds or allocates without bound. */
#include "cdi/elf-soname.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char path[64];
        int fd = fuzz_memfd(data, size, path);
        char *soname = NULL;
        int r = elf_read_soname(fd, &soname);
        close(fd);
        if (r < 0 && r != -ENOEXEC && r != -EBADMSG && r != -ENOMEM)
                abort();
        if (r >= 0 && soname && !*soname)
                abort();
        free(soname);
        return 0;
}
