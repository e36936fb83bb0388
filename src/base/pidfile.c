/* SPDX-License-Identifier: Apache-2.0 */
#include "base/pidfile.h"

#include <dirent.h>
#include <inttypes.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/parse.h"

#define PROC_FILE_MAX 65536

/* Field 22 of /proc/<pid>/stat: the start time. The command name (field 2) may hold blanks and ')':
 * the fields after it start after the last ')'. */
static int start_time(const char *proc, const char *pid, uint64_t *ret)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/%s/stat", proc, pid) < 0)
                return -ENOMEM;
        int r = read_full_file(path, PROC_FILE_MAX, &text, NULL);
        if (r < 0)
                return r;
        const char *p = strrchr(text, ')');
        if (!p)
                return -EBADMSG;
        /* after ") ": field 3 (state) ... field 22 */
        unsigned long long t;
        if (sscanf(p + 1,
                   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                   &t) != 1)
                return -EBADMSG;
        *ret = t;
        return 0;
}

int pidfile_write(const char *path)
{
        uint64_t t;
        char self[32], line[64];
        snprintf(self, sizeof self, "%d", (int)getpid());
        int r = start_time("/proc", self, &t);
        if (r < 0)
                return r;
        int n = snprintf(line, sizeof line, "%s %" PRIu64 "\n", self, t);
        r = write_file_atomic(path, line, (size_t)n, 0644);
        return r < 0 ? r : 0;
}

/* The last pid of the NSpid line of /proc/<pid>/status: the process's pid in its own namespace. */
static int innermost_pid(const char *proc, const char *pid, long *ret)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/%s/status", proc, pid) < 0)
                return -ENOMEM;
        int r = read_full_file(path, PROC_FILE_MAX, &text, NULL);
        if (r < 0)
                return r;
        const char *l = strstr(text, "\nNSpid:");
        if (!l)
                return -ENOENT;
        l += strlen("\nNSpid:");
        long last = -1;
        for (;;) {
                char *end;
                long v = strtol(l, &end, 10);
                if (end == l)
                        break;
                last = v;
                l = end;
        }
        if (last < 0)
                return -EBADMSG;
        *ret = last;
        return 0;
}

int pidfile_find(const char *path, const char *proc, pid_t *ret)
{
        _cleanup_free_ char *text = NULL;
        long pid;
        unsigned long long t;
        if (!proc)
                proc = "/proc";
        int r = read_full_file(path, 256, &text, NULL);
        if (r < 0)
                return r;
        if (sscanf(text, "%ld %llu", &pid, &t) != 2 || pid <= 0)
                return -EBADMSG;
        char name[32];
        uint64_t started;
        snprintf(name, sizeof name, "%ld", pid);
        /* the same namespace: the pid as recorded, if its start time agrees */
        if (start_time(proc, name, &started) >= 0 && started == t) {
                *ret = (pid_t)pid;
                return 0;
        }
        /* another one (a container's, seen from the host): the process whose innermost pid it is */
        DIR *d = opendir(proc);
        if (!d)
                return negative_errno();
        r = -ESRCH;
        for (struct dirent *de; r < 0 && (de = readdir(d));) {
                long inner;
                if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
                    innermost_pid(proc, de->d_name, &inner) < 0 || inner != pid ||
                    start_time(proc, de->d_name, &started) < 0 || started != t)
                        continue;
                *ret = (pid_t)strtol(de->d_name, NULL, 10);
                r = 0;
        }
        closedir(d);
        return r;
}
