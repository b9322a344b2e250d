/* Every CUDA training op (kernels/cuda/train_*.cu) against the CPU table
 * (kernels/cpu/backend_cpu_train.c) on the same inputs, forward and backward:
 *     NMSE = Σ (gpu − cpu)² / Σ cpu²  per output, under a threshold per op:
 *   - exact (0): copies and gathers, embedding forward and backward (the same
 *     order of additions), the residual add, scale, and AdamW (every operation
 *     correctly rounded, none fused: the same bits);
 *   - fp32 with another summation order: RMSNorm 1e-10, RoPE 1e-9, SwiGLU 1e-10,
 *     attention forward and backward 1e-9 (causal, GQA, three packed sequences
 *     of 37, 1 and 90 tokens), Σx² relative 1e-12;
 *   - matmuls on the bf16 tensor cores (inputs rounded to bf16, 2^-9 relative):
 *     5e-5, the same bound as the inference matmuls (tests/gpu/test_ops.c);
 *     with GR_CUDA_TRAIN_F32=1 (fp32 SGEMM) the same cases pass at 1e-10;
 *   - the LM head with the cross-entropy, chunked: Σ NLL relative 1e-4,
 *     dh and dW 5e-5.
 * Prints "ok NAME ..." / "not ok NAME ..." per case and "N passed, N failed";
 * exits 77 when there is no CUDA device. GR_TEST_DEVICE=cpu puts a second CPU
 * table in the GPU's place (a dry run of this program). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "backend_train.h"

static int failures, cases;
static gr_backend *cpu, *gpu;
static const gr_train_ops *co, *go;
static int f32_mm;

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (float)((double)(rs >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}
static float *randv(size_t n, float scale) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) v[i] = frand() * scale;
    return v;
}
/* a copy of host data in the device table's memory */
static void *G(const void *h, size_t bytes) {
    void *d = go->alloc(gpu, bytes);
    if (!d) { fprintf(stderr, "out of GPU memory\n"); exit(1); }
    gr_tops_put(go, gpu, d, h, bytes);
    return d;
}
/* a host copy of n floats of device memory (freed by the caller) */
static float *D2H(const float *d, size_t n) {
    float *h = malloc(sizeof(float) * (n ? n : 1));
    gr_tops_get(go, gpu, h, d, sizeof(float) * n);
    return h;
}
/* a host fp32 copy of n bf16 values of device memory */
static float *D2H16(const void *d, size_t n) {
    uint16_t *b = malloc(2 * (n ? n : 1));
    float *h = malloc(sizeof(float) * (n ? n : 1));
    gr_tops_get(go, gpu, b, d, 2 * n);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)b[i] << 16;
        memcpy(&h[i], &u, 4);
    }
    free(b);
    return h;
}
static float bf16_round(float x) { /* round to nearest even, as __float2bfloat16_rn */
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}
static float *C(const float *h, size_t n) { /* a host copy */
    float *c = malloc(sizeof(float) * (n ? n : 1));
    memcpy(c, h, sizeof(float) * n);
    return c;
}

/* got: device memory (fetched here) */
static void report_h(const char *name, const float *ref, const float *got, size_t n, double thr);
static void report(const char *name, const float *ref, const float *got_dev, size_t n, double thr) {
    float *got = D2H(got_dev, n);
    report_h(name, ref, got, n, thr);
    free(got);
}
static void report_h(const char *name, const float *ref, const float *got, size_t n, double thr) {
    double num = 0, den = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        if (fabs(d) > worst || d != d) worst = d != d ? INFINITY : fabs(d);
    }
    double nmse = den > 0 ? num / den : num;
    cases++;
    int ok = nmse <= thr && worst == worst && worst != INFINITY;
    if (!ok) failures++;
    printf("%s %s: nmse %.3g (max |diff| %.3g) threshold %.1g\n", ok ? "ok" : "not ok", name, nmse,
           worst, thr);
}
static void report_rel(const char *name, double ref, double got, double thr) {
    double rel = fabs(got - ref) / (fabs(ref) > 0 ? fabs(ref) : 1.0);
    cases++;
    int ok = rel <= thr;
    if (!ok) failures++;
    printf("%s %s: %.12g vs %.12g, relative %.3g threshold %.1g\n", ok ? "ok" : "not ok", name, got,
           ref, rel, thr);
}
static double mm_thr(void) { return f32_mm ? 1e-10 : 5e-5; }

