/* The portable row kernels (see matmul_rows.h): what NATIVE=0 builds run, and
 * the reference the SIMD versions are tested against. */
#include "matmul_rows.h"
#include "quant.h"

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
