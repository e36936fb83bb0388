/* SPDX-License-Identifier: Apache-2.0 */
/* The composition root of `nvdp dra` (docs/dra.md): opens the node, starts the health monitor, publishes
 * the node's ResourceSlices (dra/dra-publisher) and serves the kubelet (dra/dra-service), writing the
 * claims' CDI specs; logs what happens. */
#pragma once

#include "config/config.h"

/* Runs until SIGTERM, SIGINT or SIGQUIT; c is taken. Returns the process exit code. */
int dra_daemon_run(config *c);
