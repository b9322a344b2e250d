/* Causal GQA attention for training over packed sequences, FlashAttention
 * style (train_impl.h): never an (n, n) matrix; the forward keeps only the
 * log-sum-exp of each row's scaled scores, and the backward recomputes the
 * probabilities from it.
 *
 *   forward  block = 8 warps = 8 consecutive query rows of one head; key/value
 *            tiles of 32 rows in shared memory, shared by the 8 rows; in a warp
 *            lane j scores key j of the tile, an online softmax over the tiles,
 *            each lane accumulates its own head dims of the output.
 *   backward D = rowsum(dO ⊙ O); dQ by the forward's layout (keys in tiles);
 *            dK, dV by the transposed one: block = 8 consecutive keys of one kv
 *            head, query tiles of 32 rows (every head of the group) in shared
 *            memory, lane i handling query i of the tile. Each output element
 *            is owned by one lane and summed in a fixed order: deterministic,
 *            no atomics.
 * Scalar fp32 FMA arithmetic (no tensor cores yet); head_dim <= 256. The output
 * (a saved matmul input) may be a bf16 region: written and read back as bf16.
 * COMPILED, NEVER RUN here (no GPU). */
#include "train_impl.h"
#include <math.h>

enum { WARPS = 8, TILE = 32, MAXR = 8 /* head dims per lane: hd <= 256 */ };
#define FULL 0xffffffffu

/* the sequence holding row t: the largest s with start[s] <= t */
__device__ static int seq_of(const int *start, int n_seq, int t) {
    int lo = 0, hi = n_seq - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (start[mid] <= t) lo = mid; else hi = mid - 1;
    }
    return lo;
}

__device__ static inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL, v, o));
    return v;
}
__device__ static inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
    return v;
}

template <typename TO>
__global__ void k_att_fwd(TO *out, float *lse, const float *q, const float *k, const float *v,
                          const int *start, int n_seq, int n, int H, int Hkv, int hd, float scale) {
    extern __shared__ float sm[];
    int hp = hd + 1;
    float *sq = sm;                    /* (WARPS, hd) */
    float *sk = sq + WARPS * hd;       /* (TILE, hd + 1) */
    float *sv = sk + TILE * hp;        /* (TILE, hd + 1) */
    int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    int h = blockIdx.y, g = h / (H / Hkv);
    int t0 = blockIdx.x * WARPS, t = t0 + w;
    int last = t0 + WARPS - 1 < n - 1 ? t0 + WARPS - 1 : n - 1;
    int active = t < n;
    int s0 = active ? start[seq_of(start, n_seq, t)] : 0;
    int klo = start[seq_of(start, n_seq, t0)];
    int64_t qs = (int64_t)H * hd, ks = (int64_t)Hkv * hd;
    for (int d = lane; d < hd; d += 32) sq[w * hd + d] = active ? q[t * qs + h * hd + d] : 0.0f;
    float o[MAXR];
    for (int r = 0; r < MAXR; r++) o[r] = 0;
    float m = -INFINITY, l = 0;
    for (int k0 = klo; k0 <= last; k0 += TILE) {
        __syncthreads();
        for (int e = threadIdx.x; e < TILE * hd; e += blockDim.x) {
            int j = e / hd, d = e % hd, kk = k0 + j;
            sk[j * hp + d] = kk < n ? k[kk * ks + g * hd + d] : 0.0f;
            sv[j * hp + d] = kk < n ? v[kk * ks + g * hd + d] : 0.0f;
        }
        __syncthreads();
        int kj = k0 + lane;
        float s = -INFINITY;
        if (active && kj >= s0 && kj <= t) {
            float acc = 0;
            for (int d = 0; d < hd; d++) acc += sq[w * hd + d] * sk[lane * hp + d];
            s = acc * scale;
        }
        float mt = warp_max(s);
        if (mt == -INFINITY) continue; /* nothing this row sees in the tile (warp-uniform) */
        float mn = fmaxf(m, mt);
        float p = s == -INFINITY ? 0.0f : expf(s - mn);
        float corr = m == -INFINITY ? 0.0f : expf(m - mn);
        l = l * corr + warp_sum(p);
        m = mn;
        for (int r = 0; r < MAXR; r++) o[r] *= corr;
        for (int j = 0; j < TILE; j++) {
            float pj = __shfl_sync(FULL, p, j);
            for (int r = 0; r < MAXR; r++) {
                int d = lane + 32 * r;
                if (d < hd) o[r] += pj * sv[j * hp + d];
            }
        }
    }
    if (!active) return;
    for (int r = 0; r < MAXR; r++) {
        int d = lane + 32 * r;
        if (d < hd) gr_st(out, t * qs + h * hd + d, o[r] / l);
    }
    if (lane == 0) lse[(int64_t)t * H + h] = m + logf(l);
}

