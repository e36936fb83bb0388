/* SPDX-License-Identifier: Apache-2.0 */
/* /healthz of the daemons: what each answers, and the listener that serves it alone to the pod's probes
 * (--health-address, loopback), apart from the metrics port that every pod can reach: a pod holding the
 * metrics port's connections cannot fail the probes. `nvdp healthz` asks it. The plugin daemon and the
 * MPS control daemon each run one, with their own answer; their metrics ports answer /healthz the same. */
#pragma once

#include "mps/mps-supervisor.h"
#include "net/http-server.h"
#include "plugin/plugin.h"

/* The plugin: 200 "ok" while every endpoint is registered with the kubelet (none, or registration off:
 * also ok); 503 naming the resources that are not. A resource the gate holds back (an MPS resource whose
 * daemon is not ready) is waiting on purpose, not failing: it does not count. */
int healthz_plugin_reply(const plugin *p, struct http_reply *reply);

/* The MPS control daemon: 200 "ok" while every wanted MPS daemon is ready (mps_supervisor_ready(): none
 * wanted is ready too); 503 naming those that are not, with their state and its reason. */
int healthz_mps_reply(const mps_supervisor *s, struct http_reply *reply);

typedef struct healthz_server healthz_server;
/* --health-address (HEALTH_ADDRESS) of either daemon: serves GET /healthz on address with answer(reply,
 * userdata), which must outlive the server, and logs where; *ret NULL when address is empty (off). A bad
 * address or a failed bind is logged as one line naming the flag and the address, and returned. */
int healthz_server_new(loop *l, const char *address, http_handler answer, void *userdata,
                       healthz_server **ret);
healthz_server *healthz_server_free(healthz_server *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(healthz_server *, healthz_server_free);
