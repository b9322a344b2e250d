/* The AMX-BF16 BF16 prefill block (prefill_bf16_amx.inc) on the tiles:
 * compiled with the AMX flags (the Makefile's *_amx.c rule). Run only where
 * gr_cpu_amx() is GR_AMX_HW: the CPU has AMX-TILE and AMX-BF16, Linux granted
 * the tile state (isa.c), and GR_CPU_AMX=1 asked for it (never run on AMX
 * hardware yet, so not the default). */
#include "cpu_backend.h"
#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__) && GR_CPU_AVX2
#include "prefill_bf16.h"
#include <immintrin.h>
#include <string.h>

/* the tile configuration (palette 1): bytes 16.. the 16-bit row widths, 48..
 * the row counts, eight tiles of 16 rows x 64 bytes. Static and constant:
 * GCC's _tile_loadconfig tells the compiler it reads 8 bytes only, so a
 * configuration built on the stack could lose its other stores. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;
_Static_assert(sizeof(tilecfg) == 64, "the tile configuration is 64 bytes");
static const tilecfg cfg = {1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

#define TILE_CFG() _tile_loadconfig(&cfg)
#define TILE_ZERO(t) _tile_zero(t)
/* GCC's tile load names no memory operand: a compiler barrier first, so the
 * copies into the padding are stored before a tile reads them */
#define TILE_LOAD(t, p, stride)                                    \
    do {                                                           \
        __asm__ volatile("" ::: "memory");                         \
        _tile_loadd(t, (const void *)(p), (long)(stride));          \
    } while (0)
#define TILE_DP(c, a, b) _tile_dpbf16ps(c, a, b)
#define TILE_STORE(t, p, stride) _tile_stored(t, (void *)(p), (long)(stride))
#define TILE_RELEASE() _tile_release()
#define AMX_BLOCK gr_pb_amx_block
#include "prefill_bf16_amx.inc"
#else
typedef int gr_prefill_bf16_amx_empty; /* ISO C: no empty file */
#endif
