/* AVX-512 parts of the bf16 training GEMM (gemm_bf16.h): the rounding of
 * gr_bf16_round in 16 lanes, and the vdpbf16ps GEMM gr_bf16_gemm_avx512.
 *
 * The rounding is the portable one's integer round-to-nearest-even, so the
 * bits agree on every input (vcvtneps2bf16 is not used: it treats subnormal
 * inputs as zero, PyTorch's rounding does not).
 *
 * The GEMM (BLIS-style): a task is a column block (≤ NC columns) of a group of
 * row blocks (≤ MC rows each), or, when M is one row block (the LM head's
 * 256-row chunks), a group of column blocks of it. Per k block the task
 * rounds and packs each B block once ([strip][kp][32] bf16 pairs, ≤ 320 KB,
 * L2; or takes it prepacked, gr_bf16_bpack_avx512) and reuses it for every
 * row block of the group; it packs A ([panel][kp][6] pairs) per row block, or
 * once for all its columns when it has one row block; then per 32-column
 * strip (16 KB: L1) it runs the 6 x 32 micro-kernel down the panels. The micro-kernel keeps its 12 accumulators in zmm
 * registers. Every packer is vectorised, with masked loads for the edges (zero
 * rows, columns and odd-k partners), so no scalar loop runs per element. */
#include "gemm_bf16.h"
#include "backend.h"
#include "isa.h"
#if defined(__AVX512F__) && defined(__x86_64__)
#include <immintrin.h>

/* round to nearest even, the bf16 in the high half of each lane (low half
 * not cleared); NaN: quiet */
static inline __m512i rne_hi(__m512i u) {
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)),
                                 _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
}

void gr_bf16_round_avx512(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i r = rne_hi(_mm512_loadu_si512(x + i));
        _mm512_storeu_si512(x + i, _mm512_and_si512(r, _mm512_set1_epi32((int)0xffff0000u)));
    }
    for (; i < n; i++) x[i] = gr_bf16_round1(x[i]);
}

#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__) && GR_CPU_X86
#include "cpu_microkernel.h" /* gr_tr8 */

enum { MR = 6, NR = 32, KCMAX = 256, KPMAX = KCMAX / 2, MC = 258, NC = 640 };

static _Thread_local _Alignas(64) uint32_t apack[(MC / MR) * KPMAX * MR];
static _Thread_local _Alignas(64) uint32_t bpack[(NC / NR) * KPMAX * NR];

typedef struct bf_job {
    int M, N, K, lda, ldb, ldc, at, bt, acc, kc, nkb, mc, nc, nnb, gm, gn, ntc;
    const float *A, *B;
    const uint32_t *bpre; /* B packed beforehand (gr_bf16_bpack_avx512), or NULL */
    float *C;
} bf_job;

static inline __mmask16 lanes(int n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* n (≤ 16) contiguous floats (zeros past n) -> 8 bf16 pairs (k even low) */
static inline __m256i pairs8(const float *s, int n) {
    __m512i u = n >= 16 ? _mm512_loadu_si512(s) : _mm512_maskz_loadu_epi32(lanes(n), s);
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(rne_hi(u), 16));
}

/* lanes of rows k (s0) and k+1 (s1, NULL: zeros), n (≤ 16) of them -> 16 pairs */
static inline __m512i pairs_rows(const float *s0, const float *s1, int n) {
    __mmask16 m = lanes(n);
    __m512i r0 = rne_hi(_mm512_maskz_loadu_epi32(m, s0));
    __m512i lo = _mm512_srli_epi32(r0, 16);
    if (!s1) return lo;
    __m512i r1 = rne_hi(_mm512_maskz_loadu_epi32(m, s1));
    return _mm512_or_si512(lo, _mm512_and_si512(r1, _mm512_set1_epi32((int)0xffff0000u)));
}

