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

/* The vdpbf16ps path (AVX512-BF16 CPUs, gr_cpu_bf16()): panels already rounded
 * are repacked in place as k pairs, 32 bits each (bf16 of k even in the low
 * half, k odd in the high half; an odd kc gets a zero partner):
 *   a [kc][6] -> [(kc+1)/2][6],  b [kc][16] -> [(kc+1)/2][16].
 * gr_bf16_micro_6x16 then computes the tile as gr_micro_6x16 does,
 *   C[6][16] (ldc) = (load ? C : 0) + Σ_pairs (a_odd·b_odd + a_even·b_even),
 * from zero in k order; each vdpbf16ps adds the pair's two exact products, one
 * after the other, with subnormal inputs and results taken as zero, so the
 * result differs from the portable path's (k-order fp32 sums of the same
 * products) by fp32 rounding only (stated tolerance in the test). */
void gr_bf16_pair_pack(float *x, int kc, int width);
void gr_bf16_micro_6x16(int kc, const float *a, const float *b, float *C, int ldc, int load);
#endif
