/* The integer dot products of kernels/cpu/q8.c against a double-precision
 * reference on the dequantized weights (gr_dequantize, itself checked against
 * the gguf package in test_quant.c) with the stated bound: |dot - ref| <=
 * Σ_b d_b/2 · Σ_{i∈b} |w_i| (activation rounding) + 2e-6 · Σ|w_i x_i| (float sums);
 * every test at every ISA level this CPU runs (scalar, AVX2, AVX-512 with
 * VNNI), and the VNNI kernels bit for bit against the AVX2 ones. */
#include "test.h"
#include "q8.h"
#include "model.h"
#include "quant.h"
#include "backend.h"
#include "isa.h"
#include <stdint.h>

static unsigned rng = 12345;
static unsigned next(void) { return rng = rng * 1103515245u + 12345u; }
static float unit(void) { return (float)((next() >> 8) & 0xffff) / 65536.0f - 0.5f; }

/* v to the nearest f16 (by scanning: slow, fine for a test) */
static void put_f16(uint8_t *p, float v) {
    uint16_t best = 0;
    float bd = INFINITY;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float f = gr_f16_to_f32((uint16_t)h), e = fabsf(f - fabsf(v));
        if (e < bd) { bd = e; best = (uint16_t)h; }
        if (f > fabsf(v)) break;
    }
    if (v < 0) best |= 0x8000;
    p[0] = (uint8_t)best;
    p[1] = (uint8_t)(best >> 8);
}

/* A random row of `type`, cols/32 blocks; extreme = 1 puts -128/127 and 0/15 codes in. */
static size_t make_row(int type, int cols, uint8_t *w, int extreme) {
    size_t bs = type == GR_Q8_0 ? 34 : type == GR_Q4_0 ? 18 : 20;
    for (int b = 0; b < cols / 32; b++) {
        uint8_t *p = w + bs * (size_t)b;
        put_f16(p, (float)((next() >> 16) % 64 + 1) / 1024.0f * ((next() & 1) ? 1 : -1));
        if (type == GR_Q4_1) put_f16(p + 2, unit() * 0.1f);
        uint8_t *q = p + (type == GR_Q4_1 ? 4 : 2);
        int nq = type == GR_Q8_0 ? 32 : 16;
        for (int i = 0; i < nq; i++) {
            q[i] = (uint8_t)(next() >> 12);
            if (extreme) q[i] = type == GR_Q8_0 ? (uint8_t)((i & 1) ? 0x80 : 0x7f) : (uint8_t)((i & 1) ? 0xf0 : 0x0f);
        }
    }
    return bs * (size_t)(cols / 32);
}

static void check_type(const char *test_name_, int type) {
    enum { MAXC = 2048 };
    static uint8_t w[MAXC / 32 * 34];
    static float wf[MAXC], x[MAXC], d[MAXC / 32];
    static int8_t q[MAXC];
    static int32_t s[MAXC / 32];
    for (int trial = 0; trial < 200; trial++) {
        int cols = 32 * (1 + (int)(next() % (MAXC / 32)));
        make_row(type, cols, w, trial % 7 == 0);
        CHECK(gr_dequantize(type, w, wf, cols) == 0);
        float scale = trial % 5 == 0 ? 1e-3f : trial % 5 == 1 ? 100.0f : 1.0f;
        for (int i = 0; i < cols; i++) x[i] = unit() * scale;
        if (trial % 11 == 0) for (int i = 0; i < 32; i++) x[i] = 0; /* an all-zero block */
        gr_q8_quantize(x, cols, q, d, s);
        double ref = 0, mag = 0, bound = 0;
        for (int i = 0; i < cols; i++) {
            ref += (double)wf[i] * x[i];
            mag += fabs((double)wf[i] * x[i]);
        }
        for (int b = 0; b < cols / 32; b++) {
            double wa = 0;
            int32_t sum = 0;
            for (int i = 0; i < 32; i++) {
                wa += fabs(wf[32 * b + i]);
                sum += q[32 * b + i];
                /* each activation within half a step of its quantized value */
                CHECK(fabs((double)q[32 * b + i] * d[b] - x[32 * b + i]) <= d[b] * 0.5001 + 1e-30);
            }
            CHECK(s[b] == sum);
            bound += d[b] * 0.5 * wa;
        }
        float got = gr_q8_dot(type, w, q, d, s, cols), sc = gr_q8_dot_scalar(type, w, q, d, s, cols);
        /* the exact value for the quantized activations, to test the kernel alone */
        double refq = 0;
        for (int i = 0; i < cols; i++) refq += (double)wf[i] * q[i] * d[i / 32];
        double magq = 0;
        for (int i = 0; i < cols; i++) magq += fabs((double)wf[i] * q[i] * d[i / 32]);
        CHECK_MSG(fabs(got - refq) <= 2e-6 * magq + 1e-30, "type %d cols %d: kernel %g, exact %g", type,
                  cols, got, refq);
        CHECK_MSG(fabs(sc - refq) <= 2e-6 * magq + 1e-30, "type %d cols %d: scalar %g, exact %g", type,
                  cols, sc, refq);
        CHECK_MSG(fabs(got - ref) <= bound + 2e-6 * mag, "type %d cols %d: %g vs %g (bound %g)", type,
                  cols, got, ref, bound);
    }
}

