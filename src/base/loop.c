/* SPDX-License-Identifier: Apache-2.0 */
#include "loop.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>

#include "parse.h"

enum source_type { SOURCE_IO, SOURCE_TIMER, SOURCE_SIGNAL };

struct loop_source {
        loop *loop;
        enum source_type type;
        void *userdata;
        bool dead;
        loop_source *next; /* in loop->sources, or loop->garbage once dead */
        union {
                struct {
                        int fd;
                        uint32_t events;
                        loop_io_handler cb;
                } io;
                struct {
                        uint64_t deadline; /* 0 = disarmed */
                        loop_timer_handler cb;
                } timer;
                struct {
                        int fd;
                        int signo;
                        loop_signal_handler cb;
                } sig;
        };
};

struct loop {
        int epoll_fd;
        loop_source *sources;
        loop_source *garbage;
        bool exiting;
        int exit_code;
};

int loop_new(loop **ret)
{
        loop *l = new0(loop, 1);
        if (!l)
                return -ENOMEM;
        l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epoll_fd < 0) {
                int r = negative_errno();
                free(l);
                return r;
        }
        *ret = l;
        return 0;
}

static void source_destroy(loop_source *s)
{
        if (s->type == SOURCE_SIGNAL)
                safe_close(s->sig.fd);
        free(s);
}

static void collect_garbage(loop *l)
{
        while (l->garbage) {
                loop_source *s = l->garbage;
                l->garbage = s->next;
                source_destroy(s);
        }
}

loop *loop_free(loop *l)
{
        if (!l)
                return NULL;
        while (l->sources)
                loop_source_free(l->sources);
        collect_garbage(l);
        safe_close(l->epoll_fd);
        free(l);
        return NULL;
}

static loop_source *source_new(loop *l, enum source_type type, void *userdata)
{
        loop_source *s = new0(loop_source, 1);
        if (!s)
                return NULL;
        s->loop = l;
        s->type = type;
        s->userdata = userdata;
        s->next = l->sources;
        l->sources = s;
        return s;
}

static void source_unlink(loop_source *s)
{
        for (loop_source **p = &s->loop->sources; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        return;
                }
}

int loop_add_io(loop *l, int fd, uint32_t events, loop_io_handler cb, void *userdata, loop_source **ret)
{
        loop_source *s = source_new(l, SOURCE_IO, userdata);
        if (!s)
                return -ENOMEM;
        s->io.fd = fd;
        s->io.events = events;
        s->io.cb = cb;
        struct epoll_event ev = { .events = events, .data.ptr = s };
        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int r = negative_errno();
                source_unlink(s);
                free(s);
                return r;
        }
        if (ret)
                *ret = s;
        return 0;
}

int loop_source_set_io_events(loop_source *s, uint32_t events)
{
        if (s->type != SOURCE_IO || s->dead)
                return -EINVAL;
        if (s->io.events == events)
                return 0;
        struct epoll_event ev = { .events = events, .data.ptr = s };
        if (epoll_ctl(s->loop->epoll_fd, EPOLL_CTL_MOD, s->io.fd, &ev) < 0)
                return negative_errno();
        s->io.events = events;
        return 0;
}

int loop_add_timer(loop *l, uint64_t nsec, loop_timer_handler cb, void *userdata, loop_source **ret)
{
        loop_source *s = source_new(l, SOURCE_TIMER, userdata);
        if (!s)
                return -ENOMEM;
        s->timer.cb = cb;
        loop_timer_arm(s, nsec);
        if (ret)
                *ret = s;
        return 0;
}

void loop_timer_arm(loop_source *s, uint64_t nsec)
{
        uint64_t now = now_nsec();
        s->timer.deadline = nsec > UINT64_MAX - now - 1 ? UINT64_MAX : now + nsec;
        if (s->timer.deadline == 0)
                s->timer.deadline = 1;
}

void loop_timer_disarm(loop_source *s)
{
        s->timer.deadline = 0;
}

