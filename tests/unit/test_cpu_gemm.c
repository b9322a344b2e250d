/* The f32 matmul paths: the blocked GEMM of prefill rows (kernels/cpu/gemm.c)
 * and the decode-row kernels (matmul_rows*.c) against a double-precision
 * reference: every tile shape (token counts around the 6-token microkernel and
 * the 3-token decode tiles, row counts around the 4-, 8- and 16-row blocks,
 * columns around the 8-column lanes and 256-column K blocks), F32/F16/BF16
 * weights, 1 and 2 threads, both row kinds, every ISA variant this CPU runs
 * (GR_CPU_ISA levels), BF16 in exact mode and not. Tolerance: 1e-5 · Σ|w x|
 * (f32 accumulation over at most ~1000 terms); BF16 prefill rows on
 * AVX512-BF16 outside exact mode (prefill_bf16.h: x rounded to bf16) against
 * the reference with x rounded the same way, 1e-5 · Σ|w x|, and against the
 * exact one, 2^-8 · Σ|w x|. */
#include "test.h"
#include "backend.h"
#include "isa.h"
#include "quant.h"
#include <stdint.h>

static unsigned rng = 99;
static unsigned next(void) { return rng = rng * 1103515245u + 12345u; }
static float unit(void) { return (float)((next() >> 8) & 0xffff) / 65536.0f - 0.5f; }

TEST(gemm_matches_double_reference) {
    const int shapes[][2] = {{37, 300}, {16, 256}, {48, 576}, {5, 1000}, {33, 40}, {1203, 64}, {21, 36}, {9, 8}, {13, 301}, {7, 9}};
    const int ns[] = {1, 2, 3, 7, 13, 40, 48, 49, 53, 54, 61};
    const int types[] = {GR_F32, GR_F16, GR_BF16};
    static unsigned char kinds[64];
    int keep = gr_cpu_isa;
    for (int isa = GR_ISA_SCALAR; isa <= gr_cpu_isa_max(); isa++)
    for (int kind = 0; kind < 2; kind++)
    for (int th = 1; th <= 2; th++) {
        gr_cpu_isa_set(isa);
        memset(kinds, kind, sizeof kinds);
        gr_backend *be = gr_backend_cpu(th);
        be->decode_rows = kinds;
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            int rows = shapes[si][0], cols = shapes[si][1];
            for (int ti = 0; ti < 3; ti++) {
                int type = types[ti];
                size_t es = type == GR_F32 ? 4 : 2;
                uint8_t *data = malloc((size_t)rows * cols * es);
                float *wf = malloc(sizeof(float) * (size_t)rows * cols);
                for (int i = 0; i < rows * cols; i++) {
                    if (type == GR_F32) {
                        wf[i] = unit();
                        memcpy(data + 4 * (size_t)i, &wf[i], 4);
                    } else {
                        uint16_t h;
                        if (type == GR_BF16) {
                            h = gr_f32_to_bf16(unit());
                            wf[i] = gr_bf16_to_f32(h);
                        } else { /* random normal f16: sign, exponent 10..17, mantissa */
                            h = (uint16_t)((next() >> 8 & 0x8000) | (10 + next() % 8) << 10 | (next() >> 9 & 0x3ff));
                            wf[i] = gr_f16_to_f32(h);
                        }
                        data[2 * (size_t)i] = (uint8_t)h;
                        data[2 * (size_t)i + 1] = (uint8_t)(h >> 8);
                    }
                }
                gr_tensor w = {type, rows, cols, (size_t)cols * es, data};
                /* BF16 twice: exact mode (f32 activations, the f32 GEMM) and not
                 * (prefill rows on AVX512-BF16: the vdpbf16ps GEMM) */
                for (int ex = 0; ex <= (type == GR_BF16); ex++)
                for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
                    int n = ns[ni];
                    be->exact = ex;
                    int bf = type == GR_BF16 && !ex && kind == 0 && gr_cpu_bf16();
                    float *x = malloc(sizeof(float) * (size_t)n * cols), *y = malloc(sizeof(float) * (size_t)n * rows);
                    for (int i = 0; i < n * cols; i++) x[i] = unit();
                    be->matmul(be, y, x, n, &w);
                    for (int t = 0; t < n; t++)
                        for (int r = 0; r < rows; r++) {
                            /* ref: the exact product; refb: with x rounded to bf16,
                             * what the vdpbf16ps GEMM computes (then to f32 rounding) */
                            double ref = 0, refb = 0, mag = 0;
                            for (int k = 0; k < cols; k++) {
                                float xv = x[(size_t)t * cols + k];
                                double p = (double)xv * wf[(size_t)r * cols + k];
                                ref += p;
                                refb += (double)gr_bf16_to_f32(gr_f32_to_bf16(xv)) * wf[(size_t)r * cols + k];
                                mag += fabs(p);
                            }
                            float got = y[(size_t)t * rows + r];
                            /* bf16 activations: within 2^-8 Σ|w x| of the exact product
                             * (2^-9 per term from the rounding of x, and the f32 sum) */
                            CHECK_MSG(fabs(got - (bf ? refb : ref)) <= 1e-5 * mag + 1e-30 &&
                                          (!bf || fabs(got - ref) <= 0x1p-8 * mag + 1e-30),
                                      "%s decode %d exact %d type %d rows %d cols %d n %d threads %d: y[%d][%d] %g vs %g",
                                      gr_cpu_isa_name(isa), kind, ex, type, rows, cols, n, th, t, r, got, bf ? refb : ref);
                        }
                    free(x);
                    free(y);
                }
                free(data);
                free(wf);
            }
        }
        gr_backend_free(be);
    }
    gr_cpu_isa_set(keep);
}

