/* The Q8_0 prefill tile on AVX512-VNNI (see q8.h, gr_q8_dot8x): one weight
 * row against up to four gr_q8_pack8 groups (32 tokens), each weight dword
 * broadcast once per block and shared by every group. The sign is handled
 * explicitly the other way round from gr_q8_dot8_avx512: the activations go
 * on vpdpbusd's unsigned side as x + 128 (x ^ 0x80), the weights stay signed,
 * and the accumulator starts at -128 * Σw of the lane's 4 bytes (one more
 * vpdpbusd per weight dword, shared by all groups), so each lane's int32 is
 * Σ (x+128) w - 128 Σ w = Σ x w exactly, as in every other kernel. The float
 * chain (scale, convert, one FMA per block per lane, then hsum's tree) is
 * gr_q8_dot8_avx512's, so out[g] is bit-identical to gr_q8_dot8 on group g:
 * results still do not depend on the batch. */
#include "cpu_backend.h"
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && defined(__AVX512VL__) && GR_CPU_AVX2
#include "q8.h"
#include <immintrin.h>

static inline float hf(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

static inline __attribute__((always_inline)) void tile(const uint8_t *w, const int8_t *pq, const float *pd,
                                                       int64_t cols, int ng, float *out, size_t ostride) {
    const __m512i zi = _mm512_setzero_si512(), c80 = _mm512_set1_epi8((char)0x80);
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    __m512 A[4][4];
    /* every loop fully unrolled (ng is a constant here), so A stays in registers */
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++)
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) A[g][h] = _mm512_setzero_ps();
    int64_t nb = cols / 32;
    size_t gq = (size_t)8 * (size_t)cols, gd = (size_t)(cols / 4);
    for (int64_t b = 0; b < nb; b++, w += 34) {
        __m512i wg[4], nc[4];
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) {
            wg[h] = _mm512_permutexvar_epi32(idx, _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(w + 2 + 8 * h))));
            nc[h] = _mm512_sub_epi32(zi, _mm512_dpbusd_epi32(zi, c80, wg[h]));
        }
        __m256 dw = _mm256_set1_ps(hf(w));
#pragma GCC unroll 4
        for (int g = 0; g < ng; g++) {
            const int8_t *q = pq + (size_t)g * gq + 256 * (size_t)b;
            __m512 sc = _mm512_broadcast_f32x8(_mm256_mul_ps(dw, _mm256_loadu_ps(pd + (size_t)g * gd + 8 * b)));
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++) {
                __m512i xu = _mm512_xor_si512(_mm512_loadu_si512((const void *)(q + 64 * h)), c80);
                __m512i p = _mm512_dpbusd_epi32(nc[h], xu, wg[h]);
                A[g][h] = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(p), A[g][h]);
            }
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < ng; g++) {
        __m512 t = _mm512_add_ps(_mm512_add_ps(A[g][0], A[g][2]), _mm512_add_ps(A[g][1], A[g][3]));
        __m256 sum = _mm256_add_ps(_mm512_castps512_ps256(t), _mm512_extractf32x8_ps(t, 1));
        /* gr_q8_dot8_avx512 adds its (zero, for Q8_0) offset vector last */
        _mm256_storeu_ps(out + (size_t)g * ostride, _mm256_add_ps(sum, _mm256_setzero_ps()));
    }
}

void gr_q8_dot8x_avx512(const uint8_t *w, const int8_t *pq, const float *pd, int64_t cols, int ng,
                        float *out, size_t ostride) {
    switch (ng) {
    case 1: tile(w, pq, pd, cols, 1, out, ostride); break;
    case 2: tile(w, pq, pd, cols, 2, out, ostride); break;
    case 3: tile(w, pq, pd, cols, 3, out, ostride); break;
    default: tile(w, pq, pd, cols, 4, out, ostride); break;
    }
}
#else
typedef int gr_q8_tile_avx512_empty; /* ISO C: no empty file */
#endif
