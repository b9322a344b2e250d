/* bf16 operands for the training GEMMs (--precision bf16): the packed A and B
 * panels are rounded to bf16 in place (round to nearest, ties to even, as
 * PyTorch's float -> bfloat16; NaN stays a quiet NaN, ±inf and subnormals are
 * rounded like any other value) and kept as fp32 values. A product of two
 * bf16 values (8-bit significands) is exact in fp32, so the fp32 micro-kernel
 * then multiplies bf16 operands and accumulates in fp32 in its usual order.
 *
 * Variants: gr_bf16_round (portable C, any CPU) and gr_bf16_round_avx512
 * (AVX-512F integer ops, 16 lanes); they give the same bits on every input
 * (tests/unit/test_cpu_bf16.c). gr_bf16_round_any picks by gr_cpu_isa. */
#ifndef GR_CPU_GEMM_BF16_H
#define GR_CPU_GEMM_BF16_H
#include <stddef.h>
#include <stdint.h>

static inline float gr_bf16_round1(float x) {
    uint32_t u;
    __builtin_memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) u = (u | 0x00400000u) & 0xffff0000u; /* NaN: quiet */
    else u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    __builtin_memcpy(&x, &u, 4);
    return x;
}
void gr_bf16_round(float *x, size_t n);
void gr_bf16_round_avx512(float *x, size_t n);
void gr_bf16_round_any(float *x, size_t n);

/* The vdpbf16ps GEMM (AVX512-BF16 CPUs, gr_cpu_bf16(); gemm_bf16_avx512.c):
 *   C (M, N) (+)= bf16(A) · bf16(B),  A (M, K) or given transposed (at: element
 *   (m, k) at A[k·lda + m]), B (K, N) or given transposed (bt: (k, n) at B[n·ldb + k]),
 * the operands rounded as gr_bf16_round while packed. k runs in blocks of kc
 * (even, ≤ 256; the caller's, a function of K alone); each block's sum starts
 * from zero and runs over the pairs (k0+2p, k0+2p+1) in p order, one vdpbf16ps
 * per pair (an odd block end gets a zero partner), and is then added to C in
 * block order. So results do not depend on the thread count or the task split,
 * and differ from the portable path's (k-order fp32 sums of the same exact
 * products) by fp32 rounding only; vdpbf16ps takes subnormal inputs and results
 * as zero (stated tolerance in the test). b NULL: serial (inside another op's task). */
typedef struct gr_backend gr_backend;
void gr_bf16_gemm_avx512(gr_backend *b, int M, int N, int K, const float *A, int lda, int at, const float *B,
                         int ldb, int bt, float *C, int ldc, int accumulate, int kc, const uint32_t *bpre);
/* B rounded and packed once for several gr_bf16_gemm_avx512 calls with the
 * same B, N, K and kc (bpre; B is then not read): the LM head's weight, used
 * by every 256-row chunk of the cross-entropy. gr_bf16_bpack_size: uint32s
 * needed (dst 64-byte aligned). The same bits as packing B in the GEMM. */
size_t gr_bf16_bpack_size(int N, int K, int kc);
void gr_bf16_bpack_avx512(gr_backend *b, int N, int K, const float *B, int ldb, int bt, int kc, uint32_t *dst);
#endif
