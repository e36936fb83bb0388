/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp as a Kubernetes DRA driver, the parts below the daemon (docs/dra.md): the devices a node offers and
 * their names, the ResourceSlice objects that publish them, what a ResourceClaim's allocation means for
 * this node, the record of prepared claims (the checkpoint), preparing and unpreparing claims, and the
 * kubelet's protobufs. The only I/O here is the checkpoint file and the claims' CDI spec files (dra-cdi.c);
 * reading claims from the API server is the caller's, and dra_claims writes specs through the caller's
 * functions too (struct dra_claims_ops: tests fake them). Nothing here logs. */
#pragma once

#include <stdint.h>

#include "cdi/spec.h"
#include "gpu/inventory.h"
#include "health/health.h"

/* The driver name, as NVIDIA's DRA driver registers it (DeviceClasses select on it). */
#define DRA_DRIVER "gpu.nvidia.com"
/* CDI devices of prepared claims: "k8s.gpu.nvidia.com/claim=<claim UID>-<device>", as NVIDIA's driver names
 * its claim-specific CDI devices. */
#define DRA_CDI_VENDOR "k8s.gpu.nvidia.com"
#define DRA_CDI_CLASS  "claim"
#define DRA_CDI_KIND   DRA_CDI_VENDOR "/" DRA_CDI_CLASS
/* The generator annotation of claim specs: not "nvdp", so the device plugin's spec directory writer and
 * `nvdp cdi remove` never take a spec a running pod's claim still needs; the DRA driver removes them. */
#define DRA_CDI_GENERATOR "nvdp-dra"

/* A ResourceSlice holds at most 128 devices, 64 when any of them has a taint (resource.k8s.io/v1
 * ResourceSliceMaxDevicesWithAdvancedFeatures). We always split at 64 so a taint never makes a slice
 * invalid. */
#define DRA_SLICE_MAX_DEVICES 64u
/* Prepared claims kept at once (a node runs at most a few hundred pods) and the checkpoint's size. */
#define DRA_MAX_CLAIMS          4096u
#define DRA_MAX_CHECKPOINT_SIZE (8u * 1024 * 1024)
/* allocation.devices.results holds at most 32 entries (AllocationResultsMaxSize). */
#define DRA_MAX_CLAIM_DEVICES 32u

/* ---- devices (dra-devices.c) ------------------------------------------------------------------------ */

/* One device of the pool: a whole GPU, or one MIG device of a GPU with MIG on (such a GPU is not offered
 * whole: its memory and SMs belong to its MIG devices, as with the plugin's MIG strategies). */
struct dra_device {
        char name[64]; /* DNS label: "gpu-<minor>", "gpu-<minor>-mig-<gi>-<ci>" */
        unsigned gpu;  /* index in inventory->gpus */
        int mig;       /* index in gpus[gpu].mig; -1: the whole GPU */
};

/* Every device of the node in inventory order. An empty inventory gives an empty list (*ret_n = 0). */
int dra_devices_list(const inventory *inv, struct dra_device **ret, size_t *ret_n);
const struct dra_device *dra_devices_find(const struct dra_device *d, size_t n, const char *name);

/* Health of one device: a MIG device is unhealthy when its own unit or its GPU's is. NULL tracker: healthy.
 * ret_unit (may be NULL) gets the unit that decided it (the GPU's first), NULL when healthy. */
bool dra_device_healthy(const health_tracker *t, const struct dra_device *d,
                        const struct health_unit **ret_unit);

/* Values as NVIDIA's DRA driver publishes them (go-nvlib's spellings and Kubernetes' semver rules):
 * "9.0.0" from 9.0; "580.105.8" from "580.105.08" (no leading zeros in semver); "13.0.0" from 13000;
 * brand "Nvidia" from "nvidia"; architecture "Hopper" from "hopper", "Ada Lovelace" from "ada".
 * -EINVAL when the value has no semver form. */
int dra_version_compute_capability(unsigned major, unsigned minor, char *out, size_t size);
int dra_version_driver(const char *driver_version, char *out, size_t size);
int dra_version_cuda(int cuda_driver_version, char *out, size_t size);
const char *dra_brand_name(const char *brand);
const char *dra_architecture_name(const char *architecture);

