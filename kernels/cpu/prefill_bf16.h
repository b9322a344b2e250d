/* The BF16 prefill GEMM on AVX512-BF16 (vdpbf16ps): y (n, rows) = x (n, cols)
 * · wᵀ for prefill rows of a BF16 weight matrix, the activations rounded to
 * bf16 (round to nearest even) as llama.cpp does for BF16 weights. Numerics:
 * every product of two bf16 values is exact in f32, so each result differs
 * from the f32-activation GEMM (gemm.c) only by the rounding of x, at most
 * 2^-9 relative per term (≤ 2^-9 · Σ|x w| in all), plus f32 accumulation in
 * vdpbf16ps's order: per element one chain over the column pairs in k order
 * from zero (inputs' bf16 subnormals read as zero, as the instruction does).
 * That order does not depend on the batch, the token's place in it, the tile
 * or the thread count, so prefill rows stay batch- and thread-invariant; it is
 * not the f32 GEMM's order, so the bits differ from the other ISA levels'.
 * Used only where gr_cpu_bf16() and not in exact mode (backend.h: exact keeps
 * f32 activations). */
#ifndef GR_CPU_PREFILL_BF16_H
#define GR_CPU_PREFILL_BF16_H
#include "backend.h"
#include <stdint.h>

/* The tile: MR tokens (two zmm of lanes) x NR weight rows; KP column pairs per
 * K block. */
enum { GR_PB_MR = 32, GR_PB_NR = 12, GR_PB_KP = 128 };

/* prefill_bf16.c: the driver (packing x, threads over 12-row blocks). */
void gr_cpu_matmul_prefill_bf16(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w);

/* prefill_bf16_avx512.c (compiled only with the AVX-512 flags):
 * packs x (n, cols) rounded to bf16 (gr_f32_to_bf16's bits) into tiles of MR
 * tokens, xp[tile][p][MR] 32-bit words, each the pair (x[t][2p], x[t][2p+1])
 * (zero past cols, zero tokens past n); np pairs, at least (cols + 1) / 2
 * (the AMX path pads them to a multiple of 16 with zero pairs). */
void gr_pb_pack_x_avx512(uint32_t *xp, const float *x, int n, int64_t cols, int64_t np);
/* C[12][32] (row r's 32 tokens at C + 32 r) = (load ? C : 0) + Σ_p the dot of
 * the packed pair a[p][t] (a: MR words per pair) and the bf16 pair at w[r] +
 * 4 p bytes (12 row pointers, each the weight row at the K block's first
 * pair), p < kp, one vdpbf16ps chain per element; ntok <= 16 computes (and
 * stores) only the first 16 tokens. */
void gr_pb_tile_avx512(int kp, const uint32_t *a, const uint8_t *const *w, float *C, int load, int ntok);
/* y[t][r] = C[r][t] for t < ntok (at most 32) and r < nr (at most 16): a tile's
 * results, stored transposed (row t of y at y + t ldy). */
void gr_pb_store_avx512(const float *C, int ntok, int nr, float *y, int64_t ldy);

/* The AMX-BF16 block (prefill_bf16_amx.inc): y (tokens, rows) for weight rows
 * [r0, r0 + nr), nr <= 32, from x packed by gr_pb_pack_x_avx512 with np16
 * pairs (a multiple of 16); pad GR_PB_AMX_PAD(np16) words, C 32 * 32 floats.
 * gr_pb_amx_block runs on the tiles (prefill_bf16_amx.c, AMX builds only);
 * gr_pb_amx_block_emul the same code over a C model of them (tests). */
#define GR_PB_AMX_PAD(np16) (32 * (int64_t)(np16) + 32 * 16)
void gr_pb_amx_block(float *y, const uint32_t *xp, int n, const gr_tensor *w, int64_t r0, int nr,
                     int64_t np16, uint32_t *pad, float *C);
void gr_pb_amx_block_emul(float *y, const uint32_t *xp, int n, const gr_tensor *w, int64_t r0, int nr,
                          int64_t np16, uint32_t *pad, float *C);
#endif
