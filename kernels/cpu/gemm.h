/* A cache-blocked GEMM for prefill and batched decode on the CPU: y (n, rows) =
 * x (n, cols) · wᵀ for weights any type whose rows convert to f32 (F32, F16,
 * BF16, and the quantized types in exact mode). */
#ifndef GR_CPU_GEMM_H
#define GR_CPU_GEMM_H
#include "model.h"

/* Converts weight row r of w to floats: returns buf, or the row itself for F32. */
typedef const float *(*gr_row_fn)(const gr_tensor *w, int64_t r, float *buf);

/* Floats of scratch gr_gemm_block needs (one per concurrent caller; 32-byte
 * aligned, and a multiple of 8 so that consecutive slots stay aligned). */
int64_t gr_gemm_scratch(int64_t cols);
/* x (n, cols) packed in tiles of 6 tokens, k-major within a tile (zero rows
 * past n): what gr_gemm_block reads. gr_gemm_xpack_size floats. */
int64_t gr_gemm_xpack_size(int n, int64_t cols);
void gr_gemm_pack_x(float *xp, const float *x, int n, int64_t cols);
/* Columns r0 .. r0+GR_GEMM_NR-1 (clipped to w->rows) of y, all n tokens, from
 * packed x. */
#define GR_GEMM_NR 16
void gr_gemm_block(float *y, const float *xp, int n, const gr_tensor *w, int64_t r0, gr_row_fn row,
                   float *scratch);
/* gemm_avx2.c: wp[k][r] = wr[r][k] for the 16 rows and k below cols rounded
 * down to 8 (returned), by 8x8 transposes; wp 32-byte aligned. */
int64_t gr_gemm_pack_w_avx2(float *wp, const float *const *wr, int64_t cols);
/* gemm_avx512.c: gr_gemm_block's results (the same bits) from x in place
 * (token t's row at x + t cols, no packed copy), tiles of up to 12 tokens. */
void gr_gemm_block_avx512(float *y, const float *x, int n, const gr_tensor *w, int64_t r0, gr_row_fn row,
                          float *scratch);
#endif
