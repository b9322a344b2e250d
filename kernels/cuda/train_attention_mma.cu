/* Causal GQA attention forward for training on the bf16 tensor cores (WMMA
 * 16x16x16, fp32 accumulation), FlashAttention-2 style over packed sequences:
 * the same contract as train_attention.cu's forward (out, and the lse the
 * backward recomputes the probabilities from).
 *
 *   block = 4 warps = 64 query rows of one head (16 a warp); key/value tiles of
 *   64 rows, converted to bf16 in shared memory and shared by the warps;
 *   per tile a warp computes S (16 x 64) = Q·Kᵀ with WMMA into shared memory,
 *   the online softmax in fp32 (two lanes a row: mask, max, exp, sum), P as
 *   bf16, rescales its rows of O (fp32, shared memory), and O += P·V with WMMA
 *   (accumulators loaded from and stored back to O, so no assumption about the
 *   fragments' layout). Deterministic (fixed order, no atomics).
 * Rounding: q, k, v and P are bf16 (2^-9 relative each); sums, the softmax and
 * lse are fp32. head_dim 64 or 128. Opt-in (GR_CUDA_TRAIN_ATT=mma) until a GPU
 * run has checked it: tests/gpu/test_train_ops attention_mma_*.
 * COMPILED, NEVER RUN here (no GPU). */
#include "train_impl.h"
#include <math.h>
#include <mma.h>
#include <string.h>

using namespace nvcuda;

enum { FQ = 64, FK = 64, FW = 4 };
#define FULLM 0xffffffffu

__device__ static int seq_of_m(const int *start, int n_seq, int t) {
    int lo = 0, hi = n_seq - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (start[mid] <= t) lo = mid; else hi = mid - 1;
    }
    return lo;
}

template <int HD>
static size_t smem_bytes(void) {
    return sizeof(__nv_bfloat16) * ((size_t)FQ * HD + 2 * (size_t)FK * HD + (size_t)FQ * FK) +
           sizeof(float) * ((size_t)FQ * FK + (size_t)FQ * HD + 2 * (size_t)FQ) + sizeof(int) * FQ;
}

