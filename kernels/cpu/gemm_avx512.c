/* The AVX-512 inference GEMM block (see gemm.h). Like gemm.c's: a call owns 16
 * weight rows, packed k-major once (wp[k][16]), and runs the K loop in blocks
 * of 256. Three differences, each for prefill speed on one or two cores:
 *  - x is read in place (token t's row at x + t ldx), no packed copy: the tile
 *    broadcasts each x value from its row, so there is no per-matmul packing
 *    pass and no pool round for it;
 *  - tiles of 1..12 tokens, one zmm accumulator per token, so a batch's last
 *    tokens need no zero-padded 6-token tile;
 *  - F16 rows are converted and transposed in one pass (no float row buffer),
 *    and the next block's weight rows are prefetched into L2 while this block
 *    computes (a prefill reads every weight once, from memory).
 * Each result is one chain of fused multiply-adds in k order from zero, added
 * to y last: gr_micro_6x16's order, so the same bits as the AVX2 and scalar
 * paths, whatever tile a token falls in (batch invariance). */
#include "cpu_backend.h"
#if defined(__AVX512F__) && GR_CPU_AVX2
#include "cpu_microkernel.h"
#include "gemm.h"
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

enum { KC = 256, MT = 12 };

/* C[i][0..16) (ldc) = (load ? C : 0) + Σ_p x[i ldx + p] b[p][0..16), i < M,
 * p < kc; the store masked to the tile's rows. M is a constant in every
 * caller (tile_m's switch), so the loops over i unroll and c stays in zmm. */
static inline __attribute__((always_inline)) void tile(const int M, int kc, const float *x, int64_t ldx,
                                                       const float *b, float *C, int64_t ldc, int load,
                                                       __mmask16 mask) {
    __m512 c[MT];
#pragma GCC unroll 12
    for (int i = 0; i < M; i++) c[i] = _mm512_setzero_ps();
    for (int p = 0; p < kc; p++, x++, b += 16) {
        __m512 w = _mm512_loadu_ps(b);
        /* set1 from memory: the FMA's embedded broadcast */
#pragma GCC unroll 12
        for (int i = 0; i < M; i++) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(x[(ptrdiff_t)i * ldx]), w, c[i]);
    }
#pragma GCC unroll 12
    for (int i = 0; i < M; i++) {
        float *r = C + (ptrdiff_t)i * ldc;
        __m512 v = load ? _mm512_add_ps(_mm512_maskz_loadu_ps(mask, r), c[i]) : c[i];
        _mm512_mask_storeu_ps(r, mask, v);
    }
}

static void tile_m(int m, int kc, const float *x, int64_t ldx, const float *b, float *C, int64_t ldc,
                   int load, __mmask16 mask) {
    switch (m) {
#define T(M) \
    case M: tile(M, kc, x, ldx, b, C, ldc, load, mask); break;
        T(1) T(2) T(3) T(4) T(5) T(6) T(7) T(8) T(9) T(10) T(11) T(12)
#undef T
    default: break;
    }
}

/* wp[k][r] = row r0 + r of w at column k, for the nr rows (zero rows after);
 * F16 straight from the half-precision rows, other types through row(). */
static void pack_w(float *wp, const gr_tensor *w, int64_t r0, int nr, gr_row_fn row, float *buf) {
    int64_t cols = w->cols, k = 0;
    if (w->type == GR_F16) {
        const uint8_t *base = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
        for (; k + 8 <= cols; k += 8)
            for (int h = 0; h < GR_GEMM_NR; h += 8) {
                __m256 v[8];
                for (int q = 0; q < 8; q++)
                    v[q] = h + q < nr ? _mm256_cvtph_ps(_mm_loadu_si128(
                                            (const __m128i *)(base + (size_t)(h + q) * w->row_bytes + 2 * (size_t)k)))
                                      : _mm256_setzero_ps();
                gr_tr8(v);
                for (int q = 0; q < 8; q++) _mm256_store_ps(wp + 16 * (k + q) + h, v[q]);
            }
        for (; k < cols; k++)
            for (int r = 0; r < GR_GEMM_NR; r++) {
                const uint8_t *p = base + (size_t)r * w->row_bytes + 2 * (size_t)k;
                wp[16 * k + r] = r < nr ? _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)) : 0.0f;
            }
        return;
    }
    const float *wr[GR_GEMM_NR];
    for (int r = 0; r < GR_GEMM_NR; r++) {
        if (r < nr) {
            wr[r] = row(w, r0 + r, buf + (int64_t)r * cols);
        } else {
            memset(buf + (int64_t)r * cols, 0, sizeof(float) * (size_t)cols);
            wr[r] = buf + (int64_t)r * cols;
        }
    }
    k = gr_gemm_pack_w_avx2(wp, wr, cols);
    for (; k < cols; k++)
        for (int r = 0; r < GR_GEMM_NR; r++) wp[16 * k + r] = wr[r][k];
}

void gr_gemm_block_avx512(float *y, const float *x, int n, const gr_tensor *w, int64_t r0, gr_row_fn row,
                          float *scratch) {
    int64_t cols = w->cols, rows = w->rows;
    int nr = rows - r0 < GR_GEMM_NR ? (int)(rows - r0) : GR_GEMM_NR;
    float *wp = scratch, *buf = scratch + GR_GEMM_NR * cols;
    pack_w(wp, w, r0, nr, row, buf);
    __mmask16 mask = (__mmask16)((1u << nr) - 1);
    /* the next block's rows into L2, spread over this block's tiles */
    const char *pf = (const char *)w->data + (size_t)(r0 + nr) * w->row_bytes;
    int64_t next_rows = rows - r0 - nr < GR_GEMM_NR ? rows - r0 - nr : GR_GEMM_NR;
    size_t pf_left = (size_t)next_rows * w->row_bytes;
    int64_t ntiles = (cols + KC - 1) / KC * ((n + MT - 1) / MT);
    size_t pf_step = ((pf_left + 63) / 64 + (size_t)ntiles - 1) / (size_t)ntiles * 64;
    for (int64_t k0 = 0; k0 < cols; k0 += KC) {
        int kc = cols - k0 < KC ? (int)(cols - k0) : KC;
        const float *wk = wp + 16 * k0;
        for (int t = 0; t < n; t += MT) {
            int m = n - t < MT ? n - t : MT;
            for (size_t o = 0; o < pf_step && pf_left; o += 64) {
                _mm_prefetch(pf, _MM_HINT_T1);
                pf += 64;
                pf_left = pf_left > 64 ? pf_left - 64 : 0;
            }
            tile_m(m, kc, x + (int64_t)t * cols + k0, cols, wk, y + (int64_t)t * rows + r0, rows, k0 != 0, mask);
        }
    }
}
#else
typedef int gr_gemm_avx512_empty; /* ISO C: no empty file */
#endif
