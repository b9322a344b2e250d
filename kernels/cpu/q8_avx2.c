/* The AVX2 integer kernels (see q8.h and q8.c): the same quantized codes as the
 * scalar path, and dot products whose integer sums are exact (maddubs with the
 * sign moved onto the activation side, as llama.cpp's AVX2 path). */
#include "cpu_backend.h"
#if GR_CPU_AVX2
#include "q8.h"
#include "model.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

void gr_q8_quantize_avx2(const float *x, int64_t cols, int8_t *q, float *d, int32_t *s) {
    for (int64_t b = 0; b < cols / 32; b++) {
        const float *xb = x + 32 * b;
        float amax;
        int i = 0;
        /* the same values as the scalar loop: max and nearest-even rounding are exact */
        const __m256 sign = _mm256_set1_ps(-0.0f);
        __m256 m = _mm256_setzero_ps();
        for (; i < 32; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + i)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        amax = _mm_cvtss_f32(h);
        float db = amax / 127.0f, id = db > 0 ? 1.0f / db : 0.0f;
        int32_t sum = 0;
        i = 0;
        const __m256 vid = _mm256_set1_ps(id), hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
        __m256i acc = _mm256_setzero_si256(), qi[4];
        for (; i < 32; i += 8) {
            __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(xb + i), vid),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            qi[i / 8] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
            acc = _mm256_add_epi32(acc, qi[i / 8]);
        }
        /* to bytes (|q| <= 127: the packs never saturate); packing works per
         * 128-bit half, the permute puts the 4-byte groups back in order */
        __m256i q8 = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
        q8 = _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + 32 * b), q8);
        int32_t t[8];
        _mm256_storeu_si256((__m256i *)t, acc);
        for (int k = 0; k < 8; k++) sum += t[k];
        d[b] = db;
        s[b] = sum;
    }
}

void gr_q8_abs_avx2(const uint8_t *w, int64_t cols, uint8_t *aw) {
    for (int64_t b = 0; b < cols / 32; b++, w += 34, aw += 32) {
        __m256i wq = _mm256_loadu_si256((const __m256i *)(w + 2));
        _mm256_storeu_si256((__m256i *)aw, _mm256_sign_epi8(wq, wq));
    }
}

static inline float hf(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

static float hsum(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* 8 int32 partial sums of Σ u[i]*v[i], u unsigned bytes (<= 128), v signed
 * (|v| <= 127): pairs stay within int16 (2*128*127 < 32767). */
static inline __m256i dot_u8s8(__m256i u, __m256i v) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, v), _mm256_set1_epi16(1));
}

float gr_q8_dot_avx2(int type, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s,
                int64_t cols) {
    __m256 acc0 = _mm256_setzero_ps();
    float off = 0;
    int64_t nb = cols / 32, b = 0;
    if (type == GR_Q8_0) {
        /* signed × signed through maddubs: |w| as the unsigned side, x carrying w's sign */
        for (; b < nb; b++, w += 34) {
            _mm_prefetch((const char *)w + GR_PREFETCH_BYTES, _MM_HINT_T0);
            __m256i wq = _mm256_loadu_si256((const __m256i *)(w + 2));
            __m256i xq = _mm256_loadu_si256((const __m256i *)(q + 32 * b));
            __m256i p = dot_u8s8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
            __m256 sc = _mm256_set1_ps(hf(w) * d[b]);
            acc0 = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(p), acc0);
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
            __m256i p = dot_u8s8(nib, xq);
            float dw = hf(w);
            __m256 sc = _mm256_set1_ps(dw * d[b]);
            acc0 = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(p), acc0);
            off += q41 ? hf(w + 2) * d[b] * (float)s[b] : -8.0f * dw * d[b] * (float)s[b];
        }
    }
    return hsum(acc0) + off;
}

/* gr_q8_dot8's Q8_0 blocks: |w| ready in aw (use_aw, one sign per group: x
 * takes w's sign) or made per group (two signs). Inlined with use_aw constant. */
