/* Inside the CPU backend: the state behind gr_backend.impl, the helpers the op
 * files share, and each op family's entry point (backend_cpu.c puts them in the
 * gr_backend table). Not seen by lib/. */
#ifndef GR_CPU_BACKEND_H
#define GR_CPU_BACKEND_H
#include "backend.h"
#include "pool.h"
#include <stddef.h>
#include <stdint.h>

/* Whether this translation unit is compiled with AVX2/FMA/F16C: the *_avx2.c
 * and *_avx512.c files always are (their own flags, see the Makefile), other
 * files under -march=native or x86-64-v3. Which variant runs is chosen at run
 * time (isa.h), never by this macro outside the variant files. */
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && defined(__x86_64__)
#define GR_CPU_AVX2 1
#else
#define GR_CPU_AVX2 0
#endif

typedef struct cpu_impl {
    gr_pool *pool;
    int8_t *xq;        /* quantized activations for the integer path */
    float *xd;
    int32_t *xs;
    int8_t *pq;        /* the same rows, eight at a time in gr_q8_pack8's layout */
    float *pd;
    int32_t *ps;
    size_t xq_cap;     /* elements of xq (and of pq) */
    void *buf[GR_CPU_BUF_N]; /* gr_cpu_buffer */
    size_t buf_cap[GR_CPU_BUF_N];
} cpu_impl;

/* Tiny jobs run on the calling thread (see backend_cpu.c); `work` is in
 * multiply-adds. The tasks are the same either way, so results do not change. */
void gr_cpu_run_tasks(gr_backend *b, void (*fn)(void *, int), void *ctx, int n, double work);
/* Decode (1-2 tokens): rows per task, a few contiguous shares per thread (a multiple of 8). */
int64_t gr_cpu_decode_rows_per_task(const gr_backend *b, int64_t rows);
/* At least `floats` floats of scratch, 64-byte aligned (GR_CPU_BUF_SCRATCH). */
float *gr_cpu_scratch(gr_backend *b, size_t floats);

/* The ops (signatures of gr_backend's table) */
void gr_cpu_matmul(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w);       /* matmul.c */
void gr_cpu_matmul_x(gr_backend *b, float *const *ys, const gr_tensor *const *ws, int m, const float *x,
                     int n); /* matmul.c */
void gr_cpu_matmul_q8(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w);    /* matmul_q8.c */
void gr_cpu_attention(gr_backend *b, float *out, const float *q, const gr_attn_batch *ab,     /* attention.c */
                      int layer, int n_heads, int n_kv_heads, int hd);
void gr_cpu_embedding(gr_backend *b, float *out, const gr_tensor *emb, const int *tokens, int n); /* elementwise.c */
void gr_cpu_rmsnorm(gr_backend *b, float *out, const float *x, const float *w, int n, int dim, float eps);
void gr_cpu_rope(gr_backend *b, float *x, const int *pos, int n, int n_heads, int hd, const float *inv);
void gr_cpu_swiglu(gr_backend *b, float *out, const float *g, const float *u, int64_t n);
void gr_cpu_add(gr_backend *b, float *y, const float *x, int64_t n);
/* The device interface on host memory (cpu_device.c). */
void gr_cpu_device_init(gr_backend *b);
#endif
