/* The BF16 prefill GEMM's driver (see prefill_bf16.h). x is rounded to bf16
 * and packed once per matmul into 32-token tiles of column pairs
 * (xp[tile][p][32], zero tokens past n and a zero column past an odd cols);
 * the weights are read in place (no packing, no copy). A task owns a
 * contiguous run of 12-row blocks: for each K block of 128 pairs it runs
 * every token tile over the block's rows (their 6 KB stay in L1 while the
 * tokens pass), accumulating in a (tiles, 12, 32) f32 block that continues
 * the same chain from K block to K block (an odd cols' last column is one more
 * pair, (w, 0), read from a 12-word copy), and writes the block's valid rows
 * and tokens to y at the end. Where gr_cpu_amx() says so, the AMX-BF16 block
 * instead (prefill_bf16_amx.inc). */
#include "prefill_bf16.h"
#include "cpu_backend.h"
#include "isa.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MR = GR_PB_MR, NR = GR_PB_NR, KP = GR_PB_KP };

#if GR_CPU_X86
typedef struct pb_job {
    float *y;
    const uint32_t *xp;
    int n, tasks;
    const gr_tensor *w;
    int64_t np, nblocks, slot; /* slot: floats of scratch per task */
    float *scratch;
} pb_job;

/* x's packing, one 32-token tile per task */
typedef struct px_job {
    uint32_t *xp;
    const float *x;
    int n;
    int64_t cols, np;
} px_job;

static void px_task(void *ctx, int task) {
    px_job *j = ctx;
    int t0 = task * MR, m = j->n - t0 < MR ? j->n - t0 : MR;
    gr_pb_pack_x_avx512(j->xp + (int64_t)t0 * j->np, j->x + (int64_t)t0 * j->cols, m, j->cols, j->np);
}

static void pb_task(void *ctx, int task) {
    pb_job *j = ctx;
    int64_t b0 = j->nblocks * task / j->tasks, b1 = j->nblocks * (task + 1) / j->tasks;
    int n = j->n, tiles = (n + MR - 1) / MR;
    int64_t rows = j->w->rows, cols = j->w->cols, np = j->np, full = cols / 2;
    float *C = j->scratch + (size_t)task * (size_t)j->slot;
    for (int64_t bk = b0; bk < b1; bk++) {
        int64_t r0 = bk * NR;
        int nr = rows - r0 < NR ? (int)(rows - r0) : NR;
        const uint8_t *row[NR], *wk[NR];
        uint32_t tail[NR]; /* the last pair of an odd cols: (w[r][cols-1], 0) */
        for (int r = 0; r < NR; r++) {
            /* rows past the end repeat the block's first row; their results are dropped */
            row[r] = (const uint8_t *)j->w->data + (size_t)(r0 + (r < nr ? r : 0)) * j->w->row_bytes;
            tail[r] = full < np ? (uint32_t)row[r][4 * full] | (uint32_t)row[r][4 * full + 1] << 8 : 0;
        }
        for (int64_t p0 = 0; p0 < np; p0 += KP) {
            int kp = np - p0 < KP ? (int)(np - p0) : KP;
            int last = 0; /* the odd column's pair falls in this K block */
            if (p0 + kp > full) kp--, last = 1;
            for (int r = 0; r < NR; r++) wk[r] = row[r] + 4 * p0;
            for (int t = 0; t < tiles; t++) {
                const uint32_t *a = j->xp + (int64_t)t * MR * np + MR * p0;
                float *Ct = C + (size_t)t * MR * NR;
                int ntok = n - t * MR;
                if (kp > 0) gr_pb_tile_avx512(kp, a, wk, Ct, p0 != 0, ntok);
                if (last) {
                    const uint8_t *tw[NR];
                    for (int r = 0; r < NR; r++) tw[r] = (const uint8_t *)&tail[r];
                    gr_pb_tile_avx512(1, a + MR * kp, tw, Ct, p0 != 0 || kp > 0, ntok);
                }
            }
        }
        for (int t = 0; t < tiles; t++)
            gr_pb_store_avx512(C + (size_t)t * MR * NR, n - t * MR, nr, j->y + (int64_t)t * MR * rows + r0, rows);
    }
}

