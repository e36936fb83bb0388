/* SPDX-License-Identifier: Apache-2.0 */
/* A stand-in for NVIDIA's nvidia-cuda-mps-control, for machines without the driver: the integration
 * tests (tests/integration/test_mps.py) and the simulated end-to-end cluster (the MOCK=1 image,
 * tests/e2e/scenarios/device-plugin.sh) run nvdp's MPS control daemon against it.
 *
 * It behaves as the real one does where nvdp relies on it (docs/mps.md lists the facts):
 *   -d        starts the control daemon in the background (the launcher exits 0 once it listens, 1 when
 *             another daemon already runs on this pipe directory); the daemon listens on
 *             $CUDA_MPS_PIPE_DIRECTORY/control (SOCK_SEQPACKET, as the real one), writes its pid to
 *             nvidia-cuda-mps-control.pid there and logs to $CUDA_MPS_LOG_DIRECTORY/control.log
 *             ("Cmd:<command>" for every command received);
 *   (none)    the client: sends standard input to the daemon, prints the answer; exit 1 when no daemon
 *             listens;
 *   commands  set_default_active_thread_percentage N (answers "N.0"), get_default_active_thread_percentage,
 *             set_default_device_pinned_mem_limit DEV NNN[MG], get_default_device_pinned_mem_limit DEV,
 *             quit (the daemon removes its socket and pid file and exits).
 * What it records for the tests, beyond the real one: every start of the binary with its arguments,
 * CUDA_VISIBLE_DEVICES, LD_LIBRARY_PATH and PATH ("Invoked:" lines), and with every set_* command whether
 * the daemon's readiness files already existed then ("(started=no ready=no)"). Each set_* command takes 0.2
 * s, so that a readiness file written too early would be seen. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LIMITS_MAX 64
#define INPUT_MAX  (64 * 1024)

static const char *pipe_dir, *log_dir;
static char sock_path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
static char pid_path[4096];

static struct {
        char threads[32];
        struct {
                char dev[128], value[32];
        } limits[LIMITS_MAX];
        size_t n_limits;
        bool quit;
} state = { .threads = "100.0" };

static void mkdir_p(const char *path)
{
        char p[4096];
        snprintf(p, sizeof p, "%s", path);
        for (char *s = p + 1; *s; s++)
                if (*s == '/') {
                        *s = '\0';
                        (void)mkdir(p, 0755);
                        *s = '/';
                }
        (void)mkdir(p, 0755);
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
        char path[4096], stamp[32];
        mkdir_p(log_dir);
        snprintf(path, sizeof path, "%s/control.log", log_dir);
        FILE *f = fopen(path, "ae");
        if (!f)
                return;
        time_t now = time(NULL);
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", localtime(&now));
        fprintf(f, "[%s Control %6d] ", stamp, (int)getpid());
        va_list ap;
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        fputc('\n', f);
        fclose(f);
}

static bool exists(const char *dir, const char *name)
{
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, name) >= sizeof p)
                return false;
        return access(p, F_OK) == 0;
}

/* Strips the last component of p in place ("/a/b" -> "/a", "/a" -> "/"). */
static void dir_up(char *p)
{
        char *slash = strrchr(p, '/');
        if (slash && slash != p)
                *slash = '\0';
        else
                strcpy(p, "/");
}

/* Whether <resource>/.started or a .ready above it exists now. */
static void readiness(char *out, size_t size)
{
        char d[4096];
        snprintf(d, sizeof d, "%s", pipe_dir);
        dir_up(d); /* the resource's directory */
        bool started = exists(d, ".started"), ready = false;
        for (int i = 0; i < 4; i++) {
                dir_up(d);
                ready = ready || exists(d, ".ready");
        }
        snprintf(out, size, "started=%s ready=%s", started ? "yes" : "no", ready ? "yes" : "no");
}

static void pause_a_moment(void)
{
        struct timespec t = { 0, 200 * 1000 * 1000 };
        while (nanosleep(&t, &t) < 0 && errno == EINTR)
                ;
}

