/* Training ops: the forward ops in the form training needs (fp32 weights, kept
 * activations) and the backward of each, as a table that a CUDA backend can fill
 * later beside the CPU one (kernels/cpu/backend_cpu_train.c).
 *
 * Conventions: row-major fp32, one row per token, shapes as (rows, width).
 * "+=" marks outputs that are accumulated into (gradients of weights and of
 * activations that feed several consumers); every other output is overwritten.
 * Every op is deterministic: each output element is summed in a fixed order that
 * does not depend on the thread count (training resumes bit for bit).
 *
 * Tokens of several sequences are packed without padding: sequence s holds the
 * rows [start[s], start[s+1]) and its positions are 0, 1, ... (right padding and
 * a causal mask give the same result, and the pads cost nothing). */
#ifndef GR_BACKEND_TRAIN_H
#define GR_BACKEND_TRAIN_H
#include <stdint.h>
#include "backend.h"

typedef struct gr_train_ops gr_train_ops;
struct gr_train_ops {
    const char *name;
    /* y (n, out) = x (n, in) · wᵀ, w (out, in) */
    void (*matmul_fwd)(gr_backend *b, float *y, const float *x, const float *w, int n, int in,
                       int out);
    /* dx (n, in) += dy · w  (skipped when dx is NULL);  dw (out, in) += dyᵀ · x */
    void (*matmul_bwd)(gr_backend *b, float *dx, float *dw, const float *dy, const float *x,
                       const float *w, int n, int in, int out);
    /* out (n, dim) = x · rstd · w with rstd (n) = 1/sqrt(mean(x²) + eps) */
    void (*rmsnorm_fwd)(gr_backend *b, float *out, float *rstd, const float *x, const float *w,
                        int n, int dim, float eps);
    /* dx (n, dim) += ∂/∂x;  dw (dim) += ∂/∂w */
    void (*rmsnorm_bwd)(gr_backend *b, float *dx, float *dw, const float *dout, const float *x,
                        const float *w, const float *rstd, int n, int dim);
    /* In place on x (n, heads*hd): HF half-split rotation by pos·inv (fp32 angles).
     * inverse = 1 rotates backwards, which is the backward of the rotation. */
    void (*rope)(gr_backend *b, float *x, const int *pos, int n, int heads, int hd,
                 const float *inv, int inverse);
    /* Causal GQA attention per sequence: out (n, H*hd), lse (n, H) = log Σ exp of
     * each row's scaled scores (kept for the backward, instead of the probabilities).
     * q (n, H*hd), k and v (n, Hkv*hd). */
    void (*attention_fwd)(gr_backend *b, float *out, float *lse, const float *q, const float *k,
                          const float *v, const int *start, int n_seq, int H, int Hkv, int hd);
    /* dq (n, H*hd), dk, dv (n, Hkv*hd): overwritten. */
    void (*attention_bwd)(gr_backend *b, float *dq, float *dk, float *dv, const float *dout,
                          const float *out, const float *lse, const float *q, const float *k,
                          const float *v, const int *start, int n_seq, int H, int Hkv, int hd);
    /* out (n) = silu(gate) ⊙ up */
    void (*swiglu_fwd)(gr_backend *b, float *out, const float *gate, const float *up, int64_t n);
    /* dgate, dup (n): overwritten (may not alias dout) */
    void (*swiglu_bwd)(gr_backend *b, float *dgate, float *dup, const float *dout,
                       const float *gate, const float *up, int64_t n);
    /* out (n, dim) = emb rows tok[i] */
    void (*embedding_fwd)(gr_backend *b, float *out, const float *emb, const int *tok, int n,
                          int dim);
    /* demb (vocab, dim) += scatter of dout (n, dim) by tok */
    void (*embedding_bwd)(gr_backend *b, float *demb, const float *dout, const int *tok, int n,
                          int dim);
    /* Cross-entropy of rows h (n, dim) through the head w (vocab, dim) against
     * target (n): returns Σ NLL (double). With dh != NULL also dh (n, dim) = scale ·
     * ∂ΣNLL/∂h (overwritten) and dw (vocab, dim) += scale · ∂ΣNLL/∂w. The logits
     * are computed in chunks of rows, so memory stays (chunk, vocab). */
    double (*xent)(gr_backend *b, float *dh, float *dw, const float *h, const float *w,
                   const int *target, int n, int dim, int vocab, float scale);
    /* Σ x² in double (for the global gradient norm) */
    double (*sumsq)(gr_backend *b, const float *x, int64_t n);
    /* x *= s */
    void (*scale)(gr_backend *b, float *x, float s, int64_t n);
    /* One AdamW step (torch.optim.AdamW): t = the step number from 1. */
    void (*adamw)(gr_backend *b, float *p, const float *g, float *m, float *v, int64_t n,
                  float lr, float beta1, float beta2, float eps, float wd, int t);

