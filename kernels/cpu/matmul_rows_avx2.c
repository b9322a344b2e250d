/* The AVX2/FMA/F16C row kernels (see matmul_rows.h): 4 weight rows x up to 3
 * tokens, one ymm accumulator per (row, token): the decode order. */
#include "matmul_rows.h"
#if GR_CPU_AVX2
#include "q8.h"
#include "quant.h"
#include <immintrin.h>
#include <string.h>

static inline float h2f(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

float gr_dot_f32_avx2(const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    float s = 0;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    __m256 t = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    s = _mm_cvtss_f32(h);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

const float *gr_row_f32_avx2(const gr_tensor *w, int64_t r, float *buf) {
    const uint8_t *p = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
    int64_t n = w->cols, i = 0;
    switch (w->type) {
    case GR_F32:
        return (const float *)p;
    case GR_BF16:
        for (; i + 8 <= n; i += 8) {
            __m128i h = _mm_loadu_si128((const __m128i *)(p + 2 * i));
            __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
            _mm256_storeu_ps(buf + i, _mm256_castsi256_ps(u));
        }
        for (; i < n; i++) buf[i] = gr_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return buf;
    case GR_F16:
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(buf + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
        for (; i < n; i++) buf[i] = gr_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return buf;
    case GR_Q8_0:
        for (int64_t bk = 0; bk < n / 32; bk++, p += 34) {
            __m256 d = _mm256_set1_ps(h2f(p));
            for (int j = 0; j < 32; j += 8) {
                __m128i q = _mm_loadl_epi64((const __m128i *)(p + 2 + j));
                __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
                _mm256_storeu_ps(buf + bk * 32 + j, _mm256_mul_ps(d, f));
            }
        }
        return buf;
    case GR_Q4_0:
    case GR_Q4_1:
    {
        int q41 = w->type == GR_Q4_1;
        size_t bsz = q41 ? 20 : 18;
        const __m128i m4 = _mm_set1_epi8(0x0F);
        for (int64_t bk = 0; bk < n / 32; bk++, p += bsz) {
            __m256 d = _mm256_set1_ps(h2f(p));
            __m256 mn = q41 ? _mm256_set1_ps(h2f(p + 2))
                            : _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));
            __m128i q = _mm_loadu_si128((const __m128i *)(p + (q41 ? 4 : 2)));
            __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
            float *o = buf + bk * 32;
            /* x = d*q + m (Q4_1), d*q - 8d (Q4_0) */
            _mm256_storeu_ps(o, _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), mn));
            _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))), mn));
            _mm256_storeu_ps(o + 16, _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), mn));
            _mm256_storeu_ps(o + 24, _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))), mn));
        }
        return buf;
    }
    default:
        gr_dequantize(w->type, p, buf, n);
        return buf;
    }
}

static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* 4 weight rows × 3 tokens: 12 accumulators, each x and w load feeds 3-4 FMAs.
 * out[t*ldy + r] for t < 3, r < 4. cols8 = cols rounded down to 8. */
static void gr_mm_4x3_avx2(const float *const *w, const float *x0, const float *x1, const float *x2,
                   int64_t cols, float *y0, float *y1, float *y2) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00,
           a12 = a00, a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00;
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8) {
        __m256 v0 = _mm256_loadu_ps(x0 + k), v1 = _mm256_loadu_ps(x1 + k), v2 = _mm256_loadu_ps(x2 + k);
        __m256 b = _mm256_loadu_ps(w[0] + k);
        a00 = _mm256_fmadd_ps(v0, b, a00); a10 = _mm256_fmadd_ps(v1, b, a10); a20 = _mm256_fmadd_ps(v2, b, a20);
        b = _mm256_loadu_ps(w[1] + k);
        a01 = _mm256_fmadd_ps(v0, b, a01); a11 = _mm256_fmadd_ps(v1, b, a11); a21 = _mm256_fmadd_ps(v2, b, a21);
        b = _mm256_loadu_ps(w[2] + k);
        a02 = _mm256_fmadd_ps(v0, b, a02); a12 = _mm256_fmadd_ps(v1, b, a12); a22 = _mm256_fmadd_ps(v2, b, a22);
        b = _mm256_loadu_ps(w[3] + k);
        a03 = _mm256_fmadd_ps(v0, b, a03); a13 = _mm256_fmadd_ps(v1, b, a13); a23 = _mm256_fmadd_ps(v2, b, a23);
    }
    float r[12] = {hsum8(a00), hsum8(a01), hsum8(a02), hsum8(a03), hsum8(a10), hsum8(a11),
                   hsum8(a12), hsum8(a13), hsum8(a20), hsum8(a21), hsum8(a22), hsum8(a23)};
    for (; k < cols; k++)
        for (int j = 0; j < 4; j++) {
            r[j] += x0[k] * w[j][k];
            r[4 + j] += x1[k] * w[j][k];
            r[8 + j] += x2[k] * w[j][k];
        }
    memcpy(y0, r, 16);
    memcpy(y1, r + 4, 16);
    memcpy(y2, r + 8, 16);
}