/* A rows [i0, i1), k [k0, k0+kc) -> panels [p][MR] of kp pairs; zero rows past i1 */
__attribute__((noinline)) static void pack_a(const bf_job *j, int i0, int i1, int k0, int kc, uint32_t *dst) {
    int kp = (kc + 1) / 2;
    if (!j->at) {
        for (int ii = i0; ii < i1; ii += MR, dst += (size_t)kp * MR) {
            int mr = i1 - ii < MR ? i1 - ii : MR;
            const float *s = j->A + (size_t)ii * j->lda + k0;
            int pf = i1 - ii - MR < MR ? i1 - ii - MR : MR; /* rows of the next panel */
            for (int p = 0; p < kp; p += 8) {
                __m256 f[8];
                /* the next panel's lines (rows too short for the prefetchers) */
                for (int r = 0; r < pf; r++)
                    _mm_prefetch((const char *)(s + (size_t)(MR + r) * j->lda + 2 * p), _MM_HINT_T0);
                for (int r = 0; r < 8; r++)
                    f[r] = r < mr ? _mm256_castsi256_ps(pairs8(s + (size_t)r * j->lda + 2 * p, kc - 2 * p))
                                  : _mm256_setzero_ps();
                gr_tr8(f);
                int np = kp - p < 8 ? kp - p : 8;
                for (int q = 0; q < np; q++)
                    _mm256_mask_storeu_epi32(dst + (size_t)(p + q) * MR, 0x3f, _mm256_castps_si256(f[q]));
            }
        }
        return;
    }
    /* Aᵀ: element (m, k) at A[k·lda + m]; two rows of it (read along) give
     * the pairs of 48 consecutive m (8 panels) at a time */
    int npan = (i1 - i0 + MR - 1) / MR;
    __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int p = 0; p < kp; p++) {
        const float *r0 = j->A + (size_t)(k0 + 2 * p) * j->lda + i0;
        int odd = 2 * p + 1 < kc, next = 2 * p + 3 < kc;
        for (int c = 0; c < i1 - i0; c += 48) {
            int w = i1 - i0 - c, nq = (npan - c / MR) < 8 ? npan - c / MR : 8;
            const float *s0 = r0 + c, *s1 = odd ? s0 + j->lda : NULL;
            if (next) /* the next pair's rows */
                for (int q = 0; q < 48 && q < w; q += 16) {
                    _mm_prefetch((const char *)(s0 + 2 * (size_t)j->lda + q), _MM_HINT_T0);
                    _mm_prefetch((const char *)(s0 + 3 * (size_t)j->lda + q), _MM_HINT_T0);
                }
            __m512i v0 = pairs_rows(s0, s1, w);
            __m512i v1 = pairs_rows(s0 + 16, s1 ? s1 + 16 : NULL, w - 16);
            __m512i v2 = pairs_rows(s0 + 32, s1 ? s1 + 32 : NULL, w - 32);
            for (int q = 0; q < nq; q++) {
                __m512i g = q < 5 ? _mm512_permutex2var_epi32(v0, _mm512_add_epi32(iota, _mm512_set1_epi32(6 * q)), v1)
                                  : _mm512_permutex2var_epi32(v1, _mm512_add_epi32(iota, _mm512_set1_epi32(6 * q - 16)), v2);
                _mm512_mask_storeu_epi32(dst + ((size_t)(c / MR + q) * kp + p) * MR, 0x3f, g);
            }
        }
    }
}

/* B columns [jj, jj+nr), k [k0, k0+kc) -> [p][NR] pairs; zero columns past nr */
__attribute__((noinline)) static void pack_b(const bf_job *j, int jj, int nr, int k0, int kc, uint32_t *dst) {
    int kp = (kc + 1) / 2;
    if (j->bt) { /* element (k, n) at B[n·ldb + k]: pairs contiguous along k */
        for (int h = 0; h < NR; h += 8)
            for (int p = 0; p < kp; p += 8) {
                __m256 f[8];
                for (int q = 8; q < 16 && h + q < nr; q++) /* the next 8 rows' lines */
                    _mm_prefetch((const char *)(j->B + (size_t)(jj + h + q) * j->ldb + k0 + 2 * p), _MM_HINT_T0);
                for (int q = 0; q < 8; q++)
                    f[q] = h + q < nr ? _mm256_castsi256_ps(pairs8(j->B + (size_t)(jj + h + q) * j->ldb + k0 + 2 * p,
                                                                   kc - 2 * p))
                                      : _mm256_setzero_ps();
                gr_tr8(f);
                int np = kp - p < 8 ? kp - p : 8;
                for (int q = 0; q < np; q++) _mm256_store_ps((float *)(dst + (size_t)(p + q) * NR + h), f[q]);
            }
        return;
    }
    for (int p = 0; p < kp; p++) { /* element (k, n) at B[k·ldb + n]: two rows per pair */
        const float *s0 = j->B + (size_t)(k0 + 2 * p) * j->ldb + jj;
        const float *s1 = 2 * p + 1 < kc ? s0 + j->ldb : NULL;
        _mm512_store_si512(dst + (size_t)p * NR, pairs_rows(s0, s1, nr));
        _mm512_store_si512(dst + (size_t)p * NR + 16, pairs_rows(s0 + 16, s1 ? s1 + 16 : NULL, nr - 16));
    }
}

