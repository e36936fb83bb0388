/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp's kubelet plugin for DRA (docs/dra.md): the DRA service (NodePrepareResources and
 * NodeUnprepareResources, API v1 and v1beta1) on <plugin dir>/dra.sock, and the plugin watcher's
 * registration service on <registrar dir>/gpu.nvidia.com-reg.sock, which points the kubelet at the first.
 * Claims are read from the API server through the kube client and prepared over the checkpoint
 * <plugin dir>/checkpoint.json (dra_claims); their CDI specs are written through the caller's functions. */
#pragma once

#include "dra/dra.h"
#include "kube/kube.h"
#include "rpc/rpc.h"

#define DRA_REGISTRATION_SOCKET DRA_DRIVER "-reg.sock"
#define DRA_SERVICE_SOCKET      "dra.sock"
#define DRA_CHECKPOINT_FILE     "checkpoint.json"

typedef struct dra_service dra_service;

/* What happened, for the daemon's log. */
struct dra_service_observer {
        /* The kubelet's NotifyRegistrationStatus; error "" when registered. */
        void (*on_registration)(bool registered, const char *error, void *userdata);
        /* One per claim of each NodePrepareResources / NodeUnprepareResources call. */
        void (*on_prepared)(const struct dra_claim_ref *ref, const struct dra_prepare_result *r,
                            void *userdata);
        void (*on_unprepared)(const struct dra_claim_ref *ref, const struct dra_unprepare_result *r,
                              void *userdata);
        /* A connection to one of the sockets refused or closed by the rpc layer's bounds (rate-limited
         * there: once per peer in RPC_REFUSAL_REPORT_INTERVAL, suppressed counts the rest). */
        void (*on_refusal)(const char *socket, const struct rpc_peer *peer, enum rpc_refusal why,
                           size_t n_connections, uint64_t suppressed, void *userdata);
        void *userdata;
};

struct dra_service_options {
        const char *node;
        const char *registrar_dir;    /* the kubelet's plugins_registry */
        const char *plugin_dir;       /* this driver's directory: <kubelet plugins dir>/gpu.nvidia.com */
        const inventory *inventory;   /* NULL: no GPUs */
        const health_tracker *health; /* NULL: all healthy */
        kube_client *kube;            /* reads the ResourceClaims */
        /* The claim CDI specs (dra_claims_ops.write_spec / remove_spec) and their userdata. */
        int (*write_spec)(void *userdata, const struct dra_claim *c, char **ret_error);
        int (*remove_spec)(void *userdata, const char *uid, char **ret_error);
        void *spec_userdata;
        const struct dra_service_observer *observer;
};

/* Reads the checkpoint (a damaged one is refused: the error names the file and what is wrong). Nothing is
 * served yet. All that o points to must outlive the service. */
int dra_service_new(loop *l, const struct dra_service_options *o, dra_service **ret, char **ret_error);
/* Serves the DRA socket, then the registration socket (the kubelet dials the first once it found the
 * second). Stale sockets of a previous run are replaced. Errors name the socket. */
int dra_service_start(dra_service *s, char **ret_error);
/* Stops serving and removes both sockets (the kubelet then deregisters the driver). Accepts NULL. */
dra_service *dra_service_free(dra_service *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(dra_service *, dra_service_free);
dra_claims *dra_service_claims(dra_service *s);
/* Serves a socket again whose file was removed (a wiped kubelet directory); returns how many. */
int dra_service_check_sockets(dra_service *s, char **ret_error);
