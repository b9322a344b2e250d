/* Batch and thread invariance of the float matmul paths (issue 12 §4): every
 * row is routed by its kind (backend.h decode_rows) to the decode kernel or the
 * GEMM, each with one summation order, so a row's result is bit-identical
 * alone, at the front, middle or end of a batch of any size, mixed with rows of
 * the other kind, at 1 and 2 threads, exact mode and (BF16) not; and the
 * F32/F16/BF16 decode order and GEMM are the same bits on every ISA variant
 * (scalar, AVX2, AVX-512) in exact mode. End to
 * end: gr_generate's sampled tokens and log-probabilities are bit-identical at
 * batch 1, 7 and 32 and 1 and 2 threads on the F32, F16 and BF16 test models
 * (and in exact mode), on every ISA this CPU has. */
#include "test.h"
#include "backend.h"
#include "generate.h"
#include "isa.h"
#include "quant.h"
#include <stdint.h>

static unsigned rng = 7;
static unsigned next(void) { return rng = rng * 1103515245u + 12345u; }
static float unit(void) { return (float)((next() >> 8) & 0xffff) / 65536.0f - 0.5f; }

static void put16(uint8_t *p, uint16_t h) { p[0] = (uint8_t)h; p[1] = (uint8_t)(h >> 8); }

/* a random weight matrix of `type` */
static uint8_t *make_w(int type, int rows, int cols, size_t *row_bytes) {
    size_t rb = type == GR_F32 ? 4u * (size_t)cols : type == GR_Q8_0 ? (size_t)cols / 32 * 34
              : type == GR_Q4_1 ? (size_t)cols / 32 * 20 : 2u * (size_t)cols;
    uint8_t *d = malloc(rb * (size_t)rows);
    for (int r = 0; r < rows; r++) {
        uint8_t *p = d + rb * (size_t)r;
        if (type == GR_F32)
            for (int i = 0; i < cols; i++) { float f = unit(); memcpy(p + 4 * i, &f, 4); }
        else if (type == GR_BF16)
            for (int i = 0; i < cols; i++) put16(p + 2 * i, gr_f32_to_bf16(unit()));
        else if (type == GR_F16)
            for (int i = 0; i < cols; i++)
                put16(p + 2 * i, (uint16_t)((next() >> 8 & 0x8000) | (10 + next() % 8) << 10 | (next() >> 9 & 0x3ff)));
        else {
            size_t bs = type == GR_Q8_0 ? 34 : 20;
            for (int b = 0; b < cols / 32; b++) {
                uint8_t *q = p + bs * (size_t)b;
                put16(q, (uint16_t)(0x1c00 + next() % 0x400));
                if (type == GR_Q4_1) put16(q + 2, (uint16_t)(0x9c00 + next() % 0x400));
                for (size_t i = type == GR_Q8_0 ? 2 : 4; i < bs; i++) q[i] = (uint8_t)(next() >> 12);
            }
        }
    }
    *row_bytes = rb;
    return d;
}

/* Each row's result alone (n = 1, its kind) equals its result inside batches of
 * 1..61 rows of mixed kinds, at 1 and 2 threads, exact and not. */
