/* SPDX-License-Identifier: Apache-2.0 */
/* MPS: the control binary, the daemons under the MPS root, the shared /dev/shm. The root's layout is
 * the MPS control daemon's (src/mps/mps-root.h, docs/mps.md); it is read here through the node root
 * like every other path, so the names are repeated rather than included from a room above. */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/strv.h"
#include "doctor/doctor.h"
#include "doctor/rootfs.h"

#define DEFAULT_MPS_ROOT "/run/nvidia/mps"
#define CONTROL_BINARY   "nvidia-cuda-mps-control"
#define STATE_MAX        4096

/* The node's PATH, then where drivers put their binaries outside it: the GPU operator's driver root
 * and the NVIDIA installer's /usr/local/nvidia. */
static const char *const control_dirs[] = {
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/run/nvidia/driver/usr/bin",
        "/usr/local/nvidia/bin",
        NULL,
};

static int check_control(const struct doctor_options *o, doctor_report *r)
{
        _cleanup_free_ char *bin = NULL;
        if (rootfs_find_executable(o->root, control_dirs, CONTROL_BINARY, &bin) >= 0)
                return doctor_report_addf(r, "mps.control", DOCTOR_OK, NULL, "%s", bin);
        return doctor_report_add(
                r, "mps.control", DOCTOR_FAIL,
                CONTROL_BINARY " is not installed (looked in /usr/local/sbin, /usr/local/bin, "
                               "/usr/sbin, /usr/bin, /sbin, /bin, /run/nvidia/driver/usr/bin, "
                               "/usr/local/nvidia/bin): the MPS resources are not advertised",
                "apt-get install nvidia-compute-utils-$(cut -d. -f1 /sys/module/nvidia/version)"
                "-server   # the driver's MPS binaries (nvidia-cuda-mps-control, "
                "-server); drop -server for a desktop driver");
}

/* 0 when something listens on the socket at path (inside the node root). */
static int probe_socket(const char *root, const char *path)
{
        _cleanup_close_ int pfd = rootfs_open(root, path, O_PATH);
        if (pfd < 0)
                return pfd;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d", pfd);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 || errno == EAGAIN)
                return 0;
        return negative_errno();
}

/* One resource: "nvidia.com/gpu: ready" or why not; *ret_ok says which. */
static int resource_status(const struct doctor_options *o, const char *mps_root, const char *resource,
                           char **ret, bool *ret_ok)
{
        _cleanup_free_ char *started = NULL, *sock = NULL, *state_path = NULL, *state = NULL;
        if (asprintf(&started, "%s/%s/.started", mps_root, resource) < 0 ||
            asprintf(&sock, "%s/%s/pipe/control", mps_root, resource) < 0 ||
            asprintf(&state_path, "%s/%s/.state", mps_root, resource) < 0)
                return -ENOMEM;
        if (rootfs_read(o->root, state_path, STATE_MAX, &state, NULL) >= 0)
                state[strcspn(state, "\n")] = '\0';
        bool is_started = rootfs_exists(o->root, started);
        bool listens = probe_socket(o->root, sock) >= 0;
        *ret_ok = is_started && listens;
        int k;
        if (*ret_ok)
                k = asprintf(ret, "%s: ready", resource);
        else if (is_started)
                k = asprintf(ret,
                             "%s: .started is there but nothing listens on pipe/control (a daemon that "
                             "died without cleaning up)",
                             resource);
        else
                k = asprintf(ret, "%s: not ready (%s)", resource,
                             isempty(state) ? "no state recorded: not nvdp's daemon, or it never ran"
                                            : state);
        return k < 0 ? -ENOMEM : 0;
}

