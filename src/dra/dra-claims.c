/* SPDX-License-Identifier: Apache-2.0 */
/* The prepared claims of a node: NodePrepareResources and NodeUnprepareResources over the checkpoint, with
 * the API server reads and CDI spec writes done through the caller's ops. */
#include <inttypes.h>
#include <stdarg.h>

#include "base/error.h"
#include "base/strv.h"
#include "dra.h"

struct entry {
        char *uid, *namespace, *name;
        uint64_t token;          /* of its read; 0: none */
        bool waiting;            /* its read has not answered */
        bool from_record;        /* answered from the checkpointed record */
        bool cancelled;          /* unprepared while its read was out */
        struct dra_claim *claim; /* resolved, not yet recorded */
        char *error;
};

/* One NodePrepareResources call. */
struct pending {
        struct pending *next;
        struct entry *entries;
        size_t n, waiting;
        bool issuing; /* its reads are being started: do not finish yet */
        dra_prepare_done_fn done;
        void *userdata;
};

struct dra_claims {
        struct dra_claims_params params;
        struct dra_claims_ops ops;
        void *userdata;
        struct dra_state state;
        struct dra_device *devs;
        size_t n_devs;
        struct pending *pending;
        size_t n_pending;
        uint64_t next_token;
};

static void pending_free(struct pending *p)
{
        for (size_t i = 0; p && i < p->n; i++) {
                struct entry *e = &p->entries[i];
                free(e->uid);
                free(e->namespace);
                free(e->name);
                dra_claim_free(e->claim);
                free(e->error);
        }
        if (p)
                free(p->entries);
        free(p);
}

