/* A C model of the AMX tiles, running prefill_bf16_amx.inc's block on any CPU
 * with AVX512-BF16 (the stores are gr_pb_store_avx512): how the tests check the
 * AMX path's blocking, padding and stores where there is no AMX. The model
 * follows the instructions' pseudo-code (Intel SDM, TDPBF16PS): per element,
 * for each pair k in order, c += a0·b0 then c += a1·b1 (products of bf16
 * values, exact in f32), f32 round to nearest even, bf16 subnormal inputs read
 * as zero and subnormal results flushed to zero. Whether the hardware gives the
 * same bits is for an AMX machine's test to say (test_cpu_gemm). */
#include "cpu_backend.h"
#include "isa.h"
#include "prefill_bf16.h"
#include <math.h>
#include <string.h>

#if GR_CPU_X86
typedef struct {
    uint8_t d[16][64];
} emu_tile;
static _Thread_local emu_tile tm[8];

static float bf16_daz(uint16_t h) {
    if ((h & 0x7f80) == 0) return h & 0x8000 ? -0.0f : 0.0f;
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float ftz(float v) { return fabsf(v) < 0x1p-126f ? copysignf(0.0f, v) : v; }

static void emu_load(int t, const void *p, size_t stride) {
    for (int i = 0; i < 16; i++) memcpy(tm[t].d[i], (const uint8_t *)p + (size_t)i * stride, 64);
}

static void emu_store(int t, void *p, size_t stride) {
    for (int i = 0; i < 16; i++) memcpy((uint8_t *)p + (size_t)i * stride, tm[t].d[i], 64);
}

static uint16_t bf16_at(const emu_tile *t, int row, int idx) {
    uint16_t h;
    memcpy(&h, t->d[row] + 2 * idx, 2);
    return h;
}

static void emu_dp(int c, int a, int b) {
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            float acc;
            memcpy(&acc, tm[c].d[m] + 4 * n, 4);
            for (int k = 0; k < 16; k++) {
                acc = ftz(acc + bf16_daz(bf16_at(&tm[a], m, 2 * k)) * bf16_daz(bf16_at(&tm[b], k, 2 * n)));
                acc = ftz(acc + bf16_daz(bf16_at(&tm[a], m, 2 * k + 1)) * bf16_daz(bf16_at(&tm[b], k, 2 * n + 1)));
            }
            memcpy(tm[c].d[m] + 4 * n, &acc, 4);
        }
}

#define TILE_CFG() ((void)0)
#define TILE_ZERO(t) memset(&tm[t], 0, sizeof tm[t])
#define TILE_LOAD(t, p, stride) emu_load(t, p, (size_t)(stride))
#define TILE_DP(c, a, b) emu_dp(c, a, b)
#define TILE_STORE(t, p, stride) emu_store(t, p, (size_t)(stride))
#define TILE_RELEASE() ((void)0)
#define AMX_BLOCK gr_pb_amx_block_emul
#include "prefill_bf16_amx.inc"
#else
typedef int gr_prefill_bf16_amx_emul_empty; /* ISO C: no empty file */
#endif
