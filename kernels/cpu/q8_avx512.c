/* The AVX512-VNNI integer kernels (see q8.h): vpdpbusd multiplies unsigned by
 * signed bytes, so the sign is handled explicitly as in the AVX2 path: |w| on
 * the unsigned side, x with w's sign (a masked negation: AVX-512 has no
 * vpsignb) on the signed side; Q4 nibbles are unsigned already. The integer
 * sums are exact either way (maddubs' int16 pairs never saturate: 2*128*127 <
 * 32767), so every (row, token) result is the AVX2 kernels' bit for bit: the
 * same lanes, the same fused multiply-adds in the same order. */
#include "cpu_backend.h"
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && defined(__AVX512VL__) && GR_CPU_AVX2
#include "q8.h"
#include "model.h"
#include <immintrin.h>
#include <string.h>

static inline float hf(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

static float hsum(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* gr_q8_dot_avx2 with vpdpbusd on ymm: one block per step */
float gr_q8_dot_avx512(int type, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s,
                       int64_t cols) {
    __m256 acc0 = _mm256_setzero_ps();
    const __m256i z = _mm256_setzero_si256();
    float off = 0;
    int64_t nb = cols / 32, b = 0;
    if (type == GR_Q8_0) {
        for (; b < nb; b++, w += 34) {
            _mm_prefetch((const char *)w + GR_PREFETCH_BYTES, _MM_HINT_T0);
            __m256i wq = _mm256_loadu_si256((const __m256i *)(w + 2));
            __m256i xq = _mm256_loadu_si256((const __m256i *)(q + 32 * b));
            __m256i p = _mm256_dpbusd_epi32(z, _mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(hf(w) * d[b]), _mm256_cvtepi32_ps(p), acc0);
        }
    } else {
        int q41 = type == GR_Q4_1;
        size_t bs = q41 ? 20 : 18;
        const __m128i m4 = _mm_set1_epi8(0x0F);
        for (; b < nb; b++, w += bs) {
            _mm_prefetch((const char *)w + GR_PREFETCH_BYTES, _MM_HINT_T0);
            __m128i raw = _mm_loadu_si128((const __m128i *)(w + (q41 ? 4 : 2)));
            __m256i nib = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(raw, m4)),
                                                  _mm_and_si128(_mm_srli_epi16(raw, 4), m4), 1);
            __m256i xq = _mm256_loadu_si256((const __m256i *)(q + 32 * b));
            __m256i p = _mm256_dpbusd_epi32(z, nib, xq);
            float dw = hf(w);
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw * d[b]), _mm256_cvtepi32_ps(p), acc0);
            off += q41 ? hf(w + 2) * d[b] * (float)s[b] : -8.0f * dw * d[b] * (float)s[b];
        }
    }
    return hsum(acc0) + off;
}

/* gr_q8_dot8_avx2 two groups per zmm: accumulator h holds the AVX2 kernel's
 * a[2h] in its low half and a[2h+1] in its high half (lane = token), so each
 * lane runs the same chain; the final sum is hsum's tree over the groups. */
void gr_q8_dot8_avx512(int type, const uint8_t *w, const uint8_t *aw, const int8_t *pq, const float *pd,
                       const int32_t *ps, int64_t cols, float out[8]) {
    (void)aw; /* |w| is one instruction here */
    const __m512 zf = _mm512_setzero_ps();
    const __m512i zi = _mm512_setzero_si512();
    /* lanes 0-7 take dword 0 of a 64-bit pair of groups, lanes 8-15 dword 1 */
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    __m512 A0 = zf, A1 = zf, A2 = zf, A3 = zf;
    __m256 off = _mm256_setzero_ps();
    int64_t nb = cols / 32;
    if (type == GR_Q8_0) {
        for (int64_t b = 0; b < nb; b++, w += 34, pq += 256) {
            __m512 sc = _mm512_broadcast_f32x8(_mm256_mul_ps(_mm256_set1_ps(hf(w)), _mm256_loadu_ps(pd + 8 * b)));
#define Q8_PAIR(h, A)                                                                        \
            {                                                                                \
                __m512i wg = _mm512_permutexvar_epi32(                                       \
                    idx, _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(w + 2 + 8 * h)))); \
                __m512i xq = _mm512_loadu_si512((const void *)(pq + 64 * h));                \
                __m512i xs = _mm512_mask_sub_epi8(xq, _mm512_movepi8_mask(wg), zi, xq);      \
                __m512i p = _mm512_dpbusd_epi32(zi, _mm512_abs_epi8(wg), xs);                \
                A = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(p), A);                           \
            }
            Q8_PAIR(0, A0) Q8_PAIR(1, A1) Q8_PAIR(2, A2) Q8_PAIR(3, A3)
#undef Q8_PAIR
        }
    } else {
        int q41 = type == GR_Q4_1;
        size_t bs = q41 ? 20 : 18;
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        for (int64_t b = 0; b < nb; b++, w += bs, pq += 256) {
            const uint8_t *nib = w + (q41 ? 4 : 2);
            float dw = hf(w);
            __m256 d8 = _mm256_loadu_ps(pd + 8 * b);
            __m512 sc = _mm512_broadcast_f32x8(_mm256_mul_ps(_mm256_set1_ps(dw), d8));
            __m256 mo = _mm256_set1_ps(q41 ? hf(w + 2) : -8.0f * dw);
            off = _mm256_add_ps(off, _mm256_mul_ps(_mm256_mul_ps(mo, d8),
                                                   _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(ps + 8 * b)))));
            /* groups 2h, 2h+1: low nibbles of bytes 8h.. (h < 2), high nibbles of bytes 8(h-2).. */
#define Q4_PAIR(h, A)                                                                        \
            {                                                                                \
                __m512i wg = _mm512_permutexvar_epi32(                                       \
                    idx, _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(nib + 8 * (h & 1))))); \
                if (h >= 2) wg = _mm512_srli_epi16(wg, 4);                                   \
                wg = _mm512_and_si512(wg, m4);                                               \
                __m512i xq = _mm512_loadu_si512((const void *)(pq + 64 * h));                \
                A = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zi, wg, xq)), A); \
            }
            Q4_PAIR(0, A0) Q4_PAIR(1, A1) Q4_PAIR(2, A2) Q4_PAIR(3, A3)
#undef Q4_PAIR
        }
    }
    /* ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)): A0+A2 = (a0+a4 | a1+a5), A1+A3 = (a2+a6 | a3+a7) */
    __m512 t = _mm512_add_ps(_mm512_add_ps(A0, A2), _mm512_add_ps(A1, A3));
    __m256 sum = _mm256_add_ps(_mm512_castps512_ps256(t), _mm512_extractf32x8_ps(t, 1));
    _mm256_storeu_ps(out, _mm256_add_ps(sum, off));
}
#else
typedef int gr_q8_avx512_empty; /* ISO C: no empty file */
#endif
