/* The blocked GEMM (see cpu_gemm.h). A task owns 16 weight rows. Their values
 * are converted once and packed k-major (wp[k][16]); the K loop runs in blocks
 * of 256 (16 KB of packed weights: they stay in L1 while every token passes); the microkernel keeps a 6 tokens × 16 rows tile of y in twelve
 * AVX registers, and per k broadcasts one x value of each of the 6 tokens
 * against two vectors of packed weights: 12 FMAs for 2 vector loads and 6
 * broadcasts. x is packed once per matmul into 6-token tiles ([k][6]), so the
 * broadcasts read one sequential stream instead of six strided ones. */
#include "cpu_gemm.h"
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

enum { KC = 256, MR = 6 };

int64_t gr_gemm_scratch(int64_t cols) { return (int64_t)GR_GEMM_NR * cols + cols; }

/* y[t][0..16) (+)= Σ_k xp[k][t] wp[k][0..16) for k < kc, stored for t < mr:
 * xp is a packed tile of 6 tokens (zero rows past the last token). */
static inline __attribute__((always_inline)) void kernel(int mr, const float *xp, const float *wp,
                                                          int kc, float *y, int64_t ldy, int first,
                                                          int nr) {
#if defined(__AVX2__) && defined(__FMA__)
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int k = 0; k < kc; k++, xp += MR) {
        __m256 b0 = _mm256_loadu_ps(wp + 16 * k), b1 = _mm256_loadu_ps(wp + 16 * k + 8), a;
#define FM(u, x0, x1)                                                                     \
    a = _mm256_broadcast_ss(xp + u);                                                      \
    x0 = _mm256_fmadd_ps(a, b0, x0);                                                      \
    x1 = _mm256_fmadd_ps(a, b1, x1);
        FM(0, c00, c01) FM(1, c10, c11) FM(2, c20, c21) FM(3, c30, c31) FM(4, c40, c41) FM(5, c50, c51)
#undef FM
    }
    float o[MR][16];
    _mm256_storeu_ps(o[0], c00); _mm256_storeu_ps(o[0] + 8, c01);
    _mm256_storeu_ps(o[1], c10); _mm256_storeu_ps(o[1] + 8, c11);
    _mm256_storeu_ps(o[2], c20); _mm256_storeu_ps(o[2] + 8, c21);
    _mm256_storeu_ps(o[3], c30); _mm256_storeu_ps(o[3] + 8, c31);
    _mm256_storeu_ps(o[4], c40); _mm256_storeu_ps(o[4] + 8, c41);
    _mm256_storeu_ps(o[5], c50); _mm256_storeu_ps(o[5] + 8, c51);
#else
    float o[MR][16] = {{0}};
    for (int k = 0; k < kc; k++)
        for (int t = 0; t < MR; t++)
            for (int r = 0; r < 16; r++) o[t][r] += xp[MR * k + t] * wp[16 * k + r];
#endif
    for (int t = 0; t < mr; t++) {
        float *yt = y + (int64_t)t * ldy;
        for (int r = 0; r < nr; r++) yt[r] = first ? o[t][r] : yt[r] + o[t][r];
    }
}

int64_t gr_gemm_xpack_size(int n, int64_t cols) { return (int64_t)((n + MR - 1) / MR) * MR * cols; }

void gr_gemm_pack_x(float *xp, const float *x, int n, int64_t cols) {
    for (int t0 = 0; t0 < n; t0 += MR) {
        float *tile = xp + (int64_t)t0 * cols;
        for (int u = 0; u < MR; u++) {
            const float *xr = t0 + u < n ? x + (int64_t)(t0 + u) * cols : NULL;
            for (int64_t k = 0; k < cols; k++) tile[MR * k + u] = xr ? xr[k] : 0.0f;
        }
    }
}

void gr_gemm_block(float *y, const float *xp, int n, const gr_tensor *w, int64_t r0, gr_row_fn row,
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
        for (int t = 0; t < n; t += MR) {
            int mr = n - t < MR ? n - t : MR;
            kernel(mr, xp + (int64_t)t * cols + MR * k0, wk, kc, y + (int64_t)t * rows + r0, rows,
                   k0 == 0, nr);
        }
    }
}
