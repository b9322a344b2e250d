/* Inside the CUDA training ops (lib/backend_train.h's table, issue 17): the
 * per-backend state they share and each file's entry points (train_ops.cu puts
 * them in the table). Seen only by the train_*.cu files.
 *
 * Memory: the training model's blocks (weights, gradients, moments,
 * activations, index arrays) are CUDA managed memory (alloc), so the host code
 * of lib/train_*.c reads them in place where it must (checkpoints, resume) after
 * sync; the ops themselves run on the backend's stream and never wait, except
 * xent and sumsq, which return a number. Every reduction is in a fixed order
 * (no atomics): the ops are deterministic run to run. Managed memory is zeroed
 * on the device at allocation (its pages start there) and never asked for
 * beyond the GPU's free memory (train_mem.cu); plain cudaMalloc blocks with
 * explicit copies at checkpoints would be the safer design (not done).
 *
 * Precision: fp32 storage and fp32 accumulation everywhere; the matmuls run on
 * the bf16 tensor cores (cuBLAS CUBLAS_COMPUTE_32F_FAST_16BF: inputs rounded to
 * bf16, fp32 accumulation) unless GR_CUDA_TRAIN_F32=1 (plain fp32 SGEMM, for
 * parity tests). */
#ifndef GR_CUDA_TRAIN_IMPL_H
#define GR_CUDA_TRAIN_IMPL_H
#include "cuda_impl.h"
extern "C" {
#include "backend_train.h"
}

typedef struct train_state {
    gr_backend *b;
    cublasHandle_t cublas;       /* default math mode, on the backend's stream */
    cublasComputeType_t compute; /* FAST_16BF, or 32F with GR_CUDA_TRAIN_F32=1 */
    void *scratch[4];            /* per-use device scratch, grown on demand */
    size_t cap[4];
} train_state;

enum { TS_XENT = 0, TS_PART = 1, TS_ATT = 2, TS_NLL = 3 };

train_state *gr_ctrain_state(gr_backend *b);
void *gr_ctrain_scratch(gr_backend *b, int slot, size_t bytes);
static inline cudaStream_t gr_ctrain_stream(gr_backend *b) { return gr_cuda_impl(b)->stream; }

/* train_mem.cu */
void *gr_ctrain_alloc(gr_backend *b, size_t bytes);
void gr_ctrain_release(gr_backend *b, void *p);
void gr_ctrain_sync(gr_backend *b);
void gr_ctrain_zero(gr_backend *b, float *x, int64_t n);
void gr_ctrain_add(gr_backend *b, float *y, const float *x, int64_t n);
void gr_ctrain_rows(gr_backend *b, float *dst, const float *src, const int *idx, int n, int dim,
                    int scatter);
double gr_ctrain_sumsq(gr_backend *b, const float *x, int64_t n);
void gr_ctrain_scale(gr_backend *b, float *x, float s, int64_t n);
void gr_ctrain_adamw(gr_backend *b, float *p, const float *g, float *m, float *v, int64_t n,
                     float lr, float beta1, float beta2, float eps, float wd, int t);
/* train_layer.cu */
void gr_ctrain_rmsnorm_fwd(gr_backend *b, float *out, float *rstd, const float *x, const float *w,
                           int n, int dim, float eps);
void gr_ctrain_rmsnorm_bwd(gr_backend *b, float *dx, float *dw, const float *dout, const float *x,
                           const float *w, const float *rstd, int n, int dim);
void gr_ctrain_rope(gr_backend *b, float *x, const int *pos, int n, int heads, int hd,
                    const float *inv, int inverse);
void gr_ctrain_swiglu_fwd(gr_backend *b, float *out, const float *gate, const float *up, int64_t n);
void gr_ctrain_swiglu_bwd(gr_backend *b, float *dgate, float *dup, const float *dout,
                          const float *gate, const float *up, int64_t n);
void gr_ctrain_embedding_fwd(gr_backend *b, float *out, const float *emb, const int *tok, int n,
                             int dim);
void gr_ctrain_embedding_bwd(gr_backend *b, float *demb, const float *dout, const int *tok, int n,
                             int dim);
/* train_attention.cu */
void gr_ctrain_attention_fwd(gr_backend *b, float *out, float *lse, const float *q, const float *k,
                             const float *v, const int *start, int n_seq, int H, int Hkv, int hd);
void gr_ctrain_attention_bwd(gr_backend *b, float *dq, float *dk, float *dv, const float *dout,
                             const float *out, const float *lse, const float *q, const float *k,
                             const float *v, const int *start, int n_seq, int H, int Hkv, int hd);
/* train_matmul.cu */
void gr_ctrain_matmul_fwd(gr_backend *b, float *y, const float *x, const float *w, int n, int in,
                          int out);
void gr_ctrain_matmul_bwd(gr_backend *b, float *dx, float *dw, const float *dy, const float *x,
                          const float *w, int n, int in, int out);
double gr_ctrain_xent(gr_backend *b, float *dh, float *dw, const float *h, const float *w,
                      const int *target, int n, int dim, int vocab, float scale);
#endif
