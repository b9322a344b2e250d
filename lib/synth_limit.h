/* gr-synth pacing: token buckets for --rpm/--tpm, exponential backoff with
 * jitter for retries. Pure functions of the times passed in (seconds on any
 * monotonic clock), so the tests drive them with a fake clock. */
#ifndef SYNTH_LIMIT_H
#define SYNTH_LIMIT_H
#include <stdint.h>

/* A bucket refilled at per_minute/60 units a second, holding at most ten
 * seconds' worth (so a start-up burst stays small), starting full. A take
 * larger than the capacity is allowed once the bucket is full and leaves it
 * in debt, which later refills pay back. per_minute <= 0: unlimited. */
typedef struct synth_bucket {
    double rate;  /* units per second; 0 = unlimited */
    double cap;
    double level;
    double t;     /* time of the last refill */
} synth_bucket;

void synth_bucket_init(synth_bucket *b, double per_minute, double now);
/* Seconds from now until `amount` may be taken (0: now). */
double synth_bucket_wait(synth_bucket *b, double amount, double now);
void synth_bucket_take(synth_bucket *b, double amount, double now);
/* Corrects an earlier take by delta units (actual usage minus the estimate). */
void synth_bucket_adjust(synth_bucket *b, double delta);

/* The delay before retry number `retry` (1 for the first retry):
 * d = min(max, base * 2^(retry-1)), drawn uniformly from [d/2, d] ("equal
 * jitter", so that many clients do not retry in lock-step). A server's
 * Retry-After (retry_after >= 0 seconds) replaces it, capped at one hour. */
double synth_backoff(int retry, double base, double max, double retry_after, uint64_t *rng);

/* xorshift64*: the jitter's random numbers in [0, 1). *state must not be 0. */
double synth_rand01(uint64_t *state);
#endif
