/* The CPU training ops (backend_train.h): one blocked GEMM with an AVX2/FMA
 * 6x16 micro-kernel (portable C otherwise) serves every matmul of the forward
 * and backward passes; the rest are threaded loops over rows or heads.
 *
 * Determinism: work is split into tasks by output element, and each element is
 * summed over k in one fixed order, so results do not depend on which thread
 * runs which task or how many threads there are. */
#include "backend_train.h"
#include "cpu_attention_train.h"
#include "cpu_expf.h"
#include "cpu_microkernel.h"
#include "cpu_rowsum.h"
#include "gemm_bf16.h"
#include "isa.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

/* ---- GEMM ----------------------------------------------------------------
 * BLIS-style: C is split into tasks of (≤ MC rows) x (≤ NC columns); a task runs
 * over k in blocks of (about) KC: it packs its A block (mc x kc) into MR-row
 * panels stored k-major ([k][MR], L2-resident), then for each NR-column strip
 * packs the B micro-panel ([k][NR], 16 KB: stays in L1) and runs the 6x16
 * micro-kernel down the rows. A and B may each be given transposed; packing
 * absorbs it (no transposed copies).
 *
 * Determinism: the k blocks depend only on K (never on the thread count or the
 * task split), every element of C is summed within a block in k order, from
 * zero, and the block's sum is then added to C; edge tiles take the same path
 * through zero-padded panels and a scratch tile, so each element is computed
 * the same way wherever it lies and whichever thread runs its task. */
enum { MR = 6, NR = 16, KC = 256, MC = 258, NC = 512 };
#if defined(__AVX2__) && defined(__FMA__) && defined(__x86_64__)
#define GEMM_AVX 1
#else
#define GEMM_AVX 0
#endif

/* per thread: the packed A block (≤ 258 x 256: 258 KB, half of L2; 258 rows
 * so that the LM head's 256-row chunks make one block) and B micro-panel
 * (+ slack for pack_a's overlapping 8-float stores of 6-float rows) */
static _Thread_local _Alignas(64) float apack[MC * KC + 16];
static _Thread_local _Alignas(64) float bpack[KC * NR];


typedef struct gemm_job {
    int M, N, K, lda, ldb, ldc, acc;
    int at;  /* A is given transposed: element (m, k) at A[k·lda + m] */
    int bt;  /* B is given transposed: element (k, n) at B[n·ldb + k] */
    int kc, nkb, mc, nc, nnb;
    int bf16; /* round the packed operands to bf16 (gemm_bf16.h) */
    const float *A, *B;
    float *C;
} gemm_job;

/* A rows [i0, i1), k [k0, k0+kc) -> MR-row panels [p][MR], zero rows past i1 */
static void pack_a(const gemm_job *j, int i0, int i1, int k0, int kc, float *dst) {
    int ii = i0;
    if (j->at) {
        /* a row of Aᵀ at a time (contiguous: the prefetchers follow), spread
         * over the panels */
        int np = (i1 - i0) / MR;
        for (int p = 0; p < kc && np; p++) {
            const float *s = j->A + (size_t)(k0 + p) * j->lda + i0;
            float *d = dst + p * MR;
            for (int q = 0; q < np; q++, s += MR, d += MR * kc) {
#if GEMM_AVX
                _mm_storeu_ps(d, _mm_loadu_ps(s));
                _mm_storel_pi((__m64 *)(d + 4), _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(s + 4)));
#else
                for (int r = 0; r < MR; r++) d[r] = s[r];
#endif
            }
        }
        ii += np * MR;
        dst += (size_t)np * MR * kc;
    }
    for (; ii < i1; ii += MR, dst += MR * kc) {
        int mr = i1 - ii < MR ? i1 - ii : MR, p = 0;
        if (j->at) {
            const float *s = j->A + (size_t)k0 * j->lda + ii;
            for (; p < kc; p++)
                for (int r = 0; r < MR; r++) dst[p * MR + r] = r < mr ? s[(size_t)p * j->lda + r] : 0;
        } else {
            const float *s = j->A + (size_t)ii * j->lda + k0;
#if GEMM_AVX
            if (mr == MR)
                for (; p + 8 <= kc; p += 8) {
                    __m256 r[8];
                    for (int q = 0; q < MR; q++) r[q] = _mm256_loadu_ps(s + (size_t)q * j->lda + p);
                    r[6] = r[7] = _mm256_setzero_ps();
                    gr_tr8(r);
                    for (int q = 0; q < 8; q++) _mm256_storeu_ps(dst + (p + q) * MR, r[q]);
                }
#endif
            for (; p < kc; p++)
                for (int r = 0; r < MR; r++) dst[p * MR + r] = r < mr ? s[(size_t)r * j->lda + p] : 0;
        }
    }
}

