/* bf16 mixed-precision training on the CPU (--precision bf16, kernels/cpu/gemm_bf16.h):
 *  - the rounding: the portable loop against an independent reference (the
 *    nearest bf16 by exact comparison, ties to even) on special values and
 *    random bit patterns, and the AVX-512 variant against the portable one
 *    bit for bit (the same integer rounding), skipped with a line without AVX-512;
 *  - the GEMM in bf16 mode against a double reference on the rounded operands
 *    (tolerance 1e-5 relative to Σ|a·b|: fp32 accumulation only);
 *  - a tiny model's loss and gradients in bf16 against fp32: loss within 1%,
 *    every tensor's gradient within 5% (relative L2), and not equal to fp32;
 *  - a 24-step SFT run (lr 1e-2): each step's loss within 15% of the fp32 run's,
 *    the mean of the last 8 steps within 5% (measured: 8.5% worst step, 0.3%);
 *  - the training state records the precision (a state of the older 10-field
 *    header reads as fp32) and a resume with the other precision is refused. */
#include "test.h"
#include "backend_train.h"
#include "checkpoint.h"
#include "gemm_bf16.h"
#include "isa.h"
#include "train_run.h"
#include "train_sft.h"
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rs = 0x9e3779b97f4a7c15ULL;
static uint32_t rbits(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (uint32_t)(rs >> 16);
}
static float bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* independent reference: the two bf16 neighbours of x, the nearer one by exact
 * double arithmetic, ties to the even significand */
static uint32_t ref_round(float x) {
    uint32_t u = f_bits(x);
    if (isnan(x)) return (u | 0x00400000u) & 0xffff0000u;
    if (isinf(x)) return u;
    uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u; /* toward 0, away from 0 */
    double dx = fabs((double)x), dl = fabs((double)bits_f(lo));
    double dh = (hi & 0x7fffffffu) >= 0x7f800000u ? ldexp(1.0, 128) : fabs((double)bits_f(hi));
    if (lo == u) return u;
    double a = dx - dl, b = dh - dx;
    if (a < b) return lo;
    if (b < a) return hi;
    return (lo >> 16) & 1 ? hi : lo;
}

static float *special_and_random(int *n_out) {
    static const uint32_t sp[] = {0, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u,
                                  0x7f800001u, 0x00000001u, 0x807fffffu, 0x00008000u, 0x00018000u,
                                  0x3f808000u, 0x3f818000u, 0x3f808001u, 0x7f7fffffu, 0xff7f8000u,
                                  0x7f7f8000u, 0x3f7fffffu, 0x0000ffffu, 0x00800000u};
    int ns = (int)(sizeof sp / sizeof sp[0]), n = ns + 100003;
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < ns; i++) x[i] = bits_f(sp[i]);
    for (int i = ns; i < n; i++) {
        uint32_t u = rbits();
        if (i % 3 == 0) u = (u & 0xffff0000u) | 0x8000u; /* exact ties */
        x[i] = bits_f(u);
    }
    *n_out = n;
    return x;
}

TEST(round_portable_matches_reference) {
    int n;
    float *x = special_and_random(&n), *y = malloc(sizeof(float) * (size_t)n);
    memcpy(y, x, sizeof(float) * (size_t)n);
    gr_bf16_round(y, (size_t)n);
    for (int i = 0; i < n; i++)
        CHECK_MSG(f_bits(y[i]) == ref_round(x[i]), "x=0x%08x: 0x%08x, want 0x%08x", f_bits(x[i]),
                  f_bits(y[i]), ref_round(x[i]));
    free(x); free(y);
}

TEST(round_avx512_matches_portable) {
    if (gr_cpu_isa_max() < GR_ISA_AVX512) {
        printf("# skip round_avx512_matches_portable: this CPU (or build) has no AVX-512\n");
        return;
    }
#if GR_CPU_X86
    int n;
    float *x = special_and_random(&n), *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    for (int off = 0; off < 17; off++) { /* every tail length and alignment */
        size_t m = (size_t)n - (size_t)off;
        memcpy(a, x + off, sizeof(float) * m);
        memcpy(b, x + off, sizeof(float) * m);
        gr_bf16_round(a, m);
        gr_bf16_round_avx512(b, m);
        CHECK(memcmp(a, b, sizeof(float) * m) == 0);
    }
    free(x); free(a); free(b);
#endif
}

static float *rnd(int n, float s) {
    float *p = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) p[i] = s * ((float)(rbits() & 0xffffff) / 8388608.0f - 1.0f);
    return p;
}

