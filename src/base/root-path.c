/* SPDX-License-Identifier: Apache-2.0 */
#include "base/root-path.h"

#include <limits.h>
#include <sys/stat.h>

#include "base/fileio.h"

#define LINKS_MAX 40

/* Drops the last component of done ("/a/b" -> "/a", "/a" -> ""): ".." never climbs above the root. */
static void drop_last(char *done)
{
        char *slash = strrchr(done, '/');
        if (slash)
                *slash = '\0';
}

int root_realpath(const char *root, const char *path, char **ret)
{
        if (!path || path[0] != '/')
                return -EINVAL;
        /* done: what is resolved so far ("" is the root); rest: what is left, links spliced in. */
        _cleanup_free_ char *rest = strdup(path), *done = strdup("");
        if (!rest || !done)
                return -ENOMEM;
        unsigned links = 0;

        for (;;) {
                char *p = rest;
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                size_t n = strcspn(p, "/");
                char *next = p + n;
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
                        if (n == 2)
                                drop_last(done);
                        memmove(rest, next, strlen(next) + 1);
                        continue;
                }
                _cleanup_free_ char *candidate = NULL, *local = NULL;
                if (asprintf(&candidate, "%s/%.*s", done, (int)n, p) < 0)
                        return -ENOMEM;
                if (!(local = path_join_root(root, candidate)))
                        return -ENOMEM;
                struct stat st;
                if (lstat(local, &st) < 0)
                        return negative_errno();
                if (S_ISLNK(st.st_mode)) {
                        if (++links > LINKS_MAX)
                                return -ELOOP;
                        char target[PATH_MAX];
                        ssize_t k = readlink(local, target, sizeof target - 1);
                        if (k < 0)
                                return negative_errno();
                        if (k == 0)
                                return -ENOENT;
                        target[k] = '\0';
                        /* The link's target takes the place of the component; an absolute one starts
                         * again at the root. */
                        char *joined;
                        if (asprintf(&joined, "%s%s", target, next) < 0)
                                return -ENOMEM;
                        free(rest);
                        rest = joined;
                        if (target[0] == '/')
                                done[0] = '\0';
                        continue;
                }
                if (*next && !S_ISDIR(st.st_mode))
                        return -ENOTDIR;
                free(done);
                done = TAKE_PTR(candidate);
                memmove(rest, next, strlen(next) + 1);
        }
        char *result = strdup(done[0] ? done : "/");
        if (!result)
                return -ENOMEM;
        *ret = result;
        return 0;
}

int root_resolve_local(const char *root, const char *path, char **ret)
{
        _cleanup_free_ char *real = NULL;
        int r = root_realpath(root, path, &real);
        if (r < 0)
                return r;
        char *local = path_join_root(root, real);
        if (!local)
                return -ENOMEM;
        *ret = local;
        return 0;
}
