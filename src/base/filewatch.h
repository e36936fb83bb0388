/* SPDX-License-Identifier: Apache-2.0 */
/* Calls back when the content of a file changes, however it changes: written in place, replaced by
 * rename, or (a Kubernetes ConfigMap volume) re-pointed by swapping the "..data" symlink. Watches the
 * file's directory with inotify, coalesces bursts, and compares content, so a touch or an unrelated
 * file in the same directory costs nothing. */
#pragma once

#include "base/loop.h"

typedef struct file_watch file_watch;
typedef void (*file_watch_handler)(file_watch *w, void *userdata);

int file_watch_new(loop *l, const char *path, file_watch_handler cb, void *userdata, file_watch **ret);
file_watch *file_watch_free(file_watch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(file_watch *, file_watch_free);