/* D (n, H) = Σ_d dout ⊙ out, one warp per (row, head), fixed order */
template <typename TO>
__global__ void k_att_dsum(float *D, const float *dout, const TO *out, int n, int H, int hd) {
    int64_t wid = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    if (wid >= (int64_t)n * H) return;
    const float *a = dout + wid * hd;
    const TO *b = out + wid * hd;
    float s = 0;
    for (int d = lane; d < hd; d += 32) s += a[d] * gr_ld(b, d);
    s = warp_sum(s);
    if (lane == 0) D[wid] = s;
}

__global__ void k_att_dq(float *dq, const float *dout, const float *lse, const float *D,
                         const float *q, const float *k, const float *v, const int *start, int n_seq,
                         int n, int H, int Hkv, int hd, float scale) {
    extern __shared__ float sm[];
    int hp = hd + 1;
    float *sq = sm;                    /* (WARPS, hd) */
    float *sdo = sq + WARPS * hd;      /* (WARPS, hd) */
    float *sk = sdo + WARPS * hd;      /* (TILE, hd + 1) */
    float *sv = sk + TILE * hp;        /* (TILE, hd + 1) */
    int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    int h = blockIdx.y, g = h / (H / Hkv);
    int t0 = blockIdx.x * WARPS, t = t0 + w;
    int last = t0 + WARPS - 1 < n - 1 ? t0 + WARPS - 1 : n - 1;
    int active = t < n;
    int s0 = active ? start[seq_of(start, n_seq, t)] : 0;
    int klo = start[seq_of(start, n_seq, t0)];
    int64_t qs = (int64_t)H * hd, ks = (int64_t)Hkv * hd;
    for (int d = lane; d < hd; d += 32) {
        sq[w * hd + d] = active ? q[t * qs + h * hd + d] : 0.0f;
        sdo[w * hd + d] = active ? dout[t * qs + h * hd + d] : 0.0f;
    }
    float L = active ? lse[(int64_t)t * H + h] : 0.0f, Dt = active ? D[(int64_t)t * H + h] : 0.0f;
    float acc[MAXR];
    for (int r = 0; r < MAXR; r++) acc[r] = 0;
    for (int k0 = klo; k0 <= last; k0 += TILE) {
        __syncthreads();
        for (int e = threadIdx.x; e < TILE * hd; e += blockDim.x) {
            int j = e / hd, d = e % hd, kk = k0 + j;
            sk[j * hp + d] = kk < n ? k[kk * ks + g * hd + d] : 0.0f;
            sv[j * hp + d] = kk < n ? v[kk * ks + g * hd + d] : 0.0f;
        }
        __syncthreads();
        int kj = k0 + lane;
        float ds = 0;
        if (active && kj >= s0 && kj <= t) {
            float sc = 0, dp = 0;
            for (int d = 0; d < hd; d++) {
                sc += sq[w * hd + d] * sk[lane * hp + d];
                dp += sdo[w * hd + d] * sv[lane * hp + d];
            }
            float p = expf(sc * scale - L);
            ds = p * (dp - Dt);
        }
        for (int j = 0; j < TILE; j++) {
            float dj = __shfl_sync(FULL, ds, j);
            for (int r = 0; r < MAXR; r++) {
                int d = lane + 32 * r;
                if (d < hd) acc[r] += dj * sk[j * hp + d];
            }
        }
    }
    if (!active) return;
    for (int r = 0; r < MAXR; r++) {
        int d = lane + 32 * r;
        if (d < hd) dq[t * qs + h * hd + d] = acc[r] * scale;
    }
}

