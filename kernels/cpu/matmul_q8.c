/* The integer matmul path (Q8_0/Q4_0/Q4_1 weights, not exact mode): the
 * activation rows are quantized to 8-bit blocks once per matmul (q8.h), eight
 * token rows packed together for the batched kernel, and every (row, token)
 * result comes from the same integer dot, so it does not depend on the batch. */
#include "cpu_backend.h"
#include "gr_common.h"
#include "q8.h"
#include <stdlib.h>

/* The integer path: rows [r0, r1) of w against every quantized token row. The
 * same dot for every (row, token), so results do not depend on the batch. */
typedef struct q8_job {
    float *y;
    const cpu_impl *ci;
    int n;
    const gr_tensor *w;
    int64_t rows_per_task;
    uint8_t *aw; /* per task: one Q8_0 row's |w| (gr_q8_abs), for 16+ tokens */
} q8_job;

static void q8_task(void *ctx, int task) {
    q8_job *j = ctx;
    const gr_tensor *w = j->w;
    int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task, cols = w->cols;
    if (r1 > w->rows) r1 = w->rows;
    uint8_t *aw = j->aw ? j->aw + (size_t)task * (size_t)cols : NULL;
    /* 16 weight rows (~10 KB in Q8_0 at 576 columns) stay in L1 while the token
     * rows pass over them, up to 32 tokens (4 groups of 8) at a time: each row's
     * |w| (gr_q8_abs) is made once and serves them all */
    for (int64_t rb = r0; rb < r1; rb += 16) {
        int64_t re = rb + 16 < r1 ? rb + 16 : r1;
        int t = 0;
        while (t + 8 <= j->n) {
            int ng = (j->n - t) / 8 < 4 ? (j->n - t) / 8 : 4;
            /* the outputs are read back once the 16 rows are done: reading a
             * vector store's lanes right after it stalls store forwarding */
            float o[4][16][8];
            for (int64_t r = rb; r < re; r++) {
                const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
                if (w->type == GR_Q8_0) {
                    size_t tg = (size_t)t;
                    gr_q8_dot8x(wr, aw, j->ci->pq + tg * (size_t)cols, j->ci->pd + tg * (size_t)(cols / 32),
                                j->ci->ps + tg * (size_t)(cols / 32), cols, ng, o[0][r - rb], 16 * 8);
                    continue;
                }
                if (aw && ng > 1) gr_q8_abs(wr, cols, aw);
                for (int g = 0; g < ng; g++) {
                    size_t tg = (size_t)(t + 8 * g);
                    gr_q8_dot8(w->type, wr, ng > 1 ? aw : NULL, j->ci->pq + tg * (size_t)cols, j->ci->pd + tg * (size_t)(cols / 32),
                               j->ci->ps + tg * (size_t)(cols / 32), cols, o[g][r - rb]);
                }
            }
            for (int g = 0; g < ng; g++)
                for (int u = 0; u < 8; u++)
                    for (int64_t r = rb; r < re; r++)
                        j->y[(size_t)(t + 8 * g + u) * (size_t)w->rows + (size_t)r] = o[g][r - rb][u];
            t += 8 * ng;
        }
        for (; t < j->n; t++) {
            const int8_t *q = j->ci->xq + (size_t)t * (size_t)cols;
            const float *d = j->ci->xd + (size_t)t * (size_t)(cols / 32);
            const int32_t *s = j->ci->xs + (size_t)t * (size_t)(cols / 32);
            float *y = j->y + (size_t)t * (size_t)w->rows;
            for (int64_t r = rb; r < re; r++)
                y[r] = gr_q8_dot(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, q, d, s, cols);
        }
    }
}

/* The activations' quantization and 8-row packing, eight tokens per task */
typedef struct qx_job {
    cpu_impl *ci;
    const float *x;
    int n;
    int64_t cols;
} qx_job;

static void qx_task(void *ctx, int task) {
    qx_job *j = ctx;
    cpu_impl *ci = j->ci;
    int t0 = 8 * task, t1 = t0 + 8 < j->n ? t0 + 8 : j->n;
    for (int t = t0; t < t1; t++) {
        size_t o = (size_t)t * (size_t)j->cols;
        gr_q8_quantize(j->x + o, j->cols, ci->xq + o, ci->xd + o / 32, ci->xs + o / 32);
    }
    if (t1 - t0 == 8) {
        size_t o = (size_t)t0 * (size_t)j->cols;
        gr_q8_pack8(ci->xq + o, ci->xd + o / 32, ci->xs + o / 32, j->cols, ci->pq + o, ci->pd + o / 32,
                    ci->ps + o / 32);
    }
}

void gr_cpu_matmul_q8(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
    cpu_impl *ci = b->impl;
    size_t need = (size_t)n * (size_t)w->cols;
    if (need > ci->xq_cap) {
        free(ci->xq);
        free(ci->xd);
        free(ci->xs);
        free(ci->pq);
        free(ci->pd);
        free(ci->ps);
        ci->xq = gr_xmalloc(need);
        ci->xd = gr_xmalloc(need / 32 * sizeof(float));
        ci->xs = gr_xmalloc(need / 32 * sizeof(int32_t));
        ci->pq = gr_xmalloc(need);
        ci->pd = gr_xmalloc(need / 32 * sizeof(float));
        ci->ps = gr_xmalloc(need / 32 * sizeof(int32_t));
        ci->xq_cap = need;
    }
    qx_job qj = {ci, x, n, w->cols};
    gr_cpu_run_tasks(b, qx_task, &qj, (n + 7) / 8, 8.0 * (double)n * (double)w->cols);
    int64_t per = 8;
    while (w->rows / per > 512) per *= 2;
    if (n <= 2) per = gr_cpu_decode_rows_per_task(b, w->rows);
    int tasks = (int)((w->rows + per - 1) / per);
    uint8_t *aw = n >= 16 && w->type == GR_Q8_0
                      ? gr_cpu_buffer(b, GR_CPU_BUF_Q8ABS, (size_t)tasks * (size_t)w->cols)
                      : NULL;
    q8_job j = {y, ci, n, w, per, aw};
    gr_cpu_run_tasks(b, q8_task, &j, tasks, (double)n * (double)w->rows * (double)w->cols);
}