/* B columns [jj, jj+nr), k [k0, k0+kc) -> [p][NR], zero columns past nr */
static void pack_b(const gemm_job *j, int jj, int nr, int k0, int kc, float *dst) {
    int p = 0;
    if (j->bt) {
        const float *s = j->B + (size_t)jj * j->ldb + k0;
#if GEMM_AVX
        if (nr == NR)
            for (; p + 8 <= kc; p += 8)
                for (int h = 0; h < NR; h += 8) {
                    __m256 r[8];
                    for (int q = 0; q < 8; q++) r[q] = _mm256_loadu_ps(s + (size_t)(h + q) * j->ldb + p);
                    gr_tr8(r);
                    for (int q = 0; q < 8; q++) _mm256_store_ps(dst + (p + q) * NR + h, r[q]);
                }
#endif
        for (; p < kc; p++)
            for (int q = 0; q < NR; q++) dst[p * NR + q] = q < nr ? s[(size_t)q * j->ldb + p] : 0;
    } else {
        const float *s = j->B + (size_t)k0 * j->ldb + jj;
        if (nr == NR)
            for (; p < kc; p++) {
#if GEMM_AVX /* the next strip's line of this row, for the next call */
                _mm_prefetch((const char *)(s + (size_t)p * j->ldb + NR), _MM_HINT_T1);
#endif
                memcpy(dst + p * NR, s + (size_t)p * j->ldb, sizeof(float) * NR);
            }
        for (; p < kc; p++)
            for (int q = 0; q < NR; q++) dst[p * NR + q] = q < nr ? s[(size_t)p * j->ldb + q] : 0;
    }
}

static int cdiv(int a, int b) { return (a + b - 1) / b; }

static inline void micro(const gemm_job *j, int kc, const float *a, const float *b, float *C, int ldc,
                         int load) {
    (void)j;
    gr_micro_6x16(kc, a, b, C, ldc, load);
}

/* One (≤ mc) x (≤ nc) block of C over all of k. */
static void gemm_task(void *ctx, int t) {
    const gemm_job *j = ctx;
    int i0 = (t / j->nnb) * j->mc, j0 = (t % j->nnb) * j->nc;
    int i1 = i0 + j->mc < j->M ? i0 + j->mc : j->M, j1 = j0 + j->nc < j->N ? j0 + j->nc : j->N;
    float *ap = apack, *bp = bpack;
    _Alignas(32) float tc[MR * NR];
    for (int kb = 0; kb < j->nkb; kb++) {
        int k0 = kb * j->kc, kc = j->K - k0 < j->kc ? j->K - k0 : j->kc;
        int load = kb > 0 || j->acc;
        pack_a(j, i0, i1, k0, kc, ap);
        if (j->bf16) gr_bf16_round_any(ap, (size_t)cdiv(i1 - i0, MR) * MR * kc);
        for (int jj = j0; jj < j1; jj += NR) {
            int nr = j1 - jj < NR ? j1 - jj : NR;
            pack_b(j, jj, nr, k0, kc, bp);
            if (j->bf16) gr_bf16_round_any(bp, (size_t)kc * NR);
            for (int ii = i0; ii < i1; ii += MR) {
                int mr = i1 - ii < MR ? i1 - ii : MR;
                const float *a = ap + (size_t)(ii - i0) * kc;
                float *C = j->C + (size_t)ii * j->ldc + jj;
                if (mr == MR && nr == NR) {
                    micro(j, kc, a, bp, C, j->ldc, load);
                    continue;
                }
                for (int r = 0; r < MR; r++)
                    for (int q = 0; q < NR; q++)
                        tc[r * NR + q] = (load && r < mr && q < nr) ? C[(size_t)r * j->ldc + q] : 0;
                micro(j, kc, a, bp, tc, NR, load);
                for (int r = 0; r < mr; r++)
                    for (int q = 0; q < nr; q++) C[(size_t)r * j->ldc + q] = tc[r * NR + q];
            }
        }
    }
}

/* the k block: blocks of (nearly) equal size, a function of K alone */
static int gemm_kc(int K) {
    int nkb = cdiv(K, KC), kc = (cdiv(K, nkb) + 7) / 8 * 8;
    return kc > KC ? KC : kc;
}

static void gemm_run(gr_backend *b, int M, int N, int K, const float *A, int lda, int at,
                     const float *B, int ldb, int bt, float *C, int ldc, int accumulate) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate)
            for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, sizeof(float) * (size_t)N);
        return;
    }
    gemm_job j = {.M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc, .acc = accumulate,
                  .at = at, .bt = bt, .A = A, .B = B, .C = C, .bf16 = b && b->train_bf16};
    j.kc = gemm_kc(K);
    j.nkb = cdiv(K, j.kc);
#if GR_CPU_X86
    if (j.bf16 && gr_cpu_bf16()) { /* vdpbf16ps: its own driver, the same k blocks */
        gr_bf16_gemm_avx512(b, M, N, K, A, lda, at, B, ldb, bt, C, ldc, accumulate, j.kc, NULL);
        return;
    }