/* y = x·wᵀ, dx += dy·w, dw += dyᵀ·x in bf16 mode, on every ISA level, against
 * double sums of the rounded operands */
TEST(gemm_bf16_matches_rounded_reference) {
    int n = 37, in = 300, out = 70;
    float *x = rnd(n * in, 1), *w = rnd(out * in, 1), *dy = rnd(n * out, 1);
    float *y = malloc(4 * (size_t)n * out), *dx = calloc((size_t)n * in, 4), *dw = calloc((size_t)out * in, 4);
    float *yf = malloc(4 * (size_t)n * out);
    gr_backend *be = gr_backend_cpu(2);
    const gr_train_ops *ops = gr_train_ops_cpu();
    int keep = gr_cpu_isa;
    if (!GR_CPU_X86 || gr_cpu_isa_max() < GR_ISA_AVX512 || (gr_cpu_isa_set(GR_ISA_AVX512), !gr_cpu_bf16()))
        printf("# skip the vdpbf16ps variant in gemm_bf16_matches_rounded_reference: no AVX512-BF16 here\n");
    gr_cpu_isa_set(keep);
    for (int lvl = 0; lvl <= gr_cpu_isa_max(); lvl++) {
        gr_cpu_isa_set(lvl);
        be->train_bf16 = 0;
        ops->matmul_fwd(be, yf, x, w, n, in, out);
        be->train_bf16 = 1;
        ops->matmul_fwd(be, y, x, w, n, in, out);
        memset(dx, 0, 4 * (size_t)n * in);
        memset(dw, 0, 4 * (size_t)out * in);
        ops->matmul_bwd(be, dx, dw, dy, x, w, n, in, out);
        int differs = 0;
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++) {
                double s = 0, a = 0;
                for (int k = 0; k < in; k++) {
                    double p = (double)bits_f(ref_round(x[i * in + k])) * bits_f(ref_round(w[o * in + k]));
                    s += p; a += fabs(p);
                }
                CHECK_NEAR(y[i * out + o], s, 1e-5 * a + 1e-30);
                differs += y[i * out + o] != yf[i * out + o];
            }
        CHECK_MSG(differs > n * out / 2, "bf16 result equals fp32 in %d of %d", n * out - differs, n * out);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < in; k++) {
                double s = 0, a = 0;
                for (int o = 0; o < out; o++) {
                    double p = (double)bits_f(ref_round(dy[i * out + o])) * bits_f(ref_round(w[o * in + k]));
                    s += p; a += fabs(p);
                }
                CHECK_NEAR(dx[i * in + k], s, 1e-5 * a + 1e-30);
            }
        for (int o = 0; o < out; o++)
            for (int k = 0; k < in; k++) {
                double s = 0, a = 0;
                for (int i = 0; i < n; i++) {
                    double p = (double)bits_f(ref_round(dy[i * out + o])) * bits_f(ref_round(x[i * in + k]));
                    s += p; a += fabs(p);
                }
                CHECK_NEAR(dw[o * in + k], s, 1e-5 * a + 1e-30);
            }
    }
    gr_cpu_isa_set(keep);
    gr_backend_free(be);
    free(x); free(w); free(dy); free(y); free(yf); free(dx); free(dw);
}

/* The vdpbf16ps GEMM on its own, on shapes with every edge (rows not a
 * multiple of 6, columns not of 32, odd k blocks, several k blocks, row blocks
 * and row groups, K = 1), A and B each plain or transposed, C set or
 * accumulated: against a double reference on the rounded operands (1e-5 of
 * Σ|a·b|), and bit for bit the same serial, on 1 thread, on 3 threads and
 * with B packed beforehand (gr_bf16_bpack_avx512). */
