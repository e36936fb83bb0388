/* SPDX-License-Identifier: Apache-2.0 */
#include "mps/mps-supervisor.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "base/fileio.h"
#include "base/parse.h"
#include "base/strv.h"
#include "mps/mps-control.h"
#include "mps/mps-root.h"

#define OUTPUT_MAX          4096
#define POLL_INTERVAL       (100 * NSEC_PER_MSEC)
#define FIRST_COMMAND_TRIES 10
#define SELINUX_LABEL       "system_u:object_r:container_file_t:s0"

static const char *const state_names[_MPS_STATE_MAX] = {
        [MPS_STATE_STOPPED] = "stopped", [MPS_STATE_STARTING] = "starting", [MPS_STATE_READY] = "ready",
        [MPS_STATE_FAILED] = "failed",   [MPS_STATE_STOPPING] = "stopping",
};

const char *mps_state_to_string(enum mps_state s)
{
        return s < _MPS_STATE_MAX ? state_names[s] : "unknown";
}

/* The child process running now, if any. */
enum step {
        STEP_NONE,
        STEP_QUIT_STALE, /* `quit` to a daemon an earlier run left behind */
        STEP_LAUNCH,     /* `nvidia-cuda-mps-control -d` */
        STEP_COMMAND,    /* one of the spec's commands */
        STEP_QUIT,       /* `quit` while stopping */
};

/* What the daemon's timer does when it fires. */
enum wait {
        WAIT_NONE,
        WAIT_STEP,       /* the step's time limit */
        WAIT_RETRY,      /* the first command again (the daemon may not listen yet) */
        WAIT_STALE_EXIT, /* the stale daemon to be gone */
        WAIT_EXIT,       /* our daemon to be gone after quit */
        WAIT_RESTART,    /* the delay before starting again */
        WAIT_ALIVE,      /* poll a daemon that is not our child (no SIGCHLD for it) */
};

/* After the daemon was shut down. */
enum then { THEN_STOPPED, THEN_RESTART };

struct daemon {
        mps_supervisor *sup;
        struct mps_spec spec;
        struct mps_spec *next; /* replaces spec once this daemon stopped */
        bool wanted;
        enum mps_state state;
        char *reason;
        char *dir, *pipe_dir, *log_dir;
        char *binary;
        char **env;
        char **commands;
        size_t command;
        unsigned tries;
        enum step step;
        pid_t child;
        int child_out;
        bool timed_out; /* the step's time limit passed and its process was killed */
        bool launched;  /* `-d` ran in this attempt: a daemon may exist */
        pid_t pid;      /* the control daemon, once known */
        pid_t stale_pid;
        enum then then;
        enum wait wait;
        uint64_t deadline;
        unsigned attempts; /* failures in a row, for the restart delay */
        uint64_t ready_since;
        loop_source *timer;
};

struct mps_supervisor {
        loop *loop;
        char *root;
        char **search_path;
        char **env;
        uint64_t step_timeout, restart_min, restart_max;
        mps_state_handler on_state;
        void (*on_idle)(void *userdata);
        void *userdata;
        loop_source *sigchld;
        struct daemon **daemons;
        size_t n_daemons;
};

static void daemon_start(struct daemon *d);
static void daemon_shutdown(struct daemon *d, enum then then);

static void daemon_free(struct daemon *d)
{
        if (!d)
                return;
        loop_source_free(d->timer);
        safe_close(d->child_out);
        mps_spec_done(&d->spec);
        if (d->next) {
                mps_spec_done(d->next);
                free(d->next);
        }
        free(d->reason);
        free(d->dir);
        free(d->pipe_dir);
        free(d->log_dir);
        free(d->binary);
        strv_free(d->env);
        strv_free(d->commands);
        free(d);
}

static char *daemon_file(const struct daemon *d, const char *leaf)
{
        return mps_path(d->sup->root, d->spec.resource, leaf);
}

/* <root>/.ready exists exactly while every wanted daemon is ready. */
static void update_ready_file(mps_supervisor *s)
{
        _cleanup_free_ char *path = mps_path(s->root, NULL, MPS_READY_FILE);
        if (!path)
                return;
        if (mps_supervisor_ready(s))
                (void)write_file_atomic(path, "", 0, 0644);
        else
                (void)unlink(path);
}

