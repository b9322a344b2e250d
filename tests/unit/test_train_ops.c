/* Finite-difference checks of every training op's backward (backend_train.h):
 * for an op y = f(x...), L = Σ r ⊙ y with fixed random r; the backward's
 * ∂L/∂x is compared with the central difference (L(x+h) − L(x−h)) / 2h computed
 * in double from the fp32 forward. Tolerance: |analytic − numeric| <= 2e-2 ·
 * max|analytic| + 1e-3 (fp32 forward, h = 1e-2; a wrong backward is off by O(1)). */
#include "test.h"
#include "backend_train.h"

static gr_backend *be;
static const gr_train_ops *ops;
static unsigned long long rng_state = 88172645463325252ULL;
static float frand(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static float *rnd(int n, float s) {
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) p[i] = frand() * s;
    return p;
}
static double dotd(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Checks analytic gradient g (n) of L(x) = fn(ctx) against central differences in x. */
typedef double (*loss_fn)(void *ctx);
static int fd_check(const char *what, float *x, const float *g, int n, loss_fn fn, void *ctx,
                    char *msg) {
    double mx = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, fabs(g[i]));
    for (int i = 0; i < n; i++) {
        float keep = x[i];
        const float h = 1e-2f;
        x[i] = keep + h; double lp = fn(ctx);
        x[i] = keep - h; double lm = fn(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        if (fabs(num - g[i]) > 2e-2 * mx + 1e-3) {
            sprintf(msg, "%s[%d]: analytic %g, numeric %g", what, i, g[i], num);
            return 0;
        }
    }
    return 1;
}

/* ---- matmul ---- */
typedef struct { float *x, *w, *y, *r; int n, in, out; } mm_ctx;
static double mm_loss(void *c_) {
    mm_ctx *c = c_;
    ops->matmul_fwd(be, c->y, c->x, c->w, c->n, c->in, c->out);
    return dotd(c->y, c->r, c->n * c->out);
}
TEST(matmul_backward) {
    char msg[256];
    /* sizes that cross the GEMM's 6x16 tiles and its 256-deep k blocks */
    int sizes[][3] = {{5, 7, 3}, {13, 300, 37}, {7, 20, 17}};
    for (int s = 0; s < 3; s++) {
        mm_ctx c = {rnd(sizes[s][0] * sizes[s][1], 1), rnd(sizes[s][2] * sizes[s][1], 1), NULL,
                    NULL, sizes[s][0], sizes[s][1], sizes[s][2]};
        c.y = rnd(c.n * c.out, 1);
        c.r = rnd(c.n * c.out, 1);
        /* forward against a naive triple loop */
        ops->matmul_fwd(be, c.y, c.x, c.w, c.n, c.in, c.out);
        for (int i = 0; i < c.n; i++)
            for (int o = 0; o < c.out; o++) {
                double ref = dotd(c.x + i * c.in, c.w + o * c.in, c.in);
                CHECK_NEAR(c.y[i * c.out + o], ref, 1e-4 * (1 + fabs(ref)));
            }
        float *dx = calloc((size_t)(c.n * c.in), 4), *dw = calloc((size_t)(c.out * c.in), 4);
        ops->matmul_bwd(be, dx, dw, c.r, c.x, c.w, c.n, c.in, c.out);
        CHECK_MSG(fd_check("dx", c.x, dx, c.n * c.in, mm_loss, &c, msg), "%s", msg);
        CHECK_MSG(fd_check("dw", c.w, dw, c.out * c.in, mm_loss, &c, msg), "%s", msg);
        free(c.x); free(c.w); free(c.y); free(c.r); free(dx); free(dw);
    }
}

/* ---- rmsnorm ---- */
typedef struct { float *x, *w, *y, *rstd, *r; int n, d; } rn_ctx;
static double rn_loss(void *c_) {
    rn_ctx *c = c_;
    ops->rmsnorm_fwd(be, c->y, c->rstd, c->x, c->w, c->n, c->d, 1e-5f);
    return dotd(c->y, c->r, c->n * c->d);
}
TEST(rmsnorm_backward) {
    char msg[256];
    rn_ctx c = {rnd(4 * 70, 1), rnd(70, 1), rnd(4 * 70, 1), rnd(4, 1), rnd(4 * 70, 1), 4, 70};
    rn_loss(&c);
    float *dx = calloc(280, 4), *dw = calloc(70, 4);
    ops->rmsnorm_bwd(be, dx, dw, c.r, c.x, c.w, c.rstd, c.n, c.d);
    CHECK_MSG(fd_check("dx", c.x, dx, 280, rn_loss, &c, msg), "%s", msg);
    CHECK_MSG(fd_check("dw", c.w, dw, 70, rn_loss, &c, msg), "%s", msg);
    free(c.x); free(c.w); free(c.y); free(c.rstd); free(c.r); free(dx); free(dw);
}

/* ---- rope ---- */
typedef struct { float *x, *y, *r; int *pos; float *inv; int n, h, hd; } rp_ctx;
static double rp_loss(void *c_) {
    rp_ctx *c = c_;
    memcpy(c->y, c->x, sizeof(float) * (size_t)(c->n * c->h * c->hd));
    ops->rope(be, c->y, c->pos, c->n, c->h, c->hd, c->inv, 0);
    return dotd(c->y, c->r, c->n * c->h * c->hd);
}
TEST(rope_backward) {
    char msg[256];
    int pos[5] = {0, 1, 2, 7, 100};
    float inv[4] = {1.0f, 0.3f, 0.05f, 0.001f};
    rp_ctx c = {rnd(5 * 2 * 8, 1), rnd(80, 1), rnd(80, 1), pos, inv, 5, 2, 8};
    float *g = malloc(80 * 4);
    memcpy(g, c.r, 80 * 4);
    ops->rope(be, g, pos, 5, 2, 8, inv, 1);
    CHECK_MSG(fd_check("dx", c.x, g, 80, rp_loss, &c, msg), "%s", msg);
    free(c.x); free(c.y); free(c.r); free(g);
}

/* ---- attention (two sequences, the second longer than a 64-query block; GQA 4 heads over 2) ---- */
typedef struct { float *q, *k, *v, *o, *lse, *r; int *start; int n_seq, H, Hkv, hd, n; } at_ctx;
static double at_loss(void *c_) {
    at_ctx *c = c_;
    ops->attention_fwd(be, c->o, c->lse, c->q, c->k, c->v, c->start, c->n_seq, c->H, c->Hkv, c->hd);
    return dotd(c->o, c->r, c->n * c->H * c->hd);
}
/* ---- attention, head dims a multiple of 16 (the blocked path of cpu_attention_train.c) ----
 * Against attention and its gradients computed directly in double, for lengths
 * that cross the 48-query blocks and are no multiple of 6, 8 or 16; and the
 * same bits with 1 and 2 threads. */
static void att_ref(const float *q, const float *k, const float *v, const float *r,
                    const int *start, int n_seq, int H, int Hkv, int hd, double *o, double *dq,
                    double *dk, double *dv) {
    int n = start[n_seq], QD = H * hd, KD = Hkv * hd;
    double sc = 1.0 / sqrt((double)hd);
    memset(dq, 0, sizeof(double) * (size_t)(n * QD));
    memset(dk, 0, sizeof(double) * (size_t)(n * KD));
    memset(dv, 0, sizeof(double) * (size_t)(n * KD));
    double *p = malloc(sizeof(double) * (size_t)n), *dp = malloc(sizeof(double) * (size_t)n);
    for (int s = 0; s < n_seq; s++)
        for (int h = 0; h < H; h++)
            for (int t = start[s]; t < start[s + 1]; t++) {
                int kh = h / (H / Hkv);
                const float *qt = q + t * QD + h * hd, *rt = r + t * QD + h * hd;
                double m = -1e300, z = 0, pd = 0;
                for (int u = start[s]; u <= t; u++) {
                    p[u] = dotd(qt, k + u * KD + kh * hd, hd) * sc;
                    m = fmax(m, p[u]);
                }
                for (int u = start[s]; u <= t; u++) z += (p[u] = exp(p[u] - m));
                for (int d = 0; d < hd; d++) o[t * QD + h * hd + d] = 0;
                for (int u = start[s]; u <= t; u++) {
                    p[u] /= z;
                    dp[u] = dotd(rt, v + u * KD + kh * hd, hd);
                    pd += p[u] * dp[u];
                    for (int d = 0; d < hd; d++) {
                        o[t * QD + h * hd + d] += p[u] * v[u * KD + kh * hd + d];
                        dv[u * KD + kh * hd + d] += p[u] * rt[d];
                    }
                }
                for (int u = start[s]; u <= t; u++) {
                    double ds = p[u] * (dp[u] - pd) * sc;
                    for (int d = 0; d < hd; d++) {
                        dq[t * QD + h * hd + d] += ds * k[u * KD + kh * hd + d];
                        dk[u * KD + kh * hd + d] += ds * qt[d];
                    }
                }
            }
    free(p);
    free(dp);
}

static int near_all(const char *what, const float *x, const double *ref, int n, double tol,
                    char *msg) {
    double mx = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, fabs(ref[i]));
    for (int i = 0; i < n; i++)
        if (!(fabs(x[i] - ref[i]) <= tol * (mx + 1e-30))) {
            sprintf(msg, "%s[%d]: %.9g, reference %.9g (max %g)", what, i, x[i], ref[i], mx);
            return 0;
        }
    return 1;
}

