/* The CPU backend: a persistent thread pool (cpu_pool.c), AVX2/FMA kernels
 * where the compiler targets them (-march=native) and portable C otherwise. */
#include "backend.h"
#include "cpu_expf.h"
#include "cpu_q8.h"
#include "cpu_gemm.h"
#include "cpu_pool.h"
#include "forward.h"
#include "quant.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

/* ---- thread pool (cpu_pool.c) ------------------------------------------- */
typedef struct cpu_impl cpu_impl;
static gr_pool *pool_of(gr_backend *b);

void gr_cpu_parallel(gr_backend *b, void (*fn)(void *, int), void *ctx, int n) {
    gr_pool_run(pool_of(b), fn, ctx, n);
}

/* Tiny jobs run on the calling thread. With the spinning pool a hand-off costs
 * about a microsecond, so only jobs below ~5 us stay serial (SmolLM2's smallest
 * decode matmul, 576x192, is ~110k multiply-adds: it goes parallel). `work` is
 * in multiply-adds; the tasks are the same either way, so results do not change. */
enum { PAR_MIN_WORK = 1 << 15 };

static void run_tasks(gr_backend *b, void (*fn)(void *, int), void *ctx, int n, double work) {
    if (work < PAR_MIN_WORK) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    gr_cpu_parallel(b, fn, ctx, n);
}

/* Decode (1-2 tokens): one contiguous share of the rows per thread. Every
 * task is a long sequential weight stream, and one claim per thread keeps the
 * shared task counter from bouncing between cores dozens of times per matmul
 * (SmolLM2 F16 decode at 2 threads: ~50 -> ~85 tokens/s against 36 tasks). */
static int64_t decode_rows_per_task(const gr_backend *b, int64_t rows) {
    int64_t per = (rows + b->n_threads - 1) / b->n_threads;
    return (per + 3) / 4 * 4;
}

/* ---- kernels ------------------------------------------------------------- */

