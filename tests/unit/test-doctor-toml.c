/* SPDX-License-Identifier: Apache-2.0 */
/* The doctor's TOML reader (containerd configs) and JSON reader (kubectl output). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/json.h"
#include "base/strv.h"
#include "doctor/toml.h"

static toml *parse_ok(const char *text)
{
        toml *t = NULL;
        unsigned line = 0;
        const char *why = NULL;
        int r = toml_parse(text, strlen(text), &t, &line, &why);
        if (r < 0)
                fail_msg("parse failed at line %u: %s", line, why);
        return t;
}

static void expect_error(const char *text, int err, unsigned line, const char *why)
{
        toml *t = NULL;
        unsigned l = 0;
        const char *w = NULL;
        assert_int_equal(toml_parse(text, strlen(text), &t, &l, &w), err);
        assert_null(t);
        assert_int_equal(l, line);
        assert_string_equal(w, why);
}

static void test_toml_containerd_v2(void **state)
{
        _cleanup_(toml_freep) toml *t =
                parse_ok("# comment\n"
                         "version = 2\n"
                         "imports = [\"/etc/containerd/conf.d/*.toml\",\n"
                         "           '/etc/other.toml', # trailing comment\n"
                         "]\n"
                         "\n"
                         "[plugins]\n"
                         "  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia]\n"
                         "    privileged_without_host_devices = false\n"
                         "    runtime_type = \"io.containerd.runc.v2\"\n"
                         "    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia.options]\n"
                         "      BinaryName = \"/usr/bin/nvidia-container-runtime\"\n"
                         "      SystemdCgroup = true\n");
        static const char *const version[] = { "version", NULL };
        int64_t v = 0;
        assert_int_equal(toml_get_integer(t, version, &v), 0);
        assert_int_equal(v, 2);

        static const char *const imports[] = { "imports", NULL };
        char *const *l = toml_get_string_array(t, imports);
        assert_non_null(l);
        assert_int_equal(strv_length(l), 2);
        assert_string_equal(l[0], "/etc/containerd/conf.d/*.toml");
        assert_string_equal(l[1], "/etc/other.toml");

        static const char *const bin[] = { "plugins",    "io.containerd.grpc.v1.cri",
                                           "containerd", "runtimes",
                                           "nvidia",     "options",
                                           "BinaryName", NULL };
        assert_string_equal(toml_get_string(t, bin), "/usr/bin/nvidia-container-runtime");
        static const char *const rt[] = { "plugins",    "io.containerd.grpc.v1.cri",
                                          "containerd", "runtimes",
                                          "nvidia",     NULL };
        assert_true(toml_has_table(t, rt));
        static const char *const runtimes[] = { "plugins", "io.containerd.grpc.v1.cri", "containerd",
                                                "runtimes", NULL };
        _cleanup_strv_free_ char **children = NULL;
        assert_int_equal(toml_list_children(t, runtimes, &children), 0);
        assert_int_equal(strv_length(children), 1);
        assert_string_equal(children[0], "nvidia");
        /* A boolean is not a string. */
        static const char *const cg[] = { "plugins",       "io.containerd.grpc.v1.cri",
                                          "containerd",    "runtimes",
                                          "nvidia",        "options",
                                          "SystemdCgroup", NULL };
        assert_null(toml_get_string(t, cg));
        static const char *const absent[] = { "plugins", "nope", NULL };
        assert_false(toml_has_table(t, absent));
}

static void test_toml_v3_literal_keys_dotted_inline(void **state)
{
        _cleanup_(toml_freep) toml *t = parse_ok(
                "version = 3\n"
                "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'nvidia-cdi']\n"
                "  runtime_type = 'io.containerd.runc.v2'\n"
                "  options.BinaryName = \"/usr/local/nvidia/toolkit/nvidia-container-runtime.cdi\"\n"
                "[a]\n"
                "inline = { x = \"1\", y.z = 'w', n = [1, 2, [3]] }\n"
                "multi = \"\"\"\n"
                "line one \\\n"
                "   still one \\u00e9\"\"\"\n"
                "lit = '''\n"
                "raw \\n stays'''\n"
                "num = 1_000\n"
                "date = 1979-05-27T07:32:00Z\n");
        static const char *const bin[] = { "plugins",    "io.containerd.cri.v1.runtime",
                                           "containerd", "runtimes",
                                           "nvidia-cdi", "options",
                                           "BinaryName", NULL };
        assert_string_equal(toml_get_string(t, bin),
                            "/usr/local/nvidia/toolkit/nvidia-container-runtime.cdi");
        static const char *const yz[] = { "a", "inline", "y", "z", NULL };
        assert_string_equal(toml_get_string(t, yz), "w");
        static const char *const multi[] = { "a", "multi", NULL };
        assert_string_equal(toml_get_string(t, multi), "line one still one \xc3\xa9");
        static const char *const lit[] = { "a", "lit", NULL };
        assert_string_equal(toml_get_string(t, lit), "raw \\n stays");
        static const char *const num[] = { "a", "num", NULL };
        int64_t v;
        assert_int_equal(toml_get_integer(t, num, &v), 0);
        assert_int_equal(v, 1000);
        static const char *const date[] = { "a", "date", NULL };
        assert_int_equal(toml_get_integer(t, date, &v), -EINVAL);
        /* An array that is not all strings keeps no strings. */
        static const char *const n[] = { "a", "inline", "n", NULL };
        assert_null(toml_get_string_array(t, n));
}