TEST(attention_blocked_matches_double) {
    char msg[256];
    int start[4] = {0, 1, 51, 164};
    int shapes[][3] = {{4, 2, 16}, {3, 1, 32}, {2, 2, 64}};
    for (int c = 0; c < 3; c++) {
        int H = shapes[c][0], Hkv = shapes[c][1], hd = shapes[c][2], n = start[3];
        int QN = n * H * hd, KN = n * Hkv * hd;
        float *q = rnd(QN, 1.5f), *k = rnd(KN, 1.5f), *v = rnd(KN, 1), *r = rnd(QN, 1);
        float *o = malloc(sizeof(float) * QN), *lse = malloc(sizeof(float) * n * H);
        float *dq = malloc(sizeof(float) * QN), *dk = malloc(sizeof(float) * KN),
              *dv = malloc(sizeof(float) * KN);
        double *ro = malloc(sizeof(double) * QN), *rdq = malloc(sizeof(double) * QN),
               *rdk = malloc(sizeof(double) * KN), *rdv = malloc(sizeof(double) * KN);
        att_ref(q, k, v, r, start, 3, H, Hkv, hd, ro, rdq, rdk, rdv);
        ops->attention_fwd(be, o, lse, q, k, v, start, 3, H, Hkv, hd);
        ops->attention_bwd(be, dq, dk, dv, r, o, lse, q, k, v, start, 3, H, Hkv, hd);
        CHECK_MSG(near_all("o", o, ro, QN, 1e-5, msg), "hd %d: %s", hd, msg);
        CHECK_MSG(near_all("dq", dq, rdq, QN, 2e-5, msg), "hd %d: %s", hd, msg);
        CHECK_MSG(near_all("dk", dk, rdk, KN, 2e-5, msg), "hd %d: %s", hd, msg);
        CHECK_MSG(near_all("dv", dv, rdv, KN, 2e-5, msg), "hd %d: %s", hd, msg);
        /* one thread: the same bits */
        gr_backend *b1 = gr_backend_cpu(1);
        float *o1 = malloc(sizeof(float) * QN), *l1 = malloc(sizeof(float) * n * H),
              *dq1 = malloc(sizeof(float) * QN), *dk1 = malloc(sizeof(float) * KN),
              *dv1 = malloc(sizeof(float) * KN);
        ops->attention_fwd(b1, o1, l1, q, k, v, start, 3, H, Hkv, hd);
        ops->attention_bwd(b1, dq1, dk1, dv1, r, o1, l1, q, k, v, start, 3, H, Hkv, hd);
        CHECK(memcmp(o, o1, sizeof(float) * QN) == 0 && memcmp(lse, l1, sizeof(float) * n * H) == 0);
        CHECK(memcmp(dq, dq1, sizeof(float) * QN) == 0 && memcmp(dk, dk1, sizeof(float) * KN) == 0 &&
              memcmp(dv, dv1, sizeof(float) * KN) == 0);
        gr_backend_free(b1);
        free(o1); free(l1); free(dq1); free(dk1); free(dv1);
        free(q); free(k); free(v); free(r); free(o); free(lse); free(dq); free(dk); free(dv);
        free(ro); free(rdq); free(rdk); free(rdv);
    }
}

