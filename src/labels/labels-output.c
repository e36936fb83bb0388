/* SPDX-License-Identifier: Apache-2.0 */
/* The NFD features.d file. Written atomically and only on change, never removed: NFD re-reads the
 * directory periodically, and a missing or half-written file makes every nvidia.com/ label vanish
 * from the node until the next write (upstream issue #796). */
#include <limits.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "labels.h"

/* mkdir -p of the directory holding path. */
static int mkdir_parents(const char *path)
{
        char dir[PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
                return -ENAMETOOLONG;
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0;
        *slash = '\0';
        for (char *p = dir + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char saved = *p;
                *p = '\0';
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                *p = saved;
                if (saved == '\0')
                        break;
        }
        return 0;
}

int labels_write(const labels *l, const char *path)
{
        _cleanup_free_ char *text = NULL;
        int r = labels_format(l, &text);
        if (r < 0)
                return r;
        if (isempty(path)) {
                if (fputs(text, stdout) == EOF || fflush(stdout) == EOF)
                        return negative_errno();
                return 1;
        }
        r = mkdir_parents(path);
        if (r < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), 0644);
}