TEST(q8_dot_q8_0) { check_type(test_name_, GR_Q8_0); }
TEST(q8_dot_q4_0) { check_type(test_name_, GR_Q4_0); }
TEST(q8_dot_q4_1) { check_type(test_name_, GR_Q4_1); }

/* Activations that are exact multiples of their block step lose nothing. */
TEST(q8_lossless_activations) {
    static uint8_t w[64 * 34];
    static float wf[2048], x[2048], d[64];
    static int8_t q[2048];
    static int32_t s[64];
    make_row(GR_Q8_0, 2048, w, 0);
    gr_dequantize(GR_Q8_0, w, wf, 2048);
    for (int i = 0; i < 2048; i++) x[i] = (float)((int)(next() % 255) - 127) * 0.25f;
    for (int b = 0; b < 64; b++) x[32 * b] = 127 * 0.25f; /* pins d_b = 0.25 */
    gr_q8_quantize(x, 2048, q, d, s);
    double ref = 0, mag = 0;
    for (int i = 0; i < 2048; i++) {
        ref += (double)wf[i] * x[i];
        mag += fabs((double)wf[i] * x[i]);
    }
    CHECK_NEAR(gr_q8_dot(GR_Q8_0, w, q, d, s, 2048), ref, 2e-6 * mag);
}

TEST(q8_supported_types) {
    CHECK(gr_q8_supported(GR_Q8_0, 64) && gr_q8_supported(GR_Q4_0, 32) && gr_q8_supported(GR_Q4_1, 576));
    CHECK(!gr_q8_supported(GR_F16, 64) && !gr_q8_supported(GR_Q8_0, 48) && !gr_q8_supported(GR_BF16, 32));
}

/* gr_q8_dot8 on a gr_q8_pack8 group gives each token gr_q8_dot's result, bit for
 * bit (extreme codes and all-zero blocks included). */
TEST(q8_dot8_matches_dot) {
    enum { MAXC = 1024 };
    const int types[] = {GR_Q8_0, GR_Q4_0, GR_Q4_1};
    static uint8_t w[MAXC / 32 * 34];
    static float x[8 * MAXC], d[8 * MAXC / 32], pd[8 * MAXC / 32];
    static int8_t q[8 * MAXC], pq[8 * MAXC];
    static int32_t s[8 * MAXC / 32], ps[8 * MAXC / 32];
    for (int trial = 0; trial < 60; trial++) {
        int type = types[trial % 3], cols = 32 * (1 + (int)(next() % (MAXC / 32)));
        make_row(type, cols, w, trial % 7 == 0);
        for (int i = 0; i < 8 * cols; i++) x[i] = unit() * (trial % 5 == 0 ? 1e-3f : 1.0f);
        if (trial % 4 == 0) for (int i = 0; i < 32; i++) x[3 * cols + i] = 0;
        for (int t = 0; t < 8; t++)
            gr_q8_quantize(x + t * cols, cols, q + t * cols, d + t * cols / 32, s + t * cols / 32);
        gr_q8_pack8(q, d, s, cols, pq, pd, ps);
        static uint8_t aw[MAXC];
        if (type == GR_Q8_0) gr_q8_abs(w, cols, aw);
        float out[8], out_aw[8];
        gr_q8_dot8(type, w, NULL, pq, pd, ps, cols, out);
        gr_q8_dot8(type, w, type == GR_Q8_0 ? aw : NULL, pq, pd, ps, cols, out_aw);
        for (int t = 0; t < 8; t++) {
            float one = gr_q8_dot(type, w, q + t * cols, d + t * cols / 32, s + t * cols / 32, cols);
            CHECK_MSG(memcmp(&one, &out[t], sizeof one) == 0, "type %d cols %d token %d: %a vs %a", type,
                      cols, t, out[t], one);
            CHECK_MSG(memcmp(&one, &out_aw[t], sizeof one) == 0, "type %d cols %d token %d (|w| given): %a vs %a",
                      type, cols, t, out_aw[t], one);
        }
    }
}

