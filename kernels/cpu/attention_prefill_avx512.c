/* The AVX-512 parts of the prefill attention (see attention_prefill.h): key
 * transposes, the 12-query x 32-key score tile, the row softmax and the
 * 6-query x 64-dim P·V tile, each lane one chain in the stated order. */
#include "cpu_backend.h"
#if defined(__AVX512F__) && GR_CPU_AVX2
#include "attention_prefill.h"
#include "cpu_expf.h"
#include "kv_cache.h"
#include <immintrin.h>
#include <math.h>

/* 16 x 16 transpose of floats: r[i] (row i) to r[j] (column j) */
static void tr16(__m512 *r) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    __m512 u[16];
    for (int i = 0; i < 4; i++) {
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[4 * i]), _mm512_castps_pd(t[4 * i + 2])));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[4 * i]), _mm512_castps_pd(t[4 * i + 2])));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[4 * i + 1]), _mm512_castps_pd(t[4 * i + 3])));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[4 * i + 1]), _mm512_castps_pd(t[4 * i + 3])));
    }
    for (int j = 0; j < 4; j++) {
        __m512 v = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), w = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88), w2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
        r[j] = _mm512_shuffle_f32x4(v, v2, 0x88);
        r[j + 4] = _mm512_shuffle_f32x4(w, w2, 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(v, v2, 0xdd);
        r[j + 12] = _mm512_shuffle_f32x4(w, w2, 0xdd);
    }
}

void gr_ap_pack_k_avx512(float *kt, const gr_kv *kv, int layer, int g, int hd, int nblk) {
    for (int b = 0; b < nblk; b++) {
        const float *k0 = gr_kv_k(kv, layer, 16 * b) + (size_t)g * hd;
        size_t kvd = (size_t)kv->pool->lay.kv_dim;
        float *o = kt + (size_t)b * hd * 16;
        for (int d0 = 0; d0 < hd; d0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(k0 + i * kvd + d0);
            tr16(r);
            for (int j = 0; j < 16; j++) _mm512_storeu_ps(o + (size_t)(d0 + j) * 16, r[j]);
        }
    }
}

void gr_ap_scores_avx512(float *S, int ld, const float *const *q, int m, const float *kt, int hd, int nblk,
                         float scale) {
    const float *qq[GR_AP_TQ];
    for (int i = 0; i < GR_AP_TQ; i++) qq[i] = q[i < m ? i : 0];
    const __m512 vs = _mm512_set1_ps(scale);
    int b = 0;
    for (; b + 2 <= nblk; b += 2) {
        const float *k0 = kt + (size_t)b * hd * 16, *k1 = k0 + (size_t)hd * 16;
        __m512 c[GR_AP_TQ][2];
        for (int i = 0; i < GR_AP_TQ; i++) c[i][0] = c[i][1] = _mm512_setzero_ps();
        for (int d = 0; d < hd; d++) {
            __m512 w0 = _mm512_loadu_ps(k0 + 16 * d), w1 = _mm512_loadu_ps(k1 + 16 * d);
#pragma GCC unroll 12
            for (int i = 0; i < GR_AP_TQ; i++) {
                __m512 x = _mm512_set1_ps(qq[i][d]);
                c[i][0] = _mm512_fmadd_ps(x, w0, c[i][0]);
                c[i][1] = _mm512_fmadd_ps(x, w1, c[i][1]);
            }
        }
        for (int i = 0; i < GR_AP_TQ; i++) { /* rows past m: S's spare rows */
            _mm512_storeu_ps(S + (size_t)i * ld + 16 * b, _mm512_mul_ps(c[i][0], vs));
            _mm512_storeu_ps(S + (size_t)i * ld + 16 * b + 16, _mm512_mul_ps(c[i][1], vs));
        }
    }
    if (b < nblk) {
        const float *k0 = kt + (size_t)b * hd * 16;
        __m512 c[GR_AP_TQ];
        for (int i = 0; i < GR_AP_TQ; i++) c[i] = _mm512_setzero_ps();
        for (int d = 0; d < hd; d++) {
            __m512 w0 = _mm512_loadu_ps(k0 + 16 * d);
#pragma GCC unroll 12
            for (int i = 0; i < GR_AP_TQ; i++) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(qq[i][d]), w0, c[i]);
        }
        for (int i = 0; i < GR_AP_TQ; i++) _mm512_storeu_ps(S + (size_t)i * ld + 16 * b, _mm512_mul_ps(c[i], vs));
    }
}

