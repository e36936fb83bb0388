/* SPDX-License-Identifier: Apache-2.0 */
/* The CDI spec model (tags.cncf.io/container-device-interface specs-go, the subset a GPU needs) and its
 * JSON and YAML writers. The cdiVersion written is the lowest that expresses the spec's content, by the
 * CDI project's own rules (hostPath or a name starting with a digit: 0.5.0; annotations: 0.6.0). */
#pragma once

#include <stdio.h>

#include "base/macro.h"

struct cdi_device_node {
        char *path;      /* in the container: "/dev/nvidia0" */
        char *host_path; /* NULL when the same as path */
};

struct cdi_mount {
        char *host_path;
        char *container_path;
        char **options;
};

struct cdi_hook {
        char *hook_name; /* "createContainer" */
        char *path;
        char **args;
};

struct cdi_edits {
        char **env;
        struct cdi_device_node *nodes;
        size_t n_nodes;
        struct cdi_mount *mounts;
        size_t n_mounts;
        struct cdi_hook *hooks;
        size_t n_hooks;
};

struct cdi_device {
        char *name;
        struct cdi_edits edits;
};

typedef struct cdi_spec {
        char *kind;         /* "k8s.device-plugin.nvidia.com/gpu" */
        char **annotations; /* "key", "value" pairs */
        struct cdi_device *devices;
        size_t n_devices;
        struct cdi_edits edits; /* for every device of the spec */
} cdi_spec;

enum cdi_format { CDI_FORMAT_YAML, CDI_FORMAT_JSON };

int cdi_spec_new(const char *kind, cdi_spec **ret);
cdi_spec *cdi_spec_free(cdi_spec *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(cdi_spec *, cdi_spec_free);
void cdi_edits_done(struct cdi_edits *e);

int cdi_spec_add_annotation(cdi_spec *s, const char *key, const char *value);
/* Appends a device with no edits; *ret points into s (valid until the next add). */
int cdi_spec_add_device(cdi_spec *s, const char *name, struct cdi_device **ret);
const struct cdi_device *cdi_spec_find_device(const cdi_spec *s, const char *name);
const char *cdi_spec_annotation(const cdi_spec *s, const char *key);

/* The adders keep the first of two entries for one container path (the runtime would refuse two). */
int cdi_edits_add_env(struct cdi_edits *e, const char *assignment);
int cdi_edits_add_node(struct cdi_edits *e, const char *path, const char *host_path);
int cdi_edits_add_mount(struct cdi_edits *e, const char *host_path, const char *container_path,
                        char *const *options);
/* Takes ownership of args. */
int cdi_edits_add_hook(struct cdi_edits *e, const char *hook_name, const char *path, char **args);
/* Appends every node, mount, env and hook of from to e (the "all" device). */
int cdi_edits_merge(struct cdi_edits *e, const struct cdi_edits *from);

/* "0.3.0" ... "0.6.0". */
const char *cdi_spec_version(const cdi_spec *s);
/* The vendor and class of the kind "vendor/class"; -EINVAL when it is not a valid CDI kind. */
int cdi_kind_split(const char *kind, char **ret_vendor, char **ret_class);
/* A CDI device name: letters, digits, '_', '-', '.', ':' and starting and ending in a letter or digit. */
bool cdi_device_name_valid(const char *name);

int cdi_spec_format(const cdi_spec *s, enum cdi_format format, char **ret, size_t *ret_size);