_printf_(3, 4) static void daemon_set_state(struct daemon *d, enum mps_state state, const char *fmt, ...)
{
        _cleanup_free_ char *reason = NULL;
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(&reason, fmt, ap) < 0)
                        reason = NULL;
                va_end(ap);
        }
        if (state == d->state && streq(strempty(reason), strempty(d->reason)))
                return;
        d->state = state;
        free(d->reason);
        d->reason = TAKE_PTR(reason);
        if (state == MPS_STATE_READY)
                d->ready_since = now_nsec();

        /* The one-line state file `nvdp doctor` reads; best effort (the directory may be unwritable). */
        _cleanup_free_ char *path = daemon_file(d, MPS_STATE_FILE), *line = NULL;
        if (path && asprintf(&line, "%s%s%s\n", mps_state_to_string(state), d->reason ? ": " : "",
                             strempty(d->reason)) >= 0)
                (void)write_file_atomic(path, line, strlen(line), 0644);

        mps_supervisor *s = d->sup;
        update_ready_file(s);
        if (s->on_state)
                s->on_state(d->spec.resource, state, d->reason, s->userdata);
}

static void daemon_wait(struct daemon *d, enum wait w, uint64_t nsec)
{
        d->wait = w;
        loop_timer_arm(d->timer, nsec);
}

static void daemon_unwait(struct daemon *d)
{
        d->wait = WAIT_NONE;
        loop_timer_disarm(d->timer);
}

static void remove_started(struct daemon *d)
{
        _cleanup_free_ char *path = daemon_file(d, MPS_STARTED_FILE);
        if (path)
                (void)unlink(path);
}

/* "exit status 1" / "killed by signal 9" */
static void describe_status(int status, char *buf, size_t size)
{
        if (WIFEXITED(status))
                snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
        else
                snprintf(buf, size, "wait status 0x%x", (unsigned)status);
}

static void kill_child(struct daemon *d)
{
        if (d->child > 0)
                (void)kill(d->child, SIGKILL); /* reaped by on_sigchld, which no longer matches it */
        d->child = 0;
        d->child_out = safe_close(d->child_out);
        d->step = STEP_NONE;
}

static int spawn(struct daemon *d, enum step step, const char *arg, const char *input)
{
        char *argv[] = { d->binary, (char *)arg, NULL };
        int r = mps_spawn(d->binary, argv, d->env, input, &d->child, &d->child_out);
        if (r < 0)
                return r;
        d->step = step;
        d->timed_out = false;
        daemon_wait(d, WAIT_STEP, d->sup->step_timeout);
        return 0;
}

/* Start failed: the state says why; a half-started daemon is shut down, then started again later. */
_printf_(2, 3) static void daemon_fail(struct daemon *d, const char *fmt, ...)
{
        _cleanup_free_ char *reason = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&reason, fmt, ap) < 0)
                reason = NULL;
        va_end(ap);
        kill_child(d);
        remove_started(d);
        daemon_set_state(d, MPS_STATE_FAILED, "%s", strna(reason));
        daemon_shutdown(d, THEN_RESTART);
}

static void schedule_restart(struct daemon *d)
{
        mps_supervisor *s = d->sup;
        unsigned shift = MIN(d->attempts, 16u);
        uint64_t delay = s->restart_min << shift;
        if (delay > s->restart_max || delay < s->restart_min)
                delay = s->restart_max;
        d->attempts++;
        daemon_wait(d, WAIT_RESTART, delay);
}

static int label_pipe_dir(const char *dir)
{
        /* As upstream: under SELinux, containers may use the pipes only with the container file label. */
        if (access("/sys/fs/selinux", F_OK) < 0)
                return 0;
        if (lsetxattr(dir, "security.selinux", SELINUX_LABEL, strlen(SELINUX_LABEL) + 1, 0) < 0)
                return negative_errno();
        return 0;
}

static int daemon_env(struct daemon *d)
{
        _cleanup_strv_free_ char **env = strv_copy(d->sup->env);
        _cleanup_free_ char *visible = mps_spec_visible_devices(&d->spec);
        if (!env || !visible)
                return -ENOMEM;
        char *e[3] = {};
        int r = 0;
        if (asprintf(&e[0], "CUDA_MPS_PIPE_DIRECTORY=%s", d->pipe_dir) < 0 ||
            asprintf(&e[1], "CUDA_MPS_LOG_DIRECTORY=%s", d->log_dir) < 0 ||
            asprintf(&e[2], "CUDA_VISIBLE_DEVICES=%s", visible) < 0)
                r = -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(e); i++) {
                if (r >= 0 && e[i])
                        r = strv_push(&env, e[i]);
                else
                        free(e[i]);
        }
        if (r < 0)
                return r;
        strv_free(d->env);
        d->env = TAKE_PTR(env);
        return 0;
}

