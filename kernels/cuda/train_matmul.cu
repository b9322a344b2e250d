/* Training matmuls and the LM head fused with the cross-entropy, chunked over
 * rows so that at most (chunk, vocab) logits exist (train_impl.h). Row-major
 * matrices through column-major cuBLAS: a row-major (r, c) matrix is the
 * column-major (c, r) one. Operands in bf16 regions or with a registered bf16
 * copy take the bf16 path (train_impl.h). COMPILED, NEVER RUN here (no GPU). */
#include "train_impl.h"
#include <math.h>

/* C (m, n col-major, ldc) = alpha·op(A)·op(B) + beta·C, fp32 storage */
static void gemm(gr_backend *b, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    train_state *s = gr_ctrain_state(b);
    const float alpha = 1.0f;
    GR_CUBLAS(cublasGemmEx(s->cublas, ta, tb, m, n, k, &alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb,
                           &beta, C, CUDA_R_32F, ldc, s->compute, CUBLAS_GEMM_DEFAULT));
}

/* The same with bf16 A and B; C fp32 (C16 NULL) or bf16 (C16); fp32 accumulation. */
static void gemm16(gr_backend *b, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                   const __nv_bfloat16 *A, int lda, const __nv_bfloat16 *B, int ldb, float beta, float *C,
                   __nv_bfloat16 *C16, int ldc) {
    train_state *s = gr_ctrain_state(b);
    const float alpha = 1.0f;
    void *c = C16 ? (void *)C16 : (void *)C;
    GR_CUBLAS(cublasGemmEx(s->cublas, ta, tb, m, n, k, &alpha, A, CUDA_R_16BF, lda, B, CUDA_R_16BF, ldb,
                           &beta, c, C16 ? CUDA_R_16BF : CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT));
}

/* An operand as bf16: itself in a bf16 region, the copy of a registered
 * weight, or converted into scratch slot (n elements). */
static const __nv_bfloat16 *as16(gr_backend *b, const float *x, int64_t n, int slot) {
    const __nv_bfloat16 *r = gr_ctrain_is16(b, x);
    if (r) return r;
    if ((r = gr_ctrain_w16(b, x))) return r;
    __nv_bfloat16 *d = (__nv_bfloat16 *)gr_ctrain_scratch(b, slot, sizeof(__nv_bfloat16) * (size_t)n);
    gr_ctrain_to16(b, d, x, n);
    return d;
}

static int any16(gr_backend *b, const float *p) {
    return p && (gr_ctrain_is16(b, p) || gr_ctrain_w16(b, p));
}

/* y (n, out) = x (n, in) · wᵀ:  col-major yᵀ (out, n) = (w as (in, out))ᵀ · xᵀ (in, n) */
void gr_ctrain_matmul_fwd(gr_backend *b, float *y, const float *x, const float *w, int n, int in,
                          int out) {
    if (n <= 0) return;
    if (!any16(b, x) && !any16(b, w) && !gr_ctrain_is16(b, y)) {
        gemm(b, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, w, in, x, in, 0.0f, y, out);
        return;
    }
    const __nv_bfloat16 *w16 = as16(b, w, (int64_t)out * in, TS_CVT_A),
                        *x16 = as16(b, x, (int64_t)n * in, TS_CVT_B);
    gemm16(b, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, w16, in, x16, in, 0.0f, y, gr_ctrain_is16(b, y), out);
}

/* dx (n, in) += dy · w:  dxᵀ (in, n) += wᵀ(in, out) · dyᵀ (out, n)
 * dw (out, in) += dyᵀ · x:  dwᵀ (in, out) += xᵀ (in, n) · dy (n, out)
 * With a bf16 operand anywhere, dy is converted once (TS_CVT_B) for both. */
void gr_ctrain_matmul_bwd(gr_backend *b, float *dx, float *dw, const float *dy, const float *x,
                          const float *w, int n, int in, int out) {
    if (n <= 0) return;
    if (!any16(b, x) && !any16(b, w) && !gr_ctrain_is16(b, dw) && !gr_ctrain_is16(b, dx) &&
        !gr_ctrain_is16(b, dy)) {
        if (dx) gemm(b, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w, in, dy, out, 1.0f, dx, in);
        gemm(b, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, x, in, dy, out, 1.0f, dw, in);
        return;
    }
    const __nv_bfloat16 *dy16 = as16(b, dy, (int64_t)n * out, TS_CVT_B);
    if (dx) {
        const __nv_bfloat16 *w16 = as16(b, w, (int64_t)out * in, TS_CVT_A);
        gemm16(b, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w16, in, dy16, out, 1.0f, dx, gr_ctrain_is16(b, dx), in);
    }
    const __nv_bfloat16 *x16 = as16(b, x, (int64_t)n * in, TS_CVT_A);
    gemm16(b, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, x16, in, dy16, out, 1.0f, dw, gr_ctrain_is16(b, dw), in);
}

enum { XT = 512 };

/* One block per row of logits z (vocab): nll = logsumexp(z) − z[target] with
 * Σ exp in double (per thread in index order, then a fixed tree); with grad, z
 * becomes scale·(softmax(z) − onehot(target)) in place (the CPU's formula). */
