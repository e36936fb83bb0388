/* SPDX-License-Identifier: Apache-2.0 */
/* Starts a device plugin in a mount namespace of its own in which /var/lib/kubelet/device-plugins (the path
 * NVIDIA's plugin hard-codes for its sockets) is DIR, so the bench's kubelet stand-in and the plugin meet
 * in a scratch directory and nothing on the host is touched. Writes the CLOCK_MONOTONIC time just before
 * exec to STAMP (nanoseconds, one line): "process start" for the start-up figure, without this wrapper's
 * own cost. The plugin keeps this process's pid.
 * -b SRC DST (repeatable) also binds SRC over DST in that namespace: the simulated node's sysfs and
 * /proc/driver files for a plugin that reads the fixed host paths.
 * Usage: nsexec [-b SRC DST]... DIR STAMP PROGRAM [ARG...] */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define streq(a, b) (strcmp((a), (b)) == 0)

#define PLUGIN_DIR "/var/lib/kubelet/device-plugins"

static int fail(const char *what, const char *path)
{
        fprintf(stderr, "nsexec: %s %s: %s\n", what, path, strerror(errno));
        return 127;
}

int main(int argc, char **argv)
{
        int first = 1;
        while (first + 2 < argc && streq(argv[first], "-b"))
                first += 3;
        if (argc - first < 3) {
                fprintf(stderr, "usage: nsexec [-b SRC DST]... DIR STAMP PROGRAM [ARG...]\n");
                return 2;
        }
        if (unshare(CLONE_NEWNS) < 0)
                return fail("unshare", "mount namespace");
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return fail("make private", "/");
        struct stat st;
        if (stat(PLUGIN_DIR, &st) < 0) {
                /* No kubelet on this host: an empty tmpfs over /var/lib (in this namespace only) holds the
                 * mount point; neither plugin reads anything else under /var/lib. */
                if (mount("tmpfs", "/var/lib", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
                        return fail("mount tmpfs on", "/var/lib");
                if (mkdir("/var/lib/kubelet", 0755) < 0 || mkdir(PLUGIN_DIR, 0755) < 0)
                        return fail("mkdir", PLUGIN_DIR);
        }
        if (mount(argv[first], PLUGIN_DIR, NULL, MS_BIND, NULL) < 0)
                return fail("bind mount over", PLUGIN_DIR);
        for (int i = 1; i < first; i += 3)
                if (mount(argv[i + 1], argv[i + 2], NULL, MS_BIND | MS_REC, NULL) < 0)
                        return fail("bind mount over", argv[i + 2]);

        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        FILE *f = fopen(argv[first + 1], "we");
        if (!f)
                return fail("open", argv[first + 1]);
        fprintf(f, "%" PRIu64 "\n", (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
        if (fclose(f) != 0)
                return fail("write", argv[first + 1]);
        execvp(argv[first + 2], argv + first + 2);
        return fail("exec", argv[first + 2]);
}