static bool all_digits(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

/* A pinned memory limit as NVIDIA's tool takes it: digits, then M or G. */
static bool limit_valid(const char *v)
{
        size_t n = strlen(v);
        char digits[32];
        if (n < 2 || n >= sizeof digits || (v[n - 1] != 'M' && v[n - 1] != 'G'))
                return false;
        memcpy(digits, v, n - 1);
        digits[n - 1] = '\0';
        return all_digits(digits);
}

/* dev is a UUID in CUDA_VISIBLE_DEVICES or an ordinal below their count. */
static bool device_valid(const char *dev)
{
        const char *v = getenv("CUDA_VISIBLE_DEVICES");
        if (!v)
                return false;
        size_t count = 0;
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", v);
        for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (strcmp(t, dev) == 0)
                        return true;
                count++;
        }
        return all_digits(dev) && strtoul(dev, NULL, 10) < count;
}

/* One command line; its answer (empty: none) in out. */
static void handle(const char *line, char *out, size_t size)
{
        char copy[1024], ready[64];
        char *words[4] = {};
        size_t n = 0;
        snprintf(copy, sizeof copy, "%s", line);
        for (char *save = NULL, *t = strtok_r(copy, " \t\r", &save); t && n < 4;
             t = strtok_r(NULL, " \t\r", &save))
                words[n++] = t;
        out[0] = '\0';
        if (n == 0)
                return;
        const char *cmd = words[0];
        if (strcmp(cmd, "set_default_active_thread_percentage") == 0 && n == 2 && all_digits(words[1])) {
                readiness(ready, sizeof ready);
                logf_("Cmd:%s (%s)", line, ready);
                pause_a_moment();
                snprintf(state.threads, sizeof state.threads, "%s.0", words[1]);
                snprintf(out, size, "%s", state.threads);
        } else if (strcmp(cmd, "get_default_active_thread_percentage") == 0 && n == 1) {
                logf_("Cmd:%s", line);
                snprintf(out, size, "%s", state.threads);
        } else if (strcmp(cmd, "set_default_device_pinned_mem_limit") == 0 && n == 3) {
                readiness(ready, sizeof ready);
                logf_("Cmd:%s (%s)", line, ready);
                pause_a_moment();
                if (!limit_valid(words[2]) || !device_valid(words[1])) {
                        snprintf(out, size, "Invalid device or value: %s", line);
                        return;
                }
                size_t i = 0;
                while (i < state.n_limits && strcmp(state.limits[i].dev, words[1]) != 0)
                        i++;
                if (i == LIMITS_MAX)
                        return;
                if (i == state.n_limits)
                        state.n_limits++;
                snprintf(state.limits[i].dev, sizeof state.limits[i].dev, "%s", words[1]);
                snprintf(state.limits[i].value, sizeof state.limits[i].value, "%s", words[2]);
        } else if (strcmp(cmd, "get_default_device_pinned_mem_limit") == 0 && n == 2) {
                logf_("Cmd:%s", line);
                snprintf(out, size, "0");
                for (size_t i = 0; i < state.n_limits; i++)
                        if (strcmp(state.limits[i].dev, words[1]) == 0)
                                snprintf(out, size, "%s", state.limits[i].value);
        } else if (strcmp(cmd, "quit") == 0 && n == 1) {
                logf_("Cmd:quit");
                state.quit = true;
        } else {
                logf_("Cmd:%s (unknown)", line);
                snprintf(out, size, "Unknown command: %s", line);
        }
}

/* Reads fd to its end (at most INPUT_MAX bytes) into a NUL-terminated buffer. */
static char *read_all(int fd)
{
        size_t len = 0;
        char *buf = malloc(INPUT_MAX + 1);
        if (!buf)
                return NULL;
        for (;;) {
                ssize_t k = read(fd, buf + len, INPUT_MAX - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0 || (len += (size_t)k) == INPUT_MAX)
                        break;
        }
        buf[len] = '\0';
        return buf;
}

