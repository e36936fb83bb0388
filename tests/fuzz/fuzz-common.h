/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the libFuzzer targets: the parsers under test take a path, so the input goes into a memfd
 * that is reached through /proc/self/fd (no file system writes, nothing left behind). */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fresh memfd holding data; its path written to path. Aborts on failure: the harness, not the code
 * under test, is broken then. */
static inline int fuzz_memfd(const uint8_t *data, size_t size, char path[static 64])
{
        int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
        if (fd < 0)
                abort();
        for (size_t off = 0; off < size;) {
                ssize_t n = write(fd, data + off, size - off);
                if (n <= 0)
                        abort();
                off += (size_t)n;
        }
        snprintf(path, 64, "/proc/self/fd/%d", fd);
        return fd;
}