TEST(gemm_bf16_vdp_shapes_and_threads) {
#if GR_CPU_X86
    int keep = gr_cpu_isa;
    gr_cpu_isa_set(GR_ISA_AVX512);
    if (!gr_cpu_bf16()) {
        printf("# skip gemm_bf16_vdp_shapes_and_threads: no AVX512-BF16 here\n");
        gr_cpu_isa_set(keep);
        return;
    }
    static const int shapes[][4] = {/* M, N, K, kc */
                                    {37, 70, 300, 152}, {1030, 33, 17, 24}, {7, 600, 513, 256},
                                    {300, 64, 1, 8},    {13, 31, 9, 8},     {520, 1100, 64, 64}};
    gr_backend *b1 = gr_backend_cpu(1), *b3 = gr_backend_cpu(3);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], kc = shapes[s][3];
        float *A = rnd(M * K, 1), *B = rnd(K * N, 1), *C0 = rnd(M * N, 1);
        float *C[4];
        for (int v = 0; v < 4; v++) C[v] = malloc(sizeof(float) * (size_t)M * N);
        for (int mode = 0; mode < 8; mode++) {
            int at = mode & 1, bt = mode >> 1 & 1, acc = mode >> 2;
            int lda = at ? M : K, ldb = bt ? K : N;
            for (int v = 0; v < 3; v++) {
                memcpy(C[v], C0, sizeof(float) * (size_t)M * N);
                gr_bf16_gemm_avx512(v == 0 ? NULL : v == 1 ? b1 : b3, M, N, K, A, lda, at, B, ldb, bt, C[v], N, acc, kc,
                                    NULL);
            }
            /* and with B packed beforehand (the LM head's path), B then not read */
            uint32_t *pre = aligned_alloc(64, 4 * ((gr_bf16_bpack_size(N, K, kc) + 15) / 16 * 16));
            gr_bf16_bpack_avx512(b3, N, K, B, ldb, bt, kc, pre);
            memcpy(C[3], C0, sizeof(float) * (size_t)M * N);
            gr_bf16_gemm_avx512(b3, M, N, K, A, lda, at, NULL, ldb, bt, C[3], N, acc, kc, pre);
            free(pre);
            int bad = 0, diff = 0;
            for (int i = 0; i < M; i++)
                for (int n = 0; n < N; n++) {
                    double r = acc ? C0[(size_t)i * N + n] : 0, a = fabs(r);
                    for (int k = 0; k < K; k++) {
                        float x = at ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                        float y = bt ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
                        double p = (double)bits_f(ref_round(x)) * bits_f(ref_round(y));
                        r += p, a += fabs(p);
                    }
                    float got = C[0][(size_t)i * N + n];
                    bad += !(fabs(got - r) <= 1e-5 * a + 1e-30);
                    diff += memcmp(&got, &C[1][(size_t)i * N + n], 4) || memcmp(&got, &C[2][(size_t)i * N + n], 4) ||
                            memcmp(&got, &C[3][(size_t)i * N + n], 4);
                }
            CHECK_MSG(bad == 0, "M %d N %d K %d kc %d at %d bt %d acc %d: %d results off the reference", M, N, K, kc,
                      at, bt, acc, bad);
            CHECK_MSG(diff == 0, "M %d N %d K %d at %d bt %d acc %d: %d results depend on the threads or prepacking", M, N, K, at,
                      bt, acc, diff);
        }
        free(A); free(B); free(C0);
        for (int v = 0; v < 4; v++) free(C[v]);
    }
    gr_backend_free(b1);
    gr_backend_free(b3);
    gr_cpu_isa_set(keep);
#else
    printf("# skip gemm_bf16_vdp_shapes_and_threads: a build without the x86 variants\n");
#endif
}

/* The cross-entropy over more rows than one chunk (256) packs the LM head's
 * weight once for all chunks in bf16 mode on AVX512-BF16: the same gradients,
 * bit for bit, as chunks of at most 256 rows each packing it themselves. */
TEST(xent_bf16_prepacked_weight_same_bits) {
    int n = 300, dim = 40, vocab = 1000;
    float *h = rnd(n * dim, 1), *w = rnd(vocab * dim, 1);
    float *dh1 = calloc((size_t)n * dim, 4), *dh2 = calloc((size_t)n * dim, 4);
    float *dw1 = calloc((size_t)vocab * dim, 4), *dw2 = calloc((size_t)vocab * dim, 4);
    int *tg = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) tg[i] = (int)(rbits() % (uint32_t)vocab);
    gr_backend *be = gr_backend_cpu(2);
    be->train_bf16 = 1;
    const gr_train_ops *ops = gr_train_ops_cpu();
    double l1 = ops->xent(be, dh1, dw1, h, w, tg, n, dim, vocab, 1.0f / n);
    double l2 = ops->xent(be, dh2, dw2, h, w, tg, 256, dim, vocab, 1.0f / n);
    l2 += ops->xent(be, dh2 + 256 * dim, dw2, h + 256 * dim, w, tg + 256, n - 256, dim, vocab, 1.0f / n);
    CHECK_NEAR(l1, l2, 1e-9 * fabs(l2));
    CHECK_MSG(!memcmp(dh1, dh2, 4 * (size_t)n * dim), "dh differs");
    CHECK_MSG(!memcmp(dw1, dw2, 4 * (size_t)vocab * dim), "dw differs");
    gr_backend_free(be);
    free(h); free(w); free(dh1); free(dh2); free(dw1); free(dw2); free(tg);
}