/* C[mr][nr] (ldc) = (load ? C : 0) + the 6 x 32 tile over kp pairs, each
 * element one vdpbf16ps chain from zero in pair order */
__attribute__((noinline)) static void micro(int kp, const uint32_t *a, const uint32_t *b, float *C, int ldc, int load, int mr, int nr) {
    /* 12 named accumulators: an array indexed in a loop ends up in memory */
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    /* the tile's lines of C, wanted at the end (a large C, the LM head's
     * logits, is not in cache: without this the loads and stores miss) */
    for (int r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(C + (size_t)r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + (size_t)r * ldc + 16), _MM_HINT_T0);
    }
    for (int p = 0; p < kp; p++, a += MR, b += NR) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 16);
#define ROW(i, x0, x1)                                                                                        \
    do {                                                                                                      \
        __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);                                                 \
        x0 = _mm512_dpbf16_ps(x0, ai, b0);                                                                    \
        x1 = _mm512_dpbf16_ps(x1, ai, b1);                                                                    \
    } while (0)
        ROW(0, c00, c01);
        ROW(1, c10, c11);
        ROW(2, c20, c21);
        ROW(3, c30, c31);
        ROW(4, c40, c41);
        ROW(5, c50, c51);
#undef ROW
    }
    __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
#define ST(i, x0, x1)                                                                                         \
    if (i < mr) {                                                                                             \
        float *d = C + (size_t)(i) * ldc;                                                                     \
        if (load) {                                                                                           \
            x0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, d), x0);                                             \
            x1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, d + 16), x1);                                        \
        }                                                                                                     \
        _mm512_mask_storeu_ps(d, m0, x0);                                                                     \
        _mm512_mask_storeu_ps(d + 16, m1, x1);                                                                \
    }
    ST(0, c00, c01)
    ST(1, c10, c11)
    ST(2, c20, c21)
    ST(3, c30, c31)
    ST(4, c40, c41)
    ST(5, c50, c51)
#undef ST
}

static int cdiv(int a, int b) { return (a + b - 1) / b; }

static void task(void *ctx, int t) {
    const bf_job *j = ctx;
    int g = t / j->ntc, r0 = g * j->gm * j->mc, n0 = (t % j->ntc) * j->gn * j->nc;
    int r1 = r0 + j->gm * j->mc < j->M ? r0 + j->gm * j->mc : j->M;
    int n1 = n0 + j->gn * j->nc < j->N ? n0 + j->gn * j->nc : j->N;
    for (int kb = 0; kb < j->nkb; kb++) {
        int k0 = kb * j->kc, kc = j->K - k0 < j->kc ? j->K - k0 : j->kc, kp = (kc + 1) / 2;
        int load = kb > 0 || j->acc;
        /* column blocks of the task: B packed once each; a single row block's
         * A is packed once for all of them */
        for (int c0 = n0; c0 < n1; c0 += j->nc) {
            int c1 = c0 + j->nc < n1 ? c0 + j->nc : n1;
            const uint32_t *bblk = bpack;
            if (j->bpre) /* the prepacked strips of this k block from column c0 */
                bblk = j->bpre + (size_t)kb * cdiv(j->N, NR) * (j->kc / 2) * NR + (size_t)(c0 / NR) * kp * NR;
            else
                for (int jj = c0; jj < c1; jj += NR)
                    pack_b(j, jj, c1 - jj, k0, kc, bpack + (size_t)((jj - c0) / NR) * kp * NR);
            for (int i0 = r0; i0 < r1; i0 += j->mc) {
                int i1 = i0 + j->mc < r1 ? i0 + j->mc : r1;
                if (r1 - r0 > j->mc || c0 == n0) pack_a(j, i0, i1, k0, kc, apack);
                for (int jj = c0; jj < c1; jj += NR) {
                    const uint32_t *bp = bblk + (size_t)((jj - c0) / NR) * kp * NR;
                    int nr = c1 - jj < NR ? c1 - jj : NR;
                    for (int ii = i0; ii < i1; ii += MR)
                        micro(kp, apack + (size_t)((ii - i0) / MR) * kp * MR, bp, j->C + (size_t)ii * j->ldc + jj,
                              j->ldc, load, i1 - ii < MR ? i1 - ii : MR, nr);
                }
            }
        }
    }
}