static void daemon_launch(struct daemon *d)
{
        d->launched = true;
        int r = spawn(d, STEP_LAUNCH, "-d", NULL);
        if (r < 0)
                daemon_fail(d, "cannot run %s: %s", d->binary, strerror(-r));
}

static void daemon_command(struct daemon *d)
{
        int r = spawn(d, STEP_COMMAND, NULL, d->commands[d->command]);
        if (r < 0)
                daemon_fail(d, "cannot run %s: %s", d->binary, strerror(-r));
}

static void daemon_start(struct daemon *d)
{
        mps_supervisor *s = d->sup;
        int r;

        daemon_unwait(d);
        remove_started(d);
        d->launched = false;
        d->pid = 0;
        d->command = 0;
        d->tries = 0;

        /* The directory first: the state file says why the daemon does not run. */
        if ((r = mkdir_p(d->pipe_dir, 0755)) < 0 || (r = mkdir_p(d->log_dir, 0755)) < 0) {
                daemon_set_state(d, MPS_STATE_FAILED, "cannot create %s: %s", d->dir, strerror(-r));
                schedule_restart(d);
                return;
        }
        if (d->spec.error) {
                daemon_set_state(d, MPS_STATE_FAILED, "%s", d->spec.error);
                return; /* until a new spec */
        }
        free(d->binary);
        d->binary = NULL;
        if ((r = mps_control_find(s->search_path, &d->binary)) < 0) {
                _cleanup_free_ char *where = strv_join(s->search_path, ":");
                daemon_set_state(d, MPS_STATE_FAILED, MPS_CONTROL_BINARY " not found in %s", strna(where));
                schedule_restart(d);
                return;
        }
        if ((r = label_pipe_dir(d->pipe_dir)) < 0) {
                daemon_set_state(d, MPS_STATE_FAILED, "cannot set the SELinux label of %s: %s", d->pipe_dir,
                                 strerror(-r));
                schedule_restart(d);
                return;
        }
        strv_free(d->commands);
        d->commands = NULL;
        if ((r = daemon_env(d)) < 0 || (r = mps_spec_commands(&d->spec, &d->commands)) < 0) {
                daemon_set_state(d, MPS_STATE_FAILED, "%s", strerror(-r));
                schedule_restart(d);
                return;
        }
        daemon_set_state(d, MPS_STATE_STARTING, NULL);

        /* A daemon an earlier run left on this pipe directory (nvdp killed, pod replaced): -d would
         * refuse to start next to it. */
        if (mps_control_read_pid(d->pipe_dir, &d->stale_pid) >= 0) {
                r = spawn(d, STEP_QUIT_STALE, NULL, "quit\n");
                if (r < 0)
                        daemon_fail(d, "cannot run %s: %s", d->binary, strerror(-r));
                return;
        }
        daemon_launch(d);
}

/* Every command succeeded: find the daemon's process, then announce it. */
static void daemon_started(struct daemon *d)
{
        pid_t pid;
        if (mps_control_read_pid(d->pipe_dir, &pid) < 0 && mps_control_find_child(d->pipe_dir, &pid) < 0) {
                daemon_fail(d, "the control daemon answered but its process was not found (no %s/%s)",
                            d->pipe_dir, MPS_PID_FILE);
                return;
        }
        d->pid = pid;
        _cleanup_free_ char *started = daemon_file(d, MPS_STARTED_FILE);
        int r = started ? write_file_atomic(started, "", 0, 0644) : -ENOMEM;
        if (r < 0) {
                daemon_fail(d, "cannot write %s: %s", strna(started), strerror(-r));
                return;
        }
        daemon_set_state(d, MPS_STATE_READY, "pid %d", (int)pid);
        /* Its death is a SIGCHLD when it is our child; otherwise it is polled. */
        if (!mps_pid_is_child(pid))
                daemon_wait(d, WAIT_ALIVE, d->sup->restart_min);
}

