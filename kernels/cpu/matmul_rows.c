/* The portable row kernels (see matmul_rows.h): what a CPU without AVX2 runs
 * (or GR_CPU_ISA=scalar), and the reference the SIMD versions are tested against. */
#include "matmul_rows.h"
#include "quant.h"
#include <math.h>

float gr_dot_f32_scalar(const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    float s = 0;
    float acc[8] = {0};
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    for (int j = 0; j < 8; j++) s += acc[j];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

const float *gr_row_f32_scalar(const gr_tensor *w, int64_t r, float *buf) {
    const uint8_t *p = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
    int64_t n = w->cols;
    switch (w->type) {
    case GR_F32:
        return (const float *)p;
    case GR_BF16:
        for (int64_t i = 0; i < n; i++) buf[i] = gr_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return buf;
    case GR_F16:
        for (int64_t i = 0; i < n; i++) buf[i] = gr_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return buf;
    default:
        gr_dequantize(w->type, p, buf, n);
        return buf;
    }
}

/* the decode order (matmul_rows.h), written out */
float gr_dec_dot_scalar(const float *w, const float *x, int64_t cols) {
    float a[8] = {0};
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8)
        for (int j = 0; j < 8; j++) a[j] = fmaf(x[k + j], w[k + j], a[j]);
    float s = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
    for (; k < cols; k++) s += x[k] * w[k];
    return s;
}

void gr_dec_rows_scalar(const gr_tensor *w, int64_t r0, int64_t r1, const float *x, int n, float *y,
                        int64_t ldy, float *buf) {
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = gr_row_f32_scalar(w, r, buf);
        for (int t = 0; t < n; t++) y[(size_t)t * ldy + r] = gr_dec_dot_scalar(wr, x + (size_t)t * w->cols, w->cols);
    }
}
