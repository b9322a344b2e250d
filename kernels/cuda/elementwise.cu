/* Element-wise ops: SwiGLU, the residual add, the KV store into the paged pool,
 * and the f32 -> bf16 conversion of matmul inputs. Grid-stride loops. */
#include "cuda_impl.h"

__global__ void swiglu_kernel(float *out, const float *g, const float *u, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float gv = g[i];
        out[i] = gv / (1.0f + expf(-gv)) * u[i];
    }
}

__global__ void add_kernel(float *y, const float *x, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

__global__ void to_bf16_kernel(__nv_bfloat16 *out, const float *x, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(x[i]);
}

/* One block per token: its K and V rows to their slot (gr_kv_layout in backend.h). */
template <typename T>
__global__ void kv_store_kernel(T *base, int n_layers, int layer, int kv_dim, int bs, const float *k,
                                const float *v, const int *slot) {
    int t = blockIdx.x, s = slot[t];
    size_t blk = (size_t)(s / bs), i = (size_t)(s % bs);
    T *kd = base + ((blk * (size_t)n_layers + (size_t)layer) * 2 * (size_t)bs + i) * (size_t)kv_dim;
    T *vd = kd + (size_t)bs * (size_t)kv_dim;
    const float *kr = k + (size_t)t * kv_dim, *vr = v + (size_t)t * kv_dim;
    for (int d = threadIdx.x; d < kv_dim; d += blockDim.x) {
        if constexpr (sizeof(T) == 2) {
            kd[d] = __float2bfloat16_rn(kr[d]);
            vd[d] = __float2bfloat16_rn(vr[d]);
        } else {
            kd[d] = kr[d];
            vd[d] = vr[d];
        }
    }
}

void gr_cuda_swiglu(gr_backend *b, float *out, const float *g, const float *u, int64_t n) {
    if (n <= 0) return;
    swiglu_kernel<<<gr_cuda_blocks(n, 256), 256, 0, gr_cuda_impl(b)->stream>>>(out, g, u, n);
    GR_CU_LAUNCH();
}

void gr_cuda_add(gr_backend *b, float *y, const float *x, int64_t n) {
    if (n <= 0) return;
    add_kernel<<<gr_cuda_blocks(n, 256), 256, 0, gr_cuda_impl(b)->stream>>>(y, x, n);
    GR_CU_LAUNCH();
}

void gr_cuda_f32_to_bf16(gr_backend *b, __nv_bfloat16 *out, const float *x, int64_t n) {
    if (n <= 0) return;
    to_bf16_kernel<<<gr_cuda_blocks(n, 256), 256, 0, gr_cuda_impl(b)->stream>>>(out, x, n);
    GR_CU_LAUNCH();
}

void gr_cuda_kv_store(gr_backend *b, const gr_kv_layout *L, int layer, const float *k, const float *v,
                      const int *slot, int n) {
    if (n <= 0) return;
    cudaStream_t s = gr_cuda_impl(b)->stream;
    if (L->dtype == GR_BF16)
        kv_store_kernel<__nv_bfloat16><<<n, 128, 0, s>>>((__nv_bfloat16 *)L->base, L->n_layers, layer, L->kv_dim,
                                                         L->block_size, k, v, slot);
    else
        kv_store_kernel<float><<<n, 128, 0, s>>>((float *)L->base, L->n_layers, layer, L->kv_dim, L->block_size,
                                                 k, v, slot);
    GR_CU_LAUNCH();
}
