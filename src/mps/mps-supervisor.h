/* SPDX-License-Identifier: Apache-2.0 */
/* One NVIDIA MPS control daemon per resource shared with MPS, supervised on the event loop.
 *
 * Starting one: its pipe and log directories under <root>/<resource>/ (mps-root.h), a daemon left
 * from an earlier run told to quit, `nvidia-cuda-mps-control -d` with CUDA_MPS_PIPE_DIRECTORY,
 * CUDA_MPS_LOG_DIRECTORY and CUDA_VISIBLE_DEVICES (the resource's GPUs by UUID), then the spec's
 * commands one at a time through the control binary's standard input (mps-spec.h); only when every
 * command succeeded is <root>/<resource>/.started written, and <root>/.ready once every daemon is.
 * Each step runs as a child process with a time limit; nothing blocks the loop.
 *
 * Watching: the supervisor makes this process a child subreaper, so the daemon `-d` leaves behind
 * becomes its child and its death arrives as SIGCHLD (on the loop, through a signalfd): the daemon's
 * files are removed at once and it is started again after a delay that doubles from 1 s to 30 s.
 *
 * Stopping (a resource no longer shared with MPS, its spec changed, or everything at exit): the
 * files go first, then `quit` through the control binary, then SIGKILL if the daemon outlives the
 * time limit. An unchanged daemon keeps running across mps_supervisor_apply() calls.
 *
 * The caller blocks SIGCHLD with signals_block() before any thread starts (loop_add_signal does it
 * for this thread only). Library code: state changes go to the caller's handler, which logs. */
#pragma once

#include <stdint.h>

#include "base/loop.h"
#include "mps/mps-spec.h"

enum mps_state {
        MPS_STATE_STOPPED,  /* not running */
        MPS_STATE_STARTING, /* being started and given its limits */
        MPS_STATE_READY,    /* running with its limits set; .started exists */
        MPS_STATE_FAILED,   /* did not start or died; started again after a delay, unless the spec is invalid
                             */
        MPS_STATE_STOPPING, /* told to quit */
        _MPS_STATE_MAX,
};

/* "stopped", "starting", "ready", "failed", "stopping" */
const char *mps_state_to_string(enum mps_state s);

typedef struct mps_supervisor mps_supervisor;

/* Called on every change of a daemon's state or of the reason given with it (reason may be NULL). */
typedef void (*mps_state_handler)(const char *resource, enum mps_state state, const char *reason,
                                  void *userdata);

struct mps_supervisor_options {
        const char *root;         /* the MPS root as this process sees it (mps_root_resolve) */
        char *const *search_path; /* where nvidia-cuda-mps-control is looked for (mps_control_search_path) */
        char *const *env;         /* given to every child besides the CUDA_MPS_* variables: PATH, ... */
        uint64_t step_timeout;    /* for each child (launch, one command, quit); 0: 10 s */
        uint64_t restart_min;     /* first delay before starting a failed daemon again; 0: 1 s */
        uint64_t restart_max;     /* the delay doubles up to this; 0: 30 s */
        mps_state_handler on_state;
        /* No daemon is left (the last one stopped and was removed): the moment to exit after a stop. */
        void (*on_idle)(void *userdata);
        void *userdata;
};

int mps_supervisor_new(loop *l, const struct mps_supervisor_options *o, mps_supervisor **ret);
/* Kills what still runs (SIGKILL) and removes the readiness files; stop cleanly with
 * mps_supervisor_apply(s, NULL, 0) and wait for !mps_supervisor_busy() first. */
mps_supervisor *mps_supervisor_free(mps_supervisor *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(mps_supervisor *, mps_supervisor_free);

/* The daemons wanted now (copied). Daemons not in specs or with another spec stop; new ones start.
 * A spec with an error gets no daemon: its state is FAILED with the error as the reason. */
int mps_supervisor_apply(mps_supervisor *s, const struct mps_spec *specs, size_t n);
/* Whether any daemon still exists (starting, running, stopping, or waiting to start again). */
bool mps_supervisor_busy(const mps_supervisor *s);
/* Whether every wanted daemon is READY (true for none). */
bool mps_supervisor_ready(const mps_supervisor *s);
/* The wanted daemons that are not READY, in the order of the specs, each as "<resource> (<state>)" or
 * "<resource> (<state>: <reason>)"; an empty list exactly when mps_supervisor_ready(). */
int mps_supervisor_not_ready(const mps_supervisor *s, char ***ret);
