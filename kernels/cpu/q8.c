/* Integer weight × 8-bit activation dot products (see q8.h). Weight blocks:
 *   Q8_0 (34 bytes): f16 d, int8 q[32]                 w = d*q
 *   Q4_0 (18): f16 d, u8 q[16]; lo nibbles are w[0..15], hi w[16..31]; w = d*(nib-8)
 *   Q4_1 (20): f16 d, f16 m, u8 q[16], same order;      w = d*nib + m
 * so a block's contribution is dw*dx*Σ q_w q_x (Q8_0), dw*dx*(Σ nib q_x - 8 s)
 * (Q4_0) and dw*dx*Σ nib q_x + m*dx*s (Q4_1), with the integer sums exact. */
#include "q8.h"
#include "cpu_backend.h"
#include "isa.h"
#include "model.h"
#include "quant.h"
#include <math.h>
#include <string.h>

int gr_q8_supported(int type, int64_t cols) {
    return (type == GR_Q8_0 || type == GR_Q4_0 || type == GR_Q4_1) && cols > 0 && cols % 32 == 0;
}

void gr_q8_quantize_scalar(const float *x, int64_t cols, int8_t *q, float *d, int32_t *s) {
    for (int64_t b = 0; b < cols / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0;
        for (int i = 0; i < 32; i++) {
            float a = fabsf(xb[i]);
            if (a > amax) amax = a;
        }
        float db = amax / 127.0f, id = db > 0 ? 1.0f / db : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            /* |xb*id| <= 127 up to rounding of id: clamp so a q never wraps */
            float v = nearbyintf(xb[i] * id);
            int qi = v > 127 ? 127 : v < -127 ? -127 : (int)v;
            q[32 * b + i] = (int8_t)qi;
            sum += qi;
        }
        d[b] = db;
        s[b] = sum;
    }
}