/* gr_q8_dot8x (the Q8_0 prefill tile: up to 4 groups of 8 tokens per row;
 * VNNI: activations on the unsigned side as x+128, corrected by -128 Σw) gives
 * gr_q8_dot8's result on each group bit for bit, for 1..4 groups, extreme
 * codes (-128 weights, |q| = 127 activations) and zero blocks included. */
TEST(q8_dot8x_matches_dot8) {
    enum { MAXC = 1024 };
    static uint8_t w[MAXC / 32 * 34], aw[MAXC];
    static float x[32 * MAXC], d[32 * MAXC / 32], pd[32 * MAXC / 32];
    static int8_t q[32 * MAXC], pq[32 * MAXC];
    static int32_t s[32 * MAXC / 32], ps[32 * MAXC / 32];
    for (int trial = 0; trial < 40; trial++) {
        int cols = 32 * (1 + (int)(next() % (MAXC / 32)));
        make_row(GR_Q8_0, cols, w, trial % 5 == 0);
        for (int i = 0; i < 32 * cols; i++) x[i] = unit() * (trial % 4 == 0 ? 1e-3f : 1.0f);
        if (trial % 6 == 0) for (int i = 0; i < 32 * cols; i += 2) x[i] = (i & 4) ? 1.0f : -1.0f;
        if (trial % 7 == 0) for (int i = 0; i < 32; i++) x[9 * cols + i] = 0;
        for (int t = 0; t < 32; t++)
            gr_q8_quantize(x + t * cols, cols, q + t * cols, d + t * cols / 32, s + t * cols / 32);
        for (int g = 0; g < 4; g++)
            gr_q8_pack8(q + 8 * g * cols, d + 8 * g * cols / 32, s + 8 * g * cols / 32, cols, pq + 8 * g * cols,
                        pd + 8 * g * cols / 32, ps + 8 * g * cols / 32);
        for (int ng = 1; ng <= 4; ng++) {
            float out[4][8], ref[8];
            gr_q8_dot8x(w, aw, pq, pd, ps, cols, ng, out[0], 8);
            for (int g = 0; g < ng; g++) {
                gr_q8_dot8(GR_Q8_0, w, NULL, pq + 8 * g * cols, pd + 8 * g * cols / 32, ps + 8 * g * cols / 32, cols, ref);
                CHECK_MSG(!memcmp(ref, out[g], sizeof ref), "cols %d ng %d group %d: %a vs %a", cols, ng, g,
                          out[g][0], ref[0]);
            }
        }
    }
}

/* Through the backend: each token's outputs are bit-identical whether it is
 * multiplied alone or in a batch of 11 or 43 (the 8-token kernel, with |w| made
 * per row or per group, and the 1-token one do the same operations in the same
 * order), so sampling does not depend on --batch; 1 and 2 threads. */
TEST(q8_matmul_batch_invariant) {
    enum { ROWS = 37, COLS = 320, N = 43 };
    const int types[] = {GR_Q8_0, GR_Q4_0, GR_Q4_1};
    static uint8_t w[ROWS * (COLS / 32) * 34];
    static float x[N * COLS], yb[N * ROWS], y1[ROWS];
    for (int i = 0; i < N * COLS; i++) x[i] = unit();
    for (int th = 1; th <= 2; th++) {
        gr_backend *be = gr_backend_cpu(th);
        CHECK(!be->exact);
        for (int k = 0; k < 3; k++) {
            size_t rb = 0;
            for (int r = 0; r < ROWS; r++) rb = make_row(types[k], COLS, w + rb * (size_t)r, 0);
            gr_tensor wt = {types[k], ROWS, COLS, rb, w};
            for (int nb = 11; nb <= N; nb += N - 11) {
                be->matmul(be, yb, x, nb, &wt);
                for (int t = 0; t < nb; t++) {
                    be->matmul(be, y1, x + (size_t)t * COLS, 1, &wt);
                    CHECK_MSG(memcmp(y1, yb + (size_t)t * ROWS, sizeof y1) == 0, "type %d token %d of %d threads %d",
                              types[k], t, nb, th);
                }
            }
        }
        gr_backend_free(be);
    }
}

