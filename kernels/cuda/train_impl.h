/* Inside the CUDA training ops (lib/backend_train.h's table, issue 17): the
 * per-backend state they share and each file's entry points (train_ops.cu puts
 * them in the table). Seen only by the train_*.cu files.
 *
 * Memory: every block is plain device memory (cudaMalloc through the pool of
 * train_mem.cu: released blocks are kept for reuse by an allocation of the
 * same size, and the bytes held are counted for mem_stats); the host reaches
 * it only through upload / download. The ops run on the backend's stream and
 * never wait, except xent, sumsq and adamw_clip, which return a number. Every
 * reduction is in a fixed order (no atomics): the ops are deterministic run
 * to run.
 *
 * Storage (storage16, on unless GR_CUDA_TRAIN_F32=1 or GR_CUDA_TRAIN_STORE=f32):
 * blocks from alloc16 are bf16 regions; an op recognises a pointer into one
 * (gr_ctrain_is16) and reads or writes it as bf16. weights16 registers the bf16
 * copy of the master weights (gr_ctrain_w16 maps a weight pointer to its copy).
 * The sizes of the scratch the ops ask for come from lib/train_mem_plan.h, so
 * the memory plan counts them.
 *
 * Precision: fp32 accumulation everywhere. The matmuls run on the bf16 tensor
 * cores: with any bf16 operand (the copy of the weights, a bf16 activation or
 * gradient) the fp32 operands are converted to bf16 (round to nearest) and
 * cuBLAS runs compute 32F; with fp32 operands only, CUBLAS_COMPUTE_32F_FAST_16BF
 * (inputs rounded to bf16 inside cuBLAS). GR_CUDA_TRAIN_F32=1: plain fp32
 * storage and SGEMM (parity tests). */
#ifndef GR_CUDA_TRAIN_IMPL_H
#define GR_CUDA_TRAIN_IMPL_H
#include "cuda_impl.h"
extern "C" {
#include "backend_train.h"
#include "train_mem_plan.h"
}

enum { TS_XENT = 0, TS_PART, TS_ATT, TS_NLL, TS_CVT_A, TS_CVT_B, TS_XENT16, TS_EMB, TS_N };
enum { MAX_R16 = 64, MAX_W16 = 8 };

typedef struct train_region { const char *p; size_t bytes; } train_region;
typedef struct train_shadow { const float *master; __nv_bfloat16 *w16; int64_t n; } train_shadow;
typedef struct train_block { void *p; size_t bytes; } train_block;

typedef struct train_state {
    gr_backend *b;
    cublasHandle_t cublas;       /* default math mode, on the backend's stream */
    cublasComputeType_t compute; /* FAST_16BF, or 32F with GR_CUDA_TRAIN_F32=1 */
    int store16;                 /* storage16 */
    void *scratch[TS_N];         /* per-use device scratch, grown on demand */
    size_t cap[TS_N];
    train_region r16[MAX_R16];   /* the alloc16 blocks */
    int n_r16;
    train_shadow w16[MAX_W16];   /* weights16 registrations */
    int n_w16;
    train_block *live, *cache;   /* the pool: blocks handed out, blocks kept for reuse */
    int n_live, n_cache, cap_live;
    size_t live_bytes, peak_bytes, scratch_bytes;
} train_state;

train_state *gr_ctrain_state(gr_backend *b);
void *gr_ctrain_scratch(gr_backend *b, int slot, size_t bytes);
static inline cudaStream_t gr_ctrain_stream(gr_backend *b) { return gr_cuda_impl(b)->stream; }
/* p as bf16 when it points into an alloc16 block, else NULL */
__nv_bfloat16 *gr_ctrain_is16(gr_backend *b, const void *p);
/* the bf16 copy of weight w when w lies in registered master weights, else NULL */
const __nv_bfloat16 *gr_ctrain_w16(gr_backend *b, const float *w);
/* dst (n, bf16) = src (n, fp32) rounded to nearest, queued */
void gr_ctrain_to16(gr_backend *b, __nv_bfloat16 *dst, const float *src, int64_t n);

/* element access that hides the storage type */
__device__ __forceinline__ float gr_ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float gr_ld(const __nv_bfloat16 *p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void gr_st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void gr_st(__nv_bfloat16 *p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

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
double gr_ctrain_adamw_clip(gr_backend *b, float *p, const float *g, float *m, float *v, int64_t n,
                            float lr, float beta1, float beta2, float eps, float wd, int t,
                            float max_norm);
void gr_ctrain_upload(gr_backend *b, void *dst, const void *src, size_t bytes);
void gr_ctrain_download(gr_backend *b, void *dst, const void *src, size_t bytes);
int gr_ctrain_storage16(gr_backend *b);
void *gr_ctrain_alloc16(gr_backend *b, int64_t n);
void gr_ctrain_weights16(gr_backend *b, const float *master, void *w16, int64_t n);
void gr_ctrain_mem_stats(gr_backend *b, size_t *live, size_t *peak, size_t *scratch);
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
/* train_attention_mma.cu: the tensor-core forward when GR_CUDA_TRAIN_ATT=mma
 * and hd is 64 or 128 (returns 1), else 0 and nothing queued */
int gr_ctrain_attention_fwd_mma(gr_backend *b, float *out, float *lse, const float *q, const float *k,
                                const float *v, const int *start, int n_seq, int n, int H, int Hkv,
                                int hd);
/* train_matmul.cu */
void gr_ctrain_matmul_fwd(gr_backend *b, float *y, const float *x, const float *w, int n, int in,
                          int out);
void gr_ctrain_matmul_bwd(gr_backend *b, float *dx, float *dw, const float *dy, const float *x,
                          const float *w, int n, int in, int out);
double gr_ctrain_xent(gr_backend *b, float *dh, float *dw, const float *h, const float *w,
                      const int *target, int n, int dim, int vocab, float scale);
#endif