static float dot_f32(const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    float s = 0;
#if defined(__AVX2__) && defined(__FMA__)
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
#else
    float acc[8] = {0};
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    for (int j = 0; j < 8; j++) s += acc[j];
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

#if defined(__F16C__)
static inline float h2f(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }
#else
static inline float h2f(const uint8_t *p) { return gr_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }
#endif

/* One weight row to floats (F32 rows are used in place). */
static const float *row_f32(const gr_tensor *w, int64_t r, float *buf) {
    const uint8_t *p = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
    int64_t n = w->cols, i = 0;
    switch (w->type) {
    case GR_F32:
        return (const float *)p;
    case GR_BF16:
#ifdef __AVX2__
        for (; i + 8 <= n; i += 8) {
            __m128i h = _mm_loadu_si128((const __m128i *)(p + 2 * i));
            __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
            _mm256_storeu_ps(buf + i, _mm256_castsi256_ps(u));
        }
#endif
        for (; i < n; i++) buf[i] = gr_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return buf;
    case GR_F16:
#if defined(__AVX2__) && defined(__F16C__)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(buf + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
#endif
        for (; i < n; i++) buf[i] = gr_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return buf;
    case GR_Q8_0:
#if defined(__AVX2__) && defined(__F16C__)
        for (int64_t bk = 0; bk < n / 32; bk++, p += 34) {
            __m256 d = _mm256_set1_ps(h2f(p));
            for (int j = 0; j < 32; j += 8) {
                __m128i q = _mm_loadl_epi64((const __m128i *)(p + 2 + j));
                __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
                _mm256_storeu_ps(buf + bk * 32 + j, _mm256_mul_ps(d, f));
            }
        }
        return buf;
#endif
    case GR_Q4_0:
    case GR_Q4_1:
#if defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
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
#endif
    default:
        gr_dequantize(w->type, p, buf, n);
        return buf;
    }
}

typedef struct mm_job {
    float *y;
    const float *x;
    int n;
    const gr_tensor *w;
    int64_t rows_per_task; /* a multiple of 4 */
    float *scratch;        /* (n_tasks, 4, cols) */
} mm_job;

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
static float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* 4 weight rows × 3 tokens: 12 accumulators, each x and w load feeds 3-4 FMAs.
 * out[t*ldy + r] for t < 3, r < 4. cols8 = cols rounded down to 8. */
static void mm_4x3(const float *const *w, const float *x0, const float *x1, const float *x2,
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
static void mm_4x1(const float *const *w, const float *x, int64_t cols, float *y) {
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
/* Decode (1-2 tokens): each 32 weights are converted in registers and used at
 * once, never stored: the weight stream is the only memory traffic. */
static inline void load32(const gr_tensor *w, const uint8_t *row, int64_t k, __m256 v[4]) {
    switch (w->type) {
    /* written out: as loops, GCC (-O2) kept v in memory for F32 and F16 and
     * read each converted vector back from a store */
    case GR_F32: {
        const float *f = (const float *)row + k;
        v[0] = _mm256_loadu_ps(f);
        v[1] = _mm256_loadu_ps(f + 8);
        v[2] = _mm256_loadu_ps(f + 16);
        v[3] = _mm256_loadu_ps(f + 24);
        break;
    }
    case GR_F16: {
        const __m128i *h = (const __m128i *)(row + 2 * k);
        v[0] = _mm256_cvtph_ps(_mm_loadu_si128(h));
        v[1] = _mm256_cvtph_ps(_mm_loadu_si128(h + 1));
        v[2] = _mm256_cvtph_ps(_mm_loadu_si128(h + 2));
        v[3] = _mm256_cvtph_ps(_mm_loadu_si128(h + 3));
        break;
    }
    case GR_BF16: {
        /* Interleaving with zeros widens 16 values in two instructions, in the
         * order [0-3 8-11] [4-7 12-15]: x comes permuted the same way (bf16_perm). */
        const __m256i z = _mm256_setzero_si256();
        for (int i = 0; i < 2; i++) {
            __m256i h = _mm256_loadu_si256((const __m256i *)(row + 2 * (k + 16 * i)));
            v[2 * i] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, h));
            v[2 * i + 1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, h));
        }
        break;
    }
    case GR_Q8_0: {
        const uint8_t *p = row + (k / 32) * 34;
        __m256 d = _mm256_set1_ps(h2f(p));
        for (int i = 0; i < 4; i++)
            v[i] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                        _mm_loadl_epi64((const __m128i *)(p + 2 + 8 * i)))));
        break;
    }
    default: { /* Q4_0, Q4_1 */
        int q41 = w->type == GR_Q4_1;
        const uint8_t *p = row + (k / 32) * (q41 ? 20 : 18);
        __m256 d = _mm256_set1_ps(h2f(p));
        __m256 mn = q41 ? _mm256_set1_ps(h2f(p + 2)) : _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));
        const __m128i m4 = _mm_set1_epi8(0x0F);
        __m128i q = _mm_loadu_si128((const __m128i *)(p + (q41 ? 4 : 2)));
        __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
        v[0] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), mn);
        v[1] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))), mn);
        v[2] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), mn);
        v[3] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))), mn);
    }
    }
}