    /* ---- memory and the glue between ops (train_model.c never touches an
     * activation from the host, so the table may run on a device) ---- */
    /* bytes of zeroed memory that the ops address (CPU: the
     * heap; CUDA: device memory, reached from the host through upload and
     * download);
     * NULL when out of memory. */
    void *(*alloc)(gr_backend *b, size_t bytes);
    void (*release)(gr_backend *b, void *p);
    /* Waits for every queued op: the host may then read and write that memory. */
    void (*sync)(gr_backend *b);
    /* x (n) = 0 */
    void (*zero)(gr_backend *b, float *x, int64_t n);
    /* y (n) += x (the residual) */
    void (*add)(gr_backend *b, float *y, const float *x, int64_t n);
    /* scatter = 0: dst row i = src row idx[i]; 1: dst row idx[i] = src row i
     * (rows of dim floats, i < n; the idx of a scatter are distinct). */
    void (*rows)(gr_backend *b, float *dst, const float *src, const int *idx, int n, int dim,
                 int scatter);

    /* ---- optional (NULL in the CPU table: host memory, fp32 storage) ---- */
    /* Copies between host memory and memory from alloc/alloc16 (NULL: memcpy;
     * the CUDA table's alloc is plain device memory the host cannot address). */
    void (*upload)(gr_backend *b, void *dst, const void *src, size_t bytes);
    void (*download)(gr_backend *b, void *dst, const void *src, size_t bytes);
    /* 1 when this backend keeps the bf16 copy of the weights, bf16 gradients
     * and bf16 saved matmul inputs (lib/train_mem_plan.h says which tensors);
     * 0 (or NULL) keeps everything fp32. */
    int (*storage16)(gr_backend *b);
    /* Zeroed memory for n bf16 values (2n bytes). Any pointer into it passed to
     * an op as a float * is read and written as bf16 (the op sees the region);
     * offsets into it count bf16 elements. NULL when out of memory. */
    void *(*alloc16)(gr_backend *b, int64_t n);
    /* w16 (n bf16 from alloc16) becomes the bf16 copy of master (n fp32): every
     * matmul whose weight lies in master reads the copy; refreshed from master
     * now (call again after the host rewrites master) and by adamw /
     * adamw_clip over master. */
    void (*weights16)(gr_backend *b, const float *master, void *w16, int64_t n);
    /* Clip + AdamW in one pass over the parameters: norm = sqrt(Σ g²) (fixed
     * order), coef = max_norm / (norm + 1e-6) applied to g when max_norm > 0
     * and coef < 1 (g itself is not rewritten), then adamw's update of p, m, v
     * and the bf16 copy of p. The same bits as sumsq + scale + adamw when g is
     * fp32. Returns the norm before clipping. */
    double (*adamw_clip)(gr_backend *b, float *p, const float *g, float *m, float *v, int64_t n,
                         float lr, float beta1, float beta2, float eps, float wd, int t,
                         float max_norm);
    /* Bytes the backend holds now (alloc, alloc16 and its own scratch) and the
     * peak since it opened. */
    void (*mem_stats)(gr_backend *b, size_t *live, size_t *peak, size_t *scratch);
};

/* Host <-> op memory through o->upload / o->download (memcpy when NULL). */
void gr_tops_put(const gr_train_ops *o, gr_backend *b, void *dst, const void *src, size_t bytes);
void gr_tops_get(const gr_train_ops *o, gr_backend *b, void *dst, const void *src, size_t bytes);

/* The CPU table (uses b's thread pool, b from gr_backend_cpu). */
const gr_train_ops *gr_train_ops_cpu(void);
/* The CUDA table (kernels/cuda/train_*.cu, in libgr-cuda.so; b from
 * gr_backend_cuda): gr_train_ops_for finds it by name (lib/cuda_dl.h). */
const gr_train_ops *gr_train_ops_cuda(void);
/* The table for backend b: the CPU's for host-memory backends, else the
 * device's; NULL with err when this build has none for b (lib/train_ops_open.c). */
const gr_train_ops *gr_train_ops_for(gr_backend *b, gr_err *err);

/* C (M, N) (+)= A (M, K) · B (K, N), all row-major with leading dimensions;
 * accumulate = 0 overwrites C. Threaded on b, deterministic. */
void gr_cpu_gemm(gr_backend *b, int M, int N, int K, const float *A, int lda, const float *B,
                 int ldb, float *C, int ldc, int accumulate);
/* The same with B given transposed: C (M, N) (+)= A · Bᵀ, B (N, K). */
void gr_cpu_gemm_nt(gr_backend *b, int M, int N, int K, const float *A, int lda, const float *B,
                    int ldb, float *C, int ldc, int accumulate);
#endif