#endif
    /* task blocks (any split gives the same results): at least 8 tasks when
     * that leaves blocks of 96 rows or more and B is small enough (≤ 8 MB) to
     * be read again per block from cache, so that threads end together */
    j.nnb = cdiv(N, NC);
    j.nc = cdiv(cdiv(N, j.nnb), NR) * NR;
    j.nnb = cdiv(N, j.nc);
    int nmb = cdiv(M, MC);
    int b_small = (double)K * N <= 2 << 20;
    while (nmb * j.nnb < 8 && M / (nmb + 1) >= 96 && b_small) nmb++;
    /* and a grid that the threads finish together: of nmb .. nmb + T - 1 row
     * blocks (96 rows or more), the one with the least rounds (tasks / T,
     * rounded up) times the block height plus 16 rows for a block's fixed cost
     * (B packed again, edges). 9 tasks on 2 threads, as (640 tokens) x 1536 x
     * 576 had, leave one thread idle for a ninth of the GEMM; 12 do not. */
    int T = b ? b->n_threads : 1;
    if (T > 1 && b_small) {
        int best = nmb;
        double best_cost = 0;
        for (int c = nmb; c < nmb + T; c++) {
            if (c > nmb && M / c < 96) break;
            int mc = cdiv(cdiv(M, c), MR) * MR;
            double cost = (double)cdiv(cdiv(M, mc) * j.nnb, T) * (mc + 16);
            if (c == nmb || cost < best_cost) best = c, best_cost = cost;
        }
        nmb = best;
    }
    j.mc = cdiv(cdiv(M, nmb), MR) * MR;
    int nt = cdiv(M, j.mc) * j.nnb;
    if (b)
        gr_cpu_parallel(b, gemm_task, &j, nt);
    else /* serial, inside another op's task */
        for (int t = 0; t < nt; t++) gemm_task(&j, t);
}

void gr_cpu_gemm(gr_backend *b, int M, int N, int K, const float *A, int lda, const float *B,
                 int ldb, float *C, int ldc, int accumulate) {
    gemm_run(b, M, N, K, A, lda, 0, B, ldb, 0, C, ldc, accumulate);
}

void gr_cpu_gemm_nt(gr_backend *b, int M, int N, int K, const float *A, int lda, const float *B,
                    int ldb, float *C, int ldc, int accumulate) {
    gemm_run(b, M, N, K, A, lda, 0, B, ldb, 1, C, ldc, accumulate);
}

/* C (M, N) (+)= Aᵀ · B with A (K, M) */
static void gemm_tn(gr_backend *b, int M, int N, int K, const float *A, int lda, const float *B,
                    int ldb, float *C, int ldc, int accumulate) {
    gemm_run(b, M, N, K, A, lda, 1, B, ldb, 0, C, ldc, accumulate);
}

static void cpu_matmul_fwd(gr_backend *b, float *y, const float *x, const float *w, int n, int in,
                           int out) {
    gr_cpu_gemm_nt(b, n, out, in, x, in, w, in, y, out, 0);
}

static void cpu_matmul_bwd(gr_backend *b, float *dx, float *dw, const float *dy, const float *x,
                           const float *w, int n, int in, int out) {
    if (dx) gr_cpu_gemm(b, n, in, out, dy, out, w, in, dx, in, 1);
    gemm_tn(b, out, in, n, dy, out, x, in, dw, in, 1);
}

/* ---- row ops --------------------------------------------------------------- */

typedef struct row_job {
    float *out, *out2, *rstd;
    const float *x, *w, *dout, *crstd;
    int n, dim, rows_per;
    float eps;
} row_job;

static void rms_fwd_task(void *ctx, int t) {
    const row_job *j = ctx;
    for (int r = t * j->rows_per; r < j->n && r < (t + 1) * j->rows_per; r++) {
        const float *x = j->x + (size_t)r * j->dim;
        float *o = j->out + (size_t)r * j->dim;
        float ss = gr_dot8(x, x, j->dim) / (float)j->dim;
        float inv = 1.0f / sqrtf(ss + j->eps);
        j->rstd[r] = inv;
        for (int i = 0; i < j->dim; i++) o[i] = j->w[i] * (x[i] * inv);
    }
}

static int row_tasks(int n, int *per) {
    *per = n < 64 ? 1 : (n + 63) / 64;
    return (n + *per - 1) / *per;
}

static void cpu_rmsnorm_fwd(gr_backend *b, float *out, float *rstd, const float *x,
                            const float *w, int n, int dim, float eps) {
    row_job j = {.out = out, .rstd = rstd, .x = x, .w = w, .n = n, .dim = dim, .eps = eps};
    gr_cpu_parallel(b, rms_fwd_task, &j, row_tasks(n, &j.rows_per));
}

static void rms_bwd_dx_task(void *ctx, int t) {
    const row_job *j = ctx;
    for (int r = t * j->rows_per; r < j->n && r < (t + 1) * j->rows_per; r++) {
        const float *x = j->x + (size_t)r * j->dim, *g = j->dout + (size_t)r * j->dim;
        float *dx = j->out + (size_t)r * j->dim;
        float rs = j->crstd[r];
        float c = 0;
        for (int i = 0; i < j->dim; i++) c += g[i] * j->w[i] * x[i];
        c = c * rs * rs / (float)j->dim;
        for (int i = 0; i < j->dim; i++) dx[i] += rs * (g[i] * j->w[i] - x[i] * c);
    }
}

/* dw over a column range: Σ over rows in order. */
static void rms_bwd_dw_task(void *ctx, int t) {
    const row_job *j = ctx;
    int c0 = t * 64, c1 = c0 + 64 < j->dim ? c0 + 64 : j->dim;
    for (int r = 0; r < j->n; r++) {
        const float *x = j->x + (size_t)r * j->dim, *g = j->dout + (size_t)r * j->dim;
        float rs = j->crstd[r];
        for (int i = c0; i < c1; i++) j->out2[i] += g[i] * (x[i] * rs);
    }
}