/* y[t] (t < nt <= 2) = dot(row r of w, x[t]); cols a multiple of 32. */
static void fused_row(const gr_tensor *w, int64_t r, const float *x, int nt, float *y, int64_t ldy) {
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
    int64_t cols = w->cols;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    const float *x1 = x + (nt > 1 ? cols : 0);
    for (int64_t k = 0; k < cols; k += 32) {
        __m256 v[4];
        _mm_prefetch((const char *)row + GR_PREFETCH_BYTES + (k * w->row_bytes) / cols, _MM_HINT_T0);
        load32(w, row, k, v);
        a0 = _mm256_fmadd_ps(v[0], _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(v[1], _mm256_loadu_ps(x + k + 8), a1);
        a0 = _mm256_fmadd_ps(v[2], _mm256_loadu_ps(x + k + 16), a0);
        a1 = _mm256_fmadd_ps(v[3], _mm256_loadu_ps(x + k + 24), a1);
        if (nt > 1) {
            b0 = _mm256_fmadd_ps(v[0], _mm256_loadu_ps(x1 + k), b0);
            b1 = _mm256_fmadd_ps(v[1], _mm256_loadu_ps(x1 + k + 8), b1);
            b0 = _mm256_fmadd_ps(v[2], _mm256_loadu_ps(x1 + k + 16), b0);
            b1 = _mm256_fmadd_ps(v[3], _mm256_loadu_ps(x1 + k + 24), b1);
        }
    }
    y[r] = hsum8(_mm256_add_ps(a0, a1));
    if (nt > 1) y[ldy + r] = hsum8(_mm256_add_ps(b0, b1));
}

#endif

static void mm_task(void *ctx, int task) {
    mm_job *j = ctx;
    int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task;
    if (r1 > j->w->rows) r1 = j->w->rows;
    int64_t cols = j->w->cols, rows = j->w->rows;
    float *buf = j->scratch + (size_t)task * 4 * (size_t)cols;
    int64_t r = r0;
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
    if (j->n <= 2 && cols % 32 == 0) {
        for (; r < r1; r++) fused_row(j->w, r, j->x, j->n, j->y, rows);
        return;
    }
    for (; r + 4 <= r1; r += 4) {
        const float *w4[4];
        for (int q = 0; q < 4; q++) w4[q] = row_f32(j->w, r + q, buf + (size_t)q * (size_t)cols);
        int t = 0;
        float tmp[12];
        for (; t + 3 <= j->n; t += 3) {
            mm_4x3(w4, j->x + (size_t)t * cols, j->x + (size_t)(t + 1) * cols,
                   j->x + (size_t)(t + 2) * cols, cols, tmp, tmp + 4, tmp + 8);
            for (int u = 0; u < 3; u++) memcpy(j->y + (size_t)(t + u) * rows + r, tmp + 4 * u, 16);
        }
        for (; t < j->n; t++) mm_4x1(w4, j->x + (size_t)t * cols, cols, j->y + (size_t)t * rows + r);
    }
#endif
    for (; r < r1; r++) {
        const float *wr = row_f32(j->w, r, buf);
        for (int t = 0; t < j->n; t++) j->y[(size_t)t * rows + r] = dot_f32(j->x + (size_t)t * cols, wr, cols);
    }
}

struct cpu_impl {
    gr_pool *pool;
    int8_t *xq;        /* quantized activations for the integer path */
    float *xd;
    int32_t *xs;
    int8_t *pq;        /* the same rows, eight at a time in gr_q8_pack8's layout */
    float *pd;
    int32_t *ps;
    size_t xq_cap;     /* elements of xq (and of pq) */
    void *buf[GR_CPU_BUF_N]; /* gr_cpu_buffer */
    size_t buf_cap[GR_CPU_BUF_N];
};

static gr_pool *pool_of(gr_backend *b) { return ((cpu_impl *)b->impl)->pool; }

/* At least `need` floats of scratch, 64-byte aligned (the GEMM's packed weights
 * are read with aligned loads). */
static float *scratch_reserve(gr_backend *b, size_t need) {
    return gr_cpu_buffer(b, GR_CPU_BUF_SCRATCH, need * sizeof(float));
}

/* The integer path: rows [r0, r1) of w against every quantized token row. The
 * same dot for every (row, token), so results do not depend on the batch. */
typedef struct q8_job {
    float *y;
    const cpu_impl *ci;
    int n;
    const gr_tensor *w;
    int64_t rows_per_task;
    uint8_t *aw; /* per task: one Q8_0 row's |w| (gr_q8_abs), for 16+ tokens */
} q8_job;

static void q8_task(void *ctx, int task) {
    q8_job *j = ctx;
    const gr_tensor *w = j->w;
    int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task, cols = w->cols;
    if (r1 > w->rows) r1 = w->rows;
    uint8_t *aw = j->aw ? j->aw + (size_t)task * (size_t)cols : NULL;
    /* 16 weight rows (~10 KB in Q8_0 at 576 columns) stay in L1 while the token
     * rows pass over them, up to 32 tokens (4 groups of 8) at a time: each row's
     * |w| (gr_q8_abs) is made once and serves them all */
    for (int64_t rb = r0; rb < r1; rb += 16) {
        int64_t re = rb + 16 < r1 ? rb + 16 : r1;
        int t = 0;
        while (t + 8 <= j->n) {
            int ng = (j->n - t) / 8 < 4 ? (j->n - t) / 8 : 4;
            /* the outputs are read back once the 16 rows are done: reading a
             * vector store's lanes right after it stalls store forwarding */
            float o[4][16][8];
            for (int64_t r = rb; r < re; r++) {
                const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
                if (aw && ng > 1) gr_q8_abs(wr, cols, aw);
                for (int g = 0; g < ng; g++) {
                    size_t tg = (size_t)(t + 8 * g);
                    gr_q8_dot8(w->type, wr, ng > 1 ? aw : NULL, j->ci->pq + tg * (size_t)cols, j->ci->pd + tg * (size_t)(cols / 32),
                               j->ci->ps + tg * (size_t)(cols / 32), cols, o[g][r - rb]);
                }
            }
            for (int g = 0; g < ng; g++)
                for (int u = 0; u < 8; u++)
                    for (int64_t r = rb; r < re; r++)
                        j->y[(size_t)(t + 8 * g + u) * (size_t)w->rows + (size_t)r] = o[g][r - rb][u];
            t += 8 * ng;
        }
        for (; t < j->n; t++) {
            const int8_t *q = j->ci->xq + (size_t)t * (size_t)cols;
            const float *d = j->ci->xd + (size_t)t * (size_t)(cols / 32);
            const int32_t *s = j->ci->xs + (size_t)t * (size_t)(cols / 32);
            float *y = j->y + (size_t)t * (size_t)w->rows;
            for (int64_t r = rb; r < re; r++)
                y[r] = gr_q8_dot(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, q, d, s, cols);
        }
    }
}

static void q8_matmul(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
    cpu_impl *ci = b->impl;
    size_t need = (size_t)n * (size_t)w->cols;
    if (need > ci->xq_cap) {
        free(ci->xq);
        free(ci->xd);
        free(ci->xs);
        free(ci->pq);
        free(ci->pd);
        free(ci->ps);
        ci->xq = gr_xmalloc(need);
        ci->xd = gr_xmalloc(need / 32 * sizeof(float));
        ci->xs = gr_xmalloc(need / 32 * sizeof(int32_t));
        ci->pq = gr_xmalloc(need);
        ci->pd = gr_xmalloc(need / 32 * sizeof(float));
        ci->ps = gr_xmalloc(need / 32 * sizeof(int32_t));
        ci->xq_cap = need;
    }
    for (int t = 0; t < n; t++) {
        size_t o = (size_t)t * (size_t)w->cols;
        gr_q8_quantize(x + o, w->cols, ci->xq + o, ci->xd + o / 32, ci->xs + o / 32);
    }
    for (int t = 0; t + 8 <= n; t += 8) {
        size_t o = (size_t)t * (size_t)w->cols;
        gr_q8_pack8(ci->xq + o, ci->xd + o / 32, ci->xs + o / 32, w->cols, ci->pq + o, ci->pd + o / 32,
                    ci->ps + o / 32);
    }
    int64_t per = 8;
    while (w->rows / per > 512) per *= 2;
    if (n <= 2) per = decode_rows_per_task(b, w->rows);
    int tasks = (int)((w->rows + per - 1) / per);
    uint8_t *aw = n >= 16 && w->type == GR_Q8_0
                      ? gr_cpu_buffer(b, GR_CPU_BUF_Q8ABS, (size_t)tasks * (size_t)w->cols)
                      : NULL;
    q8_job j = {y, ci, n, w, per, aw};
    run_tasks(b, q8_task, &j, tasks, (double)n * (double)w->rows * (double)w->cols);
}

/* Prefill (48+ tokens): the blocked GEMM of cpu_gemm.c. A task
 * takes a contiguous run of 16-row blocks and owns one scratch slot. */
typedef struct gemm_job {
    float *y;
    const float *x;
    int n, tasks;
    const gr_tensor *w;
    int64_t nblocks, slot;
    float *scratch;
} gemm_job;

static void gemm_task(void *ctx, int task) {
    gemm_job *j = ctx;
    int64_t b0 = j->nblocks * task / j->tasks, b1 = j->nblocks * (task + 1) / j->tasks;
    for (int64_t bk = b0; bk < b1; bk++)
        gr_gemm_block(j->y, j->x, j->n, j->w, bk * GR_GEMM_NR, row_f32, j->scratch + (size_t)task * (size_t)j->slot);
}

static void gemm_matmul(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
    int64_t nblocks = (w->rows + GR_GEMM_NR - 1) / GR_GEMM_NR;
    int tasks = 4 * b->n_threads;
    if (tasks > nblocks) tasks = (int)nblocks;
    int64_t slot = gr_gemm_scratch(w->cols);
    size_t need = (size_t)tasks * (size_t)slot;
    float *scratch = scratch_reserve(b, need);
    float *xpack = gr_cpu_buffer(b, GR_CPU_BUF_XPACK,
                                 sizeof(float) * (size_t)gr_gemm_xpack_size(n, w->cols));
    gr_gemm_pack_x(xpack, x, n, w->cols);
    gemm_job j = {y, xpack, n, tasks, w, nblocks, slot, scratch};
    run_tasks(b, gemm_task, &j, tasks, (double)n * (double)w->rows * (double)w->cols);
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
/* x with the middle two quarters of every 16 values swapped: the order in which
 * load32 widens BF16 weights. */
static const float *bf16_perm(gr_backend *b, const float *x, int n, int64_t cols) {
    size_t need = (size_t)n * (size_t)cols;
    float *xp = gr_cpu_buffer(b, GR_CPU_BUF_XPERM, need * sizeof(float));
    for (size_t i = 0; i < need; i += 16) {
        memcpy(xp + i, x + i, 16);
        memcpy(xp + i + 4, x + i + 8, 16);
        memcpy(xp + i + 8, x + i + 4, 16);
        memcpy(xp + i + 12, x + i + 12, 16);
    }
    return xp;
}
#endif

static void cpu_matmul(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
    if (!b->exact && gr_q8_supported(w->type, w->cols)) {
        q8_matmul(b, y, x, n, w);
        return;
    }
    /* packing 16 rows costs about as much as 16 tokens of work: below ~48 tokens
     * (batched decode) the unpacked 4x3 kernel below is faster */
    if (n >= 48) {
        gemm_matmul(b, y, x, n, w);
        return;
    }
    /* Enough tasks to balance, few enough to keep each weight row's reuse over the n tokens. */
    int64_t per = 16;
    while (w->rows / per > 1024) per *= 2;
    if (n <= 2) per = decode_rows_per_task(b, w->rows);
    int tasks = (int)((w->rows + per - 1) / per);
    size_t need = (size_t)tasks * 4 * (size_t)w->cols;
    float *scratch = scratch_reserve(b, need);
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
    if (n <= 2 && w->type == GR_BF16 && w->cols % 32 == 0) x = bf16_perm(b, x, n, w->cols);
#endif
    mm_job j = {y, x, n, w, per, scratch};
    run_tasks(b, mm_task, &j, tasks, (double)n * (double)w->rows * (double)w->cols);
}

static void cpu_embedding(gr_backend *b, float *out, const gr_tensor *emb, const int *tokens, int n) {
    (void)b;
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * (size_t)emb->cols;
        const float *r = row_f32(emb, tokens[i], o);
        if (r != o) memcpy(o, r, sizeof(float) * (size_t)emb->cols);
    }
}

static void cpu_rmsnorm(gr_backend *b, float *out, const float *x, const float *w, int n, int dim,
                        float eps) {
    (void)b;
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * dim;
        float *ot = out + (size_t)t * dim;
        float ss = dot_f32(xt, xt, dim) / (float)dim;
        float inv = 1.0f / sqrtf(ss + eps);
        for (int i = 0; i < dim; i++) ot[i] = w[i] * (xt[i] * inv);
    }
}

