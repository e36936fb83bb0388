/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a node filesystem mounted at a root directory. Paths are resolved inside the root
 * (openat2 RESOLVE_IN_ROOT), so an absolute symlink such as /var/run -> /run stays inside it
 * instead of escaping to the host running the doctor. */
#pragma once

#include <sys/stat.h>

#include "base/macro.h"

/* open(2) of an absolute path inside root (O_CLOEXEC added). */
int rootfs_open(const char *root, const char *path, int flags);
/* stat (following symlinks inside root) of an absolute path. */
int rootfs_stat(const char *root, const char *path, struct stat *ret);
bool rootfs_exists(const char *root, const char *path);
/* Reads a whole file; -EFBIG when larger than max_size. */
int rootfs_read(const char *root, const char *path, size_t max_size, char **ret, size_t *ret_size);
/* Reads at most max_size bytes from the end of a file (logs). */
int rootfs_read_tail(const char *root, const char *path, size_t max_size, char **ret);
/* Names in a directory (no "." and ".."), sorted; at most max_entries (-E2BIG beyond). */
int rootfs_list(const char *root, const char *dir, size_t max_entries, char ***ret);
/* The first dir in dirs (NULL-terminated) holding an executable regular file `name`: its path. */
int rootfs_find_executable(const char *root, const char *const *dirs, const char *name, char **ret);
/* A regular file with an execute bit. */
bool rootfs_is_executable(const char *root, const char *path);