static void test_matmul(int n, int in, int out) {
    float *x = randv((size_t)n * in, 1), *w = randv((size_t)out * in, 0.1f), *dy = randv((size_t)n * out, 1);
    float *y = calloc((size_t)n * out, 4), *dx = randv((size_t)n * in, 0.5f), *dw = randv((size_t)out * in, 0.5f);
    float *gx = G(x, 4ul * n * in), *gw = G(w, 4ul * out * in), *gdy = G(dy, 4ul * n * out),
          *gy = G(y, 4ul * n * out), *gdx = G(dx, 4ul * n * in), *gdw = G(dw, 4ul * out * in);
    co->matmul_fwd(cpu, y, x, w, n, in, out);
    go->matmul_fwd(gpu, gy, gx, gw, n, in, out);
    co->matmul_bwd(cpu, dx, dw, dy, x, w, n, in, out);
    go->matmul_bwd(gpu, gdx, gdw, gdy, gx, gw, n, in, out);
    go->sync(gpu);
    char nm[64];
    snprintf(nm, sizeof nm, "matmul_fwd_%dx%dx%d", n, in, out);
    report(nm, y, gy, (size_t)n * out, mm_thr());
    snprintf(nm, sizeof nm, "matmul_bwd_dx_%dx%dx%d", n, in, out);
    report(nm, dx, gdx, (size_t)n * in, mm_thr());
    snprintf(nm, sizeof nm, "matmul_bwd_dw_%dx%dx%d", n, in, out);
    report(nm, dw, gdw, (size_t)out * in, mm_thr());
    void *all[] = {gx, gw, gdy, gy, gdx, gdw};
    for (int i = 0; i < 6; i++) go->release(gpu, all[i]);
    free(x); free(w); free(dy); free(y); free(dx); free(dw);
}

