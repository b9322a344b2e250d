#include "synth_limit.h"
#include <math.h>

void synth_bucket_init(synth_bucket *b, double per_minute, double now) {
    b->rate = per_minute > 0 ? per_minute / 60.0 : 0;
    b->cap = b->rate * 10.0;
    if (b->rate > 0 && b->cap < 1) b->cap = 1;
    b->level = b->cap;
    b->t = now;
}

static void refill(synth_bucket *b, double now) {
    if (now > b->t) {
        b->level += (now - b->t) * b->rate;
        if (b->level > b->cap) b->level = b->cap;
    }
    b->t = now;
}

double synth_bucket_wait(synth_bucket *b, double amount, double now) {
    if (b->rate <= 0) return 0;
    refill(b, now);
    double need = amount < b->cap ? amount : b->cap;
    if (b->level >= need) return 0;
    return (need - b->level) / b->rate;
}

void synth_bucket_take(synth_bucket *b, double amount, double now) {
    if (b->rate <= 0) return;
    refill(b, now);
    b->level -= amount;
}

void synth_bucket_adjust(synth_bucket *b, double delta) {
    if (b->rate <= 0) return;
    b->level -= delta;
    if (b->level > b->cap) b->level = b->cap;
}

double synth_rand01(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) * (1.0 / 9007199254740992.0);
}

double synth_backoff(int retry, double base, double max, double retry_after, uint64_t *rng) {
    if (retry_after >= 0) return retry_after < 3600 ? retry_after : 3600;
    if (retry < 1) retry = 1;
    double d = retry > 60 ? max : base * ldexp(1.0, retry - 1);
    if (d > max) d = max;
    return d / 2 + synth_rand01(rng) * d / 2;
}