/* Forward against att_ref and the backward against finite differences, for
 * sequences [start[i], start[i+1]). */
static void attention_check(const char *test_name_, int *start, int n_seq, int H, int Hkv, int hd) {
    char msg[256];
    int n = start[n_seq];
    at_ctx c = {NULL, NULL, NULL, NULL, NULL, NULL, start, n_seq, H, Hkv, hd, n};
    int QN = n * H * hd, KN = n * Hkv * hd;
    c.q = rnd(QN, 1); c.k = rnd(KN, 1); c.v = rnd(KN, 1); c.o = rnd(QN, 1);
    c.lse = rnd(n * H, 1); c.r = rnd(QN, 1);
    at_loss(&c);
    double *ro = malloc(sizeof(double) * QN), *rdq = malloc(sizeof(double) * QN),
           *rdk = malloc(sizeof(double) * KN), *rdv = malloc(sizeof(double) * KN);
    att_ref(c.q, c.k, c.v, c.r, start, n_seq, H, Hkv, hd, ro, rdq, rdk, rdv);
    int fwd_ok = near_all("o", c.o, ro, QN, 1e-5, msg);
    float *dq = malloc(sizeof(float) * QN), *dk = malloc(sizeof(float) * KN),
          *dv = malloc(sizeof(float) * KN);
    ops->attention_bwd(be, dq, dk, dv, c.r, c.o, c.lse, c.q, c.k, c.v, start, n_seq, H, Hkv, hd);
    int bwd_ok = fwd_ok && fd_check("dq", c.q, dq, QN, at_loss, &c, msg) &&
                 fd_check("dk", c.k, dk, KN, at_loss, &c, msg) &&
                 fd_check("dv", c.v, dv, KN, at_loss, &c, msg);
    free(c.q); free(c.k); free(c.v); free(c.o); free(c.lse); free(c.r); free(dq); free(dk); free(dv);
    free(ro); free(rdq); free(rdk); free(rdv);
    CHECK_MSG(bwd_ok, "hd %d: %s", hd, msg);
}

