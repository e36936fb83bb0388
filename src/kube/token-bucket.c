/* SPDX-License-Identifier: Apache-2.0 */
#include "token-bucket.h"

#include "base/parse.h"

void token_bucket_init(struct token_bucket *b, unsigned qps, unsigned burst, uint64_t now_nsec)
{
        b->nsec_per_token = NSEC_PER_SEC / (qps ? qps : 1);
        b->burst_nsec = b->nsec_per_token * (burst ? burst : 1);
        b->credit_nsec = b->burst_nsec;
        b->last = now_nsec;
}

uint64_t token_bucket_take(struct token_bucket *b, uint64_t now_nsec)
{
        if (now_nsec > b->last) {
                /* Credit above the burst is not kept. */
                b->credit_nsec = MIN(b->burst_nsec, b->credit_nsec + (now_nsec - b->last));
                b->last = now_nsec;
        }
        if (b->credit_nsec < b->nsec_per_token)
                return b->nsec_per_token - b->credit_nsec;
        b->credit_nsec -= b->nsec_per_token;
        return 0;
}
