/* The matmul op: y (n, w->rows) = x (n, w->cols) · wᵀ. Which kernel runs:
 *   Q8_0/Q4_0/Q4_1 weights (not exact mode): the integer path, matmul_q8.c;
 *   48+ tokens: the blocked GEMM (gemm.c) over 16-row blocks;
 *   1-2 tokens: the fused decode row kernel, one contiguous share of rows per thread;
 *   otherwise: the 4-row x 3-token kernel (matmul_rows.h). */
#include "cpu_backend.h"
#include "gemm.h"
#include "matmul_rows.h"
#include "q8.h"
#include <string.h>

typedef struct mm_job {
    float *y;
    const float *x;
    int n;
    const gr_tensor *w;
    int64_t rows_per_task; /* a multiple of 4 */
    float *scratch;        /* (n_tasks, 4, cols) */
} mm_job;

static void mm_task(void *ctx, int task) {
    mm_job *j = ctx;
    int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task;
    if (r1 > j->w->rows) r1 = j->w->rows;
    int64_t cols = j->w->cols, rows = j->w->rows;
    float *buf = j->scratch + (size_t)task * 4 * (size_t)cols;
    int64_t r = r0;
#if GR_CPU_AVX2
    if (j->n <= 2 && cols % 32 == 0) {
        for (; r < r1; r++) gr_fused_row_avx2(j->w, r, j->x, j->n, j->y, rows);
        return;
    }
    for (; r + 4 <= r1; r += 4) {
        const float *w4[4];
        for (int q = 0; q < 4; q++) w4[q] = gr_row_f32(j->w, r + q, buf + (size_t)q * (size_t)cols);
        int t = 0;
        float tmp[12];
        for (; t + 3 <= j->n; t += 3) {
            gr_mm_4x3_avx2(w4, j->x + (size_t)t * cols, j->x + (size_t)(t + 1) * cols,
                           j->x + (size_t)(t + 2) * cols, cols, tmp, tmp + 4, tmp + 8);
            for (int u = 0; u < 3; u++) memcpy(j->y + (size_t)(t + u) * rows + r, tmp + 4 * u, 16);
        }
        for (; t < j->n; t++) gr_mm_4x1_avx2(w4, j->x + (size_t)t * cols, cols, j->y + (size_t)t * rows + r);
    }
#endif
    for (; r < r1; r++) {
        const float *wr = gr_row_f32(j->w, r, buf);
        for (int t = 0; t < j->n; t++) j->y[(size_t)t * rows + r] = gr_dot_f32(j->x + (size_t)t * cols, wr, cols);
    }
}

/* Prefill (48+ tokens): the blocked GEMM of gemm.c. A task
 * takes a contiguous run of 16-row blocks and owns one scratch slot. */
typedef struct gemm_job {
    float *y;
    const float *x;
    int n, tasks;
    const gr_tensor *w;
    int64_t nblocks, slot;
    float *scratch;
} gemm_job;

static void gemm_task(void *ctx, int task) {
    gemm_job *j = ctx;
    int64_t b0 = j->nblocks * task / j->tasks, b1 = j->nblocks * (task + 1) / j->tasks;
    for (int64_t bk = b0; bk < b1; bk++)
        gr_gemm_block(j->y, j->x, j->n, j->w, bk * GR_GEMM_NR, gr_row_f32, j->scratch + (size_t)task * (size_t)j->slot);
}

static void gemm_matmul(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
    int64_t nblocks = (w->rows + GR_GEMM_NR - 1) / GR_GEMM_NR;
    int tasks = 4 * b->n_threads;
    if (tasks > nblocks) tasks = (int)nblocks;
    int64_t slot = gr_gemm_scratch(w->cols);
    size_t need = (size_t)tasks * (size_t)slot;
    float *scratch = gr_cpu_scratch(b, need);
    float *xpack = gr_cpu_buffer(b, GR_CPU_BUF_XPACK,
                                 sizeof(float) * (size_t)gr_gemm_xpack_size(n, w->cols));
    gr_gemm_pack_x(xpack, x, n, w->cols);
    gemm_job j = {y, xpack, n, tasks, w, nblocks, slot, scratch};
    gr_cpu_run_tasks(b, gemm_task, &j, tasks, (double)n * (double)w->rows * (double)w->cols);
}

#if GR_CPU_AVX2
/* x with the middle two quarters of every 16 values swapped: the order in which
 * the AVX2 decode kernel widens BF16 weights. */
static const float *bf16_perm(gr_backend *b, const float *x, int n, int64_t cols) {
    size_t need = (size_t)n * (size_t)cols;
    float *xp = gr_cpu_buffer(b, GR_CPU_BUF_XPERM, need * sizeof(float));
    for (size_t i = 0; i < need; i += 16) {
        memcpy(xp + i, x + i, 16);
        memcpy(xp + i + 4, x + i + 8, 16);
        memcpy(xp + i + 8, x + i + 4, 16);
        memcpy(xp + i + 12, x + i + 12, 16);
    }
    return xp;
}
#endif

void gr_cpu_matmul(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
    if (!b->exact && gr_q8_supported(w->type, w->cols)) {
        gr_cpu_matmul_q8(b, y, x, n, w);
        return;
    }
    /* packing 16 rows costs about as much as 16 tokens of work: below ~48 tokens
     * (batched decode) the unpacked 4x3 kernel below is faster */
    if (n >= 48) {
        gemm_matmul(b, y, x, n, w);
        return;
    }
    /* Enough tasks to balance, few enough to keep each weight row's reuse over the n tokens. */
    int64_t per = 16;
    while (w->rows / per > 1024) per *= 2;
    if (n <= 2) per = gr_cpu_decode_rows_per_task(b, w->rows);
    int tasks = (int)((w->rows + per - 1) / per);
    size_t need = (size_t)tasks * 4 * (size_t)w->cols;
    float *scratch = gr_cpu_scratch(b, need);
#if GR_CPU_AVX2
    if (n <= 2 && w->type == GR_BF16 && w->cols % 32 == 0) x = bf16_perm(b, x, n, w->cols);
#endif
    mm_job j = {y, x, n, w, per, scratch};
    gr_cpu_run_tasks(b, mm_task, &j, tasks, (double)n * (double)w->rows * (double)w->cols);
}
