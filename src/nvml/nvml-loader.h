/* SPDX-License-Identifier: Apache-2.0 */
/* Loading libnvidia-ml.so.1. All or nothing: every required symbol resolves or the load fails.
 * The typed function table and our own declarations of NVML's types live in nvml.h. */
#pragma once

#include "base/macro.h"

typedef struct nvml nvml;

/* Search order (as upstream): when driver_root is set and not "/", the library directories under it
 * (usr/lib64, usr/lib/x86_64-linux-gnu, usr/lib/aarch64-linux-gnu, lib64, lib/x86_64-linux-gnu,
 * lib/aarch64-linux-gnu); then the normal loader path (so LD_LIBRARY_PATH works).
 * Returns -EOPNOTSUPP when no library was found, -ELIBBAD when one lacks a required symbol,
 * -ENODEV when nvmlInit_v2 failed (no driver loaded, no permission). ret_error (optional) gets a
 * sentence naming what was looked for and
 * where, or the missing symbol, or nvmlErrorString's text. On success nvmlInit_v2 has been called. */
int nvml_load(const char *driver_root, nvml **ret, char **ret_error);
/* As nvml_load, with another library: a file name is searched as above, a path (with '/') is opened
 * as is (tests point it at the simulated NVML or at a deliberately broken library). */
int nvml_load_library(const char *driver_root, const char *library, nvml **ret, char **ret_error);
/* Calls nvmlShutdown and dlcloses. Accepts NULL. */
nvml *nvml_unload(nvml *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(nvml *, nvml_unload);