void gr_ap_softmax_avx512(float *sc, int P) {
    int n = P + 1, p = 0;
    __m512 m = _mm512_set1_ps(-INFINITY);
    /* max_ps(s, m) returns m where s is NaN: a NaN score is passed over */
    for (; p + 16 <= n; p += 16) m = _mm512_max_ps(_mm512_loadu_ps(sc + p), m);
    __mmask16 tail = (__mmask16)((1u << (n - p)) - 1);
    if (p < n) m = _mm512_mask_max_ps(m, tail, _mm512_maskz_loadu_ps(tail, sc + p), m);
    float mx = _mm512_reduce_max_ps(m);
    const __m512 vm = _mm512_set1_ps(mx);
    for (p = 0; p + 16 <= n; p += 16) _mm512_storeu_ps(sc + p, _mm512_sub_ps(_mm512_loadu_ps(sc + p), vm));
    if (p < n) _mm512_mask_storeu_ps(sc + p, tail, _mm512_sub_ps(_mm512_maskz_loadu_ps(tail, sc + p), vm));
    gr_expf_n(sc, n);
    __m512 s = _mm512_setzero_ps();
    for (p = 0; p + 16 <= n; p += 16) s = _mm512_add_ps(s, _mm512_loadu_ps(sc + p));
    if (p < n) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail, sc + p));
    float l[16];
    _mm512_storeu_ps(l, s);
    for (int w = 8; w; w >>= 1)
        for (int i = 0; i < w; i++) l[i] += l[i + w];
    const __m512 vi = _mm512_set1_ps(1.0f / l[0]);
    for (p = 0; p + 16 <= n; p += 16) _mm512_storeu_ps(sc + p, _mm512_mul_ps(_mm512_loadu_ps(sc + p), vi));
    if (p < n) _mm512_mask_storeu_ps(sc + p, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, sc + p), vi));
}

/* NZ zmm of dims (16 NZ from off) for 6 rows (rows past m repeat row 0 into a
 * sink); every row index is a constant after unrolling, so the 24
 * accumulators stay in registers. Past a row's own last position its chain
 * is left as it is (a masked FMA), not fed zeros. */
#define PV(NAME, NZ)                                                                                   \
    static void NAME(float *const *o, const float *const *a, const int *P, int m, const gr_kv *kv,     \
                     int layer, size_t off) {                                                          \
        __m512 c[GR_AP_PV][NZ];                                                                        \
        const float *aa[GR_AP_PV];                                                                     \
        int pp[GR_AP_PV], pmin = P[0], pmax = P[0];                                                    \
        float sink[16 * NZ];                                                                           \
        float *oo[GR_AP_PV];                                                                           \
        for (int i = 0; i < GR_AP_PV; i++) {                                                           \
            aa[i] = a[i < m ? i : 0];                                                                  \
            pp[i] = P[i < m ? i : 0];                                                                  \
            oo[i] = i < m ? o[i] : sink;                                                               \
            if (pp[i] < pmin) pmin = pp[i];                                                            \
            if (pp[i] > pmax) pmax = pp[i];                                                            \
        }                                                                                              \
        for (int i = 0; i < GR_AP_PV; i++)                                                             \
            for (int z = 0; z < NZ; z++) c[i][z] = _mm512_setzero_ps();                               \
        size_t kvd = (size_t)kv->pool->lay.kv_dim;                                                     \
        for (int b0 = 0; b0 <= pmax; b0 += 16) {                                                       \
            const float *vb = gr_kv_v(kv, layer, b0) + off;                                            \
            int e = b0 + 15 < pmin ? b0 + 15 : pmin; /* every row takes p <= e */                      \
            int p = b0;                                                                                \
            for (; p <= e; p++) {                                                                      \
                const float *vp = vb + (size_t)(p - b0) * kvd;                                         \
                __m512 v[NZ];                                                                          \
                for (int z = 0; z < NZ; z++) v[z] = _mm512_loadu_ps(vp + 16 * z);                      \
                _Pragma("GCC unroll 6") for (int i = 0; i < GR_AP_PV; i++) {                           \
                    __m512 x = _mm512_set1_ps(aa[i][p]);                                               \
                    for (int z = 0; z < NZ; z++) c[i][z] = _mm512_fmadd_ps(x, v[z], c[i][z]);          \
                }                                                                                      \
            }                                                                                          \
            for (; p < b0 + 16 && p <= pmax; p++) { /* past some row's last position */               \
                const float *vp = vb + (size_t)(p - b0) * kvd;                                         \
                __m512 v[NZ];                                                                          \
                for (int z = 0; z < NZ; z++) v[z] = _mm512_loadu_ps(vp + 16 * z);                      \
                _Pragma("GCC unroll 6") for (int i = 0; i < GR_AP_PV; i++) {                           \
                    __mmask16 k = p <= pp[i] ? 0xffff : 0;                                             \
                    __m512 x = _mm512_set1_ps(aa[i][p <= pp[i] ? p : 0]);                              \
                    for (int z = 0; z < NZ; z++) c[i][z] = _mm512_mask3_fmadd_ps(x, v[z], c[i][z], k); \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
        for (int i = 0; i < GR_AP_PV; i++)                                                             \
            for (int z = 0; z < NZ; z++) _mm512_storeu_ps(oo[i] + 16 * z, c[i][z]);                    \
    }
PV(pv4, 4)
PV(pv1, 1)
#undef PV

void gr_ap_pv_avx512(float *const *o, const float *const *a, const int *P, int m, const gr_kv *kv, int layer,
                     int g, int hd) {
    int d0 = 0;
    for (; d0 + 64 <= hd; d0 += 64) {
        float *od[GR_AP_PV];
        for (int i = 0; i < m; i++) od[i] = o[i] + d0;
        pv4(od, a, P, m, kv, layer, (size_t)g * hd + d0);
    }
    for (; d0 < hd; d0 += 16) {
        float *od[GR_AP_PV];
        for (int i = 0; i < m; i++) od[i] = o[i] + d0;
        pv1(od, a, P, m, kv, layer, (size_t)g * hd + d0);
    }
}
#else
typedef int gr_attention_prefill_avx512_empty; /* ISO C: no empty file */
#endif
