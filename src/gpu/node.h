/* SPDX-License-Identifier: Apache-2.0 */
/* node_open(): the one way every verb (plugin, gfd, info, doctor) loads NVML and reads the inventory,
 * with one driver-root rule. docs/design.md has the rule and why. */
#pragma once

#include "gpu/inventory.h"

typedef struct nvml nvml;

/* Where things are. NULL members take the default named. */
struct node_roots {
        const char *root;                  /* host root whose sys/ and proc/ are read; NULL: "/" */
        const char *driver_root;           /* the driver's root on the host (nvidiaDriverRoot); NULL: "/" */
        const char *container_driver_root; /* where driver_root is mounted in this container; NULL: none */
        const char *library;               /* NULL: libnvidia-ml.so.1; a path (tests) is opened as is */
};

struct node {
        nvml *nvml;
        inventory *inventory;
};

/* The driver-root rule: the directory whose library directories (usr/lib64, usr/lib/x86_64-linux-gnu,
 * ...) are searched for NVML before the dynamic loader's own path:
 *   1. container_driver_root, when it is not "/" and is a directory here (in a pod: the chart mounts the
 *      host's driver root there, e.g. the GPU Operator's /run/nvidia/driver at /driver-root);
 *   2. else driver_root, when it is not "/" (on the host itself: nvdp info --driver-root=...);
 *   3. else none: only the loader's path (LD_LIBRARY_PATH, ld.so.cache, the container toolkit's mounts).
 * Returns a pointer into r, or NULL for 3. */
const char *node_driver_search_root(const struct node_roots *r);

/* Loads NVML by the rule above and reads the inventory under r->root. Fails as nvml_load() when NVML
 * cannot be loaded or initialised (-EOPNOTSUPP, -ELIBBAD, -ENODEV), else as inventory_load() (-EIO: an
 * NVML query failed, e.g. a GPU is lost). ret_error (optional) gets a sentence naming what was looked for
 * and where, or what NVML said. */
int node_open(const struct node_roots *r, struct node **ret, char **ret_error);
/* Whether a node_open() error means NVML itself could not be loaded or initialised. */
bool node_error_is_nvml_load(int error);
/* For a node_open() error that says NVML was not found, inside a Kubernetes pod (KUBERNETES_SERVICE_HOST
 * is set): the usual cause on k3s, as a sentence to append (it starts with a space); "" otherwise. */
const char *node_nvml_hint(int error);
/* Frees the inventory, shuts NVML down. Accepts NULL. */
struct node *node_close(struct node *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct node *, node_close);
