/* SPDX-License-Identifier: Apache-2.0 */
/* Reading whole files and directories with a size limit, and the one atomic-write helper. */
#pragma once

#include <sys/types.h>

#include "macro.h"

/* Opens path for reading the way every reader of configuration, label and spec files must: it never
 * blocks (O_NONBLOCK: a FIFO or a device swapped in at the path cannot stall the open or the reads) and
 * takes regular files only. flags may add O_NOFOLLOW where a symlink as the last component is never
 * legitimate (a file we write ourselves); ConfigMap mounts are symlinks, so config files go without.
 * Returns the fd (O_CLOEXEC); -EISDIR for a directory, -EBADFD for anything else that is not a regular
 * file, -ELOOP for a symlink under O_NOFOLLOW, or the errno of open(). */
int open_regular_file(const char *path, int flags);
/* Whether path is (or links to) the null device, the one non-regular file readers accept, as empty. */
bool path_is_dev_null(const char *path);
/* A sentence for the errors above that strerror() words badly ("not a regular file (a FIFO, socket or
 * device)"), else strerror(-r). */
const char *file_error_string(int r);

/* Reads all of path, a regular file (open_regular_file), NUL-terminated in *ret; *ret_size excludes the
 * NUL; ret_size may be NULL. -EFBIG when larger than max_size. */
int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size);
/* The same from an open fd, from its current offset to its end (the fd stays open): standard input, say. */
int read_full_fd(int fd, size_t max_size, char **ret, size_t *ret_size);

/* Reads the first line of a small file (sysfs/proc style), trailing newline and blanks removed. */
int read_one_line_file(const char *path, char **ret);

/* Writes data to path atomically: a temp file in the same directory, fsync, rename.
 * If the file already holds exactly these bytes (and mode), nothing is written and 0 is returned
 * (so mtime stays: readers watching it see no change); 1 when the file was (re)written. Whatever else
 * is at path (a symlink, a FIFO) is replaced, never followed or read. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

/* Whether path names a directory (following symlinks); NULL: false. */
bool is_dir(const char *path);

/* mkdir -p: dir and its missing parents (mode for each made); an existing directory is fine, an existing
 * file of that name is -ENOTDIR. */
int mkdir_p(const char *dir, mode_t mode);

/* The names in directory path (not "." and ".."), sorted (strcmp), those for which keep(name) is true
 * (keep NULL: all). -E2BIG when more than max_entries are kept: every directory read is bounded. */
int dir_list(const char *path, bool (*keep)(const char *name), size_t max_entries, char ***ret);

/* The last component of p ("/a/b" -> "b"; a pointer into p), and the rest ("/a/b" -> "/a", "/a" -> "/";
 * NULL when out of memory). */
const char *path_base_name(const char *p);
char *path_dir_name(const char *p);

/* Joins a root prefix and an absolute path: ("/fixture", "/sys/x") -> "/fixture/sys/x";
 * a NULL or "/" root gives the path itself. */
char *path_join_root(const char *root, const char *path);
