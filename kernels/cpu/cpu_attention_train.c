/* Causal GQA attention for training on the CPU, for head dims that are a
 * multiple of 16 (every LLaMA 3 and SmolLM size): flash-attention style, with
 * every product through the strided 6x16 micro-kernel, straight from rows of
 * Q, K, V and the score block — no general GEMM and no per-block packing.
 *
 * Forward, per (sequence, head, block of QB queries):
 *   S = (scale Q) Kᵀ over the keys the block sees, softmax along each row with
 *   the causal mask, O = P V (then divided by the row sums), lse kept.
 * Backward, per (sequence, head), over the same query blocks:
 *   P = exp(S − lse), dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)),
 *   dQ = scale dS K, and into this head's own dK += dSᵀ (scale Q), dV += Pᵀ dO;
 *   the heads of a group are summed into dK and dV afterwards in head order.
 * Kᵀ (and Vᵀ for dP) are packed once per (sequence, kv head) into 16-key strips
 * ([d][16]), the B operand of S and dP.
 *
 * Determinism: every element is summed in one fixed order that depends only on
 * the shapes (the micro-kernel's p order; row sums over 8 lanes, then a fixed
 * tree), never on the thread count or the task order. The portable build runs
 * the same arithmetic in C (fmaf, gr_expf_fast) and gives the same bits. */
#include "cpu_attention_train.h"
#include "cpu_expf.h"
#include "cpu_microkernel.h"
#include "cpu_rowsum.h"
#include "gr_common.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { QB = 48 }; /* queries per block: a multiple of the tile's 6 rows */

static int up(int x, int m) { return (x + m - 1) / m * m; }

/* ---- per-thread scratch (freed with the thread) ---------------------------- */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
typedef struct { size_t cap; float *p; } scratch;
static void scratch_free(void *s) {
    if (s) free(((scratch *)s)->p);
    free(s);
}
static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }
static float *thread_scratch(size_t n) {
    pthread_once(&scratch_once, scratch_init);
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = gr_xcalloc(1, sizeof *s);
        pthread_setspecific(scratch_key, s);
    }
    if (s->cap < n) {
        free(s->p);
        s->p = gr_xmalloc_aligned(64, sizeof(float) * n);
        s->cap = n;
    }
    return s->p;
}

/* ---- row helpers: 8 lanes, fixed order, same bits with and without AVX ---- */
static float row_max(const float *x, int n8) { /* n8: a multiple of 8 */
#if GR_EXPF_AVX
    __m256 m = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < n8; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    float t[8];
    _mm256_storeu_ps(t, m);
#else
    float t[8];
    for (int l = 0; l < 8; l++) t[l] = -INFINITY;
    for (int i = 0; i < n8; i += 8)
        for (int l = 0; l < 8; l++) t[l] = x[i + l] > t[l] ? x[i + l] : t[l];
#endif
    float r = t[0];
    for (int l = 1; l < 8; l++) r = t[l] > r ? t[l] : r;
    return r;
}

/* x[i] = exp(x[i] − c) for i < n8 (gr_expf_fast: exactly 0 for −∞); returns Σ x
 * (8 lanes, then gr_hsum8) */
