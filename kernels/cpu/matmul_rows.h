/* The float matmul's row kernels (F32/F16/BF16 weights, and the quantized types
 * in exact mode): weight rows to floats, the f32 dot, and the kernels that run a
 * few weight rows against a few tokens without packing (decode and small batches;
 * matmul.c chooses among them and the GEMM). Portable versions in
 * matmul_rows.c, AVX2/FMA/F16C ones in matmul_rows_avx2.c. */
#ifndef GR_CPU_MATMUL_ROWS_H
#define GR_CPU_MATMUL_ROWS_H
#include "cpu_backend.h"
#include "model.h"

/* Σ a[i] b[i] */
float gr_dot_f32_scalar(const float *a, const float *b, int64_t n);
/* Weight row r of w as floats: buf, or the row itself for F32 (a gr_row_fn). */
const float *gr_row_f32_scalar(const gr_tensor *w, int64_t r, float *buf);

#if GR_CPU_AVX2
float gr_dot_f32_avx2(const float *a, const float *b, int64_t n);
const float *gr_row_f32_avx2(const gr_tensor *w, int64_t r, float *buf);
/* 4 weight rows (as floats) × 3 tokens: y_t[0..4) = dot(w[j], x_t) */
void gr_mm_4x3_avx2(const float *const *w, const float *x0, const float *x1, const float *x2,
                    int64_t cols, float *y0, float *y1, float *y2);
/* 4 weight rows × 1 token */
void gr_mm_4x1_avx2(const float *const *w, const float *x, int64_t cols, float *y);
/* Decode: y[t*ldy + r] (t < nt <= 2) = dot(row r of w, x[t]), the weights
 * converted in registers (cols a multiple of 32; BF16 x in bf16_perm's order). */
void gr_fused_row_avx2(const gr_tensor *w, int64_t r, const float *x, int nt, float *y, int64_t ldy);
#define gr_dot_f32 gr_dot_f32_avx2
#define gr_row_f32 gr_row_f32_avx2
#else
#define gr_dot_f32 gr_dot_f32_scalar
#define gr_row_f32 gr_row_f32_scalar
#endif
#endif