/* Configs edited on Windows: CRLF line ends, a byte order mark. */
static void test_toml_crlf_bom(void **state)
{
        _cleanup_(toml_freep) toml *t =
                parse_ok("\xef\xbb\xbfversion = 2\r\n[a.\"b\"] # c\r\n  k = \"v\"\r\n  n = 7\r\n");
        static const char *const k[] = { "a", "b", "k", NULL };
        assert_string_equal(toml_get_string(t, k), "v");
        static const char *const n[] = { "a", "b", "n", NULL };
        int64_t v;
        assert_int_equal(toml_get_integer(t, n, &v), 0);
        assert_int_equal(v, 7);
}

static void test_toml_errors(void **state)
{
        expect_error("a = \"open\n", -EINVAL, 1, "newline in a single-line string");
        expect_error("ok = 1\n\n[table\n", -EINVAL, 3, "unterminated table header");
        expect_error("[a]\nx = 1\n[a]\n", -EINVAL, 3, "table defined twice");
        expect_error("x = 1\nx = 2\n", -EINVAL, 2, "key defined twice");
        expect_error("x = 1 y = 2\n", -EINVAL, 1, "unexpected text after a value or header");
        expect_error("x =\n", -EINVAL, 1, "missing value");
        expect_error("= 3\n", -EINVAL, 1, "missing key");
        expect_error("x = \"\\q\"\n", -EINVAL, 1, "unknown escape in string");
        expect_error("x = \"\\u0000\"\n", -EINVAL, 1, "unicode escape out of range");
        expect_error("x = [1, 2\n\n", -EINVAL, 3, "unterminated array");
        expect_error("x = \"\"\"never closed\n\n", -EINVAL, 3, "unterminated string");
        /* [[arrays]] may repeat. */
        _cleanup_(toml_freep) toml *t = parse_ok("[[r]]\nx = 1\n[[r]]\ny = 2\n");
        assert_non_null(t);
}

static void test_toml_limits(void **state)
{
        /* 20 nested arrays: more than TOML_MAX_DEPTH. */
        char deep[128] = "x = ";
        for (int i = 0; i < 20; i++)
                strcat(deep, "[");
        expect_error(deep, -E2BIG, 1, "values nested too deeply");

        /* More keys than TOML_MAX_ENTRIES. */
        size_t n = TOML_MAX_ENTRIES + 10;
        char *big = malloc(n * 16);
        assert_non_null(big);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                k += (size_t)sprintf(big + k, "k%zu = %zu\n", i, i);
        toml *t = NULL;
        unsigned line;
        const char *why;
        assert_int_equal(toml_parse(big, k, &t, &line, &why), -E2BIG);
        assert_string_equal(why, "too many keys");
        assert_int_equal(line, TOML_MAX_ENTRIES + 1);
        free(big);

        /* A NUL byte in the input is an error, not the end of the text. */
        static const char nul[] = "a = 1\n\0b = 2\n";
        assert_int_equal(toml_parse(nul, sizeof(nul) - 1, &t, &line, &why), -EINVAL);
        assert_int_equal(line, 2);
}

