/* SPDX-License-Identifier: Apache-2.0 */
/* The MPS control daemon's composition root: it opens the node, builds the plan of the config, and keeps
 * one NVIDIA control daemon per resource shared with MPS running (src/mps/mps-supervisor.h); SIGHUP, a
 * changed config file or (the chart's per-node mode) a changed node label applies the config again
 * (unchanged daemons keep running); SIGTERM, SIGINT and SIGQUIT stop every daemon with `quit`.
 * docs/mps.md. */
#pragma once

#include "daemon/daemon.h"

/* Runs until a stop signal and every daemon has quit. Returns the process exit code. */
int mps_daemon_run(const struct daemon_options *o);
