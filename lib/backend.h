/* The backend boundary (DESIGN.md): every op the model computes goes through
 * this table. The CPU backend (kernels/cpu/backend_cpu.c: pthreads + AVX2/FMA with a scalar
 * fallback) is the reference; the CUDA backend (kernels/cuda/, built when nvcc is
 * found) fills the same table.
 *
 * Memory. A backend owns a memory space: host memory for the CPU, the GPU's for
 * CUDA (host_memory says which). Activations, token ids, positions, the KV pool
 * and logits live in buffers from dev_alloc, moved with upload / download /
 * copy; every op reads and writes only such buffers, queued in order on the
 * backend's stream (CUDA: asynchronous; download and sync wait for it). Model
 * weights are the exception: ops take the loaded gr_model's own tensors and norm
 * vectors (host memory), and a device backend maps each to its own copy, made by
 * prepare() at load (CUDA: every matrix bf16 whatever the file holds, norms f32).
 *
 * Types. Activation buffers carry a dtype (gr_dbuf); today every activation is
 * F32 on both backends and the KV pool is kv_dtype (CPU F32, CUDA BF16). All
 * activations are row-major, one row per token: shapes are given as (tokens,
 * width). The ops are pure functions of their inputs, so the training issue can
 * add a backward for each beside it and keep the forward activations it needs
 * (forward.c keeps them per layer on request). lib/ never sees a CUDA header. */
#ifndef GR_BACKEND_H
#define GR_BACKEND_H
#include "model.h"

struct gr_kv;

/* Besides the matrix types of model.h: 32-bit ints (token ids, positions, slots;
 * ggml's number). */
enum { GR_I32 = 26 };

/* A buffer in a backend's memory space with the element type it holds. */
typedef struct gr_dbuf {
    void *p;
    size_t n;     /* elements */
    int dtype;    /* enum gr_dtype */
} gr_dbuf;

/* The paged KV pool as the kernels see it (lib/kv_cache.h owns it): blocks of
 * block_size positions; block b holds, per layer l, block_size key rows then
 * block_size value rows of kv_dim elements each:
 *   K(b, l, i) = base + ((b * n_layers + l) * 2 + 0) * block_size * kv_dim + i * kv_dim
 *   V(b, l, i) = the same with + 1 instead of + 0.
 * A "slot" is b * block_size + i. */
typedef struct gr_kv_layout {
    void *base;
    int dtype;                   /* F32 or BF16 */
    int n_layers, kv_dim, block_size;
} gr_kv_layout;

/* Where each query token's keys and values are: token t belongs to the sequence
 * whose cache is kv[t] and sits at position pos[t]; it attends to positions
 * 0..pos[t] of that cache (causal), which must already hold K/V for them.
 * The host fields (kv, pos) are what the CPU kernels read; the same batch in
 * the backend's memory (the *_d fields: token t's sequence seq_d[t], whose
 * block table is row seq_d[t] of block_table_d, (n_seq, max_blocks)) is what a
 * device backend reads. For the CPU backend both point into host memory. */
typedef struct gr_attn_batch {
    int n;                       /* query tokens */
    struct gr_kv *const *kv;     /* (n) host */
    const int *pos;              /* (n) host */
    const int *pos_d, *seq_d;    /* (n) backend memory */
    const int *block_table_d;    /* (n_seq, max_blocks) backend memory */
    int n_seq, max_blocks;
    int max_pos;                 /* max over t of pos[t] */
    gr_kv_layout kv_pool;
} gr_attn_batch;

/* One sequence's sampling request for a backend that samples on the device. */
typedef struct gr_sample_row {
    float temperature, top_p;
    int top_k;
    uint64_t seed, stream;       /* the sequence's random stream */
    uint64_t step;               /* tokens it generated so far */
} gr_sample_row;

typedef struct gr_backend gr_backend;
struct gr_backend {
    const char *name;
    int n_threads;
    /* 0 (the default): matmuls with Q8_0/Q4_0/Q4_1 weights quantize the activation
     * rows to 8-bit blocks and use integer dot products, as llama.cpp does (kernels/cpu/q8.h;
     * logits move by ~1e-3 relative). 1: they dequantize the weights and keep f32
     * activations, matching an f32 reference on the dequantized weights to ~1e-6
     * (the parity tests against transformers use it). BF16 weights likewise: by
     * default their prefill rows on AVX512-BF16 CPUs round the activations to
     * bf16 (kernels/cpu/prefill_bf16.h, as llama.cpp does); exact keeps f32. */
    int exact;
    /* Training only (backend_train.h): 0 (the default) fp32 matmuls; 1
     * (--precision bf16): the training matmuls (linear layers and the LM head,
     * forward and backward) round their operands to bf16 and accumulate in fp32
     * (kernels/cpu/gemm_bf16.h). Set before the first op; the CPU backend has it. */
    int train_bf16;
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
    /* Optional (NULL: m matmul calls): ys[i] (n, ws[i]->rows) = x · ws[i]ᵀ for
     * i < m (at most 4) weights of one input (q/k/v, gate/up): the bits of m
     * matmul calls, in one pass of the threads where the backend can. */
    void (*matmul_x)(gr_backend *b, float *const *ys, const gr_tensor *const *ws, int m, const float *x,
                     int n);
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