/* ---- ResourceSlices (dra-slice.c) ------------------------------------------------------------------- */

/* What happens to an unhealthy device in the slice. */
enum dra_unhealthy {
        /* It stays, with a NoSchedule taint (DRADeviceTaints: GA and on by default in 1.37): the scheduler
         * allocates it to no new claim, running pods keep it, the reason is visible in the slice. */
        DRA_UNHEALTHY_TAINT,
        /* It leaves the slice (clusters where the API server drops device taints). */
        DRA_UNHEALTHY_REMOVE,
};

/* Taint keys, as NVIDIA's DRA driver sets them. */
#define DRA_TAINT_XID       DRA_DRIVER "/xid"       /* value: the XID number */
#define DRA_TAINT_GPU_LOST  DRA_DRIVER "/gpu-lost"  /* fell off the bus, NVML lost it */
#define DRA_TAINT_UNHEALTHY DRA_DRIVER "/unhealthy" /* ours: another cause (ECC error, failed re-probe) */

struct dra_slice_params {
        const char *node;     /* the node name: spec.nodeName and the pool name */
        const char *node_uid; /* the Node's UID, for the ownerReference; NULL: none */
        int64_t generation;   /* pool generation (> 0) */
        enum dra_unhealthy unhealthy;
};

/* The ResourceSlice name for part i of the node's pool: "<node>-gpu.nvidia.com-<i>". -ENAMETOOLONG when
 * it would not be a valid object name (over 253 characters). */
int dra_slice_name(const char *node, size_t i, char **ret);

/* The node's pool as ResourceSlice objects (resource.k8s.io/v1 JSON, for server-side apply), in order,
 * at most DRA_SLICE_MAX_DEVICES devices each; always at least one (an empty pool is one slice without
 * devices). health may be NULL (all healthy). *ret is a strv. */
int dra_slices_build(const inventory *inv, const health_tracker *health, const struct dra_slice_params *p,
                     char ***ret, char **ret_error);

/* The node's slices in a ResourceSliceList (GET /apis/resource.k8s.io/v1/resourceslices with the field
 * selector spec.nodeName=<node>,spec.driver=gpu.nvidia.com; items of other nodes or drivers are skipped as
 * well): their names (a strv, sorted) and the highest pool generation among them (0: none). A publisher
 * starting up continues above that generation and deletes the names it does not publish. */
int dra_slice_list_parse(const char *json, size_t size, const char *node, char ***ret_names,
                         int64_t *ret_generation, char **ret_error);

/* ---- claims (dra-claim.c) --------------------------------------------------------------------------- */

/* The kubelet names a claim by these three (NodePrepareResources / NodeUnprepareResources). */
struct dra_claim_ref {
        const char *namespace;
        const char *uid;
        const char *name;
};

/* How the pods of a claim share its devices (opaque config GpuConfig/MigDeviceConfig "sharing"). */
enum dra_sharing {
        DRA_SHARING_NONE,         /* no config: the claim's pods share the devices as they are */
        DRA_SHARING_TIME_SLICING, /* strategy TimeSlicing, interval Default */
};

struct dra_prepared_device {
        char *request; /* the claim's request it was allocated for (a subrequest's main request) */
        char *pool;
        char *device;
        char *cdi_id; /* "k8s.gpu.nvidia.com/claim=<uid>-<device>" */
        enum dra_sharing sharing;
};

/* One prepared claim: what NodePrepareResources answered, kept until NodeUnprepareResources. */
struct dra_claim {
        char *uid, *namespace, *name;
        struct dra_prepared_device *devices;
        size_t n_devices;
};

struct dra_claim *dra_claim_free(struct dra_claim *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct dra_claim *, dra_claim_free);

/* A claim UID we put in file names and CDI names: 1-128 characters of [A-Za-z0-9-]. */
bool dra_claim_uid_valid(const char *uid);
/* Checks the three names the kubelet sent (non-empty, UID as above); the error names the bad one. */
int dra_claim_ref_check(const struct dra_claim_ref *ref, char **ret_error);