static float exp_sub_sum(float *x, int n8, float c) {
    float t[8];
#if GR_EXPF_AVX
    __m256 s = _mm256_setzero_ps(), vc = _mm256_set1_ps(c);
    for (int i = 0; i < n8; i += 8) {
        __m256 e = gr_expf8_fast(_mm256_sub_ps(_mm256_loadu_ps(x + i), vc));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    _mm256_storeu_ps(t, s);
#else
    for (int l = 0; l < 8; l++) t[l] = 0;
    for (int i = 0; i < n8; i += 8)
        for (int l = 0; l < 8; l++) {
            x[i + l] = gr_expf_fast(x[i + l] - c);
            t[l] += x[i + l];
        }
#endif
    return gr_hsum8(t);
}

/* dS = P ⊙ (dP − D), in place in dp, for i < n8 */
static void ds_rows(float *dp, const float *p, int n8, float D) {
    int i = 0;
#if GR_EXPF_AVX
    __m256 vd = _mm256_set1_ps(D);
    for (; i < n8; i += 8)
        _mm256_storeu_ps(dp + i, _mm256_mul_ps(_mm256_loadu_ps(p + i),
                                               _mm256_sub_ps(_mm256_loadu_ps(dp + i), vd)));
#endif
    for (; i < n8; i++) dp[i] = p[i] * (dp[i] - D);
}

/* ---- shared geometry ------------------------------------------------------- */
typedef struct fa_job {
    float *out, *lse, *dq, *dkh, *dvh, *dk, *dv;
    const float *q, *k, *v, *dout, *o, *clse;
    float *kt, *vt;          /* packed 16-key strips per (sequence, kv head) */
    const size_t *toff;      /* strip offset of sequence s (floats) */
    const int *start;
    const int *tasks;        /* forward: (seq, head, block); backward: (seq, head) */
    int n_seq, H, Hkv, hd;
} fa_job;

static const float *strips(const fa_job *j, const float *base, int s, int kh) {
    int len = j->start[s + 1] - j->start[s];
    return base + j->toff[s] + (size_t)kh * (size_t)up(len, 16) * (size_t)j->hd;
}

/* dst[js][d][16] = src[key 16 js + l][d] (zero past the sequence) */
static void pack_task(void *ctx, int t) {
    const fa_job *j = ctx;
    int s = t / j->Hkv, kh = t % j->Hkv, hd = j->hd, KD = j->Hkv * hd;
    int r0 = j->start[s], len = j->start[s + 1] - r0, L16 = up(len, 16);
    for (int w = 0; w < 2; w++) {
        float *dst = w ? j->vt : j->kt;
        const float *src = w ? j->v : j->k;
        if (!dst) continue;
        dst = (float *)strips(j, dst, s, kh);
        for (int p = 0; p < L16; p++) {
            float *col = dst + (size_t)(p / 16) * (size_t)hd * 16 + p % 16;
            const float *row = src + (size_t)(r0 + p) * KD + (size_t)kh * hd;
            for (int d = 0; d < hd; d++) col[d * 16] = p < len ? row[d] : 0.0f;
        }
    }
}

static void pack_kv(gr_backend *b, fa_job *j, size_t *toff, int want_v) {
    size_t n = 0;
    for (int s = 0; s < j->n_seq; s++) {
        toff[s] = n;
        n += (size_t)up(j->start[s + 1] - j->start[s], 16) * (size_t)j->Hkv * (size_t)j->hd;
    }
    j->toff = toff;
    j->kt = gr_cpu_buffer(b, GR_CPU_BUF_ATT_PACK, sizeof(float) * 2 * (n ? n : 1));
    j->vt = want_v ? j->kt + n : NULL;
    gr_cpu_parallel(b, pack_task, j, j->n_seq * j->Hkv);
}

/* rows [0, mt) of dst (ld hd) = scale · src rows [0, m) of one head; zero after m */
static void load_rows(float *dst, const float *src, size_t ld, int m, int mt, int hd, float scale) {
    for (int r = 0; r < mt; r++)
        for (int d = 0; d < hd; d++) dst[(size_t)r * hd + d] = r < m ? src[r * ld + d] * scale : 0.0f;
}

/* C[mt][ldc] (columns < w) = A[mt][hd] · strips (k = hd) */
static void times_strips(float *C, int ldc, const float *A, int mt, int w, const float *st, int hd) {
    for (int js = 0; js < w; js += 16)
        for (int rt = 0; rt < mt; rt += 6)
            gr_micro_6x16_strided(hd, A + (size_t)rt * hd, hd, 1, st + (size_t)js * hd, 16,
                                  C + (size_t)rt * ldc + js, ldc, 0);
}

/* C[mt][hd] (+)= A[mt][kc] (ld lda) · B[kc][hd] (rows of stride ldb) */
static void times_rows(float *C, const float *A, int lda, int mt, int kc, const float *B,
                       long ldb, int hd, int acc) {
    for (int dt = 0; dt < hd; dt += 16)
        for (int rt = 0; rt < mt; rt += 6)
            gr_micro_6x16_strided(kc, A + (size_t)rt * lda, lda, 1, B + dt, ldb,
                                  C + (size_t)rt * hd + dt, hd, acc);
}

/* C[nt][hd] += Aᵀ · B: A[m][lda] read by column (keys), B[m][hd] rows */
static void times_cols(float *C, int nt, const float *A, int lda, int m, const float *B, int hd) {
    for (int kt = 0; kt < nt; kt += 6)
        for (int dt = 0; dt < hd; dt += 16)
            gr_micro_6x16_strided(m, A + kt, 1, lda, B + dt, hd, C + (size_t)kt * hd + dt, hd, 1);
}

/* ---- forward --------------------------------------------------------------- */
static void fwd_task(void *ctx, int task) {
    const fa_job *j = ctx;
    int s = j->tasks[3 * task], h = j->tasks[3 * task + 1], i0 = j->tasks[3 * task + 2] * QB;
    int hd = j->hd, kh = h / (j->H / j->Hkv), QD = j->H * hd, KD = j->Hkv * hd;
    int r0 = j->start[s], len = j->start[s + 1] - r0;
    int m = len - i0 < QB ? len - i0 : QB, i1 = i0 + m, mt = up(m, 6), W = up(i1, 16);
    float *Qb = thread_scratch((size_t)QB * (2 * hd + W + 1));
    float *Ob = Qb + (size_t)QB * hd, *S = Ob + (size_t)QB * hd, *inv = S + (size_t)QB * W;
    size_t qo = (size_t)(r0 + i0) * QD + (size_t)h * hd;

    load_rows(Qb, j->q + qo, QD, m, mt, hd, 1.0f / sqrtf((float)hd));
    times_strips(S, W, Qb, mt, W, strips(j, j->kt, s, kh), hd);
    for (int r = 0; r < mt; r++) {
        float *row = S + (size_t)r * W;
        if (r >= m) { /* padding rows: defined, and never copied out */
            memset(row, 0, sizeof(float) * (size_t)W);
            continue;
        }
        int n = i0 + r + 1, n8 = up(n, 8); /* keys 0..i0+r */
        for (int p = n; p < n8; p++) row[p] = -INFINITY;
        float mx = row_max(row, n8);
        float sum = exp_sub_sum(row, n8, mx);
        memset(row + n8, 0, sizeof(float) * (size_t)(W - n8));
        j->lse[(size_t)(r0 + i0 + r) * j->H + h] = mx + logf(sum);
        inv[r] = 1.0f / sum;
    }
    times_rows(Ob, S, W, mt, i1, j->v + (size_t)r0 * KD + (size_t)kh * hd, KD, hd, 0);
    for (int r = 0; r < m; r++)
        for (int d = 0; d < hd; d++) j->out[qo + (size_t)r * QD + d] = Ob[(size_t)r * hd + d] * inv[r];
}

int gr_cpu_attention_fwd_fast(gr_backend *b, float *out, float *lse, const float *q,
                              const float *k, const float *v, const int *start, int n_seq, int H,
                              int Hkv, int hd) {
    if (hd % 16 != 0 || H % Hkv != 0) return 0;
    int nt = 0;
    for (int s = 0; s < n_seq; s++) nt += H * ((start[s + 1] - start[s] + QB - 1) / QB);
    int *tasks = gr_xmalloc(sizeof(int) * 3 * (size_t)(nt ? nt : 1)), t = 0;
    /* the widest blocks (most keys) first, so the last tasks are the short ones */
    int maxb = 0;
    for (int s = 0; s < n_seq; s++) {
        int nb = (start[s + 1] - start[s] + QB - 1) / QB;
        if (nb > maxb) maxb = nb;
    }
    for (int qb = maxb - 1; qb >= 0; qb--)
        for (int s = 0; s < n_seq; s++)
            if (qb * QB < start[s + 1] - start[s])
                for (int h = 0; h < H; h++) {
                    tasks[3 * t] = s;
                    tasks[3 * t + 1] = h;
                    tasks[3 * t + 2] = qb;
                    t++;
                }
    size_t *toff = gr_xmalloc(sizeof(size_t) * (size_t)(n_seq ? n_seq : 1));
    fa_job j = {.out = out, .lse = lse, .q = q, .k = k, .v = v, .start = start, .tasks = tasks,
                .n_seq = n_seq, .H = H, .Hkv = Hkv, .hd = hd};
    pack_kv(b, &j, toff, 0);
    gr_cpu_parallel(b, fwd_task, &j, nt);
    free(toff);
    free(tasks);
    return 1;
}

/* ---- backward -------------------------------------------------------------- */
static void bwd_task(void *ctx, int task) {
    const fa_job *j = ctx;
    int s = j->tasks[2 * task], h = j->tasks[2 * task + 1];
    int hd = j->hd, kh = h / (j->H / j->Hkv), QD = j->H * hd, KD = j->Hkv * hd;
    int r0 = j->start[s], len = j->start[s + 1] - r0, L6 = up(len, 6);
    int ldmax = up(up(len, 6), 16);
    float scale = 1.0f / sqrtf((float)hd);
    float *Qb = thread_scratch((size_t)QB * (3 * hd + 2 * ldmax) + (size_t)2 * L6 * hd);
    float *dOb = Qb + (size_t)QB * hd, *dQb = dOb + (size_t)QB * hd;
    float *P = dQb + (size_t)QB * hd, *dP = P + (size_t)QB * ldmax;
    float *dKl = dP + (size_t)QB * ldmax, *dVl = dKl + (size_t)L6 * hd;
    const float *Kt = strips(j, j->kt, s, kh), *Vt = strips(j, j->vt, s, kh);
    const float *Kh = j->k + (size_t)r0 * KD + (size_t)kh * hd;
    memset(dKl, 0, sizeof(float) * (size_t)2 * L6 * hd);
    for (int i0 = 0; i0 < len; i0 += QB) {
        int m = len - i0 < QB ? len - i0 : QB, i1 = i0 + m, mt = up(m, 6);
        int W = up(i1, 16), Z = up(i1, 6), ld = up(Z, 16);
        size_t qo = (size_t)(r0 + i0) * QD + (size_t)h * hd;
        load_rows(Qb, j->q + qo, QD, m, mt, hd, scale);
        load_rows(dOb, j->dout + qo, QD, m, mt, hd, 1.0f);
        times_strips(P, ld, Qb, mt, W, Kt, hd);
        times_strips(dP, ld, dOb, mt, W, Vt, hd);
        for (int r = 0; r < mt; r++) {
            float *pr = P + (size_t)r * ld, *dr = dP + (size_t)r * ld;
            if (r >= m) {
                memset(pr, 0, sizeof(float) * (size_t)ld);
                memset(dr, 0, sizeof(float) * (size_t)ld);
                continue;
            }
            int n = i0 + r + 1, n8 = up(n, 8);
            for (int p = n; p < n8; p++) pr[p] = -INFINITY;
            exp_sub_sum(pr, n8, j->clse[(size_t)(r0 + i0 + r) * j->H + h]);
            float D = gr_dot8(dOb + (size_t)r * hd, j->o + qo + (size_t)r * QD, hd);
            ds_rows(dr, pr, n8, D);
            memset(pr + n8, 0, sizeof(float) * (size_t)(ld - n8));
            memset(dr + n8, 0, sizeof(float) * (size_t)(ld - n8));
        }
        /* dQ = scale · dS K; dK += dSᵀ (scale Q); dV += Pᵀ dO */
        times_rows(dQb, dP, ld, mt, i1, Kh, KD, hd, 0);
        for (int r = 0; r < m; r++)
            for (int d = 0; d < hd; d++) j->dq[qo + (size_t)r * QD + d] = dQb[(size_t)r * hd + d] * scale;
        times_cols(dKl, Z, dP, ld, m, Qb, hd);
        times_cols(dVl, Z, P, ld, m, dOb, hd);
    }
    for (int p = 0; p < len; p++) {
        size_t o = ((size_t)(r0 + p) * j->H + (size_t)h) * hd;
        memcpy(j->dkh + o, dKl + (size_t)p * hd, sizeof(float) * (size_t)hd);
        memcpy(j->dvh + o, dVl + (size_t)p * hd, sizeof(float) * (size_t)hd);
    }
}

/* dk, dv rows [t*64, ...) = Σ over each group's heads, in head order */
enum { RED_ROWS = 64 };
static void reduce_task(void *ctx, int t) {
    const fa_job *j = ctx;
    int n = j->start[j->n_seq], grp = j->H / j->Hkv, hd = j->hd;
    for (int r = t * RED_ROWS; r < n && r < (t + 1) * RED_ROWS; r++)
        for (int kh = 0; kh < j->Hkv; kh++) {
            float *dk = j->dk + ((size_t)r * j->Hkv + (size_t)kh) * hd;
            float *dv = j->dv + ((size_t)r * j->Hkv + (size_t)kh) * hd;
            const float *sk = j->dkh + ((size_t)r * j->H + (size_t)kh * grp) * hd;
            const float *sv = j->dvh + ((size_t)r * j->H + (size_t)kh * grp) * hd;
            for (int d = 0; d < hd; d++) {
                float a = sk[d], c = sv[d];
                for (int g = 1; g < grp; g++) {
                    a += sk[(size_t)g * hd + d];
                    c += sv[(size_t)g * hd + d];
                }
                dk[d] = a;
                dv[d] = c;
            }
        }
}

int gr_cpu_attention_bwd_fast(gr_backend *b, float *dq, float *dk, float *dv, const float *dout,
                              const float *out, const float *lse, const float *q, const float *k,
                              const float *v, const int *start, int n_seq, int H, int Hkv,
                              int hd) {
    if (hd % 16 != 0 || H % Hkv != 0) return 0;
    int nt = n_seq * H, n = start[n_seq];
    int *tasks = gr_xmalloc(sizeof(int) * 2 * (size_t)(nt ? nt : 1)), t = 0;
    /* longest sequences first: a task costs about len² */
    int *order = gr_xmalloc(sizeof(int) * (size_t)(n_seq ? n_seq : 1));
    for (int s = 0; s < n_seq; s++) {
        int x = s, len = start[s + 1] - start[s], i = s;
        while (i > 0 && start[order[i - 1] + 1] - start[order[i - 1]] < len) {
            order[i] = order[i - 1];
            i--;
        }
        order[i] = x;
    }
    for (int i = 0; i < n_seq; i++)
        for (int h = 0; h < H; h++) {
            tasks[2 * t] = order[i];
            tasks[2 * t + 1] = h;
            t++;
        }
    size_t *toff = gr_xmalloc(sizeof(size_t) * (size_t)(n_seq ? n_seq : 1));
    size_t per_head = (size_t)n * (size_t)H * (size_t)hd;
    fa_job j = {.dq = dq, .dk = dk, .dv = dv, .dout = dout, .o = out, .clse = lse, .q = q, .k = k,
                .v = v, .start = start, .tasks = tasks, .n_seq = n_seq, .H = H, .Hkv = Hkv,
                .hd = hd};
    j.dkh = gr_cpu_buffer(b, GR_CPU_BUF_ATT_GRAD, sizeof(float) * 2 * (per_head ? per_head : 1));
    j.dvh = j.dkh + per_head;
    pack_kv(b, &j, toff, 1);
    gr_cpu_parallel(b, bwd_task, &j, nt);
    gr_cpu_parallel(b, reduce_task, &j, (n + RED_ROWS - 1) / RED_ROWS);
    free(toff);
    free(order);
    free(tasks);
    return 1;
}
