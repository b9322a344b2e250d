/* The float matmul's row kernels (F32/F16/BF16 weights, and the quantized types
 * in exact mode): weight rows to floats, the f32 dot, and the decode-row
 * kernels (matmul.c routes every decode row here and every prefill row to the
 * GEMM, gemm.h). Portable versions in matmul_rows.c, AVX2/FMA/F16C ones in
 * matmul_rows_avx2.c, AVX-512 ones in matmul_rows_avx512.c.
 *
 * The decode order. Every variant of the decode kernel computes each
 * (weight row, token) result in one order, whatever the tile, the batch, the
 * thread or the ISA: eight lanes, lane j a chain of fused multiply-adds over
 * the k ≡ j (mod 8) below cols rounded down to 8, in k order; the lanes summed
 * ((0+4) + (2+6)) + ((1+5) + (3+7)); then the last cols % 8 products x·w added
 * one at a time (separately rounded). AVX2 keeps a row's lanes in one ymm, the
 * AVX-512 kernel two rows' lanes in one zmm, the scalar kernel an array: the
 * same bits (tests/unit/test_cpu_gemm.c). */
#ifndef GR_CPU_MATMUL_ROWS_H
#define GR_CPU_MATMUL_ROWS_H
#include "cpu_backend.h"
#include "isa.h"
#include "model.h"

/* Σ a[i] b[i] (not the decode order: rmsnorm, attention) */
float gr_dot_f32_scalar(const float *a, const float *b, int64_t n);
float gr_dot_f32_avx2(const float *a, const float *b, int64_t n);
/* Weight row r of w as floats: buf, or the row itself for F32 (a gr_row_fn).
 * Conversions are exact (F16, BF16) or the one dequantization formula, so
 * every variant gives the same floats. */
const float *gr_row_f32_scalar(const gr_tensor *w, int64_t r, float *buf);
const float *gr_row_f32_avx2(const gr_tensor *w, int64_t r, float *buf);

/* Decode rows [r0, r1) of w against n tokens x (n, cols): y[t*ldy + r] in the
 * decode order. buf: 8*cols floats of scratch (rows converted to floats). */
void gr_dec_rows_scalar(const gr_tensor *w, int64_t r0, int64_t r1, const float *x, int n, float *y,
                        int64_t ldy, float *buf);
void gr_dec_rows_avx2(const gr_tensor *w, int64_t r0, int64_t r1, const float *x, int n, float *y,
                      int64_t ldy, float *buf);
void gr_dec_rows_avx512(const gr_tensor *w, int64_t r0, int64_t r1, const float *x, int n, float *y,
                        int64_t ldy, float *buf);
/* One result in the decode order (the reference). */
float gr_dec_dot_scalar(const float *w, const float *x, int64_t cols);

/* The variants gr_cpu_isa selects. */
static inline float gr_dot_f32(const float *a, const float *b, int64_t n) {
#if GR_CPU_X86
    if (gr_cpu_isa >= GR_ISA_AVX2) return gr_dot_f32_avx2(a, b, n);
#endif
    return gr_dot_f32_scalar(a, b, n);
}
static inline const float *gr_row_f32(const gr_tensor *w, int64_t r, float *buf) {
#if GR_CPU_X86
    if (gr_cpu_isa >= GR_ISA_AVX2) return gr_row_f32_avx2(w, r, buf);
#endif
    return gr_row_f32_scalar(w, r, buf);
}
static inline void gr_dec_rows(const gr_tensor *w, int64_t r0, int64_t r1, const float *x, int n,
                               float *y, int64_t ldy, float *buf) {
#if GR_CPU_X86
    if (gr_cpu_isa >= GR_ISA_AVX512) {
        gr_dec_rows_avx512(w, r0, r1, x, n, y, ldy, buf);
        return;
    }
    if (gr_cpu_isa >= GR_ISA_AVX2) {
        gr_dec_rows_avx2(w, r0, r1, x, n, y, ldy, buf);
        return;
    }
#endif
    gr_dec_rows_scalar(w, r0, r1, x, n, y, ldy, buf);
}
#endif
