/* SPDX-License-Identifier: Apache-2.0 */
/* Kubelet side of the node: the device-plugin directory, kubelet.sock, our sockets, CDI specs. */
#include <fnmatch.h>

#include "base/strv.h"
#include "doctor/doctor.h"
#include "doctor/node.h"
#include "doctor/rootfs.h"

#define DEVICE_PLUGIN_DIR "/var/lib/kubelet/device-plugins"
#define KUBELET_SOCK      DEVICE_PLUGIN_DIR "/kubelet.sock"
#define CDI_DIR           "/var/run/cdi"

static int check_kubelet_socket(const struct doctor_options *o, doctor_report *r, const char *service)
{
        _cleanup_free_ char *fix = NULL;
        if (asprintf(&fix, "systemctl restart %s   # the kubelet creates kubelet.sock when it starts",
                     service) < 0)
                return -ENOMEM;
        struct stat st;
        if (rootfs_stat(o->root, DEVICE_PLUGIN_DIR, &st) < 0 || !S_ISDIR(st.st_mode))
                return doctor_report_add(r, "kubelet.socket", DOCTOR_FAIL,
                                         DEVICE_PLUGIN_DIR
                                         " does not exist: the kubelet has not run on this node "
                                         "(or uses another --root-dir)",
                                         fix);
        if (rootfs_stat(o->root, KUBELET_SOCK, &st) < 0)
                return doctor_report_add(r, "kubelet.socket", DOCTOR_FAIL,
                                         KUBELET_SOCK
                                         " is missing: the kubelet is not running, so no device "
                                         "plugin can register",
                                         fix);
        if (!S_ISSOCK(st.st_mode))
                return doctor_report_add(r, "kubelet.socket", DOCTOR_FAIL,
                                         KUBELET_SOCK " exists but is not a socket", fix);
        return doctor_report_add(r, "kubelet.socket", DOCTOR_OK, KUBELET_SOCK " is a socket", NULL);
}

static int check_plugin_sockets(const struct doctor_options *o, doctor_report *r)
{
        _cleanup_strv_free_ char **names = NULL, **ours = NULL;
        if (rootfs_list(o->root, DEVICE_PLUGIN_DIR, 4096, &names) < 0)
                return doctor_report_add(r, "kubelet.plugin-sockets", DOCTOR_SKIP,
                                         DEVICE_PLUGIN_DIR " cannot be listed", NULL);
        STRV_FOREACH (n, names) {
                if (fnmatch("nvidia-*.sock", *n, 0) != 0)
                        continue;
                _cleanup_free_ char *p = NULL;
                struct stat st;
                if (asprintf(&p, DEVICE_PLUGIN_DIR "/%s", *n) < 0)
                        return -ENOMEM;
                if (rootfs_stat(o->root, p, &st) < 0 || !S_ISSOCK(st.st_mode))
                        continue;
                int k = strv_extend(&ours, *n);
                if (k < 0)
                        return k;
        }
        if (!ours)
                return doctor_report_add(
                        r, "kubelet.plugin-sockets", DOCTOR_WARN,
                        "no nvidia-*.sock in " DEVICE_PLUGIN_DIR
                        ": the device plugin is not serving on this node",
                        "kubectl get pods -A -o wide | grep -e nvdp -e nvidia-device-plugin   # "
                        "is a plugin pod scheduled here and running?");
        _cleanup_free_ char *j = strv_join(ours, ", ");
        if (!j)
                return -ENOMEM;
        return doctor_report_addf(r, "kubelet.plugin-sockets", DOCTOR_OK, NULL, "%s in " DEVICE_PLUGIN_DIR,
                                  j);
}

static int check_cdi_spec(const struct doctor_options *o, doctor_report *r)
{
        if (!o->cdi_expected)
                return doctor_report_add(r, "kubelet.cdi-spec", DOCTOR_SKIP,
                                         "no CDI device-list strategy configured", NULL);
        _cleanup_strv_free_ char **names = NULL, **ours = NULL;
        const char *dir = isempty(o->cdi_spec_dir) ? CDI_DIR : o->cdi_spec_dir;
        (void)rootfs_list(o->root, dir, 4096, &names);
        STRV_FOREACH (n, names)
                if (startswith(*n, "k8s.device-plugin.nvidia.com") || startswith(*n, "nvidia")) {
                        int k = strv_extend(&ours, *n);
                        if (k < 0)
                                return k;
                }
        if (!ours)
                return doctor_report_addf(
                        r, "kubelet.cdi-spec", DOCTOR_FAIL,
                        "kubectl get pods -A | grep -e nvdp -e nvidia-device-plugin   # the plugin "
                        "writes its spec when it starts; is its --cdi-spec-dir mounted into it?",
                        "a CDI strategy is configured but %s holds no k8s.device-plugin.nvidia.com or "
                        "nvidia spec",
                        dir);
        _cleanup_free_ char *j = strv_join(ours, ", ");
        if (!j)
                return -ENOMEM;
        return doctor_report_addf(r, "kubelet.cdi-spec", DOCTOR_OK, NULL, "%s in %s", j, dir);
}

int doctor_check_kubelet(const struct doctor_options *o, doctor_report *r)
{
        int k;
        /* The kubelet runs inside k3s when k3s is there. */
        const char *service =
                rootfs_exists(o->root, "/var/lib/rancher/k3s") ? node_k3s_service(o->root) : "kubelet";
        if ((k = check_kubelet_socket(o, r, service)) < 0 || (k = check_plugin_sockets(o, r)) < 0)
                return k;
        return check_cdi_spec(o, r);
}
