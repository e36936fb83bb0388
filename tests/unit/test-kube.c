/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include <json-c/json.h>

#include "base/parse.h"
#include "base/strv.h"
#include "kube/kube.h"
#include "kube/token-bucket.h"

static char *fixture(const char *name)
{
        const char *src = getenv("NVDP_SRC");
        char *p = NULL;
        assert_true(asprintf(&p, "%s/tests/unit/fixtures/kube/%s", src ? src : ".", name) > 0);
        return p;
}

static char *fixture_text(const char *name)
{
        _cleanup_free_ char *p = fixture(name);
        FILE *f = fopen(p, "re");
        assert_non_null(f);
        char *buf = calloc(1, 4096);
        assert_non_null(buf);
        size_t n = fread(buf, 1, 4095, f);
        fclose(f);
        buf[n] = '\0';
        return buf;
}

/* ---- kubeconfig ----------------------------------------------------------------------------------------
 */

static void test_kubeconfig_data_form(void **state)
{
        _cleanup_free_ char *path = fixture("data.yaml"), *ca = fixture_text("ca.pem"),
                            *cert = fixture_text("client.pem"), *key = fixture_text("client-key.pem");
        _cleanup_(kube_config_freep) struct kube_config *c = NULL;
        _cleanup_free_ char *error = NULL;
        assert_int_equal(kube_config_from_file(path, &c, &error), 0);
        assert_null(error);
        /* The current context "gpu" -> cluster "prod", not the first (insecure) cluster. */
        assert_string_equal(c->server, "https://[fd00::1]:6443");
        assert_string_equal(c->host, "fd00::1");
        assert_int_equal(c->port, 6443);
        assert_string_equal(c->tls_server_name, "kubernetes.default.svc");
        assert_string_equal(c->ca_pem, "-----BEGIN CERTIFICATE-----\nTEST-CA\n-----END CERTIFICATE-----\n");
        assert_string_equal(c->ca_pem, ca);
        assert_string_equal(c->client_cert_pem, cert);
        assert_string_equal(c->client_key_pem, key);
        assert_string_equal(c->token, "inline-token-456");
        assert_null(c->token_file);
        assert_string_equal(c->namespace, "nvidia");
        assert_string_equal(c->source, path);
}

static void test_kubeconfig_file_form(void **state)
{
        _cleanup_free_ char *path = fixture("files.yaml"), *token = fixture("token"),
                            *ca = fixture_text("ca.pem"), *key = fixture_text("client-key.pem");
        _cleanup_(kube_config_freep) struct kube_config *c = NULL;
        assert_int_equal(kube_config_from_file(path, &c, NULL), 0);
        assert_string_equal(c->server, "https://127.0.0.1:6443");
        assert_string_equal(c->host, "127.0.0.1");
        assert_int_equal(c->port, 6443);
        assert_null(c->tls_server_name);
        assert_string_equal(c->ca_pem, ca);
        assert_string_equal(c->client_key_pem, key);
        assert_null(c->token);
        assert_string_equal(c->token_file, token); /* relative to the kubeconfig's directory */
        assert_string_equal(c->namespace, "default");
}

static void expect_config_error(const char *name, int err, const char *part1, const char *part2)
{
        _cleanup_free_ char *path = fixture(name);
        _cleanup_(kube_config_freep) struct kube_config *c = NULL;
        _cleanup_free_ char *error = NULL;
        assert_int_equal(kube_config_from_file(path, &c, &error), err);
        assert_null(c);
        assert_non_null(error);
        if (!strstr(error, path) || !strstr(error, part1) || (part2 && !strstr(error, part2)))
                fail_msg("%s: unexpected message: %s", name, error);
}

