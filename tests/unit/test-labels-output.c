/* SPDX-License-Identifier: Apache-2.0 */
/* The features.d file writer (stable file: same labels, same inode and mtime; never missing) and the
 * Node merge-patch body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "base/parse.h"
#include "base/strv.h"
#include "labels/labels.h"

static labels *make(const char *const *kv)
{
        labels *l = NULL;
        assert_int_equal(labels_new(&l), 0);
        for (size_t i = 0; kv[i]; i += 2)
                assert_int_equal(labels_set(l, kv[i], kv[i + 1]), 0);
        return l;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static int setup_dir(void **state)
{
        char *dir = strdup("/tmp/nvdp-test-labels-XXXXXX");
        if (!dir || !mkdtemp(dir))
                return -1;
        *state = dir;
        return 0;
}

static int teardown_dir(void **state)
{
        nftw(*state, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(*state);
        return 0;
}

static size_t count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        assert_non_null(d);
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_write_stable(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *path = NULL, *text = NULL;
        assert_true(asprintf(&path, "%s/features.d/gfd", dir) > 0);
        _cleanup_(labels_freep) labels *a = make((const char *const[]){
                "nvidia.com/gpu.count", "8", "nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3", NULL });
        _cleanup_(labels_freep) labels *b = make((const char *const[]){
                "nvidia.com/gpu.count", "8", "nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3", NULL });
        _cleanup_(labels_freep) labels *c = make((const char *const[]){
                "nvidia.com/gpu.count", "7", "nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3", NULL });

        /* First write creates the missing features.d directory and the file, mode 0644. */
        assert_int_equal(labels_write(a, path), 1);
        assert_int_equal(read_full_file(path, 4096, &text, NULL), 0);
        assert_string_equal(text, "nvidia.com/gpu.count=8\nnvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3\n");
        struct stat st1, st2, st3;
        assert_int_equal(stat(path, &st1), 0);
        assert_int_equal(st1.st_mode & 07777, 0644);

        /* Same labels again (a restarted gfd builds an equal set): the file is not touched. */
        usleep(20 * 1000);
        assert_int_equal(labels_write(b, path), 0);
        assert_int_equal(stat(path, &st2), 0);
        assert_true(st1.st_ino == st2.st_ino);
        assert_true(st1.st_mtim.tv_sec == st2.st_mtim.tv_sec && st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec);

        /* Changed labels: replaced by rename (new inode), never a truncated file in between. */
        assert_int_equal(labels_write(c, path), 1);
        assert_int_equal(stat(path, &st3), 0);
        assert_true(st3.st_ino != st1.st_ino);
        text = mfree(text);
        assert_int_equal(read_full_file(path, 4096, &text, NULL), 0);
        assert_string_equal(text, "nvidia.com/gpu.count=7\nnvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3\n");

        /* No temp files left behind: the directory holds the one file. */
        _cleanup_free_ char *sub = NULL;
        assert_true(asprintf(&sub, "%s/features.d", dir) > 0);
        assert_int_equal(count_entries(sub), 1);
}

static void test_write_unwritable(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *path = NULL;
        assert_true(asprintf(&path, "%s/file/gfd", dir) > 0);
        _cleanup_free_ char *blocker = NULL;
        assert_true(asprintf(&blocker, "%s/file", dir) > 0);
        assert_int_equal(write_file_atomic(blocker, "x", 1, 0644), 1);
        _cleanup_(labels_freep) labels *a = make((const char *const[]){ "nvidia.com/gpu.count", "8", NULL });
        /* The parent is a regular file: an error, not a crash or a partial write. */
        assert_true(labels_write(a, path) < 0);
}

static void test_patch_no_previous(void **state)
{
        _cleanup_(labels_freep) labels *l = make((const char *const[]){
                "nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count", "8", NULL });
        _cleanup_free_ char *json = NULL;
        assert_int_equal(labels_node_patch(l, NULL, &json), 0);
        assert_string_equal(json, "{\"metadata\":{\"labels\":{"
                                  "\"nvidia.com/gpu.count\":\"8\","
                                  "\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"},"
                                  "\"annotations\":{\"nvdp.nvidia.com/gfd-labels\":"
                                  "\"nvidia.com/gpu.count,nvidia.com/gpu.product\"}}}");
}

