/* Embedding lookup: out (n, dim) f32 = rows tokens[i] of the table (bf16, or f32
 * in exact mode). */
#include "cuda_impl.h"

template <typename T>
__global__ void embedding_kernel(float *out, const T *emb, const int *tokens, int dim) {
    const T *row = emb + (size_t)tokens[blockIdx.x] * (size_t)dim;
    float *o = out + (size_t)blockIdx.x * (size_t)dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        if constexpr (sizeof(T) == 2) o[i] = __bfloat162float(row[i]);
        else o[i] = row[i];
    }
}

void gr_cuda_embedding(gr_backend *b, float *out, const gr_tensor *emb, const int *tokens, int n) {
    if (n <= 0) return;
    const void *w = gr_cuda_weight(b, emb);
    cudaStream_t s = gr_cuda_impl(b)->stream;
    if (gr_cuda_impl(b)->f32)
        embedding_kernel<float><<<n, 256, 0, s>>>(out, (const float *)w, tokens, (int)emb->cols);
    else
        embedding_kernel<__nv_bfloat16><<<n, 256, 0, s>>>(out, (const __nv_bfloat16 *)w, tokens, (int)emb->cols);
    GR_CU_LAUNCH();
}