static inline float f16_at(const uint8_t *p) { return gr_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* The scalar integer sums below must never be auto-vectorized. GCC 12 with
 * AVX-VNNI or AVX512-VNNI enabled (-march=native on Ice Lake and later, Sapphire
 * Rapids, Zen 4) turns a signed x signed int8 multiply-accumulate loop into
 * vpdpbusd, which multiplies *unsigned* by signed bytes: wrong sums (seen as
 * test_cpu_q8's "scalar -0.0131705, exact 0.0174377"). Passing each product
 * through an empty asm statement hides it from the vectorizer's dot-product
 * pattern, whatever the compiler version and -march: the scalar path is the
 * reference the SIMD paths are tested against, so it has to be right first. */
#define GR_OPAQUE_INT(v) __asm__("" : "+r"(v))

/* One block of the scalar dot: w at the block's bytes, q its 32 activations;
 * returns the weight block's size. */
static size_t block_scalar(int type, const uint8_t *w, const int8_t *q, float d, int32_t s, float *acc) {
    int32_t sumi = 0;
    if (type == GR_Q8_0) {
        for (int i = 0; i < 32; i++) {
            int32_t p = (int8_t)w[2 + i] * q[i];
            GR_OPAQUE_INT(p);
            sumi += p;
        }
        *acc += f16_at(w) * d * (float)sumi;
        return 34;
    }
    int q41 = type == GR_Q4_1;
    const uint8_t *nb = w + (q41 ? 4 : 2);
    for (int i = 0; i < 16; i++) {
        int32_t p = (nb[i] & 0xF) * q[i] + (nb[i] >> 4) * q[i + 16];
        GR_OPAQUE_INT(p);
        sumi += p;
    }
    float dw = f16_at(w);
    if (q41)
        *acc += dw * d * (float)sumi + f16_at(w + 2) * d * (float)s;
    else
        *acc += dw * d * (float)(sumi - 8 * s);
    return q41 ? 20 : 18;
}

float gr_q8_dot_scalar(int type, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s,
                       int64_t cols) {
    float acc = 0;
    for (int64_t b = 0; b < cols / 32; b++) w += block_scalar(type, w, q + 32 * b, d[b], s[b], &acc);
    return acc;
}

void gr_q8_pack8(const int8_t *q, const float *d, const int32_t *s, int64_t cols, int8_t *pq,
                 float *pd, int32_t *ps) {
    int64_t nb = cols / 32;
    for (int64_t b = 0; b < nb; b++)
        for (int t = 0; t < 8; t++) {
            for (int g = 0; g < 8; g++)
                memcpy(pq + 32 * (8 * b + g) + 4 * t, q + (size_t)t * (size_t)cols + 32 * b + 4 * g, 4);
            pd[8 * b + t] = d[(size_t)t * (size_t)nb + (size_t)b];
            ps[8 * b + t] = s[(size_t)t * (size_t)nb + (size_t)b];
        }
}

void gr_q8_abs_scalar(const uint8_t *w, int64_t cols, uint8_t *aw) {
    for (int64_t b = 0; b < cols / 32; b++, w += 34, aw += 32) {
        for (int i = 0; i < 32; i++) {
            int v = (int8_t)w[2 + i];
            aw[i] = (uint8_t)(v < 0 ? -v : v);
        }
    }
}

void gr_q8_dot8_scalar(int type, const uint8_t *w, const uint8_t *aw, const int8_t *pq, const float *pd,
                const int32_t *ps, int64_t cols, float out[8]) {
    (void)aw;
    for (int t = 0; t < 8; t++) {
        const uint8_t *wb = w;
        float acc = 0;
        for (int64_t b = 0; b < cols / 32; b++) {
            int8_t qb[32];
            for (int g = 0; g < 8; g++) memcpy(qb + 4 * g, pq + 32 * (8 * b + g) + 4 * t, 4);
            wb += block_scalar(type, wb, qb, pd[8 * b + t], ps[8 * b + t], &acc);
        }
        out[t] = acc;
    }
}

/* The variants gr_cpu_isa selects (q8_avx2.c; q8_avx512.c where the CPU has AVX512-VNNI) */
void gr_q8_quantize(const float *x, int64_t cols, int8_t *q, float *d, int32_t *s) {
#if GR_CPU_X86
    if (gr_cpu_isa >= GR_ISA_AVX2) { gr_q8_quantize_avx2(x, cols, q, d, s); return; }
#endif
    gr_q8_quantize_scalar(x, cols, q, d, s);
}

float gr_q8_dot(int type, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s,
                int64_t cols) {
#if GR_CPU_X86
    if (gr_cpu_vnni()) return gr_q8_dot_avx512(type, w, q, d, s, cols);
    if (gr_cpu_isa >= GR_ISA_AVX2) return gr_q8_dot_avx2(type, w, q, d, s, cols);
#endif
    return gr_q8_dot_scalar(type, w, q, d, s, cols);
}

void gr_q8_dot8(int type, const uint8_t *w, const uint8_t *aw, const int8_t *pq, const float *pd,
                const int32_t *ps, int64_t cols, float out[8]) {
#if GR_CPU_X86
    if (gr_cpu_vnni()) { gr_q8_dot8_avx512(type, w, aw, pq, pd, ps, cols, out); return; }
    if (gr_cpu_isa >= GR_ISA_AVX2) { gr_q8_dot8_avx2(type, w, aw, pq, pd, ps, cols, out); return; }
#endif
    gr_q8_dot8_scalar(type, w, aw, pq, pd, ps, cols, out);
}

void gr_q8_abs(const uint8_t *w, int64_t cols, uint8_t *aw) {
#if GR_CPU_X86
    if (gr_cpu_isa >= GR_ISA_AVX2) { gr_q8_abs_avx2(w, cols, aw); return; }
#endif
    gr_q8_abs_scalar(w, cols, aw);
}

void gr_q8_dot8x(const uint8_t *w, uint8_t *aw, const int8_t *pq, const float *pd, const int32_t *ps,
                 int64_t cols, int ng, float *out, size_t ostride) {
#if GR_CPU_X86
    if (gr_cpu_vnni()) { gr_q8_dot8x_avx512(w, pq, pd, cols, ng, out, ostride); return; }
#endif
    if (aw && ng > 1) gr_q8_abs(w, cols, aw);
    for (int g = 0; g < ng; g++)
        gr_q8_dot8(GR_Q8_0, w, ng > 1 ? aw : NULL, pq + (size_t)g * 8 * (size_t)cols, pd + (size_t)g * (size_t)(cols / 4),
                   ps + (size_t)g * (size_t)(cols / 4), cols, out + (size_t)g * ostride);
}
