/* SPDX-License-Identifier: Apache-2.0 */
/* Running kubectl: fork/exec, no shell, bounded output, a deadline. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "base/parse.h"
#include "base/strv.h"
#include "doctor/doctor.h"

#define MAX_OUTPUT (32U * 1024 * 1024)

struct sink {
        int fd;
        char *buf;
        size_t n, alloc;
};

static int sink_read(struct sink *s)
{
        if (s->n + 65536 + 1 > s->alloc) {
                size_t a = MAX(s->alloc * 2, (size_t)65536 * 2);
                char *b = realloc(s->buf, a);
                if (!b)
                        return -ENOMEM;
                s->buf = b;
                s->alloc = a;
                s->buf[s->n] = '\0'; /* a stream that ends before any byte is "" */
        }
        ssize_t k = read(s->fd, s->buf + s->n, s->alloc - s->n - 1);
        if (k < 0)
                return errno == EINTR || errno == EAGAIN ? 1 : negative_errno();
        if (k == 0) {
                s->fd = safe_close(s->fd);
                return 0;
        }
        s->n += (size_t)k;
        s->buf[s->n] = '\0';
        if (s->n > MAX_OUTPUT)
                return -EFBIG;
        return 1;
}

static _noreturn_ void child(int out, int err, int errpipe, char **argv)
{
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
                goto fail;
        /* A default SIGPIPE disposition for kubectl, whatever ours is. */
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
fail:;
        int e = errno;
        (void)!write(errpipe, &e, sizeof(e));
        _exit(127);
}

/* Reads both pipes until they close or the deadline (CLOCK_MONOTONIC nsec) passes (-ETIMEDOUT). */
static int read_until(struct sink *so, struct sink *se, uint64_t deadline)
{
        while (so->fd >= 0 || se->fd >= 0) {
                uint64_t now = now_nsec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                struct pollfd p[2] = { { .fd = so->fd, .events = POLLIN },
                                       { .fd = se->fd, .events = POLLIN } };
                int n = poll(p, 2, (int)MIN((deadline - now) / NSEC_PER_MSEC + 1, (uint64_t)60000));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                int k;
                if (so->fd >= 0 && p[0].revents && (k = sink_read(so)) < 0)
                        return k;
                if (se->fd >= 0 && p[1].revents && (k = sink_read(se)) < 0)
                        return k;
        }
        return 0;
}

int doctor_kubectl_exec(void *userdata, char *const *args, int *ret_status, char **ret_stdout,
                        char **ret_stderr)
{
        const struct doctor_kubectl_exec_config *c = userdata;
        const char *prog = c && c->kubectl ? c->kubectl : "kubectl";
        unsigned timeout = c && c->timeout_sec ? c->timeout_sec : 10;
        _cleanup_strv_free_ char **argv = NULL;
        int k;

        if ((k = strv_extend(&argv, prog)) < 0)
                return k;
        if (c && c->kubeconfig) {
                if ((k = strv_extend(&argv, "--kubeconfig")) < 0 ||
                    (k = strv_extend(&argv, c->kubeconfig)) < 0)
                        return k;
        }
        STRV_FOREACH (a, args)
                if ((k = strv_extend(&argv, *a)) < 0)
                        return k;

        int outp[2], errp[2], execp[2];
        if (pipe2(outp, O_CLOEXEC) < 0)
                return negative_errno();
        _cleanup_close_ int out_r = outp[0], out_w = outp[1];
        if (pipe2(errp, O_CLOEXEC) < 0)
                return negative_errno();
        _cleanup_close_ int err_r = errp[0], err_w = errp[1];
        if (pipe2(execp, O_CLOEXEC) < 0)
                return negative_errno();
        _cleanup_close_ int exec_r = execp[0], exec_w = execp[1];

        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0)
                child(out_w, err_w, exec_w, argv);
        out_w = safe_close(out_w);
        err_w = safe_close(err_w);
        exec_w = safe_close(exec_w);

        /* The exec pipe closes on a successful exec; otherwise it carries errno. */
        int exec_errno = 0;
        ssize_t got;
        do
                got = read(exec_r, &exec_errno, sizeof(exec_errno));
        while (got < 0 && errno == EINTR);
        if (got == (ssize_t)sizeof(exec_errno)) {
                (void)waitpid(pid, NULL, 0);
                return exec_errno > 0 ? -exec_errno : -ENOEXEC;
        }

        struct sink so = { .fd = TAKE_FD(out_r) }, se = { .fd = TAKE_FD(err_r) };
        k = read_until(&so, &se, now_nsec() + (uint64_t)timeout * NSEC_PER_SEC);
        safe_close(so.fd);
        safe_close(se.fd);
        if (k < 0)
                (void)kill(pid, SIGKILL);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        status = 0;
                        break;
                }
        if (k < 0) {
                free(so.buf);
                free(se.buf);
                return k;
        }
        if (!so.buf && !(so.buf = strdup(""))) {
                free(se.buf);
                return -ENOMEM;
        }
        *ret_status =
                WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        *ret_stdout = so.buf;
        if (ret_stderr)
                *ret_stderr = se.buf;
        else
                free(se.buf);
        return 0;
}