static void test_kubeconfig_errors(void **state)
{
        expect_config_error("err-insecure.yaml", -EPERM, "insecure-skip-tls-verify", "cluster \"c\"");
        expect_config_error("err-exec.yaml", -EOPNOTSUPP, "user \"u\"", "exec");
        expect_config_error("err-http.yaml", -EINVAL,
                            "\"http://10.0.0.1:8080\" is not an https://host[:port] URL", NULL);
        expect_config_error("err-no-ca.yaml", -EINVAL, "neither certificate-authority nor", NULL);
        expect_config_error("err-base64.yaml", -EINVAL,
                            "cluster.certificate-authority-data is not valid base64", NULL);
        expect_config_error("err-ca-missing.yaml", -ENOENT, "failed to read cluster.certificate-authority",
                            "missing.pem");
        expect_config_error("err-cert-no-key.yaml", -EINVAL, "has a client certificate but no client key",
                            NULL);
        expect_config_error("err-no-context.yaml", -ENOENT, "contexts has no entry named \"missing\"", NULL);
        expect_config_error("err-no-cluster.yaml", -ENOENT, "clusters has no entry named \"nowhere\"", NULL);
        expect_config_error("err-syntax.yaml", -EINVAL, ":", NULL);

        _cleanup_(kube_config_freep) struct kube_config *c = NULL;
        _cleanup_free_ char *error = NULL;
        assert_int_equal(kube_config_from_file("/nonexistent/kubeconfig", &c, &error), -ENOENT);
        assert_string_equal(error,
                            "Failed to read kubeconfig /nonexistent/kubeconfig: No such file or directory");
}