/* What this node must prepare for a claim, from the ResourceClaim object (JSON as the API server returns
 * it) the kubelet named by ref. Checks: the object is that claim (same UID) and is allocated; every result
 * of driver gpu.nvidia.com is in pool `node` and names one of devs, healthy under health (NULL: healthy);
 * the opaque configs for gpu.nvidia.com are ones nvdp understands and can honour. Results of other drivers
 * are not ours and are skipped. Each failure is -EINVAL (-ENODEV for a device that is not on this node,
 * -EBUSY for an unhealthy one, -EOPNOTSUPP for a config nvdp cannot honour) with a sentence for the pod's
 * events naming the claim, the device or the config. */
int dra_claim_resolve(const char *json, size_t size, const struct dra_claim_ref *ref, const char *node,
                      const struct dra_device *devs, size_t n_devs, const health_tracker *health,
                      struct dra_claim **ret, char **ret_error);

/* ---- the checkpoint (dra-checkpoint.c) -------------------------------------------------------------- */

/* The prepared claims, keyed by UID. */
struct dra_state {
        struct dra_claim **claims;
        size_t n_claims;
};

void dra_state_done(struct dra_state *s);
struct dra_claim *dra_state_find(const struct dra_state *s, const char *uid);
/* Takes c (also on failure); replaces a claim with the same UID. -ENOSPC beyond DRA_MAX_CLAIMS. */
int dra_state_put(struct dra_state *s, struct dra_claim *c);
/* Returns the claim with that UID, removed (the caller frees it), or NULL. */
struct dra_claim *dra_state_take(struct dra_state *s, const char *uid);

/* The state as the checkpoint's JSON, and back. Parsing checks every field (types, UIDs, CDI names) and
 * the limits; errors name the field. */
int dra_state_format(const struct dra_state *s, const char *node, char **ret);
int dra_state_parse(const char *json, size_t size, const char *node, struct dra_state *ret,
                    char **ret_error);

/* Reads the checkpoint (a missing file is an empty state). The checkpoint must be for this node: one
 * written on another node (a copied disk) is refused. Errors name the file. */
int dra_checkpoint_read(const char *path, const char *node, struct dra_state *ret, char **ret_error);
/* Replaces the checkpoint atomically (temporary file, fsync, rename). Errors name the file. */
int dra_checkpoint_write(const char *path, const char *node, const struct dra_state *s, char **ret_error);

/* ---- a claim's CDI spec (dra-cdi.c) ---------------------------------------------------------------- */

/* The claim's CDI spec: kind k8s.gpu.nvidia.com/claim, one device per prepared device named as in its
 * cdi_id ("<claim uid>-<device>"), with the edits of that GPU's or MIG device's entry in node_spec (the
 * node's spec from cdi_specs_build, which names GPUs by index and MIG devices by "<gpu>:<mig>") and
 * node_spec's common edits (driver libraries, control nodes, hooks). Pure. Errors (a device not in devs,
 * a claim without devices) come with a sentence. */
int dra_claim_spec_build(const cdi_spec *node_spec, const inventory *inv, const struct dra_device *devs,
                         size_t n_devs, const struct dra_claim *c, cdi_spec **ret, char **ret_error);

/* Where and from what claim specs are written. */
struct dra_claim_specs {
        const char *dir;           /* the CDI root (--cdi-root) */
        const cdi_spec *node_spec; /* the node's GPU spec */
        const inventory *inventory;
        const struct dra_device *devs;
        size_t n_devs;
};
/* Writes the claim's spec to <dir>/<dra_claim_spec_filename(uid)> (creating dir) atomically (temporary file,
 * fsync, rename: a runtime watching the directory never sees half a file), replacing one already there. A
 * claim without devices of this driver gets none. Errors name the path or the device. */
int dra_claim_spec_write(const struct dra_claim_specs *w, const struct dra_claim *c, char **ret_error);
/* Removes the claim's spec; one that is not there is not an error. Errors name the path. */
int dra_claim_spec_remove(const char *dir, const char *uid, char **ret_error);

