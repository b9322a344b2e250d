/* The per-token training ops of the LLaMA block and their backward (train_impl.h):
 * RMSNorm, RoPE, SwiGLU, embedding. fp32 arithmetic, fixed-order reductions; the
 * outputs that are saved matmul inputs and the weight gradients may be bf16 regions.
 * COMPILED, NEVER RUN here (no GPU). */
#include "train_impl.h"

enum { ROW_THREADS = 256 };

/* Σ over the block in a fixed tree (float). */
__device__ static float block_sum_f(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

/* one block per row: rstd = 1/sqrt(mean(x²) + eps), out = w · (x · rstd) */
template <typename T>
__global__ void k_rms_fwd(T *out, float *rstd, const float *x, const float *w, int dim, float eps) {
    __shared__ float sh[ROW_THREADS];
    const float *xr = x + (int64_t)blockIdx.x * dim;
    T *o = out + (int64_t)blockIdx.x * dim;
    float s = 0;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += xr[i] * xr[i];
    float ss = block_sum_f(s, sh) / (float)dim;
    float inv = 1.0f / sqrtf(ss + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = inv;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) gr_st(o, i, w[i] * (xr[i] * inv));
}

void gr_ctrain_rmsnorm_fwd(gr_backend *b, float *out, float *rstd, const float *x, const float *w,
                           int n, int dim, float eps) {
    if (n <= 0) return;
    __nv_bfloat16 *o16 = gr_ctrain_is16(b, out); /* a saved matmul input */
    if (o16) k_rms_fwd<<<n, ROW_THREADS, 0, gr_ctrain_stream(b)>>>(o16, rstd, x, w, dim, eps);
    else k_rms_fwd<<<n, ROW_THREADS, 0, gr_ctrain_stream(b)>>>(out, rstd, x, w, dim, eps);
    GR_CU_LAUNCH();
}

/* dx += rs · (g·w − x · c),  c = (Σ g·w·x) · rs² / dim  (one block per row) */
__global__ void k_rms_bwd_dx(float *dx, const float *dout, const float *x, const float *w,
                             const float *rstd, int dim) {
    __shared__ float sh[ROW_THREADS];
    int64_t r = blockIdx.x;
    const float *xr = x + r * dim, *g = dout + r * dim;
    float *d = dx + r * dim;
    float rs = rstd[r];
    float s = 0;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += g[i] * w[i] * xr[i];
    float c = block_sum_f(s, sh) * rs * rs / (float)dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) d[i] += rs * (g[i] * w[i] - xr[i] * c);
}

/* dw partials: block (column tile, row chunk) sums its rows in order */
enum { DW_CHUNK = GR_TRMS_CHUNK };
__global__ void k_rms_bwd_dw_part(float *part, const float *dout, const float *x, const float *rstd,
                                  int n, int dim) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    int r0 = blockIdx.y * DW_CHUNK, r1 = r0 + DW_CHUNK < n ? r0 + DW_CHUNK : n;
    float s = 0;
    for (int r = r0; r < r1; r++) s += dout[(int64_t)r * dim + c] * (x[(int64_t)r * dim + c] * rstd[r]);
    part[(int64_t)blockIdx.y * dim + c] = s;
}

template <typename T>
__global__ void k_rms_bwd_dw_sum(T *dw, const float *part, int chunks, int dim) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    float s = 0;
    for (int k = 0; k < chunks; k++) s += part[(int64_t)k * dim + c];
    gr_st(dw, c, gr_ld(dw, c) + s);
}

void gr_ctrain_rmsnorm_bwd(gr_backend *b, float *dx, float *dw, const float *dout, const float *x,
                           const float *w, const float *rstd, int n, int dim) {
    if (n <= 0) return;
    cudaStream_t st = gr_ctrain_stream(b);
    k_rms_bwd_dx<<<n, ROW_THREADS, 0, st>>>(dx, dout, x, w, rstd, dim);
    GR_CU_LAUNCH();
    int chunks = (n + DW_CHUNK - 1) / DW_CHUNK;
    float *part = (float *)gr_ctrain_scratch(b, TS_PART, (size_t)gr_tpart_bytes(n, dim));
    dim3 grid((dim + 127) / 128, chunks);
    k_rms_bwd_dw_part<<<grid, 128, 0, st>>>(part, dout, x, rstd, n, dim);
    GR_CU_LAUNCH();
    __nv_bfloat16 *dw16 = gr_ctrain_is16(b, dw);
    if (dw16) k_rms_bwd_dw_sum<<<(dim + 127) / 128, 128, 0, st>>>(dw16, part, chunks, dim);
    else k_rms_bwd_dw_sum<<<(dim + 127) / 128, 128, 0, st>>>(dw, part, chunks, dim);
    GR_CU_LAUNCH();
}

/* HF half-split rotation; inverse rotates backwards (the backward) */
__global__ void k_rope(float *x, const int *pos, int n, int heads, int hd, const float *inv,
                       int inverse) {
    int half = hd / 2;
    int64_t total = (int64_t)n * heads * half;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        int i = (int)(e % half);
        int64_t th = e / half; /* token * heads + head */
        int t = (int)(th / heads);
        float ang = (float)pos[t] * inv[i];
        float c = cosf(ang), s = sinf(ang);
        if (inverse) s = -s;
        float *v = x + th * hd;
        float a = v[i], bb = v[i + half];
        v[i] = a * c - bb * s;
        v[i + half] = bb * c + a * s;
    }
}