static void daemon_step_done(struct daemon *d, int status)
{
        _cleanup_free_ char *output = NULL;
        if (d->child_out >= 0)
                (void)mps_output_read(d->child_out, OUTPUT_MAX, &output);
        enum step step = d->step;
        bool timed_out = d->timed_out;
        d->child = 0;
        d->child_out = safe_close(d->child_out);
        d->step = STEP_NONE;
        daemon_unwait(d);

        bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        char how[64];
        describe_status(status, how, sizeof how);
        if (timed_out)
                snprintf(how, sizeof how, "no answer within %llu s",
                         (unsigned long long)(d->sup->step_timeout / NSEC_PER_SEC));

        switch (step) {
        case STEP_QUIT_STALE:
                d->deadline = now_nsec() + d->sup->step_timeout;
                daemon_wait(d, WAIT_STALE_EXIT, 0);
                return;
        case STEP_LAUNCH:
                if (!ok) {
                        daemon_fail(d, "%s -d: %s%s%s", d->binary, how, isempty(output) ? "" : ": ",
                                    strempty(output));
                        return;
                }
                daemon_command(d);
                return;
        case STEP_COMMAND:
                if (!ok && d->command == 0 && ++d->tries < FIRST_COMMAND_TRIES && !timed_out) {
                        daemon_wait(d, WAIT_RETRY, 2 * POLL_INTERVAL);
                        return;
                }
                if (!ok) {
                        daemon_fail(d, "\"%s\": %s%s%s", d->commands[d->command], how,
                                    isempty(output) ? "" : ": ", strempty(output));
                        return;
                }
                if (d->commands[++d->command])
                        daemon_command(d);
                else
                        daemon_started(d);
                return;
        case STEP_QUIT:
                if (d->pid <= 0)
                        (void)mps_control_read_pid(d->pipe_dir, &d->pid);
                d->deadline = now_nsec() + d->sup->step_timeout;
                daemon_wait(d, WAIT_EXIT, 0);
                return;
        case STEP_NONE: return;
        }
}

static void supervisor_remove(mps_supervisor *s, struct daemon *d)
{
        for (size_t i = 0; i < s->n_daemons; i++)
                if (s->daemons[i] == d) {
                        memmove(s->daemons + i, s->daemons + i + 1,
                                sizeof(struct daemon *) * (s->n_daemons - i - 1));
                        s->n_daemons--;
                        break;
                }
        daemon_free(d);
        update_ready_file(s);
        if (s->n_daemons == 0 && s->on_idle)
                s->on_idle(s->userdata);
}

/* The daemon is gone (or never ran). */
static void daemon_down(struct daemon *d)
{
        mps_supervisor *s = d->sup;
        daemon_unwait(d);
        d->pid = 0;
        d->launched = false;
        if (d->then == THEN_RESTART) {
                schedule_restart(d);
                return;
        }
        daemon_set_state(d, MPS_STATE_STOPPED, NULL);
        if (d->next) {
                mps_spec_done(&d->spec);
                d->spec = *d->next;
                free(d->next);
                d->next = NULL;
                d->attempts = 0;
                daemon_start(d);
        } else if (!d->wanted)
                supervisor_remove(s, d);
}

/* Takes the daemon down: `quit` if one may run, then waits for it. */
static void daemon_shutdown(struct daemon *d, enum then then)
{
        d->then = then;
        kill_child(d);
        daemon_unwait(d);
        remove_started(d);
        if (!d->launched && d->pid <= 0) {
                daemon_down(d);
                return;
        }
        int r = spawn(d, STEP_QUIT, NULL, "quit\n");
        if (r < 0) {
                /* Without the control binary only SIGKILL is left. */
                if (d->pid > 0)
                        (void)kill(d->pid, SIGKILL);
                daemon_down(d);
        }
}

static void daemon_stop(struct daemon *d)
{
        if (d->state == MPS_STATE_STOPPING)
                return;
        bool running = d->launched || d->pid > 0;
        if (running || d->child > 0)
                daemon_set_state(d, MPS_STATE_STOPPING, NULL);
        daemon_shutdown(d, THEN_STOPPED);
}