static void test_rows_and_norms(void) {
    enum { N = 77, D = 192 };
    float *x = randv(N * D, 2), *w = randv(D, 1), *dout = randv(N * D, 1);
    float *out = calloc(N * D, 4), *rstd = calloc(N, 4), *dx = randv(N * D, 0.3f), *dw = randv(D, 0.3f);
    float *gx = G(x, sizeof(float) * N * D), *gw = G(w, 4 * D), *gdout = G(dout, sizeof(float) * N * D),
          *gout = G(out, sizeof(float) * N * D), *grstd = G(rstd, 4 * N),
          *gdx = G(dx, sizeof(float) * N * D), *gdw = G(dw, 4 * D);
    co->rmsnorm_fwd(cpu, out, rstd, x, w, N, D, 1e-5f);
    go->rmsnorm_fwd(gpu, gout, grstd, gx, gw, N, D, 1e-5f);
    co->rmsnorm_bwd(cpu, dx, dw, dout, x, w, rstd, N, D);
    go->rmsnorm_bwd(gpu, gdx, gdw, gdout, gx, gw, grstd, N, D);
    go->sync(gpu);
    report("rmsnorm_fwd", out, gout, N * D, 1e-10);
    report("rmsnorm_fwd_rstd", rstd, grstd, N, 1e-10);
    report("rmsnorm_bwd_dx", dx, gdx, N * D, 1e-10);
    report("rmsnorm_bwd_dw", dw, gdw, D, 1e-10);
    /* RoPE forward and inverse at positions of two packed sequences */
    int pos[N];
    for (int t = 0; t < N; t++) pos[t] = t < 40 ? t : t - 40;
    float inv[32];
    for (int i = 0; i < 32; i++) inv[i] = powf(500000.0f, -(float)i / 32.0f);
    int *gpos = G(pos, sizeof pos);
    float *ginv = G(inv, sizeof inv);
    float *r = C(x, N * D), *gr = G(x, sizeof(float) * N * D);
    co->rope(cpu, r, pos, N, 3, 64, inv, 0);
    go->rope(gpu, gr, gpos, N, 3, 64, ginv, 0);
    go->sync(gpu);
    report("rope_fwd", r, gr, N * D, 1e-9);
    co->rope(cpu, r, pos, N, 3, 64, inv, 1);
    go->rope(gpu, gr, gpos, N, 3, 64, ginv, 1);
    go->sync(gpu);
    report("rope_bwd", r, gr, N * D, 1e-9);
    /* SwiGLU */
    float *sg = calloc(N * D, 4), *su = calloc(N * D, 4);
    float *gsg = G(sg, sizeof(float) * N * D), *gsu = G(su, sizeof(float) * N * D);
    co->swiglu_fwd(cpu, out, x, dout, N * D);
    go->swiglu_fwd(gpu, gout, gx, gdout, N * D);
    co->swiglu_bwd(cpu, sg, su, w[0] > 0 ? dx : dout, x, dout, N * D);
    go->swiglu_bwd(gpu, gsg, gsu, w[0] > 0 ? gdx : gdout, gx, gdout, N * D);
    go->sync(gpu);
    report("swiglu_fwd", out, gout, N * D, 1e-10);
    report("swiglu_bwd_dgate", sg, gsg, N * D, 1e-10);
    report("swiglu_bwd_dup", su, gsu, N * D, 1e-10);
    /* embedding: repeated tokens (the backward adds them in order) */
    enum { V = 50 };
    int tok[N];
    for (int t = 0; t < N; t++) tok[t] = (t * 7) % V;
    float *emb = randv(V * D, 1), *demb = randv(V * D, 0.1f);
    int *gtok = G(tok, sizeof tok);
    float *gemb = G(emb, sizeof(float) * V * D), *gdemb = G(demb, sizeof(float) * V * D);
    co->embedding_fwd(cpu, out, emb, tok, N, D);
    go->embedding_fwd(gpu, gout, gemb, gtok, N, D);
    co->embedding_bwd(cpu, demb, dout, tok, N, D);
    go->embedding_bwd(gpu, gdemb, gdout, gtok, N, D);
    go->sync(gpu);
    report("embedding_fwd", out, gout, N * D, 0);
    report("embedding_bwd", demb, gdemb, V * D, 0);
    /* glue: rows (gather, scatter), add, zero, scale, Σx² */
    int idx[20];
    for (int i = 0; i < 20; i++) idx[i] = (i * 13 + 5) % N;
    int *gidx = G(idx, sizeof idx);
    co->rows(cpu, out, x, idx, 20, D, 0);
    go->rows(gpu, gout, gx, gidx, 20, D, 0);
    go->sync(gpu);
    report("rows_gather", out, gout, 20 * D, 0);
    co->rows(cpu, dx, x, idx, 20, D, 1);
    go->rows(gpu, gdx, gx, gidx, 20, D, 1);
    co->add(cpu, dx, dout, N * D);
    go->add(gpu, gdx, gdout, N * D);
    co->scale(cpu, dx, 0.37f, N * D);
    go->scale(gpu, gdx, 0.37f, N * D);
    go->sync(gpu);
    report("rows_scatter_add_scale", dx, gdx, N * D, 0);
    report_rel("sumsq", co->sumsq(cpu, dx, N * D), go->sumsq(gpu, gdx, N * D), 1e-12);
    go->zero(gpu, gdx, N * D);
    go->sync(gpu);
    double z = 0;
    float *hz = D2H(gdx, N * D);
    for (int i = 0; i < N * D; i++) z += fabs(hz[i]);
    free(hz);
    cases++;
    if (z != 0) failures++;
    printf("%s zero: sum |x| = %g\n", z == 0 ? "ok" : "not ok", z);
    void *all[] = {gx, gw, gdout, gout, grstd, gdx, gdw, gpos, ginv, gr, gsg, gsu, gtok, gemb, gdemb, gidx};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) go->release(gpu, all[i]);
    free(x); free(w); free(dout); free(out); free(rstd); free(dx); free(dw); free(r); free(sg); free(su);
    free(emb); free(demb);
}