template <int HD, typename TO>
__global__ void __launch_bounds__(FW * 32)
k_att_fwd_mma(TO *out, float *lse, const float *q, const float *k, const float *v, const int *start,
              int n_seq, int n, int H, int Hkv, float scale) {
    extern __shared__ __align__(128) unsigned char smem[];
    __nv_bfloat16 *sq = (__nv_bfloat16 *)smem;   /* (FQ, HD) */
    __nv_bfloat16 *sk = sq + FQ * HD;            /* (FK, HD) */
    __nv_bfloat16 *sv = sk + FK * HD;            /* (FK, HD) */
    __nv_bfloat16 *sp = sv + FK * HD;            /* (FQ, FK) probabilities */
    float *ss = (float *)(void *)(sp + FQ * FK); /* (FQ, FK) scores */
    float *so = ss + FQ * FK;                    /* (FQ, HD) output accumulator */
    float *srm = so + FQ * HD;                   /* (FQ) running max */
    float *srl = srm + FQ;                       /* (FQ) running sum */
    int *slo = (int *)(void *)(srl + FQ);        /* (FQ) first key of the row's sequence */
    int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    int h = blockIdx.y, g = h / (H / Hkv);
    int t0 = blockIdx.x * FQ;
    int last = t0 + FQ - 1 < n - 1 ? t0 + FQ - 1 : n - 1;
    int64_t qs = (int64_t)H * HD, ks = (int64_t)Hkv * HD;
    for (int e = threadIdx.x; e < FQ * HD; e += blockDim.x) {
        int r = e / HD, d = e % HD, t = t0 + r;
        sq[e] = __float2bfloat16_rn(t < n ? q[t * qs + h * HD + d] : 0.0f);
        so[e] = 0.0f;
    }
    for (int r = threadIdx.x; r < FQ; r += blockDim.x) {
        int t = t0 + r;
        srm[r] = -INFINITY;
        srl[r] = 0.0f;
        slo[r] = t < n ? start[seq_of_m(start, n_seq, t)] : 0;
    }
    int klo = start[seq_of_m(start, n_seq, t0)];
    for (int k0 = klo; k0 <= last; k0 += FK) {
        __syncthreads(); /* the last tile's K, V, P are no longer read */
        for (int e = threadIdx.x; e < FK * HD; e += blockDim.x) {
            int j = e / HD, d = e % HD, kk = k0 + j;
            sk[e] = __float2bfloat16_rn(kk < n ? k[kk * ks + g * HD + d] : 0.0f);
            sv[e] = __float2bfloat16_rn(kk < n ? v[kk * ks + g * HD + d] : 0.0f);
        }
        __syncthreads();
        /* S (the warp's 16 rows, FK) = Q · Kᵀ; Kᵀ (HD, FK) is K read column-major */
        for (int c = 0; c < FK / 16; c++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
#pragma unroll
            for (int kk = 0; kk < HD / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
                wmma::load_matrix_sync(fa, sq + (w * 16) * HD + kk * 16, HD);
                wmma::load_matrix_sync(fb, sk + (c * 16) * HD + kk * 16, HD);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(ss + (w * 16) * FK + c * 16, acc, FK, wmma::mem_row_major);
        }
        __syncwarp();
        { /* the online softmax: lanes 2i, 2i+1 take row w*16 + i, half the columns each */
            int r = w * 16 + lane / 2, half = lane % 2, t = t0 + r;
            float *srow = ss + r * FK;
            float mx = -INFINITY;
            for (int j = half * (FK / 2); j < (half + 1) * (FK / 2); j++) {
                int kj = k0 + j;
                float s = t < n && kj >= slo[r] && kj <= t ? srow[j] * scale : -INFINITY;
                srow[j] = s;
                mx = fmaxf(mx, s);
            }
            mx = fmaxf(mx, __shfl_xor_sync(FULLM, mx, 1));
            float mo = srm[r], mn = fmaxf(mo, mx);
            float alpha = mn == -INFINITY ? 1.0f : expf(mo - mn);
            float ps = 0.0f;
            for (int j = half * (FK / 2); j < (half + 1) * (FK / 2); j++) {
                float p = srow[j] == -INFINITY ? 0.0f : expf(srow[j] - mn);
                __nv_bfloat16 pb = __float2bfloat16_rn(p);
                sp[r * FK + j] = pb;
                ps += __bfloat162float(pb); /* the sum of what P·V adds */
            }
            ps += __shfl_xor_sync(FULLM, ps, 1);
            for (int d = half * (HD / 2); d < (half + 1) * (HD / 2); d++) so[r * HD + d] *= alpha;
            __syncwarp(); /* both lanes have read srm, srl */
            if (half == 0) {
                srm[r] = mn;
                srl[r] = srl[r] * alpha + ps;
            }
        }
        __syncwarp();
        /* O (the warp's rows) += P · V */
        for (int c = 0; c < HD / 16; c++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::load_matrix_sync(acc, so + (w * 16) * HD + c * 16, HD, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < FK / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
                wmma::load_matrix_sync(fa, sp + (w * 16) * FK + kk * 16, FK);
                wmma::load_matrix_sync(fb, sv + (kk * 16) * HD + c * 16, HD);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(so + (w * 16) * HD + c * 16, acc, HD, wmma::mem_row_major);
        }
        __syncwarp();
    }
    __syncthreads();
    for (int e = threadIdx.x; e < FQ * HD; e += blockDim.x) {
        int r = e / HD, d = e % HD, t = t0 + r;
        if (t < n) gr_st(out, t * qs + h * HD + d, so[e] / srl[r]);
    }
    for (int r = threadIdx.x; r < FQ; r += blockDim.x) {
        int t = t0 + r;
        if (t < n) lse[(int64_t)t * H + h] = srm[r] + logf(srl[r]);
    }
}

template <int HD>
static void launch(gr_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                   const int *start, int n_seq, int n, int H, int Hkv) {
    size_t sm = smem_bytes<HD>();
    dim3 grid((n + FQ - 1) / FQ, H);
    float scale = 1.0f / sqrtf((float)HD);
    cudaStream_t st = gr_ctrain_stream(b);
    __nv_bfloat16 *o16 = gr_ctrain_is16(b, out);
    if (o16) {
        GR_CU(cudaFuncSetAttribute((const void *)k_att_fwd_mma<HD, __nv_bfloat16>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm));
        k_att_fwd_mma<HD><<<grid, FW * 32, sm, st>>>(o16, lse, q, k, v, start, n_seq, n, H, Hkv, scale);
    } else {
        GR_CU(cudaFuncSetAttribute((const void *)k_att_fwd_mma<HD, float>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm));
        k_att_fwd_mma<HD><<<grid, FW * 32, sm, st>>>(out, lse, q, k, v, start, n_seq, n, H, Hkv, scale);
    }
    GR_CU_LAUNCH();
}

int gr_ctrain_attention_fwd_mma(gr_backend *b, float *out, float *lse, const float *q, const float *k,
                                const float *v, const int *start, int n_seq, int n, int H, int Hkv,
                                int hd) {
    const char *e = getenv("GR_CUDA_TRAIN_ATT");
    if (!e || strcmp(e, "mma") != 0 || (hd != 64 && hd != 128)) return 0;
    if (hd == 64) launch<64>(b, out, lse, q, k, v, start, n_seq, n, H, Hkv);
    else launch<128>(b, out, lse, q, k, v, start, n_seq, n, H, Hkv);
    return 1;
}
