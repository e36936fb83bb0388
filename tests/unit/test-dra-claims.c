/* SPDX-License-Identifier: Apache-2.0 */
/* NodePrepareResources / NodeUnprepareResources over the checkpoint (src/dra/dra-claims.c), with the API
 * server and the CDI spec writer played by fakes that record what they were asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "base/fileio.h"
#include "base/strv.h"
#include "dra/dra.h"
#include "test-plan-inventories.h"

#define UID_A "aaaaaaaa-0000-4000-8000-000000000001"
#define UID_B "bbbbbbbb-0000-4000-8000-000000000002"

struct fake {
        char *dir, *checkpoint;
        inventory *inv;
        dra_claims *claims;
        /* The API server: claim name -> ResourceClaim JSON; answers at once unless deferred. */
        char **names, **bodies;
        bool defer;
        uint64_t deferred[8];
        size_t n_deferred;
        size_t fetches;
        /* The CDI writer. */
        char **log;                           /* "write <uid>", "remove <uid>" */
        const char *fail_write, *fail_remove; /* a UID whose spec write/remove fails */
        /* The last answer. */
        size_t dones;
        char **results; /* "<uid> ok <cdi ids>" or "<uid> error <text>" */
};

static int fake_fetch(void *userdata, const struct dra_claim_ref *ref, uint64_t token, char **ret_error)
{
        struct fake *f = userdata;
        f->fetches++;
        if (streq(ref->name, "unreachable")) {
                *ret_error = strdup("connection refused");
                return -ECONNREFUSED;
        }
        if (f->defer) {
                assert_true(f->n_deferred < ELEMENTSOF(f->deferred));
                f->deferred[f->n_deferred++] = token;
                return 0;
        }
        for (size_t i = 0; f->names && f->names[i]; i++)
                if (streq(f->names[i], ref->name)) {
                        dra_claims_fetched(f->claims, token, 200, f->bodies[i], strlen(f->bodies[i]), NULL);
                        return 0;
                }
        dra_claims_fetched(f->claims, token, 404, "{}", 2, "GET ...: 404 Not Found");
        return 0;
}

static int fake_write_spec(void *userdata, const struct dra_claim *c, char **ret_error)
{
        struct fake *f = userdata;
        if (f->fail_write && streq(c->uid, f->fail_write)) {
                *ret_error = strdup("disk full");
                return -ENOSPC;
        }
        char *line = NULL;
        assert_true(asprintf(&line, "write %s", c->uid) > 0);
        assert_int_equal(strv_push(&f->log, line), 0);
        return 0;
}

static int fake_remove_spec(void *userdata, const char *uid, char **ret_error)
{
        struct fake *f = userdata;
        if (f->fail_remove && streq(uid, f->fail_remove)) {
                if (ret_error)
                        *ret_error = strdup("read-only file system");
                return -EROFS;
        }
        char *line = NULL;
        assert_true(asprintf(&line, "remove %s", uid) > 0);
        assert_int_equal(strv_push(&f->log, line), 0);
        return 0;
}

static const struct dra_claims_ops OPS = {
        .fetch = fake_fetch,
        .write_spec = fake_write_spec,
        .remove_spec = fake_remove_spec,
};

static void record_prepare(void *userdata, const struct dra_prepare_result *r, size_t n)
{
        struct fake *f = userdata;
        f->dones++;
        f->results = strv_free(f->results);
        f->results = new0(char *, 1);
        for (size_t i = 0; i < n; i++) {
                char *line = NULL;
                if (r[i].claim) {
                        _cleanup_strv_free_ char **ids = NULL;
                        for (size_t j = 0; j < r[i].claim->n_devices; j++)
                                assert_int_equal(strv_extend(&ids, r[i].claim->devices[j].cdi_id), 0);
                        _cleanup_free_ char *joined = strv_join(ids, ",");
                        assert_true(asprintf(&line, "%s ok %s", r[i].uid, joined) > 0);
                } else
                        assert_true(asprintf(&line, "%s error %s", r[i].uid, r[i].error) > 0);
                assert_int_equal(strv_push(&f->results, line), 0);
        }
}

