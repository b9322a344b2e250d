/* Where a training step's time goes (scripts/bench-train-stages): the CPU
 * training ops wrapped by a timing table, one optimizer step per batch
 * (zero_grad, forward + backward of one micro-batch, clipping, AdamW), on
 * batches shaped as scripts/bench-train's workloads:
 *   equal  B sequences of L tokens, every position a target;
 *   sft    B lengths uniform in [L/4, L], the first 60% of each prompt.
 *   both   the two alternating, step by step, in one process, each with its
 *          own table: the fair comparison on a shared machine, where the load
 *          drifts between runs.
 * Prints per stage the seconds per step and per 1000 tokens, and the GFLOP/s
 * of the GEMMs (matmul_fwd/bwd: 2·n·in·out per product).
 * Usage: bench-train-stages MODEL_DIR equal|sft|both L B STEPS THREADS fp32|bf16 [SEED] */
#include "backend_train.h"
#include "model.h"
#include "train_model.h"
#include "train_optim.h"
#include "train_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

enum { S_MM_FWD, S_MM_BWD, S_LMHEAD_XENT, S_ATT_FWD, S_ATT_BWD, S_NORM, S_ROPE, S_SWIGLU, S_EMB,
       S_GLUE, S_OPT, S_ZERO_GRAD, S_CLIP, S_N };
static const char *NAMES[S_N] = {"matmul fwd", "matmul bwd", "LM head + xent", "attention fwd",
                                 "attention bwd", "rmsnorm", "rope", "swiglu", "embedding",
                                 "zero/add/rows", "adamw", "zero_grad", "clip (sumsq+scale)"};
static double ACC[2][S_N], FLOPS[2][S_N], *acc = ACC[0], *flops = FLOPS[0];
static int stage_override = -1; /* the outer stage (zero_grad, clip, adamw) */
static const gr_train_ops *base;
static gr_train_ops wrapped;