bool loop_timer_armed(const loop_source *s)
{
        return s->type == SOURCE_TIMER && s->timer.deadline != 0;
}

int signals_block(const int *signals)
{
        sigset_t mask;
        sigemptyset(&mask);
        for (; *signals; signals++)
                sigaddset(&mask, *signals);
        int r = pthread_sigmask(SIG_BLOCK, &mask, NULL);
        return r > 0 ? -r : 0;
}

int loop_add_signal(loop *l, int signo, loop_signal_handler cb, void *userdata, loop_source **ret)
{
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, signo);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        loop_source *s = source_new(l, SOURCE_SIGNAL, userdata);
        if (!s) {
                safe_close(fd);
                return -ENOMEM;
        }
        s->sig.fd = fd;
        s->sig.signo = signo;
        s->sig.cb = cb;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int r = negative_errno();
                source_unlink(s);
                source_destroy(s);
                return r;
        }
        if (ret)
                *ret = s;
        return 0;
}

loop *loop_source_get_loop(loop_source *s)
{
        return s->loop;
}

loop_source *loop_source_free(loop_source *s)
{
        if (!s || s->dead)
                return NULL;
        if (s->type == SOURCE_IO)
                (void)epoll_ctl(s->loop->epoll_fd, EPOLL_CTL_DEL, s->io.fd, NULL);
        else if (s->type == SOURCE_SIGNAL)
                (void)epoll_ctl(s->loop->epoll_fd, EPOLL_CTL_DEL, s->sig.fd, NULL);
        source_unlink(s);
        s->dead = true;
        s->next = s->loop->garbage;
        s->loop->garbage = s;
        return NULL;
}

static void dispatch_timers(loop *l)
{
        uint64_t now = now_nsec();
        /* One expired timer at a time, rescanning: a callback may free or add sources. */
        for (;;) {
                loop_source *due = NULL;
                for (loop_source *s = l->sources; s; s = s->next)
                        if (s->type == SOURCE_TIMER && s->timer.deadline && s->timer.deadline <= now &&
                            (!due || s->timer.deadline < due->timer.deadline))
                                due = s;
                if (!due)
                        return;
                due->timer.deadline = 0;
                due->timer.cb(due, due->userdata);
        }
}

int loop_run_once(loop *l, uint64_t timeout_nsec)
{
        if (l->exiting)
                return 1;

        uint64_t now = now_nsec(), wait = timeout_nsec;
        for (loop_source *s = l->sources; s; s = s->next)
                if (s->type == SOURCE_TIMER && s->timer.deadline)
                        wait = MIN(wait, s->timer.deadline > now ? s->timer.deadline - now : 0);
        int ms = wait == UINT64_MAX
                         ? -1
                         : (int)MIN((wait + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC, (uint64_t)INT32_MAX);

        struct epoll_event events[64];
        int n = epoll_wait(l->epoll_fd, events, (int)ELEMENTSOF(events), ms);
        if (n < 0 && errno != EINTR)
                return negative_errno();
        for (int i = 0; i < n && !l->exiting; i++) {
                loop_source *s = events[i].data.ptr;
                if (s->dead)
                        continue;
                if (s->type == SOURCE_IO)
                        s->io.cb(s, s->io.fd, events[i].events, s->userdata);
                else if (s->type == SOURCE_SIGNAL) {
                        struct signalfd_siginfo si;
                        while (read(s->sig.fd, &si, sizeof si) == sizeof si && !s->dead)
                                s->sig.cb(s, (int)si.ssi_signo, s->userdata);
                }
        }
        if (!l->exiting)
                dispatch_timers(l);
        collect_garbage(l);
        return l->exiting ? 1 : 0;
}

int loop_run(loop *l)
{
        l->exiting = false;
        for (;;) {
                int r = loop_run_once(l, UINT64_MAX);
                if (r < 0)
                        return r;
                if (r > 0)
                        return l->exit_code;
        }
}

void loop_exit(loop *l, int code)
{
        l->exiting = true;
        l->exit_code = code;
}