int dra_claims_new(const struct dra_claims_params *p, const struct dra_claims_ops *ops, void *userdata,
                   dra_claims **ret, char **ret_error)
{
        _cleanup_(dra_claims_freep) dra_claims *c = new0(dra_claims, 1);
        if (!c)
                return -ENOMEM;
        c->params = *p;
        c->ops = *ops;
        c->userdata = userdata;
        int r = dra_devices_list(p->inventory, &c->devs, &c->n_devs);
        if (r < 0)
                return r;
        r = dra_checkpoint_read(p->checkpoint, p->node, &c->state, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

dra_claims *dra_claims_free(dra_claims *c)
{
        if (!c)
                return NULL;
        while (c->pending) {
                struct pending *p = c->pending;
                c->pending = p->next;
                pending_free(p);
        }
        dra_state_done(&c->state);
        free(c->devs);
        return mfree(c);
}

const struct dra_state *dra_claims_state(const dra_claims *c)
{
        return &c->state;
}

/* Keeps the first error of a series: r and the sentence. */
static int first_error(int r, char **error, int k, char **why)
{
        if (k < 0 && r == 0) {
                free(*error);
                *error = TAKE_PTR(*why);
                return k;
        }
        *why = mfree(*why);
        return r;
}

int dra_claims_recover(dra_claims *c, char *const *spec_files, size_t *ret_removed, char **ret_error)
{
        int r = 0;
        _cleanup_free_ char *error = NULL;
        for (size_t i = 0; i < c->state.n_claims; i++) {
                char *why = NULL;
                int k = c->ops.write_spec(c->userdata, c->state.claims[i], &why);
                r = first_error(r, &error, k, &why);
        }
        size_t removed = 0;
        STRV_FOREACH (f, spec_files) {
                _cleanup_free_ char *uid = NULL;
                if (!dra_claim_spec_filename_parse(*f, &uid) || dra_state_find(&c->state, uid))
                        continue;
                char *why = NULL;
                int k = c->ops.remove_spec(c->userdata, uid, &why);
                if (k >= 0)
                        removed++;
                r = first_error(r, &error, k, &why);
        }
        if (ret_removed)
                *ret_removed = removed;
        if (r < 0)
                return error_set(ret_error, r, "%s", strna(error));
        return 0;
}

static int entry_fail(struct entry *e, const char *fmt, ...) _printf_(2, 3);
static int entry_fail(struct entry *e, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        free(e->error);
        if (vasprintf(&e->error, fmt, ap) < 0)
                e->error = NULL;
        va_end(ap);
        e->claim = dra_claim_free(e->claim);
        return e->error ? 0 : -ENOMEM;
}

/* Writes the specs of the newly resolved claims, records them, writes the checkpoint once, answers. */
static void pending_finish(dra_claims *c, struct pending *p)
{
        size_t n_new = 0;
        for (size_t i = 0; i < p->n; i++) {
                struct entry *e = &p->entries[i];
                if (!e->claim)
                        continue;
                _cleanup_free_ char *why = NULL;
                if (c->ops.write_spec(c->userdata, e->claim, &why) < 0) {
                        entry_fail(e, "cannot write the claim's CDI spec: %s", strna(why));
                        continue;
                }
                struct dra_claim *claim = TAKE_PTR(e->claim);
                int r = dra_state_put(&c->state, claim); /* takes it, also on failure */
                if (r < 0) {
                        (void)c->ops.remove_spec(c->userdata, e->uid, NULL);
                        entry_fail(e,
                                   r == -ENOSPC ? "this node holds %u prepared claims, the most nvdp keeps"
                                                : "out of memory recording the claim (%u)",
                                   DRA_MAX_CLAIMS);
                        continue;
                }
                e->from_record = true;
                n_new++;
        }
        if (n_new > 0) {
                _cleanup_free_ char *why = NULL;
                if (dra_checkpoint_write(c->params.checkpoint, c->params.node, &c->state, &why) < 0)
                        /* Not recorded, not prepared: take every new claim back out, with its spec. */
                        for (size_t i = 0; i < p->n; i++) {
                                struct entry *e = &p->entries[i];
                                if (!e->from_record || e->token == 0)
                                        continue;
                                dra_claim_free(dra_state_take(&c->state, e->uid));
                                (void)c->ops.remove_spec(c->userdata, e->uid, NULL);
                                e->from_record = false;
                                entry_fail(e, "cannot record the prepared claim: %s", strna(why));
                        }
        }

        struct dra_prepare_result *results = new0(struct dra_prepare_result, p->n + 1);
        for (size_t i = 0; results && i < p->n; i++) {
                struct entry *e = &p->entries[i];
                results[i].uid = e->uid;
                results[i].claim = e->from_record ? dra_state_find(&c->state, e->uid) : NULL;
                if (!results[i].claim)
                        results[i].error = e->error ? e->error
                                           : e->from_record
                                                   ? "the claim was unprepared while this call waited"
                                                   : "out of memory";
        }
        /* Unlinked before the callback: it may start another call. */
        struct pending **pp = &c->pending;
        while (*pp != p)
                pp = &(*pp)->next;
        *pp = p->next;
        c->n_pending--;
        /* Out of memory for the results: the caller still hears, with none (and fails the call). */
        p->done(p->userdata, results, results ? p->n : 0);
        free(results);
        pending_free(p);
}

static int entry_copy(struct entry *e, const struct dra_claim_ref *ref)
{
        e->uid = strdup(ref->uid);
        e->namespace = strdup(ref->namespace);
        e->name = strdup(ref->name);
        return e->uid && e->namespace && e->name ? 0 : -ENOMEM;
}

int dra_claims_prepare(dra_claims *c, const struct dra_claim_ref *refs, size_t n, dra_prepare_done_fn done,
                       void *userdata)
{
        if (c->n_pending >= DRA_MAX_PENDING_PREPARES)
                return -EBUSY;
        struct pending *p = new0(struct pending, 1);
        if (!p || !(p->entries = new0(struct entry, n + 1))) {
                pending_free(p);
                return -ENOMEM;
        }
        p->n = n;
        p->done = done;
        p->userdata = userdata;
        for (size_t i = 0; i < n; i++)
                if (entry_copy(&p->entries[i], &refs[i]) < 0) {
                        pending_free(p);
                        return -ENOMEM;
                }
        p->next = c->pending;
        c->pending = p;
        c->n_pending++;

        /* Reads may answer inside fetch: the call finishes only once every read was started. */
        p->issuing = true;
        for (size_t i = 0; i < n; i++) {
                struct entry *e = &p->entries[i];
                if (dra_state_find(&c->state, e->uid)) {
                        e->from_record = true;
                        continue;
                }
                e->token = ++c->next_token;
                e->waiting = true;
                p->waiting++;
                struct dra_claim_ref ref = { .namespace = e->namespace, .uid = e->uid, .name = e->name };
                _cleanup_free_ char *why = NULL;
                int r = c->ops.fetch(c->userdata, &ref, e->token, &why);
                if (r < 0 && e->waiting) {
                        e->waiting = false;
                        p->waiting--;
                        entry_fail(e, "cannot read ResourceClaim %s/%s: %s", e->namespace, e->name,
                                   why ? why : strerror(-r));
                }
        }
        p->issuing = false;
        if (p->waiting == 0)
                pending_finish(c, p);
        return 0;
}

void dra_claims_fetched(dra_claims *c, uint64_t token, int status, const char *body, size_t size,
                        const char *error)
{
        for (struct pending *p = c->pending; p; p = p->next)
                for (size_t i = 0; i < p->n; i++) {
                        struct entry *e = &p->entries[i];
                        if (e->token != token || !e->waiting)
                                continue;
                        e->waiting = false;
                        p->waiting--;
                        struct dra_claim_ref ref = { .namespace = e->namespace,
                                                     .uid = e->uid,
                                                     .name = e->name };
                        _cleanup_free_ char *why = NULL;
                        if (e->cancelled)
                                entry_fail(e, "the claim was unprepared while it was being prepared");
                        else if (status == 404)
                                entry_fail(e, "ResourceClaim %s/%s not found", e->namespace, e->name);
                        else if (status < 200 || status > 299)
                                entry_fail(e, "cannot read ResourceClaim %s/%s: %s", e->namespace, e->name,
                                           error ? error : "no answer");
                        else if (dra_claim_resolve(body, size, &ref, c->params.node, c->devs, c->n_devs,
                                                   c->params.health, &e->claim, &why) < 0)
                                entry_fail(e, "%s", why ? why : "out of memory");
                        if (p->waiting == 0 && !p->issuing)
                                pending_finish(c, p);
                        return;
                }
}

int dra_claims_unprepare(dra_claims *c, const struct dra_claim_ref *refs, size_t n,
                         dra_unprepare_done_fn done, void *userdata)
{
        _cleanup_free_ struct dra_unprepare_result *results = new0(struct dra_unprepare_result, n + 1);
        _cleanup_free_ struct dra_claim **removed = new0(struct dra_claim *, n + 1);
        _cleanup_free_ char **errors = new0(char *, n + 1); /* sparse; its strings are freed at the end */
        if (!results || !removed || !errors)
                return -ENOMEM;
        for (struct pending *p = c->pending; p; p = p->next)
                for (size_t i = 0; i < p->n; i++)
                        for (size_t j = 0; j < n; j++)
                                if (streq(p->entries[i].uid, refs[j].uid))
                                        p->entries[i].cancelled = true;

        size_t n_removed = 0;
        for (size_t j = 0; j < n; j++) {
                results[j].uid = refs[j].uid;
                struct dra_claim *rec = dra_state_take(&c->state, refs[j].uid);
                if (!rec)
                        continue; /* never prepared here, or already unprepared */
                _cleanup_free_ char *why = NULL;
                if (c->ops.remove_spec(c->userdata, rec->uid, &why) < 0) {
                        if (asprintf(&errors[j], "cannot remove the claim's CDI spec: %s", strna(why)) < 0)
                                errors[j] = NULL;
                        results[j].error = errors[j] ? errors[j] : "cannot remove the claim's CDI spec";
                        (void)dra_state_put(&c->state, rec);
                        continue;
                }
                removed[n_removed++] = rec;
        }
        if (n_removed > 0) {
                _cleanup_free_ char *why = NULL;
                if (dra_checkpoint_write(c->params.checkpoint, c->params.node, &c->state, &why) < 0) {
                        /* Still recorded on disk: keep the records, so a retry removes them for good (their
                         * specs are gone, which a retry does not mind). */
                        for (size_t k = 0; k < n_removed; k++) {
                                for (size_t j = 0; j < n; j++)
                                        if (streq(refs[j].uid, removed[k]->uid) && !results[j].error) {
                                                if (asprintf(&errors[j],
                                                             "cannot record the unprepared claim: %s",
                                                             strna(why)) < 0)
                                                        errors[j] = NULL;
                                                results[j].error =
                                                        errors[j] ? errors[j]
                                                                  : "cannot record the unprepared claim";
                                        }
                                (void)dra_state_put(&c->state, TAKE_PTR(removed[k]));
                        }
                }
        }
        for (size_t k = 0; k < n_removed; k++)
                dra_claim_free(removed[k]);
        done(userdata, results, n);
        for (size_t j = 0; j < n; j++)
                errors[j] = mfree(errors[j]);
        return 0;
}