static void test_patch_with_previous(void **state)
{
        /* Last time we applied count, replicas and a MIG label; now replicas and the MIG label are gone.
         * The annotation also names labels that are not ours (edited by hand): those stay untouched. */
        _cleanup_(labels_freep) labels *l = make((const char *const[]){ "nvidia.com/gpu.count", "8", NULL });
        _cleanup_strv_free_ char **previous = NULL;
        assert_int_equal(labels_node_previous("nvidia.com/gpu.count,nvidia.com/gpu.replicas, "
                                              "kubernetes.io/hostname,nvidia.com/mig-1g.5gb.count",
                                              &previous),
                         0);
        assert_int_equal(strv_length(previous), 4);
        _cleanup_free_ char *json = NULL;
        assert_int_equal(labels_node_patch(l, previous, &json), 0);
        assert_string_equal(json,
                            "{\"metadata\":{\"labels\":{"
                            "\"nvidia.com/gpu.count\":\"8\","
                            "\"nvidia.com/gpu.replicas\":null,"
                            "\"nvidia.com/mig-1g.5gb.count\":null},"
                            "\"annotations\":{\"nvdp.nvidia.com/gfd-labels\":\"nvidia.com/gpu.count\"}}}");

        /* Empty or missing annotation: nothing to remove. */
        _cleanup_strv_free_ char **none = NULL;
        assert_int_equal(labels_node_previous(NULL, &none), 0);
        assert_int_equal(strv_length(none), 0);
        _cleanup_free_ char *json2 = NULL;
        assert_int_equal(labels_node_patch(l, none, &json2), 0);
        assert_string_equal(json2,
                            "{\"metadata\":{\"labels\":{\"nvidia.com/gpu.count\":\"8\"},"
                            "\"annotations\":{\"nvdp.nvidia.com/gfd-labels\":\"nvidia.com/gpu.count\"}}}");
}

static void test_patch_escaping(void **state)
{
        /* Values come from the machine (DMI strings); the body must stay valid JSON whatever they hold. */
        _cleanup_(labels_freep) labels *l =
                make((const char *const[]){ "nvidia.com/x", "a\"b\\c\n\t\x01/é", NULL });
        _cleanup_free_ char *json = NULL;
        assert_int_equal(labels_node_patch(l, NULL, &json), 0);
        assert_string_equal(json,
                            "{\"metadata\":{\"labels\":{\"nvidia.com/x\":\"a\\\"b\\\\c\\n\\t\\u0001/é\"},"
                            "\"annotations\":{\"nvdp.nvidia.com/gfd-labels\":\"nvidia.com/x\"}}}");
}

static void test_patch_empty(void **state)
{
        /* A node whose GPUs went away: every label we set is removed, the annotation emptied. */
        _cleanup_(labels_freep) labels *l = make((const char *const[]){ NULL });
        char *previous[] = { (char *)"nvidia.com/gpu.count", NULL };
        _cleanup_free_ char *json = NULL;
        assert_int_equal(labels_node_patch(l, previous, &json), 0);
        assert_string_equal(json, "{\"metadata\":{\"labels\":{\"nvidia.com/gpu.count\":null},"
                                  "\"annotations\":{\"nvdp.nvidia.com/gfd-labels\":\"\"}}}");
}

static void test_node_apply_rejects_a_bad_node_name(void **state)
{
        _cleanup_(labels_freep) labels *l = make((const char *const[]){ "nvidia.com/gpu.count", "8", NULL });
        /* the name goes into the request path: checked before any request (the client is not touched) */
        assert_int_equal(labels_node_apply(NULL, "../nodes/x", l, NULL, NULL), -EINVAL);
        assert_int_equal(labels_node_apply(NULL, "", l, NULL, NULL), -EINVAL);
}

/* The annotation recording what we applied may name many keys (anyone who can write the Node can make it
 * so): reading it and building the patch that removes them is linear (it was quadratic). As a ratio: 8
 * times the keys within 32 times the time. */
static uint64_t time_patch(size_t n)
{
        size_t cap = n * 32 + 1, len = 0;
        _cleanup_free_ char *annotation = malloc(cap);
        assert_non_null(annotation);
        for (size_t i = 0; i < n; i++)
                len += (size_t)snprintf(annotation + len, cap - len, "%snvidia.com/old-%zu", i ? "," : "",
                                        i);
        _cleanup_(labels_freep) labels *l = NULL;
        assert_int_equal(labels_new(&l), 0);
        assert_int_equal(labels_set(l, "nvidia.com/gpu.count", "8"), 0);
        uint64_t t = now_nsec();
        _cleanup_strv_free_ char **previous = NULL;
        _cleanup_free_ char *json = NULL;
        assert_int_equal(labels_node_previous(annotation, &previous), 0);
        assert_int_equal(labels_node_patch(l, previous, &json), 0);
        t = now_nsec() - t;
        assert_int_equal(strv_length(previous), n);
        assert_non_null(strstr(json, "\"nvidia.com/old-0\":null"));
        return t;
}

static void test_patch_linear(void **state)
{
        uint64_t small = time_patch(12500), big = time_patch(100000);
        print_message("patch removing 12,500 recorded labels: %.1f ms, 100,000: %.1f ms\n", small / 1e6,
                      big / 1e6);
        assert_true(big < 32 * small);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_write_stable, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_write_unwritable, setup_dir, teardown_dir),
                cmocka_unit_test(test_patch_no_previous),
                cmocka_unit_test(test_patch_with_previous),
                cmocka_unit_test(test_patch_escaping),
                cmocka_unit_test(test_patch_empty),
                cmocka_unit_test(test_node_apply_rejects_a_bad_node_name),
                cmocka_unit_test(test_patch_linear),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