/* Every mutation of a real config parses or fails cleanly (run under `make asan` for memory errors). */
static void test_toml_mutations_do_not_crash(void **state)
{
        static const char seed[] = "version = 3\n"
                                   "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'nvidia']\n"
                                   "  runtime_type = \"io.containerd.runc.v2\"\n"
                                   "  x = { a = [1, \"s\", { b = '''m''' }], c = \"\"\"d\\u00e9\"\"\" }\n"
                                   "[[arr]]\n  k = 1_0 # c\n";
        const char alphabet[] = "[]{}\"'=.,#\n\\ abu0\x00\xff";
        uint32_t rng = 12345;
        char buf[sizeof(seed) + 8];
        size_t parsed = 0;
        for (int i = 0; i < 20000; i++) {
                memcpy(buf, seed, sizeof(seed));
                size_t len = sizeof(seed) - 1;
                for (int m = 0; m < 1 + i % 4; m++) {
                        rng = rng * 1103515245 + 12345;
                        size_t pos = (rng >> 8) % len;
                        rng = rng * 1103515245 + 12345;
                        buf[pos] = alphabet[(rng >> 8) % (sizeof(alphabet) - 1)];
                }
                rng = rng * 1103515245 + 12345;
                size_t cut = (rng >> 8) % (len + 1); /* truncations too */
                toml *t = NULL;
                if (toml_parse(buf, i % 3 == 0 ? cut : len, &t, NULL, NULL) == 0) {
                        parsed++;
                        toml_free(t);
                }
        }
        /* Some mutations are harmless (inside comments, strings): both outcomes happen. */
        assert_true(parsed > 0 && parsed < 20000);
}

/* kubectl's JSON goes through the one JSON reader (base/json.h). */
static void test_json_reader(void **state)
{
        static const char text[] =
                "{\"items\": [{\"metadata\": {\"name\": \"nvidia\"}, \"handler\": \"nvidia\"},\n"
                " {\"metadata\": {\"name\": \"crun\"}, \"n\": 3, \"b\": false, \"z\": null}]}\n";
        _cleanup_json_ json_object *d = NULL;
        assert_int_equal(json_parse(text, strlen(text), 4096, 8, &d), 0);
        json_object *items = json_get(d, "items");
        assert_int_equal(json_array_size(items), 2);
        static const char *const name[] = { "metadata", "name", NULL };
        assert_string_equal(json_text(json_get_path(json_array_at(items, 1), name)), "crun");
        assert_string_equal(json_text(json_get(json_array_at(items, 1), "n")), "3");
        assert_string_equal(json_text(json_get(json_array_at(items, 1), "b")), "false");
        assert_null(json_text(json_get(json_array_at(items, 1), "z")));
        assert_null(json_text(json_get(d, "items")));
        /* Lookups through missing members are NULL all the way. */
        assert_null(json_get(json_get(d, "nope"), "x"));
        assert_null(json_array_at(items, 9));
        assert_int_equal(json_array_size(json_get(d, "nope")), 0);

        json_object *bad = NULL;
        assert_int_equal(json_parse("{\"a\": [1, 2", 11, 4096, 8, &bad), -EINVAL);
        assert_int_equal(json_parse("", 0, 4096, 8, &bad), -EINVAL);
        assert_int_equal(json_parse("{} x", 4, 4096, 8, &bad), -EINVAL);
        assert_int_equal(json_parse(text, strlen(text), 16, 8, &bad), -EMSGSIZE);
        assert_int_equal(json_parse("[[[[1]]]]", 9, 4096, 3, &bad), -EINVAL);
}

/* The one JSON escaper: what the log, nvdp info --json and the doctor's report write. */
static void test_json_escape(void **state)
{
        char buf[64];
        assert_int_equal(json_escape(buf, sizeof buf, "a\"b\\c\nd\te\x01"), 19);
        assert_string_equal(buf, "a\\\"b\\\\c\\nd\\te\\u0001");
        /* an escape is never cut in half */
        assert_int_equal(json_escape(buf, 4, "ab\n"), 2);
        assert_string_equal(buf, "ab");

        _cleanup_free_ char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);
        assert_non_null(f);
        json_write_string(f, "x\"y");
        fputc(' ', f);
        json_write_string(f, NULL);
        assert_int_equal(fclose(f), 0);
        assert_string_equal(out, "\"x\\\"y\" null");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_toml_containerd_v2),
                cmocka_unit_test(test_toml_v3_literal_keys_dotted_inline),
                cmocka_unit_test(test_toml_crlf_bom),
                cmocka_unit_test(test_toml_errors),
                cmocka_unit_test(test_toml_limits),
                cmocka_unit_test(test_toml_mutations_do_not_crash),
                cmocka_unit_test(test_json_reader),
                cmocka_unit_test(test_json_escape),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