/* 4 weight rows × 1 token */
static void gr_mm_4x1_avx2(const float *const *w, const float *x, int64_t cols, float *y) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k);
        a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w[0] + k), a0);
        a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w[1] + k), a1);
        a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w[2] + k), a2);
        a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w[3] + k), a3);
    }
    float r[4] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)};
    for (; k < cols; k++)
        for (int j = 0; j < 4; j++) r[j] += x[k] * w[j][k];
    memcpy(y, r, 16);
}
/* 8 weights of a row from k on, as floats, in k order */
static inline __m256 load8(int type, const uint8_t *row, int64_t k) {
    switch (type) {
    case GR_F32: return _mm256_loadu_ps((const float *)row + k);
    case GR_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * k)));
    default: /* BF16 */
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + 2 * k))), 16));
    }
}

static inline float elem(int type, const uint8_t *row, int64_t k) {
    if (type == GR_F32) return ((const float *)row)[k];
    uint16_t h = (uint16_t)(row[2 * k] | row[2 * k + 1] << 8);
    return type == GR_F16 ? gr_f16_to_f32(h) : gr_bf16_to_f32(h);
}

/* Decode at one token: 4 rows (F32/F16/BF16) converted in registers and used at
 * once, never stored, so the weight stream is the only memory traffic; the
 * decode order, as gr_mm_4x1_avx2 on converted rows. pf: this tile's first
 * byte; the weight stream (rows are contiguous) is fetched into L2 16 KiB ahead
 * as the tile is consumed (4 rows are 4 interleaved streams, which the hardware
 * prefetcher follows badly). On Zen 4 at level avx2 (1 thread, SmolLM2-135M,
 * every matrix once, median GB/s): the next tile with prefetcht0 16.0 (F16) /
 * 13.5 (BF16), 16 KiB ahead with prefetcht1 18.2 / 17.4; as the AVX-512
 * kernel's (matmul_rows_avx512.c). Not measured on an AVX2-only CPU. */
enum { PF_AHEAD = 16384 };
static inline __attribute__((always_inline)) void dec_4x1(const int type, const uint8_t *const *row,
                                                          const float *x, int64_t cols, float *y,
                                                          const char *pf) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const int64_t es = type == GR_F32 ? 4 : 2;
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8) {
        if ((k & 31) == 0)
            for (int i = 0; i < 2 * es; i++) _mm_prefetch(pf + 4 * es * k + PF_AHEAD + 64 * i, _MM_HINT_T1);
        __m256 v = _mm256_loadu_ps(x + k);
        a0 = _mm256_fmadd_ps(v, load8(type, row[0], k), a0);
        a1 = _mm256_fmadd_ps(v, load8(type, row[1], k), a1);
        a2 = _mm256_fmadd_ps(v, load8(type, row[2], k), a2);
        a3 = _mm256_fmadd_ps(v, load8(type, row[3], k), a3);
    }
    float r[4] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)};
    for (; k < cols; k++)
        for (int j = 0; j < 4; j++) r[j] += x[k] * elem(type, row[j], k);
    memcpy(y, r, 16);
}
static void dec_4x1_f32(const uint8_t *const *row, const float *x, int64_t cols, float *y, const char *pf) {
    dec_4x1(GR_F32, row, x, cols, y, pf);
}
static void dec_4x1_f16(const uint8_t *const *row, const float *x, int64_t cols, float *y, const char *pf) {
    dec_4x1(GR_F16, row, x, cols, y, pf);
}
static void dec_4x1_bf16(const uint8_t *const *row, const float *x, int64_t cols, float *y, const char *pf) {
    dec_4x1(GR_BF16, row, x, cols, y, pf);
}

void gr_dec_rows_avx2(const gr_tensor *w, int64_t r0, int64_t r1, const float *x, int n, float *y,
                      int64_t ldy, float *buf) {
    int64_t cols = w->cols;
    int fused = n == 1 && (w->type == GR_F32 || w->type == GR_F16 || w->type == GR_BF16);
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r += 4) {
        int nr = r1 - r < 4 ? (int)(r1 - r) : 4; /* past the end: row r again, not stored */
        float o[12];
        if (fused) {
            const uint8_t *rows[4];
            for (int q = 0; q < 4; q++) rows[q] = base + (size_t)(r + (q < nr ? q : 0)) * w->row_bytes;
            const char *pf = (const char *)rows[0];
            (w->type == GR_F32 ? dec_4x1_f32 : w->type == GR_F16 ? dec_4x1_f16 : dec_4x1_bf16)(rows, x, cols, o, pf);
            for (int q = 0; q < nr; q++) y[r + q] = o[q];
            continue;
        }
        const float *w4[4];
        for (int q = 0; q < 4; q++) w4[q] = q < nr ? gr_row_f32_avx2(w, r + q, buf + (size_t)q * (size_t)cols) : w4[0];
        int t = 0;
        for (; t + 3 <= n; t += 3) {
            const float *xt = x + (size_t)t * (size_t)cols;
            gr_mm_4x3_avx2(w4, xt, xt + cols, xt + 2 * cols, cols, o, o + 4, o + 8);
            for (int u = 0; u < 3; u++)
                for (int q = 0; q < nr; q++) y[(size_t)(t + u) * ldy + r + q] = o[4 * u + q];
        }
        for (; t < n; t++) {
            gr_mm_4x1_avx2(w4, x + (size_t)t * (size_t)cols, cols, o);
            for (int q = 0; q < nr; q++) y[(size_t)t * ldy + r + q] = o[q];
        }
    }
}
#else
typedef int gr_matmul_rows_avx2_empty; /* ISO C: no empty file */
#endif
