/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "base/loop.h"
#include "base/parse.h"
#include "base/pidfile.h"
#include "base/strv.h"

static void test_strv_split_join(void **state)
{
        _cleanup_strv_free_ char **l = NULL;
        assert_int_equal(strv_split(" envvar, cdi-cri ,,volume-mounts", ",", &l), 0);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[0], "envvar");
        assert_string_equal(l[1], "cdi-cri");
        assert_string_equal(l[2], "volume-mounts");
        _cleanup_free_ char *j = strv_join(l, "|");
        assert_string_equal(j, "envvar|cdi-cri|volume-mounts");
        strv_sort(l);
        assert_string_equal(l[0], "cdi-cri");
        assert_true(strv_contains(l, "envvar"));
        assert_false(strv_contains(l, "env"));
}

static void test_parse_duration(void **state)
{
        uint64_t ns;
        assert_int_equal(parse_duration("60s", &ns), 0);
        assert_true(ns == 60 * NSEC_PER_SEC);
        assert_int_equal(parse_duration("1m30s", &ns), 0);
        assert_true(ns == 90 * NSEC_PER_SEC);
        assert_int_equal(parse_duration("500ms", &ns), 0);
        assert_true(ns == 500 * NSEC_PER_MSEC);
        assert_int_equal(parse_duration("5m", &ns), 0);
        assert_true(ns == 300 * NSEC_PER_SEC);
        assert_int_equal(parse_duration("1000", &ns), 0);
        assert_true(ns == 1000);
        assert_int_equal(parse_duration("infinite", &ns), 0);
        assert_true(ns == DURATION_INFINITE);
        assert_int_equal(parse_duration("10 s", &ns), -EINVAL);
        assert_int_equal(parse_duration("s", &ns), -EINVAL);
        assert_int_equal(parse_duration("", &ns), -EINVAL);
}

static void test_parse_bool_int(void **state)
{
        bool b;
        assert_int_equal(parse_bool("TRUE", &b), 0);
        assert_true(b);
        assert_int_equal(parse_bool("0", &b), 0);
        assert_false(b);
        assert_int_equal(parse_bool("maybe", &b), -EINVAL);
        uint64_t u;
        assert_int_equal(parse_uint64("18446744073709551615", &u), 0);
        assert_int_equal(parse_uint64("18446744073709551616", &u), -ERANGE);
        assert_int_equal(parse_uint64("12a", &u), -EINVAL);
        int64_t i;
        assert_int_equal(parse_int64("-1", &i), 0);
        assert_true(i == -1);
}

static void test_write_file_atomic(void **state)
{
        char dir[] = "/tmp/nvdp-test-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *path = path_join_root(dir, "/labels");
        assert_int_equal(write_file_atomic(path, "a=1\n", 4, 0644), 1);
        struct stat st1, st2;
        assert_int_equal(stat(path, &st1), 0);
        /* same content: not rewritten, same inode */
        assert_int_equal(write_file_atomic(path, "a=1\n", 4, 0644), 0);
        assert_int_equal(stat(path, &st2), 0);
        assert_true(st1.st_ino == st2.st_ino);
        assert_int_equal(write_file_atomic(path, "a=2\n", 4, 0644), 1);
        _cleanup_free_ char *s = NULL;
        assert_int_equal(read_full_file(path, 100, &s, NULL), 0);
        assert_string_equal(s, "a=2\n");
        assert_int_equal(read_full_file(path, 2, &s, NULL), -EFBIG);
        unlink(path);
        rmdir(dir);
}

/* What readers of config, label and spec files meet at the path: never a block, regular files only. The
 * FIFO cases hung for ever before (open() waits for a writer). */