static int att_mma; /* GR_CUDA_TRAIN_ATT=mma: the tensor-core forward (train_attention_mma.cu) */
static void test_attention(int H, int Hkv, int hd) {
    int start[4] = {0, 37, 38, 128}, n = 128, ns = 3;
    size_t Q = (size_t)n * H * hd, K = (size_t)n * Hkv * hd;
    float *q = randv(Q, 1), *k = randv(K, 1), *v = randv(K, 1), *dout = randv(Q, 1);
    float *out = calloc(Q, 4), *lse = calloc((size_t)n * H, 4), *dq = calloc(Q, 4), *dk = calloc(K, 4),
          *dv = calloc(K, 4);
    float *gq = G(q, 4 * Q), *gk = G(k, 4 * K), *gv = G(v, 4 * K), *gdout = G(dout, 4 * Q),
          *gout = G(out, 4 * Q), *glse = G(lse, 4ul * n * H), *gdq = G(dq, 4 * Q), *gdk = G(dk, 4 * K),
          *gdv = G(dv, 4 * K);
    int *gstart = G(start, sizeof start);
    co->attention_fwd(cpu, out, lse, q, k, v, start, ns, H, Hkv, hd);
    go->attention_fwd(gpu, gout, glse, gq, gk, gv, gstart, ns, H, Hkv, hd);
    /* the backward of each from its own forward */
    co->attention_bwd(cpu, dq, dk, dv, dout, out, lse, q, k, v, start, ns, H, Hkv, hd);
    go->attention_bwd(gpu, gdq, gdk, gdv, gdout, gout, glse, gq, gk, gv, gstart, ns, H, Hkv, hd);
    go->sync(gpu);
    char nm[80];
    const char *what[5] = {"out", "lse", "dq", "dk", "dv"};
    float *ref[5] = {out, lse, dq, dk, dv}, *got[5] = {gout, glse, gdq, gdk, gdv};
    size_t len[5] = {Q, (size_t)n * H, Q, K, K};
    for (int i = 0; i < 5; i++) {
        snprintf(nm, sizeof nm, "attention%s_%s_H%d_kv%d_hd%d_packed", att_mma ? "_mma" : "", what[i], H, Hkv,
                 hd);
        /* the tensor-core forward rounds q, k, v and P to bf16 (2^-9 relative each); the
         * backward then runs from its out and lse */
        report(nm, ref[i], got[i], len[i], att_mma ? (i < 2 ? 1e-4 : 1e-3) : 1e-9);
    }
    void *all[] = {gq, gk, gv, gdout, gout, glse, gdq, gdk, gdv, gstart};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) go->release(gpu, all[i]);
    free(q); free(k); free(v); free(dout); free(out); free(lse); free(dq); free(dk); free(dv);
}

static void test_xent(int n, int dim, int vocab) {
    float *h = randv((size_t)n * dim, 1), *w = randv((size_t)vocab * dim, 0.2f);
    float *dh = calloc((size_t)n * dim, 4), *dw = randv((size_t)vocab * dim, 0.01f);
    int *tgt = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) tgt[i] = (i * 7919) % vocab;
    float *gh = G(h, 4ul * n * dim), *gw = G(w, 4ul * vocab * dim), *gdh = G(dh, 4ul * n * dim),
          *gdw = G(dw, 4ul * vocab * dim);
    int *gt = G(tgt, sizeof(int) * (size_t)n);
    double lc = co->xent(cpu, dh, dw, h, w, tgt, n, dim, vocab, 0.01f);
    double lg = go->xent(gpu, gdh, gdw, gh, gw, gt, n, dim, vocab, 0.01f);
    double lc0 = co->xent(cpu, NULL, NULL, h, w, tgt, n, dim, vocab, 0.0f);
    double lg0 = go->xent(gpu, NULL, NULL, gh, gw, gt, n, dim, vocab, 0.0f);
    go->sync(gpu);
    char nm[80];
    double lt = f32_mm ? 1e-9 : 1e-4;
    snprintf(nm, sizeof nm, "xent_nll_%dx%dx%d", n, dim, vocab);
    report_rel(nm, lc, lg, lt);
    snprintf(nm, sizeof nm, "xent_nll_forward_only_%dx%dx%d", n, dim, vocab);
    report_rel(nm, lc0, lg0, lt);
    snprintf(nm, sizeof nm, "xent_dh_%dx%dx%d", n, dim, vocab);
    report(nm, dh, gdh, (size_t)n * dim, mm_thr());
    snprintf(nm, sizeof nm, "xent_dw_%dx%dx%d", n, dim, vocab);
    report(nm, dw, gdw, (size_t)vocab * dim, mm_thr());
    void *all[] = {gh, gw, gdh, gdw, gt};
    for (int i = 0; i < 5; i++) go->release(gpu, all[i]);
    free(h); free(w); free(dh); free(dw); free(tgt);
}

