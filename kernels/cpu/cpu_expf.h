/* expf, eight lanes at a time, returning exactly what glibc's expf returns.
 * The algorithm is glibc's (the ARM optimized-routines one: a 32-entry
 * 2^(i/32) table and a cubic in double), four lanes per half; checked against
 * every float in [-103, 88] (tests/unit/test_train_ops.c). Lanes outside that
 * range, or NaN, go through expf itself. Because the result is exact, code that
 * uses it computes the same numbers in a portable build (which calls expf). */
#ifndef GR_CPU_EXPF_H
#define GR_CPU_EXPF_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__) && defined(__x86_64__)
#define GR_EXPF_AVX 1
#include <immintrin.h>

static const uint64_t gr_exp2f_tab[32] = {
    0x3ff0000000000000ULL, 0x3fefd9b0d3158574ULL, 0x3fefb5586cf9890fULL, 0x3fef9301d0125b51ULL,
    0x3fef72b83c7d517bULL, 0x3fef54873168b9aaULL, 0x3fef387a6e756238ULL, 0x3fef1e9df51fdee1ULL,
    0x3fef06fe0a31b715ULL, 0x3feef1a7373aa9cbULL, 0x3feedea64c123422ULL, 0x3feece086061892dULL,
    0x3feebfdad5362a27ULL, 0x3feeb42b569d4f82ULL, 0x3feeab07dd485429ULL, 0x3feea47eb03a5585ULL,
    0x3feea09e667f3bcdULL, 0x3fee9f75e8ec5f74ULL, 0x3feea11473eb0187ULL, 0x3feea589994cce13ULL,
    0x3feeace5422aa0dbULL, 0x3feeb737b0cdc5e5ULL, 0x3feec49182a3f090ULL, 0x3feed503b23e255dULL,
    0x3feee89f995ad3adULL, 0x3feeff76f2fb5e47ULL, 0x3fef199bdd85529cULL, 0x3fef3720dcef9069ULL,
    0x3fef5818dcfba487ULL, 0x3fef7c97337b9b5fULL, 0x3fefa4afa2a490daULL, 0x3fefd0765b6e4540ULL};

static inline __m128 gr_expf4(__m128 x) {
    const __m256d inv = _mm256_set1_pd(0x1.71547652b82fep+0 * 32), shift = _mm256_set1_pd(0x1.8p+52);
    __m256d xd = _mm256_cvtps_pd(x);
    __m256d kd = _mm256_fmadd_pd(xd, inv, shift); /* glibc's __expf_fma contracts both */
    __m256i ki = _mm256_castpd_si256(kd);
    kd = _mm256_sub_pd(kd, shift);
    __m256d r = _mm256_fmsub_pd(xd, inv, kd);
    __m256i t = _mm256_i64gather_epi64((const long long *)gr_exp2f_tab,
                                       _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8);
    __m256d s = _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64(ki, 47)));
    __m256d p = _mm256_fmadd_pd(_mm256_set1_pd(0x1.c6af84b912394p-5 / 32 / 32 / 32), r,
                                _mm256_set1_pd(0x1.ebfce50fac4f3p-3 / 32 / 32));
    __m256d y = _mm256_fmadd_pd(_mm256_set1_pd(0x1.62e42ff0c52d6p-1 / 32), r, _mm256_set1_pd(1.0));
    y = _mm256_fmadd_pd(p, _mm256_mul_pd(r, r), y);
    return _mm256_cvtpd_ps(_mm256_mul_pd(y, s));
}

static inline __m256 gr_expf8(__m256 x) {
    __m256 ok = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-103.0f), _CMP_GE_OQ),
                              _mm256_cmp_ps(x, _mm256_set1_ps(88.0f), _CMP_LE_OQ));
    if (_mm256_movemask_ps(ok) != 0xff) {
        float t[8];
        _mm256_storeu_ps(t, x);
        for (int i = 0; i < 8; i++) t[i] = expf(t[i]);
        return _mm256_loadu_ps(t);
    }
    return _mm256_set_m128(gr_expf4(_mm256_extractf128_ps(x, 1)), gr_expf4(_mm256_castps256_ps128(x)));
}
#else
#define GR_EXPF_AVX 0
#endif

/* A faster exp for softmax rows, where an ulp does not matter but the rate
 * does: Cephes' single-precision method (n = round(x log2 e), r = x − n ln 2 in
 * two parts, a degree-5 polynomial for (e^r − 1 − r)/r², scaled by 2^n), about
 * 1 ulp off expf. Returns exactly 0 below −87 and is meant for x <= 88. The
 * scalar and the 8-lane forms perform the same operations (fmaf, round to
 * nearest even), so a portable build computes the same bits. */
#define GR_EXPF_FAST_LO (-87.0f)
static inline float gr_expf_fast(float x) {
    if (!(x >= GR_EXPF_FAST_LO)) return 0.0f;
    x = x < 88.0f ? x : 88.0f;
    float n = nearbyintf(x * 1.44269504088896341f);
    float r = fmaf(-n, 0.693359375f, x);
    r = fmaf(-n, -2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    float y = fmaf(p, r * r, r) + 1.0f;
    uint32_t u;
    memcpy(&u, &y, 4);
    u += (uint32_t)((int32_t)n * (1 << 23));
    memcpy(&y, &u, 4);
    return y;
}
#if GR_EXPF_AVX
static inline __m256 gr_expf8_fast(__m256 x) {
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(GR_EXPF_FAST_LO), _CMP_GE_OQ);
    x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    y = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(y), e));
    return _mm256_and_ps(y, keep);
}
#endif

/* x[i] = expf(x[i]) for i < n */
static inline void gr_expf_n(float *x, int n) {
    int i = 0;
#if GR_EXPF_AVX
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gr_expf8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) x[i] = expf(x[i]);
}
#endif
