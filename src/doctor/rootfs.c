/* SPDX-License-Identifier: Apache-2.0 */
#include "rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "base/fileio.h"
#include "base/strv.h"

static bool root_is_host(const char *root)
{
        return isempty(root) || streq(root, "/");
}

/* Opens path inside root. Where openat2 is missing (old kernel, seccomp) falls back to joining the
 * paths, which is right for everything but absolute symlinks. */
int rootfs_open(const char *root, const char *path, int flags)
{
        if (!path || path[0] != '/')
                return -EINVAL;
        if (root_is_host(root)) {
                int fd = open(path, flags | O_CLOEXEC);
                return fd < 0 ? negative_errno() : fd;
        }

        _cleanup_close_ int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC),
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, dfd, path + 1, &how, sizeof(how));
        if (fd >= 0)
                return (int)fd;
        if (errno != ENOSYS && errno != EPERM)
                return negative_errno();

        _cleanup_free_ char *joined = path_join_root(root, path);
        if (!joined)
                return -ENOMEM;
        int fd2 = open(joined, flags | O_CLOEXEC);
        return fd2 < 0 ? negative_errno() : fd2;
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

/* A regular file under root, opened for reading (never blocking on a fifo or a device). */
static int open_regular(const char *root, const char *path, struct stat *ret_st)
{
        _cleanup_close_ int fd = rootfs_open(root, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return fd;
        if (fstat(fd, ret_st) < 0)
                return negative_errno();
        if (S_ISDIR(ret_st->st_mode))
                return -EISDIR;
        if (!S_ISREG(ret_st->st_mode))
                return -EBADFD;
        return TAKE_FD(fd);
}

int rootfs_read(const char *root, const char *path, size_t max_size, char **ret, size_t *ret_size)
{
        struct stat st;
        _cleanup_close_ int fd = open_regular(root, path, &st);
        if (fd < 0)
                return fd;
        /* /proc/self/fd lets read_full_file (the one reader) read what we opened inside root. */
        char p[64];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        return read_full_file(p, max_size, ret, ret_size);
}

int rootfs_read_tail(const char *root, const char *path, size_t max_size, char **ret)
{
        struct stat st;
        _cleanup_close_ int fd = open_regular(root, path, &st);
        if (fd == -EISDIR)
                return -EBADFD;
        if (fd < 0)
                return fd;
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

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int rootfs_list(const char *root, const char *dir, size_t max_entries, char ***ret)
{
        int fd = rootfs_open(root, dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd;
        DIR *d = fdopendir(fd);
        if (!d) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (n >= max_entries) {
                        r = -E2BIG;
                        break;
                }
                r = strv_extend(&l, de->d_name);
                if (r < 0)
                        break;
                n++;
        }
        closedir(d);
        if (r < 0)
                return r;
        if (!l) {
                l = new0(char *, 1);
                if (!l)
                        return -ENOMEM;
        }
        qsort(l, n, sizeof(char *), cmp_str);
        *ret = TAKE_PTR(l);
        return 0;
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
