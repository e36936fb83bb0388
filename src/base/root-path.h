/* SPDX-License-Identifier: Apache-2.0 */
/* Paths inside a root directory (a node filesystem mounted for the doctor, a driver root, a container's
 * rootfs): resolved as the root's own programs would see them, never leaving the root. An absolute symlink
 * such as /lib -> /usr/lib, or /var/run -> /run, means a place inside the root, not on this machine. The
 * one resolver: the doctor's reads, the CDI spec's driver files and the CDI hooks' edits all go through
 * it. */
#pragma once

#include "base/macro.h"

/* Resolves path (absolute) inside root: every symlink on the way, absolute ones taken from the root,
 * ".." stopping at the root. The result is an absolute path inside the root with no symlink left (open
 * it as path_join_root(root, result)). -ENOENT when a component is missing, -ENOTDIR when one is not a
 * directory, -ELOOP after 40 links, -EINVAL for a relative path. root NULL or "/" is this machine's root. */
int root_realpath(const char *root, const char *path, char **ret);

/* root_realpath, then the path as seen here (path_join_root(root, resolved)). */
int root_resolve_local(const char *root, const char *path, char **ret);
