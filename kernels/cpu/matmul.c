/* The matmul op: y (n, w->rows) = x (n, w->cols) · wᵀ. Which kernel runs:
 *   Q8_0/Q4_0/Q4_1 weights (not exact mode): the integer path, matmul_q8.c,
 *     whose (row, token) results do not depend on the batch;
 *   otherwise each row by its kind (gr_backend.decode_rows): a decode row in the
 *     decode-row kernel (matmul_rows.h), a prefill row in the blocked GEMM
 *     (gemm.c; for BF16 weights on AVX512-BF16, outside exact mode, the
 *     vdpbf16ps GEMM of prefill_bf16.c, activations rounded to bf16). Each kernel has one summation order per result whatever the
 *     number of rows, their place in the batch and the thread count, so a
 *     row's result depends on its own kind and values only: batch-invariant bit
 *     for bit. A call with both kinds runs each kind on its rows gathered. */
#include "cpu_backend.h"
#include "cpu_microkernel.h"
#include "gemm.h"
#include "isa.h"
#include "matmul_rows.h"
#include "prefill_bf16.h"
#include "q8.h"
#include <string.h>

typedef struct dec_job {
    float *y;
    const float *x;
    int n;
    const gr_tensor *w;
    int64_t rows_per_task; /* a multiple of 8 */
    float *scratch;        /* (n_tasks, 8, cols) */
} dec_job;

static void dec_task(void *ctx, int task) {
    dec_job *j = ctx;
    int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task;
    if (r1 > j->w->rows) r1 = j->w->rows;
    gr_dec_rows(j->w, r0, r1, j->x, j->n, j->y, j->w->rows, j->scratch + (size_t)task * 8 * (size_t)j->w->cols);
}

static int64_t dec_rows_per_task(gr_backend *b, int n, const gr_tensor *w);

static void dec_matmul(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
    int64_t per = dec_rows_per_task(b, n, w);
    int tasks = (int)((w->rows + per - 1) / per);
    float *scratch = gr_cpu_scratch(b, (size_t)tasks * 8 * (size_t)w->cols);
    dec_job j = {y, x, n, w, per, scratch};
    gr_cpu_run_tasks(b, dec_task, &j, tasks, (double)n * (double)w->rows * (double)w->cols);
}

/* Decode rows of up to 4 weights of one x in one pool run (q/k/v, gate/up):
 * each weight's tasks as dec_matmul makes them, numbered after the previous
 * weight's, so each result comes from the same kernel call on the same rows
 * as in dec_matmul (the same bits), and a small matrix's tasks (k and v at
 * decode are a few microseconds of memory) do not each pay a wake-up and a
 * wait of the threads. */
enum { MX = 4 };
typedef struct decx_job {
    dec_job part[MX];
    int first[MX + 1]; /* part i's tasks are [first[i], first[i + 1]) */
    int m;
} decx_job;

static void decx_task(void *ctx, int task) {
    decx_job *j = ctx;
    int i = 0;
    while (task >= j->first[i + 1]) i++;
    dec_task(&j->part[i], task - j->first[i]);
}

static int64_t dec_rows_per_task(gr_backend *b, int n, const gr_tensor *w) {
    /* 1-2 tokens: one contiguous share of the rows per thread; more: enough tasks
     * to balance, few enough to keep each weight row's reuse over the tokens */
    int64_t per = 16;
    while (w->rows / per > 1024) per *= 2;
    if (n <= 2) per = gr_cpu_decode_rows_per_task(b, w->rows);
    return (per + 7) / 8 * 8;
}

void gr_cpu_matmul_x(gr_backend *b, float *const *ys, const gr_tensor *const *ws, int m, const float *x, int n) {
    const unsigned char *dec = b->decode_rows;
    int fuse = m > 1 && m <= MX && dec != NULL;
    for (int t = 0; fuse && t < n; t++) fuse = dec[t] != 0;
    for (int i = 0; fuse && i < m; i++)
        fuse = (b->exact || !gr_q8_supported(ws[i]->type, ws[i]->cols)) && ws[i]->cols == ws[0]->cols;
    if (!fuse) {
        for (int i = 0; i < m; i++) gr_cpu_matmul(b, ys[i], x, n, ws[i]);
        return;
    }
    decx_job j;
    j.m = m;
    j.first[0] = 0;
    double work = 0;
    for (int i = 0; i < m; i++) {
        int64_t per = dec_rows_per_task(b, n, ws[i]);
        j.part[i] = (dec_job){ys[i], x, n, ws[i], per, NULL};
        j.first[i + 1] = j.first[i] + (int)((ws[i]->rows + per - 1) / per);
        work += (double)n * (double)ws[i]->rows * (double)ws[i]->cols;
    }
    float *scratch = gr_cpu_scratch(b, (size_t)j.first[m] * 8 * (size_t)ws[0]->cols);
    for (int i = 0; i < m; i++) j.part[i].scratch = scratch + (size_t)j.first[i] * 8 * (size_t)ws[0]->cols;
    gr_cpu_run_tasks(b, decx_task, &j, j.first[m], work);
}