static void daemon_died(struct daemon *d, const char *how)
{
        pid_t pid = d->pid;
        d->pid = 0;
        d->launched = false;
        if (d->state == MPS_STATE_STOPPING || d->wait == WAIT_EXIT) {
                kill_child(d); /* the quit client, if it still runs */
                daemon_down(d);
                return;
        }
        /* A daemon that ran for a while starts again at once; one that keeps dying waits longer. */
        if (d->state == MPS_STATE_READY && now_nsec() - d->ready_since >= d->sup->restart_max)
                d->attempts = 0;
        remove_started(d);
        daemon_set_state(d, MPS_STATE_FAILED, "the control daemon (pid %d) exited: %s", (int)pid, how);
        d->then = THEN_RESTART;
        kill_child(d);
        daemon_down(d);
}

static void on_timer(loop_source *src, void *userdata)
{
        struct daemon *d = userdata;
        enum wait w = d->wait;
        d->wait = WAIT_NONE;
        switch (w) {
        case WAIT_STEP:
                /* Too slow: kill the step's process; its exit reports the failure. */
                d->timed_out = true;
                if (d->child > 0)
                        (void)kill(d->child, SIGKILL);
                return;
        case WAIT_RETRY: daemon_command(d); return;
        case WAIT_STALE_EXIT:
                if (mps_pid_alive(d->stale_pid) && now_nsec() < d->deadline) {
                        daemon_wait(d, WAIT_STALE_EXIT, POLL_INTERVAL);
                        return;
                }
                d->stale_pid = 0;
                daemon_launch(d);
                return;
        case WAIT_EXIT:
                if (!mps_pid_alive(d->pid)) {
                        daemon_down(d);
                        return;
                }
                if (now_nsec() >= d->deadline)
                        (void)kill(d->pid, SIGKILL);
                daemon_wait(d, WAIT_EXIT, POLL_INTERVAL);
                return;
        case WAIT_RESTART: daemon_start(d); return;
        case WAIT_ALIVE:
                if (mps_pid_alive(d->pid)) {
                        daemon_wait(d, WAIT_ALIVE, d->sup->restart_min);
                        return;
                }
                daemon_died(d, "it is gone");
                return;
        case WAIT_NONE: return;
        }
}

static void on_sigchld(loop_source *src, int signo, void *userdata)
{
        mps_supervisor *s = userdata;
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                        return;
                for (size_t i = 0; i < s->n_daemons; i++) {
                        struct daemon *d = s->daemons[i];
                        if (d->child == pid) {
                                daemon_step_done(d, status);
                                break;
                        }
                        if (d->pid == pid) {
                                char how[64];
                                describe_status(status, how, sizeof how);
                                daemon_died(d, how);
                                break;
                        }
                }
                /* Anything else: a step we gave up on, or an MPS server a dead daemon left to us. */
        }
}

