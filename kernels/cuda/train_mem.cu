/* Training memory (the pool, bf16 regions, the bf16 copy of the weights, host
 * copies) and the elementwise / reduction ops of the optimizer step
 * (train_impl.h). COMPILED, NEVER RUN here (no GPU). */
#include "train_impl.h"
#include <math.h>
#include <string.h>

/* ---- the pool -------------------------------------------------------------------
 * Plain cudaMalloc blocks. A released block is kept (up to CACHE blocks) and
 * handed out again to an allocation of exactly its size: the activations are
 * released and asked for again with the same sizes each time a batch grows
 * them, and the optimizer's and the model's blocks live for the run. An
 * allocation of a size not kept frees the kept blocks first (after the stream
 * is done with them), so device memory never holds more than the blocks handed
 * out plus the ops' scratch: what mem_stats counts and the plan bounds. */
enum { CACHE = 32 };

static void pool_track(train_state *s, void *p, size_t bytes) {
    if (s->n_live == s->cap_live) {
        s->cap_live = s->cap_live ? 2 * s->cap_live : 64;
        s->live = (train_block *)realloc(s->live, sizeof(train_block) * (size_t)s->cap_live);
        if (!s->live) {
            fprintf(stderr, "cuda train: out of host memory\n");
            abort();
        }
    }
    s->live[s->n_live++] = (train_block){p, bytes};
    s->live_bytes += bytes;
    if (s->live_bytes + s->scratch_bytes > s->peak_bytes) s->peak_bytes = s->live_bytes + s->scratch_bytes;
}

static void pool_drop_cache(train_state *s) {
    for (int i = 0; i < s->n_cache; i++) GR_CU(cudaFree(s->cache[i].p));
    s->n_cache = 0;
}

void *gr_ctrain_alloc(gr_backend *b, size_t bytes) {
    train_state *s = gr_ctrain_state(b);
    cudaStream_t st = gr_ctrain_stream(b);
    size_t want = bytes ? bytes : 1;
    void *p = NULL;
    for (int i = 0; i < s->n_cache; i++)
        if (s->cache[i].bytes == want) {
            p = s->cache[i].p;
            s->cache[i] = s->cache[--s->n_cache];
            break;
        }
    if (!p && s->n_cache) { /* a new size: the kept blocks go first, so the peak stays the plan's */
        GR_CU(cudaStreamSynchronize(st));
        pool_drop_cache(s);
    }
    if (!p) {
        if (cudaMalloc(&p, want) != cudaSuccess) {
            cudaGetLastError(); /* clear it: the caller reports the failure */
            size_t free_b = 0, total_b = 0;
            cudaMemGetInfo(&free_b, &total_b);
            cudaGetLastError();
            fprintf(stderr, "cuda train: %zu bytes asked, %zu free on the GPU\n", want, free_b);
            return NULL;
        }
    }
    GR_CU(cudaMemsetAsync(p, 0, want, st));
    pool_track(s, p, want);
    return p;
}

void gr_ctrain_release(gr_backend *b, void *p) {
    if (!p) return;
    train_state *s = gr_ctrain_state(b);
    int i = 0;
    while (i < s->n_live && s->live[i].p != p) i++;
    if (i == s->n_live) {
        fprintf(stderr, "cuda train: release of %p, which alloc did not hand out\n", p);
        abort();
    }
    train_block blk = s->live[i];
    s->live[i] = s->live[--s->n_live];
    s->live_bytes -= blk.bytes;
    for (int r = 0; r < s->n_r16; r++) /* a bf16 region no more */
        if (s->r16[r].p == (const char *)p) s->r16[r--] = s->r16[--s->n_r16];
    for (int w = 0; w < s->n_w16; w++)
        if ((void *)s->w16[w].w16 == p || (const void *)s->w16[w].master == p) s->w16[w--] = s->w16[--s->n_w16];
    /* the stream may still read it; a reuse is queued after those reads, a free waits */
    if (!s->cache) {
        s->cache = (train_block *)malloc(sizeof(train_block) * CACHE);
        if (!s->cache) {
            fprintf(stderr, "cuda train: out of host memory\n");
            abort();
        }
    }
    if (s->n_cache == CACHE) {
        GR_CU(cudaStreamSynchronize(gr_ctrain_stream(b)));
        GR_CU(cudaFree(s->cache[0].p));
        s->cache[0] = s->cache[--s->n_cache];
    }
    s->cache[s->n_cache++] = blk;
}

