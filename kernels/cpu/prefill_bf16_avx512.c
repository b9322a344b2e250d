/* The AVX512-BF16 parts of the BF16 prefill GEMM (see prefill_bf16.h): the
 * weight packing (bf16 pairs, 8 x 8 transposes of 32-bit words) and the
 * 12 x 32 tile, 24 zmm accumulators, one vdpbf16ps chain per element. */
#include "cpu_backend.h"
#if defined(__AVX512BF16__) && GR_CPU_AVX2
#include "cpu_microkernel.h"
#include "prefill_bf16.h"
#include <immintrin.h>
#include <string.h>

void gr_pb_pack_w_avx512(uint32_t *wp, const gr_tensor *w, int64_t r0, int64_t np) {
    int64_t cols = w->cols, full = cols / 2; /* pairs with both columns */
    int nr = w->rows - r0 < GR_PB_NR ? (int)(w->rows - r0) : GR_PB_NR;
    const uint8_t *row[GR_PB_NR];
    for (int r = 0; r < GR_PB_NR; r++) row[r] = r < nr ? (const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes : NULL;
    int64_t p = 0;
    if (nr == GR_PB_NR)
        for (; p + 8 <= full; p += 8)
            for (int h = 0; h < GR_PB_NR; h += 8) {
                __m256 v[8];
                for (int q = 0; q < 8; q++) v[q] = _mm256_loadu_ps((const float *)(const void *)(row[h + q] + 4 * p));
                gr_tr8(v);
                for (int q = 0; q < 8; q++) _mm256_storeu_ps((float *)(void *)(wp + GR_PB_NR * (p + q) + h), v[q]);
            }
    for (; p < np; p++)
        for (int r = 0; r < GR_PB_NR; r++) {
            uint32_t v = 0;
            if (row[r]) {
                const uint8_t *e = row[r] + 4 * p;
                v = (uint32_t)e[0] | (uint32_t)e[1] << 8;
                if (p < full) v |= (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
            }
            wp[GR_PB_NR * p + r] = v;
        }
}

void gr_pb_tile_avx512(int kp, const uint32_t *a, const uint32_t *b, float *C, int load) {
    __m512 c[2 * GR_PB_MR];
    for (int i = 0; i < 2 * GR_PB_MR; i++) c[i] = load ? _mm512_loadu_ps(C + 16 * i) : _mm512_setzero_ps();
    for (int p = 0; p < kp; p++, a += GR_PB_MR, b += GR_PB_NR) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(b), w1 = (__m512bh)_mm512_loadu_si512(b + 16);
#define T(t)                                                                   \
    {                                                                          \
        __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[t]);                   \
        c[2 * (t)] = _mm512_dpbf16_ps(c[2 * (t)], x, w0);                      \
        c[2 * (t) + 1] = _mm512_dpbf16_ps(c[2 * (t) + 1], x, w1);              \
    }
        T(0) T(1) T(2) T(3) T(4) T(5) T(6) T(7) T(8) T(9) T(10) T(11)
#undef T
    }
    for (int i = 0; i < 2 * GR_PB_MR; i++) _mm512_storeu_ps(C + 16 * i, c[i]);
}
#else
typedef int gr_prefill_bf16_avx512_empty; /* ISO C: no empty file */
#endif
