/* Embedding lookup: out (n, dim) f32 = rows tokens[i] of the bf16 table. */
#include "cuda_impl.h"

__global__ void embedding_kernel(float *out, const __nv_bfloat16 *emb, const int *tokens, int dim) {
    const __nv_bfloat16 *row = emb + (size_t)tokens[blockIdx.x] * (size_t)dim;
    float *o = out + (size_t)blockIdx.x * (size_t)dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = __bfloat162float(row[i]);
}

void gr_cuda_embedding(gr_backend *b, float *out, const gr_tensor *emb, const int *tokens, int n) {
    if (n <= 0) return;
    const __nv_bfloat16 *w = gr_cuda_weight(b, emb);
    embedding_kernel<<<n, 256, 0, gr_cuda_impl(b)->stream>>>(out, w, tokens, (int)emb->cols);
    GR_CU_LAUNCH();
}