static void cpu_rmsnorm_bwd(gr_backend *b, float *dx, float *dw, const float *dout,
                            const float *x, const float *w, const float *rstd, int n, int dim) {
    row_job j = {.out = dx, .out2 = dw, .x = x, .w = w, .dout = dout, .crstd = rstd, .n = n,
                 .dim = dim};
    gr_cpu_parallel(b, rms_bwd_dx_task, &j, row_tasks(n, &j.rows_per));
    gr_cpu_parallel(b, rms_bwd_dw_task, &j, (dim + 63) / 64);
}

static void cpu_rope(gr_backend *b, float *x, const int *pos, int n, int heads, int hd,
                     const float *inv, int inverse) {
    (void)b;
    int half = hd / 2;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < half; i++) {
            float ang = (float)pos[t] * inv[i];
            float c = cosf(ang), s = sinf(ang);
            if (inverse) s = -s;
            for (int h = 0; h < heads; h++) {
                float *v = x + ((size_t)t * heads + h) * hd;
                float a = v[i], bb = v[i + half];
                v[i] = a * c - bb * s;
                v[i + half] = bb * c + a * s;
            }
        }
}

/* ---- attention -------------------------------------------------------------
 * Head dims that are a multiple of 16 take cpu_attention_train.c. The general
 * path, for any head dim: blocks of QB queries against all the keys they see,
 * through the GEMM (run serially inside a task): S = Q Kᵀ, softmax with the
 * causal mask, O = P V.
 * The backward recomputes P from the saved log-sum-exp (flash-attention style)
 * and runs per (sequence, kv head), which owns that head's dK and dV. */
enum { QB = 64 };

static void gemm_serial(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                        float *C, int ldc, int accumulate) {
    gemm_run(NULL, M, N, K, A, lda, 0, B, ldb, 0, C, ldc, accumulate);
}

/* C = A · Bᵀ with B (N, K) rows of stride ldb */
static void gemm_serial_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                           float *C, int ldc, int accumulate) {
    gemm_run(NULL, M, N, K, A, lda, 0, B, ldb, 1, C, ldc, accumulate);
}

typedef struct att_job {
    float *out, *lse, *dq, *dk, *dv;
    const float *q, *k, *v, *dout, *o, *clse;
    const int *start;
    const int *tasks;     /* forward: (seq, head, block) triples */
    int n_seq, H, Hkv, hd;
} att_job;

static void att_fwd_task(void *ctx, int task) {
    const att_job *j = ctx;
    int s = j->tasks[3 * task], h = j->tasks[3 * task + 1], qb = j->tasks[3 * task + 2];
    int kh = h / (j->H / j->Hkv), hd = j->hd, QD = j->H * hd, KD = j->Hkv * hd;
    int r0 = j->start[s], i0 = qb * QB, len = j->start[s + 1] - r0;
    int i1 = i0 + QB < len ? i0 + QB : len, m = i1 - i0, n = i1;
    float scale = 1.0f / sqrtf((float)hd);
    float *S = gr_xmalloc(sizeof(float) * (size_t)m * (size_t)n);
    gemm_serial_nt(m, n, hd, j->q + (size_t)(r0 + i0) * QD + (size_t)h * hd, QD,
                   j->k + (size_t)r0 * KD + (size_t)kh * hd, KD, S, n, 0);
    for (int r = 0; r < m; r++) {
        float *row = S + (size_t)r * n;
        int last = i0 + r; /* keys 0..last */
        float mx = -INFINITY;
        for (int p = 0; p <= last; p++) {
            row[p] *= scale;
            if (row[p] > mx) mx = row[p];
        }
        float sum = 0;
        for (int p = 0; p <= last; p++) row[p] -= mx;
        gr_expf_n(row, last + 1);
        for (int p = 0; p <= last; p++) sum += row[p];
        float inv = 1.0f / sum;
        for (int p = 0; p <= last; p++) row[p] *= inv;
        for (int p = last + 1; p < n; p++) row[p] = 0;
        j->lse[(size_t)(r0 + i0 + r) * j->H + h] = mx + logf(sum);
    }
    gemm_serial(m, hd, n, S, n, j->v + (size_t)r0 * KD + (size_t)kh * hd, KD,
                j->out + (size_t)(r0 + i0) * QD + (size_t)h * hd, QD, 0);
    free(S);
}

static void cpu_attention_fwd(gr_backend *b, float *out, float *lse, const float *q,
                              const float *k, const float *v, const int *start, int n_seq, int H,
                              int Hkv, int hd) {
    if (gr_cpu_attention_fwd_fast(b, out, lse, q, k, v, start, n_seq, H, Hkv, hd)) return;
    int nt = 0;
    for (int s = 0; s < n_seq; s++) nt += H * ((start[s + 1] - start[s] + QB - 1) / QB);
    int *tasks = gr_xmalloc(sizeof(int) * 3 * (size_t)(nt ? nt : 1)), t = 0;
    for (int s = 0; s < n_seq; s++)
        for (int h = 0; h < H; h++)
            for (int qb = 0; qb * QB < start[s + 1] - start[s]; qb++) {
                tasks[3 * t] = s;
                tasks[3 * t + 1] = h;
                tasks[3 * t + 2] = qb;
                t++;
            }
    att_job j = {.out = out, .lse = lse, .q = q, .k = k, .v = v, .start = start, .tasks = tasks,
                 .n_seq = n_seq, .H = H, .Hkv = Hkv, .hd = hd};
    gr_cpu_parallel(b, att_fwd_task, &j, nt);
    free(tasks);
}

