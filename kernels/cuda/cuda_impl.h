/* Inside the CUDA backend: the state behind gr_backend.impl, the helpers the op
 * files share, and each op family's entry point (backend_cuda.cu puts them in
 * the gr_backend table). Seen only by the .cu files here, never by lib/.
 *
 * Every op is queued on the backend's one stream; host functions return as soon
 * as the work is queued, except download / sync / sample, which wait for it. */
#ifndef GR_CUDA_IMPL_H
#define GR_CUDA_IMPL_H
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
extern "C" {
#include "backend.h"
}

/* A failed CUDA or cuBLAS call in an op is fatal (ops return nothing, like an
 * out-of-memory abort in gr_xmalloc): the message names the call and the place. */
#define GR_CU(call) gr_cuda_check((call), #call, __FILE__, __LINE__)
#define GR_CUBLAS(call) gr_cublas_check((call), #call, __FILE__, __LINE__)
void gr_cuda_check(cudaError_t e, const char *what, const char *file, int line);
void gr_cublas_check(cublasStatus_t s, const char *what, const char *file, int line);
/* The last kernel launch's error (launch configuration), checked after each launch. */
#define GR_CU_LAUNCH() GR_CU(cudaGetLastError())

struct gr_weight_map;   /* host address -> device copy (weights.cu) */
struct gr_matmul_cache; /* cuBLASLt heuristics per shape (matmul.cu) */
struct gr_graph_cache;  /* decode-step graphs (graph.cu) */

typedef struct cuda_impl {
    int device;
    cudaStream_t stream;
    cudaDeviceProp prop;
    cublasLtHandle_t lt;
    cublasHandle_t cublas;
    int use_lt;                  /* 0 after cuBLASLt found no algorithm: cuBLAS */
    int f32;                     /* exact mode (gr_backend.exact at prepare): f32 weights,
                                    f32 KV, f32 matmuls (cuBLAS SGEMM, no TF32) */
    void *workspace;             /* cuBLASLt workspace */
    size_t workspace_bytes;
    __nv_bfloat16 *xbf;          /* activations converted for a matmul */
    size_t xbf_cap;              /* elements */
    float *sample_buf;           /* per row: exp(z - max) over the vocabulary */
    size_t sample_cap;           /* floats */
    void *sample_io;             /* rows, tokens, logprobs, watched logits (device) */
    size_t sample_io_cap;
    void *sample_host;           /* pinned mirror of sample_io */
    struct gr_weight_map *weights;
    struct gr_matmul_cache *mm;
    struct gr_graph_cache *graphs; /* decode-step graphs by key (graph.cu) */
    struct gr_prefill_tiles *prefill; /* the query tiles of prefill attention (attention_prefill.cu) */
} cuda_impl;

static inline cuda_impl *gr_cuda_impl(gr_backend *b) { return (cuda_impl *)b->impl; }

/* weights.cu: the device copy of a model matrix ([rows][cols], bf16, or f32 in
 * exact mode) or of a host f32 vector of n elements (norm weights, RoPE
 * frequencies), made on first use (prepare makes them all at load). */
const void *gr_cuda_weight(gr_backend *b, const gr_tensor *t);
const float *gr_cuda_vector(gr_backend *b, const float *host, size_t n);
int gr_cuda_prepare(gr_backend *b, const gr_model *m, gr_err *err);
void gr_cuda_weights_free(gr_backend *b);
size_t gr_cuda_weight_bytes(gr_backend *b);

/* The ops (signatures of gr_backend's table) */
void gr_cuda_embedding(gr_backend *b, float *out, const gr_tensor *emb, const int *tokens, int n); /* embedding.cu */
void gr_cuda_rmsnorm(gr_backend *b, float *out, const float *x, const float *w, int n, int dim, float eps); /* rmsnorm.cu */
void gr_cuda_rope(gr_backend *b, float *x, const int *pos, int n, int n_heads, int hd, const float *inv); /* rope.cu */
void gr_cuda_attention(gr_backend *b, float *out, const float *q, const gr_attn_batch *ab,  /* attention.cu */
                       int layer, int n_heads, int n_kv_heads, int hd);
void gr_cuda_swiglu(gr_backend *b, float *out, const float *g, const float *u, int64_t n); /* elementwise.cu */
void gr_cuda_add(gr_backend *b, float *y, const float *x, int64_t n);
void gr_cuda_kv_store(gr_backend *b, const gr_kv_layout *pool, int layer, const float *k, const float *v,
                      const int *slot, int n);
void gr_cuda_f32_to_bf16(gr_backend *b, __nv_bfloat16 *out, const float *x, int64_t n);
void gr_cuda_matmul(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w); /* matmul.cu */
void gr_cuda_matmul_free(gr_backend *b);
int gr_cuda_sample(gr_backend *b, const float *logits, int n, int vocab, const gr_sample_row *rows, /* sample.cu */
                   const int *watch, int n_watch, int *tokens, float *logprob, float *watch_out);
void gr_cuda_sample_free(gr_backend *b);
extern "C" int gr_cuda_graph_begin(gr_backend *b, uint64_t key); /* graph.cu */
extern "C" int gr_cuda_graph_end(gr_backend *b, uint64_t key);
void gr_cuda_graphs_free(gr_backend *b);
int gr_cuda_attention_prefill(gr_backend *b, float *out, const float *q, const gr_attn_batch *ab, /* attention_prefill.cu */
                              int layer, int n_heads, int n_kv_heads, int hd);
void gr_cuda_prefill_free(gr_backend *b);

/* 1-D launch size: blocks of `threads` covering n items, capped for grid-stride loops. */
static inline unsigned gr_cuda_blocks(int64_t n, int threads) {
    int64_t g = (n + threads - 1) / threads;
    if (g > 65535 * 32) g = 65535 * 32;
    return (unsigned)(g < 1 ? 1 : g);
}
#endif
