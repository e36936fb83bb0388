/* SPDX-License-Identifier: Apache-2.0 */
/* GPU feature discovery: the node labels (reference 8.1) as a pure function of the inventory and the
 * config, the NFD features.d file they are written to, and the merge-patch body that applies them to
 * the Node object. docs/gfd.md says where we differ from upstream and why. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "base/macro.h"
#include "config/config.h"
#include "gpu/inventory.h"

/* A set of labels, always sorted by key (strcmp), one value per key. */
struct label {
        char *key;
        char *value;
};

typedef struct labels {
        struct label *items;
        size_t n, allocated;
} labels;

int labels_new(labels **ret);
labels *labels_free(labels *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(labels *, labels_free);

/* Adds key=value, replacing the value when the key is there already. */
int labels_set(labels *l, const char *key, const char *value);
int labels_setf(labels *l, const char *key, const char *fmt, ...) _printf_(3, 4);
/* The value, or NULL when the key is absent. */
const char *labels_get(const labels *l, const char *key);

/* "key=value\n" lines sorted by key: the features.d file format. An empty set gives "". */
int labels_format(const labels *l, char **ret);
/* The same lines on f, each preceded by indent (NULL for none): what `nvdp info --labels` shows. */
void labels_print(const labels *l, FILE *f, const char *indent);

/* Pass as timestamp for no nvidia.com/gfd.timestamp label (--no-timestamp). */
#define LABELS_NO_TIMESTAMP INT64_C(-1)

/* Builds every label of reference 8.1 that we can know from the inventory and the config.
 * inv NULL or without GPUs gives the labels of a node without GPUs (timestamp, vgpu.present).
 * machine_type is the raw DMI product name, NULL when it could not be read ("unknown").
 * timestamp is Unix seconds, or LABELS_NO_TIMESTAMP.
 * Fails (with a sentence in ret_error) where upstream's labelers fail: MPS sharing with a MIG-enabled GPU,
 * a driver version that is not X.Y[.Z] (-EINVAL), a GPU whose fabric info could not be read (-EIO). */
int labels_build(const inventory *inv, const config *c, const char *machine_type, int64_t timestamp,
                 labels **ret, char **ret_error);

/* nvidia.com/gpu.clique as NVIDIA's GFD builds it: "<cluster uuid>.<clique id>" of the GPUs attached to an
 * NVLink fabric clique (gpu_fabric_attached()). Returns 1 with *ret_clique set; 0 with *ret_clique NULL when
 * there is no label: no GPU attached, or the attached GPUs name more than one cluster UUID or clique ID
 * (then *ret_why, when asked for, is a sentence saying which GPUs disagree, for a warning; else NULL);
 * -EIO with a sentence in ret_error when a GPU's fabric info could not be read (upstream's GFD fails then).
 */
int labels_gpu_clique(const inventory *inv, char **ret_clique, char **ret_why, char **ret_error);

/* Upstream's sanitising of product and machine names ("NVIDIA H100 80GB HBM3" ->
 * "NVIDIA-H100-80GB-HBM3"): characters outside [A-Za-z0-9-_. ] dropped, runs of blanks become
 * one '-'. Beyond upstream the result is cut to a valid label value (at most max_len <= 63 characters,
 * starting and ending with a letter or digit). out has room for max_len + 1 bytes. */
void labels_sanitise(const char *in, char *out, size_t max_len);

/* Writes the features.d file: path "" means stdout; otherwise the parent directory is created when
 * missing and the file is replaced atomically (temp file + rename in the same directory), only when
 * its content changes, so its mtime and inode stay while the labels stay.
 * Returns 1 when written, 0 when the file already held these labels. The file is never removed. */
int labels_write(const labels *l, const char *path);

/* The node annotation where we record the labels we applied, so that we remove only those. */
#define LABELS_NODE_ANNOTATION "nvdp.nvidia.com/gfd-labels"

/* The JSON merge patch (RFC 7386) for the Node object: sets every nvidia.com/ label of l, sets to null
 * each nvidia.com/ key of previous (the keys we applied last time, from the annotation) that l no
 * longer has, and records l's keys in the annotation. previous may be NULL. */
int labels_node_patch(const labels *l, char *const *previous, char **ret_json);
/* The annotation's comma list -> keys (NULL or "" gives an empty list). */
int labels_node_previous(const char *annotation, char ***ret);

/* Applies l to the Node through the API server, asynchronously in the client's loop: GETs the Node,
 * reads the keys we applied last time from the annotation, and PATCHes only when the node's labels
 * differ from l (so an unchanged node is never written). done gets 0 (changed says whether a PATCH was
 * sent) or a negative errno with a sentence. -EINVAL at once for a node name that is not valid. */
typedef struct kube_client kube_client;
typedef void (*labels_node_done)(int r, const char *error, bool changed, void *userdata);
int labels_node_apply(kube_client *c, const char *node, const labels *l, labels_node_done done,
                      void *userdata);

/* NodeFeature mode: the name of the node's object is this prefix and the node's name, as upstream's. */
#define LABELS_NODEFEATURE_PREFIX "nvidia-features-for-"

/* Puts l into the node's NodeFeature (nfd.k8s-sigs.io/v1alpha1) in namespace, asynchronously in the client's
 * loop: GETs it, and only when it is missing or says something else GETs the Node (for its uid: the object
 * is owned by the Node) and creates or updates it. done as for labels_node_apply(). -EINVAL at once for a
 * namespace or node name that is not valid. */
int labels_nodefeature_apply(kube_client *c, const char *namespace, const char *node, const labels *l,
                             labels_node_done done, void *userdata);
