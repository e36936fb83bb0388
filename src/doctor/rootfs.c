/* SPDX-License-Identifier: Apache-2.0 */
#include "rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "base/fileio.h"
#include "base/strv.h"

static bool root_is_host(const char *root)
{
        return isempty(root) || streq(root, "/");
}

/* Symlinks followed while resolving one path, as the kernel's own limit. */
#define MAX_SYMLINKS 40

static bool same_inode(int a, int b)
{
        struct stat sa, sb;
        return fstat(a, &sa) >= 0 && fstat(b, &sb) >= 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* What openat2(RESOLVE_IN_ROOT) does, by hand, for kernels without it (before 5.6) and seccomp profiles
 * that refuse it: one component at a time, each opened with O_NOFOLLOW; a symlink is read and its target
 * resolved in its place, an absolute target starting again at root; ".." at root stays at root. So no
 * symlink in the node's filesystem, absolute or climbing, reaches the host running the doctor. */
static int open_in_root_by_hand(int root_fd, const char *path, int flags)
{
        _cleanup_free_ char *todo = strdup(path);
        if (!todo)
                return -ENOMEM;
        _cleanup_close_ int cur = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return negative_errno();
        unsigned links = 0;
        char *p = todo;
        for (;;) {
                while (*p == '/')
                        p++;
                if (!*p) {
                        /* The path named a directory (root itself, or a trailing slash). */
                        int fd = openat(cur, ".", flags | O_CLOEXEC);
                        return fd < 0 ? negative_errno() : fd;
                }
                char *end = strchrnul(p, '/');
                bool last = !end[strspn(end, "/")];
                char saved = *end;
                *end = '\0';
                if (streq(p, ".")) {
                        *end = saved;
                        p = end;
                        continue;
                }
                if (streq(p, "..")) {
                        *end = saved;
                        p = end;
                        if (same_inode(cur, root_fd))
                                continue; /* never above root */
                        int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (up < 0)
                                return negative_errno();
                        safe_close(cur);
                        cur = up;
                        continue;
                }
                _cleanup_close_ int fd = openat(cur, p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return negative_errno();
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return negative_errno();
                *end = saved;
                if (S_ISLNK(st.st_mode)) {
                        if (++links > MAX_SYMLINKS)
                                return -ELOOP;
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
                        if (n < 0)
                                return negative_errno();
                        target[n] = '\0';
                        /* The rest of the path now follows the link's target. */
                        char *next = NULL;
                        if (asprintf(&next, "%s/%s", target, end) < 0)
                                return -ENOMEM;
                        free(todo);
                        todo = p = next;
                        if (target[0] == '/') {
                                int top = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
                                if (top < 0)
                                        return negative_errno();
                                safe_close(cur);
                                cur = top;
                        }
                        continue;
                }
                if (last) {
                        /* Opened again with the caller's flags; O_NOFOLLOW: if it became a symlink since,
                         * it fails instead of following it. */
                        *end = '\0';
                        int r = openat(cur, p, flags | O_NOFOLLOW | O_CLOEXEC);
                        return r < 0 ? negative_errno() : r;
                }
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
                safe_close(cur);
                cur = TAKE_FD(fd);
                p = end;
        }
}

/* Opens path inside root: openat2(RESOLVE_IN_ROOT) where the kernel has it, else resolved by hand. */
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
        const char *rel = path + strspn(path, "/");
        long fd = syscall(SYS_openat2, dfd, *rel ? rel : ".", &how, sizeof(how));
        if (fd >= 0)
                return (int)fd;
        if (errno != ENOSYS && errno != EPERM)
                return negative_errno();
        return open_in_root_by_hand(dfd, path, flags);
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
        return read_full_fd(fd, max_size, ret, ret_size);
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
