/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a node filesystem under `doctor --root`: symlinks, absolute or climbing with "..", resolve
 * inside the root (base/root-path.c resolves them itself), also where openat2 is missing or refused (a
 * seccomp filter makes it fail with ENOSYS, as on kernels before 5.6, or EPERM, as container runtimes'
 * default profiles did). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "base/fileio.h"
#include "base/strv.h"
#include "doctor/rootfs.h"

static char root[] = "/tmp/nvdp-test-rootfs-XXXXXX";
static char outside[] = "/tmp/nvdp-test-rootfs-outside-XXXXXX";

static char *at(const char *base, const char *path)
{
        char *p = NULL;
        assert_true(asprintf(&p, "%s%s", base, path) > 0);
        return p;
}

static void put(const char *base, const char *path, const char *text)
{
        _cleanup_free_ char *p = at(base, path);
        _cleanup_free_ char *dir = strdup(p);
        *strrchr(dir, '/') = '\0';
        _cleanup_free_ char *cmd = NULL;
        assert_true(asprintf(&cmd, "mkdir -p '%s'", dir) > 0);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(write_file_atomic(p, text, strlen(text), 0644), 1);
}

static void link_at(const char *target, const char *path)
{
        _cleanup_free_ char *p = at(root, path);
        assert_int_equal(symlink(target, p), 0);
}

/* A node root whose symlinks point where they would escape if followed on the host: the same names
 * exist under `outside` with other content. */
static int setup(void **state)
{
        assert_non_null(mkdtemp(root));
        assert_non_null(mkdtemp(outside));
        put(root, "/run/containerd/config.toml", "inside-run\n");
        put(root, "/etc/os-release", "inside-etc\n");
        put(root, "/etc/passwd", "inside-passwd\n");
        put(outside, "/run/containerd/config.toml", "OUTSIDE\n");
        _cleanup_free_ char *var = at(root, "/var");
        assert_int_equal(mkdir(var, 0755), 0);
        _cleanup_free_ char *out_run = at(outside, "/run");
        link_at("/run", "/var/run");                           /* absolute, to a directory */
        link_at("/etc/os-release", "/os-release");             /* absolute, to a file */
        link_at("../../../../../../etc/passwd", "/var/climb"); /* climbs above the root */
        link_at(out_run, "/escape");                           /* absolute, naming the outside dir */
        link_at("/loop-b", "/loop-a");
        link_at("/loop-a", "/loop-b");
        return 0;
}

static int teardown(void **state)
{
        _cleanup_free_ char *cmd = NULL;
        assert_true(asprintf(&cmd, "rm -rf '%s' '%s'", root, outside) > 0);
        assert_int_equal(system(cmd), 0);
        return 0;
}

/* The checks, as plain code returning a failure sentence (they also run in a forked child). */
static const char *check_reads(void)
{
        static char why[512];
        static const struct {
                const char *path, *want;
        } cases[] = {
                { "/os-release", "inside-etc\n" },
                { "/var/run/containerd/config.toml", "inside-run\n" },
                { "/var/climb", "inside-passwd\n" },
                { "/var/../var/run/../run/containerd/./config.toml", "inside-run\n" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = NULL;
                int r = rootfs_read(root, cases[i].path, 4096, &text, NULL);
                if (r < 0 || !streq(text, cases[i].want)) {
                        snprintf(why, sizeof why, "%s: %s", cases[i].path, r < 0 ? strerror(-r) : text);
                        return why;
                }
        }
        /* A link to the outside's own path is that path inside the root, where nothing is. */
        _cleanup_free_ char *escaped = at("/escape", "/containerd/config.toml");
        if (rootfs_exists(root, escaped))
                return "/escape followed to the outside";
        struct stat st;
        if (rootfs_stat(root, "/var/run", &st) < 0 || !S_ISDIR(st.st_mode))
                return "/var/run is not the root's /run directory";
        if (!rootfs_exists(root, "/") || !rootfs_exists(root, "/var/run/containerd/"))
                return "directories by their own name";
        int r = rootfs_stat(root, "/loop-a", &st);
        if (r != -ELOOP) {
                snprintf(why, sizeof why, "/loop-a: want ELOOP, got %s", strerror(-r));
                return why;
        }
        if (rootfs_stat(root, "/etc/os-release/x", &st) != -ENOTDIR)
                return "a file used as a directory is not ENOTDIR";
        _cleanup_strv_free_ char **names = NULL;
        if (rootfs_list(root, "/var/run/containerd", 16, &names) < 0 || strv_length(names) != 1 ||
            !streq(names[0], "config.toml"))
                return "listing /var/run/containerd";
        return NULL;
}

static void test_with_openat2(void **state)
{
        const char *why = check_reads();
        if (why)
                fail_msg("%s", why);
}

/* Runs check_reads in a child whose openat2 fails with error, as the kernel or a seccomp profile makes
 * it. */
static void run_without_openat2(int error)
{
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct sock_filter filter[] = {
                        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
                        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (error & SECCOMP_RET_DATA)),
                        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
                };
                struct sock_fprog prog = { .len = ELEMENTSOF(filter), .filter = filter };
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                        _exit(errno == EINVAL ? 77 : 2); /* qemu-user (the arm64 run) has no seccomp */
                /* the filter works: openat2 itself is refused now */
                if (syscall(SYS_openat2, AT_FDCWD, "/", NULL, 0) >= 0 || errno != error)
                        _exit(3);
                const char *why = check_reads();
                if (why) {
                        fprintf(stderr, "without openat2 (%s): %s\n", strerror(error), why);
                        _exit(1);
                }
                _exit(0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77)
                skip();
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_without_openat2_enosys(void **state)
{
        run_without_openat2(ENOSYS);
}

static void test_without_openat2_eperm(void **state)
{
        run_without_openat2(EPERM);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_with_openat2),
                cmocka_unit_test(test_without_openat2_enosys),
                cmocka_unit_test(test_without_openat2_eperm),
        };
        return cmocka_run_group_tests_name("rootfs", tests, setup, teardown);
}