typedef struct run {
    gr_model *gm;
    gr_backend *be;
    gr_train_model *m;
    gr_tdata d;
} run;

static int run_open(run *r, int bf16, gr_err *err) {
    if (!(r->gm = gr_model_load("testdata/models/tiny-gqa-tied", err))) return -1;
    r->be = gr_backend_cpu(2);
    if (gr_train_set_precision(r->be, bf16, err)) return -1;
    if (!(r->m = gr_train_model_new(r->gm, r->be, err))) return -1;
    return gr_tdata_load("testdata/train/synth.jsonl", 300, 2048, &r->d, err);
}
static void run_close(run *r) {
    gr_tdata_free(&r->d);
    gr_train_model_free(r->m);
    gr_backend_free(r->be);
    gr_model_free(r->gm);
}

TEST(tiny_model_loss_and_grads_near_fp32) {
    gr_err err;
    run r[2];
    double nll[2];
    int64_t nt[2];
    for (int p = 0; p < 2; p++) {
        CHECK_MSG(run_open(&r[p], p, &err) == 0, "%s", err.msg);
        gr_tbatch b = {8, (const int *const *)r[p].d.ids, r[p].d.len, r[p].d.n_prompt};
        gr_tact *a = gr_tact_new(0);
        gr_train_zero_grad(r[p].m);
        CHECK_MSG(gr_train_step_micro(r[p].m, a, &b, 1, 1.0f, &nll[p], &nt[p], &err) == 0, "%s", err.msg);
        gr_tact_free(a);
    }
    CHECK(nt[0] == nt[1] && nt[0] > 0);
    CHECK_NEAR(nll[1] / nt[1], nll[0] / nt[0], 1e-2 * nll[0] / nt[0]);
    CHECK(nll[1] != nll[0]);
    /* per tensor: relative L2 error of the gradient */
    const gr_train_model *m0 = r[0].m, *m1 = r[1].m;
    double worst = 0;
    for (int t = 0; t < m0->n_tab; t++) {
        double e = 0, s = 0;
        int64_t n = m0->tab[t].rows * (m0->tab[t].cols ? m0->tab[t].cols : 1);
        for (int64_t i = m0->tab[t].off; i < m0->tab[t].off + n; i++) {
            double g0 = m0->grads[i], g1 = m1->grads[i];
            e += (g1 - g0) * (g1 - g0);
            s += g0 * g0;
        }
        double rel = sqrt(e / (s + 1e-300));
        if (rel > worst) worst = rel;
        CHECK_MSG(rel <= 5e-2, "%s: relative gradient error %g", m0->tab[t].name, rel);
    }
    CHECK_MSG(worst > 0, "bf16 gradients equal fp32 ones");
    printf("# bf16 vs fp32: loss %.6f vs %.6f, worst tensor gradient rel. L2 error %.3g\n",
           nll[1] / nt[1], nll[0] / nt[0], worst);
    run_close(&r[0]);
    run_close(&r[1]);
}

TEST(short_run_loss_curve_near_fp32) {
    gr_err err;
    enum { STEPS = 24 };
    double loss[2][STEPS];
    for (int p = 0; p < 2; p++) {
        run r;
        CHECK_MSG(run_open(&r, p, &err) == 0, "%s", err.msg);
        gr_sft_opts o;
        gr_sft_opts_default(&o);
        o.lr = 1e-2;
        o.epochs = 30;
        o.micro_batch = 4;
        o.grad_accum = 2;
        gr_sft s;
        CHECK(gr_sft_init(&s, r.m, &r.d, &o, &err) == 0);
        for (int k = 0; k < STEPS; k++) {
            gr_sft_info in;
            CHECK_MSG(gr_sft_step(&s, &in, &err) == 0, "%s", err.msg);
            loss[p][k] = in.loss;
        }
        gr_sft_free(&s);
        run_close(&r);
    }
    double worst = 0, w0 = 0, w1 = 0;
    for (int k = 0; k < STEPS; k++) {
        double d = fabs(loss[1][k] - loss[0][k]);
        if (d > worst) worst = d;
        if (getenv("GR_TEST_VERBOSE")) printf("# %d %.4f %.4f\n", k + 1, loss[0][k], loss[1][k]);
        CHECK_MSG(d <= 0.15 * loss[0][k], "step %d: bf16 loss %g, fp32 %g", k + 1, loss[1][k], loss[0][k]);
        if (k >= STEPS - 8) w0 += loss[0][k], w1 += loss[1][k];
    }
    /* the trajectories drift apart step by step (lr 1e-2), the mean of the last 8 steps much less */
    CHECK_MSG(fabs(w1 - w0) <= 0.05 * w0, "mean loss of the last 8 steps: bf16 %g, fp32 %g", w1 / 8, w0 / 8);
    CHECK(loss[0][STEPS - 1] < 0.5 * loss[0][0] && loss[1][STEPS - 1] < 0.5 * loss[1][0]);
    printf("# loss curve: fp32 %.4f -> %.4f, bf16 %.4f -> %.4f, worst step |diff| %.4f\n", loss[0][0],
           loss[0][STEPS - 1], loss[1][0], loss[1][STEPS - 1], worst);
}