static void test_adamw(void) {
    enum { N = 100003 };
    float *p = randv(N, 1), *g = randv(N, 0.1f), *m = randv(N, 0.01f), *v = randv(N, 0.001f);
    for (int i = 0; i < N; i++) v[i] = fabsf(v[i]);
    float *gp = G(p, 4 * N), *gg = G(g, 4 * N), *gm = G(m, 4 * N), *gv = G(v, 4 * N);
    for (int t = 1; t <= 3; t++) {
        co->adamw(cpu, p, g, m, v, N, 1e-3f, 0.9f, 0.999f, 1e-8f, t == 2 ? 0.01f : 0.0f, t);
        go->adamw(gpu, gp, gg, gm, gv, N, 1e-3f, 0.9f, 0.999f, 1e-8f, t == 2 ? 0.01f : 0.0f, t);
    }
    go->sync(gpu);
    report("adamw_params_3_steps", p, gp, N, 0);
    report("adamw_m", m, gm, N, 0);
    report("adamw_v", v, gv, N, 0);
    go->release(gpu, gp); go->release(gpu, gg); go->release(gpu, gm); go->release(gpu, gv);
    free(p); free(g); free(m); free(v);
}

/* The fused clip + AdamW (adamw_clip) against sumsq + scale + adamw: the same
 * bits with fp32 gradients, clipping active and not; with bf16 gradients (an
 * alloc16 block) against the CPU's 3 passes over the widened gradients, within
 * one bf16 rounding of the clipped gradient (the 3-pass GPU path would round
 * the scaled gradient back to bf16; the fused one keeps it in fp32). */
static void test_adamw_clip(void) {
    if (!go->adamw_clip) return;
    enum { N = 200003 };
    for (int clip = 0; clip <= 1; clip++) {
        float *p = randv(N, 1), *g = randv(N, 0.1f), *m = randv(N, 0.01f), *v = randv(N, 0.001f);
        for (int i = 0; i < N; i++) v[i] = fabsf(v[i]);
        float maxn = clip ? 1.0f : 1e9f;
        float *ap = G(p, 4 * N), *ag = G(g, 4 * N), *am = G(m, 4 * N), *av = G(v, 4 * N);
        float *bp = G(p, 4 * N), *bg = G(g, 4 * N), *bm = G(m, 4 * N), *bv = G(v, 4 * N);
        double n3 = sqrt(go->sumsq(gpu, ag, N));
        float coef = (float)((double)maxn / (n3 + 1e-6));
        if (coef < 1.0f) go->scale(gpu, ag, coef, N);
        go->adamw(gpu, ap, ag, am, av, N, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3);
        double nf = go->adamw_clip(gpu, bp, bg, bm, bv, N, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3, maxn);
        go->sync(gpu);
        char nm[64];
        snprintf(nm, sizeof nm, "adamw_clip_%s_norm", clip ? "clipping" : "unclipped");
        report_rel(nm, n3, nf, 0);
        float *hp = D2H(ap, N), *hm = D2H(am, N), *hv = D2H(av, N);
        snprintf(nm, sizeof nm, "adamw_clip_%s_params_bits", clip ? "clipping" : "unclipped");
        report(nm, hp, bp, N, 0);
        snprintf(nm, sizeof nm, "adamw_clip_%s_m_bits", clip ? "clipping" : "unclipped");
        report(nm, hm, bm, N, 0);
        snprintf(nm, sizeof nm, "adamw_clip_%s_v_bits", clip ? "clipping" : "unclipped");
        report(nm, hv, bv, N, 0);
        free(hp); free(hm); free(hv);
        void *all[] = {ap, ag, am, av, bp, bg, bm, bv};
        for (int i = 0; i < 8; i++) go->release(gpu, all[i]);
        /* bf16 gradients */
        if (go->alloc16 && go->storage16 && go->storage16(gpu)) {
            uint16_t *g16 = malloc(2 * N);
            for (int i = 0; i < N; i++) {
                float r = bf16_round(g[i]);
                uint32_t u;
                memcpy(&u, &r, 4);
                g16[i] = (uint16_t)(u >> 16);
                g[i] = r;
            }
            void *dg = go->alloc16(gpu, N);
            gr_tops_put(go, gpu, dg, g16, 2 * N);
            float *cp = C(p, N), *cm = C(m, N), *cv = C(v, N);
            double nc = sqrt(co->sumsq(cpu, g, N));
            float cc = (float)((double)maxn / (nc + 1e-6));
            if (cc < 1.0f) co->scale(cpu, g, cc, N);
            co->adamw(cpu, cp, g, cm, cv, N, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3);
            float *dp = G(p, 4 * N), *dm = G(m, 4 * N), *dv = G(v, 4 * N);
            double nb = go->adamw_clip(gpu, dp, dg, dm, dv, N, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3, maxn);
            snprintf(nm, sizeof nm, "adamw_clip_bf16_grads_%s_norm", clip ? "clipping" : "unclipped");
            report_rel(nm, nc, nb, 1e-12);
            snprintf(nm, sizeof nm, "adamw_clip_bf16_grads_%s_params", clip ? "clipping" : "unclipped");
            report(nm, cp, dp, N, 1e-12);
            snprintf(nm, sizeof nm, "adamw_clip_bf16_grads_%s_v", clip ? "clipping" : "unclipped");
            report(nm, cv, dv, N, 1e-12);
            void *all2[] = {dg, dp, dm, dv};
            for (int i = 0; i < 4; i++) go->release(gpu, all2[i]);
            free(g16); free(cp); free(cm); free(cv);
        }
        free(p); free(g); free(m); free(v);
    }
}

