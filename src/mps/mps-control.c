/* SPDX-License-Identifier: Apache-2.0 */
#include "mps/mps-control.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "base/parse.h"
#include "base/strv.h"
#include "mps/mps-root.h"

#define ENVIRON_MAX (256 * 1024)

int mps_control_search_path(const char *driver_search_root, const char *path_env, char ***ret)
{
        _cleanup_strv_free_ char **l = new0(char *, 1), **path = NULL;
        if (!l)
                return -ENOMEM;
        int r = strv_split(isempty(path_env) ? MPS_DEFAULT_PATH : path_env, ":", &path);
        if (r < 0)
                return r;
        if (strv_extend(&path, MPS_RUNTIME_BIN) < 0)
                return -ENOMEM;
        STRV_FOREACH (d, path)
                if (!strv_contains(l, *d) && strv_extend(&l, *d) < 0)
                        return -ENOMEM;
        if (!isempty(driver_search_root) && !streq(driver_search_root, "/")) {
                static const char *const sub[] = { "/usr/bin", "/bin" };
                for (size_t i = 0; i < ELEMENTSOF(sub); i++) {
                        _cleanup_free_ char *d = path_join_root(driver_search_root, sub[i]);
                        if (!d || (!strv_contains(l, d) && strv_extend(&l, d) < 0))
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int mps_control_find(char *const *dirs, char **ret)
{
        STRV_FOREACH (d, dirs) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", *d, MPS_CONTROL_BINARY) < 0)
                        return -ENOMEM;
                struct stat st;
                if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0) {
                        *ret = TAKE_PTR(p);
                        return 0;
                }
        }
        return -ENOENT;
}

static int input_fd(const char *input)
{
        /* A pipe holds the command (far below the pipe buffer), then EOF: what `echo cmd |` gives. */
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        size_t n = strlen(strempty(input));
        ssize_t k = n ? write(p[1], input, n) : 0;
        int r = k < 0 ? negative_errno() : (size_t)k != n ? -EIO : 0;
        safe_close(p[1]);
        if (r < 0) {
                safe_close(p[0]);
                return r;
        }
        return p[0];
}

int mps_spawn(const char *path, char *const *argv, char *const *env, const char *input, pid_t *ret_pid,
              int *ret_output)
{
        if (input && strlen(input) > 4096)
                return -E2BIG;
        _cleanup_close_ int in = input_fd(input);
        if (in < 0)
                return in;
        _cleanup_close_ int out = memfd_create("mps-output", MFD_CLOEXEC);
        if (out < 0)
                return negative_errno();

        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        int r = posix_spawn_file_actions_init(&fa);
        if (r > 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r > 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        /* The loop blocks signals to read them from a signalfd, and SIGPIPE is ignored: neither must reach
         * the daemon, which would then not stop on SIGTERM. */
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        pid_t pid = 0;
        if ((r = posix_spawn_file_actions_adddup2(&fa, in, STDIN_FILENO)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, out, STDOUT_FILENO)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, out, STDERR_FILENO)) == 0 &&
            (r = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
            (r = posix_spawnattr_setsigdefault(&attr, &all)) == 0 &&
            (r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0)
                r = posix_spawn(&pid, path, &fa, &attr, argv, env);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r > 0)
                return -r;
        *ret_pid = pid;
        *ret_output = TAKE_FD(out);
        return 0;
}

int mps_output_read(int fd, size_t max, char **ret)
{
        char *buf = new0(char, max + 1);
        if (!buf)
                return -ENOMEM;
        ssize_t n = pread(fd, buf, max, 0);
        if (n < 0) {
                int r = negative_errno();
                free(buf);
                return r;
        }
        for (ssize_t i = 0; i < n; i++)
                if ((unsigned char)buf[i] < 0x20 && buf[i] != '\n')
                        buf[i] = ' ';
        while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\n'))
                n--;
        buf[n] = '\0';
        *ret = buf;
        return 0;
}

/* The state letter and parent pid from /proc/<pid>/stat (after the parenthesised command name). */
static int proc_stat(pid_t pid, char *ret_state, pid_t *ret_ppid)
{
        char path[64];
        _cleanup_free_ char *stat = NULL;
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        int r = read_one_line_file(path, &stat);
        if (r < 0)
                return r;
        const char *p = strrchr(stat, ')');
        int ppid;
        char state;
        if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
                return -EINVAL;
        *ret_state = state;
        *ret_ppid = (pid_t)ppid;
        return 0;
}

bool mps_pid_alive(pid_t pid)
{
        if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
                return false;
        /* A zombie is dead: an orphan whose new parent does not reap it stays one. */
        char state;
        pid_t ppid;
        return proc_stat(pid, &state, &ppid) < 0 || (state != 'Z' && state != 'X');
}

int mps_control_read_pid(const char *pipe_dir, pid_t *ret)
{
        _cleanup_free_ char *path = NULL, *line = NULL;
        if (asprintf(&path, "%s/%s", pipe_dir, MPS_PID_FILE) < 0)
                return -ENOMEM;
        int r = read_one_line_file(path, &line);
        if (r < 0)
                return r;
        int64_t v;
        if (parse_int64(line, &v) < 0 || v <= 1 || v > INT32_MAX)
                return -EINVAL;
        if (!mps_pid_alive((pid_t)v))
                return -ESRCH;
        *ret = (pid_t)v;
        return 0;
}

static pid_t parent_of(pid_t pid)
{
        char state;
        pid_t ppid;
        return proc_stat(pid, &state, &ppid) < 0 ? -1 : ppid;
}

bool mps_pid_is_child(pid_t pid)
{
        return pid > 0 && parent_of(pid) == getpid();
}

static bool environ_has(pid_t pid, const char *entry)
{
        char path[64];
        _cleanup_free_ char *env = NULL;
        size_t size;
        snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
        if (read_full_file(path, ENVIRON_MAX, &env, &size) < 0)
                return false;
        size_t n = strlen(entry);
        for (size_t i = 0; i < size; i += strlen(env + i) + 1)
                if (strlen(env + i) == n && memcmp(env + i, entry, n) == 0)
                        return true;
        return false;
}

int mps_control_find_child(const char *pipe_dir, pid_t *ret)
{
        _cleanup_free_ char *entry = NULL;
        if (asprintf(&entry, "CUDA_MPS_PIPE_DIRECTORY=%s", pipe_dir) < 0)
                return -ENOMEM;
        DIR *d = opendir("/proc");
        if (!d)
                return negative_errno();
        int r = -ESRCH;
        for (struct dirent *de; (de = readdir(d));) {
                int64_t v;
                if (parse_int64(de->d_name, &v) < 0 || v <= 1 || v > INT32_MAX)
                        continue;
                if (parent_of((pid_t)v) == getpid() && environ_has((pid_t)v, entry)) {
                        *ret = (pid_t)v;
                        r = 0;
                        break;
                }
        }
        closedir(d);
        return r;
}