void gr_ctrain_mem_stats(gr_backend *b, size_t *live, size_t *peak, size_t *scratch) {
    train_state *s = gr_ctrain_state(b);
    if (live) *live = s->live_bytes;
    if (peak) *peak = s->peak_bytes;
    if (scratch) *scratch = s->scratch_bytes;
}

void gr_ctrain_sync(gr_backend *b) { GR_CU(cudaStreamSynchronize(gr_ctrain_stream(b))); }

void gr_ctrain_upload(gr_backend *b, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cudaStream_t st = gr_ctrain_stream(b);
    GR_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st));
    GR_CU(cudaStreamSynchronize(st)); /* src may be reused at once */
}

void gr_ctrain_download(gr_backend *b, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cudaStream_t st = gr_ctrain_stream(b);
    GR_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st));
    GR_CU(cudaStreamSynchronize(st));
}

/* ---- bf16 regions and the copy of the weights -------------------------------------- */
int gr_ctrain_storage16(gr_backend *b) { return gr_ctrain_state(b)->store16; }

void *gr_ctrain_alloc16(gr_backend *b, int64_t n) {
    train_state *s = gr_ctrain_state(b);
    if (s->n_r16 == MAX_R16) {
        fprintf(stderr, "cuda train: more than %d bf16 blocks\n", MAX_R16);
        return NULL;
    }
    size_t bytes = sizeof(__nv_bfloat16) * (size_t)(n > 0 ? n : 1);
    void *p = gr_ctrain_alloc(b, bytes);
    if (p) s->r16[s->n_r16++] = (train_region){(const char *)p, bytes};
    return p;
}

__nv_bfloat16 *gr_ctrain_is16(gr_backend *b, const void *p) {
    train_state *s = gr_ctrain_state(b);
    const char *c = (const char *)p;
    for (int i = 0; i < s->n_r16; i++)
        if (c >= s->r16[i].p && c < s->r16[i].p + s->r16[i].bytes) return (__nv_bfloat16 *)(void *)c;
    return NULL;
}

const __nv_bfloat16 *gr_ctrain_w16(gr_backend *b, const float *w) {
    train_state *s = gr_ctrain_state(b);
    for (int i = 0; i < s->n_w16; i++)
        if (w >= s->w16[i].master && w < s->w16[i].master + s->w16[i].n)
            return s->w16[i].w16 + (w - s->w16[i].master);
    return NULL;
}

