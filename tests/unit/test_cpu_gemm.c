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

int main(void) {
    (void)test_shared_dir;
    gr_cpu_isa_set(gr_cpu_isa_max());
    if (!gr_cpu_bf16()) printf("# skip: no AVX512-BF16 here, the vdpbf16ps prefill GEMM is not tested\n");
    else printf("# AVX512-BF16: the vdpbf16ps prefill GEMM is tested at level avx512\n");
    RUN(gemm_matches_double_reference);
    return TEST_EXIT();
}