static void record_unprepare(void *userdata, const struct dra_unprepare_result *r, size_t n)
{
        struct fake *f = userdata;
        f->dones++;
        f->results = strv_free(f->results);
        f->results = new0(char *, 1);
        for (size_t i = 0; i < n; i++) {
                char *line = NULL;
                assert_true(asprintf(&line, "%s %s", r[i].uid, r[i].error ? r[i].error : "ok") > 0);
                assert_int_equal(strv_push(&f->results, line), 0);
        }
}

static char *claim_body(const char *uid, const char *name, const char *devices_json)
{
        char *s = NULL;
        assert_true(asprintf(&s,
                             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"uid\":\"%s\"},"
                             "\"status\":{\"allocation\":{\"devices\":{\"results\":%s}}}}",
                             name, uid, devices_json) > 0);
        return s;
}

#define RESULT(dev)                                                                                         \
        "{\"request\":\"gpu\",\"driver\":\"gpu.nvidia.com\",\"pool\":\"node-a\",\"device\":\"" dev "\"}"

static void add_claim(struct fake *f, const char *name, char *body)
{
        assert_int_equal(strv_extend(&f->names, name), 0);
        assert_int_equal(strv_push(&f->bodies, body), 0);
}

static int open_claims(struct fake *f, char **ret_error)
{
        f->claims = dra_claims_free(f->claims);
        struct dra_claims_params p = {
                .node = "node-a", .checkpoint = f->checkpoint, .inventory = f->inv, .health = NULL
        };
        return dra_claims_new(&p, &OPS, f, &f->claims, ret_error);
}