static void cpu_rope(gr_backend *b, float *x, const int *pos, int n, int n_heads, int hd,
                     const float *inv) {
    (void)b;
    int half = hd / 2;
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < half; i++) {
            float ang = (float)pos[t] * inv[i]; /* fp32, as transformers */
            float c = cosf(ang), s = sinf(ang);
            for (int h = 0; h < n_heads; h++) {
                float *v = x + ((size_t)t * n_heads + h) * hd;
                float a = v[i], bb = v[i + half];
                v[i] = a * c - bb * s;
                v[i + half] = bb * c + a * s;
            }
        }
    }
}

typedef struct att_job {
    float *out;
    const float *q;
    const gr_attn_batch *ab;
    int layer, n_heads, n_kv_heads, hd;
    float *scratch; /* per task: (max_pos+1) scores */
    int max_len;
} att_job;

static void att_task(void *ctx, int task) {
    att_job *j = ctx;
    int t = task / j->n_heads, h = task % j->n_heads;
    int kvh = h / (j->n_heads / j->n_kv_heads), hd = j->hd;
    const gr_kv *kv = j->ab->kv[t];
    int P = j->ab->pos[t];
    const float *qv = j->q + ((size_t)t * j->n_heads + h) * hd;
    float *sc = j->scratch + (size_t)task * (size_t)j->max_len;
    float scale = 1.0f / sqrtf((float)hd), mx = -INFINITY;
    int p = 0;
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
    /* Keys in groups of four, each group's four sums reduced together (hadd);
     * two groups at a time keep eight FMA chains in flight (one key's sum is a
     * chain of hd/8 dependent FMAs). A score does not depend on the grouping. */
    if (hd % 8 == 0) {
        __m128 m4 = _mm_set1_ps(-INFINITY);
        const __m128 vs = _mm_set1_ps(scale);
        for (; p + 4 <= P + 1;) {
            int nk = p + 8 <= P + 1 ? 8 : 4;
            const float *k[8];
            __m256 a[8];
            for (int u = 0; u < 8; u++) {
                k[u] = gr_kv_k(kv, j->layer, p + (u < nk ? u : 0)) + kvh * hd;
                a[u] = _mm256_setzero_ps();
            }
            for (int i = 0; i < hd; i += 8) {
                __m256 qq = _mm256_loadu_ps(qv + i);
#pragma GCC unroll 8
                for (int u = 0; u < 8; u++) a[u] = _mm256_fmadd_ps(qq, _mm256_loadu_ps(k[u] + i), a[u]);
            }
            for (int g = 0; g < nk; g += 4) {
                __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a[g], a[g + 1]), _mm256_hadd_ps(a[g + 2], a[g + 3]));
                __m128 s4 = _mm_mul_ps(_mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)), vs);
                _mm_storeu_ps(sc + p + g, s4);
                /* max_ps(s4, m4) passes over a NaN score as the scalar compare does */
                m4 = _mm_max_ps(s4, m4);
            }
            p += nk;
        }
        float t4[4];
        _mm_storeu_ps(t4, m4);
        for (int u = 0; u < 4; u++)
            if (t4[u] > mx) mx = t4[u];
    }