TEST(rows_batch_invariant_every_isa) {
    const int shapes[][2] = {{37, 320}, {64, 576}, {29, 40}, {50, 1000}, {16, 36}};
    const int types[] = {GR_F32, GR_F16, GR_BF16, GR_Q8_0, GR_Q4_1};
    enum { N = 61 };
    int top = gr_cpu_isa_max(), keep = gr_cpu_isa;
    for (int isa = GR_ISA_SCALAR; isa <= top; isa++) {
        gr_cpu_isa_set(isa);
        for (int th = 1; th <= 2; th++) {
            gr_backend *be = gr_backend_cpu(th);
            for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
                int rows = shapes[si][0], cols = shapes[si][1];
                /* exact mode; and BF16 outside it too (its prefill rows on
                 * AVX512-BF16: the vdpbf16ps GEMM, prefill_bf16.h) */
                for (size_t ti = 0; ti <= sizeof types / sizeof *types; ti++) {
                    int type = ti < sizeof types / sizeof *types ? types[ti] : GR_BF16;
                    be->exact = ti < sizeof types / sizeof *types;
                    if ((type == GR_Q8_0 || type == GR_Q4_1) && cols % 32) continue;
                    size_t rb;
                    uint8_t *data = make_w(type, rows, cols, &rb);
                    gr_tensor w = {type, rows, cols, rb, data};
                    float *x = malloc(sizeof(float) * N * (size_t)cols), *y = malloc(sizeof(float) * N * (size_t)rows);
                    float *alone = malloc(sizeof(float) * N * (size_t)rows);
                    unsigned char kind[N];
                    for (int i = 0; i < N * cols; i++) x[i] = unit();
                    for (int t = 0; t < N; t++) kind[t] = next() % 3 == 0;
                    for (int t = 0; t < N; t++) {
                        be->decode_rows = kind + t;
                        be->matmul(be, alone + (size_t)t * rows, x + (size_t)t * cols, 1, &w);
                    }
                    const int ns[] = {1, 2, 3, 7, 32, 47, 48, 61};
                    for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
                        for (int mode = 0; mode < 3; mode++) { /* as drawn, all decode, all prefill */
                            int n = ns[ni], off = N - n;
                            unsigned char k2[N];
                            for (int t = 0; t < n; t++) k2[t] = mode == 0 ? kind[off + t] : mode == 1;
                            be->decode_rows = k2;
                            be->matmul(be, y, x + (size_t)off * cols, n, &w);
                            for (int t = 0; t < n; t++) {
                                if (k2[t] != kind[off + t]) continue;
                                CHECK_MSG(!memcmp(y + (size_t)t * rows, alone + (size_t)(off + t) * rows,
                                                  sizeof(float) * (size_t)rows),
                                          "%s type %d exact %d %dx%d: row %d (decode %d) of %d differs from alone, %d threads",
                                          gr_cpu_isa_name(isa), type, be->exact, rows, cols, t, k2[t], n, th);
                            }
                        }
                    be->decode_rows = NULL;
                    free(x); free(y); free(alone); free(data);
                }
            }
            gr_backend_free(be);
        }
    }
    gr_cpu_isa_set(keep);
}

/* F32/F16/BF16: both kinds give the same bits on every ISA (one order each),
 * in exact mode (outside it, BF16 prefill rows on AVX512-BF16 round x to bf16:
 * prefill_bf16.h, checked against references in test_cpu_gemm.c). */
TEST(float_kinds_same_bits_every_isa) {
    const int types[] = {GR_F32, GR_F16, GR_BF16};
    /* shapes: an edge block of 13 rows and a K-block tail; 21 x 301: columns
     * not a multiple of 8 (the conversions' and packings' scalar tails). Token
     * counts: 1, 13 and 25 (every AVX-512 tile height from 1 to 12 reached
     * through the 13- and 25-token batches' last tiles, and the 6-token tiles
     * of the other levels). */
    const int shapes[][2] = {{45, 584}, {21, 301}};
    enum { MAXR = 45, MAXC = 584, N = 25 };
    int top = gr_cpu_isa_max(), keep = gr_cpu_isa;
    gr_backend *be = gr_backend_cpu(2);
    be->exact = 1;
    static float x[N * MAXC], y0[N * MAXR], y[N * MAXR];
    for (int i = 0; i < N * MAXC; i++) x[i] = unit();
    for (int si = 0; si < 2; si++)
    for (int ti = 0; ti < 3; ti++) {
        int rows = shapes[si][0], cols = shapes[si][1];
        size_t rb;
        uint8_t *data = make_w(types[ti], rows, cols, &rb);
        gr_tensor w = {types[ti], rows, cols, rb, data};
        for (int kind = 0; kind < 2; kind++) {
            unsigned char k[N];
            memset(k, kind, sizeof k);
            be->decode_rows = k;
            for (int n = 1; n <= N; n += 12) {
                gr_cpu_isa_set(GR_ISA_SCALAR);
                be->matmul(be, y0, x, n, &w);
                for (int isa = GR_ISA_SCALAR + 1; isa <= top; isa++) {
                    gr_cpu_isa_set(isa);
                    be->matmul(be, y, x, n, &w);
                    CHECK_MSG(!memcmp(y0, y, sizeof(float) * (size_t)n * (size_t)rows),
                              "type %d %dx%d kind %d n %d: %s differs from scalar", types[ti], rows, cols, kind, n,
                              gr_cpu_isa_name(isa));
                }
            }
        }
        be->decode_rows = NULL;
        free(data);
    }
    gr_backend_free(be);
    gr_cpu_isa_set(keep);
}