/* Prefill: the blocked GEMM of gemm.c. A task takes a contiguous run of 16-row
 * blocks and owns one scratch slot. */
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
    float *scratch = j->scratch + (size_t)task * (size_t)j->slot;
    for (int64_t bk = b0; bk < b1; bk++) {
#if GR_CPU_X86
        if (gr_cpu_isa >= GR_ISA_AVX512) { /* x in place */
            gr_gemm_block_avx512(j->y, j->x, j->n, j->w, bk * GR_GEMM_NR, gr_row_f32, scratch);
            continue;
        }
#endif
        gr_gemm_block(j->y, j->x, j->n, j->w, bk * GR_GEMM_NR, gr_row_f32, scratch);
    }
}

/* x's packing, 8 tiles of 6 tokens per task */
typedef struct xp_job {
    float *xp;
    const float *x;
    int n;
    int64_t cols;
} xp_job;

static void xp_task(void *ctx, int task) {
    xp_job *j = ctx;
    int t0 = task * 8 * GR_MR, m = j->n - t0 < 8 * GR_MR ? j->n - t0 : 8 * GR_MR;
    gr_gemm_pack_x(j->xp + (int64_t)t0 * j->cols, j->x + (int64_t)t0 * j->cols, m, j->cols);
}

static void gemm_matmul(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
    if (w->type == GR_BF16 && !b->exact && gr_cpu_bf16()) {
        gr_cpu_matmul_prefill_bf16(b, y, x, n, w);
        return;
    }
    int64_t nblocks = (w->rows + GR_GEMM_NR - 1) / GR_GEMM_NR;
    int tasks = 4 * b->n_threads;
    if (tasks > nblocks) tasks = (int)nblocks;
    int64_t slot = gr_gemm_scratch(w->cols);
    size_t need = (size_t)tasks * (size_t)slot;
    float *scratch = gr_cpu_scratch(b, need);
    const float *xin = x;
    if (!(GR_CPU_X86 && gr_cpu_isa >= GR_ISA_AVX512)) { /* the AVX-512 block reads x in place */
        float *xpack = gr_cpu_buffer(b, GR_CPU_BUF_XPACK,
                                     sizeof(float) * (size_t)gr_gemm_xpack_size(n, w->cols));
        xp_job xj = {xpack, x, n, w->cols};
        gr_cpu_run_tasks(b, xp_task, &xj, (n + 8 * GR_MR - 1) / (8 * GR_MR), 4.0 * (double)n * (double)w->cols);
        xin = xpack;
    }
    gemm_job j = {y, xin, n, tasks, w, nblocks, slot, scratch};
    gr_cpu_run_tasks(b, gemm_task, &j, tasks, (double)n * (double)w->rows * (double)w->cols);
}

void gr_cpu_matmul(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
    if (!b->exact && gr_q8_supported(w->type, w->cols)) {
        gr_cpu_matmul_q8(b, y, x, n, w);
        return;
    }
    const unsigned char *dec = b->decode_rows;
    int nd = 0;
    for (int t = 0; dec && t < n; t++) nd += dec[t] != 0;
    if (nd == 0) {
        gemm_matmul(b, y, x, n, w);
        return;
    }
    if (nd == n) {
        dec_matmul(b, y, x, n, w);
        return;
    }
    /* both kinds: gather each kind's rows, run it, scatter its results */
    size_t cols = (size_t)w->cols, rows = (size_t)w->rows;
    float *gx = gr_cpu_buffer(b, GR_CPU_BUF_SPLIT, sizeof(float) * (size_t)n * (cols + rows));
    float *gy = gx + (size_t)n * cols;
    for (int kind = 1; kind >= 0; kind--) {
        int m = 0;
        for (int t = 0; t < n; t++)
            if ((dec[t] != 0) == kind) memcpy(gx + (size_t)m++ * cols, x + (size_t)t * cols, sizeof(float) * cols);
        if (kind) dec_matmul(b, gy, gx, m, w);
        else gemm_matmul(b, gy, gx, m, w);
        m = 0;
        for (int t = 0; t < n; t++)
            if ((dec[t] != 0) == kind) memcpy(y + (size_t)t * rows, gy + (size_t)m++ * rows, sizeof(float) * rows);
    }
}
