/* The CPU backend's gr_backend table (see kernels/cpu/README): a persistent
 * thread pool (pool.c), the ops of matmul.c, matmul_q8.c, attention.c and
 * elementwise.c, and the buffers they keep between calls. */
#include "cpu_backend.h"
#include "gr_common.h"
#include <stdlib.h>
#include <unistd.h>

static gr_pool *pool_of(gr_backend *b) { return ((cpu_impl *)b->impl)->pool; }

void gr_cpu_parallel(gr_backend *b, void (*fn)(void *, int), void *ctx, int n) {
    gr_pool_run(pool_of(b), fn, ctx, n);
}

/* Tiny jobs run on the calling thread. With the spinning pool a hand-off costs
 * about a microsecond, so only jobs below ~5 us stay serial (SmolLM2's smallest
 * decode matmul, 576x192, is ~110k multiply-adds: it goes parallel). `work` is
 * in multiply-adds; the tasks are the same either way, so results do not change. */
enum { PAR_MIN_WORK = 1 << 15 };

void gr_cpu_run_tasks(gr_backend *b, void (*fn)(void *, int), void *ctx, int n, double work) {
    if (work < PAR_MIN_WORK) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    gr_cpu_parallel(b, fn, ctx, n);
}

/* Decode (1-2 tokens): a few contiguous shares of the rows per thread (4).
 * Every task is a long sequential weight stream, and few claims per thread keep
 * the shared task counter from bouncing between cores dozens of times per
 * matmul (SmolLM2 F16 decode at 2 threads: ~50 -> ~85 tokens/s going from 36
 * tasks to one per thread); more than one per thread lets the others take over
 * the shares of a thread that another process has descheduled, instead of
 * waiting out its time slice (the pool then sleeps, pool.c). */
int64_t gr_cpu_decode_rows_per_task(const gr_backend *b, int64_t rows) {
    int shares = b->n_threads > 1 ? 4 * b->n_threads : 1;
    int64_t per = (rows + shares - 1) / shares;
    return (per + 7) / 8 * 8;
}

/* At least `need` floats of scratch, 64-byte aligned (the GEMM's packed weights
 * are read with aligned loads). */
float *gr_cpu_scratch(gr_backend *b, size_t need) {
    return gr_cpu_buffer(b, GR_CPU_BUF_SCRATCH, need * sizeof(float));
}

void *gr_cpu_buffer(gr_backend *b, int slot, size_t bytes) {
    cpu_impl *ci = b->impl;
    if (bytes > ci->buf_cap[slot]) {
        free(ci->buf[slot]);
        ci->buf[slot] = gr_xmalloc_aligned(64, bytes);
        ci->buf_cap[slot] = bytes;
    }
    return ci->buf[slot];
}

static void cpu_free(gr_backend *b) {
    cpu_impl *ci = b->impl;
    gr_pool_free(ci->pool);
    free(ci->xq);
    free(ci->xd);
    free(ci->xs);
    free(ci->pq);
    free(ci->pd);
    free(ci->ps);
    for (int i = 0; i < GR_CPU_BUF_N; i++) free(ci->buf[i]);
    free(ci);
    free(b);
}

gr_backend *gr_backend_cpu(int n_threads) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > 256) n_threads = 256;
    gr_backend *b = gr_xcalloc(1, sizeof *b);
    cpu_impl *ci = gr_xcalloc(1, sizeof *ci);
    b->name = "cpu";
    b->n_threads = n_threads;
    b->impl = ci;
    b->embedding = gr_cpu_embedding;
    b->rmsnorm = gr_cpu_rmsnorm;
    b->matmul = gr_cpu_matmul;
    b->matmul_x = gr_cpu_matmul_x;
    b->rope = gr_cpu_rope;
    b->attention = gr_cpu_attention;
    b->swiglu = gr_cpu_swiglu;
    b->add = gr_cpu_add;
    b->free = cpu_free;
    gr_cpu_device_init(b);
    ci->pool = gr_pool_new(n_threads - 1);
    return b;
}

void gr_backend_free(gr_backend *b) {
    if (b) b->free(b);
}