    /* ---- device memory and stream (both backends) ------------------------------ */
    int host_memory;             /* 1: buffers are plain host memory (the CPU) */
    int kv_dtype;                /* element type of the KV pool this backend reads */
    void *stream;                /* the backend's stream (cudaStream_t), NULL on the CPU */
    /* Contents undefined; NULL when out of memory. */
    void *(*dev_alloc)(gr_backend *b, size_t bytes);
    void (*dev_free)(gr_backend *b, void *p);
    void (*upload)(gr_backend *b, void *dst, const void *src, size_t bytes);   /* host -> dev */
    void (*download)(gr_backend *b, void *dst, const void *src, size_t bytes); /* dev -> host, waits */
    void (*copy)(gr_backend *b, void *dst, const void *src, size_t bytes);     /* dev -> dev */
    void (*sync)(gr_backend *b);
    /* Makes the model's weights usable by the ops (CUDA: uploads them as bf16).
     * NULL when nothing is needed. Called once per model by gr_ctx_new. */
    int (*prepare)(gr_backend *b, const gr_model *m, gr_err *err);
    /* The layer's K and V rows of n tokens (n, kv_dim each, F32) into the pool at
     * slots slot_d[0..n) (backend memory), converted to the pool's dtype. */
    void (*kv_store)(gr_backend *b, const gr_kv_layout *pool, int layer, const float *k,
                     const float *v, const int *slot_d, int n);
    /* Optional (NULL on the CPU, which samples on the host with gr_sample):
     * picks the next token of each of n rows of logits_d (n, vocab) on the
     * device, greedy or temperature -> top-k -> top-p as sample.h, with the
     * random draw a function of (seed, stream, step) only. Writes tokens[n],
     * with logprob (when not NULL) log softmax of the raw logits at the token,
     * and watch_out (n, n_watch) the raw logits of the watched ids. Host arrays. */
    int (*sample)(gr_backend *b, const float *logits_d, int n, int vocab, const gr_sample_row *rows,
                  const int *watch, int n_watch, int *tokens, float *logprob, float *watch_out);

    /* ---- graphs of the decode step (optional: NULL on the CPU) ------------------- */
    /* forward.c wraps the ops of a pure decode step (every sequence feeds one
     * token) in graph_begin / graph_end, with a key naming everything the
     * launches depend on: the batch size, the block tables' width, the model and
     * every buffer's address. The step's inputs (tokens, positions, slots, block
     * tables) are uploaded before graph_begin into those same buffers, so a
     * replay computes the new step. graph_begin returns 1: a graph for key was
     * launched, skip the ops; 0: capturing, queue the ops, then call graph_end;
     * -1: queue the ops plainly (the first time a key is seen, so that every
     * buffer is sized before a capture; graphs off; or a capture of it failed).
     * graph_end returns 0 (captured and launched) or -1: the capture failed,
     * nothing ran: queue the ops again plainly. */
    int use_graphs;              /* 0: never (the caller may clear it; CUDA sets it unless GR_CUDA_GRAPHS=0) */
    int (*graph_begin)(gr_backend *b, uint64_t key);
    int (*graph_end)(gr_backend *b, uint64_t key);
    long graph_captures, graph_replays, graph_failures; /* counts, for tests and benchmarks */
};

/* A buffer of n elements of dtype in b's memory (aborts when out of memory,
 * as gr_xmalloc does), and its release. */
gr_dbuf gr_dbuf_alloc(gr_backend *b, int dtype, size_t n);
void gr_dbuf_free(gr_backend *b, gr_dbuf *d);
size_t gr_dtype_size(int dtype); /* F32 4, F16/BF16 2; 0 for block types */

/* n_threads <= 0: all online cores. A backend runs one op at a time (its thread
 * pool and scratch are shared): one backend per thread of control. */
gr_backend *gr_backend_cpu(int n_threads);
void gr_backend_free(gr_backend *b);

/* The backend a --device argument names: "cpu" (n_threads as above), "cuda"
 * or "cuda:N" (GPU N). NULL with err when the name is unknown, this build has
 * no such backend, or the device cannot be opened. (lib/backend_open.c) */
gr_backend *gr_backend_open(const char *device, int n_threads, gr_err *err);
/* Whether `device` names a backend of this build (for option parsing: a usage
 * error, where opening the device is a runtime one). */
int gr_device_check(const char *device, gr_err *err);
/* The backends of this build, e.g. "cpu" or "cpu, cuda (PATH, loaded by
 * --device cuda)" with the libgr-cuda.so it would load (lib/cuda_dl.h). */
const char *gr_backends_built(void);
/* The CUDA backend on GPU `device` (kernels/cuda/backend_cuda.cu, in
 * libgr-cuda.so: gr_backend_open finds it by name, lib/cuda_dl.h). */
gr_backend *gr_backend_cuda(int device, gr_err *err);

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
 * logits and (bf16 training) its packed weight; the matmul's rows gathered
 * by kind (GR_CPU_BUF_SPLIT); the inference prefill attention's runs and
 * packed keys (GR_CPU_BUF_ATT_PREFILL). */
enum {
    GR_CPU_BUF_SCRATCH, GR_CPU_BUF_XPACK, GR_CPU_BUF_XPERM, GR_CPU_BUF_Q8ABS,
    GR_CPU_BUF_ATT_PACK, GR_CPU_BUF_ATT_GRAD, GR_CPU_BUF_XENT, GR_CPU_BUF_SPLIT, GR_CPU_BUF_XENT_W,
    GR_CPU_BUF_ATT_PREFILL, GR_CPU_BUF_N
};
void *gr_cpu_buffer(gr_backend *b, int slot, size_t bytes);
#endif