__global__ void k_xent_rows(float *lg, const int *target, int vocab, float scale, double *nll,
                            int want_grad) {
    __shared__ float shm[XT];
    __shared__ double shs[XT];
    float *z = lg + (int64_t)blockIdx.x * vocab;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, z[i]);
    shm[threadIdx.x] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) shm[threadIdx.x] = fmaxf(shm[threadIdx.x], shm[threadIdx.x + s]);
        __syncthreads();
    }
    m = shm[0];
    int t = target[blockIdx.x];
    float zt = z[t];
    __syncthreads();
    double sum = 0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float e = expf(z[i] - m);
        z[i] = e;
        sum += (double)e;
    }
    shs[threadIdx.x] = sum;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) shs[threadIdx.x] += shs[threadIdx.x + s];
        __syncthreads();
    }
    sum = shs[0];
    if (threadIdx.x == 0) nll[blockIdx.x] = (double)m + log(sum) - (double)zt;
    if (!want_grad) return;
    float f = (float)((double)scale / sum);
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) z[i] *= f;
    __syncthreads();
    if (threadIdx.x == 0) z[t] -= scale;
}

double gr_ctrain_xent(gr_backend *b, float *dh, float *dw, const float *h, const float *w,
                      const int *target, int n, int dim, int vocab, float scale) {
    if (n <= 0) return 0;
    cudaStream_t st = gr_ctrain_stream(b);
    int ch = (int)gr_txent_chunk_rows(vocab, n);
    float *lg = (float *)gr_ctrain_scratch(b, TS_XENT, sizeof(float) * (size_t)ch * (size_t)vocab);
    double *nll = (double *)gr_ctrain_scratch(b, TS_NLL, sizeof(double) * (size_t)n);
    /* bf16 path: the head's bf16 copy (or bf16 gradients) -> bf16 operands */
    const __nv_bfloat16 *w16 = gr_ctrain_w16(b, w);
    __nv_bfloat16 *dw16 = dw ? gr_ctrain_is16(b, dw) : NULL;
    int half = w16 || dw16;
    if (half && !w16) w16 = as16(b, w, (int64_t)vocab * dim, TS_CVT_B);
    __nv_bfloat16 *lg16 = half && dh ? (__nv_bfloat16 *)gr_ctrain_scratch(
                                           b, TS_XENT16, sizeof(__nv_bfloat16) * (size_t)ch * (size_t)vocab)
                                     : NULL;
    for (int r0 = 0; r0 < n; r0 += ch) {
        int rn = n - r0 < ch ? n - r0 : ch;
        const float *hr = h + (int64_t)r0 * dim;
        const __nv_bfloat16 *hr16 = NULL;
        /* lg (rn, vocab) = hr · wᵀ */
        if (half) {
            __nv_bfloat16 *t = (__nv_bfloat16 *)gr_ctrain_scratch(b, TS_CVT_A,
                                                                  sizeof(__nv_bfloat16) * (size_t)ch * (size_t)dim);
            gr_ctrain_to16(b, t, hr, (int64_t)rn * dim);
            hr16 = t;
            gemm16(b, CUBLAS_OP_T, CUBLAS_OP_N, vocab, rn, dim, w16, dim, hr16, dim, 0.0f, lg, NULL, vocab);
        } else {
            gemm(b, CUBLAS_OP_T, CUBLAS_OP_N, vocab, rn, dim, w, dim, hr, dim, 0.0f, lg, vocab);
        }
        k_xent_rows<<<rn, XT, 0, st>>>(lg, target + r0, vocab, scale, nll + r0, dh != NULL);
        GR_CU_LAUNCH();
        if (!dh) continue;
        if (half) {
            gr_ctrain_to16(b, lg16, lg, (int64_t)rn * vocab);
            /* dh (rn, dim) = lg · w;  dw (vocab, dim) += lgᵀ · hr */
            gemm16(b, CUBLAS_OP_N, CUBLAS_OP_N, dim, rn, vocab, w16, dim, lg16, vocab, 0.0f,
                   dh + (int64_t)r0 * dim, NULL, dim);
            gemm16(b, CUBLAS_OP_N, CUBLAS_OP_T, dim, vocab, rn, hr16, dim, lg16, vocab, 1.0f, dw, dw16, dim);
            continue;
        }
        /* dh (rn, dim) = lg · w:  dhᵀ (dim, rn) = (w as (dim, vocab)) · lgᵀ (vocab, rn) */
        gemm(b, CUBLAS_OP_N, CUBLAS_OP_N, dim, rn, vocab, w, dim, lg, vocab, 0.0f,
             dh + (int64_t)r0 * dim, dim);
        /* dw (vocab, dim) += lgᵀ · hr:  dwᵀ (dim, vocab) += hrᵀ (dim, rn) · lg (rn, vocab) */
        gemm(b, CUBLAS_OP_N, CUBLAS_OP_T, dim, vocab, rn, hr, dim, lg, vocab, 1.0f, dw, dim);
    }
    /* the row NLLs summed on the host in row order, as the CPU does */
    double *host = (double *)malloc(sizeof(double) * (size_t)n);
    if (!host) {
        fprintf(stderr, "cuda xent: out of memory\n");
        abort();
    }
    GR_CU(cudaMemcpyAsync(host, nll, sizeof(double) * (size_t)n, cudaMemcpyDeviceToHost, st));
    GR_CU(cudaStreamSynchronize(st));
    double total = 0;
    for (int i = 0; i < n; i++) total += host[i];
    free(host);
    return total;
}
