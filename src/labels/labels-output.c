/* SPDX-License-Identifier: Apache-2.0 */
/* The NFD features.d file. Written atomically and only on change, never removed: NFD re-reads the
 * directory periodically, and a missing or half-written file makes every nvidia.com/ label vanish
 * from the node until the next write (upstream issue #796). */
#include "base/fileio.h"
#include "labels.h"

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
        _cleanup_free_ char *dir = path_dir_name(path);
        if (!dir)
                return -ENOMEM;
        if ((r = mkdir_p(dir, 0755)) < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), 0644);
}