static void test_open_regular_file(void **state)
{
        char dir[] = "/tmp/nvdp-test-regular-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *file = NULL, *fifo = NULL, *link = NULL, *out = NULL;
        assert_true(asprintf(&file, "%s/config.yaml", dir) > 0);
        assert_true(asprintf(&fifo, "%s/fifo", dir) > 0);
        assert_true(asprintf(&link, "%s/link", dir) > 0);
        assert_true(asprintf(&out, "%s/features.d", dir) > 0);
        assert_int_equal(write_file_atomic(file, "a: 1\n", 5, 0644), 1);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        assert_int_equal(symlink(file, link), 0);

        char *text = NULL;
        assert_int_equal(read_full_file(fifo, 1024, &text, NULL), -EBADFD);
        assert_int_equal(read_full_file(dir, 1024, &text, NULL), -EISDIR);
        assert_int_equal(read_full_file("/dev/null", 1024, &text, NULL), -EBADFD);
        assert_null(text);
        assert_string_equal(file_error_string(-EBADFD), "not a regular file (a FIFO, socket or device)");
        assert_true(path_is_dev_null("/dev/null"));
        assert_false(path_is_dev_null(file));
        assert_false(path_is_dev_null(fifo));
        /* A symlink is followed unless O_NOFOLLOW says it never belongs there. */
        assert_int_equal(read_full_file(link, 1024, &text, NULL), 0);
        assert_string_equal(text, "a: 1\n");
        text = mfree(text);
        assert_int_equal(open_regular_file(link, O_NOFOLLOW), -ELOOP);
        int fd = open_regular_file(file, O_NOFOLLOW);
        assert_true(fd >= 0);
        safe_close(fd);

        /* Our own output file: a FIFO or a symlink swapped in is replaced, neither read nor followed. */
        assert_int_equal(rename(fifo, out), 0);
        assert_int_equal(write_file_atomic(out, "x=1\n", 4, 0644), 1);
        assert_int_equal(read_full_file(out, 1024, &text, NULL), 0);
        assert_string_equal(text, "x=1\n");
        text = mfree(text);
        assert_int_equal(unlink(out), 0);
        assert_int_equal(symlink(file, out), 0);
        assert_int_equal(write_file_atomic(out, "a: 1\n", 5, 0644), 1); /* same bytes, but a link: written */
        struct stat st;
        assert_int_equal(lstat(out, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(write_file_atomic(out, "a: 1\n", 5, 0644), 0);

        _cleanup_free_ char *cmd = NULL;
        assert_true(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
        assert_int_equal(system(cmd), 0);
}

static void test_path_join_root(void **state)
{
        _cleanup_free_ char *a = path_join_root("/", "/sys/x");
        _cleanup_free_ char *b = path_join_root("/fx/", "/sys/x");
        _cleanup_free_ char *c = path_join_root(NULL, "/sys/x");
        assert_string_equal(a, "/sys/x");
        assert_string_equal(b, "/fx/sys/x");
        assert_string_equal(c, "/sys/x");
}

static int fired;
static void on_timer(loop_source *s, void *userdata)
{
        fired++;
        if (fired == 2)
                loop_exit(loop_source_get_loop(s), 7);
        else
                loop_timer_arm(s, 1000000);
}

static void test_loop_timer(void **state)
{
        _cleanup_(loop_freep) loop *l = NULL;
        assert_int_equal(loop_new(&l), 0);
        assert_int_equal(loop_add_timer(l, 1000000, on_timer, NULL, NULL), 0);
        assert_int_equal(loop_run(l), 7);
        assert_int_equal(fired, 2);
}

static void put(const char *dir, const char *name, const char *text)
{
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

/* The pid file of nvdp plugin --rescan: this process found by its own record; a process of another PID
 * namespace found by its innermost pid and start time (a /proc written here); a stale or bad file refused.
 */
static void test_pidfile(void **state)
{
        char dir[] = "/tmp/nvdp-test-pidfile-XXXXXX", path[600], proc[600], p4242[700];
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/plugin.pid", dir);
        pid_t pid = 0;
        assert_int_equal(pidfile_find(path, NULL, &pid), -ENOENT);
        assert_int_equal(pidfile_write(path), 0);
        assert_int_equal(pidfile_find(path, NULL, &pid), 0);
        assert_int_equal(pid, getpid());

        /* a container's plugin seen from the host: pid 7 in its namespace is 4242 here */
        snprintf(proc, sizeof proc, "%s/proc", dir);
        snprintf(p4242, sizeof p4242, "%s/4242", proc);
        assert_int_equal(mkdir(proc, 0755), 0);
        assert_int_equal(mkdir(p4242, 0755), 0);
        put(p4242, "stat",
            "4242 (nvdp plugin) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 987654 1 2\n");
        put(p4242, "status", "Name:\tnvdp\nPid:\t4242\nNSpid:\t4242\t7\nPPid:\t1\n");
        put(dir, "plugin.pid", "7 987654\n");
        pid = 0;
        assert_int_equal(pidfile_find(path, proc, &pid), 0);
        assert_int_equal(pid, 4242);
        /* the pid reused since by a process started at another time: not the plugin */
        put(dir, "plugin.pid", "7 987655\n");
        assert_int_equal(pidfile_find(path, proc, &pid), -ESRCH);
        put(dir, "plugin.pid", "seven\n");
        assert_int_equal(pidfile_find(path, proc, &pid), -EBADMSG);

        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_strv_split_join),   cmocka_unit_test(test_parse_duration),
                cmocka_unit_test(test_parse_bool_int),    cmocka_unit_test(test_write_file_atomic),
                cmocka_unit_test(test_path_join_root),    cmocka_unit_test(test_loop_timer),
                cmocka_unit_test(test_open_regular_file), cmocka_unit_test(test_pidfile),
        };
        return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