/* The AMX path (gr_cpu_amx()): a task owns a contiguous run of 32-row blocks,
 * each the whole product for every token (prefill_bf16_amx.inc). */
typedef struct amx_job {
    float *y;
    const uint32_t *xp;
    int n, tasks, emul;
    const gr_tensor *w;
    int64_t np16, nblocks, slot; /* slot: words of scratch per task */
    uint32_t *scratch;
} amx_job;

static void amx_task(void *ctx, int task) {
    amx_job *j = ctx;
    int64_t b0 = j->nblocks * task / j->tasks, b1 = j->nblocks * (task + 1) / j->tasks;
    uint32_t *pad = j->scratch + (size_t)task * (size_t)j->slot;
    float *C = (float *)(pad + GR_PB_AMX_PAD(j->np16));
    for (int64_t bk = b0; bk < b1; bk++) {
        int64_t r0 = bk * 32;
        int nr = j->w->rows - r0 < 32 ? (int)(j->w->rows - r0) : 32;
        if (j->emul) gr_pb_amx_block_emul(j->y, j->xp, j->n, j->w, r0, nr, j->np16, pad, C);
        else gr_pb_amx_block(j->y, j->xp, j->n, j->w, r0, nr, j->np16, pad, C);
    }
}

static void matmul_amx(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w, int emul) {
    int64_t cols = w->cols, np16 = ((cols + 1) / 2 + 15) / 16 * 16;
    int tiles = (n + MR - 1) / MR;
    int64_t nblocks = (w->rows + 31) / 32;
    int tasks = 4 * b->n_threads;
    if (tasks > nblocks) tasks = (int)nblocks;
    /* per task: the padding (GR_PB_AMX_PAD words) and C (32 x 32 floats),
     * rounded to 16 words so every slot stays 64-byte aligned */
    int64_t slot = (GR_PB_AMX_PAD(np16) + 32 * 32 + 15) / 16 * 16;
    uint32_t *scratch = (uint32_t *)gr_cpu_scratch(b, (size_t)tasks * (size_t)slot);
    uint32_t *xp = gr_cpu_buffer(b, GR_CPU_BUF_XPACK, sizeof(uint32_t) * (size_t)tiles * MR * (size_t)np16);
    px_job pj = {xp, x, n, cols, np16};
    gr_cpu_run_tasks(b, px_task, &pj, tiles, 4.0 * (double)n * (double)cols);
    amx_job j = {y, xp, n, tasks, emul, w, np16, nblocks, slot, scratch};
    gr_cpu_run_tasks(b, amx_task, &j, tasks, (double)n * (double)w->rows * (double)cols);
}
#endif

void gr_cpu_matmul_prefill_bf16(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
#if GR_CPU_X86
    int amx = gr_cpu_amx();
    if (amx) {
        matmul_amx(b, y, x, n, w, amx == GR_AMX_EMUL);
        return;
    }
    int64_t cols = w->cols, np = (cols + 1) / 2;
    int tiles = (n + MR - 1) / MR;
    int64_t nblocks = (w->rows + NR - 1) / NR;
    int tasks = 4 * b->n_threads;
    if (tasks > nblocks) tasks = (int)nblocks;
    /* per task: the f32 block (tiles, 12, 32), 16 floats rounded so every slot
     * stays 64-byte aligned */
    int64_t slot = ((int64_t)tiles * MR * NR + 15) / 16 * 16;
    float *scratch = gr_cpu_scratch(b, (size_t)tasks * (size_t)slot);
    uint32_t *xp = gr_cpu_buffer(b, GR_CPU_BUF_XPACK, sizeof(uint32_t) * (size_t)tiles * MR * (size_t)np);
    px_job pj = {xp, x, n, cols, np};
    gr_cpu_run_tasks(b, px_task, &pj, tiles, 4.0 * (double)n * (double)cols);
    pb_job j = {y, xp, n, tasks, w, np, nblocks, slot, scratch};
    gr_cpu_run_tasks(b, pb_task, &j, tasks, (double)n * (double)w->rows * (double)cols);
#else
    (void)b, (void)y, (void)x, (void)n, (void)w;
    fprintf(stderr, "gr_cpu_matmul_prefill_bf16: this build has no AVX-512 variants\n");
    abort(); /* unreachable: gr_cpu_bf16() is 0 in such a build */
#endif
}