static void write_all(int fd, const char *s, size_t n)
{
        while (n > 0) {
                ssize_t k = write(fd, s, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                s += k;
                n -= (size_t)k;
        }
}

static void serve(int srv)
{
        while (!state.quit) {
                int conn = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
                if (conn < 0)
                        continue;
                char *data = read_all(conn);
                char answer[1024];
                for (char *save = NULL, *line = data ? strtok_r(data, "\n", &save) : NULL; line;
                     line = strtok_r(NULL, "\n", &save)) {
                        handle(line, answer, sizeof answer);
                        if (answer[0]) {
                                write_all(conn, answer, strlen(answer));
                                write_all(conn, "\n", 1);
                        }
                }
                free(data);
                close(conn);
        }
        unlink(sock_path);
        unlink(pid_path);
        logf_("Exit");
}

static int connect_daemon(void)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static int start_daemon(void)
{
        int fd = connect_daemon();
        if (fd >= 0) {
                close(fd);
                fprintf(stderr, "An instance of this daemon is already running\n");
                return 1;
        }
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return 1;
        pid_t pid = fork();
        if (pid < 0)
                return 1;
        if (pid > 0) {
                char ok = 0;
                close(p[1]);
                while (read(p[0], &ok, 1) < 0 && errno == EINTR)
                        ;
                return ok == '1' ? 0 : 1;
        }
        close(p[0]);
        setsid();
        if (fork() != 0)
                _exit(0);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        for (int i = 0; i < 3 && null >= 0; i++)
                dup2(null, i);
        mkdir_p(pipe_dir);
        unlink(sock_path);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
        int srv = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (srv < 0 || bind(srv, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(srv, 16) < 0) {
                logf_("Cannot listen on %s: %s", sock_path, strerror(errno));
                _exit(1);
        }
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", pid_path);
        FILE *f = fopen(tmp, "we");
        if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 || rename(tmp, pid_path) < 0)
                _exit(1);
        logf_("Starting control daemon using socket %s", sock_path);
        logf_("To connect CUDA applications to this daemon, set env CUDA_MPS_PIPE_DIRECTORY=%s", pipe_dir);
        write_all(p[1], "1", 1);
        close(p[1]);
        serve(srv);
        _exit(0);
}

static int client(void)
{
        char *text = read_all(STDIN_FILENO);
        int fd = connect_daemon();
        if (!text || fd < 0) {
                fprintf(stderr, "Cannot find MPS control daemon process (%s)\n",
                        strerror(fd < 0 ? -fd : ENOMEM));
                free(text);
                return 1;
        }
        write_all(fd, text, strlen(text));
        free(text);
        shutdown(fd, SHUT_WR);
        char *answer = read_all(fd);
        close(fd);
        if (answer)
                fputs(answer, stdout);
        free(answer);
        return 0;
}

int main(int argc, char **argv)
{
        pipe_dir = getenv("CUDA_MPS_PIPE_DIRECTORY");
        if (!pipe_dir || !*pipe_dir)
                pipe_dir = "/tmp/nvidia-mps";
        log_dir = getenv("CUDA_MPS_LOG_DIRECTORY");
        if (!log_dir || !*log_dir)
                log_dir = "/var/log/nvidia-mps";
        if ((size_t)snprintf(sock_path, sizeof sock_path, "%s/control", pipe_dir) >= sizeof sock_path) {
                fprintf(stderr, "%s/control: path too long for a unix socket\n", pipe_dir);
                return 1;
        }
        snprintf(pid_path, sizeof pid_path, "%s/nvidia-cuda-mps-control.pid", pipe_dir);

        char args[1024] = "";
        for (int i = 1; i < argc; i++)
                snprintf(args + strlen(args), sizeof args - strlen(args), "%s%s", i > 1 ? " " : "", argv[i]);
        const char *visible = getenv("CUDA_VISIBLE_DEVICES"), *ld = getenv("LD_LIBRARY_PATH");
        const char *path = getenv("PATH");
        logf_("Invoked: %s CUDA_VISIBLE_DEVICES=%s LD_LIBRARY_PATH=%s PATH=%s", argc > 1 ? args : "(client)",
              visible ? visible : "(unset)", ld ? ld : "(unset)", path ? path : "(unset)");
        if (argc == 2 && strcmp(argv[1], "-d") == 0)
                return start_daemon();
        if (argc == 1)
                return client();
        fprintf(stderr, "usage: nvidia-cuda-mps-control [-d]\n");
        return 2;
}
