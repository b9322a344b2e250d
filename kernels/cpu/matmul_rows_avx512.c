/* The AVX-512 decode-row kernels (see matmul_rows.h): one token straight from
 * the weights (F32/F16/BF16), 4 rows at a time (dec_4x1); otherwise 8 weight rows x up to 3
 * tokens, each zmm accumulator holding the eight lanes of two rows (rows 2q and
 * 2q+1 of the tile, the same token), so every lane is the AVX2 kernel's lane:
 * the decode order at twice the width, bit for bit the AVX2 and scalar results. */
#include "cpu_backend.h"
#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512BW__) && defined(__AVX512VL__) && GR_CPU_AVX2
#include "matmul_rows.h"
#include "q8.h"
#include "quant.h"
#include <immintrin.h>
#include <string.h>

static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* weights k..k+7 of rows a (low half) and b (high half), as floats */
static inline __m512 pair8(int type, const uint8_t *a, const uint8_t *b, int64_t k) {
    if (type == GR_F32)
        return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps((const float *)a + k)),
                                  _mm256_loadu_ps((const float *)b + k), 1);
    __m256i h = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(a + 2 * k))),
                                        _mm_loadu_si128((const __m128i *)(b + 2 * k)), 1);
    if (type == GR_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline float elem(int type, const uint8_t *row, int64_t k) {
    if (type == GR_F32) return ((const float *)row)[k];
    uint16_t h = (uint16_t)(row[2 * k] | row[2 * k + 1] << 8);
    return type == GR_F16 ? gr_f16_to_f32(h) : gr_bf16_to_f32(h);
}

/* o[u*8 + q] = row q . token u, for q < 8, u < T. Named accumulators (type
 * and T constant once inlined): an array of them lives on the stack at -O2.
 * pf: the next tile's first byte, fetched ahead as this tile is consumed (8
 * rows are 8 interleaved streams, which the hardware prefetcher follows badly). */
static inline __attribute__((always_inline)) void dec_8xT(const int type, const uint8_t *const *row,
                                                          const float *x, int64_t ldx, const int T,
                                                          int64_t cols, float *o, const char *pf) {
    const __m512 z = _mm512_setzero_ps();
    __m512 a00 = z, a10 = z, a20 = z, a30 = z, a01 = z, a11 = z, a21 = z, a31 = z, a02 = z, a12 = z,
           a22 = z, a32 = z;
    const int64_t es = type == GR_F32 ? 4 : 2;
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8) {
        if ((k & 31) == 0)
            for (int i = 0; i < 4 * es; i++) _mm_prefetch(pf + 8 * es * k + 64 * i, _MM_HINT_T0);
        __m512 x0 = _mm512_broadcast_f32x8(_mm256_loadu_ps(x + k)), x1 = z, x2 = z;
        if (T > 1) x1 = _mm512_broadcast_f32x8(_mm256_loadu_ps(x + ldx + k));
        if (T > 2) x2 = _mm512_broadcast_f32x8(_mm256_loadu_ps(x + 2 * ldx + k));
#define DEC_Q(q)                                                                          \
        {                                                                                 \
            __m512 wv = pair8(type, row[2 * q], row[2 * q + 1], k);                       \
            a##q##0 = _mm512_fmadd_ps(x0, wv, a##q##0);                                  \
            if (T > 1) a##q##1 = _mm512_fmadd_ps(x1, wv, a##q##1);                        \
            if (T > 2) a##q##2 = _mm512_fmadd_ps(x2, wv, a##q##2);                        \
        }
        DEC_Q(0) DEC_Q(1) DEC_Q(2) DEC_Q(3)
#undef DEC_Q
    }
#define DEC_OUT(q, u, acc)                                                                \
    o[u * 8 + 2 * q] = hsum8(_mm512_castps512_ps256(acc));                                \
    o[u * 8 + 2 * q + 1] = hsum8(_mm512_extractf32x8_ps(acc, 1));
    DEC_OUT(0, 0, a00) DEC_OUT(1, 0, a10) DEC_OUT(2, 0, a20) DEC_OUT(3, 0, a30)
    if (T > 1) { DEC_OUT(0, 1, a01) DEC_OUT(1, 1, a11) DEC_OUT(2, 1, a21) DEC_OUT(3, 1, a31) }
    if (T > 2) { DEC_OUT(0, 2, a02) DEC_OUT(1, 2, a12) DEC_OUT(2, 2, a22) DEC_OUT(3, 2, a32) }
#undef DEC_OUT
    for (; k < cols; k++)
        for (int u = 0; u < T; u++)
            for (int q = 0; q < 8; q++) o[u * 8 + q] += x[(size_t)u * ldx + k] * elem(type, row[q], k);
}

/* One token, 4 rows (two pairs: two independent chains) o[q] = row q . x,
 * for the weight stream from memory. Measured on Zen 4 (1 thread, SmolLM2-135M
 * F16/BF16, every matrix once; vbench in the commit message): the 8-row tile
 * with its next tile fetched into L1 (prefetcht0) reached 10 GB/s, this one
 * 16-18 GB/s, the machine's read rate. What made the difference: the hint (T1,
 * into L2, leaves the L1 miss buffers to the demand loads of the 4 row
 * streams; T0 on 8 streams was slower than no hint at all on 2), fewer
 * streams (4 rows: each row's next full line every 4 steps), and a distance
 * in bytes of the linear stream (16 KiB, ~4 tiles) rather than one tile. */