/* the general path (head dim 6; the second sequence crosses a 64-query block) */
TEST(attention_backward) {
    int start[3] = {0, 5, 75};
    attention_check(test_name_, start, 2, 4, 2, 6);
}

/* the blocked path (head dim 16; the second sequence crosses a 48-query block) */
TEST(attention_blocked_backward) {
    int start[3] = {0, 5, 55};
    attention_check(test_name_, start, 2, 2, 1, 16);
}

/* ---- swiglu ---- */
typedef struct { float *g, *u, *y, *r; int n; } sw_ctx;
static double sw_loss(void *c_) {
    sw_ctx *c = c_;
    ops->swiglu_fwd(be, c->y, c->g, c->u, c->n);
    return dotd(c->y, c->r, c->n);
}
TEST(swiglu_backward) {
    char msg[256];
    sw_ctx c = {rnd(50, 4), rnd(50, 2), rnd(50, 1), rnd(50, 1), 50};
    float *dg = malloc(200), *du = malloc(200);
    ops->swiglu_bwd(be, dg, du, c.r, c.g, c.u, c.n);
    CHECK_MSG(fd_check("dgate", c.g, dg, 50, sw_loss, &c, msg), "%s", msg);
    CHECK_MSG(fd_check("dup", c.u, du, 50, sw_loss, &c, msg), "%s", msg);
    free(c.g); free(c.u); free(c.y); free(c.r); free(dg); free(du);
}

/* ---- embedding ---- */
typedef struct { float *e, *y, *r; int *tok; int n, d; } em_ctx;
static double em_loss(void *c_) {
    em_ctx *c = c_;
    ops->embedding_fwd(be, c->y, c->e, c->tok, c->n, c->d);
    return dotd(c->y, c->r, c->n * c->d);
}
TEST(embedding_backward) {
    char msg[256];
    int tok[6] = {3, 0, 3, 9, 4, 3};
    em_ctx c = {rnd(10 * 5, 1), rnd(30, 1), rnd(30, 1), tok, 6, 5};
    float *de = calloc(50, 4);
    ops->embedding_bwd(be, de, c.r, tok, 6, 5);
    CHECK_MSG(fd_check("demb", c.e, de, 50, em_loss, &c, msg), "%s", msg);
    free(c.e); free(c.y); free(c.r); free(de);
}

