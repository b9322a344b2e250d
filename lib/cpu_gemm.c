/* The blocked GEMM (see cpu_gemm.h). A task owns 16 weight rows. Their values
 * are converted once and packed k-major (wp[k][16]); the K loop runs in blocks
 * of 256 (16 KB of packed weights: they stay in L1 while every token passes); the microkernel keeps a 6 tokens × 16 rows tile of y in twelve
 * AVX registers, and per k broadcasts one x value of each of the 6 tokens
 * against two vectors of packed weights: 12 FMAs for 2 vector loads and 6
 * broadcasts, with x streamed sequentially from each token row. */
#include "cpu_gemm.h"
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

enum { KC = 256, MR = 6 };

int64_t gr_gemm_scratch(int64_t cols) { return (int64_t)GR_GEMM_NR * cols + cols; }

/* y[t][0..16) (+)= Σ_k x[t][k] wp[k][0..16) for t < mr, k < kc */
static inline __attribute__((always_inline)) void kernel(int mr, const float *const *xt,
                                                          const float *wp, int kc, float *y,
                                                          int64_t ldy, int first, int nr) {
#if defined(__AVX2__) && defined(__FMA__)
    /* the t loops must unroll for the tile to live in registers */
    __m256 c[MR][2];
#pragma GCC unroll 6
    for (int t = 0; t < mr; t++) c[t][0] = c[t][1] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(wp + 16 * k), b1 = _mm256_loadu_ps(wp + 16 * k + 8);
#pragma GCC unroll 6
        for (int t = 0; t < mr; t++) {
            __m256 a = _mm256_broadcast_ss(xt[t] + k);
            c[t][0] = _mm256_fmadd_ps(a, b0, c[t][0]);
            c[t][1] = _mm256_fmadd_ps(a, b1, c[t][1]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < mr; t++) {
        float o[16];
        _mm256_storeu_ps(o, c[t][0]);
        _mm256_storeu_ps(o + 8, c[t][1]);
        float *yt = y + (int64_t)t * ldy;
        for (int r = 0; r < nr; r++) yt[r] = first ? o[r] : yt[r] + o[r];
    }
#else
    float c[MR][16] = {{0}};
    for (int k = 0; k < kc; k++)
        for (int t = 0; t < mr; t++)
            for (int r = 0; r < 16; r++) c[t][r] += xt[t][k] * wp[16 * k + r];
    for (int t = 0; t < mr; t++) {
        float *yt = y + (int64_t)t * ldy;
        for (int r = 0; r < nr; r++) yt[r] = first ? c[t][r] : yt[r] + c[t][r];
    }
#endif
}

void gr_gemm_block(float *y, const float *x, int n, const gr_tensor *w, int64_t r0, gr_row_fn row,
                   float *scratch) {
    int64_t cols = w->cols, rows = w->rows;
    int nr = rows - r0 < GR_GEMM_NR ? (int)(rows - r0) : GR_GEMM_NR;
    float *wp = scratch, *buf = scratch + GR_GEMM_NR * cols;
    /* pack once: wp[k][r] = w[r0 + r][k], zero rows past the end; a K-block is
     * then the contiguous slice wp + 16*k0 */
    for (int r = 0; r < GR_GEMM_NR; r++) {
        if (r >= nr) {
            for (int64_t k = 0; k < cols; k++) wp[16 * k + r] = 0;
            continue;
        }
        const float *wr = row(w, r0 + r, buf);
        for (int64_t k = 0; k < cols; k++) wp[16 * k + r] = wr[k];
    }
    for (int64_t k0 = 0; k0 < cols; k0 += KC) {
        int kc = cols - k0 < KC ? (int)(cols - k0) : KC;
        const float *wk = wp + 16 * k0;
        int t = 0;
        for (; t + MR <= n; t += MR) {
            const float *xt[MR];
            for (int u = 0; u < MR; u++) xt[u] = x + (int64_t)(t + u) * cols + k0;
            kernel(MR, xt, wk, kc, y + (int64_t)t * rows + r0, rows, k0 == 0, nr);
        }
        if (t < n) {
            const float *xt[MR];
            int mr = n - t;
            for (int u = 0; u < mr; u++) xt[u] = x + (int64_t)(t + u) * cols + k0;
            switch (mr) {
            case 1: kernel(1, xt, wk, kc, y + (int64_t)t * rows + r0, rows, k0 == 0, nr); break;
            case 2: kernel(2, xt, wk, kc, y + (int64_t)t * rows + r0, rows, k0 == 0, nr); break;
            case 3: kernel(3, xt, wk, kc, y + (int64_t)t * rows + r0, rows, k0 == 0, nr); break;
            case 4: kernel(4, xt, wk, kc, y + (int64_t)t * rows + r0, rows, k0 == 0, nr); break;
            default: kernel(5, xt, wk, kc, y + (int64_t)t * rows + r0, rows, k0 == 0, nr); break;
            }
        }
    }
}