static void test_in_cluster(void **state)
{
        _cleanup_free_ char *sa = fixture("sa"), *token = fixture("sa/token"), *ca = fixture_text("ca.pem");
        _cleanup_(kube_config_freep) struct kube_config *c = NULL;
        _cleanup_free_ char *error = NULL;
        unsetenv("KUBERNETES_SERVICE_HOST");
        unsetenv("KUBERNETES_SERVICE_PORT");
        assert_int_equal(kube_config_in_cluster(sa, &c, &error), -ENOENT);
        assert_non_null(strstr(error, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"));
        error = mfree(error);

        setenv("KUBERNETES_SERVICE_HOST", "10.43.0.1", 1);
        setenv("KUBERNETES_SERVICE_PORT", "https", 1);
        assert_int_equal(kube_config_in_cluster(sa, &c, &error), -EINVAL);
        assert_string_equal(error, "KUBERNETES_SERVICE_PORT=https is not a port number");
        error = mfree(error);

        setenv("KUBERNETES_SERVICE_PORT", "443", 1);
        assert_int_equal(kube_config_in_cluster(sa, &c, &error), 0);
        assert_string_equal(c->server, "https://10.43.0.1:443");
        assert_string_equal(c->host, "10.43.0.1");
        assert_int_equal(c->port, 443);
        assert_string_equal(c->ca_pem, ca);
        assert_string_equal(c->token_file, token);
        assert_null(c->token);
        assert_string_equal(c->namespace, "gpu-operator");
        c = kube_config_free(c);

        assert_int_equal(kube_config_in_cluster("/nonexistent", &c, &error), -ENOENT);
        assert_string_equal(error,
                            "Failed to read the service account CA /nonexistent/ca.crt: No such file or "
                            "directory");
        unsetenv("KUBERNETES_SERVICE_HOST");
        unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_server_url(void **state)
{
        _cleanup_free_ char *h = NULL;
        uint16_t port;
        assert_int_equal(kube_parse_server_url("https://api.example.com", &h, &port), 0);
        assert_string_equal(h, "api.example.com");
        assert_int_equal(port, 443);
        h = mfree(h);
        assert_int_equal(kube_parse_server_url("https://[::1]:6443", &h, &port), 0);
        assert_string_equal(h, "::1");
        assert_int_equal(port, 6443);
        h = mfree(h);
        assert_int_equal(kube_parse_server_url("http://10.0.0.1", &h, &port), -EINVAL);
        assert_int_equal(kube_parse_server_url("https://10.0.0.1:0", &h, &port), -EINVAL);
        assert_int_equal(kube_parse_server_url("https://10.0.0.1:65536", &h, &port), -EINVAL);
        assert_int_equal(kube_parse_server_url("https://10.0.0.1/proxy/k8s", &h, &port), -EINVAL);
        assert_int_equal(kube_parse_server_url("https://user@10.0.0.1", &h, &port), -EINVAL);
        assert_int_equal(kube_parse_server_url("https://[::1", &h, &port), -EINVAL);
        assert_null(h);
}

static void test_client_rejects_bad_ca(void **state)
{
        /* The fixture CA is PEM-shaped but not a certificate: named when the client is made. */
        _cleanup_free_ char *path = fixture("files.yaml");
        _cleanup_(loop_freep) loop *l = NULL;
        assert_int_equal(loop_new(&l), 0);
        kube_client *k = NULL;
        _cleanup_free_ char *error = NULL;
        assert_int_equal(kube_client_new_from_env(l, path, &k, &error), -EINVAL);
        assert_null(k);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want, "%s: the certificate authority holds no usable PEM certificate", path) >
                    0);
        assert_string_equal(error, want);
}

/* ---- token bucket ----------------------------------------------------------------------------------------
 */

static void test_token_bucket(void **state)
{
        struct token_bucket b;
        const uint64_t t = 1000 * NSEC_PER_SEC;
        token_bucket_init(&b, KUBE_DEFAULT_QPS, KUBE_DEFAULT_BURST, t);
        /* A full bucket: 10 at once. */
        for (int i = 0; i < 10; i++)
                assert_int_equal(token_bucket_take(&b, t), 0);
        /* The 11th waits one refill (1/5 s); asking does not take anything. */
        assert_int_equal(token_bucket_take(&b, t), 200 * NSEC_PER_MSEC);
        assert_int_equal(token_bucket_take(&b, t + 50 * NSEC_PER_MSEC), 150 * NSEC_PER_MSEC);
        assert_int_equal(token_bucket_take(&b, t + 200 * NSEC_PER_MSEC), 0);
        assert_int_equal(token_bucket_take(&b, t + 200 * NSEC_PER_MSEC), 200 * NSEC_PER_MSEC);
        /* Five per second sustained. */
        unsigned n = 0;
        for (uint64_t now = t + 200 * NSEC_PER_MSEC; now <= t + 1200 * NSEC_PER_MSEC;
             now += 10 * NSEC_PER_MSEC)
                while (token_bucket_take(&b, now) == 0)
                        n++;
        assert_int_equal(n, 5);
        /* A long pause refills to the burst, not beyond. */
        uint64_t later = t + 3600 * NSEC_PER_SEC;
        for (int i = 0; i < 10; i++)
                assert_int_equal(token_bucket_take(&b, later), 0);
        assert_int_equal(token_bucket_take(&b, later), 200 * NSEC_PER_MSEC);
}

/* ---- JSON ------------------------------------------------------------------------------------------------
 */

static void test_labels_patch_body(void **state)
{
        char *set[] = { "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count=8",
                        "note=say \"hi\"\\", NULL };
        char *remove[] = { "nvidia.com/mig.strategy", NULL };
        _cleanup_free_ char *body = NULL;
        assert_int_equal(kube_node_patch_body(set, remove, NULL, &body), 0);
        assert_string_equal(
                body, "{\"metadata\":{\"labels\":{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\","
                      "\"nvidia.com/gpu.count\":\"8\",\"note\":\"say \\\"hi\\\"\\\\\","
                      "\"nvidia.com/mig.strategy\":null}}}");
        body = mfree(body);
        assert_int_equal(kube_node_patch_body(NULL, NULL, NULL, &body), 0);
        assert_string_equal(body, "{\"metadata\":{\"labels\":{}}}");
        char *bad[] = { "novalue", NULL };
        body = mfree(body);
        assert_int_equal(kube_node_patch_body(bad, NULL, NULL, &body), -EINVAL);
        assert_null(body);
}

static void test_event_body(void **state)
{
        struct kube_event e = {
                .node = "gpu-node-1",
                .type = "Warning",
                .reason = "DeviceUnhealthy",
                .message = "GPU-8d2c \"3\" XID 79: fallen off the bus",
                .time = { .tv_sec = 1700000000, .tv_nsec = 123456789 },
        };
        _cleanup_free_ char *body = NULL;
        assert_int_equal(kube_event_body(&e, "kube-system", &body), 0);
        assert_string_equal(
                body,
                "{\"apiVersion\":\"v1\",\"kind\":\"Event\","
                "\"metadata\":{\"name\":\"gpu-node-1.17979cfe3d85cd15\",\"namespace\":\"kube-system\"},"
                "\"involvedObject\":{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"gpu-node-1\","
                "\"uid\":\"gpu-node-1\"},"
                "\"reason\":\"DeviceUnhealthy\",\"message\":\"GPU-8d2c \\\"3\\\" XID 79: fallen off the "
                "bus\","
                "\"type\":\"Warning\","
                "\"source\":{\"component\":\"nvidia-device-plugin\",\"host\":\"gpu-node-1\"},"
                "\"firstTimestamp\":\"2023-11-14T22:13:20Z\",\"lastTimestamp\":\"2023-11-14T22:13:20Z\","
                "\"count\":1,\"reportingComponent\":\"nvidia-device-plugin\","
                "\"reportingInstance\":\"gpu-node-1\"}");
        body = mfree(body);
        e.namespace = "default";
        e.type = "Normal";
        e.count = 3;
        assert_int_equal(kube_event_body(&e, "kube-system", &body), 0);
        assert_non_null(strstr(body, "\"namespace\":\"default\""));
        assert_non_null(strstr(body, "\"type\":\"Normal\""));
        assert_non_null(strstr(body, "\"count\":3,"));
        body = mfree(body);
        e.type = "Error"; /* only Normal and Warning exist */
        assert_int_equal(kube_event_body(&e, NULL, &body), -EINVAL);
}

static void test_status_message(void **state)
{
        const char *st = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                         "\"message\":\"nodes \\\"x\\\" not found\",\"reason\":\"NotFound\",\"code\":404}\n";
        _cleanup_free_ char *m = kube_status_message(st, strlen(st));
        assert_string_equal(m, "nodes \"x\" not found");
        const char *node = "{\"kind\":\"Node\",\"message\":\"no\"}";
        assert_null(kube_status_message(node, strlen(node)));
        assert_null(kube_status_message("<html>", 6));
        assert_null(kube_status_message("", 0));
}

static void test_json_limits(void **state)
{
        char deep[512], shallow[64];
        memset(deep, '[', 200);
        memset(deep + 200, ']', 200);
        deep[400] = '\0';
        memset(shallow, '[', 20);
        memset(shallow + 20, ']', 20);
        shallow[40] = '\0';
        json_object *o = NULL;
        assert_int_equal(kube_json_parse(deep, strlen(deep), &o), -EINVAL);
        assert_null(o);
        assert_int_equal(kube_json_parse(shallow, strlen(shallow), &o), 0);
        json_object_put(o);
        assert_int_equal(kube_json_parse("{} x", 4, &o), -EINVAL);
        assert_int_equal(kube_json_parse("{}\n", 3, &o), 0);
        json_object_put(o);
        assert_int_equal(kube_json_parse("{", 1, &o), -EINVAL);
}

static void test_object_labels(void **state)
{
        const char *n =
                "{\"metadata\":{\"name\":\"n\",\"labels\":{\"z\":\"1\",\"nvidia.com/device-plugin.config\":"
                "\"a100\",\"a\":\"\"}}}";
        json_object *o = NULL;
        assert_int_equal(kube_json_parse(n, strlen(n), &o), 0);
        _cleanup_strv_free_ char **l = NULL;
        assert_int_equal(kube_object_labels(o, &l), 0);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[0], "a=");
        assert_string_equal(l[1], "nvidia.com/device-plugin.config=a100");
        assert_string_equal(l[2], "z=1");
        json_object_put(o);
        strv_free(TAKE_PTR(l));
        assert_int_equal(kube_json_parse("{\"metadata\":{}}", 15, &o), 0);
        assert_int_equal(kube_object_labels(o, &l), 0);
        assert_int_equal(strv_length(l), 0);
        json_object_put(o);
}

