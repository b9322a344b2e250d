/* The AVX2/FMA attention row kernel (see attention.h). */
#include "attention.h"
#if GR_CPU_AVX2
#include "cpu_expf.h"
#include "forward.h"
#include "matmul_rows.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

void gr_att_row_avx2(float *o, const float *qv, const gr_kv *kv, int layer, int kvh, int hd, int P, float *sc) {
    float scale = 1.0f / sqrtf((float)hd), mx = -INFINITY;
    int p = 0;
    /* Keys in groups of four, each group's four sums reduced together (hadd);
     * two groups at a time keep eight FMA chains in flight (one key's sum is a
     * chain of hd/8 dependent FMAs). A score does not depend on the grouping. */
    if (hd % 8 == 0) {
        __m128 m4 = _mm_set1_ps(-INFINITY);
        const __m128 vs = _mm_set1_ps(scale);
        for (; p + 4 <= P + 1;) {
            int nk = p + 8 <= P + 1 ? 8 : 4;
            const float *k[8];
            __m256 a[8];
            for (int u = 0; u < 8; u++) {
                k[u] = gr_kv_k(kv, layer, p + (u < nk ? u : 0)) + kvh * hd;
                a[u] = _mm256_setzero_ps();
            }
            for (int i = 0; i < hd; i += 8) {
                __m256 qq = _mm256_loadu_ps(qv + i);
#pragma GCC unroll 8
                for (int u = 0; u < 8; u++) a[u] = _mm256_fmadd_ps(qq, _mm256_loadu_ps(k[u] + i), a[u]);
            }
            for (int g = 0; g < nk; g += 4) {
                __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a[g], a[g + 1]), _mm256_hadd_ps(a[g + 2], a[g + 3]));
                __m128 s4 = _mm_mul_ps(_mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)), vs);
                _mm_storeu_ps(sc + p + g, s4);
                /* max_ps(s4, m4) passes over a NaN score as the scalar compare does */
                m4 = _mm_max_ps(s4, m4);
            }
            p += nk;
        }
        float t4[4];
        _mm_storeu_ps(t4, m4);
        for (int u = 0; u < 4; u++)
            if (t4[u] > mx) mx = t4[u];
    }
    for (; p <= P; p++) {
        const float *kp = gr_kv_k(kv, layer, p) + kvh * hd;
        float s;
        if (hd % 8 == 0) {
            __m256 a = _mm256_setzero_ps();
            for (int i = 0; i < hd; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(qv + i), _mm256_loadu_ps(kp + i), a);
            s = hsum8(a);
        } else
            s = gr_dot_f32_avx2(qv, kp, hd);
        s *= scale;
        sc[p] = s;
        if (s > mx) mx = s;
    }
    /* gr_expf_n returns expf's values: the same weights as one expf per score */
    for (p = 0; p <= P; p++) sc[p] -= mx;
    gr_expf_n(sc, P + 1);
    float sum = 0;
    for (p = 0; p <= P; p++) sum += sc[p];
    memset(o, 0, sizeof(float) * (size_t)hd);
    float inv = 1.0f / sum;
    /* 64 output values at a time stay in registers over all positions */
    if (hd % 64 == 0) {
        for (int i0 = 0; i0 < hd; i0 += 64) {
            __m256 c[8];
            for (int u = 0; u < 8; u++) c[u] = _mm256_setzero_ps();
            for (int q = 0; q <= P; q++) {
                const float *vv = gr_kv_v(kv, layer, q) + kvh * hd + i0;
                __m256 va = _mm256_set1_ps(sc[q] * inv);
#pragma GCC unroll 8
                for (int u = 0; u < 8; u++) c[u] = _mm256_fmadd_ps(va, _mm256_loadu_ps(vv + 8 * u), c[u]);
            }
            for (int u = 0; u < 8; u++) _mm256_storeu_ps(o + i0 + 8 * u, c[u]);
        }
        return;
    }
    for (p = 0; p <= P; p++) {
        const float *vv = gr_kv_v(kv, layer, p) + kvh * hd;
        float a = sc[p] * inv;
        int i = 0;
        __m256 va = _mm256_set1_ps(a);
        for (; i + 8 <= hd; i += 8)
            _mm256_storeu_ps(o + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(vv + i), _mm256_loadu_ps(o + i)));
        for (; i < hd; i++) o[i] += a * vv[i];
    }
}
#else
typedef int gr_attention_avx2_empty; /* ISO C: no empty file */
#endif