enum { PF_AHEAD = 16384 };
static inline __attribute__((always_inline)) void dec_4x1(const int type, const uint8_t *const *row,
                                                          const float *x, int64_t cols, float *o,
                                                          const char *pf) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    const int64_t es = type == GR_F32 ? 4 : 2;
    int64_t k = 0;
    for (; k + 32 <= cols; k += 32) {
        /* the 4 rows consume 128*es bytes of the tile per step: as many ahead */
        for (int i = 0; i < 2 * es; i++) _mm_prefetch(pf + 4 * es * k + PF_AHEAD + 64 * i, _MM_HINT_T1);
        for (int s = 0; s < 32; s += 8) {
            __m512 xv = _mm512_broadcast_f32x8(_mm256_loadu_ps(x + k + s));
            a0 = _mm512_fmadd_ps(xv, pair8(type, row[0], row[1], k + s), a0);
            a1 = _mm512_fmadd_ps(xv, pair8(type, row[2], row[3], k + s), a1);
        }
    }
    for (; k + 8 <= cols; k += 8) {
        __m512 xv = _mm512_broadcast_f32x8(_mm256_loadu_ps(x + k));
        a0 = _mm512_fmadd_ps(xv, pair8(type, row[0], row[1], k), a0);
        a1 = _mm512_fmadd_ps(xv, pair8(type, row[2], row[3], k), a1);
    }
    o[0] = hsum8(_mm512_castps512_ps256(a0));
    o[1] = hsum8(_mm512_extractf32x8_ps(a0, 1));
    o[2] = hsum8(_mm512_castps512_ps256(a1));
    o[3] = hsum8(_mm512_extractf32x8_ps(a1, 1));
    for (; k < cols; k++)
        for (int q = 0; q < 4; q++) o[q] += x[k] * elem(type, row[q], k);
}
typedef void (*dec4_fn)(const uint8_t *const *row, const float *x, int64_t cols, float *o, const char *pf);
#define DEC4(name, type)                                                                                 \
    static void name(const uint8_t *const *row, const float *x, int64_t cols, float *o, const char *pf) { \
        dec_4x1(type, row, x, cols, o, pf);                                                              \
    }
DEC4(dec4_f32, GR_F32)
DEC4(dec4_f16, GR_F16)
DEC4(dec4_bf16, GR_BF16)
#undef DEC4

typedef void (*dec8_fn)(const uint8_t *const *row, const float *x, int64_t ldx, int64_t cols, float *o,
                        const char *pf);
#define DEC8(name, type, T)                                                                       \
    static void name(const uint8_t *const *row, const float *x, int64_t ldx, int64_t cols, float *o, \
                     const char *pf) {                                                            \
        dec_8xT(type, row, x, ldx, T, cols, o, pf);                                               \
    }
DEC8(dec_f32_1, GR_F32, 1)
DEC8(dec_f32_2, GR_F32, 2)
DEC8(dec_f32_3, GR_F32, 3)
#undef DEC8

void gr_dec_rows_avx512(const gr_tensor *w, int64_t r0, int64_t r1, const float *x, int n, float *y,
                        int64_t ldy, float *buf) {
    int64_t cols = w->cols;
    int raw = w->type == GR_F32 || w->type == GR_F16 || w->type == GR_BF16;
    /* one token: convert in registers (dec_4x1); more: F32 rows read in place,
     * F16/BF16 rows converted once into buf (L1/L2) */
    int fused = raw && (n == 1 || w->type == GR_F32);
    const uint8_t *base = w->data;
    if (fused && n == 1) {
        dec4_fn f = w->type == GR_F32 ? dec4_f32 : w->type == GR_F16 ? dec4_f16 : dec4_bf16;
        for (int64_t r = r0; r < r1; r += 4) {
            int nr = r1 - r < 4 ? (int)(r1 - r) : 4; /* past the end: row r again, not stored */
            const uint8_t *rows[4];
            for (int q = 0; q < 4; q++) rows[q] = base + (size_t)(r + (q < nr ? q : 0)) * w->row_bytes;
            float o[4];
            f(rows, x, cols, o, (const char *)rows[0]);
            for (int q = 0; q < nr; q++) y[r + q] = o[q];
        }
        return;
    }
    for (int64_t r = r0; r < r1; r += 8) {
        int nr = r1 - r < 8 ? (int)(r1 - r) : 8; /* past the end: row r again, not stored */
        const uint8_t *rows[8];
        for (int q = 0; q < 8; q++) {
            int64_t rr = r + (q < nr ? q : 0);
            rows[q] = fused ? base + (size_t)rr * w->row_bytes
                            : q < nr ? (const uint8_t *)gr_row_f32_avx2(w, rr, buf + (size_t)q * (size_t)cols) : rows[0];
        }
        /* the next tile, as this one's bytes (buf: the weights' rows, not the floats) */
        const char *pf = (const char *)base + (size_t)(r + 8) * w->row_bytes;
        float o[24];
        for (int t = 0; t < n;) {
            int T = n - t >= 3 ? 3 : n - t;
            const float *xt = x + (size_t)t * (size_t)cols;
            (T == 3 ? dec_f32_3 : T == 2 ? dec_f32_2 : dec_f32_1)(rows, xt, cols, cols, o, pf);
            for (int u = 0; u < T; u++)
                for (int q = 0; q < nr; q++) y[(size_t)(t + u) * ldy + r + q] = o[u * 8 + q];
            t += T;
        }
    }
}
#else
typedef int gr_matmul_rows_avx512_empty; /* ISO C: no empty file */
#endif
