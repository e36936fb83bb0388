/* SPDX-License-Identifier: Apache-2.0 */
/* A pid file that finds its process from any PID namespace: it records the process's pid in its own
 * namespace and its start time (clock ticks since boot, the same in every namespace), so a reader in the
 * host's namespace finds the process of a container (the last NSpid of its /proc/<pid>/status) and a pid
 * reused since by another process is never taken for it. */
#pragma once

#include <sys/types.h>

#include "macro.h"

/* Writes "<pid> <start time>\n" of this process to path, atomically. */
int pidfile_write(const char *path);
/* The pid, in this process's namespace, of the running process path names. -ENOENT: no file; -ESRCH: its
 * process is gone (a stale file); -EBADMSG: not a pid file. proc is the /proc to look in (NULL: "/proc"). */
int pidfile_find(const char *path, const char *proc, pid_t *ret);
