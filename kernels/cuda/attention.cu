/* Attention over the paged KV cache, for prefill and decode alike:
 *   out (n, n_heads*hd) = softmax(q kᵀ/√hd + causal) v, GQA,
 * each query token t reading the keys/values 0..pos[t] of its sequence through
 * that sequence's block table (gr_kv_layout, gr_attn_batch in backend.h).
 *
 * One block per (query token, head), 4 warps. The keys are split across the
 * warps in tiles of 32 (one key per lane: its score, then the tile's values
 * accumulated with each lane owning hd/32 output dimensions), each warp keeping
 * a running max and sum (the online softmax of FlashAttention), and the warps'
 * partial results are merged at the end (flash-decoding's split-K, within a
 * block). No score matrix is ever stored: memory is O(hd) per block whatever
 * the length. Each query streams its own keys: the kernel for decode steps;
 * calls with runs of prompt tokens go to attention_prefill.cu's kernel, tiled
 * over queries too, when head_dim <= 128. */
#include "cuda_impl.h"
#include <math.h>

template <typename T> __device__ __forceinline__ float to_f(T v);
template <> __device__ __forceinline__ float to_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

/* q (hd floats, shared) · k (hd elements); VEC: 16-byte loads of 8 bf16. */
template <typename T, bool VEC>
__device__ __forceinline__ float dot_row(const float *qs, const T *k, int hd) {
    float s = 0.0f;
    if constexpr (VEC && sizeof(T) == 2) {
        const uint4 *k4 = (const uint4 *)k;
        for (int c = 0; c < hd / 8; c++) {
            uint4 u = k4[c];
            const __nv_bfloat162 *p = (const __nv_bfloat162 *)&u;
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float2 f = __bfloat1622float2(p[e]);
                s += qs[c * 8 + 2 * e] * f.x + qs[c * 8 + 2 * e + 1] * f.y;
            }
        }
    } else {
        for (int d = 0; d < hd; d++) s += qs[d] * to_f<T>(k[d]);
    }
    return s;
}

template <typename T, int DPL, bool VEC>
__global__ void __launch_bounds__(128) attention_kernel(
    float *out, const float *q, const int *pos, const int *seq, const int *block_table, int max_blocks,
    const T *base, int n_layers, int layer, int kv_dim, int bs, int n_heads, int group, int hd, float scale) {
    extern __shared__ float sh[];
    const int nw = blockDim.x >> 5, w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *qs = sh;                    /* hd */
    float *wm = qs + hd, *wl = wm + nw; /* per warp max, sum */
    float *wacc = wl + nw;             /* (nw, hd) */
    const int t = blockIdx.x, h = blockIdx.y, kvh = h / group;
    const float *qr = q + ((size_t)t * n_heads + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) qs[d] = qr[d] * scale;
    __syncthreads();
    const int P = pos[t] + 1;
    const int *table = block_table + (size_t)seq[t] * max_blocks;
    const size_t lstride = (size_t)bs * kv_dim; /* one K (or V) half of a layer in a block */
    float m = -INFINITY, l = 0.0f, acc[DPL];
#pragma unroll
    for (int u = 0; u < DPL; u++) acc[u] = 0.0f;
    for (int j0 = w * 32; j0 < P; j0 += nw * 32) {
        int j = j0 + lane;
        float s = -INFINITY;
        if (j < P) {
            const T *kr = base + ((size_t)table[j / bs] * n_layers + layer) * 2 * lstride +
                          (size_t)(j % bs) * kv_dim + (size_t)kvh * hd;
            s = dot_row<T, VEC>(qs, kr, hd);
        }
        float mt = s;
        for (int off = 16; off > 0; off >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, off));
        float mn = fmaxf(m, mt); /* finite: key j0 < P is in this tile */
        float alpha = expf(m - mn), p = j < P ? expf(s - mn) : 0.0f, ps = p;
        for (int off = 16; off > 0; off >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, off);
        l = l * alpha + ps;
#pragma unroll
        for (int u = 0; u < DPL; u++) acc[u] *= alpha;
        int nv = P - j0 < 32 ? P - j0 : 32;
        for (int kk = 0; kk < nv; kk++) {
            float pk = __shfl_sync(0xffffffffu, p, kk);
            int jj = j0 + kk;
            const T *vr = base + ((size_t)table[jj / bs] * n_layers + layer) * 2 * lstride + lstride +
                          (size_t)(jj % bs) * kv_dim + (size_t)kvh * hd;
#pragma unroll
            for (int u = 0; u < DPL; u++) {
                int d = lane + 32 * u;
                if (d < hd) acc[u] += pk * to_f<T>(vr[d]);
            }
        }
        m = mn;
    }
    if (lane == 0) {
        wm[w] = m;
        wl[w] = l;
    }
