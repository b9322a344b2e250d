/* Sampling: greedy ties, the vLLM top-p rule on hand-computed cases, and a
 * fixed-seed statistical test of temperature + top-p (and top-k) draws against
 * the analytic distribution (chi-square; deterministic, so never flaky). */
#include <stdlib.h>
#include "test.h"
#include "sample.h"

TEST(greedy_first_max) {
    float x[5] = {1, 3, 2, 3, -1};
    gr_sampler s = {0, 1, 0};
    gr_sample_buf b;
    gr_sample_buf_init(&b, 5);
    float lp;
    CHECK(gr_sample(x, 5, &s, NULL, &b, &lp) == 1);
    double sum = 0;
    for (int i = 0; i < 5; i++) sum += exp(x[i]);
    CHECK_NEAR(lp, 3 - log(sum), 1e-6);
    gr_sample_buf_free(&b);
}

/* Greedy over vocabulary-sized rows (the vectorized scan): the first index of
 * the largest value, as a plain scan finds it, with ties, signed zeros, NaNs
 * (passed over; a NaN at 0 stays) and infinities. */
static int scan_argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

TEST(greedy_long_rows_match_scan) {
    enum { N = 1000 };
    static float x[N];
    gr_sampler s = {0, 1, 0};
    gr_sample_buf b;
    gr_sample_buf_init(&b, N);
    unsigned r = 7;
    for (int trial = 0; trial < 400; trial++) {
        int n = 1 + trial * 7 % N;
        for (int i = 0; i < n; i++) {
            r = r * 1103515245u + 12345u;
            x[i] = (float)((r >> 16) % 9) - 8.0f; /* many ties, max often 0 */
            if (trial % 3 == 0 && (r >> 8) % 5 == 0) x[i] = -0.0f;
            if (trial % 4 == 1 && (r >> 9) % 7 == 0) x[i] = NAN;
            if (trial % 5 == 2 && (r >> 10) % 11 == 0) x[i] = -INFINITY;
        }
        if (trial % 10 == 3) x[0] = NAN;
        if (trial % 10 == 4) for (int i = 0; i < n; i++) x[i] = -INFINITY;
        if (trial % 10 == 5) x[n - 1] = INFINITY;
        CHECK_MSG(gr_sample(x, n, &s, NULL, &b, NULL) == scan_argmax(x, n), "trial %d n %d", trial, n);
    }
    gr_sample_buf_free(&b);
}

/* Draw many samples; returns counts. */
static void draw(const float *x, int n, gr_sampler s, uint64_t seed, int draws, long *counts) {
    gr_sample_buf b;
    gr_sample_buf_init(&b, n);
    gr_rng r;
    gr_rng_seed(&r, seed, 0);
    memset(counts, 0, sizeof(long) * (size_t)n);
    for (int i = 0; i < draws; i++) counts[gr_sample(x, n, &s, &r, &b, NULL)]++;
    gr_sample_buf_free(&b);
}

TEST(top_p_rule_hand_case) {
    /* probs .5 .3 .15 .05; p = .8 keeps {0,1} (mass .8 reached), p = .81 keeps 3 */
    float x[4] = {logf(.5f), logf(.3f), logf(.15f), logf(.05f)};
    long c[4];
    draw(x, 4, (gr_sampler){1.0f, 0.79f, 0}, 1, 20000, c);
    CHECK(c[0] > 0 && c[1] > 0 && c[2] == 0 && c[3] == 0);
    draw(x, 4, (gr_sampler){1.0f, 0.81f, 0}, 1, 20000, c);
    CHECK(c[0] > 0 && c[1] > 0 && c[2] > 0 && c[3] == 0);
    draw(x, 4, (gr_sampler){1.0f, 0.01f, 0}, 1, 2000, c);
    CHECK(c[0] == 2000); /* the argmax is always kept */
    draw(x, 4, (gr_sampler){1.0f, 1.0f, 2}, 1, 20000, c);
    CHECK(c[0] > 0 && c[1] > 0 && c[2] == 0 && c[3] == 0);
}

/* The analytic distribution, computed directly from the definition. */
static void analytic(const float *x, int n, float T, float p, int k, double *q) {
    int order[64];
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 0; i < n; i++) /* selection sort, descending */
        for (int j = i + 1; j < n; j++)
            if (x[order[j]] > x[order[i]]) { int t = order[i]; order[i] = order[j]; order[j] = t; }
    int kk = k > 0 && k < n ? k : n;
    double z = 0;
    for (int r = 0; r < kk; r++) z += exp(x[order[r]] / T);
    int kept = 0;
    double above = 0;
    for (int r = 0; r < kk; r++) {
        if (r > 0 && above >= p) break;
        above += exp(x[order[r]] / T) / z;
        kept++;
    }
    double m = 0;
    for (int r = 0; r < kept; r++) m += exp(x[order[r]] / T);
    for (int i = 0; i < n; i++) q[i] = 0;
    for (int r = 0; r < kept; r++) q[order[r]] = exp(x[order[r]] / T) / m;
}

static void chi_square(const char *test_name_, float T, float p, int k) {
    float x[12] = {2.0f, 1.5f, 1.4f, 0.3f, -0.2f, 1.0f, 0.9f, -1.0f, 0.0f, 0.5f, -3.0f, 1.2f};
    double q[12];
    long c[12];
    const int N = 200000;
    analytic(x, 12, T, p, k, q);
    draw(x, 12, (gr_sampler){T, p, k}, 12345, N, c);
    double chi = 0;
    int df = -1;
    for (int i = 0; i < 12; i++) {
        if (q[i] == 0) {
            CHECK_MSG(c[i] == 0, "token %d is filtered out but drawn %ld times", i, c[i]);
            continue;
        }
        double e = q[i] * N;
        chi += (c[i] - e) * (c[i] - e) / e;
        df++;
    }
    CHECK(df >= 2);
    /* mean df, sd sqrt(2 df): 5 sd is far beyond any honest fluctuation */
    CHECK_MSG(chi < df + 5 * sqrt(2.0 * df), "chi-square %g with %d degrees of freedom", chi, df);
}

TEST(temperature_top_p_matches_analytic) { chi_square(test_name_, 0.7f, 0.95f, 0); }
TEST(top_p_tight_matches_analytic) { chi_square(test_name_, 1.0f, 0.6f, 0); }
TEST(top_k_top_p_matches_analytic) { chi_square(test_name_, 1.3f, 0.9f, 5); }
TEST(plain_temperature_matches_analytic) { chi_square(test_name_, 1.0f, 1.0f, 0); }

TEST(streams_are_reproducible) {
    gr_rng a, b, c;
    gr_rng_seed(&a, 7, 3);
    gr_rng_seed(&b, 7, 3);
    gr_rng_seed(&c, 7, 4);
    int same = 1, diff = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = gr_rng_next(&a), y = gr_rng_next(&b), z = gr_rng_next(&c);
        same &= x == y;
        diff += x != z;
    }
    CHECK(same && diff > 95);
    double u = gr_rng_uniform(&a);
    CHECK(u >= 0 && u < 1);
}

int main(void) {
    (void)test_shared_dir;
    RUN(greedy_first_max);
    RUN(greedy_long_rows_match_scan);
    RUN(top_p_rule_hand_case);
    RUN(temperature_top_p_matches_analytic);
    RUN(top_p_tight_matches_analytic);
    RUN(top_k_top_p_matches_analytic);
    RUN(plain_temperature_matches_analytic);
    RUN(streams_are_reproducible);
    return TEST_EXIT();
}
