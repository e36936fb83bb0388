/* SPDX-License-Identifier: Apache-2.0 */
#include "rootfs.h"

#include <fcntl.h>

#include "base/fileio.h"
#include "base/root-path.h"
#include "base/strv.h"

/* Opens path inside root (base/root-path.c resolves it there: an absolute symlink stays inside). The
 * resolved path has no symlink left: O_NOFOLLOW refuses one swapped in since. */
static int rootfs_open(const char *root, const char *path, int flags)
{
        _cleanup_free_ char *local = NULL;
        int r = root_resolve_local(root, path, &local);
        if (r < 0)
                return r;
        int fd = open(local, flags | O_CLOEXEC | O_NOFOLLOW);
        return fd < 0 ? negative_errno() : fd;
}

int rootfs_stat(const char *root, const char *path, struct stat *ret)
{
        _cleanup_close_ int fd = rootfs_open(root, path, O_PATH);
        if (fd < 0)
                return fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        *ret = st;
        return 0;
}

bool rootfs_exists(const char *root, const char *path)
{
        struct stat st;
        return rootfs_stat(root, path, &st) >= 0;
}

/* A regular file under root, opened for reading as every reader opens one (open_regular_file: never
 * blocking on a fifo or a device); O_NOFOLLOW as in rootfs_open. */
static int open_regular(const char *root, const char *path)
{
        _cleanup_free_ char *local = NULL;
        int r = root_resolve_local(root, path, &local);
        if (r < 0)
                return r;
        return open_regular_file(local, O_NOFOLLOW);
}

int rootfs_read(const char *root, const char *path, size_t max_size, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = open_regular(root, path);
        if (fd < 0)
                return fd;
        return read_full_fd(fd, max_size, ret, ret_size);
}

int rootfs_read_tail(const char *root, const char *path, size_t max_size, char **ret)
{
        struct stat st;
        _cleanup_close_ int fd = open_regular(root, path);
        if (fd == -EISDIR)
                return -EBADFD;
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        off_t start = st.st_size > (off_t)max_size ? st.st_size - (off_t)max_size : 0;
        size_t want = (size_t)(st.st_size - start);
        _cleanup_free_ char *buf = malloc(want + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
        while (got < want) {
                ssize_t k = pread(fd, buf + got, want - got, start + (off_t)got);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                got += (size_t)k;
        }
        buf[got] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

int rootfs_list(const char *root, const char *dir, size_t max_entries, char ***ret)
{
        _cleanup_free_ char *local = NULL;
        int r = root_resolve_local(root, dir, &local);
        if (r < 0)
                return r;
        return dir_list(local, NULL, max_entries, ret);
}

bool rootfs_is_executable(const char *root, const char *path)
{
        struct stat st;
        return rootfs_stat(root, path, &st) >= 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

int rootfs_find_executable(const char *root, const char *const *dirs, const char *name, char **ret)
{
        for (const char *const *d = dirs; d && *d; d++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", *d, name) < 0)
                        return -ENOMEM;
                if (rootfs_is_executable(root, p)) {
                        *ret = TAKE_PTR(p);
                        return 0;
                }
        }
        return -ENOENT;
}
