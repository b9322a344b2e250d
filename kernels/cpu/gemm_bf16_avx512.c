/* AVX-512F variant of gr_bf16_round (gemm_bf16.h): the same integer
 * round-to-nearest-even as the portable loop, 16 floats at a time, so the
 * bits agree on every input (vcvtneps2bf16 is not used: it treats subnormal
 * inputs as zero, PyTorch's rounding does not). */
#include "gemm_bf16.h"
#if defined(__AVX512F__) && defined(__x86_64__)
#include <immintrin.h>

void gr_bf16_round_avx512(float *x, size_t n) {
    const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1),
                  hi = _mm512_set1_epi32((int)0xffff0000u), abs = _mm512_set1_epi32(0x7fffffff),
                  inf = _mm512_set1_epi32(0x7f800000), quiet = _mm512_set1_epi32(0x00400000);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_loadu_si512(x + i);
        __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, bias), _mm512_and_si512(_mm512_srli_epi32(u, 16), one));
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs), inf);
        r = _mm512_mask_or_epi32(r, nan, u, quiet);
        _mm512_storeu_si512(x + i, _mm512_and_si512(r, hi));
    }
    for (; i < n; i++) x[i] = gr_bf16_round1(x[i]);
}

#if defined(__AVX512BF16__)
void gr_bf16_micro_6x16(int kc, const float *a, const float *b, float *C, int ldc, int load) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    const int *ai = (const int *)(const void *)a;
    int np = (kc + 1) / 2;
    for (int p = 0; p < np; p++, ai += 6) {
        __m512bh bv = (__m512bh)_mm512_loadu_si512(b + (size_t)p * 16);
        c0 = _mm512_dpbf16_ps(c0, (__m512bh)_mm512_set1_epi32(ai[0]), bv);
        c1 = _mm512_dpbf16_ps(c1, (__m512bh)_mm512_set1_epi32(ai[1]), bv);
        c2 = _mm512_dpbf16_ps(c2, (__m512bh)_mm512_set1_epi32(ai[2]), bv);
        c3 = _mm512_dpbf16_ps(c3, (__m512bh)_mm512_set1_epi32(ai[3]), bv);
        c4 = _mm512_dpbf16_ps(c4, (__m512bh)_mm512_set1_epi32(ai[4]), bv);
        c5 = _mm512_dpbf16_ps(c5, (__m512bh)_mm512_set1_epi32(ai[5]), bv);
    }
    __m512 c[6] = {c0, c1, c2, c3, c4, c5};
    for (int r = 0; r < 6; r++) {
        float *d = C + (size_t)r * ldc;
        _mm512_storeu_ps(d, load ? _mm512_add_ps(_mm512_loadu_ps(d), c[r]) : c[r]);
    }
}
#endif
#endif
