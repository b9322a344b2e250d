/* Prefill attention tiled over queries and keys (FlashAttention's blocking, in
 * SIMT form), for the query tokens of a forward call that come in runs: a run
 * is consecutive tokens of one sequence at consecutive positions (a prompt, or
 * its part after a shared prefix).
 *
 * One block per (tile of up to 16 queries of a run, head), 4 warps. The block
 * walks the keys its last query needs, 0..p0+len-1, in tiles of 32: each K and
 * V tile is read once from the paged pool (through the block table) into
 * shared memory and used by all 16 queries, so K/V traffic is 1/16 of a kernel
 * that streams them per query (attention.cu). Each warp owns 4 queries, one
 * key per lane: scores, causal mask (key j <= the query's position), an online
 * softmax per query (running max and sum), the tile's values accumulated with
 * each lane owning hd/32 output dimensions. No score matrix is stored: shared
 * memory is (16 + 2 x 32) rows of hd floats whatever the length.
 *
 * Used for head_dim <= 128 when the call has a run of two or more tokens
 * (gr_cuda_attention); decode-only calls keep attention.cu's kernel, which
 * needs no host-built tile list (so a decode step can be a CUDA graph).
 *
 * STATUS: compiled, never run (no GPU while it was written); test_ops checks it
 * against the CPU (attention_prefill_*, attention_chunk_*). */
#include "cuda_impl.h"
#include <math.h>

#define PF_BQ 16 /* queries per tile */
#define PF_BK 32 /* keys per tile */
#define PF_THREADS 128

template <typename T> __device__ __forceinline__ float pf_f(T v);
template <> __device__ __forceinline__ float pf_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float pf_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

/* tiles[i] = {first token of the tile in the call, its length, the first token's position, 0};
 * the tile's sequence is seq[first token] (its row of block_table) */
template <typename T, int DPL>
__global__ void __launch_bounds__(PF_THREADS) prefill_kernel(
    float *out, const float *q, const int4 *tiles, const int *seq, const int *block_table, int max_blocks,
    const T *base,
    int n_layers, int layer, int kv_dim, int bs, int n_heads, int group, int hd, float scale) {
    extern __shared__ float sh[];
    constexpr int NW = PF_THREADS / 32, RPW = PF_BQ / NW; /* rows per warp */
    const int HS = hd + 1;                                /* K rows padded: no bank conflicts */
    float *qs = sh;                                       /* (BQ, hd) */
    float *ks = qs + PF_BQ * hd;                          /* (BK, hd + 1) */
    float *vs = ks + PF_BK * HS;                          /* (BK, hd) */
    const int4 tl = tiles[blockIdx.x];
    const int h = blockIdx.y, kvh = h / group;
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int i = threadIdx.x; i < PF_BQ * hd; i += PF_THREADS) {
        int r = i / hd, d = i - r * hd;
        qs[i] = r < tl.y ? q[((size_t)(tl.x + r) * n_heads + h) * hd + d] * scale : 0.0f;
    }
    const int *table = block_table + (size_t)seq[tl.x] * max_blocks;
    const size_t lstride = (size_t)bs * kv_dim;
    float m[RPW], l[RPW], acc[RPW][DPL];
#pragma unroll
    for (int i = 0; i < RPW; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int u = 0; u < DPL; u++) acc[i][u] = 0.0f;
    }
    const int P = tl.z + tl.y; /* keys the tile's last query reads */
    for (int j0 = 0; j0 < P; j0 += PF_BK) {
        __syncthreads(); /* the previous tile is used up (and qs is written) */
        const int nk = P - j0 < PF_BK ? P - j0 : PF_BK;
        for (int i = threadIdx.x; i < nk * hd; i += PF_THREADS) {
            int jj = i / hd, d = i - jj * hd, j = j0 + jj;
            const T *kr = base + ((size_t)table[j / bs] * n_layers + layer) * 2 * lstride + (size_t)(j % bs) * kv_dim +
                          (size_t)kvh * hd;
            ks[jj * HS + d] = pf_f<T>(kr[d]);
            vs[jj * hd + d] = pf_f<T>(kr[lstride + d]);
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < RPW; i++) {
            const int r = w + NW * i; /* warp-uniform */
            const int pr = tl.z + r;  /* the query's position: keys 0..pr */
            if (r >= tl.y || j0 > pr) continue;
            const int j = j0 + lane;
            const bool live = lane < nk && j <= pr;
            float s = -INFINITY;
            if (live) {
                const float *qr = qs + r * hd, *kr = ks + lane * HS;
                float a = 0.0f;
                for (int d = 0; d < hd; d++) a += qr[d] * kr[d];
                s = a;
            }
            float mt = s;
            for (int off = 16; off > 0; off >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, off));
            const float mn = fmaxf(m[i], mt); /* finite: key j0 <= pr is live in lane 0 */
            const float alpha = expf(m[i] - mn), p = live ? expf(s - mn) : 0.0f;
            float ps = p;
            for (int off = 16; off > 0; off >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, off);
            l[i] = l[i] * alpha + ps;
#pragma unroll
            for (int u = 0; u < DPL; u++) acc[i][u] *= alpha;
            const int nv = pr - j0 + 1 < nk ? pr - j0 + 1 : nk;
            for (int kk = 0; kk < nv; kk++) {
                const float pk = __shfl_sync(0xffffffffu, p, kk);
                const float *vr = vs + kk * hd;
#pragma unroll
                for (int u = 0; u < DPL; u++) {
                    int d = lane + 32 * u;
                    if (d < hd) acc[i][u] += pk * vr[d];
                }
            }
            m[i] = mn;
        }
    }