/* The claim's CDI spec file name in the CDI directory: "k8s.gpu.nvidia.com-claim_<uid>.json". */
int dra_claim_spec_filename(const char *uid, char **ret);
/* Whether name is a claim spec file name of ours; *ret_uid (may be NULL) gets the UID in it. */
bool dra_claim_spec_filename_parse(const char *name, char **ret_uid);

/* ---- the kubelet's wire (dra-wire.c): the only file that packs and unpacks the DRA and plugin
 * registration protobufs ----------------------------------------------------------------------------- */

/* The gRPC services nvdp offers, as listed in PluginInfo.supported_versions, newest first (the kubelet
 * takes the first it supports). */
#define DRA_SERVICE_V1       "v1.DRAPlugin"
#define DRA_SERVICE_V1BETA1  "v1beta1.DRAPlugin"
#define DRA_PATH_V1          "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/"
#define DRA_PATH_V1BETA1     "/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/"
#define DRA_METHOD_PREPARE   "NodePrepareResources"
#define DRA_METHOD_UNPREPARE "NodeUnprepareResources"
/* The plugin watcher's registration service (package "pluginregistration", no version in the path). */
#define REGISTRATION_PATH_GET_INFO "/pluginregistration.Registration/GetInfo"
#define REGISTRATION_PATH_NOTIFY   "/pluginregistration.Registration/NotifyRegistrationStatus"
#define REGISTRATION_TYPE_DRA      "DRAPlugin"

/* Claims in one NodePrepareResources/NodeUnprepareResources call (the kubelet sends a pod's claims of one
 * driver; a pod has at most 32). */
#define DRA_MAX_REQUEST_CLAIMS 256u
/* An error string sent back is cut to this many bytes. */
#define DRA_MAX_ERROR 1024u

/* The claims of a NodePrepareResourcesRequest or NodeUnprepareResourcesRequest (the same message shape). */
struct dra_claim_list {
        struct dra_claim_ref *refs;
        size_t n;
        void *message; /* owns the strings refs point into */
};
void dra_claim_list_done(struct dra_claim_list *l);
/* -EBADMSG when it does not parse, -EINVAL (with a sentence) for more than DRA_MAX_REQUEST_CLAIMS claims or
 * a claim whose namespace, name or UID is not valid; the caller fails the call then. */
int dra_wire_claims_unpack(const uint8_t *msg, size_t size, struct dra_claim_list *ret, char **ret_error);

/* One claim's answer: its prepared record, or an error (exactly one is set). */
struct dra_prepare_result {
        const char *uid;
        const struct dra_claim *claim;
        const char *error;
};
int dra_wire_prepare_response_pack(const struct dra_prepare_result *r, size_t n, uint8_t **ret,
                                   size_t *ret_size);
struct dra_unprepare_result {
        const char *uid;
        const char *error; /* NULL: unprepared */
};
int dra_wire_unprepare_response_pack(const struct dra_unprepare_result *r, size_t n, uint8_t **ret,
                                     size_t *ret_size);

/* PluginInfo for GetInfo; versions is a strv. */
int dra_wire_plugin_info_pack(const char *type, const char *name, const char *endpoint,
                              char *const *versions, uint8_t **ret, size_t *ret_size);
/* RegistrationStatus from NotifyRegistrationStatus; *ret_error gets the kubelet's error text ("" when none),
 * made printable. */
int dra_wire_registration_status_unpack(const uint8_t *msg, size_t size, bool *ret_registered,
                                        char **ret_error);
/* The empty RegistrationStatusResponse. */
int dra_wire_registration_status_response_pack(uint8_t **ret, size_t *ret_size);

/* A copy of s for a peer or a log: bytes outside printable ASCII become '?', cut to DRA_MAX_ERROR bytes
 * (the kubelet's protobuf decoder refuses strings that are not UTF-8). */
char *dra_printable(const char *s);

/* ---- prepared claims (dra-claims.c): NodePrepareResources / NodeUnprepareResources ------------------ */

