/* Training memory and the elementwise / reduction ops of the optimizer step
 * (train_impl.h). COMPILED, NEVER RUN here (no GPU). */
#include "train_impl.h"
#include <math.h>

/* Managed memory is never asked for beyond what the GPU has free (less a 1 GiB
 * margin for cuBLAS, NCCL and scratch): oversubscribed managed memory pages to
 * the host at a crawl or can hang the GPU. A refusal is an out-of-memory error. */
void *gr_ctrain_alloc(gr_backend *b, size_t bytes) {
    (void)b;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    if (bytes + ((size_t)1 << 30) > free_b) {
        fprintf(stderr, "cuda train: %zu bytes asked, %zu free on the GPU\n", bytes, free_b);
        return NULL;
    }
    void *p = NULL;
    if (cudaMallocManaged(&p, bytes ? bytes : 1, cudaMemAttachGlobal) != cudaSuccess) {
        cudaGetLastError(); /* clear it: the caller reports the failure */
        return NULL;
    }
    /* zeroed on the device, so the pages start there (the activations never
     * leave it; the weights migrate once, when the host copies them in) */
    if (cudaMemset(p, 0, bytes) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
        cudaGetLastError();
        cudaFree(p);
        return NULL;
    }
    return p;
}

void gr_ctrain_release(gr_backend *b, void *p) {
    if (!p) return;
    GR_CU(cudaStreamSynchronize(gr_ctrain_stream(b)));
    GR_CU(cudaFree(p));
}

void gr_ctrain_sync(gr_backend *b) { GR_CU(cudaStreamSynchronize(gr_ctrain_stream(b))); }

void gr_ctrain_zero(gr_backend *b, float *x, int64_t n) {
    if (n > 0) GR_CU(cudaMemsetAsync(x, 0, sizeof(float) * (size_t)n, gr_ctrain_stream(b)));
}

__global__ void k_add(float *y, const float *x, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = __fadd_rn(y[i], x[i]);
}

void gr_ctrain_add(gr_backend *b, float *y, const float *x, int64_t n) {
    if (n <= 0) return;
    k_add<<<gr_cuda_blocks(n, 256), 256, 0, gr_ctrain_stream(b)>>>(y, x, n);
    GR_CU_LAUNCH();
}

__global__ void k_rows(float *dst, const float *src, const int *idx, int n, int dim, int scatter) {
    int64_t total = (int64_t)n * dim;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e / dim, c = e % dim;
        int64_t d = scatter ? idx[i] : i, s = scatter ? i : idx[i];
        dst[d * dim + c] = src[s * dim + c];
    }
}

void gr_ctrain_rows(gr_backend *b, float *dst, const float *src, const int *idx, int n, int dim,
                    int scatter) {
    if (n <= 0) return;
    k_rows<<<gr_cuda_blocks((int64_t)n * dim, 256), 256, 0, gr_ctrain_stream(b)>>>(dst, src, idx, n, dim,
                                                                                   scatter);
    GR_CU_LAUNCH();
}

/* Σ x² in double: SUM_BLOCKS blocks each sum a fixed strided share (per thread,
 * then a fixed tree), then one block sums the partials in a fixed tree. */
enum { SUM_BLOCKS = 1024, SUM_THREADS = 256 };

__device__ static double block_sum_d(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

__global__ void k_sumsq_part(double *part, const float *x, int64_t n) {
    __shared__ double sh[SUM_THREADS];
    double s = 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        s += (double)x[i] * (double)x[i];
    double t = block_sum_d(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = t;
}

__global__ void k_sum_parts(double *out, const double *part, int n) {
    __shared__ double sh[SUM_THREADS];
    double s = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += part[i];
    double t = block_sum_d(s, sh);
    if (threadIdx.x == 0) *out = t;
}

double gr_ctrain_sumsq(gr_backend *b, const float *x, int64_t n) {
    if (n <= 0) return 0;
    cudaStream_t st = gr_ctrain_stream(b);
    double *part = (double *)gr_ctrain_scratch(b, TS_PART, sizeof(double) * (SUM_BLOCKS + 1));
    k_sumsq_part<<<SUM_BLOCKS, SUM_THREADS, 0, st>>>(part, x, n);
    GR_CU_LAUNCH();
    k_sum_parts<<<1, SUM_THREADS, 0, st>>>(part + SUM_BLOCKS, part, SUM_BLOCKS);
    GR_CU_LAUNCH();
    double r;
    GR_CU(cudaMemcpyAsync(&r, part + SUM_BLOCKS, sizeof r, cudaMemcpyDeviceToHost, st));
    GR_CU(cudaStreamSynchronize(st));
    return r;
}

__global__ void k_scale(float *x, float s, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        x[i] = __fmul_rn(x[i], s);
}

void gr_ctrain_scale(gr_backend *b, float *x, float s, int64_t n) {
    if (n <= 0) return;
    k_scale<<<gr_cuda_blocks(n, 256), 256, 0, gr_ctrain_stream(b)>>>(x, s, n);
    GR_CU_LAUNCH();
}

/* torch.optim.AdamW in the CPU table's fp32 operation order, every operation
 * correctly rounded and none contracted into an FMA (the __f*_rn intrinsics):
 * the same bits as the CPU for the same inputs. */
__global__ void k_adamw(float *p, const float *g, float *m, float *v, int64_t n, float step,
                        float bc2s, float w1, float w2, float b2, float eps, float decay, int wd) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float pi = p[i], gi = g[i], mi = m[i], vi = v[i];
        if (wd) pi = __fmul_rn(pi, decay);
        mi = __fadd_rn(mi, __fmul_rn(w1, __fsub_rn(gi, mi)));
        vi = __fadd_rn(__fmul_rn(vi, b2), __fmul_rn(__fmul_rn(w2, gi), gi));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2s), eps);
        pi = __fadd_rn(pi, __fmul_rn(-step, __fdiv_rn(mi, denom)));
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
    }
}

void gr_ctrain_adamw(gr_backend *b, float *p, const float *g, float *m, float *v, int64_t n,
                     float lr, float beta1, float beta2, float eps, float wd, int t) {
    if (n <= 0) return;
    double bc1 = 1.0 - pow((double)beta1, t), bc2 = 1.0 - pow((double)beta2, t);
    float step = (float)((double)lr / bc1), bc2s = (float)sqrt(bc2);
    float w1 = (float)(1.0 - (double)beta1), w2 = (float)(1.0 - (double)beta2);
    float decay = (float)(1.0 - (double)lr * wd);
    k_adamw<<<gr_cuda_blocks(n, 256), 256, 0, gr_ctrain_stream(b)>>>(p, g, m, v, n, step, bc2s, w1, w2,
                                                                    beta2, eps, decay, wd != 0);
    GR_CU_LAUNCH();
}
