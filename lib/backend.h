/* The backend boundary (DESIGN.md): every op the model computes goes through
 * this table. The CPU backend (kernels/cpu/backend_cpu.c: pthreads + AVX2/FMA with a scalar
 * fallback) is the reference; a CUDA backend fills the same table from kernels/.
 *
 * All activations are row-major float arrays, one row per token: shapes are given
 * as (tokens, width). Buffers passed to an op belong to the backend's memory
 * space (host memory for the CPU backend). The ops are pure functions of their
 * inputs, so the training issue can add a backward for each beside it and keep
 * the forward activations it needs (forward.c keeps them per layer on request). */
#ifndef GR_BACKEND_H
#define GR_BACKEND_H
#include "model.h"

struct gr_kv;

/* Where each query token's keys and values are: token t belongs to the sequence
 * whose cache is kv[t] and sits at position pos[t]; it attends to positions
 * 0..pos[t] of that cache (causal), which must already hold K/V for them. */
typedef struct gr_attn_batch {
    int n;                       /* query tokens */
    struct gr_kv *const *kv;     /* (n) */
    const int *pos;              /* (n) */
} gr_attn_batch;

typedef struct gr_backend gr_backend;
struct gr_backend {
    const char *name;
    int n_threads;
    /* 0 (the default): matmuls with Q8_0/Q4_0/Q4_1 weights quantize the activation
     * rows to 8-bit blocks and use integer dot products, as llama.cpp does (kernels/cpu/q8.h;
     * logits move by ~1e-3 relative). 1: they dequantize the weights and keep f32
     * activations, matching an f32 reference on the dequantized weights to ~1e-6
     * (the parity tests against transformers use it). */
    int exact;
    /* The kinds of the rows of the next matmul, set by the caller (forward.c):
     * decode_rows[t] != 0 for a decode row (its sequence's only new token in the
     * forward call), 0 for a prefill row; NULL: all prefill rows. The CPU backend
     * computes each kind with one kernel and one summation order, so a row's
     * result does not depend on the rows batched with it (kernels/cpu/matmul.c). */
    const unsigned char *decode_rows;
    void *impl;
    /* out (n, dim) = rows tokens[i] of emb */
    void (*embedding)(gr_backend *b, float *out, const gr_tensor *emb, const int *tokens, int n);
    /* out (n, dim) = x / sqrt(mean(x^2) + eps) * w  (out may be x) */
    void (*rmsnorm)(gr_backend *b, float *out, const float *x, const float *w, int n, int dim,
                    float eps);
    /* y (n, w->rows) = x (n, w->cols) · wᵀ */
    void (*matmul)(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w);
    /* In place on x (n, n_heads*head_dim): HF half-split rotation at positions pos. */
    void (*rope)(gr_backend *b, float *x, const int *pos, int n, int n_heads, int head_dim,
                 const float *inv_freq);
    /* out (n, n_heads*head_dim) = softmax(q kᵀ/√hd + causal) v, GQA over the caches */
    void (*attention)(gr_backend *b, float *out, const float *q, const gr_attn_batch *ab,
                      int layer, int n_heads, int n_kv_heads, int head_dim);
    /* out (n) = silu(gate) * up  (out may be gate) */
    void (*swiglu)(gr_backend *b, float *out, const float *gate, const float *up, int64_t n);
    /* y += x, n elements (the residual) */
    void (*add)(gr_backend *b, float *y, const float *x, int64_t n);
    void (*free)(gr_backend *b);
};

/* n_threads <= 0: all online cores. A backend runs one op at a time (its thread
 * pool and scratch are shared): one backend per thread of control. */
gr_backend *gr_backend_cpu(int n_threads);
void gr_backend_free(gr_backend *b);

/* The CPU thread pool, also for callers that want to run their own loops:
 * fn(ctx, i) for i in [0, n), spread over the backend's threads. */
void gr_cpu_parallel(gr_backend *b, void (*fn)(void *ctx, int i), void *ctx, int n);

/* One line naming the CPU model, its ISA level and features, and the kernel
 * paths the CPU backend runs (kernels/cpu/isa.c; GR_CPU_ISA forces a lower level). */
const char *gr_cpu_describe(void);

/* A buffer of at least `bytes`, 64-byte aligned, kept by the CPU backend for
 * the ops that need the same temporary on every call: no fresh pages, so no
 * page faults, per step. Valid until the next call with the same slot or
 * gr_backend_free; contents are not kept. One slot per use: the inference
 * kernels' scratch, packed and permuted activations and Q8_0 |w| rows; the
 * training attention's packed keys and per-head gradients, the cross-entropy's
 * logits; the matmul's rows gathered by kind (GR_CPU_BUF_SPLIT). */
enum {
    GR_CPU_BUF_SCRATCH, GR_CPU_BUF_XPACK, GR_CPU_BUF_XPERM, GR_CPU_BUF_Q8ABS,
    GR_CPU_BUF_ATT_PACK, GR_CPU_BUF_ATT_GRAD, GR_CPU_BUF_XENT, GR_CPU_BUF_SPLIT, GR_CPU_BUF_N
};
void *gr_cpu_buffer(gr_backend *b, int slot, size_t bytes);
#endif