static int setup(void **state)
{
        struct fake *f = new0(struct fake, 1);
        assert_non_null(f);
        f->dir = strdup("/tmp/nvdp-test-dra-claims-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_true(asprintf(&f->checkpoint, "%s/checkpoint.json", f->dir) > 0);
        f->inv = fixture_h100x8();
        add_claim(f, "claim-a", claim_body(UID_A, "claim-a", "[" RESULT("gpu-1") "," RESULT("gpu-3") "]"));
        add_claim(f, "claim-b", claim_body(UID_B, "claim-b", "[" RESULT("gpu-5") "]"));
        add_claim(f, "claim-bad",
                  claim_body("cccccccc-0000-4000-8000-000000000003", "claim-bad", "[" RESULT("gpu-9") "]"));
        assert_int_equal(open_claims(f, NULL), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fake *f = *state;
        dra_claims_free(f->claims);
        fixture_inventory_free(f->inv);
        strv_free(f->names);
        strv_free(f->bodies);
        strv_free(f->log);
        strv_free(f->results);
        unlink(f->checkpoint);
        rmdir(f->dir);
        free(f->checkpoint);
        free(f->dir);
        free(f);
        return 0;
}

static const struct dra_claim_ref REF_A = { .namespace = "default", .uid = UID_A, .name = "claim-a" };
static const struct dra_claim_ref REF_B = { .namespace = "default", .uid = UID_B, .name = "claim-b" };

static char *checkpoint_text(struct fake *f)
{
        char *text = NULL;
        if (read_full_file(f->checkpoint, 1 << 20, &text, NULL) < 0)
                return strdup("");
        return text;
}

static void assert_strv(char **got, const char *const *want)
{
        size_t n = 0;
        for (; want[n]; n++) {
                if (!got || !got[n])
                        fail_msg("missing entry %zu \"%s\"", n, want[n]);
                if (!streq(got[n], want[n]))
                        fail_msg("entry %zu is \"%s\", want \"%s\"", n, got[n], want[n]);
        }
        if (got && got[n])
                fail_msg("extra entry %zu \"%s\"", n, got[n]);
}

static void test_prepare_and_repeat(void **state)
{
        struct fake *f = *state;
        struct dra_claim_ref refs[] = { REF_A, REF_B };
        assert_int_equal(dra_claims_prepare(f->claims, refs, 2, record_prepare, f), 0);
        assert_int_equal(f->dones, 1);
        assert_strv(f->results,
                    (const char *const[]){ UID_A " ok k8s.gpu.nvidia.com/claim=" UID_A
                                                 "-gpu-1,k8s.gpu.nvidia.com/claim=" UID_A "-gpu-3",
                                           UID_B " ok k8s.gpu.nvidia.com/claim=" UID_B "-gpu-5", NULL });
        assert_strv(f->log, (const char *const[]){ "write " UID_A, "write " UID_B, NULL });
        _cleanup_free_ char *text = checkpoint_text(f);
        assert_non_null(strstr(text, UID_A));
        assert_non_null(strstr(text, UID_B));

        /* Again (the kubelet retries, or restarted): answered from the record, nothing read or written. */
        f->log = strv_free(f->log);
        assert_int_equal(dra_claims_prepare(f->claims, &refs[1], 1, record_prepare, f), 0);
        assert_int_equal(f->dones, 2);
        assert_int_equal(f->fetches, 2);
        assert_null(f->log);
        assert_strv(f->results,
                    (const char *const[]){ UID_B " ok k8s.gpu.nvidia.com/claim=" UID_B "-gpu-5", NULL });
}

static void test_prepare_waits_for_reads(void **state)
{
        struct fake *f = *state;
        f->defer = true;
        struct dra_claim_ref refs[] = { REF_A, REF_B };
        assert_int_equal(dra_claims_prepare(f->claims, refs, 2, record_prepare, f), 0);
        assert_int_equal(f->n_deferred, 2);
        assert_int_equal(f->dones, 0);
        dra_claims_fetched(f->claims, f->deferred[1], 200, f->bodies[1], strlen(f->bodies[1]), NULL);
        assert_int_equal(f->dones, 0);
        /* An answer nobody waits for changes nothing. */
        dra_claims_fetched(f->claims, 9999, 200, "{}", 2, NULL);
        dra_claims_fetched(f->claims, f->deferred[0], 200, f->bodies[0], strlen(f->bodies[0]), NULL);
        assert_int_equal(f->dones, 1);
        assert_int_equal(strv_length(f->results), 2);
        assert_true(startswith(f->results[0], UID_A " ok "));
        assert_true(startswith(f->results[1], UID_B " ok "));
        /* A late duplicate answer is ignored too. */
        dra_claims_fetched(f->claims, f->deferred[0], 200, f->bodies[0], strlen(f->bodies[0]), NULL);
        assert_int_equal(f->dones, 1);
}

static void test_prepare_errors(void **state)
{
        struct fake *f = *state;
        struct dra_claim_ref refs[] = {
                REF_A,
                { .namespace = "default",
                  .uid = "cccccccc-0000-4000-8000-000000000003",
                  .name = "claim-bad" },
                { .namespace = "default", .uid = "dddddddd", .name = "gone" },
                { .namespace = "default", .uid = "eeeeeeee", .name = "unreachable" },
        };
        assert_int_equal(dra_claims_prepare(f->claims, refs, 4, record_prepare, f), 0);
        /* One bad claim does not stop the others. */
        assert_strv(
                f->results,
                (const char *const[]){
                        UID_A " ok k8s.gpu.nvidia.com/claim=" UID_A "-gpu-1,k8s.gpu.nvidia.com/claim=" UID_A
                              "-gpu-3",
                        "cccccccc-0000-4000-8000-000000000003 error device gpu-9 is not one of the 8 "
                        "devices of node node-a",
                        "dddddddd error ResourceClaim default/gone not found",
                        "eeeeeeee error cannot read ResourceClaim default/unreachable: connection refused",
                        NULL });
        assert_int_equal(dra_claims_state(f->claims)->n_claims, 1);
}

static void test_prepare_spec_write_fails(void **state)
{
        struct fake *f = *state;
        f->fail_write = UID_B;
        struct dra_claim_ref refs[] = { REF_A, REF_B };
        assert_int_equal(dra_claims_prepare(f->claims, refs, 2, record_prepare, f), 0);
        assert_true(startswith(f->results[0], UID_A " ok "));
        assert_string_equal(f->results[1], UID_B " error cannot write the claim's CDI spec: disk full");
        assert_null(dra_state_find(dra_claims_state(f->claims), UID_B));
        _cleanup_free_ char *text = checkpoint_text(f);
        assert_null(strstr(text, UID_B));
}

static void test_prepare_checkpoint_fails(void **state)
{
        struct fake *f = *state;
        /* The checkpoint's directory is gone: nothing can be recorded, so nothing stays prepared. */
        free(f->checkpoint);
        assert_true(asprintf(&f->checkpoint, "%s/missing/checkpoint.json", f->dir) > 0);
        assert_int_equal(open_claims(f, NULL), 0);
        assert_int_equal(dra_claims_prepare(f->claims, &REF_A, 1, record_prepare, f), 0);
        _cleanup_free_ char *want = NULL;
        assert_true(
                asprintf(&want,
                         UID_A
                         " error cannot record the prepared claim: cannot write DRA checkpoint %s: No such "
                         "file or directory",
                         f->checkpoint) > 0);
        assert_string_equal(f->results[0], want);
        assert_strv(f->log, (const char *const[]){ "write " UID_A, "remove " UID_A, NULL });
        assert_int_equal(dra_claims_state(f->claims)->n_claims, 0);
}

static void test_unprepare(void **state)
{
        struct fake *f = *state;
        struct dra_claim_ref refs[] = { REF_A, REF_B };
        assert_int_equal(dra_claims_prepare(f->claims, refs, 2, record_prepare, f), 0);
        f->log = strv_free(f->log);

        struct dra_claim_ref un[] = { REF_A,
                                      { .namespace = "default", .uid = "ffffffff", .name = "never" } };
        assert_int_equal(dra_claims_unprepare(f->claims, un, 2, record_unprepare, f), 0);
        /* Exactly what was prepared goes; a claim never prepared here is already unprepared. */
        assert_strv(f->results, (const char *const[]){ UID_A " ok", "ffffffff ok", NULL });
        assert_strv(f->log, (const char *const[]){ "remove " UID_A, NULL });
        _cleanup_free_ char *text = checkpoint_text(f);
        assert_null(strstr(text, UID_A));
        assert_non_null(strstr(text, UID_B));

        /* Again: nothing left to do. */
        f->log = strv_free(f->log);
        assert_int_equal(dra_claims_unprepare(f->claims, un, 1, record_unprepare, f), 0);
        assert_strv(f->results, (const char *const[]){ UID_A " ok", NULL });
        assert_null(f->log);
}

static void test_unprepare_remove_fails(void **state)
{
        struct fake *f = *state;
        assert_int_equal(dra_claims_prepare(f->claims, &REF_B, 1, record_prepare, f), 0);
        f->fail_remove = UID_B;
        assert_int_equal(dra_claims_unprepare(f->claims, &REF_B, 1, record_unprepare, f), 0);
        assert_strv(f->results,
                    (const char *const[]){
                            UID_B " cannot remove the claim's CDI spec: read-only file system", NULL });
        /* Still recorded: the kubelet's retry removes it. */
        assert_non_null(dra_state_find(dra_claims_state(f->claims), UID_B));
        f->fail_remove = NULL;
        assert_int_equal(dra_claims_unprepare(f->claims, &REF_B, 1, record_unprepare, f), 0);
        assert_strv(f->results, (const char *const[]){ UID_B " ok", NULL });
        assert_null(dra_state_find(dra_claims_state(f->claims), UID_B));
}

static void test_unprepare_while_preparing(void **state)
{
        struct fake *f = *state;
        f->defer = true;
        assert_int_equal(dra_claims_prepare(f->claims, &REF_A, 1, record_prepare, f), 0);
        /* The kubelet gave up waiting and unprepares; then the read comes back. */
        assert_int_equal(dra_claims_unprepare(f->claims, &REF_A, 1, record_unprepare, f), 0);
        assert_strv(f->results, (const char *const[]){ UID_A " ok", NULL });
        dra_claims_fetched(f->claims, f->deferred[0], 200, f->bodies[0], strlen(f->bodies[0]), NULL);
        assert_strv(f->results,
                    (const char *const[]){
                            UID_A " error the claim was unprepared while it was being prepared", NULL });
        assert_null(f->log); /* no spec written: nothing leaks */
        assert_int_equal(dra_claims_state(f->claims)->n_claims, 0);
}

static void test_restart_and_recover(void **state)
{
        struct fake *f = *state;
        struct dra_claim_ref refs[] = { REF_A, REF_B };
        assert_int_equal(dra_claims_prepare(f->claims, refs, 2, record_prepare, f), 0);

        /* nvdp restarts: the same claims are prepared, read from the checkpoint. */
        assert_int_equal(open_claims(f, NULL), 0);
        assert_int_equal(dra_claims_state(f->claims)->n_claims, 2);
        f->log = strv_free(f->log);
        char *files[] = {
                (char *)"k8s.gpu.nvidia.com-claim_" UID_A ".json",
                (char *)"k8s.gpu.nvidia.com-claim_99999999-dead.json", /* a crash left it unrecorded */
                (char *)"nvidia.com-gpu.json", NULL
        };
        size_t removed = 0;
        assert_int_equal(dra_claims_recover(f->claims, files, &removed, NULL), 0);
        assert_int_equal(removed, 1);
        /* Every recorded claim's spec again (B's was lost with a reboot's tmpfs), the orphan removed,
         * other files left alone. */
        assert_strv(f->log,
                    (const char *const[]){ "write " UID_A, "write " UID_B, "remove 99999999-dead", NULL });

        /* And a repeated prepare after the restart does not prepare twice. */
        f->log = strv_free(f->log);
        size_t fetches = f->fetches;
        assert_int_equal(dra_claims_prepare(f->claims, refs, 2, record_prepare, f), 0);
        assert_int_equal(f->fetches, fetches);
        assert_null(f->log);
        assert_true(startswith(f->results[1], UID_B " ok "));
}

static void test_recover_reports_failures(void **state)
{
        struct fake *f = *state;
        assert_int_equal(dra_claims_prepare(f->claims, &REF_A, 1, record_prepare, f), 0);
        f->fail_write = UID_A;
        _cleanup_free_ char *error = NULL;
        assert_int_equal(dra_claims_recover(f->claims, NULL, NULL, &error), -ENOSPC);
        assert_string_equal(error, "disk full");
}

static void test_too_many_pending(void **state)
{
        struct fake *f = *state;
        f->defer = true;
        for (unsigned i = 0; i < DRA_MAX_PENDING_PREPARES; i++) {
                f->n_deferred = 0;
                assert_int_equal(dra_claims_prepare(f->claims, &REF_A, 1, record_prepare, f), 0);
        }
        assert_int_equal(dra_claims_prepare(f->claims, &REF_A, 1, record_prepare, f), -EBUSY);
        assert_int_equal(f->dones, 0);
}

static void test_damaged_checkpoint(void **state)
{
        struct fake *f = *state;
        FILE *out = fopen(f->checkpoint, "we");
        assert_non_null(out);
        fputs("{\"kind\":", out);
        fclose(out);
        _cleanup_free_ char *error = NULL, *want = NULL;
        assert_int_equal(open_claims(f, &error), -EINVAL);
        assert_true(asprintf(&want, "DRA checkpoint %s is damaged: not a JSON object", f->checkpoint) > 0);
        assert_string_equal(error, want);
        assert_null(f->claims);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_prepare_and_repeat, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prepare_waits_for_reads, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prepare_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prepare_spec_write_fails, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prepare_checkpoint_fails, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unprepare, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unprepare_remove_fails, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unprepare_while_preparing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restart_and_recover, setup, teardown),
                cmocka_unit_test_setup_teardown(test_recover_reports_failures, setup, teardown),
                cmocka_unit_test_setup_teardown(test_too_many_pending, setup, teardown),
                cmocka_unit_test_setup_teardown(test_damaged_checkpoint, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