/* bf16 storage: the matmul with a registered bf16 weight copy and a bf16 x
 * (alloc16), written into a bf16 gradient, against the CPU on the same
 * bf16-rounded inputs; RMSNorm and SwiGLU into bf16 outputs; the embedding
 * gradient into bf16 rows (repeated tokens summed in fp32 first). */
static void test_storage16(void) {
    if (!go->alloc16 || !go->weights16 || !go->storage16 || !go->storage16(gpu)) {
        printf("# storage16 off (GR_CUDA_TRAIN_F32=1 or GR_CUDA_TRAIN_STORE=f32): no bf16-storage checks\n");
        return;
    }
    enum { n = 96, in = 256, out = 160 };
    float *x = randv((size_t)n * in, 1), *w = randv((size_t)out * in, 0.1f), *dy = randv((size_t)n * out, 1);
    for (size_t i = 0; i < (size_t)n * in; i++) x[i] = bf16_round(x[i]);
    for (size_t i = 0; i < (size_t)n * out; i++) dy[i] = bf16_round(dy[i]);
    float *wr = C(w, (size_t)out * in);
    for (size_t i = 0; i < (size_t)out * in; i++) wr[i] = bf16_round(wr[i]);
    float *y = calloc((size_t)n * out, 4), *dx = calloc((size_t)n * in, 4), *dw = calloc((size_t)out * in, 4);
    co->matmul_fwd(cpu, y, x, wr, n, in, out);
    co->matmul_bwd(cpu, dx, dw, dy, x, wr, n, in, out);
    float *gw = G(w, 4ul * out * in);
    void *gw16 = go->alloc16(gpu, (int64_t)out * in);
    go->weights16(gpu, gw, gw16, (int64_t)out * in);
    void *gx16 = go->alloc16(gpu, (int64_t)n * in), *gdw16 = go->alloc16(gpu, (int64_t)out * in);
    uint16_t *hx = malloc(2ul * n * in);
    for (size_t i = 0; i < (size_t)n * in; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        hx[i] = (uint16_t)(u >> 16);
    }
    gr_tops_put(go, gpu, gx16, hx, 2ul * n * in);
    float *gy = G(y, 4ul * n * out), *gdy = G(dy, 4ul * n * out), *gdx = G(dx, 4ul * n * in);
    go->zero(gpu, gdx, (int64_t)n * in);
    go->matmul_fwd(gpu, gy, (float *)gx16, gw, n, in, out);
    go->matmul_bwd(gpu, gdx, (float *)gdw16, gdy, (float *)gx16, gw, n, in, out);
    go->sync(gpu);
    report("storage16_matmul_fwd", y, gy, (size_t)n * out, 1e-10);
    report("storage16_matmul_bwd_dx", dx, gdx, (size_t)n * in, 1e-10);
    float *hdw = D2H16(gdw16, (size_t)out * in);
    report_h("storage16_matmul_bwd_dw_bf16", dw, hdw, (size_t)out * in, 3e-5); /* one bf16 rounding */
    free(hdw);
    /* rmsnorm into bf16 */
    float *nw = randv(in, 1), *nout = calloc((size_t)n * in, 4), *nrs = calloc(n, 4);
    co->rmsnorm_fwd(cpu, nout, nrs, x, nw, n, in, 1e-5f);
    for (size_t i = 0; i < (size_t)n * in; i++) nout[i] = bf16_round(nout[i]);
    float *gnw = G(nw, 4ul * in), *gnrs = G(nrs, 4ul * n), *gxf = G(x, 4ul * n * in);
    go->rmsnorm_fwd(gpu, (float *)gx16, gnrs, gxf, gnw, n, in, 1e-5f);
    float *hn = D2H16(gx16, (size_t)n * in);
    report_h("storage16_rmsnorm_fwd_bf16_out", nout, hn, (size_t)n * in, 1e-5);
    free(hn);
    /* embedding gradient into bf16 rows: repeated tokens */
    enum { V = 40 };
    int tok[n];
    for (int t = 0; t < n; t++) tok[t] = (t * 7) % V;
    float *demb = calloc((size_t)V * in, 4);
    co->embedding_bwd(cpu, demb, x, tok, n, in);
    for (size_t i = 0; i < (size_t)V * in; i++) demb[i] = bf16_round(demb[i]);
    int *gtok = G(tok, sizeof tok);
    void *gdemb = go->alloc16(gpu, (int64_t)V * in);
    go->embedding_bwd(gpu, (float *)gdemb, gxf, gtok, n, in);
    float *he = D2H16(gdemb, (size_t)V * in);
    report_h("storage16_embedding_bwd_bf16", demb, he, (size_t)V * in, 1e-5);
    free(he);
    void *all[] = {gw, gw16, gx16, gdw16, gy, gdy, gdx, gnw, gnrs, gxf, gtok, gdemb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) go->release(gpu, all[i]);
    free(x); free(w); free(dy); free(wr); free(y); free(dx); free(dw); free(hx); free(nw); free(nout);
    free(nrs); free(demb);
}

