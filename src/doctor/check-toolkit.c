/* SPDX-License-Identifier: Apache-2.0 */
/* NVIDIA Container Toolkit: the binaries k3s (and containerd configs) point at, found where k3s
 * looks for them. */
#include "doctor/doctor.h"
#include "doctor/node.h"
#include "doctor/rootfs.h"

static bool is_k3s(const char *root)
{
        _cleanup_free_ char *bin = NULL;
        return rootfs_exists(root, "/var/lib/rancher/k3s") ||
               rootfs_find_executable(root, node_runtime_search_path, "k3s", &bin) >= 0;
}

/* not_needed: why the toolkit is not needed on this node (node_toolkit_free), NULL when it is. */
static int check_binary(const struct doctor_options *o, doctor_report *r, const char *id, const char *name,
                        enum doctor_verdict missing_verdict, const char *why, const char *fix,
                        const char *not_needed)
{
        _cleanup_free_ char *path = NULL;
        if (rootfs_find_executable(o->root, node_runtime_search_path, name, &path) >= 0)
                return doctor_report_add(r, id, DOCTOR_OK, path, NULL);
        if (not_needed)
                return doctor_report_addf(r, id, DOCTOR_SKIP, NULL, "%s not installed, not needed: %s", name,
                                          not_needed);
        return doctor_report_addf(r, id, missing_verdict, fix, "%s not found in %s%s", name,
                                  node_runtime_search_path_string, why);
}

int doctor_check_toolkit(const struct doctor_options *o, doctor_report *r)
{
        /* With k3s a restart is enough: it detects the runtimes at start. Plain containerd needs them
         * written into its config. The comment keeps the fix runnable while saying where the package
         * comes from. */
        _cleanup_free_ char *fix = NULL;
        int k = is_k3s(o->root)
                        ? asprintf(&fix,
                                   "apt-get install -y nvidia-container-toolkit && systemctl restart %s   "
                                   "# after adding NVIDIA's package repository (container toolkit install "
                                   "guide)",
                                   node_k3s_service(o->root))
                        : asprintf(&fix,
                                   "apt-get install -y nvidia-container-toolkit && nvidia-ctk runtime "
                                   "configure --runtime=containerd && systemctl restart containerd   # "
                                   "after adding NVIDIA's package repository (container toolkit install "
                                   "guide)");
        if (k < 0)
                return -ENOMEM;
        /* The toolkit-free path: containerd injects the devices of nvdp's own spec, whose hook is nvdp. */
        _cleanup_free_ char *not_needed = NULL;
        if ((k = node_toolkit_free(o, &not_needed)) < 0)
                return k;

        k = check_binary(o, r, "toolkit.runtime", "nvidia-container-runtime", DOCTOR_FAIL,
                         ": containers cannot get GPUs", fix, not_needed);
        if (k < 0)
                return k;
        k = check_binary(o, r, "toolkit.runtime-cdi", "nvidia-container-runtime.cdi",
                         o->cdi_expected ? DOCTOR_FAIL : DOCTOR_WARN,
                         ": no nvidia-cdi runtime (toolkit older than 1.14?)", fix, not_needed);
        if (k < 0)
                return k;
        return check_binary(o, r, "toolkit.ctk", "nvidia-ctk", o->cdi_expected ? DOCTOR_FAIL : DOCTOR_WARN,
                            ": CDI specs name it as their hook, so CDI containers fail to start", fix,
                            not_needed);
}