/* What dra_claims needs done outside it: reading a ResourceClaim from the API server and writing or removing
 * a claim's CDI spec. The daemon provides these (the kube client, the CDI writer); tests provide fakes. */
struct dra_claims_ops {
        /* Starts reading the ResourceClaim ref names; the answer goes to dra_claims_fetched() with token,
         * now or later from the loop. <0: it could not start (the claim fails with *ret_error). */
        int (*fetch)(void *userdata, const struct dra_claim_ref *ref, uint64_t token, char **ret_error);
        /* Writes the claim's CDI spec (atomically; replacing one already there). */
        int (*write_spec)(void *userdata, const struct dra_claim *c, char **ret_error);
        /* Removes the claim's CDI spec; one that is not there is not an error. */
        int (*remove_spec)(void *userdata, const char *uid, char **ret_error);
};

struct dra_claims_params {
        const char *node;             /* this node: the pool */
        const char *checkpoint;       /* the checkpoint file */
        const inventory *inventory;   /* the node's GPUs (NULL: none) */
        const health_tracker *health; /* NULL: every device healthy */
};

/* At most this many NodePrepareResources calls wait for the API server at once; more fail at once. */
#define DRA_MAX_PENDING_PREPARES 64u

typedef struct dra_claims dra_claims;

/* Reads the checkpoint (errors name the file; a damaged one is refused). p and ops are copied; the
 * strings and objects p points to must outlive the dra_claims. */
int dra_claims_new(const struct dra_claims_params *p, const struct dra_claims_ops *ops, void *userdata,
                   dra_claims **ret, char **ret_error);
/* Drops pending prepares without answering them. Accepts NULL. */
dra_claims *dra_claims_free(dra_claims *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(dra_claims *, dra_claims_free);
const struct dra_state *dra_claims_state(const dra_claims *c);

/* After a restart (of nvdp, or of the node: /var/run/cdi is a tmpfs): writes the CDI spec of every
 * checkpointed claim again, and removes the claim specs in spec_files (names in the CDI directory, a strv)
 * that no checkpointed claim owns (left by a crash between writing a spec and recording it). Every spec is
 * tried; the first error is returned. *ret_removed (may be NULL) gets how many orphans went. */
int dra_claims_recover(dra_claims *c, char *const *spec_files, size_t *ret_removed, char **ret_error);

/* Called once per dra_claims_prepare with one result per claim, in the request's order (NULL and 0 when
 * out of memory). The results and the claims they point to are valid during the call only. */
typedef void (*dra_prepare_done_fn)(void *userdata, const struct dra_prepare_result *r, size_t n);
/* Prepares the claims: those already prepared are answered from their record; the others are read from the
 * API server (ops->fetch), resolved (dra_claim_resolve), their CDI specs written, and recorded in the
 * checkpoint, all of one call together. done runs once: inside this call when nothing had to be read, else
 * from the last dra_claims_fetched. -EBUSY (done not called) when DRA_MAX_PENDING_PREPARES calls wait. */
int dra_claims_prepare(dra_claims *c, const struct dra_claim_ref *refs, size_t n, dra_prepare_done_fn done,
                       void *userdata);
/* The answer to ops->fetch: status is the HTTP status (2xx: body is the ResourceClaim), or a -errno with
 * error saying why no answer came. Unknown tokens (a freed or finished call) are ignored. */
void dra_claims_fetched(dra_claims *c, uint64_t token, int status, const char *body, size_t size,
                        const char *error);

/* Called with one result per claim, in the request's order, valid during the call only. */
typedef void (*dra_unprepare_done_fn)(void *userdata, const struct dra_unprepare_result *r, size_t n);
/* Unprepares the claims: removes each recorded claim's CDI spec and its record, then writes the
 * checkpoint; a claim without a record is already unprepared. A claim being prepared at the moment is
 * not recorded when its read returns. done runs inside this call (only -ENOMEM fails before it). */
int dra_claims_unprepare(dra_claims *c, const struct dra_claim_ref *refs, size_t n,
                         dra_unprepare_done_fn done, void *userdata);
