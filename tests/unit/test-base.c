/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "base/json.h"
#include "base/loop.h"
#include "base/parse.h"
#include "base/pidfile.h"
#include "base/root-path.h"
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

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

/* A tree with the links a driver root or an image has: relative, absolute (meaning inside the root),
 * climbing above the root, a loop. */
static void test_root_realpath(void **state)
{
        char root[] = "/tmp/nvdp-test-root-XXXXXX";
        assert_non_null(mkdtemp(root));
        char p[512];
        snprintf(p, sizeof p, "%s/usr", root);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof p, "%s/usr/lib", root);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof p, "%s/usr/lib/real.so", root);
        assert_int_equal(write_file_atomic(p, "", 0, 0644), 1);
        static const char *const links[][2] = {
                { "/lib", "usr/lib" },
                { "/usr/lib/abs.so", "/lib/real.so" }, /* absolute: inside the root */
                { "/usr/lib/up.so", "../../../../../../usr/lib/real.so" },
                { "/loop", "loop" },
        };
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                snprintf(p, sizeof p, "%s%s", root, links[i][0]);
                assert_int_equal(symlink(links[i][1], p), 0);
        }
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *local = NULL;
        assert_int_equal(root_realpath(root, "/lib/real.so", &a), 0);
        assert_string_equal(a, "/usr/lib/real.so");
        assert_int_equal(root_realpath(root, "/lib/abs.so", &b), 0);
        assert_string_equal(b, "/usr/lib/real.so");
        assert_int_equal(root_realpath(root, "/usr/lib/up.so", &c), 0);
        assert_string_equal(c, "/usr/lib/real.so");
        assert_int_equal(root_realpath(root, "/", &d), 0);
        assert_string_equal(d, "/");
        assert_int_equal(root_resolve_local(root, "/lib/abs.so", &local), 0);
        snprintf(p, sizeof p, "%s/usr/lib/real.so", root);
        assert_string_equal(local, p);
        char *x = NULL;
        assert_int_equal(root_realpath(root, "/lib/missing.so", &x), -ENOENT);
        assert_int_equal(root_realpath(root, "/loop", &x), -ELOOP);
        assert_int_equal(root_realpath(root, "/usr/lib/real.so/x", &x), -ENOTDIR);
        assert_int_equal(root_realpath(root, "lib", &x), -EINVAL);
        assert_null(x);
        nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool starts_with_b(const char *n)
{
        return n[0] == 'b';
}

static void test_dir_list(void **state)
{
        char dir[] = "/tmp/nvdp-test-dir-XXXXXX";
        assert_non_null(mkdtemp(dir));
        static const char *const names[] = { "b2", "a", "b1", ".hidden", "b10" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *p = NULL;
                assert_true(asprintf(&p, "%s/%s", dir, names[i]) > 0);
                assert_int_equal(write_file_atomic(p, "", 0, 0644), 1);
        }
        _cleanup_strv_free_ char **all = NULL, **b = NULL, **none = NULL;
        char **x = NULL;
        assert_int_equal(dir_list(dir, NULL, 100, &all), 0);
        _cleanup_free_ char *joined = strv_join(all, " ");
        assert_string_equal(joined, ".hidden a b1 b10 b2"); /* sorted, no "." nor ".." */
        assert_int_equal(dir_list(dir, starts_with_b, 3, &b), 0);
        assert_int_equal(strv_length(b), 3);
        assert_int_equal(dir_list(dir, starts_with_b, 2, &x), -E2BIG); /* bounded */
        assert_int_equal(dir_list("/nonexistent-nvdp", NULL, 10, &x), -ENOENT);
        assert_null(x);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        mkdir(dir, 0755);
        assert_int_equal(dir_list(dir, NULL, 10, &none), 0); /* empty: an empty list, not NULL */
        assert_non_null(none);
        assert_null(none[0]);
        rmdir(dir);
}

