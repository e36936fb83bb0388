/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin's /healthz: what it answers, and the listener that serves it alone to the pod's probes
 * (--health-address, loopback), apart from the metrics port that every pod can reach: a pod holding the
 * metrics port's connections cannot fail the probes that restart the plugin. `nvdp healthz` asks it. */
#pragma once

#include "net/http-server.h"
#include "plugin/plugin.h"

/* 200 "ok" while every endpoint is registered with the kubelet (none, or registration off: also ok); 503
 * naming the resources that are not. A resource the gate holds back (an MPS resource whose daemon is not
 * ready) is waiting on purpose, not failing: it does not count. */
int healthz_reply(const plugin *p, struct http_reply *reply);

typedef struct healthz_server healthz_server;
/* Serves GET /healthz on address; p must outlive the server. On failure ret_error gets a sentence naming
 * the address. */
int healthz_server_new(loop *l, const plugin *p, const char *address, healthz_server **ret,
                       char **ret_error);
healthz_server *healthz_server_free(healthz_server *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(healthz_server *, healthz_server_free);
int healthz_server_port(const healthz_server *h);