/* ---- cross-entropy through the head (more rows than one internal chunk) ---- */
typedef struct { float *h, *w; int *tgt; int n, d, V; } xe_ctx;
static double xe_loss(void *c_) {
    xe_ctx *c = c_;
    return ops->xent(be, NULL, NULL, c->h, c->w, c->tgt, c->n, c->d, c->V, 1.0f);
}
TEST(xent_backward) {
    char msg[256];
    int n = 260, d = 8, V = 37;
    xe_ctx c = {rnd(n * d, 1), rnd(V * d, 1), malloc(sizeof(int) * n), n, d, V};
    for (int i = 0; i < n; i++) c.tgt[i] = (i * 7) % V;
    /* loss against a direct log-softmax */
    double ref = 0;
    for (int i = 0; i < n; i++) {
        double z[37], m = -1e30, s = 0;
        for (int v = 0; v < V; v++) { z[v] = dotd(c.h + i * d, c.w + v * d, d); m = fmax(m, z[v]); }
        for (int v = 0; v < V; v++) s += exp(z[v] - m);
        ref += m + log(s) - z[c.tgt[i]];
    }
    float *dh = malloc(sizeof(float) * n * d), *dw = calloc((size_t)(V * d), 4);
    double L = ops->xent(be, dh, dw, c.h, c.w, c.tgt, n, d, V, 0.5f);
    CHECK_NEAR(L, ref, 1e-4 * fabs(ref));
    for (int i = 0; i < n * d; i++) dh[i] *= 2;
    for (int i = 0; i < V * d; i++) dw[i] *= 2;
    CHECK_MSG(fd_check("dh", c.h, dh, 40, xe_loss, &c, msg), "%s", msg);
    CHECK_MSG(fd_check("dw", c.w, dw, V * d, xe_loss, &c, msg), "%s", msg);
    free(c.h); free(c.w); free(c.tgt); free(dh); free(dw);
}

/* ---- AdamW against the formula in double ---- */
TEST(adamw_matches_formula) {
    float p[3] = {0.5f, -1.0f, 2.0f}, g[3] = {0.1f, -0.02f, 3.0f}, m[3] = {0}, v[3] = {0};
    double pd[3] = {0.5, -1.0, 2.0}, md[3] = {0}, vd[3] = {0};
    for (int t = 1; t <= 3; t++) {
        ops->adamw(be, p, g, m, v, 3, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, t);
        for (int i = 0; i < 3; i++) {
            pd[i] *= 1 - 1e-2 * 0.1;
            md[i] = 0.9 * md[i] + 0.1 * g[i];
            vd[i] = 0.999 * vd[i] + 0.001 * (double)g[i] * g[i];
            pd[i] -= 1e-2 / (1 - pow(0.9, t)) * md[i] / (sqrt(vd[i]) / sqrt(1 - pow(0.999, t)) + 1e-8);
        }
    }
    for (int i = 0; i < 3; i++) CHECK_NEAR(p[i], pd[i], 1e-6);
}

/* Same result with 1 and 2 threads, bit for bit (resume depends on it). */
TEST(gemm_deterministic_across_threads) {
    int M = 50, N = 70, K = 600;
    float *A = rnd(M * K, 1), *B = rnd(K * N, 1), *C1 = malloc(4 * M * N), *C2 = malloc(4 * M * N);
    gr_backend *b1 = gr_backend_cpu(1), *b2 = gr_backend_cpu(2);
    gr_cpu_gemm(b1, M, N, K, A, K, B, N, C1, N, 0);
    gr_cpu_gemm(b2, M, N, K, A, K, B, N, C2, N, 0);
    CHECK(memcmp(C1, C2, 4 * (size_t)M * N) == 0);
    gr_backend_free(b1); gr_backend_free(b2);
    free(A); free(B); free(C1); free(C2);
}

/* The task grid follows the thread count (backend_cpu_train.c: 520 x 1100 x 300
 * is 9 tasks on 1 and 3 threads, 12 on 2), the results do not: fp32 and bf16
 * mode, 1, 2 and 3 threads, bit for bit. */
TEST(gemm_task_grid_thread_invariant) {
    int M = 520, N = 1100, K = 300;
    float *A = rnd(M * K, 1), *B = rnd(K * N, 1), *C[3];
    for (int bf = 0; bf < 2; bf++) {
        for (int t = 0; t < 3; t++) {
            gr_backend *b = gr_backend_cpu(t + 1);
            b->train_bf16 = bf;
            C[t] = malloc(4 * (size_t)M * N);
            gr_cpu_gemm(b, M, N, K, A, K, B, N, C[t], N, 0);
            gr_backend_free(b);
        }
        int same = memcmp(C[0], C[1], 4 * (size_t)M * N) == 0 && memcmp(C[0], C[2], 4 * (size_t)M * N) == 0;
        for (int t = 0; t < 3; t++) free(C[t]);
        CHECK_MSG(same, "bf16 %d: results differ between 1, 2 and 3 threads", bf);
    }
    free(A); free(B);
}

