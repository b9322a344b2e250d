/* Dequantization against the `gguf` Python package (testdata/gguf/quant.gguf,
 * written by scripts/make-gguf-fixtures.py), and the CPU matmul on every weight
 * type it reads in place against a double-precision reference. */
#include <stdlib.h>
#include "test.h"
#include "backend.h"
#include "gguf.h"
#include "quant.h"

static gguf_file *open_fixture(gr_err *err) {
    char path[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(path, sizeof path, "%s/testdata/gguf/quant.gguf", root ? root : ".");
    return gguf_open(path, err);
}

static const char *TYPES[] = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"};

TEST(dequantize_matches_gguf_py) {
    gr_err err;
    gguf_file *g = open_fixture(&err);
    CHECK_MSG(g, "%s", err.msg);
    float out[1024];
    for (size_t i = 0; i < sizeof TYPES / sizeof *TYPES; i++) {
        char en[64];
        snprintf(en, sizeof en, "%s.expected", TYPES[i]);
        const gguf_tensor *t = gguf_find_tensor(g, TYPES[i]), *e = gguf_find_tensor(g, en);
        CHECK_MSG(t && e, "%s missing", TYPES[i]);
        CHECK_STR(ggml_type_name(t->type), TYPES[i]);
        CHECK(t->ne[0] == 512 && t->ne[1] == 2 && e->type == GGML_F32);
        CHECK(gr_dequantize((int)t->type, t->data, out, 1024) == 0);
        const float *want = e->data;
        for (int k = 0; k < 1024; k++)
            CHECK_MSG(fabsf(out[k] - want[k]) <= 1e-6f * fmaxf(1.0f, fabsf(want[k])),
                      "%s element %d: %g vs %g", TYPES[i], k, out[k], want[k]);
    }
    gguf_close(g);
}

TEST(half_conversions) {
    CHECK(gr_f16_to_f32(0x3c00) == 1.0f);
    CHECK(gr_f16_to_f32(0xc000) == -2.0f);
    CHECK(gr_f16_to_f32(0x0001) == 5.9604644775390625e-08f); /* smallest subnormal */
    CHECK(gr_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(isinf(gr_f16_to_f32(0x7c00)));
    CHECK(gr_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(gr_f32_to_bf16(1.00390625f) == 0x3f80); /* tie rounds to even */
    CHECK(gr_f32_to_bf16(1.01171875f) == 0x3f82);
    CHECK(gr_bf16_to_f32(0x3f82) == 1.015625f);
}

TEST(matmul_every_weight_type) {
    gr_err err;
    gguf_file *g = open_fixture(&err);
    CHECK_MSG(g, "%s", err.msg);
    const int types[] = {GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0, GGML_Q4_0, GGML_Q4_1};
    const char *names[] = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1"};
    float x[3 * 512], y[3 * 2];
    unsigned s = 7;
    for (int i = 0; i < 3 * 512; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    /* exact = 1: f32 activations, within 1e-4 relative of the double reference.
     * exact = 0: the quantized types take the integer path (kernels/cpu/q8.h), whose
     * activation rounding moves each x[c] by at most d_b/2 (d_b = max|x| over the
     * block of 32 / 127): allowed error Σ_b d_b/2 · Σ_{c∈b} |w[c]|, plus 1e-5 · Σ|w x|
     * for float summation. */
    for (int exact = 1; exact >= 0; exact--)
    for (int th = 1; th <= 2; th++) {
        gr_backend *be = gr_backend_cpu(th);
        be->exact = exact;
        for (int k = 0; k < 6; k++) {
            const gguf_tensor *t = gguf_find_tensor(g, names[k]);
            char en[64];
            snprintf(en, sizeof en, "%s.expected", names[k]);
            const float *w = gguf_find_tensor(g, en)->data;
            int quant = types[k] == GGML_Q8_0 || types[k] == GGML_Q4_0 || types[k] == GGML_Q4_1;
            /* F32/F16/BF16 data in this file is aligned (GGUF aligns to 32) */
            gr_tensor wt = {types[k], 2, 512, (size_t)(t->nbytes / 2), t->data};
            for (int nt = 1; nt <= 3; nt++) { /* 1-2 tokens take the fused decode kernel */
            be->matmul(be, y, x, nt, &wt);
            for (int n = 0; n < nt; n++)
                for (int r = 0; r < 2; r++) {
                    double ref = 0, bound = 0, mag = 0;
                    for (int c = 0; c < 512; c++) {
                        ref += (double)x[n * 512 + c] * w[r * 512 + c];
                        mag += fabs((double)x[n * 512 + c] * w[r * 512 + c]);
                    }
                    for (int b0 = 0; b0 < 512; b0 += 32) {
                        double amax = 0, wa = 0;
                        for (int c = b0; c < b0 + 32; c++) {
                            amax = fmax(amax, fabs(x[n * 512 + c]));
                            wa += fabs(w[r * 512 + c]);
                        }
                        bound += amax / 127 / 2 * wa;
                    }
                    double tol = exact || !quant ? 1e-4 * fmax(1, fabs(ref)) : bound + 1e-5 * mag;
                    /* BF16 weights outside exact mode: the AVX512-BF16 prefill GEMM
                     * rounds x to bf16 (relative error <= 2^-9 each; prefill_bf16.h) */
                    if (!exact && types[k] == GGML_BF16) tol += 0x1p-8 * mag;
                    CHECK_MSG(fabs(y[n * 2 + r] - ref) <= tol, "%s threads %d exact %d: %g vs %g (tol %g)",
                              names[k], th, exact, y[n * 2 + r], ref, tol);
                    /* the integer path really runs: it differs from exact f32 */
                    if (!exact && quant && n == 0 && r == 0) CHECK(fabs(y[0] - ref) > 1e-7);
                }
            }
        }
        gr_backend_free(be);
    }
    gguf_close(g);
}

int main(void) {
    (void)test_shared_dir;
    RUN(dequantize_matches_gguf_py);
    RUN(half_conversions);
    RUN(matmul_every_weight_type);
    return TEST_EXIT();
}