static int check_daemons(const struct doctor_options *o, doctor_report *r, const char *mps_root)
{
        /* A resource is a directory <vendor>/<name> holding pipe/. */
        _cleanup_strv_free_ char **vendors = NULL, **lines = NULL;
        (void)rootfs_list(o->root, mps_root, 256, &vendors);
        bool all_ok = true;
        STRV_FOREACH (v, vendors) {
                _cleanup_strv_free_ char **names = NULL;
                _cleanup_free_ char *vdir = NULL;
                if (asprintf(&vdir, "%s/%s", mps_root, *v) < 0)
                        return -ENOMEM;
                (void)rootfs_list(o->root, vdir, 256, &names);
                STRV_FOREACH (n, names) {
                        _cleanup_free_ char *pipe = NULL, *resource = NULL, *line = NULL;
                        struct stat st;
                        if (asprintf(&pipe, "%s/%s/pipe", vdir, *n) < 0 ||
                            asprintf(&resource, "%s/%s", *v, *n) < 0)
                                return -ENOMEM;
                        if (rootfs_stat(o->root, pipe, &st) < 0 || !S_ISDIR(st.st_mode))
                                continue;
                        bool ok;
                        int k = resource_status(o, mps_root, resource, &line, &ok);
                        if (k < 0 || (k = strv_push(&lines, line)) < 0)
                                return k;
                        line = NULL;
                        all_ok = all_ok && ok;
                }
        }
        if (!lines)
                return doctor_report_addf(
                        r, "mps.daemons", DOCTOR_WARN,
                        "kubectl label node NODE nvidia.com/mps.capable=true   # the MPS "
                        "daemon's DaemonSet runs on nodes with this label (GFD sets it for an "
                        "MPS config)",
                        "no MPS control daemon has run under %s", mps_root);
        _cleanup_free_ char *all = strv_join(lines, "; ");
        if (!all)
                return -ENOMEM;
        if (all_ok)
                return doctor_report_add(r, "mps.daemons", DOCTOR_OK, all, NULL);
        return doctor_report_add(
                r, "mps.daemons", DOCTOR_FAIL, all,
                "kubectl get pods -A -o wide | grep mps-control-daemon   # its log has one line "
                "per state change of each daemon");
}

static int check_shm(const struct doctor_options *o, doctor_report *r, const char *mps_root)
{
        _cleanup_free_ char *shm = NULL;
        if (asprintf(&shm, "%s/shm", mps_root) < 0)
                return -ENOMEM;
        struct stat st, parent;
        if (rootfs_stat(o->root, shm, &st) < 0 || !S_ISDIR(st.st_mode))
                return doctor_report_addf(
                        r, "mps.shm", DOCTOR_WARN,
                        "kubectl get pods -A | grep mps-control-daemon   # its init container "
                        "(mount-shm) mounts it",
                        "%s does not exist: MPS clients and servers share their /dev/shm there", shm);
        if (rootfs_stat(o->root, mps_root, &parent) >= 0 && parent.st_dev == st.st_dev)
                return doctor_report_addf(
                        r, "mps.shm", DOCTOR_WARN,
                        "kubectl get pods -A | grep mps-control-daemon   # its init container "
                        "(mount-shm) mounts it",
                        "%s is not a mount point: the shared /dev/shm is limited by the "
                        "filesystem under it, not a tmpfs of its own",
                        shm);
        return doctor_report_addf(r, "mps.shm", DOCTOR_OK, NULL, "%s is a mount point", shm);
}

int doctor_check_mps(const struct doctor_options *o, doctor_report *r)
{
        const char *mps_root = isempty(o->mps_root) ? DEFAULT_MPS_ROOT : o->mps_root;
        struct stat st;
        if (rootfs_stat(o->root, mps_root, &st) < 0 || !S_ISDIR(st.st_mode))
                return doctor_report_addf(
                        r, "mps", DOCTOR_SKIP, NULL,
                        "MPS is not in use on this node: %s does not exist (MPS_ROOT names "
                        "another MPS root)",
                        mps_root);
        int k;
        if ((k = check_control(o, r)) < 0 || (k = check_daemons(o, r, mps_root)) < 0)
                return k;
        return check_shm(o, r, mps_root);
}
