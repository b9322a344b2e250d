/* The AVX-512 tile of the inference GEMM (see gemm.h): 12 tokens (two packed
 * 6-token tiles of x) x 16 weight rows, one zmm accumulator per token, each
 * element one chain of fused multiply-adds in k order from zero, added to C
 * last: gr_micro_6x16's order, so the same bits as the AVX2 and scalar tiles. */
#include "cpu_backend.h"
#if defined(__AVX512F__) && GR_CPU_AVX2
#include "gemm.h"
#include <immintrin.h>
#include <stddef.h>

void gr_gemm_12x16_avx512(int kc, const float *a0, const float *a1, const float *b, float *C, int64_t ldc,
                          int load) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0,
           c8 = c0, c9 = c0, c10 = c0, c11 = c0;
    for (int p = 0; p < kc; p++, a0 += 6, a1 += 6, b += 16) {
        __m512 w = _mm512_loadu_ps(b);
        /* set1 from memory: the FMA's embedded broadcast */
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a0[0]), w, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a0[1]), w, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a0[2]), w, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a0[3]), w, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a0[4]), w, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a0[5]), w, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(a1[0]), w, c6);
        c7 = _mm512_fmadd_ps(_mm512_set1_ps(a1[1]), w, c7);
        c8 = _mm512_fmadd_ps(_mm512_set1_ps(a1[2]), w, c8);
        c9 = _mm512_fmadd_ps(_mm512_set1_ps(a1[3]), w, c9);
        c10 = _mm512_fmadd_ps(_mm512_set1_ps(a1[4]), w, c10);
        c11 = _mm512_fmadd_ps(_mm512_set1_ps(a1[5]), w, c11);
    }
#define ST(i, c)                                                                          \
    {                                                                                     \
        float *r = C + (size_t)(i) * (size_t)ldc;                                         \
        _mm512_storeu_ps(r, load ? _mm512_add_ps(_mm512_loadu_ps(r), c) : c);             \
    }
    ST(0, c0) ST(1, c1) ST(2, c2) ST(3, c3) ST(4, c4) ST(5, c5)
    ST(6, c6) ST(7, c7) ST(8, c8) ST(9, c9) ST(10, c10) ST(11, c11)
#undef ST
}
#else
typedef int gr_gemm_avx512_empty; /* ISO C: no empty file */
#endif