#endif
    for (; p <= P; p++) {
        const float *kp = gr_kv_k(kv, j->layer, p) + kvh * hd;
        float s;
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
        if (hd % 8 == 0) {
            __m256 a = _mm256_setzero_ps();
            for (int i = 0; i < hd; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(qv + i), _mm256_loadu_ps(kp + i), a);
            s = hsum8(a);
        } else
#endif
            s = dot_f32(qv, kp, hd);
        s *= scale;
        sc[p] = s;
        if (s > mx) mx = s;
    }
    /* gr_expf_n returns expf's values: the same weights as one expf per score */
    for (p = 0; p <= P; p++) sc[p] -= mx;
    gr_expf_n(sc, P + 1);
    float sum = 0;
    for (p = 0; p <= P; p++) sum += sc[p];
    float *o = j->out + ((size_t)t * j->n_heads + h) * hd;
    memset(o, 0, sizeof(float) * (size_t)hd);
    float inv = 1.0f / sum;
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
    /* 64 output values at a time stay in registers over all positions */
    if (hd % 64 == 0) {
        for (int i0 = 0; i0 < hd; i0 += 64) {
            __m256 c[8];
            for (int u = 0; u < 8; u++) c[u] = _mm256_setzero_ps();
            for (int q = 0; q <= P; q++) {
                const float *vv = gr_kv_v(kv, j->layer, q) + kvh * hd + i0;
                __m256 va = _mm256_set1_ps(sc[q] * inv);
#pragma GCC unroll 8
                for (int u = 0; u < 8; u++) c[u] = _mm256_fmadd_ps(va, _mm256_loadu_ps(vv + 8 * u), c[u]);
            }
            for (int u = 0; u < 8; u++) _mm256_storeu_ps(o + i0 + 8 * u, c[u]);
        }
        return;
    }
