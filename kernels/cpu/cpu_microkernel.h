/* The f32 micro-kernel shared by the training GEMM (backend_cpu_train.c) and
 * the inference GEMM (gemm.c): a 6 x 16 tile of C from packed panels,
 *   C[6][16] (ldc) = (load ? C : 0) + Σ_p a[p][0..6) ⊗ b[p][0..16),  p < kc,
 * a k-major ([kc][6]) and b k-major ([kc][16], 32-byte aligned). The sum over
 * p runs from zero in p order and is added to C last, so a tile's result does
 * not depend on where it lies in C or on which thread computes it. */
#ifndef GR_CPU_MICROKERNEL_H
#define GR_CPU_MICROKERNEL_H
#define GR_MR 6
#define GR_NR 16
void gr_micro_6x16(int kc, const float *a, const float *b, float *C, int ldc, int load);
/* The same tile from operands in place, for the attention kernels whose
 * operands are rows of Q, K, V and score blocks: A[p][i] = a[i a_is + p a_ks],
 * B[p][j] = b[p b_ks + j] (no alignment needed); same summation order. */
void gr_micro_6x16_strided(int kc, const float *a, long a_is, long a_ks, const float *b, long b_ks,
                           float *C, int ldc, int load);
/* Each ISA's versions (microkernel.c: portable; microkernel_avx2.c: AVX2/FMA):
 * the same bits. The two above are the compiled-in ones. */
void gr_micro_6x16_scalar(int kc, const float *a, const float *b, float *C, int ldc, int load);
void gr_micro_6x16_strided_scalar(int kc, const float *a, long a_is, long a_ks, const float *b,
                                  long b_ks, float *C, int ldc, int load);
void gr_micro_6x16_avx2(int kc, const float *a, const float *b, float *C, int ldc, int load);
void gr_micro_6x16_strided_avx2(int kc, const float *a, long a_is, long a_ks, const float *b,
                                long b_ks, float *C, int ldc, int load);
#if defined(__AVX2__) && defined(__FMA__) && defined(__x86_64__)
#include <immintrin.h>
/* in place: r[i] (8 rows of 8) -> r[p] = column p */
static inline void gr_tr8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
#endif
#endif
