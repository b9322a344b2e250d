/* Number formats: fp16/bf16 conversion and dequantization of ggml block types
 * (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K). The block layouts are ggml's; the
 * results are checked against the `gguf` Python package (tests/unit/test_quant.c). */
#ifndef GR_QUANT_H
#define GR_QUANT_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline float gr_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
float gr_f16_to_f32(uint16_t h);
/* Round-to-nearest-even, as torch does. */
uint16_t gr_f32_to_bf16(float f);

/* Dequantizes n elements (a multiple of the type's block size) of ggml type
 * `type` starting at src (no alignment needed). 0, or -1 for a type it does not know. */
int gr_dequantize(int type, const void *src, float *dst, int64_t n);
#endif