#endif
    for (p = 0; p <= P; p++) {
        const float *vv = gr_kv_v(kv, j->layer, p) + kvh * hd;
        float a = sc[p] * inv;
        int i = 0;
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
        __m256 va = _mm256_set1_ps(a);
        for (; i + 8 <= hd; i += 8)
            _mm256_storeu_ps(o + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(vv + i), _mm256_loadu_ps(o + i)));
#endif
        for (; i < hd; i++) o[i] += a * vv[i];
    }
}

static void cpu_attention(gr_backend *b, float *out, const float *q, const gr_attn_batch *ab,
                          int layer, int n_heads, int n_kv_heads, int hd) {
    int max_len = 1;
    for (int t = 0; t < ab->n; t++)
        if (ab->pos[t] + 1 > max_len) max_len = ab->pos[t] + 1;
    int tasks = ab->n * n_heads;
    size_t need = (size_t)tasks * (size_t)max_len;
    att_job j = {out, q, ab, layer, n_heads, n_kv_heads, hd, scratch_reserve(b, need), max_len};
    run_tasks(b, att_task, &j, tasks, 2.0 * (double)tasks * (double)max_len * (double)hd);
}

static void cpu_swiglu(gr_backend *b, float *out, const float *g, const float *u, int64_t n) {
    (void)b;
    int64_t i = 0;
#if GR_EXPF_AVX
    /* gr_expf8 is expf bit for bit, and the rest is the scalar line's IEEE operations */
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 e = gr_expf8(_mm256_xor_ps(gv, neg));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
    }