static long minflt(void) { /* page faults so far (fresh memory touched) */
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
#define T0 double t0_ = now()
#define T1(s) acc[stage_override >= 0 ? stage_override : (s)] += now() - t0_

static void w_mm_fwd(gr_backend *b, float *y, const float *x, const float *w, int n, int in, int out) {
    T0; base->matmul_fwd(b, y, x, w, n, in, out); T1(S_MM_FWD);
    flops[S_MM_FWD] += 2.0 * n * in * out;
}
static void w_mm_bwd(gr_backend *b, float *dx, float *dw, const float *dy, const float *x, const float *w,
                     int n, int in, int out) {
    T0; base->matmul_bwd(b, dx, dw, dy, x, w, n, in, out); T1(S_MM_BWD);
    flops[S_MM_BWD] += (dx ? 4.0 : 2.0) * n * in * out;
}
static void w_rn_fwd(gr_backend *b, float *o, float *r, const float *x, const float *w, int n, int d, float e) {
    T0; base->rmsnorm_fwd(b, o, r, x, w, n, d, e); T1(S_NORM);
}
static void w_rn_bwd(gr_backend *b, float *dx, float *dw, const float *dout, const float *x, const float *w,
                     const float *r, int n, int d) {
    T0; base->rmsnorm_bwd(b, dx, dw, dout, x, w, r, n, d); T1(S_NORM);
}
static void w_rope(gr_backend *b, float *x, const int *pos, int n, int h, int hd, const float *inv, int i) {
    T0; base->rope(b, x, pos, n, h, hd, inv, i); T1(S_ROPE);
}
static void w_att_fwd(gr_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                      const int *start, int ns, int H, int Hkv, int hd) {
    T0; base->attention_fwd(b, out, lse, q, k, v, start, ns, H, Hkv, hd); T1(S_ATT_FWD);
}
static void w_att_bwd(gr_backend *b, float *dq, float *dk, float *dv, const float *dout, const float *out,
                      const float *lse, const float *q, const float *k, const float *v, const int *start,
                      int ns, int H, int Hkv, int hd) {
    T0; base->attention_bwd(b, dq, dk, dv, dout, out, lse, q, k, v, start, ns, H, Hkv, hd); T1(S_ATT_BWD);
}
static void w_sw_fwd(gr_backend *b, float *o, const float *g, const float *u, int64_t n) {
    T0; base->swiglu_fwd(b, o, g, u, n); T1(S_SWIGLU);
}
static void w_sw_bwd(gr_backend *b, float *dg, float *du, const float *d, const float *g, const float *u,
                     int64_t n) {
    T0; base->swiglu_bwd(b, dg, du, d, g, u, n); T1(S_SWIGLU);
}
static void w_emb_fwd(gr_backend *b, float *o, const float *e, const int *t, int n, int d) {
    T0; base->embedding_fwd(b, o, e, t, n, d); T1(S_EMB);
}
static void w_emb_bwd(gr_backend *b, float *de, const float *d, const int *t, int n, int dim) {
    T0; base->embedding_bwd(b, de, d, t, n, dim); T1(S_EMB);
}
static double w_xent(gr_backend *b, float *dh, float *dw, const float *h, const float *w, const int *t, int n,
                     int d, int V, float s) {
    T0; double r = base->xent(b, dh, dw, h, w, t, n, d, V, s); T1(S_LMHEAD_XENT);
    flops[S_LMHEAD_XENT] += (dh ? 6.0 : 2.0) * n * d * V;
    return r;
}
static double w_sumsq(gr_backend *b, const float *x, int64_t n) {
    T0; double r = base->sumsq(b, x, n); T1(S_CLIP);
    return r;
}
static void w_scale(gr_backend *b, float *x, float s, int64_t n) { T0; base->scale(b, x, s, n); T1(S_CLIP); }
static void w_adamw(gr_backend *b, float *p, const float *g, float *m, float *v, int64_t n, float lr, float b1,
                    float b2, float eps, float wd, int t) {
    T0; base->adamw(b, p, g, m, v, n, lr, b1, b2, eps, wd, t); T1(S_OPT);
}
static void w_zero(gr_backend *b, float *x, int64_t n) { T0; base->zero(b, x, n); T1(S_GLUE); }
static void w_add(gr_backend *b, float *y, const float *x, int64_t n) { T0; base->add(b, y, x, n); T1(S_GLUE); }
static void w_rows(gr_backend *b, float *d, const float *s, const int *i, int n, int dim, int sc) {
    T0; base->rows(b, d, s, i, n, dim, sc); T1(S_GLUE);
}

static uint64_t rng = 88172645463325252ULL;
static int rnd(int lo, int hi) { /* uniform in [lo, hi] */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return lo + (int)(rng % (uint64_t)(hi - lo + 1));
}

static void report(const char *work, int bf16, int L, int B, int steps, int threads, int w, double tok_all,
                   double tgt_all, double total, const double *step_t, const long *flt) {
    double sum = 0;
    for (int s = 0; s < S_N; s++) sum += ACC[w][s];
    printf("# %s, %s, L %d, B %d, %d steps, %d threads: %.0f tokens/step, %.0f targets/step, %.1f tok/s; "
           "step times", work, bf16 ? "bf16" : "fp32", L, B, steps, threads, tok_all / steps, tgt_all / steps,
           tok_all / total);
    for (int k = 0; k < steps && k < 64; k++) printf(" %.3f", step_t[k]);
    printf("; page faults/step");
    for (int k = 0; k < steps && k < 64; k++) printf(" %ld", flt[k]);
    printf("\n%-20s %9s %11s %7s %8s\n", "stage", "s/step", "ms/1k tok", "share", "GFLOP/s");
    for (int s = 0; s < S_N; s++) {
        char gf[32] = "";
        if (FLOPS[w][s] > 0 && ACC[w][s] > 0) snprintf(gf, sizeof gf, "%.1f", FLOPS[w][s] / ACC[w][s] / 1e9);
        printf("%-20s %9.4f %11.2f %6.1f%% %8s\n", NAMES[s], ACC[w][s] / steps, 1e6 * ACC[w][s] / tok_all,
               100 * ACC[w][s] / total, gf);
    }
    printf("%-20s %9.4f %11.2f %6.1f%%\n", "untimed (host)", (total - sum) / steps, 1e6 * (total - sum) / tok_all,
           100 * (total - sum) / total);
    printf("%-20s %9.4f %11.2f\n\n", "total", total / steps, 1e6 * total / tok_all);
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: %s MODEL_DIR equal|sft|both L B STEPS THREADS fp32|bf16 [SEED]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *work = argv[2];
    int L = atoi(argv[3]), B = atoi(argv[4]), steps = atoi(argv[5]), threads = atoi(argv[6]);
    int bf16 = !strcmp(argv[7], "bf16"), both = !strcmp(work, "both");
    if (!both && strcmp(work, "equal") && strcmp(work, "sft")) { fprintf(stderr, "work: equal, sft or both\n"); return 2; }
    if (steps < 1 || steps > 64 || B < 1 || L < 4) { fprintf(stderr, "steps 1..64, B >= 1, L >= 4\n"); return 2; }
    if (argc > 8) rng = strtoull(argv[8], NULL, 10) | 1;
    gr_err err;
    gr_model *gm = gr_model_load(dir, &err);
    if (!gm) { fprintf(stderr, "%s\n", err.msg); return 1; }
    gr_backend *be = gr_backend_cpu(threads);
    if (gr_train_set_precision(be, bf16, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    gr_train_model *m = gr_train_model_new(gm, be, &err);
    if (!m) { fprintf(stderr, "%s\n", err.msg); return 1; }
    base = m->ops;
    wrapped = *base;
    wrapped.matmul_fwd = w_mm_fwd; wrapped.matmul_bwd = w_mm_bwd; wrapped.rmsnorm_fwd = w_rn_fwd;
    wrapped.rmsnorm_bwd = w_rn_bwd; wrapped.rope = w_rope; wrapped.attention_fwd = w_att_fwd;
    wrapped.attention_bwd = w_att_bwd; wrapped.swiglu_fwd = w_sw_fwd; wrapped.swiglu_bwd = w_sw_bwd;
    wrapped.embedding_fwd = w_emb_fwd; wrapped.embedding_bwd = w_emb_bwd; wrapped.xent = w_xent;
    wrapped.sumsq = w_sumsq; wrapped.scale = w_scale; wrapped.adamw = w_adamw; wrapped.zero = w_zero;
    wrapped.add = w_add; wrapped.rows = w_rows;
    m->ops = &wrapped;
    gr_adamw opt;
    gr_adamw_init_model(&opt, m); /* its ops: the wrapped table */
    gr_tact *a = gr_tact_new(0);
    int V = m->cfg.vocab_size;
    int **ids = calloc((size_t)B, sizeof(int *)), *len = calloc((size_t)B, sizeof(int)),
        *np = calloc((size_t)B, sizeof(int));
    double tok_all[2] = {0, 0}, tgt_all[2] = {0, 0}, total[2] = {0, 0}, step_t[2][64];
    long flt[2][64];
    int nw = both ? 2 : 1, w0 = !strcmp(work, "sft");
    for (int k = 0; k < (steps + 1) * nw; k++) { /* the first step of each kind: warm-up, not counted */
        int w = both ? k % 2 : w0, sft = w == 1, idx = both ? k / 2 : k;
        acc = ACC[w];
        flops = FLOPS[w];
        for (int i = 0; i < B; i++) {
            len[i] = sft ? rnd(L / 4, L) : L;
            np[i] = sft ? (int)(0.6 * len[i]) : 1;
            free(ids[i]);
            ids[i] = malloc(sizeof(int) * (size_t)len[i]);
            for (int t = 0; t < len[i]; t++) ids[i][t] = rnd(3, V - 1);
        }
        gr_tbatch b = {B, (const int *const *)ids, len, np};
        int64_t N = gr_tbatch_targets(&b), nt;
        double keep[S_N], keepf[S_N];
        memcpy(keep, acc, sizeof keep);
        memcpy(keepf, flops, sizeof keepf);
        long f0 = minflt();
        double t0 = now(), nll;
        stage_override = S_ZERO_GRAD;
        gr_train_zero_grad(m);
        stage_override = -1;
        if (gr_train_step_micro(m, a, &b, 1, 1.0f / (float)N, &nll, &nt, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        stage_override = S_CLIP;
        gr_clip_grad_norm(m, 1.0f);
        stage_override = S_OPT;
        gr_adamw_step(&opt, m, 5e-5f);
        stage_override = -1;
        double dt = now() - t0;
        if (idx == 0) {
            memcpy(acc, keep, sizeof keep);
            memcpy(flops, keepf, sizeof keepf);
            continue;
        }
        step_t[w][idx - 1] = dt;
        flt[w][idx - 1] = minflt() - f0;
        total[w] += dt;
        for (int i = 0; i < B; i++) tok_all[w] += len[i];
        tgt_all[w] += (double)N;
    }
    for (int w = 0; w < 2; w++)
        if (both || w == w0)
            report(w ? "sft" : "equal", bf16, L, B, steps, threads, w, tok_all[w], tgt_all[w], total[w], step_t[w], flt[w]);
    for (int i = 0; i < B; i++) free(ids[i]);
    free(ids); free(len); free(np);
    gr_tact_free(a);
    gr_adamw_free(&opt);
    gr_train_model_free(m);
    gr_backend_free(be);
    gr_model_free(gm);
    return 0;
}