static void test_name_valid(void **state)
{
        assert_true(kube_name_valid("gpu-node-1"));
        assert_true(kube_name_valid("ip-10-0-0-1.ec2.internal"));
        assert_false(kube_name_valid(""));
        assert_false(kube_name_valid("Upper"));
        assert_false(kube_name_valid("a/b"));
        assert_false(kube_name_valid("a?watch=1"));
        assert_false(kube_name_valid("-a"));
        assert_false(kube_name_valid("a."));
        char long_name[300];
        memset(long_name, 'a', 254);
        long_name[254] = '\0';
        assert_false(kube_name_valid(long_name));
        long_name[253] = '\0';
        assert_true(kube_name_valid(long_name));
}

/* ---- list, watch events, line splitting ----------------------------------------------------------------
 */

static void test_node_list_parse(void **state)
{
        const char *list =
                "{\"kind\":\"NodeList\",\"metadata\":{\"resourceVersion\":\"120\"},\"items\":["
                "{\"metadata\":{\"name\":\"other\",\"labels\":{\"x\":\"1\"}}},"
                "{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"b\":\"2\",\"a\":\"1\",\"n\":3}}}]}";
        _cleanup_free_ char *rv = NULL, *err = NULL;
        _cleanup_strv_free_ char **l = NULL;
        assert_int_equal(kube_node_list_parse(list, strlen(list), "gpu-1", &rv, &l, &err), 0);
        assert_string_equal(rv, "120");
        assert_int_equal(strv_length(l), 2); /* a number is not a label value */
        assert_string_equal(l[0], "a=1");
        assert_string_equal(l[1], "b=2");
        rv = mfree(rv);
        l = strv_free(l);
        /* not in the list: no labels; a resourceVersion that could not go into a URL: none */
        const char *none = "{\"metadata\":{\"resourceVersion\":\"1&watch=0\"},\"items\":[]}";
        assert_int_equal(kube_node_list_parse(none, strlen(none), "gpu-1", &rv, &l, &err), 0);
        assert_null(rv);
        assert_null(l);
        assert_int_equal(kube_node_list_parse("{\"items\":{}}", 12, "gpu-1", &rv, &l, &err), -EPROTO);
        assert_string_equal(err, "the node list from the API server is not a NodeList");
}