int main(void) {
    gr_err err;
    const char *dev = getenv("GR_TEST_DEVICE");
    gpu = gr_backend_open(dev && *dev ? dev : "cuda", 0, &err);
    if (!gpu) {
        printf("# skip: %s\n", err.msg);
        return 77;
    }
    go = gr_train_ops_for(gpu, &err);
    if (!go) {
        printf("# skip: %s\n", err.msg);
        return 77;
    }
    const char *f = getenv("GR_CUDA_TRAIN_F32");
    f32_mm = gpu->host_memory || (f && *f == '1');
    cpu = gr_backend_cpu(0);
    co = gr_train_ops_cpu();
    test_rows_and_norms();
    test_matmul(100, 192, 320);
    test_matmul(1, 64, 48);
    test_attention(4, 2, 64);     /* LLaMA-3.2-1B's head size, GQA 2 */
    test_attention(4, 1, 16);     /* the tiny test models' */
    test_attention(2, 2, 128);    /* 8B's head size, no GQA */
    test_attention(3, 3, 10);     /* odd head size */
    if (!gpu->host_memory) { /* the tensor-core forward: head sizes 64 and 128 */
        setenv("GR_CUDA_TRAIN_ATT", "mma", 1);
        att_mma = 1;
        test_attention(4, 2, 64);
        test_attention(2, 2, 128);
        test_attention(8, 2, 128);
        att_mma = 0;
        unsetenv("GR_CUDA_TRAIN_ATT");
    }
    test_xent(300, 64, 300);
    test_xent(3000, 64, 50000);   /* 3 chunks of logits on the GPU (1342 rows of 256 MiB), the last partial */
    test_adamw();
    test_adamw_clip();
    test_storage16();
    if (go->mem_stats) {
        size_t live, peak, scratch;
        go->mem_stats(gpu, &live, &peak, &scratch);
        printf("# device memory at the end: %zu bytes held by alloc, %zu scratch, peak %zu\n", live, scratch, peak);
    }
    printf("%d passed, %d failed\n", cases - failures, failures);
    gr_backend_free(gpu);
    gr_backend_free(cpu);
    return failures ? 1 : 0;
}
