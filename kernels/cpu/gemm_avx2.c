/* The AVX2 part of the inference GEMM (see gemm.h): packing 16 converted
 * weight rows k-major by 8x8 transposes. The tile kernel is cpu_microkernel.h's. */
#include "cpu_backend.h"
#if GR_CPU_AVX2
#include "cpu_microkernel.h"
#include "gemm.h"
#include <immintrin.h>

int64_t gr_gemm_pack_w_avx2(float *wp, const float *const *wr, int64_t cols) {
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8)
        for (int h = 0; h < GR_GEMM_NR; h += 8) {
            __m256 v[8];
            for (int q = 0; q < 8; q++) v[q] = _mm256_loadu_ps(wr[h + q] + k);
            gr_tr8(v);
            for (int q = 0; q < 8; q++) _mm256_store_ps(wp + 16 * (k + q) + h, v[q]);
        }
    return k;
}
#else
typedef int gr_gemm_avx2_empty; /* ISO C: no empty file */
#endif
