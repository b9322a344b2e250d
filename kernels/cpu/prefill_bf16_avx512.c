/* The AVX512-BF16 parts of the BF16 prefill GEMM (see prefill_bf16.h): the
 * activation packing (f32 to bf16 pairs, round to nearest even as
 * gr_f32_to_bf16) and the 32-token x 12-row tile, 24 zmm accumulators, one
 * vdpbf16ps chain per element. The weights are read where they lie: each
 * row's bf16 pair p is one 32-bit word, broadcast to all 16 lanes, so no
 * weight is ever packed or copied. */
#include "cpu_backend.h"
#if defined(__AVX512BF16__) && GR_CPU_AVX2
#include "prefill_bf16.h"
#include "quant.h"
#include <immintrin.h>
#include <string.h>

/* gr_f32_to_bf16 on 16 lanes, as 32-bit words holding the bf16 in the low half */
static inline __m512i bf16_rne(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                     _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
    r = _mm512_srli_epi32(r, 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

void gr_pb_pack_x_avx512(uint32_t *xp, const float *x, int n, int64_t cols, int64_t np) {
    int64_t full = cols / 2;
    for (int t0 = 0; t0 < n; t0 += GR_PB_MR) {
        uint32_t *tile = xp + (int64_t)t0 * np;
        for (int u = 0; u < GR_PB_MR; u++) {
            const float *xr = t0 + u < n ? x + (int64_t)(t0 + u) * cols : NULL;
            int64_t p = 0;
            if (xr) {
                /* 16 pairs (32 columns) at a time: lo | hi << 16, scattered with stride MR */
                const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                       _mm512_set1_epi32(GR_PB_MR));
                for (; p + 16 <= full; p += 16) {
                    __m512i a = bf16_rne(_mm512_loadu_ps(xr + 2 * p)), b = bf16_rne(_mm512_loadu_ps(xr + 2 * p + 16));
                    /* a holds pairs p..p+7 as (lo, hi) words, b pairs p+8..p+15: join each pair */
                    __m512i lo = _mm512_permutex2var_epi32(a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
                    __m512i hi = _mm512_permutex2var_epi32(a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);
                    __m512i w = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
                    _mm512_i32scatter_epi32(tile + GR_PB_MR * p + u, idx, w, 4);
                }
            }
            for (; p < np; p++) {
                uint32_t lo = 0, hi = 0;
                if (xr && 2 * p < cols) {
                    lo = gr_f32_to_bf16(xr[2 * p]);
                    if (2 * p + 1 < cols) hi = gr_f32_to_bf16(xr[2 * p + 1]);
                }
                tile[GR_PB_MR * p + u] = lo | hi << 16;
            }
        }
    }
}

#define TILE(NAME, NV)                                                                                  \
    static void NAME(int kp, const uint32_t *a, const uint8_t *const *w, float *C, int load) {           \
        __m512 c[NV][GR_PB_NR];                                                                        \
        for (int r = 0; r < GR_PB_NR; r++)                                                              \
            for (int v = 0; v < NV; v++)                                                                \
                c[v][r] = load ? _mm512_loadu_ps(C + GR_PB_MR * r + 16 * v) : _mm512_setzero_ps();     \
        const uint8_t *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3], *w4 = w[4], *w5 = w[5], *w6 = w[6], \
                      *w7 = w[7], *w8 = w[8], *w9 = w[9], *w10 = w[10], *w11 = w[11];                    \
        for (int p = 0; p < kp; p++, a += GR_PB_MR) {                                                  \
            __m512bh x[NV];                                                                              \
            for (int v = 0; v < NV; v++) x[v] = (__m512bh)_mm512_loadu_si512(a + 16 * v);              \
            int64_t o = 4 * (int64_t)p;                                                                  \
            ROW(0, w0) ROW(1, w1) ROW(2, w2) ROW(3, w3) ROW(4, w4) ROW(5, w5)                            \
            ROW(6, w6) ROW(7, w7) ROW(8, w8) ROW(9, w9) ROW(10, w10) ROW(11, w11)                        \
        }                                                                                                \
        for (int r = 0; r < GR_PB_NR; r++)                                                              \
            for (int v = 0; v < NV; v++) _mm512_storeu_ps(C + GR_PB_MR * r + 16 * v, c[v][r]);         \
    }
#define ROW(r, wr)                                                                                       \
    {                                                                                                    \
        uint32_t e;                                                                                      \
        memcpy(&e, wr + o, 4);                                                                           \
        __m512bh b = (__m512bh)_mm512_set1_epi32((int)e);                                                \
        for (int v = 0; v < NVV; v++) c[v][r] = _mm512_dpbf16_ps(c[v][r], x[v], b);                      \
    }
#define NVV 2
TILE(tile32, 2)
#undef NVV
#define NVV 1
TILE(tile16, 1)
#undef NVV
#undef ROW
#undef TILE

void gr_pb_tile_avx512(int kp, const uint32_t *a, const uint8_t *const *w, float *C, int load, int ntok) {
    if (ntok > 16) tile32(kp, a, w, C, load);
    else tile16(kp, a, w, C, load);
}
void gr_pb_store_avx512(const float *C, int ntok, int nr, float *y, int64_t ldy) {
    __mmask16 m = (__mmask16)((1u << nr) - 1);
    for (int h = 0; h < 2 && 16 * h < ntok; h++) {
        /* a 16 x 16 transpose of 32-bit words (rows nr..15 zero): u[4i+j]
         * holds rows 4i..4i+3 of columns j + 4L in its 128-bit lane L */
        __m512i r[16], t[16], u[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < nr ? _mm512_loadu_si512(C + GR_PB_MR * i + 16 * h) : _mm512_setzero_si512();
        for (int i = 0; i < 8; i++) {
            t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
        }
        for (int i = 0; i < 4; i++) {
            u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
            u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
            u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
            u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
        }
        int nt = ntok - 16 * h < 16 ? ntok - 16 * h : 16;
        float *yh = y + (int64_t)16 * h * ldy;
        for (int j = 0; j < 4; j++) {
            __m512i v = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88), w = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xdd);
            __m512i v2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88), w2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xdd);
            __m512i o[4] = {_mm512_shuffle_i32x4(v, v2, 0x88), _mm512_shuffle_i32x4(w, w2, 0x88),
                            _mm512_shuffle_i32x4(v, v2, 0xdd), _mm512_shuffle_i32x4(w, w2, 0xdd)};
            for (int q = 0; q < 4; q++)
                if (j + 4 * q < nt) _mm512_mask_storeu_epi32(yh + (int64_t)(j + 4 * q) * ldy, m, o[q]);
        }
    }
}
#else
typedef int gr_prefill_bf16_avx512_empty; /* ISO C: no empty file */
#endif