#endif
    for (; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void cpu_add(gr_backend *b, float *y, const float *x, int64_t n) {
    (void)b;
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

static void cpu_free(gr_backend *b) {
    cpu_impl *ci = b->impl;
    gr_pool_free(ci->pool);
    free(ci->xq);
    free(ci->xd);
    free(ci->xs);
    free(ci->pq);
    free(ci->pd);
    free(ci->ps);
    for (int i = 0; i < GR_CPU_BUF_N; i++) free(ci->buf[i]);
    free(ci);
    free(b);
}

void *gr_cpu_buffer(gr_backend *b, int slot, size_t bytes) {
    cpu_impl *ci = b->impl;
    if (bytes > ci->buf_cap[slot]) {
        free(ci->buf[slot]);
        ci->buf[slot] = gr_xmalloc_aligned(64, bytes);
        ci->buf_cap[slot] = bytes;
    }
    return ci->buf[slot];
}

gr_backend *gr_backend_cpu(int n_threads) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > 256) n_threads = 256;
    gr_backend *b = gr_xcalloc(1, sizeof *b);
    cpu_impl *ci = gr_xcalloc(1, sizeof *ci);
    b->name = "cpu";
    b->n_threads = n_threads;
    b->impl = ci;
    b->embedding = cpu_embedding;
    b->rmsnorm = cpu_rmsnorm;
    b->matmul = cpu_matmul;
    b->rope = cpu_rope;
    b->attention = cpu_attention;
    b->swiglu = cpu_swiglu;
    b->add = cpu_add;
    b->free = cpu_free;
    ci->pool = gr_pool_new(n_threads - 1);
    return b;
}

void gr_backend_free(gr_backend *b) {
    if (b) b->free(b);
}