void gr_ctrain_rope(gr_backend *b, float *x, const int *pos, int n, int heads, int hd,
                    const float *inv, int inverse) {
    if (n <= 0) return;
    int64_t total = (int64_t)n * heads * (hd / 2);
    k_rope<<<gr_cuda_blocks(total, 256), 256, 0, gr_ctrain_stream(b)>>>(x, pos, n, heads, hd, inv, inverse);
    GR_CU_LAUNCH();
}

__device__ static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

template <typename T>
__global__ void k_swiglu_fwd(T *out, const float *g, const float *u, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        gr_st(out, i, g[i] * sigm(g[i]) * u[i]);
}

__global__ void k_swiglu_bwd(float *dg, float *du, const float *d, const float *g, const float *u,
                             int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float gi = g[i], ui = u[i], di = d[i], s = sigm(gi);
        dg[i] = di * ui * s * (1.0f + gi * (1.0f - s));
        du[i] = di * gi * s;
    }
}

void gr_ctrain_swiglu_fwd(gr_backend *b, float *out, const float *gate, const float *up, int64_t n) {
    if (n <= 0) return;
    __nv_bfloat16 *o16 = gr_ctrain_is16(b, out);
    if (o16) k_swiglu_fwd<<<gr_cuda_blocks(n, 256), 256, 0, gr_ctrain_stream(b)>>>(o16, gate, up, n);
    else k_swiglu_fwd<<<gr_cuda_blocks(n, 256), 256, 0, gr_ctrain_stream(b)>>>(out, gate, up, n);
    GR_CU_LAUNCH();
}

void gr_ctrain_swiglu_bwd(gr_backend *b, float *dgate, float *dup, const float *dout,
                          const float *gate, const float *up, int64_t n) {
    if (n <= 0) return;
    k_swiglu_bwd<<<gr_cuda_blocks(n, 256), 256, 0, gr_ctrain_stream(b)>>>(dgate, dup, dout, gate, up, n);
    GR_CU_LAUNCH();
}

__global__ void k_emb_fwd(float *out, const float *emb, const int *tok, int n, int dim) {
    int64_t total = (int64_t)n * dim;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x)
        out[e] = emb[(int64_t)tok[e / dim] * dim + e % dim];
}

void gr_ctrain_embedding_fwd(gr_backend *b, float *out, const float *emb, const int *tok, int n,
                             int dim) {
    if (n <= 0) return;
    k_emb_fwd<<<gr_cuda_blocks((int64_t)n * dim, 256), 256, 0, gr_ctrain_stream(b)>>>(out, emb, tok, n, dim);
    GR_CU_LAUNCH();
}

/* demb[tok[i]] += dout[i]: one thread per column walks the tokens in order, so
 * repeated tokens add in a fixed order without atomics (as the CPU does) */
__global__ void k_emb_bwd(float *demb, const float *dout, const int *tok, int n, int dim) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    for (int i = 0; i < n; i++) {
        float *d = demb + (int64_t)tok[i] * dim + c;
        *d += dout[(int64_t)i * dim + c];
    }
}

/* bf16 demb: the rows of each distinct token are summed in fp32 first, in
 * token order, and added to the stored value once. nxt[i] = the next row with
 * row i's token (-1: none), first[i] = 1 when no earlier row has it. */
__global__ void k_emb_chain(int *nxt, int *first, const int *tok, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int t = tok[i], j = i + 1, f = 1;
        while (j < n && tok[j] != t) j++;
        nxt[i] = j < n ? j : -1;
        for (int k = 0; k < i && f; k++) f = tok[k] != t;
        first[i] = f;
    }
}

__global__ void k_emb_bwd16(__nv_bfloat16 *demb, const float *dout, const int *tok, const int *nxt,
                            const int *first, int n, int dim) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    for (int i = 0; i < n; i++) {
        if (!first[i]) continue;
        float s = 0;
        for (int j = i; j >= 0; j = nxt[j]) s += dout[(int64_t)j * dim + c];
        int64_t at = (int64_t)tok[i] * dim + c;
        demb[at] = __float2bfloat16_rn(__bfloat162float(demb[at]) + s);
    }
}

void gr_ctrain_embedding_bwd(gr_backend *b, float *demb, const float *dout, const int *tok, int n,
                             int dim) {
    if (n <= 0) return;
    cudaStream_t st = gr_ctrain_stream(b);
    __nv_bfloat16 *d16 = gr_ctrain_is16(b, demb);
    if (d16) {
        int *ch = (int *)gr_ctrain_scratch(b, TS_EMB, 2 * sizeof(int) * (size_t)n);
        k_emb_chain<<<(n + 255) / 256, 256, 0, st>>>(ch, ch + n, tok, n);
        GR_CU_LAUNCH();
        k_emb_bwd16<<<(dim + 127) / 128, 128, 0, st>>>(d16, dout, tok, ch, ch + n, n, dim);
        GR_CU_LAUNCH();
        return;
    }
    k_emb_bwd<<<(dim + 127) / 128, 128, 0, st>>>(demb, dout, tok, n, dim);
    GR_CU_LAUNCH();
}
