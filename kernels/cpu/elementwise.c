/* The row-wise ops: embedding lookup, RMSNorm, RoPE, SwiGLU, residual add.
 * SwiGLU's eight-lane form is in elementwise_avx2.c (exact expf: the same bits). */
#include "cpu_backend.h"
#include "matmul_rows.h"
#include <math.h>
#include <string.h>

int64_t gr_swiglu_avx2(float *out, const float *g, const float *u, int64_t n);

void gr_cpu_embedding(gr_backend *b, float *out, const gr_tensor *emb, const int *tokens, int n) {
    (void)b;
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * (size_t)emb->cols;
        const float *r = gr_row_f32(emb, tokens[i], o);
        if (r != o) memcpy(o, r, sizeof(float) * (size_t)emb->cols);
    }
}

void gr_cpu_rmsnorm(gr_backend *b, float *out, const float *x, const float *w, int n, int dim,
                    float eps) {
    (void)b;
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * dim;
        float *ot = out + (size_t)t * dim;
        float ss = gr_dot_f32(xt, xt, dim) / (float)dim;
        float inv = 1.0f / sqrtf(ss + eps);
        for (int i = 0; i < dim; i++) ot[i] = w[i] * (xt[i] * inv);
    }
}

void gr_cpu_rope(gr_backend *b, float *x, const int *pos, int n, int n_heads, int hd,
                 const float *inv) {
    (void)b;
    int half = hd / 2;
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < half; i++) {
            float ang = (float)pos[t] * inv[i]; /* fp32, as transformers */
            float c = cosf(ang), s = sinf(ang);
            for (int h = 0; h < n_heads; h++) {
                float *v = x + ((size_t)t * n_heads + h) * hd;
                float a = v[i], bb = v[i + half];
                v[i] = a * c - bb * s;
                v[i + half] = bb * c + a * s;
            }
        }
    }
}

void gr_cpu_swiglu(gr_backend *b, float *out, const float *g, const float *u, int64_t n) {
    (void)b;
    int64_t i = 0;
#if GR_CPU_X86
    if (gr_cpu_isa >= GR_ISA_AVX2) i = gr_swiglu_avx2(out, g, u, n);
#endif
    for (; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void gr_cpu_add(gr_backend *b, float *y, const float *x, int64_t n) {
    (void)b;
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}