/* Every layout the GEMM packs (A plain or transposed, B plain or transposed),
 * with sizes that cross its 6x16 tiles, its task blocks (192 rows, 512 columns)
 * and its k blocks, against a double reference; and 1 vs 2 threads bit for bit. */
TEST(gemm_layouts_match_reference) {
    int sizes[][3] = {{200, 530, 300}, {7, 17, 513}, {1, 1, 1}, {37, 600, 64}};
    gr_backend *b1 = gr_backend_cpu(1), *b2 = gr_backend_cpu(2);
    for (int s = 0; s < 4; s++) {
        int n = sizes[s][0], out = sizes[s][1], in = sizes[s][2];
        float *x = rnd(n * in, 1), *w = rnd(out * in, 1), *dy = rnd(n * out, 1);
        float *y1 = rnd(n * out, 1), *y2 = rnd(n * out, 1);
        float *dx1 = rnd(n * in, 1), *dx2 = malloc(4 * (size_t)n * in);
        float *dw1 = rnd(out * in, 1), *dw2 = malloc(4 * (size_t)out * in);
        float *dx0 = malloc(4 * (size_t)n * in), *dw0 = malloc(4 * (size_t)out * in);
        memcpy(dx2, dx1, 4 * (size_t)n * in);
        memcpy(dx0, dx1, 4 * (size_t)n * in);
        memcpy(dw2, dw1, 4 * (size_t)out * in);
        memcpy(dw0, dw1, 4 * (size_t)out * in);
        ops->matmul_fwd(b1, y1, x, w, n, in, out);
        ops->matmul_fwd(b2, y2, x, w, n, in, out);
        ops->matmul_bwd(b1, dx1, dw1, dy, x, w, n, in, out);
        ops->matmul_bwd(b2, dx2, dw2, dy, x, w, n, in, out);
        CHECK(memcmp(y1, y2, 4 * (size_t)n * out) == 0);
        CHECK(memcmp(dx1, dx2, 4 * (size_t)n * in) == 0);
        CHECK(memcmp(dw1, dw2, 4 * (size_t)out * in) == 0);
        double err = 0;
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++) {
                double ref = dotd(x + i * in, w + o * in, in);
                err = fmax(err, fabs(y1[i * out + o] - ref) / (1 + fabs(ref)));
            }
        for (int i = 0; i < n; i++)
            for (int k = 0; k < in; k++) {
                double ref = dx0[i * in + k];
                for (int o = 0; o < out; o++) ref += (double)dy[i * out + o] * w[o * in + k];
                err = fmax(err, fabs(dx1[i * in + k] - ref) / (1 + fabs(ref)));
            }
        for (int o = 0; o < out; o++)
            for (int k = 0; k < in; k++) {
                double ref = dw0[o * in + k];
                for (int i = 0; i < n; i++) ref += (double)dy[i * out + o] * x[i * in + k];
                err = fmax(err, fabs(dw1[o * in + k] - ref) / (1 + fabs(ref)));
            }
        CHECK_MSG(err < 1e-4, "size %d: relative error %g", s, err);
        free(x); free(w); free(dy); free(y1); free(y2); free(dx1); free(dx2); free(dw1);
        free(dw2); free(dx0); free(dw0);
    }
    gr_backend_free(b1); gr_backend_free(b2);
}

int main(void) {
    be = gr_backend_cpu(2);
    ops = gr_train_ops_cpu();
    RUN(matmul_backward);
    RUN(rmsnorm_backward);
    RUN(rope_backward);
    RUN(attention_backward);
    RUN(attention_blocked_matches_double);
    RUN(attention_blocked_backward);
    RUN(swiglu_backward);
    RUN(embedding_backward);
    RUN(xent_backward);
    RUN(adamw_matches_formula);
    RUN(gemm_deterministic_across_threads);
    RUN(gemm_task_grid_thread_invariant);
    RUN(gemm_layouts_match_reference);
    gr_backend_free(be);
    return TEST_EXIT();
}
