/* SPDX-License-Identifier: Apache-2.0 */
/* Facts about a node's layout the checks share: where k3s looks for runtime binaries, which
 * service runs k3s, the node's name. */
#pragma once

#include "base/macro.h"

struct doctor_options;

/* k3s (since late 2024, k3s-io/k3s#10761) looks the runtimes up in its service's PATH with
 * /usr/local/nvidia/toolkit (the GPU operator's install dir) put first. The service's PATH cannot be
 * read from a mounted root, so we use the system PATH of k3s's docs after the toolkit dir. */
extern const char *const node_runtime_search_path[];
/* The same list as one "a:b:c" string, for evidence. */
extern const char node_runtime_search_path_string[];

/* "k3s-agent" when that unit exists under root (agent nodes), else "k3s". */
const char *node_k3s_service(const char *root);
/* Whether the node's containerd (k3s's, else plain) hands CDI devices to containers itself (enable_cdi, on
 * by default since containerd 2.0): 1 with what was read in *ret_evidence, 0 no or unknown
 * (check-containerd.c). */
int node_containerd_cdi(const struct doctor_options *o, char **ret_evidence);
/* The toolkit-free path (docs/k3s.md): a CDI device-list strategy, nvdp's own spec in the spec directory
 * whose hooks exist on the node (or that has none), and a containerd that injects CDI devices: the NVIDIA
 * Container Toolkit is not needed. 1 with the evidence, 0 otherwise (check-cdi.c). */
int node_toolkit_free(const struct doctor_options *o, char **ret_evidence);

/* The node name: given, else $NODE_NAME, else <root>/etc/hostname, else gethostname() when root is
 * the host. NULL when none. */
char *node_name(const char *root, const char *given);
