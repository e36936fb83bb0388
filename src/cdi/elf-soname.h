/* SPDX-License-Identifier: Apache-2.0 */
/* The SONAME of a shared library, read the way the dynamic linker finds it (program headers, not
 * sections, so stripped libraries work too). Both the spec generator (which .so.1 links a library
 * needs) and the update-ldcache hook (the cache's keys) need it. */
#pragma once

#include "base/macro.h"

/* Reads the ELF file open at fd. Returns -ENOEXEC when it is not a 64-bit little-endian shared object
 * of this machine (a 32-bit library, another architecture, not ELF), -EBADMSG when its headers point
 * outside the file. On success *ret is the SONAME, or NULL when the library has none. */
int elf_read_soname(int fd, char **ret);