/* matmul_x (several weights of one x: q/k/v, gate/up) gives each weight's
 * matmul bits: decode rows (one pool run over all the weights' tasks), prefill
 * and mixed rows and quantized weights (one call each), 1 and 2 threads,
 * every ISA level, 1, 2 and 5 tokens; weights of three sizes (a small one
 * whose tasks are few). */
TEST(matmul_x_same_bits_as_matmul) {
    const int types[] = {GR_F32, GR_F16, GR_BF16, GR_Q8_0};
    const int rows[3] = {64, 24, 200};
    enum { COLS = 320, N = 5 };
    static float x[N * COLS], y1[3][N * 200], y2[3][N * 200];
    for (int i = 0; i < N * COLS; i++) x[i] = unit();
    int top = gr_cpu_isa_max(), keep = gr_cpu_isa;
    for (int isa = GR_ISA_SCALAR; isa <= top; isa++)
    for (int th = 1; th <= 2; th++) {
        gr_cpu_isa_set(isa);
        gr_backend *be = gr_backend_cpu(th);
        CHECK(be->matmul_x != NULL);
        for (int ti = 0; ti < 4; ti++) {
            uint8_t *data[3];
            gr_tensor w[3];
            const gr_tensor *ws[3];
            for (int i = 0; i < 3; i++) {
                size_t rb;
                data[i] = make_w(types[ti], rows[i], COLS, &rb);
                w[i] = (gr_tensor){types[ti], rows[i], COLS, rb, data[i]};
                ws[i] = &w[i];
            }
            const unsigned char all_dec[N] = {1, 1, 1, 1, 1}, mixed[N] = {1, 0, 1, 0, 0};
            const unsigned char *kinds[3] = {all_dec, mixed, NULL};
            for (int ki = 0; ki < 3; ki++)
            for (int n = 1; n <= N; n += n < 2 ? 1 : 3) {
                be->decode_rows = kinds[ki];
                for (int i = 0; i < 3; i++) be->matmul(be, y1[i], x, n, ws[i]);
                float *ys[3] = {y2[0], y2[1], y2[2]};
                for (int m = 2; m <= 3; m++) {
                    memset(y2, 0xff, sizeof y2);
                    be->matmul_x(be, ys, ws, m, x, n);
                    for (int i = 0; i < m; i++)
                        CHECK_MSG(!memcmp(y1[i], y2[i], sizeof(float) * (size_t)n * (size_t)rows[i]),
                                  "%s threads %d type %d kinds %d n %d m %d: weight %d differs", gr_cpu_isa_name(isa),
                                  th, types[ti], ki, n, m, i);
                }
            }
            be->decode_rows = NULL;
            for (int i = 0; i < 3; i++) free(data[i]);
        }
        gr_backend_free(be);
    }
    gr_cpu_isa_set(keep);
}

