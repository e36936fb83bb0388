/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin's MPS readiness gate: a resource shared with MPS is advertised only while its control daemon
 * (nvdp mps-control-daemon, another process, usually another pod) is ready, i.e. while
 * <root>/<resource>/.started exists and its pipe/control socket accepts a connection (mps-root.h). Other
 * resources are never held back.
 *
 * Nothing is polled: inotify watches the MPS root and each MPS resource's directories (created when
 * missing), and a change there looks at the .started files again; the socket is probed only when a
 * .started appears. A daemon whose process dies without cleaning up (its whole pod killed) leaves its
 * .started behind: the gate sees that only when the daemon is started again. Loop thread only. */
#pragma once

#include "base/loop.h"
#include "resource/plan.h"

typedef struct mps_gate mps_gate;

/* A resource's readiness became known (first look after mps_gate_set_plan) or changed. why says what was
 * seen ("<root>/nvidia.com/gpu/.started is missing"; NULL when ready). */
typedef void (*mps_gate_handler)(const char *resource, bool ready, const char *why, void *userdata);

int mps_gate_new(loop *l, mps_gate_handler cb, void *userdata, mps_gate **ret);
mps_gate *mps_gate_free(mps_gate *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(mps_gate *, mps_gate_free);

/* The plan served now (NULL: none): watches the resources of p shared with MPS under the MPS root as this
 * process sees it (mps_root_resolve(configured_root)); a resource kept from the previous plan keeps its
 * state. Calls the handler for each new resource. -ENOENT with a sentence in ret_error when p shares
 * something with MPS and the root is not found: then every MPS resource is held back (the handler is not
 * called) until a later call finds it. */
int mps_gate_set_plan(mps_gate *g, const char *configured_root, const plan *p, char **ret_error);

/* true for a resource not shared with MPS; for one that is, whether its daemon is ready. */
bool mps_gate_ready(const mps_gate *g, const struct plan_resource *r);