static void att_bwd_task(void *ctx, int task) {
    const att_job *j = ctx;
    int s = task / j->Hkv, kh = task % j->Hkv, grp = j->H / j->Hkv;
    int r0 = j->start[s], len = j->start[s + 1] - r0;
    int hd = j->hd, QD = j->H * hd, KD = j->Hkv * hd;
    float scale = 1.0f / sqrtf((float)hd);
    size_t bl = (size_t)QB * (size_t)len;
    float *P = gr_xmalloc(sizeof(float) * bl), *dP = gr_xmalloc(sizeof(float) * bl);
    const float *Kh = j->k + (size_t)r0 * KD + (size_t)kh * hd;
    const float *Vh = j->v + (size_t)r0 * KD + (size_t)kh * hd;
    float *dKh = j->dk + (size_t)r0 * KD + (size_t)kh * hd;
    float *dVh = j->dv + (size_t)r0 * KD + (size_t)kh * hd;
    for (int p = 0; p < len; p++) {
        memset(dKh + (size_t)p * KD, 0, sizeof(float) * (size_t)hd);
        memset(dVh + (size_t)p * KD, 0, sizeof(float) * (size_t)hd);
    }
    for (int h = kh * grp; h < (kh + 1) * grp; h++)
        for (int i0 = 0; i0 < len; i0 += QB) {
            int i1 = i0 + QB < len ? i0 + QB : len, m = i1 - i0, n = i1;
            size_t qo = (size_t)(r0 + i0) * QD + (size_t)h * hd;
            /* P = exp(scale·Q Kᵀ − lse) under the mask; dP = dO Vᵀ */
            gemm_serial_nt(m, n, hd, j->q + qo, QD, Kh, KD, P, n, 0);
            gemm_serial_nt(m, n, hd, j->dout + qo, QD, Vh, KD, dP, n, 0);
            for (int r = 0; r < m; r++) {
                int last = i0 + r;
                float L = j->clse[(size_t)(r0 + i0 + r) * j->H + h];
                float D = gr_dot8(j->dout + qo + (size_t)r * QD, j->o + qo + (size_t)r * QD, hd);
                float *pr = P + (size_t)r * n, *dr = dP + (size_t)r * n;
                for (int p = 0; p <= last; p++) pr[p] = pr[p] * scale - L;
                gr_expf_n(pr, last + 1);
                for (int p = last + 1; p < n; p++) pr[p] = 0;
                for (int p = 0; p < n; p++) dr[p] = pr[p] * (dr[p] - D) * scale; /* dS */
            }
            /* dQ = dS K;  dK += dSᵀ Q;  dV += Pᵀ dO */
            gemm_serial(m, hd, n, dP, n, Kh, KD, j->dq + qo, QD, 0);
            gemm_run(NULL, n, hd, m, dP, n, 1, j->q + qo, QD, 0, dKh, KD, 1);
            gemm_run(NULL, n, hd, m, P, n, 1, j->dout + qo, QD, 0, dVh, KD, 1);
        }
    free(P);
    free(dP);
}

static void cpu_attention_bwd(gr_backend *b, float *dq, float *dk, float *dv, const float *dout,
                              const float *out, const float *lse, const float *q, const float *k,
                              const float *v, const int *start, int n_seq, int H, int Hkv,
                              int hd) {
    if (gr_cpu_attention_bwd_fast(b, dq, dk, dv, dout, out, lse, q, k, v, start, n_seq, H, Hkv, hd))
        return;
    att_job j = {.dq = dq, .dk = dk, .dv = dv, .dout = dout, .o = out, .clse = lse, .q = q,
                 .k = k, .v = v, .start = start, .n_seq = n_seq, .H = H, .Hkv = Hkv, .hd = hd};
    gr_cpu_parallel(b, att_bwd_task, &j, n_seq * Hkv);
}

/* ---- elementwise ----------------------------------------------------------- */
enum { EW = 1 << 14 };
typedef struct ew_job {
    float *a, *b2;
    const float *x, *y, *z;
    int64_t n;
    float f[6];
    int t;
    double *part;
} ew_job;

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

static void swiglu_fwd_task(void *ctx, int t) {
    const ew_job *j = ctx;
    int64_t i1 = ((int64_t)t + 1) * EW < j->n ? ((int64_t)t + 1) * EW : j->n;
    int64_t i = (int64_t)t * EW;
#if GEMM_AVX /* sigm's operations eight lanes at a time (gr_expf8 is expf): the same bits */
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= i1; i += 8) {
        __m256 g = _mm256_loadu_ps(j->x + i);
        __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, gr_expf8(_mm256_xor_ps(g, neg))));
        _mm256_storeu_ps(j->a + i, _mm256_mul_ps(_mm256_mul_ps(g, sg), _mm256_loadu_ps(j->y + i)));
    }
#endif
    for (; i < i1; i++) j->a[i] = j->x[i] * sigm(j->x[i]) * j->y[i];
}

