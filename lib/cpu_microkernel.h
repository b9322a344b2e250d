/* The f32 micro-kernel shared by the training GEMM (backend_cpu_train.c) and
 * the inference GEMM (cpu_gemm.c): a 6 x 16 tile of C from packed panels,
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
#endif
