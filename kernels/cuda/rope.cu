/* RoPE in place on x (n, n_heads * hd), the Hugging Face half-split rotation at
 * positions pos (device), angles pos * inv_freq in f32 as transformers computes
 * them; inv_freq already carries the llama3 scaling (gr_rope_inv_freq). */
#include "cuda_impl.h"

__global__ void rope_kernel(float *x, const int *pos, const float *inv, int n_heads, int hd) {
    int t = blockIdx.x, half = hd / 2;
    float p = (float)pos[t];
    for (int k = threadIdx.x; k < n_heads * half; k += blockDim.x) {
        int h = k / half, i = k % half;
        float s, c;
        sincosf(p * inv[i], &s, &c);
        float *v = x + ((size_t)t * n_heads + h) * hd;
        float a = v[i], bb = v[i + half];
        v[i] = a * c - bb * s;
        v[i + half] = bb * c + a * s;
    }
}

void gr_cuda_rope(gr_backend *b, float *x, const int *pos, int n, int n_heads, int hd, const float *inv) {
    if (n <= 0) return;
    const float *invd = gr_cuda_vector(b, inv, (size_t)hd / 2);
    rope_kernel<<<n, 128, 0, gr_cuda_impl(b)->stream>>>(x, pos, invd, n_heads, hd);
    GR_CU_LAUNCH();
}
