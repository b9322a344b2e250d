/* The BF16 prefill GEMM's driver (see prefill_bf16.h). x is rounded to bf16
 * and packed once per matmul into 12-token tiles of column pairs
 * (xp[tile][p][12], zero tokens past n and a zero column past an odd cols); a
 * task owns a contiguous run of 32-row blocks: it packs a block's weights once
 * (wp[p][32]), then for each K block of 128 pairs runs every token tile over
 * it (the weights stay in L1 while the tokens pass), accumulating in a
 * (tiles*12, 32) f32 block that continues the same chain from K block to K
 * block, and copies the block's valid rows and tokens to y at the end. */
#include "prefill_bf16.h"
#include "cpu_backend.h"
#include "isa.h"
#include "quant.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MR = GR_PB_MR, NR = GR_PB_NR, KP = GR_PB_KP };

#if GR_CPU_X86
static void pack_x(uint32_t *xp, const float *x, int n, int64_t cols, int64_t np) {
    for (int t0 = 0; t0 < n; t0 += MR) {
        uint32_t *tile = xp + (int64_t)t0 * np;
        for (int u = 0; u < MR; u++) {
            const float *xr = t0 + u < n ? x + (int64_t)(t0 + u) * cols : NULL;
            for (int64_t p = 0; p < np; p++) {
                uint32_t lo = 0, hi = 0;
                if (xr) {
                    lo = gr_f32_to_bf16(xr[2 * p]);
                    if (2 * p + 1 < cols) hi = gr_f32_to_bf16(xr[2 * p + 1]);
                }
                tile[MR * p + u] = lo | hi << 16;
            }
        }
    }
}

typedef struct pb_job {
    float *y;
    const uint32_t *xp;
    int n, tasks;
    const gr_tensor *w;
    int64_t np, nblocks, slot; /* slot: floats of scratch per task */
    float *scratch;
} pb_job;

static void pb_task(void *ctx, int task) {
    pb_job *j = ctx;
    int64_t b0 = j->nblocks * task / j->tasks, b1 = j->nblocks * (task + 1) / j->tasks;
    int tiles = (j->n + MR - 1) / MR;
    int64_t rows = j->w->rows, np = j->np;
    uint32_t *wp = (uint32_t *)(j->scratch + (size_t)task * (size_t)j->slot);
    float *C = (float *)(wp + (size_t)np * NR);
    for (int64_t bk = b0; bk < b1; bk++) {
        int64_t r0 = bk * NR;
        gr_pb_pack_w_avx512(wp, j->w, r0, np);
        for (int64_t p0 = 0; p0 < np; p0 += KP) {
            int kp = np - p0 < KP ? (int)(np - p0) : KP;
            for (int t = 0; t < tiles; t++)
                gr_pb_tile_avx512(kp, j->xp + (int64_t)t * MR * np + MR * p0, wp + NR * p0, C + (size_t)t * MR * NR,
                                  p0 != 0);
        }
        int nr = rows - r0 < NR ? (int)(rows - r0) : NR;
        for (int t = 0; t < j->n; t++) memcpy(j->y + (int64_t)t * rows + r0, C + (size_t)t * NR, sizeof(float) * (size_t)nr);
    }
}
#endif

void gr_cpu_matmul_prefill_bf16(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
#if GR_CPU_X86
    int64_t cols = w->cols, np = (cols + 1) / 2;
    int tiles = (n + MR - 1) / MR;
    int64_t nblocks = (w->rows + NR - 1) / NR;
    int tasks = 4 * b->n_threads;
    if (tasks > nblocks) tasks = (int)nblocks;
    /* per task: the packed block (np*32 words) and the f32 block (tiles*12, 32),
     * 16 floats rounded so every slot stays 64-byte aligned */
    int64_t slot = (np * NR + (int64_t)tiles * MR * NR + 15) / 16 * 16;
    float *scratch = gr_cpu_scratch(b, (size_t)tasks * (size_t)slot);
    uint32_t *xp = gr_cpu_buffer(b, GR_CPU_BUF_XPACK, sizeof(uint32_t) * (size_t)tiles * MR * (size_t)np);
    pack_x(xp, x, n, cols, np);
    pb_job j = {y, xp, n, tasks, w, np, nblocks, slot, scratch};
    gr_cpu_run_tasks(b, pb_task, &j, tasks, (double)n * (double)w->rows * (double)cols);
#else
    (void)b, (void)y, (void)x, (void)n, (void)w;
    fprintf(stderr, "gr_cpu_matmul_prefill_bf16: this build has no AVX-512 variants\n");
    abort(); /* unreachable: gr_cpu_bf16() is 0 in such a build */
#endif
}