static void swiglu_bwd_task(void *ctx, int t) {
    const ew_job *j = ctx;
    int64_t i1 = ((int64_t)t + 1) * EW < j->n ? ((int64_t)t + 1) * EW : j->n;
    int64_t i = (int64_t)t * EW;
#if GEMM_AVX
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= i1; i += 8) {
        __m256 g = _mm256_loadu_ps(j->x + i), u = _mm256_loadu_ps(j->y + i),
               d = _mm256_loadu_ps(j->z + i);
        __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, gr_expf8(_mm256_xor_ps(g, neg))));
        __m256 f = _mm256_add_ps(one, _mm256_mul_ps(g, _mm256_sub_ps(one, sg)));
        _mm256_storeu_ps(j->a + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(d, u), sg), f));
        _mm256_storeu_ps(j->b2 + i, _mm256_mul_ps(_mm256_mul_ps(d, g), sg));
    }
#endif
    for (; i < i1; i++) {
        float g = j->x[i], u = j->y[i], d = j->z[i], s = sigm(g);
        j->a[i] = d * u * s * (1.0f + g * (1.0f - s));
        j->b2[i] = d * g * s;
    }
}

static int ew_tasks(int64_t n) { return (int)((n + EW - 1) / EW); }

static void cpu_swiglu_fwd(gr_backend *b, float *out, const float *gate, const float *up,
                           int64_t n) {
    ew_job j = {.a = out, .x = gate, .y = up, .n = n};
    gr_cpu_parallel(b, swiglu_fwd_task, &j, ew_tasks(n));
}

static void cpu_swiglu_bwd(gr_backend *b, float *dgate, float *dup, const float *dout,
                           const float *gate, const float *up, int64_t n) {
    ew_job j = {.a = dgate, .b2 = dup, .x = gate, .y = up, .z = dout, .n = n};
    gr_cpu_parallel(b, swiglu_bwd_task, &j, ew_tasks(n));
}

static void cpu_embedding_fwd(gr_backend *b, float *out, const float *emb, const int *tok, int n,
                              int dim) {
    (void)b;
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * dim, emb + (size_t)tok[i] * dim, sizeof(float) * (size_t)dim);
}

static void cpu_embedding_bwd(gr_backend *b, float *demb, const float *dout, const int *tok,
                              int n, int dim) {
    (void)b;
    for (int i = 0; i < n; i++) {
        float *d = demb + (size_t)tok[i] * dim;
        const float *g = dout + (size_t)i * dim;
        for (int e = 0; e < dim; e++) d[e] += g[e];
    }
}

static void sumsq_task(void *ctx, int t) {
    const ew_job *j = ctx;
    int64_t i1 = ((int64_t)t + 1) * EW < j->n ? ((int64_t)t + 1) * EW : j->n;
    /* four double partial sums (i mod 4), then a fixed tree: the same bits
     * from the AVX and the portable loop */
    double s[4] = {0, 0, 0, 0};
    int64_t i = (int64_t)t * EW;
#if GEMM_AVX
    __m256d acc = _mm256_setzero_pd();
    for (; i + 4 <= i1; i += 4) {
        __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(j->x + i));
        acc = _mm256_add_pd(acc, _mm256_mul_pd(x, x));
    }
    _mm256_storeu_pd(s, acc);
#endif
    for (; i + 4 <= i1; i += 4)
        for (int l = 0; l < 4; l++) s[l] += (double)j->x[i + l] * j->x[i + l];
    for (int l = 0; i < i1; i++, l++) s[l] += (double)j->x[i] * j->x[i];
    j->part[t] = (s[0] + s[1]) + (s[2] + s[3]);
}

static double cpu_sumsq(gr_backend *b, const float *x, int64_t n) {
    int nt = ew_tasks(n);
    ew_job j = {.x = x, .n = n, .part = gr_xcalloc((size_t)(nt ? nt : 1), sizeof(double))};
    gr_cpu_parallel(b, sumsq_task, &j, nt);
    double s = 0;
    for (int t = 0; t < nt; t++) s += j.part[t];
    free(j.part);
    return s;
}

static void scale_task(void *ctx, int t) {
    const ew_job *j = ctx;
    int64_t i1 = ((int64_t)t + 1) * EW < j->n ? ((int64_t)t + 1) * EW : j->n;
    for (int64_t i = (int64_t)t * EW; i < i1; i++) j->a[i] *= j->f[0];
}

static void cpu_scale(gr_backend *b, float *x, float s, int64_t n) {
    ew_job j = {.a = x, .n = n, .f = {s}};
    gr_cpu_parallel(b, scale_task, &j, ew_tasks(n));
}

