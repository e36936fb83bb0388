/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the files of src/cdi: what discovery found. Paths inside a root: base/root-path.h. */
#pragma once

#include "base/fileio.h"
#include "base/root-path.h"
#include "cdi/cdi.h"

/* ---- the resolved roots (build.c) ---- */

struct cdi_where {
        const char *host_ctr; /* host "/" as we see it */
        char *driver;         /* host path */
        char *driver_ctr;
        char *dev; /* the dev root that holds /dev/nvidiactl (host path) */
        char *dev_ctr;
};

/* ---- driver files (driver.c) ---- */

enum driver_file_kind {
        DRIVER_FILE_LIBRARY,
        DRIVER_FILE_BINARY,
        DRIVER_FILE_FIRMWARE,
        DRIVER_FILE_SOCKET,
        DRIVER_FILE_CONFIG,
};

struct driver_file {
        enum driver_file_kind kind;
        char *host_path;      /* written into the spec */
        char *container_path; /* where the container gets it */
};

struct driver_files {
        struct driver_file *files;
        size_t n_files;
        char **links;   /* create-symlinks arguments, "target::link" */
        char **folders; /* update-ldcache arguments: the container folders holding libraries */
};

void driver_files_done(struct driver_files *d);
/* ro,nosuid,nodev,rbind,rprivate for files; sockets are not read-only and get noexec. */
char *const *driver_file_mount_options(enum driver_file_kind kind);
/* Finds the user-space files of driver `version` under the driver root (and the host root for
 * sockets and the firmware search path). */
int driver_files_find(const struct cdi_where *w, const char *version, const char *kernel_release,
                      struct driver_files *ret, char **ret_error);

/* ---- device nodes (devices.c) ---- */

/* Picks the dev root: the given one when it holds /dev/nvidiactl, else "/" (seen at host_ctr). */
int dev_root_pick(struct cdi_where *w, const char *dev, const char *dev_ctr, char **ret_error);
/* Adds path ("/dev/...") as a device node when it exists under the dev root; 1 added, 0 missing. */
int dev_node_add(const struct cdi_where *w, struct cdi_edits *e, const char *path);
/* The edits of one GPU: /dev/nvidia<minor> and its DRM nodes (card, render) with by-path links. */
int dev_gpu_edits(const struct cdi_where *w, const struct gpu *g, struct cdi_edits *e, char ***links,
                  char **ret_error);