static gr_model *load(const char *name, gr_err *err) {
    char path[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(path, sizeof path, "%s/testdata/models/%s", root ? root : ".", name);
    return gr_model_load(path, err);
}

enum { NREQ = 33, NEW = 12 };

static gr_gen_req *gen(gr_model *m, int threads, int batch, int exact, int **prompts, int *np) {
    gr_err err;
    gr_backend *be = gr_backend_cpu(threads);
    be->exact = exact;
    gr_ctx *c = gr_ctx_new(m, be);
    gr_gen_req *r = calloc(NREQ, sizeof *r);
    for (int i = 0; i < NREQ; i++) {
        r[i].prompt = prompts[i % 5];
        r[i].n_prompt = np[i % 5];
        r[i].stream = (uint64_t)i;
    }
    gr_gen_opts o = {.sampler = {0.9f, 1.0f, 0}, .seed = 5, .max_tokens = NEW, .max_batch = batch, .logprobs = 1};
    o.prefix = prompts[0];
    o.n_prefix = 3;
    if (gr_generate(c, r, NREQ, &o, NULL, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        free(r);
        r = NULL;
    }
    gr_ctx_free(c);
    gr_backend_free(be);
    return r;
}

/* bit for bit: the same ids and the same log-probability bits */
static int identical(const gr_gen_req *a, const gr_gen_req *b) {
    for (int i = 0; i < NREQ; i++) {
        if (a[i].n_out != b[i].n_out || a[i].stop != b[i].stop) return 0;
        if (memcmp(a[i].out, b[i].out, sizeof(int) * (size_t)a[i].n_out)) return 0;
        if (memcmp(a[i].logprobs, b[i].logprobs, sizeof(float) * (size_t)a[i].n_out)) return 0;
    }
    return 1;
}

TEST(generate_logprobs_batch_invariant) {
    const char *models[] = {"tiny-gqa-tied", "tiny-oddhead-f16", "tiny-llama3-bf16"};
    int top = gr_cpu_isa_max(), keep = gr_cpu_isa;
    /* prompts of 3 to 60 tokens: alone some are under the GEMM's old 48-token
     * threshold, batched they are not */
    int lens[5] = {9, 3, 60, 17, 41}, *p[5];
    for (int i = 0; i < 5; i++) {
        p[i] = malloc(sizeof(int) * (size_t)lens[i]);
        for (int k = 0; k < lens[i]; k++) p[i][k] = k < 3 ? 10 + k : 3 + (int)(next() % 280);
    }
    for (size_t mi = 0; mi < 3; mi++) {
        gr_err err;
        gr_model *m = load(models[mi], &err);
        CHECK_MSG(m, "%s", err.msg);
        m->cfg.n_eos = 0;
        for (int isa = GR_ISA_SCALAR; isa <= top; isa++) {
            gr_cpu_isa_set(isa);
            for (int exact = 0; exact < 2; exact++) {
                gr_gen_req *ref = gen(m, 1, 1, exact, p, lens);
                CHECK(ref);
                const int batches[] = {1, 7, 32}, threads[] = {1, 2};
                for (int bi = 0; bi < 3; bi++)
                    for (int ti = 0; ti < 2; ti++) {
                        if (bi == 0 && ti == 0) continue;
                        gr_gen_req *r = gen(m, threads[ti], batches[bi], exact, p, lens);
                        CHECK(r);
                        int same = identical(ref, r);
                        for (int i = 0; i < NREQ; i++) gr_gen_req_free(&r[i]);
                        free(r);
                        CHECK_MSG(same, "%s %s exact %d: batch %d threads %d differs from batch 1 thread 1",
                                  models[mi], gr_cpu_isa_name(isa), exact, batches[bi], threads[ti]);
                    }
                for (int i = 0; i < NREQ; i++) gr_gen_req_free(&ref[i]);
                free(ref);
            }
        }
        gr_model_free(m);
    }
    for (int i = 0; i < 5; i++) free(p[i]);
    gr_cpu_isa_set(keep);
}

int main(void) {
    (void)test_shared_dir;
    printf("# %s\n", gr_cpu_describe());
    RUN(rows_batch_invariant_every_isa);
    RUN(float_kinds_same_bits_every_isa);
    RUN(matmul_x_same_bits_as_matmul);
    RUN(generate_logprobs_batch_invariant);
    return TEST_EXIT();
}