/* torch.optim.AdamW, single-tensor path, in the same fp32 operation order. */
static void adamw_task(void *ctx, int t) {
    const ew_job *j = ctx;
    int64_t i1 = ((int64_t)t + 1) * EW < j->n ? ((int64_t)t + 1) * EW : j->n;
    float lr = j->f[0], b1 = j->f[1], b2 = j->f[2], eps = j->f[3], wd = j->f[4];
    double bc1 = 1.0 - pow((double)b1, j->t), bc2 = 1.0 - pow((double)b2, j->t);
    float step = (float)((double)lr / bc1), bc2s = (float)sqrt(bc2);
    float w1 = (float)(1.0 - (double)b1), w2 = (float)(1.0 - (double)b2);
    float decay = (float)(1.0 - (double)lr * wd);
    float *p = j->a, *m = j->b2, *v = (float *)j->z;
    const float *g = j->x;
    int64_t i = (int64_t)t * EW;
#if GEMM_AVX
    /* the scalar loop's operations, eight lanes at a time (no contraction into
     * FMAs, correctly rounded sqrt and division): the same bits */
    const __m256 vdecay = _mm256_set1_ps(decay), vw1 = _mm256_set1_ps(w1), vw2 = _mm256_set1_ps(w2),
                 vb2 = _mm256_set1_ps(b2), vbc2s = _mm256_set1_ps(bc2s), veps = _mm256_set1_ps(eps),
                 vstep = _mm256_set1_ps(-step);
    for (; i + 8 <= i1; i += 8) {
        __m256 pi = _mm256_loadu_ps(p + i), gi = _mm256_loadu_ps(g + i);
        __m256 mi = _mm256_loadu_ps(m + i), vi = _mm256_loadu_ps(v + i);
        if (wd != 0) pi = _mm256_mul_ps(pi, vdecay);
        mi = _mm256_add_ps(mi, _mm256_mul_ps(vw1, _mm256_sub_ps(gi, mi)));
        vi = _mm256_add_ps(_mm256_mul_ps(vi, vb2), _mm256_mul_ps(_mm256_mul_ps(vw2, gi), gi));
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbc2s), veps);
        pi = _mm256_add_ps(pi, _mm256_mul_ps(vstep, _mm256_div_ps(mi, denom)));
        _mm256_storeu_ps(p + i, pi);
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
    }
#endif
    for (; i < i1; i++) {
        if (wd != 0) p[i] *= decay;
        m[i] += w1 * (g[i] - m[i]);
        v[i] = v[i] * b2 + w2 * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2s + eps;
        p[i] += -step * (m[i] / denom);
    }
}

static void cpu_adamw(gr_backend *b, float *p, const float *g, float *m, float *v, int64_t n,
                      float lr, float beta1, float beta2, float eps, float wd, int t) {
    ew_job j = {.a = p, .b2 = m, .x = g, .z = v, .n = n, .f = {lr, beta1, beta2, eps, wd}, .t = t};
    gr_cpu_parallel(b, adamw_task, &j, ew_tasks(n));
}

/* ---- cross-entropy through the LM head ------------------------------------- */
typedef struct xent_job {
    float *lg;
    const int *target;
    int n, vocab;
    float scale;
    double *nll;
    int want_grad;
} xent_job;

static void xent_row_task(void *ctx, int r) {
    const xent_job *j = ctx;
    float *z = j->lg + (size_t)r * j->vocab;
    float m = -INFINITY;
    for (int i = 0; i < j->vocab; i++)
        if (z[i] > m) m = z[i];
    /* e = expf(z − m) once, in place (gr_expf_n: glibc's expf, eight lanes),
     * summed in double in index order; the gradient is e · scale / Σ */
    float zt = z[j->target[r]];
    for (int i = 0; i < j->vocab; i++) z[i] -= m;
    gr_expf_n(z, j->vocab);
    double sum = 0;
    for (int i = 0; i < j->vocab; i++) sum += (double)z[i];
    double lse = (double)m + log(sum);
    j->nll[r] = lse - (double)zt;
    if (!j->want_grad) return;
    float f = (float)((double)j->scale / sum);
    for (int i = 0; i < j->vocab; i++) z[i] *= f;
    z[j->target[r]] -= j->scale;
}

static double cpu_xent(gr_backend *b, float *dh, float *dw, const float *h, const float *w,
                       const int *target, int n, int dim, int vocab, float scale) {
    enum { CH = 256 };
    int ch = n < CH ? (n ? n : 1) : CH;
    float *lg = gr_cpu_buffer(b, GR_CPU_BUF_XENT, sizeof(float) * (size_t)ch * (size_t)vocab);
    double *nll = gr_xmalloc(sizeof(double) * (size_t)ch);
    double total = 0;
    /* bf16 on vdpbf16ps CPUs, more than one chunk: the weight rounded and
     * packed once for all chunks, as the forward's Bᵀ and the backward's B
     * (the same bits as packing it per chunk) */
    const uint32_t *wf = NULL, *wb = NULL;
#if GR_CPU_X86
    if (b->train_bf16 && gr_cpu_bf16() && n > ch) {
        size_t nf = gr_bf16_bpack_size(vocab, dim, gemm_kc(dim));
        size_t nb = dh ? gr_bf16_bpack_size(dim, vocab, gemm_kc(vocab)) : 0;
        uint32_t *p = gr_cpu_buffer(b, GR_CPU_BUF_XENT_W, sizeof(uint32_t) * (nf + nb));
        gr_bf16_bpack_avx512(b, vocab, dim, w, dim, 1, gemm_kc(dim), p);
        if (dh) gr_bf16_bpack_avx512(b, dim, vocab, w, dim, 0, gemm_kc(vocab), p + nf);
        wf = p, wb = dh ? p + nf : NULL;
    }
#endif
    for (int r0 = 0; r0 < n; r0 += ch) {
        int rn = n - r0 < ch ? n - r0 : ch;
        const float *hr = h + (size_t)r0 * dim;
#if GR_CPU_X86
        if (wf)
            gr_bf16_gemm_avx512(b, rn, vocab, dim, hr, dim, 0, w, dim, 1, lg, vocab, 0, gemm_kc(dim), wf);
        else
#endif
            gr_cpu_gemm_nt(b, rn, vocab, dim, hr, dim, w, dim, lg, vocab, 0);
        xent_job j = {lg, target + r0, rn, vocab, scale, nll, dh != NULL};
        gr_cpu_parallel(b, xent_row_task, &j, rn);
        for (int r = 0; r < rn; r++) total += nll[r];
        if (!dh) continue;
#if GR_CPU_X86
        if (wb)
            gr_bf16_gemm_avx512(b, rn, dim, vocab, lg, vocab, 0, w, dim, 0, dh + (size_t)r0 * dim, dim, 0,
                                gemm_kc(vocab), wb);
        else
#endif
            gr_cpu_gemm(b, rn, dim, vocab, lg, vocab, w, dim, dh + (size_t)r0 * dim, dim, 0);
        gemm_tn(b, vocab, dim, rn, lg, vocab, hr, dim, dw, dim, 1);
    }
    free(nll);
    return total;
}