__global__ void k_att_dkdv(float *dk, float *dv, const float *dout, const float *lse, const float *D,
                           const float *q, const float *k, const float *v, const int *start, int n_seq,
                           int n, int H, int Hkv, int hd, float scale) {
    extern __shared__ float sm[];
    int hp = hd + 1;
    float *skj = sm;                   /* (WARPS, hd): each warp's key row */
    float *svj = skj + WARPS * hd;     /* (WARPS, hd) */
    float *sq = svj + WARPS * hd;      /* (TILE, hd + 1) */
    float *sdo = sq + TILE * hp;       /* (TILE, hd + 1) */
    float *sl = sdo + TILE * hp;       /* (TILE) */
    float *sD = sl + TILE;             /* (TILE) */
    int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    int g = blockIdx.y, gs = H / Hkv;
    int j0 = blockIdx.x * WARPS, j = j0 + w;
    int lastj = j0 + WARPS - 1 < n - 1 ? j0 + WARPS - 1 : n - 1;
    int active = j < n;
    int send = active ? start[seq_of(start, n_seq, j) + 1] : 0;  /* exclusive */
    int qhi = start[seq_of(start, n_seq, lastj) + 1];             /* exclusive */
    int64_t qs = (int64_t)H * hd, ks = (int64_t)Hkv * hd;
    for (int d = lane; d < hd; d += 32) {
        skj[w * hd + d] = active ? k[j * ks + g * hd + d] : 0.0f;
        svj[w * hd + d] = active ? v[j * ks + g * hd + d] : 0.0f;
    }
    float ak[MAXR], av[MAXR];
    for (int r = 0; r < MAXR; r++) ak[r] = av[r] = 0;
    for (int hh = 0; hh < gs; hh++) {
        int h = g * gs + hh;
        for (int q0 = j0; q0 < qhi; q0 += TILE) {
            __syncthreads();
            for (int e = threadIdx.x; e < TILE * hd; e += blockDim.x) {
                int i = e / hd, d = e % hd, qq = q0 + i;
                sq[i * hp + d] = qq < n ? q[qq * qs + h * hd + d] : 0.0f;
                sdo[i * hp + d] = qq < n ? dout[qq * qs + h * hd + d] : 0.0f;
            }
            for (int i = threadIdx.x; i < TILE; i += blockDim.x) {
                int qq = q0 + i;
                sl[i] = qq < n ? lse[(int64_t)qq * H + h] : 0.0f;
                sD[i] = qq < n ? D[(int64_t)qq * H + h] : 0.0f;
            }
            __syncthreads();
            int ti = q0 + lane;
            float p = 0, ds = 0;
            if (active && ti >= j && ti < send) {
                float sc = 0, dp = 0;
                for (int d = 0; d < hd; d++) {
                    sc += sq[lane * hp + d] * skj[w * hd + d];
                    dp += sdo[lane * hp + d] * svj[w * hd + d];
                }
                p = expf(sc * scale - sl[lane]);
                ds = p * (dp - sD[lane]);
            }
            for (int i = 0; i < TILE; i++) {
                float pi = __shfl_sync(FULL, p, i), di = __shfl_sync(FULL, ds, i);
                for (int r = 0; r < MAXR; r++) {
                    int d = lane + 32 * r;
                    if (d < hd) {
                        av[r] += pi * sdo[i * hp + d];
                        ak[r] += di * sq[i * hp + d];
                    }
                }
            }
        }
    }
    if (!active) return;
    for (int r = 0; r < MAXR; r++) {
        int d = lane + 32 * r;
        if (d < hd) {
            dk[j * ks + g * hd + d] = ak[r] * scale;
            dv[j * ks + g * hd + d] = av[r];
        }
    }
}

static void check_shape(int H, int Hkv, int hd) {
    if (hd < 1 || hd > 32 * MAXR || Hkv < 1 || H % Hkv) {
        fprintf(stderr, "cuda train attention: head_dim %d (at most %d), heads %d / kv heads %d\n", hd,
                32 * MAXR, H, Hkv);
        abort();
    }
}

