/* SPDX-License-Identifier: Apache-2.0 */
/* Running NVIDIA's nvidia-cuda-mps-control: finding it, starting it as a child with a given
 * environment and standard input, reading what it printed, and finding the daemon it leaves behind. */
#pragma once

#include <sys/types.h>

#include "base/macro.h"

#define MPS_CONTROL_BINARY "nvidia-cuda-mps-control"

#define MPS_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Where the NVIDIA container runtime mounts the driver's binaries when the host keeps them there (a driver
 * under /usr/local/nvidia: the runtime keeps the host's path); CUDA images, upstream's among them, have it
 * on PATH, nvdp's image does not. */
#define MPS_RUNTIME_BIN "/usr/local/nvidia/bin"

/* Where the binary is looked for, in order: every directory of path_env ($PATH, MPS_DEFAULT_PATH when
 * empty: the NVIDIA container runtime puts the driver's binaries in /usr/bin on most hosts), then
 * MPS_RUNTIME_BIN, then usr/bin and bin under driver_search_root: the driver root as this process sees it,
 * node_driver_search_root()'s answer (NULL or "/": none; without the NVIDIA runtime the chart mounts
 * the host's driver root at /driver-root). */
int mps_control_search_path(const char *driver_search_root, const char *path_env, char ***ret);
/* The first executable regular file MPS_CONTROL_BINARY in dirs: -ENOENT when there is none. */
int mps_control_find(char *const *dirs, char **ret);

/* Starts path with argv (argv[0] included) and exactly env, signals unblocked and at their defaults.
 * Standard input reads input (an empty input when NULL); standard output and error go to a memory
 * file returned in *ret_output (read it with mps_output_read once the child exited). */
int mps_spawn(const char *path, char *const *argv, char *const *env, const char *input, pid_t *ret_pid,
              int *ret_output);
/* What the child wrote: at most max bytes from the start, control characters but newlines replaced,
 * trailing blanks removed. */
int mps_output_read(int fd, size_t max, char **ret);

/* The control daemon of pipe_dir: the pid in its pid file, when that process is alive. -ENOENT when
 * there is no pid file, -ESRCH when its process is gone. */
int mps_control_read_pid(const char *pipe_dir, pid_t *ret);
/* A child of this process whose environment has CUDA_MPS_PIPE_DIRECTORY=pipe_dir (the daemon, once
 * its launcher exited and it was handed to us as the subreaper), for when there is no pid file. */
int mps_control_find_child(const char *pipe_dir, pid_t *ret);
/* Whether the process exists and is not a zombie. */
bool mps_pid_alive(pid_t pid);
/* Whether the process's parent is this process (then its death arrives as SIGCHLD). */
bool mps_pid_is_child(pid_t pid);