#pragma unroll
    for (int i = 0; i < RPW; i++) {
        const int r = w + NW * i;
        if (r >= tl.y) continue;
        float *o = out + ((size_t)(tl.x + r) * n_heads + h) * hd;
#pragma unroll
        for (int u = 0; u < DPL; u++) {
            int d = lane + 32 * u;
            if (d < hd) o[d] = acc[i][u] / l[i];
        }
    }
}

struct gr_prefill_tiles {
    int4 *host, *dev;
    size_t cap; /* tiles */
};

void gr_cuda_prefill_free(gr_backend *b) {
    cuda_impl *ci = gr_cuda_impl(b);
    if (!ci->prefill) return;
    free(ci->prefill->host);
    cudaFree(ci->prefill->dev);
    free(ci->prefill);
    ci->prefill = NULL;
}

template <typename T, int DPL>
static void pf_launch(cudaStream_t s, float *out, const float *q, const int4 *tiles, int n_tiles,
                      const gr_attn_batch *ab, int layer, int n_heads, int n_kv_heads, int hd) {
    const gr_kv_layout *L = &ab->kv_pool;
    size_t shmem = sizeof(float) * ((size_t)PF_BQ * hd + (size_t)PF_BK * (hd + 1) + (size_t)PF_BK * hd);
    dim3 grid((unsigned)n_tiles, (unsigned)n_heads);
    prefill_kernel<T, DPL><<<grid, PF_THREADS, shmem, s>>>(
        out, q, tiles, ab->seq_d, ab->block_table_d, ab->max_blocks, (const T *)L->base, L->n_layers, layer, L->kv_dim,
        L->block_size, n_heads, n_heads / n_kv_heads, hd, 1.0f / sqrtf((float)hd));
    GR_CU_LAUNCH();
}

template <typename T>
static void pf_dispatch(cudaStream_t s, float *out, const float *q, const int4 *tiles, int n_tiles,
                        const gr_attn_batch *ab, int layer, int n_heads, int n_kv_heads, int hd) {
    if (hd <= 32) pf_launch<T, 1>(s, out, q, tiles, n_tiles, ab, layer, n_heads, n_kv_heads, hd);
    else if (hd <= 64) pf_launch<T, 2>(s, out, q, tiles, n_tiles, ab, layer, n_heads, n_kv_heads, hd);
    else pf_launch<T, 4>(s, out, q, tiles, n_tiles, ab, layer, n_heads, n_kv_heads, hd);
}

/* 0 when the call's attention was queued here, -1 when it is not for this
 * kernel (head_dim > 128, no run of two tokens, or no host view of the batch). */
int gr_cuda_attention_prefill(gr_backend *b, float *out, const float *q, const gr_attn_batch *ab, int layer,
                              int n_heads, int n_kv_heads, int hd) {
    if (hd > 128 || !ab->kv || !ab->pos || ab->n < 2) return -1;
    int run = 0;
    for (int t = 1; t < ab->n && !run; t++) run = ab->kv[t] == ab->kv[t - 1] && ab->pos[t] == ab->pos[t - 1] + 1;
    if (!run) return -1;
    cuda_impl *ci = gr_cuda_impl(b);
    if (!ci->prefill) {
        ci->prefill = (gr_prefill_tiles *)calloc(1, sizeof *ci->prefill);
        if (!ci->prefill) abort();
    }
    gr_prefill_tiles *pt = ci->prefill;
    if ((size_t)ab->n > pt->cap) { /* at most one tile per token */
        GR_CU(cudaStreamSynchronize(ci->stream));
        free(pt->host);
        GR_CU(cudaFree(pt->dev));
        pt->host = (int4 *)malloc(sizeof(int4) * (size_t)ab->n);
        if (!pt->host) abort();
        GR_CU(cudaMalloc((void **)&pt->dev, sizeof(int4) * (size_t)ab->n));
        pt->cap = (size_t)ab->n;
    }
    int n_tiles = 0;
    for (int t = 0; t < ab->n;) {
        int e = t + 1;
        while (e < ab->n && e - t < PF_BQ && ab->kv[e] == ab->kv[t] && ab->pos[e] == ab->pos[e - 1] + 1) e++;
        pt->host[n_tiles++] = make_int4(t, e - t, ab->pos[t], 0);
        t = e;
    }
    GR_CU(cudaMemcpyAsync(pt->dev, pt->host, sizeof(int4) * (size_t)n_tiles, cudaMemcpyHostToDevice, ci->stream));
    if (ab->kv_pool.dtype == GR_BF16)
        pf_dispatch<__nv_bfloat16>(ci->stream, out, q, pt->dev, n_tiles, ab, layer, n_heads, n_kv_heads, hd);
    else
        pf_dispatch<float>(ci->stream, out, q, pt->dev, n_tiles, ab, layer, n_heads, n_kv_heads, hd);
    return 0;
}
