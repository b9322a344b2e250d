/* gr_expf_n (kernels/cpu/cpu_expf.h) returns exactly what expf returns: on every
 * 61st float bit pattern of [-110, 95] (the vector path's range and past both
 * of its ends), on the boundaries, and on the special values. */
#include "test.h"
#include "cpu_expf.h"
#include <stdint.h>

static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static int check_block(const float *x, int n, char *msg) {
    float y[64];
    memcpy(y, x, sizeof(float) * (size_t)n);
    gr_expf_n(y, n);
    for (int i = 0; i < n; i++) {
        float ref = expf(x[i]);
        if (to_bits(y[i]) != to_bits(ref) && !(isnan(ref) && isnan(y[i]))) {
            sprintf(msg, "expf(%a): %a, expected %a", x[i], y[i], ref);
            return 0;
        }
    }
    return 1;
}

TEST(expf_exact_over_range) {
    char msg[160];
    float buf[64];
    int n = 0;
    /* negative floats: bit patterns grow with magnitude; positive likewise */
    uint32_t ranges[2][2] = {{to_bits(-0.0f), to_bits(-110.0f)}, {to_bits(0.0f), to_bits(95.0f)}};
    for (int r = 0; r < 2; r++)
        for (uint32_t u = ranges[r][0]; u <= ranges[r][1]; u += 13) {
            buf[n++] = from_bits(u);
            if (n == 64) {
                CHECK_MSG(check_block(buf, n, msg), "%s", msg);
                n = 0;
            }
        }
    if (n) CHECK_MSG(check_block(buf, n, msg), "%s", msg);
}

TEST(expf_specials_and_tails) {
    char msg[160];
    float x[] = {-103.0f, 88.0f, -103.00001f, 88.00001f, -INFINITY, INFINITY, NAN, 0.0f, -0.0f,
                 1e-30f, -1e-30f, 88.7f, 89.0f, -87.3f, -150.0f, 1.0f, 0.5f};
    int n = (int)(sizeof x / sizeof x[0]);
    CHECK_MSG(check_block(x, n, msg), "%s", msg);
    /* and with every lane offset, so a special value meets the 8-lane path */
    for (int off = 0; off < 8; off++) {
        float y[16];
        for (int i = 0; i < 16; i++) y[i] = 0.25f * (float)i - 2.0f;
        y[off] = NAN;
        y[off + 8] = -INFINITY;
        CHECK_MSG(check_block(y, 16, msg), "%s", msg);
    }
}

/* gr_expf_fast: within 2 ulp of exp (computed in double) on [-87, 88], exactly
 * 0 below -87, and the 8-lane form gives the scalar form's bits. */
TEST(expf_fast_accuracy_and_lanes) {
    double worst = 0;
    for (uint32_t r = 0; r < 2; r++) {
        uint32_t lo = r ? to_bits(0.0f) : to_bits(-0.0f), hi = r ? to_bits(88.0f) : to_bits(-87.0f);
        for (uint32_t u = lo; u <= hi; u += 97) {
            float x = from_bits(u), y = gr_expf_fast(x);
            double ref = exp((double)x), err = fabs(y - ref) / ref;
            if (err > worst) worst = err;
            CHECK_MSG(err <= 2.4e-7, "gr_expf_fast(%a) = %a, exp = %a", x, y, ref);
        }
    }
    CHECK(gr_expf_fast(-87.01f) == 0.0f && gr_expf_fast(-INFINITY) == 0.0f &&
          gr_expf_fast(-1000.0f) == 0.0f && gr_expf_fast(0.0f) == 1.0f);
#if GR_EXPF_AVX
    float x[64];
    for (int t = 0; t < 4000; t++) {
        for (int i = 0; i < 8; i++) x[i] = (float)((t * 8 + i) % 4000) * 0.044f - 90.0f;
        if (t % 7 == 0) x[t % 8] = -INFINITY;
        float y[8];
        _mm256_storeu_ps(y, gr_expf8_fast(_mm256_loadu_ps(x)));
        for (int i = 0; i < 8; i++)
            CHECK_MSG(to_bits(y[i]) == to_bits(gr_expf_fast(x[i])), "lane %d, x %a: %a vs %a", i,
                      x[i], y[i], gr_expf_fast(x[i]));
    }
#endif
    (void)worst;
}

int main(void) {
    RUN(expf_exact_over_range);
    RUN(expf_specials_and_tails);
    RUN(expf_fast_accuracy_and_lanes);
    return TEST_EXIT();
}