int mps_supervisor_new(loop *l, const struct mps_supervisor_options *o, mps_supervisor **ret)
{
        _cleanup_(mps_supervisor_freep) mps_supervisor *s = new0(mps_supervisor, 1);
        if (!s)
                return -ENOMEM;
        s->loop = l;
        s->root = strdup(o->root);
        s->search_path = strv_copy(o->search_path);
        s->env = o->env ? strv_copy(o->env) : new0(char *, 1);
        if (!s->root || !s->search_path || !s->env)
                return -ENOMEM;
        s->step_timeout = o->step_timeout ? o->step_timeout : 10 * NSEC_PER_SEC;
        s->restart_min = o->restart_min ? o->restart_min : NSEC_PER_SEC;
        s->restart_max = o->restart_max ? o->restart_max : 30 * NSEC_PER_SEC;
        s->on_state = o->on_state;
        s->on_idle = o->on_idle;
        s->userdata = o->userdata;
        /* The daemon `-d` forks off outlives its launcher: as the subreaper we inherit it, and with it
         * the SIGCHLD of its death. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
                return negative_errno();
        int r = loop_add_signal(l, SIGCHLD, on_sigchld, s, &s->sigchld);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

mps_supervisor *mps_supervisor_free(mps_supervisor *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_daemons; i++) {
                struct daemon *d = s->daemons[i];
                if (d->child > 0)
                        (void)kill(d->child, SIGKILL);
                if (d->pid > 0)
                        (void)kill(d->pid, SIGKILL);
                remove_started(d);
                daemon_free(d);
        }
        free(s->daemons);
        _cleanup_free_ char *ready = mps_path(s->root, NULL, MPS_READY_FILE);
        if (ready)
                (void)unlink(ready);
        loop_source_free(s->sigchld);
        free(s->root);
        strv_free(s->search_path);
        strv_free(s->env);
        free(s);
        return NULL;
}

static struct daemon *supervisor_find(mps_supervisor *s, const char *resource)
{
        for (size_t i = 0; i < s->n_daemons; i++)
                if (streq(s->daemons[i]->spec.resource, resource))
                        return s->daemons[i];
        return NULL;
}

static int daemon_new(mps_supervisor *s, const struct mps_spec *spec, struct daemon **ret)
{
        struct daemon *d = new0(struct daemon, 1);
        if (!d)
                return -ENOMEM;
        d->sup = s;
        d->child_out = -EBADF;
        d->wanted = true;
        int r = mps_spec_copy(spec, &d->spec);
        if (r >= 0) {
                d->dir = mps_path(s->root, spec->resource, NULL);
                d->pipe_dir = mps_path(s->root, spec->resource, MPS_PIPE_DIR);
                d->log_dir = mps_path(s->root, spec->resource, MPS_LOG_DIR);
                r = d->dir && d->pipe_dir && d->log_dir ? 0 : -ENOMEM;
        }
        if (r >= 0)
                r = loop_add_timer(s->loop, 0, on_timer, d, &d->timer);
        if (r < 0) {
                daemon_free(d);
                return r;
        }
        loop_timer_disarm(d->timer);
        *ret = d;
        return 0;
}

int mps_supervisor_apply(mps_supervisor *s, const struct mps_spec *specs, size_t n)
{
        /* Daemons no longer wanted, or wanted with another spec, stop. */
        for (size_t i = 0; i < s->n_daemons;) {
                struct daemon *d = s->daemons[i];
                const struct mps_spec *want = NULL;
                for (size_t k = 0; k < n; k++)
                        if (streq(specs[k].resource, d->spec.resource))
                                want = &specs[k];
                size_t before = s->n_daemons;
                if (!want) {
                        d->wanted = false;
                        if (d->next) {
                                mps_spec_done(d->next);
                                d->next = mfree(d->next);
                        }
                        daemon_stop(d);
                } else if (!mps_spec_equal(want, d->next ? d->next : &d->spec)) {
                        struct mps_spec *next = new0(struct mps_spec, 1);
                        if (!next)
                                return -ENOMEM;
                        int r = mps_spec_copy(want, next);
                        if (r < 0) {
                                free(next);
                                return r;
                        }
                        if (d->next)
                                mps_spec_done(d->next);
                        free(d->next);
                        d->next = next;
                        d->wanted = true;
                        daemon_stop(d);
                }
                if (s->n_daemons == before)
                        i++; /* else d was removed: the next one moved into slot i */
        }
        for (size_t k = 0; k < n; k++) {
                if (supervisor_find(s, specs[k].resource))
                        continue;
                struct daemon **a = realloc(s->daemons, sizeof(struct daemon *) * (s->n_daemons + 1));
                if (!a)
                        return -ENOMEM;
                s->daemons = a;
                struct daemon *d;
                int r = daemon_new(s, &specs[k], &d);
                if (r < 0)
                        return r;
                s->daemons[s->n_daemons++] = d;
                daemon_start(d);
        }
        update_ready_file(s);
        return 0;
}

bool mps_supervisor_busy(const mps_supervisor *s)
{
        return s->n_daemons > 0;
}

bool mps_supervisor_ready(const mps_supervisor *s)
{
        for (size_t i = 0; i < s->n_daemons; i++)
                if (s->daemons[i]->wanted &&
                    (s->daemons[i]->state != MPS_STATE_READY || s->daemons[i]->next))
                        return false;
        return true;
}

int mps_supervisor_not_ready(const mps_supervisor *s, char ***ret)
{
        _cleanup_strv_free_ char **l = new0(char *, 1);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_daemons; i++) {
                const struct daemon *d = s->daemons[i];
                if (!d->wanted || (d->state == MPS_STATE_READY && !d->next))
                        continue;
                int r = d->reason ? strv_extendf(&l, "%s (%s: %s)", d->spec.resource,
                                                 mps_state_to_string(d->state), d->reason)
                                  : strv_extendf(&l, "%s (%s)", d->spec.resource,
                                                 mps_state_to_string(d->state));
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}