static void smem_opt_in(const void *kernel, size_t bytes) {
    if (bytes > 48 * 1024)
        GR_CU(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

/* n = start[n_seq], fetched from device memory (the host wrote it there
 * before the step; this waits for the stream) */
static int rows_of(gr_backend *b, const int *start, int n_seq) {
    int n = 0;
    cudaStream_t st = gr_ctrain_stream(b);
    GR_CU(cudaMemcpyAsync(&n, start + n_seq, sizeof n, cudaMemcpyDeviceToHost, st));
    GR_CU(cudaStreamSynchronize(st));
    return n;
}

void gr_ctrain_attention_fwd(gr_backend *b, float *out, float *lse, const float *q, const float *k,
                             const float *v, const int *start, int n_seq, int H, int Hkv, int hd) {
    check_shape(H, Hkv, hd);
    int n = rows_of(b, start, n_seq);
    if (n <= 0) return;
    if (gr_ctrain_attention_fwd_mma(b, out, lse, q, k, v, start, n_seq, n, H, Hkv, hd)) return;
    size_t sm = sizeof(float) * ((size_t)WARPS * hd + 2 * (size_t)TILE * (hd + 1));
    dim3 grid((n + WARPS - 1) / WARPS, H);
    float scale = 1.0f / sqrtf((float)hd);
    __nv_bfloat16 *o16 = gr_ctrain_is16(b, out); /* a saved matmul input */
    if (o16) {
        smem_opt_in((const void *)k_att_fwd<__nv_bfloat16>, sm);
        k_att_fwd<<<grid, WARPS * 32, sm, gr_ctrain_stream(b)>>>(o16, lse, q, k, v, start, n_seq, n, H, Hkv,
                                                                hd, scale);
    } else {
        smem_opt_in((const void *)k_att_fwd<float>, sm);
        k_att_fwd<<<grid, WARPS * 32, sm, gr_ctrain_stream(b)>>>(out, lse, q, k, v, start, n_seq, n, H, Hkv,
                                                                hd, scale);
    }
    GR_CU_LAUNCH();
}

void gr_ctrain_attention_bwd(gr_backend *b, float *dq, float *dk, float *dv, const float *dout,
                             const float *out, const float *lse, const float *q, const float *k,
                             const float *v, const int *start, int n_seq, int H, int Hkv, int hd) {
    check_shape(H, Hkv, hd);
    cudaStream_t st = gr_ctrain_stream(b);
    int n = rows_of(b, start, n_seq);
    if (n <= 0) return;
    float scale = 1.0f / sqrtf((float)hd);
    float *D = (float *)gr_ctrain_scratch(b, TS_ATT, sizeof(float) * (size_t)n * H);
    int64_t warps = (int64_t)n * H;
    const __nv_bfloat16 *o16 = gr_ctrain_is16(b, out);
    if (o16) k_att_dsum<<<(unsigned)((warps * 32 + 255) / 256), 256, 0, st>>>(D, dout, o16, n, H, hd);
    else k_att_dsum<<<(unsigned)((warps * 32 + 255) / 256), 256, 0, st>>>(D, dout, out, n, H, hd);
    GR_CU_LAUNCH();
    size_t sm_q = sizeof(float) * (2 * (size_t)WARPS * hd + 2 * (size_t)TILE * (hd + 1));
    smem_opt_in((const void *)k_att_dq, sm_q);
    dim3 gq((n + WARPS - 1) / WARPS, H);
    k_att_dq<<<gq, WARPS * 32, sm_q, st>>>(dq, dout, lse, D, q, k, v, start, n_seq, n, H, Hkv, hd, scale);
    GR_CU_LAUNCH();
    size_t sm_k = sizeof(float) * (2 * (size_t)WARPS * hd + 2 * (size_t)TILE * (hd + 1) + 2 * TILE);
    smem_opt_in((const void *)k_att_dkdv, sm_k);
    dim3 gk((n + WARPS - 1) / WARPS, Hkv);
    k_att_dkdv<<<gk, WARPS * 32, sm_k, st>>>(dk, dv, dout, lse, D, q, k, v, start, n_seq, n, H, Hkv, hd,
                                             scale);
    GR_CU_LAUNCH();
}
