/* Integer dot products between ggml-quantized weight rows (Q8_0, Q4_0, Q4_1)
 * and activation rows quantized once per matmul to 8-bit blocks of 32, as
 * llama.cpp does (its Q8_0/Q8_1 activations): the weights are never widened to
 * floats, so decode reads only the quantized weight stream.
 *
 * Activation block b of a row x: d[b] = max|x| / 127, q[i] = round(x[i] / d[b])
 * (nearest, ties to even), s[b] = Σ q[i] (for the offset of Q4_0/Q4_1).
 * Error: each x[i] moves by at most d[b]/2, so |dot - exact| <= Σ_b d[b]/2 · Σ_i∈b |w[i]|
 * plus float rounding (tests/unit/test_cpu_q8.c checks that bound). */
#ifndef GR_CPU_Q8_H
#define GR_CPU_Q8_H
#include <stddef.h>
#include <stdint.h>

/* Software prefetch distance of the decode kernels (q8_avx2.c, matmul_rows_avx2.c),
 * in bytes along the weight row stream: the hardware prefetcher alone leaves one
 * core ~15% short of what it can pull (SmolLM2 F16 decode, 1 thread: 43 -> 50
 * tokens/s; Q8_0 85-88 -> 105-111). */
#define GR_PREFETCH_BYTES 4096

/* Whether rows of ggml type `type` with `cols` columns have an integer path. */
int gr_q8_supported(int type, int64_t cols);
/* x (cols, a multiple of 32) -> q (cols), d and s (cols/32). */
void gr_q8_quantize(const float *x, int64_t cols, int8_t *q, float *d, int32_t *s);
/* Σ_i w[i] x[i] for one weight row `wrow` of `type` against a quantized row. */
float gr_q8_dot(int type, const uint8_t *wrow, const int8_t *q, const float *d, const int32_t *s,
                int64_t cols);
/* Eight quantized activation rows (row t at q + t*cols, d and s + t*cols/32)
 * interleaved for gr_q8_dot8: for block b and 4-byte group g of it, the 32 bytes
 * at pq + 32*(8b+g) are the group of token 0, then of token 1, ..., token 7;
 * pd[8b+t] = d_t[b], ps[8b+t] = s_t[b]. pq holds 8*cols bytes, pd and ps cols/4. */
void gr_q8_pack8(const int8_t *q, const float *d, const int32_t *s, int64_t cols, int8_t *pq,
                 float *pd, int32_t *ps);
/* The magnitudes of a Q8_0 row's codes, 32 bytes per block (cols bytes in all;
 * -128 gives 128): the unsigned side of gr_q8_dot8's byte products, made once for
 * a row that meets several groups of tokens. */
void gr_q8_abs(const uint8_t *wrow, int64_t cols, uint8_t *aw);
/* gr_q8_dot for the eight rows of a gr_q8_pack8 group; out[t] is bit-identical
 * to gr_q8_dot with row t. aw: gr_q8_abs of wrow for Q8_0 (worth it when the
 * row meets two or more groups), or NULL; unused for Q4_0 and Q4_1. */
void gr_q8_dot8(int type, const uint8_t *wrow, const uint8_t *aw, const int8_t *pq, const float *pd,
                const int32_t *ps, int64_t cols, float out[8]);
/* Q8_0 only: gr_q8_dot8 of one row against ng (1..4) consecutive gr_q8_pack8
 * groups (group g at pq + 8*cols*g, pd + cols/4*g), group g's results at
 * out + g*ostride; bit-identical to ng calls of gr_q8_dot8 (aw: scratch for
 * gr_q8_abs of the row, cols bytes, or NULL). On AVX512-VNNI one
 * tile shares the row's broadcasts among the groups (q8_tile_avx512.c). */
void gr_q8_dot8x(const uint8_t *wrow, uint8_t *aw, const int8_t *pq, const float *pd,
                 const int32_t *ps, int64_t cols, int ng, float *out, size_t ostride);
void gr_q8_dot8x_avx512(const uint8_t *wrow, const int8_t *pq, const float *pd, int64_t cols, int ng,
                        float *out, size_t ostride);

/* Each ISA's versions of the above (q8.c: portable, what NATIVE=0 builds run,
 * and the reference the others are checked against; q8_avx2.c: AVX2;
 * q8_avx512.c: AVX512-VNNI). */
void gr_q8_quantize_scalar(const float *x, int64_t cols, int8_t *q, float *d, int32_t *s);
float gr_q8_dot_scalar(int type, const uint8_t *wrow, const int8_t *q, const float *d,
                       const int32_t *s, int64_t cols);
void gr_q8_dot8_scalar(int type, const uint8_t *wrow, const uint8_t *aw, const int8_t *pq,
                       const float *pd, const int32_t *ps, int64_t cols, float out[8]);
void gr_q8_abs_scalar(const uint8_t *wrow, int64_t cols, uint8_t *aw);
void gr_q8_quantize_avx2(const float *x, int64_t cols, int8_t *q, float *d, int32_t *s);
float gr_q8_dot_avx2(int type, const uint8_t *wrow, const int8_t *q, const float *d,
                     const int32_t *s, int64_t cols);
void gr_q8_dot8_avx2(int type, const uint8_t *wrow, const uint8_t *aw, const int8_t *pq,
                     const float *pd, const int32_t *ps, int64_t cols, float out[8]);
void gr_q8_abs_avx2(const uint8_t *wrow, int64_t cols, uint8_t *aw);
/* q8_avx512.c (AVX512-VNNI): bit-identical to the AVX2 versions */
float gr_q8_dot_avx512(int type, const uint8_t *wrow, const int8_t *q, const float *d,
                       const int32_t *s, int64_t cols);
void gr_q8_dot8_avx512(int type, const uint8_t *wrow, const uint8_t *aw, const int8_t *pq,
                       const float *pd, const int32_t *ps, int64_t cols, float out[8]);
#endif