/* AVX512-VNNI (vpdpbusd, sign by masked negation) gives the AVX2 kernels'
 * results bit for bit: exact integer sums, the same float steps. */
TEST(q8_vnni_same_bits_as_avx2) {
#if GR_CPU_X86
    if (gr_cpu_isa_max() < GR_ISA_AVX512) {
        printf("# skip q8_vnni_same_bits_as_avx2: no AVX-512 on this CPU\n");
        return;
    }
    int keep = gr_cpu_isa_set(GR_ISA_AVX512);
    int vnni = gr_cpu_vnni();
    gr_cpu_isa_set(keep);
    if (!vnni) {
        printf("# skip q8_vnni_same_bits_as_avx2: no AVX512-VNNI on this CPU\n");
        return;
    }
    enum { MAXC = 1024 };
    const int types[] = {GR_Q8_0, GR_Q4_0, GR_Q4_1};
    static uint8_t w[MAXC / 32 * 34];
    static float x[8 * MAXC], d[8 * MAXC / 32], pd[8 * MAXC / 32];
    static int8_t q[8 * MAXC], pq[8 * MAXC];
    static int32_t s[8 * MAXC / 32], ps[8 * MAXC / 32];
    for (int trial = 0; trial < 90; trial++) {
        int type = types[trial % 3], cols = 32 * (1 + (int)(next() % (MAXC / 32)));
        make_row(type, cols, w, trial % 5 == 0);
        for (int i = 0; i < 8 * cols; i++) x[i] = unit() * (trial % 4 == 0 ? 1e-3f : 1.0f);
        if (trial % 6 == 0) for (int i = 0; i < 8 * cols; i += 2) x[i] = (i & 4) ? 1.0f : -1.0f; /* |q| = 127 */
        for (int t = 0; t < 8; t++)
            gr_q8_quantize(x + t * cols, cols, q + t * cols, d + t * cols / 32, s + t * cols / 32);
        gr_q8_pack8(q, d, s, cols, pq, pd, ps);
        float a8[8], v8[8];
        gr_q8_dot8_avx2(type, w, NULL, pq, pd, ps, cols, a8);
        gr_q8_dot8_avx512(type, w, NULL, pq, pd, ps, cols, v8);
        CHECK_MSG(!memcmp(a8, v8, sizeof a8), "dot8 type %d cols %d: vnni %a avx2 %a", type, cols, v8[0], a8[0]);
        for (int t = 0; t < 8; t++) {
            float a = gr_q8_dot_avx2(type, w, q + t * cols, d + t * cols / 32, s + t * cols / 32, cols);
            float v = gr_q8_dot_avx512(type, w, q + t * cols, d + t * cols / 32, s + t * cols / 32, cols);
            CHECK_MSG(!memcmp(&a, &v, sizeof a), "dot type %d cols %d token %d: vnni %a avx2 %a", type, cols, t, v, a);
        }
    }
#endif
}

int main(void) {
    (void)test_shared_dir;
    int keep = gr_cpu_isa;
    for (int isa = GR_ISA_SCALAR; isa <= gr_cpu_isa_max(); isa++) {
        gr_cpu_isa_set(isa);
        printf("# isa %s%s\n", gr_cpu_isa_name(isa), gr_cpu_vnni() ? " (vnni)" : "");
        RUN(q8_dot_q8_0);
        RUN(q8_dot_q4_0);
        RUN(q8_dot_q4_1);
        RUN(q8_lossless_activations);
        RUN(q8_supported_types);
        RUN(q8_dot8_matches_dot);
        RUN(q8_dot8x_matches_dot8);
        RUN(q8_matmul_batch_invariant);
    }
    gr_cpu_isa_set(keep);
    RUN(q8_vnni_same_bits_as_avx2);
    return TEST_EXIT();
}