static int even_kc(int kc) { return kc > KCMAX ? KCMAX : kc < 2 ? 2 : kc & ~1; }

size_t gr_bf16_bpack_size(int N, int K, int kc) {
    kc = even_kc(kc);
    int nkb = cdiv(K, kc), last = K - (nkb - 1) * kc;
    return (size_t)cdiv(N, NR) * NR * ((size_t)(nkb - 1) * (kc / 2) + (size_t)(last + 1) / 2);
}

/* prepacking: one task per (k block, 32-column strip) */
static void bpack_task(void *ctx, int t) {
    const bf_job *j = ctx;
    int ns = cdiv(j->N, NR), kb = t / ns, jj = (t % ns) * NR;
    int k0 = kb * j->kc, kc = j->K - k0 < j->kc ? j->K - k0 : j->kc;
    uint32_t *dst = (uint32_t *)(uintptr_t)j->bpre + (size_t)kb * ns * (j->kc / 2) * NR + (size_t)(jj / NR) * ((kc + 1) / 2) * NR;
    pack_b(j, jj, j->N - jj, k0, kc, dst);
}

void gr_bf16_bpack_avx512(gr_backend *b, int N, int K, const float *B, int ldb, int bt, int kc, uint32_t *dst) {
    bf_job j = {.N = N, .K = K, .B = B, .ldb = ldb, .bt = bt, .kc = even_kc(kc), .bpre = dst};
    int nt = cdiv(K, j.kc) * cdiv(N, NR);
    if (b)
        gr_cpu_parallel(b, bpack_task, &j, nt);
    else
        for (int t = 0; t < nt; t++) bpack_task(&j, t);
}

void gr_bf16_gemm_avx512(gr_backend *b, int M, int N, int K, const float *A, int lda, int at, const float *B,
                         int ldb, int bt, float *C, int ldc, int accumulate, int kc, const uint32_t *bpre) {
    bf_job j = {.M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc, .at = at, .bt = bt,
                .acc = accumulate, .A = A, .B = B, .C = C, .bpre = bpre};
    j.kc = even_kc(kc);
    j.nkb = cdiv(K, j.kc);
    j.nnb = cdiv(N, NC);
    j.nc = cdiv(cdiv(N, j.nnb), NR) * NR;
    j.nnb = cdiv(N, j.nc);
    int nmb = cdiv(M, MC), th = b && b->n_threads > 1 ? b->n_threads : 1;
    /* small products (a k/v projection's dW: 192 x 576) get at least two
     * tasks per thread from smaller blocks, rows first (≥ 48), then columns
     * (≥ 64), so that no thread waits for another's second task */
    while (th > 1 && nmb * j.nnb < 2 * th && M / (nmb + 1) >= 48) nmb++;
    while (th > 1 && nmb * j.nnb < 2 * th && N / (j.nnb + 1) >= 64) {
        j.nnb++;
        j.nc = cdiv(cdiv(N, j.nnb), NR) * NR;
    }
    j.nnb = cdiv(N, j.nc);
    j.mc = cdiv(cdiv(M, nmb), MR) * MR;
    nmb = cdiv(M, j.mc);
    /* about 4 tasks per thread (any split gives the same results). B is
     * packed once per task, k block and column block, A once per row block
     * and column block, or once for all the task's columns when the task
     * has one row block: so the rows are split first, the columns only when
     * there is one row block (the LM head's 256-row chunks) */
    int want = th > 1 ? 4 * th : 1;
    if (nmb == 1) {
        j.gm = 1;
        j.gn = cdiv(j.nnb, want);
    } else {
        int ng = cdiv(want, j.nnb);
        if (ng > nmb) ng = nmb;
        j.gm = cdiv(nmb, ng);
        j.gn = 1;
    }
    j.ntc = cdiv(j.nnb, j.gn);
    int nt = cdiv(nmb, j.gm) * j.ntc;
    if (b && nt > 1)
        gr_cpu_parallel(b, task, &j, nt);
    else
        for (int t = 0; t < nt; t++) task(&j, t);
}
#endif
#endif