TEST(state_records_precision) {
    gr_err err;
    run r;
    CHECK_MSG(run_open(&r, 1, &err) == 0, "%s", err.msg);
    float *z = calloc((size_t)r.m->n_params, sizeof(float));
    char dir[] = "/tmp/gr-test-bf16-XXXXXX";
    CHECK(mkdtemp(dir));
    char ck[256], path[300];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    CHECK(mkdir(ck, 0777) == 0);
    snprintf(path, sizeof path, "%s/trainer_state.bin", ck);
    gr_train_state st = {3, 42, 48, 4, 2, 1, 12, 3, 1e-3, r.m->n_params, r.m->params, z, z, 1};
    CHECK_MSG(gr_state_write(path, &st, &err) == 0, "%s", err.msg);
    gr_train_state back;
    CHECK_MSG(gr_state_read(path, &back, &err) == 0, "%s", err.msg);
    CHECK(back.precision == 1 && back.step == 3 && back.n_params == r.m->n_params);
    gr_state_free(&back);
    /* a state written before the precision field (10-field header): reads as fp32 */
    {
        size_t np = (size_t)r.m->n_params, body = 12 * np;
        FILE *f = fopen(path, "rb");
        CHECK(f);
        unsigned char *buf = malloc(104 + body + 8);
        CHECK(fread(buf, 1, 104 + body + 8, f) == 104 + body + 8);
        fclose(f);
        memmove(buf + 96, buf + 104, body);
        buf[12] = 80;
        uint64_t h = 0xcbf29ce484222325ULL;
        size_t chunks[4] = {96, 4 * np, 4 * np, 4 * np}, at = 0;
        for (int c = 0; c < 4; c++) { /* the file's FNV, per written chunk */
            size_t i = 0;
            for (; i + 8 <= chunks[c]; i += 8) {
                uint64_t w;
                memcpy(&w, buf + at + i, 8);
                h = (h ^ w) * 0x100000001b3ULL;
            }
            for (; i < chunks[c]; i++) h = (h ^ buf[at + i]) * 0x100000001b3ULL;
            at += chunks[c];
        }
        for (int i = 0; i < 8; i++) buf[at + i] = (unsigned char)(h >> (8 * i));
        f = fopen(path, "wb");
        CHECK(f && fwrite(buf, 1, at + 8, f) == at + 8 && fclose(f) == 0);
        free(buf);
        CHECK_MSG(gr_state_read(path, &back, &err) == 0, "%s", err.msg);
        CHECK(back.precision == 0 && back.step == 3 && back.n_params == r.m->n_params);
        gr_state_free(&back);
        CHECK_MSG(gr_state_write(path, &st, &err) == 0, "%s", err.msg);
    }
    gr_adamw opt;
    gr_adamw_init_model(&opt, r.m);
    int64_t step;
    gr_train_state want = st;
    want.precision = 0;
    CHECK(gr_train_state_restore(ck, &want, "data size", r.m, &opt, &step, &err) != 0);
    CHECK_MSG(strstr(err.msg, "--precision bf16"), "%s", err.msg);
    want.precision = 1;
    CHECK_MSG(gr_train_state_restore(ck, &want, "data size", r.m, &opt, &step, &err) == 0, "%s", err.msg);
    CHECK(step == 3);
    gr_adamw_free(&opt);
    unlink(path);
    rmdir(ck);
    rmdir(dir);
    free(z);
    run_close(&r);
}

int main(void) {
    RUN(round_portable_matches_reference);
    RUN(round_avx512_matches_portable);
    RUN(gemm_bf16_matches_rounded_reference);
    RUN(gemm_bf16_vdp_shapes_and_threads);
    RUN(xent_bf16_prepacked_weight_same_bits);
    RUN(tiny_model_loss_and_grads_near_fp32);
    RUN(short_run_loss_curve_near_fp32);
    RUN(state_records_precision);
    return TEST_EXIT();
}