/* ---- memory and glue ------------------------------------------------------- */
/* Blocks of 8 MB or more (weights, gradients, moments, activations: GBs for a
 * 135M model) are anonymous mappings with transparent huge pages asked for,
 * 2 MB aligned: a page fault then maps and zeroes 2 MB instead of 4 KB, and
 * the GEMMs' walks over them miss the TLB less. First touch of 1 GiB on a
 * 2-vCPU VM: 0.74 s in 4 KB pages, 0.17 s in huge pages (kernels where THP is
 * "never" fall back to 4 KB pages silently). Smaller blocks: calloc. Each
 * block has a header just before it saying which, for cpu_release. */
typedef struct blk_hdr {
    void *base;
    size_t map_bytes; /* 0: calloc'd */
    char pad[48];
} blk_hdr;
enum { BLK_HUGE_MIN = 8 << 20, BLK_ALIGN = 2 << 20 };

static void *cpu_alloc(gr_backend *b, size_t bytes) {
    (void)b;
    if (!bytes) bytes = 1;
#if defined(MAP_ANONYMOUS)
    if (bytes >= BLK_HUGE_MIN) {
        size_t total = bytes + 2 * (size_t)BLK_ALIGN;
        char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) return NULL;
        char *p = (char *)(((uintptr_t)base + sizeof(blk_hdr) + BLK_ALIGN - 1) & ~(uintptr_t)(BLK_ALIGN - 1));
#ifdef MADV_HUGEPAGE
        madvise(p, (bytes + BLK_ALIGN - 1) & ~(size_t)(BLK_ALIGN - 1), MADV_HUGEPAGE);
#endif
        blk_hdr *h = (blk_hdr *)p - 1;
        h->base = base;
        h->map_bytes = total;
        return p;
    }
#endif
    blk_hdr *h = calloc(1, sizeof(blk_hdr) + bytes);
    if (!h) return NULL;
    h->base = h;
    h->map_bytes = 0;
    return h + 1;
}

static void cpu_release(gr_backend *b, void *p) {
    (void)b;
    if (!p) return;
    blk_hdr *h = (blk_hdr *)p - 1;
#if defined(MAP_ANONYMOUS)
    if (h->map_bytes) {
        munmap(h->base, h->map_bytes);
        return;
    }
#endif
    free(h->base);
}

static void cpu_sync(gr_backend *b) { (void)b; }

static void cpu_zero(gr_backend *b, float *x, int64_t n) {
    (void)b;
    memset(x, 0, sizeof(float) * (size_t)n);
}

static void cpu_add(gr_backend *b, float *y, const float *x, int64_t n) {
    (void)b;
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

static void cpu_rows(gr_backend *b, float *dst, const float *src, const int *idx, int n, int dim,
                     int scatter) {
    (void)b;
    for (int i = 0; i < n; i++) {
        size_t d = scatter ? (size_t)idx[i] : (size_t)i, s = scatter ? (size_t)i : (size_t)idx[i];
        memcpy(dst + d * dim, src + s * dim, sizeof(float) * (size_t)dim);
    }
}

static const gr_train_ops cpu_ops = {
    .name = "cpu",
    .matmul_fwd = cpu_matmul_fwd,
    .matmul_bwd = cpu_matmul_bwd,
    .rmsnorm_fwd = cpu_rmsnorm_fwd,
    .rmsnorm_bwd = cpu_rmsnorm_bwd,
    .rope = cpu_rope,
    .attention_fwd = cpu_attention_fwd,
    .attention_bwd = cpu_attention_bwd,
    .swiglu_fwd = cpu_swiglu_fwd,
    .swiglu_bwd = cpu_swiglu_bwd,
    .embedding_fwd = cpu_embedding_fwd,
    .embedding_bwd = cpu_embedding_bwd,
    .xent = cpu_xent,
    .sumsq = cpu_sumsq,
    .scale = cpu_scale,
    .adamw = cpu_adamw,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .sync = cpu_sync,
    .zero = cpu_zero,
    .add = cpu_add,
    .rows = cpu_rows,
};

const gr_train_ops *gr_train_ops_cpu(void) { return &cpu_ops; }