#pragma unroll
    for (int u = 0; u < DPL; u++) {
        int d = lane + 32 * u;
        if (d < hd) wacc[w * hd + d] = acc[u];
    }
    __syncthreads();
    float M = -INFINITY;
    for (int i = 0; i < nw; i++) M = fmaxf(M, wm[i]);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float num = 0.0f, den = 0.0f;
        for (int i = 0; i < nw; i++) {
            float f = wl[i] > 0.0f ? expf(wm[i] - M) : 0.0f; /* a warp without keys has l = 0 */
            num += wacc[i * hd + d] * f;
            den += wl[i] * f;
        }
        out[((size_t)t * n_heads + h) * hd + d] = num / den;
    }
}

template <typename T, int DPL>
static void launch(cudaStream_t s, float *out, const float *q, const gr_attn_batch *ab, const T *base,
                   int layer, int n_heads, int n_kv_heads, int hd) {
    const gr_kv_layout *L = &ab->kv_pool;
    dim3 grid((unsigned)ab->n, (unsigned)n_heads);
    int threads = 128, nw = threads / 32;
    size_t shmem = sizeof(float) * ((size_t)hd + 2 * nw + (size_t)nw * hd);
    float scale = 1.0f / sqrtf((float)hd);
    bool vec = sizeof(T) == 2 && hd % 8 == 0 && L->kv_dim % 8 == 0;
    if (vec)
        attention_kernel<T, DPL, true><<<grid, threads, shmem, s>>>(
            out, q, ab->pos_d, ab->seq_d, ab->block_table_d, ab->max_blocks, base, L->n_layers, layer, L->kv_dim,
            L->block_size, n_heads, n_heads / n_kv_heads, hd, scale);
    else
        attention_kernel<T, DPL, false><<<grid, threads, shmem, s>>>(
            out, q, ab->pos_d, ab->seq_d, ab->block_table_d, ab->max_blocks, base, L->n_layers, layer, L->kv_dim,
            L->block_size, n_heads, n_heads / n_kv_heads, hd, scale);
    GR_CU_LAUNCH();
}

template <typename T>
static void dispatch(cudaStream_t s, float *out, const float *q, const gr_attn_batch *ab, int layer, int n_heads,
                     int n_kv_heads, int hd) {
    const T *base = (const T *)ab->kv_pool.base;
    if (hd <= 32) launch<T, 1>(s, out, q, ab, base, layer, n_heads, n_kv_heads, hd);
    else if (hd <= 64) launch<T, 2>(s, out, q, ab, base, layer, n_heads, n_kv_heads, hd);
    else if (hd <= 128) launch<T, 4>(s, out, q, ab, base, layer, n_heads, n_kv_heads, hd);
    else launch<T, 8>(s, out, q, ab, base, layer, n_heads, n_kv_heads, hd);
}

void gr_cuda_attention(gr_backend *b, float *out, const float *q, const gr_attn_batch *ab, int layer, int n_heads,
                       int n_kv_heads, int hd) {
    if (ab->n <= 0) return;
    if (hd > 256 || n_heads % n_kv_heads) {
        fprintf(stderr, "cuda attention: head_dim %d / heads %d over %d kv heads not supported\n", hd, n_heads,
                n_kv_heads);
        abort();
    }
    /* runs of prompt tokens: the kernel tiled over queries (attention_prefill.cu) */
    if (gr_cuda_attention_prefill(b, out, q, ab, layer, n_heads, n_kv_heads, hd) == 0) return;
    cudaStream_t s = gr_cuda_impl(b)->stream;
    if (ab->kv_pool.dtype == GR_BF16) dispatch<__nv_bfloat16>(s, out, q, ab, layer, n_heads, n_kv_heads, hd);
    else dispatch<float>(s, out, q, ab, layer, n_heads, n_kv_heads, hd);
}