static inline __attribute__((always_inline)) void q8_0_blocks(const uint8_t *w, const uint8_t *aw, int use_aw,
                                                              const int8_t *pq, const float *pd, int64_t nb,
                                                              __m256 a[8]) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++, w += 34, pq += 256) {
        __m256 sc = _mm256_mul_ps(_mm256_set1_ps(hf(w)), _mm256_loadu_ps(pd + 8 * b));
        /* unrolled: the eight accumulators must stay in registers */
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            int32_t w4, a4;
            memcpy(&w4, w + 2 + 4 * g, 4);
            __m256i wg = _mm256_set1_epi32(w4), ag;
            if (use_aw) {
                memcpy(&a4, aw + 32 * b + 4 * g, 4);
                ag = _mm256_set1_epi32(a4);
            } else {
                ag = _mm256_sign_epi8(wg, wg);
            }
            __m256i xq = _mm256_loadu_si256((const __m256i *)(pq + 32 * g));
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ag, _mm256_sign_epi8(xq, wg)), ones);
            a[g] = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(p), a[g]);
        }
    }
}

/* Eight token rows at once (prefill, batched decode), from their gr_q8_pack8
 * layout: vector lane t is token t. Accumulator g holds, for every token, lane g
 * of gr_q8_dot's accumulator, the same fused multiply-adds in the same order, and
 * they are summed as hsum sums lanes: out[t] is gr_q8_dot's, bit for bit, and a
 * (row, token) result does not depend on how tokens were grouped. Lanes as tokens
 * let one multiply make the eight block scales and one broadcast serve eight
 * tokens (SmolLM2 Q8_0, 32 tokens, 1 thread: ~15% less time per matmul). */
void gr_q8_dot8_avx2(int type, const uint8_t *w, const uint8_t *aw, const int8_t *pq, const float *pd,
                const int32_t *ps, int64_t cols, float out[8]) {
    __m256 a[8], off = _mm256_setzero_ps();
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) a[g] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    int64_t nb = cols / 32;
    if (type == GR_Q8_0) {
        if (aw)
            q8_0_blocks(w, aw, 1, pq, pd, nb, a);
        else
            q8_0_blocks(w, NULL, 0, pq, pd, nb, a);
    } else {
        int q41 = type == GR_Q4_1;
        size_t bs = q41 ? 20 : 18;
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        for (int64_t b = 0; b < nb; b++, w += bs, pq += 256) {
            const uint8_t *nib = w + (q41 ? 4 : 2);
            float dw = hf(w);
            __m256 d8 = _mm256_loadu_ps(pd + 8 * b);
            __m256 sc = _mm256_mul_ps(_mm256_set1_ps(dw), d8);
            /* gr_q8_dot's (mw*d)*s and ((-8*dw)*d)*s, unfused */
            __m256 mo = _mm256_set1_ps(q41 ? hf(w + 2) : -8.0f * dw);
            off = _mm256_add_ps(off, _mm256_mul_ps(_mm256_mul_ps(mo, d8),
                                                   _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(ps + 8 * b)))));
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++) {
                /* group g: low nibbles of bytes 4g.. (g < 4), high nibbles of bytes 4(g-4).. */
                int32_t w4;
                memcpy(&w4, nib + 4 * (g & 3), 4);
                __m256i wg = _mm256_set1_epi32(w4);
                if (g >= 4) wg = _mm256_srli_epi16(wg, 4);
                wg = _mm256_and_si256(wg, m4);
                __m256i xq = _mm256_loadu_si256((const __m256i *)(pq + 32 * g));
                __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wg, xq), ones);
                a[g] = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(p), a[g]);
            }
        }
    }
    /* hsum's order: ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)), then + the offset */
    __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[2], a[6])),
                               _mm256_add_ps(_mm256_add_ps(a[1], a[5]), _mm256_add_ps(a[3], a[7])));
    _mm256_storeu_ps(out, _mm256_add_ps(sum, off));
}
#else
typedef int gr_q8_avx2_empty; /* ISO C: no empty file */
#endif
