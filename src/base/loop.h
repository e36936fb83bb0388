/* SPDX-License-Identifier: Apache-2.0 */
/* The one event loop (epoll): fd events, one-shot timers and signals via signalfd. Single-threaded:
 * other threads talk to the loop only through an eventfd they write to. Sources may be freed from
 * inside any callback. HTTP/2 output is flushed by its connection (net/h2conn.h), not by the loop. */
#pragma once

#include <stdint.h>
#include <sys/epoll.h>

#include "macro.h"

typedef struct loop loop;
typedef struct loop_source loop_source;

typedef void (*loop_io_handler)(loop_source *s, int fd, uint32_t revents, void *userdata);
typedef void (*loop_timer_handler)(loop_source *s, void *userdata);
typedef void (*loop_signal_handler)(loop_source *s, int signo, void *userdata);

int loop_new(loop **ret);
loop *loop_free(loop *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(loop *, loop_free);

/* Watches fd (not owned) for EPOLLIN/EPOLLOUT. */
int loop_add_io(loop *l, int fd, uint32_t events, loop_io_handler cb, void *userdata, loop_source **ret);
int loop_source_set_io_events(loop_source *s, uint32_t events);

/* A one-shot timer firing after nsec (CLOCK_MONOTONIC). Re-arm with loop_timer_arm. */
int loop_add_timer(loop *l, uint64_t nsec, loop_timer_handler cb, void *userdata, loop_source **ret);
void loop_timer_arm(loop_source *s, uint64_t nsec);
void loop_timer_disarm(loop_source *s);
bool loop_timer_armed(const loop_source *s);

/* Blocks the signals in the calling thread. Call it first thing in a daemon, before any library
 * (NVML) starts threads: a thread created earlier keeps them unblocked and would take the default
 * action (SIGTERM kills instead of reaching the loop). The list ends with 0. */
int signals_block(const int *signals);

/* Blocks signo for the process and delivers it through a signalfd. */
int loop_add_signal(loop *l, int signo, loop_signal_handler cb, void *userdata, loop_source **ret);

loop *loop_source_get_loop(loop_source *s);
/* Detaches and frees (deferred to the end of the current iteration). Accepts NULL. */
loop_source *loop_source_free(loop_source *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(loop_source *, loop_source_free);

/* Runs until loop_exit(); returns the exit code given there. */
int loop_run(loop *l);
/* One iteration, waiting at most timeout_nsec (UINT64_MAX = forever). Returns 1 once loop_exit was called.
 */
int loop_run_once(loop *l, uint64_t timeout_nsec);
void loop_exit(loop *l, int code);
