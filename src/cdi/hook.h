/* SPDX-License-Identifier: Apache-2.0 */
/* The OCI createContainer hooks a CDI spec names (`nvdp cdi-hook ...`, argument-compatible with NVIDIA's
 * nvidia-cdi-hook). The runtime calls them with the container's state on stdin after the mounts are
 * set up and before the container starts; they edit the container's root filesystem, resolving every
 * path inside it (an image's symlinks never lead out to the host). */
#pragma once

#include <sys/types.h>

#include "base/macro.h"

/* The container's root directory from an OCI state document: <bundle>/config.json's root.path,
 * relative paths taken from the bundle. */
int cdi_hook_container_root(const char *state, size_t size, char **ret, char **ret_error);

/* create-symlinks: each "target::link" makes link (a path in the container) a symlink to target,
 * creating its parent directories; an existing file there is replaced, a link to target is left. */
int cdi_hook_create_symlinks(const char *root, char *const *links, char **ret_error);

/* update-ldcache: writes the container's /etc/ld.so.cache itself (no ldconfig is run, so images
 * without one, busybox and distroless, work): the libraries of folders first, then the entries of the
 * image's own cache. Creates the SONAME links ldconfig would create, and lists the folders in
 * /etc/ld.so.conf.d/00-nvdp-cdi.conf so that an ldconfig run inside the container keeps them. */
int cdi_hook_update_ldcache(const char *root, char *const *folders, char **ret_error);

/* chmod: sets mode on each path that exists (a permission error is not one, as NVIDIA's). */
int cdi_hook_chmod(const char *root, char *const *paths, mode_t mode, char **ret_error);