static void test_watch_event_parse(void **state)
{
        struct kube_watch_event e;
        _cleanup_free_ char *err = NULL;
        const char *mod = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"gpu-1\","
                          "\"resourceVersion\":\"7\",\"labels\":{\"z\":\"\",\"nvidia.com/x\":\"y\"}}}}";
        assert_int_equal(kube_watch_event_parse(mod, strlen(mod), &e, &err), 0);
        assert_int_equal(e.type, KUBE_WATCH_MODIFIED);
        assert_string_equal(e.resource_version, "7");
        assert_int_equal(strv_length(e.labels), 2);
        assert_string_equal(e.labels[0], "nvidia.com/x=y");
        assert_string_equal(e.labels[1], "z=");
        kube_watch_event_done(&e);

        const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                           "\"message\":\"too old resource version: 7 (9)\"}}";
        assert_int_equal(kube_watch_event_parse(gone, strlen(gone), &e, &err), 0);
        assert_int_equal(e.type, KUBE_WATCH_ERROR);
        assert_string_equal(e.message, "too old resource version: 7 (9)");
        assert_null(e.labels);
        kube_watch_event_done(&e);

        const char *bookmark =
                "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}";
        assert_int_equal(kube_watch_event_parse(bookmark, strlen(bookmark), &e, &err), 0);
        assert_int_equal(e.type, KUBE_WATCH_BOOKMARK);
        assert_string_equal(e.resource_version, "9");
        assert_null(e.labels);
        kube_watch_event_done(&e);

        static const struct {
                const char *line, *error;
        } bad[] = {
                { "{\"type\":\"ADDED\"", "the API server sent a watch event that is not JSON" },
                { "{\"type\":\"ADDED\"}", "the API server sent a watch event without type or object" },
                { "{\"type\":1,\"object\":{}}", "the API server sent a watch event without type or object" },
                { "{\"type\":\"RESYNC\",\"object\":{}}",
                  "the API server sent a watch event of unknown type" },
                { "[]", "the API server sent a watch event without type or object" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err = mfree(err);
                assert_int_equal(kube_watch_event_parse(bad[i].line, strlen(bad[i].line), &e, &err),
                                 -EPROTO);
                assert_string_equal(err, bad[i].error);
        }
}

struct lines {
        char got[8][32];
        size_t n;
        int stop_at;
};

static int collect_line(char *line, size_t size, void *userdata)
{
        struct lines *l = userdata;
        assert_int_equal(strlen(line), size);
        if ((int)l->n == l->stop_at)
                return -ECANCELED;
        snprintf(l->got[l->n++], 32, "%s", line);
        return 0;
}

static void test_lines_split(void **state)
{
        char buf[64];
        struct lines l = { .stop_at = -1 };
        size_t len = (size_t)snprintf(buf, sizeof buf, "one\n\ntwo\nthr");
        assert_int_equal(kube_lines_split(buf, &len, collect_line, &l), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.got[0], "one");
        assert_string_equal(l.got[1], "two");
        assert_int_equal(len, 3);
        assert_string_equal(buf, "thr");
        len += (size_t)snprintf(buf + len, sizeof buf - len, "ee\nfour\n");
        l.stop_at = 3; /* the reader stops at "four" */
        assert_int_equal(kube_lines_split(buf, &len, collect_line, &l), -ECANCELED);
        assert_int_equal(l.n, 3);
        assert_string_equal(l.got[2], "three");
}

/* Node labels are taken in linear time (they were quadratic: 100,000 labels cost seconds of the event
 * loop at every watch event). Measured as a ratio, 8 times the labels within 32 times the time (n log n
 * for the sort; quadratic would be 64 times), so that a slow machine does not matter. */
static char *event_with_labels(size_t n, size_t *ret_len)
{
        size_t cap = n * 64 + 256, len = 0;
        char *line = malloc(cap);
        assert_non_null(line);
        len += (size_t)sprintf(
                line, "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{");
        for (size_t i = 0; i < n; i++)
                len += (size_t)sprintf(line + len, "%s\"example.com/label-%zu\":\"value-%zu\"", i ? "," : "",
                                       i, i);
        len += (size_t)sprintf(line + len, "}}}}");
        *ret_len = len;
        return line;
}

static uint64_t time_event(size_t n)
{
        size_t len;
        _cleanup_free_ char *line = event_with_labels(n, &len);
        uint64_t best = UINT64_MAX;
        for (int round = 0; round < 3; round++) {
                struct kube_watch_event e;
                uint64_t t = now_nsec();
                assert_int_equal(kube_watch_event_parse(line, len, &e, NULL), 0);
                t = now_nsec() - t;
                assert_int_equal(strv_length(e.labels), n);
                kube_watch_event_done(&e);
                best = MIN(best, t);
        }
        return best;
}

static void test_labels_linear(void **state)
{
        uint64_t small = time_event(12500), big = time_event(100000);
        print_message("watch event with 12,500 labels: %.1f ms, 100,000: %.1f ms\n", small / 1e6, big / 1e6);
        assert_true(big < 32 * small);
}

static void test_strv_builder(void **state)
{
        _cleanup_strv_builder_ strv_builder b = {};
        for (int i = 0; i < 1000; i++)
                assert_int_equal(strv_builder_extend(&b, i % 2 ? "odd" : "even"), 0);
        _cleanup_strv_free_ char **l = strv_builder_take(&b);
        assert_int_equal(strv_length(l), 1000);
        assert_string_equal(l[999], "odd");
        assert_null(b.l);
        _cleanup_strv_free_ char **empty = strv_builder_take(&b);
        assert_non_null(empty);
        assert_null(empty[0]);
        strv_sort(l);
        assert_true(strv_contains_sorted(l, 1000, "even"));
        assert_true(strv_contains_sorted(l, 1000, "odd"));
        assert_false(strv_contains_sorted(l, 1000, "evens"));
        assert_false(strv_contains_sorted(l, 0, "even"));
}

/* NVIDIA's GFD's NodeFeature: the body as created, whether one as read is up to date, an update keeping
 * what the object carries besides. */
static void test_nodefeature(void **state)
{
        char *labels[] = { "nvidia.com/gpu.count=8", "nvidia.com/gpu.product=NVIDIA-H100", NULL };
        struct kube_nodefeature nf = { .namespace = "gpu",
                                       .name = "nvidia-features-for-n1",
                                       .node = "n1",
                                       .node_uid = "u-1",
                                       .labels = labels };
        _cleanup_free_ char *body = NULL, *update = NULL;
        assert_int_equal(kube_nodefeature_body(&nf, NULL, &body), 0);
        assert_string_equal(body,
                            "{\"apiVersion\":\"nfd.k8s-sigs.io/v1alpha1\",\"kind\":\"NodeFeature\","
                            "\"metadata\":{\"name\":\"nvidia-features-for-n1\",\"namespace\":\"gpu\","
                            "\"labels\":{\"nfd.node.kubernetes.io/node-name\":\"n1\"},"
                            "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"n1\","
                            "\"uid\":\"u-1\"}]},\"spec\":{\"features\":{\"flags\":{},\"attributes\":{},"
                            "\"instances\":{}},\"labels\":{\"nvidia.com/gpu.count\":\"8\","
                            "\"nvidia.com/gpu.product\":\"NVIDIA-H100\"}}}");
        struct json_object *o = NULL;
        assert_int_equal(kube_json_parse(body, strlen(body), &o), 0);
        assert_true(kube_nodefeature_up_to_date(o, &nf));
        /* another label set, a label gone, another node: not up to date */
        char *fewer[] = { "nvidia.com/gpu.count=8", NULL };
        struct kube_nodefeature other = nf;
        other.labels = fewer;
        assert_false(kube_nodefeature_up_to_date(o, &other));
        other = nf;
        other.node = "n2";
        assert_false(kube_nodefeature_up_to_date(o, &other));
        /* features someone added, a second owner, an extra metadata label: not up to date */
        static const char *const extra[] = {
                "{\"metadata\":{\"labels\":{\"nfd.node.kubernetes.io/"
                "node-name\":\"n1\"},\"ownerReferences\":[{"
                "\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"n1\",\"uid\":\"x\"}]},\"spec\":{"
                "\"labels\":{"
                "\"nvidia.com/gpu.count\":\"8\",\"nvidia.com/"
                "gpu.product\":\"NVIDIA-H100\"},\"features\":{\"flags\":{"
                "\"a\":{}}}}}",
                "{\"metadata\":{\"labels\":{\"nfd.node.kubernetes.io/"
                "node-name\":\"n1\"},\"ownerReferences\":[{"
                "\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"n1\",\"uid\":\"x\"},{\"apiVersion\":"
                "\"v1\","
                "\"kind\":\"Pod\",\"name\":\"p\",\"uid\":\"y\"}]},\"spec\":{\"labels\":{\"nvidia.com/"
                "gpu.count\":"
                "\"8\",\"nvidia.com/gpu.product\":\"NVIDIA-H100\"}}}",
                "{\"metadata\":{\"labels\":{\"nfd.node.kubernetes.io/node-name\":\"n1\",\"x\":\"y\"},"
                "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"n1\",\"uid\":"
                "\"x\"}]},"
                "\"spec\":{\"labels\":{\"nvidia.com/gpu.count\":\"8\",\"nvidia.com/"
                "gpu.product\":\"NVIDIA-H100\"}}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(extra); i++) {
                struct json_object *e = NULL;
                assert_int_equal(kube_json_parse(extra[i], strlen(extra[i]), &e), 0);
                assert_false(kube_nodefeature_up_to_date(e, &nf));
                json_object_put(e);
        }
        /* absent features and an owner by another uid (the Node made again): up to date */
        static const char *const same =
                "{\"metadata\":{\"labels\":{\"nfd.node.kubernetes.io/node-name\":\"n1\"},"
                "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Node\","
                "\"name\":\"n1\",\"uid\":\"old\"}]},\"spec\":{\"labels\":{"
                "\"nvidia.com/gpu.count\":\"8\",\"nvidia.com/gpu.product\":\"NVIDIA-H100\"}}}";
        struct json_object *e = NULL;
        assert_int_equal(kube_json_parse(same, strlen(same), &e), 0);
        assert_true(kube_nodefeature_up_to_date(e, &nf));
        json_object_put(e);
        /* an update keeps resourceVersion, annotations and status, replaces labels, owner and spec */
        json_object_object_add(json_object_object_get(o, "metadata"), "resourceVersion",
                               json_object_new_string("42"));
        json_object_object_add(json_object_object_get(o, "metadata"), "annotations",
                               json_object_new_string("kept"));
        other = nf;
        other.labels = fewer;
        assert_int_equal(kube_nodefeature_body(&other, o, &update), 0);
        assert_non_null(strstr(update, "\"resourceVersion\":\"42\""));
        assert_non_null(strstr(update, "\"annotations\":\"kept\""));
        assert_non_null(strstr(update, "\"labels\":{\"nvidia.com/gpu.count\":\"8\"}}"));
        json_object_put(o);
        /* a field missing */
        other = nf;
        other.node_uid = NULL;
        assert_int_equal(kube_nodefeature_body(&other, NULL, &body), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kubeconfig_data_form), cmocka_unit_test(test_kubeconfig_file_form),
                cmocka_unit_test(test_kubeconfig_errors),    cmocka_unit_test(test_in_cluster),
                cmocka_unit_test(test_server_url),           cmocka_unit_test(test_client_rejects_bad_ca),
                cmocka_unit_test(test_token_bucket),         cmocka_unit_test(test_labels_patch_body),
                cmocka_unit_test(test_event_body),           cmocka_unit_test(test_status_message),
                cmocka_unit_test(test_json_limits),          cmocka_unit_test(test_object_labels),
                cmocka_unit_test(test_name_valid),           cmocka_unit_test(test_node_list_parse),
                cmocka_unit_test(test_watch_event_parse),    cmocka_unit_test(test_lines_split),
                cmocka_unit_test(test_labels_linear),        cmocka_unit_test(test_strv_builder),
                cmocka_unit_test(test_nodefeature),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