__global__ void k_to16(__nv_bfloat16 *dst, const float *src, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

void gr_ctrain_to16(gr_backend *b, __nv_bfloat16 *dst, const float *src, int64_t n) {
    if (n <= 0) return;
    k_to16<<<gr_cuda_blocks(n, 256), 256, 0, gr_ctrain_stream(b)>>>(dst, src, n);
    GR_CU_LAUNCH();
}

void gr_ctrain_weights16(gr_backend *b, const float *master, void *w16, int64_t n) {
    train_state *s = gr_ctrain_state(b);
    int i = 0;
    while (i < s->n_w16 && s->w16[i].master != master) i++;
    if (i == s->n_w16) {
        if (s->n_w16 == MAX_W16) {
            fprintf(stderr, "cuda train: more than %d bf16 weight copies\n", MAX_W16);
            abort();
        }
        s->n_w16++;
    }
    s->w16[i] = (train_shadow){master, (__nv_bfloat16 *)w16, n};
    gr_ctrain_to16(b, (__nv_bfloat16 *)w16, master, n);
}

/* ---- elementwise ------------------------------------------------------------------- */
void gr_ctrain_zero(gr_backend *b, float *x, int64_t n) {
    if (n <= 0) return;
    size_t es = gr_ctrain_is16(b, x) ? sizeof(__nv_bfloat16) : sizeof(float);
    GR_CU(cudaMemsetAsync(x, 0, es * (size_t)n, gr_ctrain_stream(b)));
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

/* ---- Σ x² ---------------------------------------------------------------------------
 * In double: GR_TSUM_BLOCKS blocks each sum a fixed strided share (per thread,
 * then a fixed tree), then one block sums the partials in a fixed tree. The
 * same kernels serve sumsq and adamw_clip, so both see the same total. */
enum { SUM_THREADS = 256 };

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

template <typename T>
__global__ void k_sumsq_part(double *part, const T *x, int64_t n) {
    __shared__ double sh[SUM_THREADS];
    double s = 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        double xi = (double)gr_ld(x, i);
        s += xi * xi;
    }
    double t = block_sum_d(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = t;
}

/* out[0] = Σ part; with max_norm > 0 also the clip coefficient (as the host's
 * gr_clip_grad_norm computes it) as a float in out[1], 1 when no clipping */
__global__ void k_sum_parts(double *out, const double *part, int n, float max_norm) {
    __shared__ double sh[SUM_THREADS];
    double s = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += part[i];
    double t = block_sum_d(s, sh);
    if (threadIdx.x == 0) {
        out[0] = t;
        float coef = 1.0f;
        if (max_norm > 0) {
            float c = (float)((double)max_norm / (sqrt(t) + 1e-6));
            if (c < 1.0f) coef = c;
        }
        *(float *)(void *)(out + 1) = coef;
    }
}

/* the partials, the total and the coefficient in the TS_PART scratch */
static double *sumsq_queue(gr_backend *b, const float *x, int64_t n, float max_norm) {
    cudaStream_t st = gr_ctrain_stream(b);
    double *part = (double *)gr_ctrain_scratch(b, TS_PART, (size_t)gr_tpart_bytes(0, 0));
    const __nv_bfloat16 *x16 = gr_ctrain_is16(b, x);
    if (x16) k_sumsq_part<<<GR_TSUM_BLOCKS, SUM_THREADS, 0, st>>>(part, x16, n);
    else k_sumsq_part<<<GR_TSUM_BLOCKS, SUM_THREADS, 0, st>>>(part, x, n);
    GR_CU_LAUNCH();
    k_sum_parts<<<1, SUM_THREADS, 0, st>>>(part + GR_TSUM_BLOCKS, part, GR_TSUM_BLOCKS, max_norm);
    GR_CU_LAUNCH();
    return part + GR_TSUM_BLOCKS;
}

double gr_ctrain_sumsq(gr_backend *b, const float *x, int64_t n) {
    if (n <= 0) return 0;
    cudaStream_t st = gr_ctrain_stream(b);
    double *tot = sumsq_queue(b, x, n, 0.0f);
    double r;
    GR_CU(cudaMemcpyAsync(&r, tot, sizeof r, cudaMemcpyDeviceToHost, st));
    GR_CU(cudaStreamSynchronize(st));
    return r;
}

template <typename T>
__global__ void k_scale(T *x, float s, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        gr_st(x, i, __fmul_rn(gr_ld(x, i), s));
}

void gr_ctrain_scale(gr_backend *b, float *x, float s, int64_t n) {
    if (n <= 0) return;
    __nv_bfloat16 *x16 = gr_ctrain_is16(b, x);
    if (x16) k_scale<<<gr_cuda_blocks(n, 256), 256, 0, gr_ctrain_stream(b)>>>(x16, s, n);
    else k_scale<<<gr_cuda_blocks(n, 256), 256, 0, gr_ctrain_stream(b)>>>(x, s, n);
    GR_CU_LAUNCH();
}

/* ---- AdamW --------------------------------------------------------------------------
 * torch.optim.AdamW in the CPU table's fp32 operation order, every operation
 * correctly rounded and none contracted into an FMA (the __f*_rn intrinsics):
 * the same bits as the CPU for the same fp32 inputs. coef (device memory, or
 * NULL for none) scales each gradient first, as gr_clip_grad_norm's scale would
 * have; w16 (or NULL) receives the bf16 copy of the new weights. */
struct adamw_k {
    float step, bc2s, w1, w2, b2, eps, decay;
    int wd;
};

static adamw_k adamw_consts(float lr, float beta1, float beta2, float eps, float wd, int t) {
    double bc1 = 1.0 - pow((double)beta1, t), bc2 = 1.0 - pow((double)beta2, t);
    adamw_k k;
    k.step = (float)((double)lr / bc1);
    k.bc2s = (float)sqrt(bc2);
    k.w1 = (float)(1.0 - (double)beta1);
    k.w2 = (float)(1.0 - (double)beta2);
    k.b2 = beta2;
    k.eps = eps;
    k.decay = (float)(1.0 - (double)lr * wd);
    k.wd = wd != 0;
    return k;
}

template <typename T>
__global__ void k_adamw(float *p, const T *g, float *m, float *v, __nv_bfloat16 *w16, int64_t n,
                        adamw_k k, const double *coef_at) {
    float coef = coef_at ? *(const float *)(const void *)(coef_at + 1) : 1.0f;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float pi = p[i], gi = gr_ld(g, i), mi = m[i], vi = v[i];
        if (coef < 1.0f) gi = __fmul_rn(gi, coef);
        if (k.wd) pi = __fmul_rn(pi, k.decay);
        mi = __fadd_rn(mi, __fmul_rn(k.w1, __fsub_rn(gi, mi)));
        vi = __fadd_rn(__fmul_rn(vi, k.b2), __fmul_rn(__fmul_rn(k.w2, gi), gi));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2s), k.eps);
        pi = __fadd_rn(pi, __fmul_rn(-k.step, __fdiv_rn(mi, denom)));
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
        if (w16) w16[i] = __float2bfloat16_rn(pi);
    }
}

