/* SPDX-License-Identifier: Apache-2.0 */
/* The client-side rate limit of client-go (flowcontrol.NewTokenBucketRateLimiter): a bucket of `burst`
 * tokens refilled at `qps` per second; each request takes one. Pure: the caller passes the time. */
#pragma once

#include <stdint.h>

#define KUBE_DEFAULT_QPS   5
#define KUBE_DEFAULT_BURST 10

struct token_bucket {
        uint64_t nsec_per_token;
        uint64_t burst_nsec;  /* burst * nsec_per_token: the most credit the bucket holds */
        uint64_t credit_nsec; /* tokens held, in nsec of refill time */
        uint64_t last;
};

/* Starts full. qps and burst must be > 0. */
void token_bucket_init(struct token_bucket *b, unsigned qps, unsigned burst, uint64_t now_nsec);
/* Takes a token: 0 when one was there, else how long to wait (nsec) until one is (nothing taken then). */
uint64_t token_bucket_take(struct token_bucket *b, uint64_t now_nsec);
