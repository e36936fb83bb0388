/* SPDX-License-Identifier: Apache-2.0 */
#include "fileio.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "base/strv.h"

int open_regular_file(const char *path, int flags)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        return TAKE_FD(fd);
}

bool path_is_dev_null(const char *path)
{
        struct stat st;
        return stat(path, &st) >= 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

const char *file_error_string(int r)
{
        switch (r) {
        case -EBADFD: return "not a regular file (a FIFO, socket or device)";
        case -ELOOP: return "a symbolic link where a file was expected";
        default: return strerror(-r);
        }
}

int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = open_regular_file(path, 0);
        if (fd < 0)
                return fd;
        return read_full_fd(fd, max_size, ret, ret_size);
}

int read_full_fd(int fd, size_t max_size, char **ret, size_t *ret_size)
{
        size_t size = 0, alloc = 4096;
        _cleanup_free_ char *buf = malloc(alloc);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (size + 1 >= alloc) {
                        if (alloc > max_size + 1)
                                return -EFBIG;
                        alloc *= 2;
                        char *n = realloc(buf, alloc);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                }
                ssize_t k = read(fd, buf + size, alloc - size - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                size += (size_t)k;
                if (size > max_size)
                        return -EFBIG;
        }
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

int read_one_line_file(const char *path, char **ret)
{
        char *s;
        int r = read_full_file(path, 64 * 1024, &s, NULL);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = '\0';
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                s[--n] = '\0';
        *ret = s;
        return 0;
}

static bool file_has_content(const char *path, const void *data, size_t size, mode_t mode)
{
        /* Our own file: a symlink or a FIFO there is not it, and is replaced without being read. */
        _cleanup_close_ int fd = open_regular_file(path, O_NOFOLLOW);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || (size_t)st.st_size != size || (st.st_mode & 07777) != mode)
                return false;
        _cleanup_free_ char *old = NULL;
        size_t old_size;
        if (read_full_fd(fd, size, &old, &old_size) < 0)
                return false;
        return old_size == size && memcmp(old, data, size) == 0;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode)
{
        if (file_has_content(path, data, size, mode))
                return 0;

        _cleanup_free_ char *tmp = NULL;
        const char *slash = strrchr(path, '/');
        int dirlen = slash ? (int)(slash - path) + 1 : 0;
        if (asprintf(&tmp, "%.*s.%s.tmpXXXXXX", dirlen, path, slash ? slash + 1 : path) < 0)
                return -ENOMEM;

        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        int r = 0;
        const char *p = data;
        size_t left = size;
        while (left > 0) {
                ssize_t k = write(fd, p, left);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto fail;
                }
                p += k;
                left -= (size_t)k;
        }
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                goto fail;
        }
        return 1;
fail:
        (void)unlink(tmp);
        return r;
}

bool is_dir(const char *path)
{
        struct stat st;
        return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int mkdir_p(const char *dir, mode_t mode)
{
        if (isempty(dir))
                return -EINVAL;
        _cleanup_free_ char *p = strdup(dir);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1;; s++) {
                char c = *s;
                if (c != '/' && c != '\0')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = c;
                if (!c)
                        break;
        }
        /* EEXIST above is also a file of that name. */
        return is_dir(dir) ? 0 : -ENOTDIR;
}

int dir_list(const char *path, bool (*keep)(const char *name), size_t max_entries, char ***ret)
{
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        DIR *d = fdopendir(fd);
        if (!d) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        /* Grown by doubling: a library folder holds thousands of names. */
        _cleanup_strv_free_ char **names = new0(char *, 1);
        size_t n = 0, alloc = 1;
        int r = names ? 0 : -ENOMEM;
        for (struct dirent *de; r >= 0 && (de = readdir(d));) {
                if (streq(de->d_name, ".") || streq(de->d_name, "..") || (keep && !keep(de->d_name)))
                        continue;
                if (n >= max_entries) {
                        r = -E2BIG;
                        break;
                }
                if (n + 1 >= alloc) {
                        char **grown = reallocarray(names, alloc * 2, sizeof(char *));
                        if (!grown) {
                                r = -ENOMEM;
                                break;
                        }
                        names = grown;
                        alloc *= 2;
                }
                if (!(names[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                names[++n] = NULL;
        }
        closedir(d);
        if (r < 0)
                return r;
        strv_sort(names);
        *ret = TAKE_PTR(names);
        return 0;
}

const char *path_base_name(const char *p)
{
        const char *s = strrchr(p, '/');
        return s ? s + 1 : p;
}

char *path_dir_name(const char *p)
{
        const char *s = strrchr(p, '/');
        return !s || s == p ? strdup("/") : strndup(p, (size_t)(s - p));
}

char *path_join_root(const char *root, const char *path)
{
        char *r;
        if (isempty(root) || streq(root, "/"))
                return strdup(path);
        size_t n = strlen(root);
        while (n > 1 && root[n - 1] == '/')
                n--;
        while (*path == '/')
                path++;
        if (asprintf(&r, "%.*s/%s", (int)n, root, path) < 0)
                return NULL;
        return r;
}
