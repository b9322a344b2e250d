/* SwiGLU eight lanes at a time (see elementwise.c). */
#include "cpu_backend.h"
#if GR_CPU_AVX2
#include "cpu_expf.h"
#include <immintrin.h>

/* out[i] = g[i] / (1 + expf(-g[i])) * u[i] for the first n rounded down to 8
 * (returned): gr_expf8 is expf bit for bit, and the rest is the scalar line's
 * IEEE operations, so the results are the portable loop's. */
int64_t gr_swiglu_avx2(float *out, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 e = gr_expf8(_mm256_xor_ps(gv, neg));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
    }
    return i;
}
#else
typedef int gr_elementwise_avx2_empty; /* ISO C: no empty file */
#endif
