/* SPDX-License-Identifier: Apache-2.0 */
/* The MPS root: the directory the control daemon writes and the plugin reads, laid out as upstream's
 * (cmd/mps-control-daemon/mps/root.go and main.go at v0.19.3):
 *
 *   <root>/<resource>/pipe/      CUDA_MPS_PIPE_DIRECTORY: the daemon's socket "control" and its
 *                                pid file "nvidia-cuda-mps-control.pid"; mounted into workloads
 *   <root>/<resource>/log/       CUDA_MPS_LOG_DIRECTORY: control.log, server.log
 *   <root>/<resource>/.started   the daemon runs and its limits are set (upstream's name and moment)
 *   <root>/.ready                every daemon of the configuration has started (upstream's)
 *   <root>/shm/                  the tmpfs of `mount-shm`, /dev/shm of the daemons and the workloads
 *
 * and, ours, <root>/<resource>/.state: one line, the daemon's state and why (what `nvdp doctor`
 * shows). <resource> is the full name, "nvidia.com/gpu", so the directory is two levels deep. */
#pragma once

#include <sys/stat.h>

#include "base/macro.h"

/* Where upstream's chart mounts the MPS root in the plugin's and the daemon's containers. */
#define MPS_CONTAINER_ROOT "/mps"
#define MPS_PIPE_DIR       "pipe"
#define MPS_LOG_DIR        "log"
#define MPS_STARTED_FILE   ".started"
#define MPS_STATE_FILE     ".state"
#define MPS_READY_FILE     ".ready"
#define MPS_SHM_DIR        "shm"
#define MPS_CONTROL_SOCKET "control"
#define MPS_PID_FILE       "nvidia-cuda-mps-control.pid"

/* The MPS root as this process sees it: `configured` (the host path, the plugin's --mps-root) when it
 * is a directory here, as when nvdp runs on the host or the chart mounts it at the same path; else
 * /mps, where upstream's chart mounts it. -ENOENT, with a sentence naming both, when neither is a
 * directory. */
int mps_root_resolve(const char *configured, char **ret, char **ret_error);

/* "<root>/<resource>/<leaf>"; leaf NULL: the resource's directory. resource NULL: "<root>/<leaf>". */
char *mps_path(const char *root, const char *resource, const char *leaf);

/* Whether resource's daemon is ready for clients: 1 when <root>/<resource>/.started exists and, with
 * probe, its control socket accepts a connection (a daemon killed without cleaning up leaves both
 * files behind); 0 when not; <0 on an error other than a missing file. A probe is one connection the
 * daemon logs ("NEW UI"), so callers that poll check without probe and probe on a change. */
int mps_resource_ready(const char *root, const char *resource, bool probe);

/* 0 when something listens on the unix socket at path (also when its backlog is full), -ECONNREFUSED
 * when nothing does, -ENOENT when there is no such socket. Paths longer than sockaddr_un allows work. */
int mps_socket_probe(const char *path);

/* mkdir -p with mode for the directories it creates. */
int mps_mkdir_p(const char *path, mode_t mode);

/* The tmpfs size of upstream's mount-shm: half of MemTotal from a /proc/meminfo text, its unit's first
 * letter kept ("MemTotal: 16318412 kB" -> "8159206k"); "65536k" when the text has no usable line. */
void mps_shm_size(const char *meminfo, char *ret, size_t size);

/* Upstream's `mount-shm`: unmounts whatever is mounted on <root>/shm, creates it, and mounts a tmpfs
 * there ("rw,nosuid,nodev,noexec,relatime,size=<mps_shm_size>"), reading meminfo_path. Needs
 * CAP_SYS_ADMIN. ret_error names the path and the failing step. */
int mps_mount_shm(const char *root, const char *meminfo_path, char **ret_error);