/* The AMX-BF16 prefill block (prefill_bf16_amx.inc): its C model of the tiles
 * everywhere with AVX512-BF16, the tiles themselves where the CPU has AMX.
 * Shapes around its 32-row blocks, its 16-pair K steps (an odd cols' last
 * pair, cols below one step) and its 32-token tiles. Each result within
 * 1e-5 · Σ|w x| of the product with x rounded to bf16 (the vdpbf16ps GEMM's
 * bound); a run of tokens alone gives the bits it gives inside a batch at
 * another offset (batch invariance); 2 threads the bits of 1. */
TEST(bf16_prefill_amx_matches_reference) {
    if (!gr_cpu_bf16()) {
        printf("# skip: no AVX512-BF16, the AMX path (and its model) is not run\n");
        return;
    }
    const int shapes[][2] = {{31, 33}, {32, 32}, {33, 576}, {70, 301}, {64, 65}, {45, 1}, {5, 31}, {40, 96}, {49, 64}};
    const int ns[] = {1, 15, 17, 32, 33, 61};
    int modes[2] = {GR_AMX_EMUL, GR_AMX_HW}, nm = gr_cpu_amx_available() ? 2 : 1;
    if (nm == 1) printf("# skip: no AMX-BF16 here (or Linux refused the tile state): the tiles are not run, their model is\n");
    else printf("# AMX-BF16 here: the tiles are tested as well as their model\n");
    int keep = gr_cpu_amx();
    gr_backend *b1 = gr_backend_cpu(1), *b2 = gr_backend_cpu(2);
    long hw_same = 0, hw_total = 0;
    for (int mi = 0; mi < nm; mi++)
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int rows = shapes[si][0], cols = shapes[si][1];
        uint16_t *data = malloc(sizeof(uint16_t) * (size_t)rows * cols);
        for (int i = 0; i < rows * cols; i++) data[i] = gr_f32_to_bf16(unit());
        gr_tensor w = {GR_BF16, rows, cols, (size_t)cols * 2, data};
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
            int n = ns[ni];
            float *x = malloc(sizeof(float) * (size_t)n * cols), *y = malloc(sizeof(float) * (size_t)n * rows);
            float *y2 = malloc(sizeof(float) * (size_t)n * rows), *ye = malloc(sizeof(float) * (size_t)n * rows);
            for (int i = 0; i < n * cols; i++) x[i] = unit();
            gr_cpu_amx_set(modes[mi]);
            CHECK(gr_cpu_amx() == modes[mi]);
            b1->matmul(b1, y, x, n, &w);
            b2->matmul(b2, y2, x, n, &w);
            CHECK_MSG(!memcmp(y, y2, sizeof(float) * (size_t)n * rows), "mode %d %dx%d n %d: 2 threads differ from 1",
                      modes[mi], rows, cols, n);
            for (int t = 0; t < n; t++)
                for (int r = 0; r < rows; r++) {
                    double refb = 0, mag = 0;
                    for (int k = 0; k < cols; k++) {
                        float xv = x[(size_t)t * cols + k], wv = gr_bf16_to_f32(data[(size_t)r * cols + k]);
                        refb += (double)gr_bf16_to_f32(gr_f32_to_bf16(xv)) * wv;
                        mag += fabs((double)xv * wv);
                    }
                    float got = y[(size_t)t * rows + r];
                    CHECK_MSG(fabs(got - refb) <= 1e-5 * mag + 1e-30, "mode %d %dx%d n %d: y[%d][%d] %g vs %g", modes[mi],
                              rows, cols, n, t, r, got, refb);
                }
            if (n > 5) { /* tokens 5.. alone: other tile positions, the same bits */
                b1->matmul(b1, y2, x + 5 * (size_t)cols, n - 5, &w);
                CHECK_MSG(!memcmp(y + 5 * (size_t)rows, y2, sizeof(float) * (size_t)(n - 5) * rows),
                          "mode %d %dx%d n %d: tokens 5.. alone differ from the batch", modes[mi], rows, cols, n);
            }
            if (modes[mi] == GR_AMX_HW) { /* the model's bits, for the record */
                gr_cpu_amx_set(GR_AMX_EMUL);
                b1->matmul(b1, ye, x, n, &w);
                hw_total++;
                hw_same += !memcmp(y, ye, sizeof(float) * (size_t)n * rows);
            }
            free(x), free(y), free(y2), free(ye);
        }
        free(data);
    }
    if (hw_total) printf("# AMX tiles: %ld of %ld products bit-identical to the model\n", hw_same, hw_total);
    /* where there is no AMX, asking for the tiles leaves it off */
    gr_cpu_amx_set(GR_AMX_HW);
    CHECK(gr_cpu_amx() == (gr_cpu_amx_available() ? GR_AMX_HW : GR_AMX_OFF));
    gr_cpu_amx_set(keep);
    gr_backend_free(b1);
    gr_backend_free(b2);
}

int main(void) {
    (void)test_shared_dir;
    gr_cpu_isa_set(gr_cpu_isa_max());
    if (!gr_cpu_bf16()) printf("# skip: no AVX512-BF16 here, the vdpbf16ps prefill GEMM is not tested\n");
    else printf("# AVX512-BF16: the vdpbf16ps prefill GEMM is tested at level avx512\n");
    RUN(gemm_matches_double_reference);
    RUN(bf16_prefill_amx_matches_reference);
    return TEST_EXIT();
}
