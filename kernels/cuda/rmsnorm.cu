/* RMSNorm: out (n, dim) = x / sqrt(mean(x^2) + eps) * w, one block per row; the
 * sum of squares in f32 as the CPU does (another order: ~1 ulp apart). */
#include "cuda_impl.h"

__global__ void rmsnorm_kernel(float *out, const float *x, const float *w, int dim, float eps) {
    const float *xr = x + (size_t)blockIdx.x * (size_t)dim;
    float *o = out + (size_t)blockIdx.x * (size_t)dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
    __shared__ float part[32];
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.0f;
        for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (threadIdx.x == 0) part[0] = v;
    }
    __syncthreads();
    float inv = 1.0f / sqrtf(part[0] / (float)dim + eps);
    /* out may be x: each element is read before it is written, by the same thread */
    for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = w[i] * (xr[i] * inv);
}

void gr_cuda_rmsnorm(gr_backend *b, float *out, const float *x, const float *w, int n, int dim, float eps) {
    if (n <= 0) return;
    const float *wd = gr_cuda_vector(b, w, (size_t)dim);
    rmsnorm_kernel<<<n, 256, 0, gr_cuda_impl(b)->stream>>>(out, x, wd, dim, eps);
    GR_CU_LAUNCH();
}