/* mkdir -p: parents made, an existing directory fine, a file in the way an error. */
static void test_mkdir_p(void **state)
{
        char dir[] = "/tmp/nvdp-test-mkdir-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *deep = NULL, *file = NULL, *under_file = NULL;
        assert_true(asprintf(&deep, "%s/a/b/c", dir) > 0);
        assert_true(asprintf(&file, "%s/f", dir) > 0);
        assert_true(asprintf(&under_file, "%s/f/x", dir) > 0);
        assert_int_equal(mkdir_p(deep, 0750), 0);
        struct stat st;
        assert_int_equal(stat(deep, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777 & ~(mode_t)022, 0750 & ~(mode_t)022);
        assert_int_equal(mkdir_p(deep, 0750), 0); /* already there */
        assert_int_equal(write_file_atomic(file, "", 0, 0644), 1);
        assert_int_equal(mkdir_p(file, 0755), -ENOTDIR);
        assert_int_equal(mkdir_p(under_file, 0755), -ENOTDIR);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* YAML into the JSON trees: block and flow style, every scalar a string; aliases, keys that are not
 * scalars, too deep, too large and broken documents refused. */
static void test_json_parse_yaml(void **state)
{
        static const char doc[] = "---\n"
                                  "cdiVersion: 0.5.0\n"
                                  "kind: nvidia.com/gpu\n"
                                  "annotations: {a: \"1\", \"b.c/d\": yes}\n"
                                  "devices:\n"
                                  "- name: all\n"
                                  "  containerEdits:\n"
                                  "    deviceNodes:\n"
                                  "    - path: /dev/nvidia0\n"
                                  "    - {path: /dev/nvidiactl}\n"
                                  "---\n"
                                  "second: document\n";
        _cleanup_json_ json_object *o = NULL;
        assert_int_equal(json_parse_yaml(doc, strlen(doc), 4096, 8, &o), 0);
        assert_string_equal(json_text(json_get(o, "cdiVersion")), "0.5.0");
        assert_string_equal(json_text(json_get(o, "kind")), "nvidia.com/gpu");
        assert_string_equal(
                json_text(json_get_path(o, (const char *const[]){ "annotations", "b.c/d", NULL })), "yes");
        json_object *nodes = json_get(json_get(json_array_at(json_get(o, "devices"), 0), "containerEdits"),
                                      "deviceNodes");
        assert_int_equal(json_array_size(nodes), 2);
        assert_string_equal(json_text(json_get(json_array_at(nodes, 1), "path")), "/dev/nvidiactl");
        assert_null(json_get(o, "second")); /* the first document only */

        /* JSON is YAML. */
        static const char json[] = "{\"kind\": \"x/y\", \"devices\": [{\"name\": \"0\"}]}";
        _cleanup_json_ json_object *j = NULL;
        assert_int_equal(json_parse_yaml(json, strlen(json), 4096, 8, &j), 0);
        assert_string_equal(json_text(json_get(json_array_at(json_get(j, "devices"), 0), "name")), "0");

        static const char *const bad[] = {
                "a: &x [1]\nb: *x\n",  /* alias */
                "? [a]\n: b\n",        /* a key that is a sequence */
                "a: [\n",              /* cut short */
                "",                    /* empty */
                "[[[[[[[[[1]]]]]]]]]", /* deeper than 8 */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_object *x = NULL;
                assert_int_equal(json_parse_yaml(bad[i], strlen(bad[i]), 4096, 8, &x), -EINVAL);
                assert_null(x);
        }
        json_object *x = NULL;
        assert_int_equal(json_parse_yaml(doc, strlen(doc), 10, 8, &x), -EMSGSIZE);
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
                cmocka_unit_test(test_root_realpath),     cmocka_unit_test(test_dir_list),
                cmocka_unit_test(test_json_parse_yaml),   cmocka_unit_test(test_mkdir_p),
                cmocka_unit_test(test_open_regular_file), cmocka_unit_test(test_pidfile),
        };
        return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