static void adamw_queue(gr_backend *b, float *p, const float *g, float *m, float *v, int64_t n,
                        adamw_k k, const double *coef_at) {
    __nv_bfloat16 *w16 = (__nv_bfloat16 *)gr_ctrain_w16(b, p);
    const __nv_bfloat16 *g16 = gr_ctrain_is16(b, g);
    cudaStream_t st = gr_ctrain_stream(b);
    if (g16) k_adamw<<<gr_cuda_blocks(n, 256), 256, 0, st>>>(p, g16, m, v, w16, n, k, coef_at);
    else k_adamw<<<gr_cuda_blocks(n, 256), 256, 0, st>>>(p, g, m, v, w16, n, k, coef_at);
    GR_CU_LAUNCH();
}

void gr_ctrain_adamw(gr_backend *b, float *p, const float *g, float *m, float *v, int64_t n,
                     float lr, float beta1, float beta2, float eps, float wd, int t) {
    if (n <= 0) return;
    adamw_queue(b, p, g, m, v, n, adamw_consts(lr, beta1, beta2, eps, wd, t), NULL);
}

/* The fused step: the squared norm (the same kernels as sumsq) and the clip
 * coefficient stay on the device; one pass then clips, updates and refreshes
 * the bf16 copy. The host waits once, for the norm, after the update. */
double gr_ctrain_adamw_clip(gr_backend *b, float *p, const float *g, float *m, float *v, int64_t n,
                            float lr, float beta1, float beta2, float eps, float wd, int t,
                            float max_norm) {
    if (n <= 0) return 0;
    cudaStream_t st = gr_ctrain_stream(b);
    double *tot = sumsq_queue(b, g, n, max_norm);
    adamw_queue(b, p, g, m, v, n, adamw_consts(lr, beta1, beta2, eps, wd, t), tot);
    double r;
    GR_CU(cudaMemcpyAsync(&r, tot, sizeof r, cudaMemcpyDeviceToHost, st));
    GR_CU(cudaStreamSynchronize(st));
    return sqrt(r);
}
