/* SPDX-License-Identifier: Apache-2.0 */
/* CDI spec generation: from the inventory and the driver on a root to the specs that define every name
 * Allocate's CDI strategies return (k8s.device-plugin.nvidia.com/gpu=<index|UUID|gpu:mig|all>, and the
 * IMEX channels), and the spec directory those specs live in. No NVML here: the inventory says which
 * GPUs exist; the driver root says which files a container needs. Library code: nothing is logged,
 * errors come back as a sentence. */
#pragma once

#include "base/macro.h"
#include "cdi/spec.h"
#include "config/config.h"
#include "gpu/inventory.h"
#include "resource/plan.h"

#define CDI_VENDOR           "k8s.device-plugin.nvidia.com"
#define CDI_CLASS_GPU        "gpu"
#define CDI_CLASS_IMEX       "imex-channel"
#define CDI_KIND_GPU         CDI_VENDOR "/" CDI_CLASS_GPU
#define CDI_KIND_IMEX        CDI_VENDOR "/" CDI_CLASS_IMEX
#define CDI_SPEC_DIR_DEFAULT "/var/run/cdi"

/* Spec annotations: what the spec was made from. The generator key marks nvdp's own files. */
#define CDI_ANNOTATION_GENERATOR      "nvdp.nvidia.com/generator"
#define CDI_ANNOTATION_DRIVER_VERSION "nvdp.nvidia.com/driver-version"
#define CDI_ANNOTATION_DRIVER_ROOT    "nvdp.nvidia.com/driver-root"
#define CDI_ANNOTATION_DEV_ROOT       "nvdp.nvidia.com/dev-root"

/* Paths are host paths (what the spec says) unless named *_ctr: where this process sees the same
 * directory. Running on the host they are the same; in the plugin's container the host driver root is
 * mounted elsewhere (upstream's --driver-root-ctr-path, /driver-root). */
struct cdi_roots {
        const char *host;       /* where the host's "/" is visible: "/" (a fixture tree in tests) */
        const char *driver;     /* the driver root: "/", "/run/nvidia/driver", "/usr/local/nvidia" */
        const char *driver_ctr; /* NULL: host + driver */
        const char *dev;        /* the dev root; NULL: the driver root. Device nodes are looked for
                                 * there first, then under "/" */
        const char *dev_ctr;    /* NULL: driver_ctr when dev is the driver root, else host + dev */
};

struct cdi_options {
        struct cdi_roots roots;
        const char *kind;            /* of the GPU spec; NULL: CDI_KIND_GPU */
        const char *hook_path;       /* the hook program written into the spec */
        char *const *disabled_hooks; /* "create-symlinks", "update-ldcache", or "all" */
        const unsigned *imex_channel_ids;
        size_t n_imex_channel_ids;
        const char *kernel_release; /* for /lib/firmware/<release>; NULL: uname() */
};

typedef struct cdi_specs {
        cdi_spec **specs; /* the GPU spec, then the IMEX spec when a configured channel exists */
        size_t n_specs;
        char *driver_root, *dev_root; /* the roots used (host paths) */
        char **warnings;              /* e.g. a configured IMEX channel without a device node */
} cdi_specs;

cdi_specs *cdi_specs_free(cdi_specs *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(cdi_specs *, cdi_specs_free);

/* The plugin's flags as options: --driver-root, --dev-root, --driver-root-ctr-path (used when that
 * directory exists, else the driver root is read where it is), --nvidia-cdi-hook-path,
 * --cdi-disable-hooks, imex.channelIDs; host root = --root. The strings stay owned by c. */
void cdi_options_from_config(const config *c, struct cdi_options *ret);

/* Builds the specs. Fails with a sentence naming the roots looked in when the driver's libraries or
 * the device nodes are not found, or a GPU's device node is missing. */
int cdi_specs_build(const inventory *inv, const struct cdi_options *o, cdi_specs **ret, char **ret_error);

/* Whether IMEX channel id has its device node (/dev/nvidia-caps-imex-channels/channel<id>) under the dev
 * root the spec's device nodes come from (the rule of cdi_specs_build): 1 yes, 0 no, <0 when no dev root
 * holds /dev/nvidiactl (with a sentence). *ret_looked_at (optional): where it was looked for, here. */
int cdi_imex_channel_exists(const struct cdi_options *o, unsigned id, char **ret_looked_at,
                            char **ret_error);

/* A spec of another kind made of devices of from: device names[i] gets the edits of from's device
 * sources[i] (names and sources: strvs of one length); from's own edits and annotations come along,
 * the generator annotation (if any) set to generator. -ENOENT with a sentence when a source is not a
 * device of from, -EINVAL when a name is no CDI device name. The DRA driver's claim specs: the node's
 * spec is discovered once, a claim's spec is a copy of the devices it holds. */
int cdi_spec_derive(const cdi_spec *from, const char *kind, const char *generator, char *const *names,
                    char *const *sources, cdi_spec **ret, char **ret_error);

/* The file name of a spec in a spec dir: "<vendor>-<class>.json". */
int cdi_spec_file_name(const cdi_spec *s, char **ret);

/* Writes each spec to dir/<vendor>-<class>.json atomically (creating dir), replacing what is there
 * (a spec of another driver version), and removes nvdp's own spec files in dir that are not in s
 * (e.g. the IMEX spec after the channels were unconfigured). Nothing else in dir is touched.
 * Returns 1 when a file changed, 0 when all were already current. */
int cdi_spec_dir_write(const char *dir, const cdi_specs *s, char **ret_error);
/* Writes one spec to path (JSON) atomically: temporary file in its directory, fsync, rename; a file
 * holding the same bytes is left alone. Returns 1 when written, 0 when already current; errors name the
 * path. Other files of the directory are not touched (the DRA driver's one spec per claim). */
int cdi_spec_write_file(const char *path, const cdi_spec *s, char **ret_error);
/* Removes nvdp's own spec files from dir (CDI_ANNOTATION_GENERATOR "nvdp"); others stay, the DRA driver's
 * claim specs ("nvdp-dra") too. */
int cdi_spec_dir_remove_own(const char *dir, char **ret_error);

/* The qualified CDI names Allocate can return for plan p under config c: every device's
 * "<CDI_KIND_GPU>=<runtime id>", then "<CDI_KIND_IMEX>=<channel>". Sorted, each once. */
int cdi_allocate_names(const plan *p, const config *c, char ***ret);

/* ---- reading specs back (nvdp cdi list) ---- */

struct cdi_spec_file {
        char *path;
        char *kind;
        char **devices; /* device names */
        char **annotations;
};

/* Reads the spec files (*.json, *.yaml) of each dir in order; a file that does not parse is returned
 * with kind NULL and its error in annotations[0..1] = {"error", "<why>"}. Missing dirs are skipped. */
int cdi_spec_dirs_read(char *const *dirs, struct cdi_spec_file **ret, size_t *ret_n);
void cdi_spec_files_free(struct cdi_spec_file *f, size_t n);
