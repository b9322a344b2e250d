/* Integer weight × 8-bit activation dot products (see cpu_q8.h). Weight blocks:
 *   Q8_0 (34 bytes): f16 d, int8 q[32]                 w = d*q
 *   Q4_0 (18): f16 d, u8 q[16]; lo nibbles are w[0..15], hi w[16..31]; w = d*(nib-8)
 *   Q4_1 (20): f16 d, f16 m, u8 q[16], same order;      w = d*nib + m
 * so a block's contribution is dw*dx*Σ q_w q_x (Q8_0), dw*dx*(Σ nib q_x - 8 s)
 * (Q4_0) and dw*dx*Σ nib q_x + m*dx*s (Q4_1), with the integer sums exact. */
#include "cpu_q8.h"
#include "model.h"
#include "quant.h"
#include <math.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

int gr_q8_supported(int type, int64_t cols) {
    return (type == GR_Q8_0 || type == GR_Q4_0 || type == GR_Q4_1) && cols > 0 && cols % 32 == 0;
}

void gr_q8_quantize(const float *x, int64_t cols, int8_t *q, float *d, int32_t *s) {
    for (int64_t b = 0; b < cols / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0;
        int i = 0;
#if defined(__AVX2__)
        /* the same values as the scalar loop: max and nearest-even rounding are exact */
        const __m256 sign = _mm256_set1_ps(-0.0f);
        __m256 m = _mm256_setzero_ps();
        for (; i < 32; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + i)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        amax = _mm_cvtss_f32(h);
#endif
        for (; i < 32; i++) {
            float a = fabsf(xb[i]);
            if (a > amax) amax = a;
        }
        float db = amax / 127.0f, id = db > 0 ? 1.0f / db : 0.0f;
        int32_t sum = 0;
        i = 0;
#if defined(__AVX2__)
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
#endif
        for (; i < 32; i++) {
            /* |xb*id| <= 127 up to rounding of id: clamp so a q never wraps */
            float v = nearbyintf(xb[i] * id);
            int qi = v > 127 ? 127 : v < -127 ? -127 : (int)v;
            q[32 * b + i] = (int8_t)qi;
            sum += qi;
        }
        d[b] = db;
        s[b] = sum;
    }
}

static inline float f16_at(const uint8_t *p) { return gr_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* The scalar integer sums below must never be auto-vectorized. GCC 12 with
 * AVX-VNNI or AVX512-VNNI enabled (-march=native on Ice Lake and later, Sapphire
 * Rapids, Zen 4) turns a signed x signed int8 multiply-accumulate loop into
 * vpdpbusd, which multiplies *unsigned* by signed bytes: wrong sums (seen as
 * test_cpu_q8's "scalar -0.0131705, exact 0.0174377"). Passing each product
 * through an empty asm statement hides it from the vectorizer's dot-product
 * pattern, whatever the compiler version and -march: the scalar path is the
 * reference the SIMD paths are tested against, so it has to be right first. */
#define GR_OPAQUE_INT(v) __asm__("" : "+r"(v))

/* One block of the scalar dot: w at the block's bytes, q its 32 activations;
 * returns the weight block's size. */
static size_t block_scalar(int type, const uint8_t *w, const int8_t *q, float d, int32_t s, float *acc) {
    int32_t sumi = 0;
    if (type == GR_Q8_0) {
        for (int i = 0; i < 32; i++) {
            int32_t p = (int8_t)w[2 + i] * q[i];
            GR_OPAQUE_INT(p);
            sumi += p;
        }
        *acc += f16_at(w) * d * (float)sumi;
        return 34;
    }
    int q41 = type == GR_Q4_1;
    const uint8_t *nb = w + (q41 ? 4 : 2);
    for (int i = 0; i < 16; i++) {
        int32_t p = (nb[i] & 0xF) * q[i] + (nb[i] >> 4) * q[i + 16];
        GR_OPAQUE_INT(p);
        sumi += p;
    }
    float dw = f16_at(w);
    if (q41)
        *acc += dw * d * (float)sumi + f16_at(w + 2) * d * (float)s;
    else
        *acc += dw * d * (float)(sumi - 8 * s);
    return q41 ? 20 : 18;
}

float gr_q8_dot_scalar(int type, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s,
                       int64_t cols) {
    float acc = 0;
    for (int64_t b = 0; b < cols / 32; b++) w += block_scalar(type, w, q + 32 * b, d[b], s[b], &acc);
    return acc;
}

void gr_q8_pack8(const int8_t *q, const float *d, const int32_t *s, int64_t cols, int8_t *pq,
                 float *pd, int32_t *ps) {
    int64_t nb = cols / 32;
    for (int64_t b = 0; b < nb; b++)
        for (int t = 0; t < 8; t++) {
            for (int g = 0; g < 8; g++)
                memcpy(pq + 32 * (8 * b + g) + 4 * t, q + (size_t)t * (size_t)cols + 32 * b + 4 * g, 4);
            pd[8 * b + t] = d[(size_t)t * (size_t)nb + (size_t)b];
            ps[8 * b + t] = s[(size_t)t * (size_t)nb + (size_t)b];
        }
}

void gr_q8_abs(const uint8_t *w, int64_t cols, uint8_t *aw) {
    for (int64_t b = 0; b < cols / 32; b++, w += 34, aw += 32) {
#ifdef __AVX2__
        __m256i wq = _mm256_loadu_si256((const __m256i *)(w + 2));
        _mm256_storeu_si256((__m256i *)aw, _mm256_sign_epi8(wq, wq));
#else
        for (int i = 0; i < 32; i++) {
            int v = (int8_t)w[2 + i];
            aw[i] = (uint8_t)(v < 0 ? -v : v);
        }
#endif
    }
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
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

float gr_q8_dot(int type, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s,
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
void gr_q8_dot8(int type, const uint8_t *w, const uint8_t *aw, const int8_t *pq, const float *pd,
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
float gr_q8_dot(int type, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s,
                int64_t cols) {
    return gr_q8_dot_scalar(type, w, q, d, s, cols);
}

void gr_q8_dot8(int type, const uint8_t *w, const uint8_t *aw, const int8_t *pq, const float *pd,
                const int32_t *ps, int64_t cols, float out[8]) {
    (void)aw;
    for (int t = 0; t < 8; t++) {
        const uint8_t *wb = w;
        float acc = 0;
        for (int64_t b = 0; b < cols / 32; b++) {
            int8_t qb[32];
            for (int g = 0; g < 8; g++) memcpy(qb + 4 * g, pq + 32 * (8 * b + g) + 4 * t, 4);
            wb += block_scalar(type, wb, qb, pd[8 * b + t], ps[8 * b + t], &acc);
        }
        out[t] = acc;
    }
}
#endif
