/* SPDX-License-Identifier: Apache-2.0 */
#include "mps/mps-root.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/error.h"
#include "base/fileio.h"

#define MEMINFO_MAX (64 * 1024)

static bool is_dir(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int mps_root_resolve(const char *configured, char **ret, char **ret_error)
{
        const char *pick = NULL;
        if (!isempty(configured) && is_dir(configured))
                pick = configured;
        else if (is_dir(MPS_CONTAINER_ROOT))
                pick = MPS_CONTAINER_ROOT;
        if (!pick) {
                if (isempty(configured))
                        return error_set(ret_error, -ENOENT,
                                         "the MPS root " MPS_CONTAINER_ROOT
                                         " is not a directory: mount the host's "
                                         "MPS root there, or name it with --mps-root (MPS_ROOT)");
                return error_set(ret_error, -ENOENT,
                                 "the MPS root is not a directory here: neither %s (--mps-root, MPS_ROOT or "
                                 "flags.mpsRoot) nor " MPS_CONTAINER_ROOT
                                 " (where upstream's chart mounts it)",
                                 configured);
        }
        char *copy = strdup(pick);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

char *mps_path(const char *root, const char *resource, const char *leaf)
{
        char *p;
        int r;
        if (resource && leaf)
                r = asprintf(&p, "%s/%s/%s", root, resource, leaf);
        else
                r = asprintf(&p, "%s/%s", root, resource ? resource : strempty(leaf));
        return r < 0 ? NULL : p;
}

int mps_socket_probe(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int pfd = -EBADF;
        if (strlen(path) < sizeof sa.sun_path)
                memcpy(sa.sun_path, path, strlen(path) + 1);
        else {
                /* Too long for sun_path: connect through the magic link of an O_PATH descriptor. */
                pfd = open(path, O_PATH | O_CLOEXEC);
                if (pfd < 0)
                        return negative_errno();
                snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d", pfd);
        }
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 || errno == EAGAIN || errno == EINPROGRESS)
                return 0;
        return errno == ENOTSOCK ? -ECONNREFUSED : negative_errno();
}

int mps_resource_ready(const char *root, const char *resource, bool probe)
{
        _cleanup_free_ char *started = mps_path(root, resource, MPS_STARTED_FILE);
        _cleanup_free_ char *sock = mps_path(root, resource, MPS_PIPE_DIR "/" MPS_CONTROL_SOCKET);
        if (!started || !sock)
                return -ENOMEM;
        if (access(started, F_OK) < 0)
                return errno == ENOENT || errno == ENOTDIR ? 0 : negative_errno();
        if (!probe)
                return 1;
        int r = mps_socket_probe(sock);
        if (r == -ECONNREFUSED || r == -ENOENT || r == -ENOTDIR)
                return 0;
        return r < 0 ? r : 1;
}

int mps_mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1;; s++) {
                bool end = *s == '\0';
                if (*s != '/' && !end)
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                if (end)
                        break;
                *s = '/';
        }
        return is_dir(path) ? 0 : -ENOTDIR;
}

void mps_shm_size(const char *meminfo, char *ret, size_t size)
{
        snprintf(ret, size, "65536k");
        const char *line = meminfo;
        while (line && !startswith(line, "MemTotal:")) {
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        unsigned long long kb;
        char unit[2] = "";
        if (line && sscanf(line, "MemTotal: %llu %1[A-Za-z]", &kb, unit) >= 1)
                snprintf(ret, size, "%llu%s", kb / 2, unit);
}

int mps_mount_shm(const char *root, const char *meminfo_path, char **ret_error)
{
        _cleanup_free_ char *shm = mps_path(root, NULL, MPS_SHM_DIR), *meminfo = NULL, *options = NULL;
        if (!shm)
                return -ENOMEM;
        /* Whatever an earlier run mounted goes first (upstream: CleanupMountPoint), at most a few layers. */
        for (int i = 0; i < 16 && umount2(shm, UMOUNT_NOFOLLOW) == 0; i++)
                ;
        int r = mps_mkdir_p(shm, 0755);
        if (r < 0)
                return error_set(ret_error, r, "cannot create %s: %s", shm, strerror(-r));
        char size[64];
        r = read_full_file(meminfo_path, MEMINFO_MAX, &meminfo, NULL);
        mps_shm_size(r < 0 ? NULL : meminfo, size, sizeof size);
        if (asprintf(&options, "size=%s", size) < 0)
                return -ENOMEM;
        if (mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME, options) < 0) {
                r = negative_errno();
                return error_set(ret_error, r, "cannot mount a tmpfs (%s) on %s: %s", options, shm,
                                 strerror(-r));
        }
        return 0;
}
