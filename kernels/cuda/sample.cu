/* Next-token selection on the GPU, one block per sequence, as lib/sample.c
 * defines it (vLLM's order): temperature < 1e-5 greedy (the first index of the
 * largest logit); else z = logits / T, top-k keeps the k largest z, top-p the
 * smallest top set whose softmax mass (over the top-k survivors) reaches p, the
 * argmax always kept, then a draw from the renormalised kept mass. The kept sets
 * are found as thresholds on an order-preserving integer key of z, by bisection
 * over its 32 bits (counts for top-k, masses for top-p), so nothing is sorted;
 * ties at a threshold are all kept (the CPU keeps the lower ids first). The draw
 * is uniform(seed, stream, step) -- a counter-based hash, so a sequence's tokens
 * depend on neither the batch nor the order of rows -- mapped onto the kept
 * tokens in id order. Alongside: log softmax of the raw logits at the token
 * (the logprobs) and the raw logits of the watched ids (the answer words whose
 * probabilities become the verdict's scores). */
#include "cuda_impl.h"
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <math.h>

enum { ST = 1024 }; /* threads per row */

struct argmax_t {
    float v;
    int i;
};
struct argmax_op {
    __device__ argmax_t operator()(const argmax_t &a, const argmax_t &b) const {
        if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
        return a;
    }
};

struct max_op {
    __device__ int operator()(int a, int b) const { return a > b ? a : b; }
};

__device__ __forceinline__ uint32_t fkey(float f) {
    uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

__device__ double uniform(uint64_t seed, uint64_t stream, uint64_t step) {
    uint64_t x = seed ^ 0x5851f42d4c957f2dull;
    uint64_t k = splitmix(&x) ^ (stream * 0xd1342543de82ef95ull + 0x2545f4914f6cdd1dull);
    k ^= (step + 1) * 0xda942042e4dd58b5ull;
    splitmix(&k);
    return (double)(splitmix(&k) >> 11) * 0x1.0p-53;
}

__global__ void __launch_bounds__(ST) sample_kernel(const float *logits, int V, const gr_sample_row *rows,
                                                    const int *watch, int n_watch, float *ebuf, int *tok_out,
                                                    float *lp_out, float *watch_out) {
    typedef cub::BlockReduce<argmax_t, ST> RA;
    typedef cub::BlockReduce<double, ST> RD;
    typedef cub::BlockReduce<float, ST> RF;
    typedef cub::BlockReduce<int, ST> RI;
    typedef cub::BlockScan<float, ST> SF;
    __shared__ union {
        typename RA::TempStorage a;
        typename RD::TempStorage d;
        typename RF::TempStorage f;
        typename RI::TempStorage i;
        typename SF::TempStorage s;
    } tmp;
    __shared__ float s_f;
    __shared__ double s_d;
    __shared__ int s_i;
    __shared__ uint32_t s_u;
    const int r = blockIdx.x, tid = threadIdx.x;
    const float *x = logits + (size_t)r * V;
    const gr_sample_row R = rows[r];
    /* the raw argmax (NaN never wins) and log-sum-exp */
    argmax_t best = {-INFINITY, V};
    for (int i = tid; i < V; i += ST)
        if (x[i] > best.v || (x[i] == best.v && i < best.i)) best = argmax_t{x[i], i};
    argmax_t b = RA(tmp.a).Reduce(best, argmax_op());
    if (tid == 0) {
        s_i = b.i < V ? b.i : 0;
        s_f = b.i < V ? b.v : x[0];
    }
    __syncthreads();
    const int am = s_i;
    const float mx = s_f;
    double se = 0.0;
    for (int i = tid; i < V; i += ST) se += exp((double)x[i] - mx);
    __syncthreads();
    double sum = RD(tmp.d).Sum(se);
    if (tid == 0) s_d = sum;
    __syncthreads();
    sum = s_d;
    int tok = am;
    if (R.temperature >= 1e-5f) {
        const float invT = 1.0f / R.temperature, mz = x[am] * invT;
        float *e = ebuf + (size_t)r * V;
        for (int i = tid; i < V; i += ST) e[i] = expf(x[i] * invT - mz);
        __syncthreads();
        /* top-k: the k-th largest key */
        uint32_t kk = 0;
        if (R.top_k > 0 && R.top_k < V) {
            uint32_t prefix = 0;
            for (int bit = 31; bit >= 0; bit--) {
                uint32_t cand = prefix | (1u << bit);
                int cnt = 0;
                for (int i = tid; i < V; i += ST) cnt += fkey(x[i] * invT) >= cand;
                __syncthreads();
                int tot = RI(tmp.i).Sum(cnt);
                if (tid == 0) s_u = tot >= R.top_k ? cand : prefix;
                __syncthreads();
                prefix = s_u;
            }
            kk = prefix;
        }
        /* the mass at or above a key, among the top-k survivors */
#define MASS_AT(K, OUT)                                                                    \
    do {                                                                                   \
        float part_ = 0.0f;                                                                \
        for (int i = tid; i < V; i += ST)                                                  \
            if (fkey(x[i] * invT) >= (K)) part_ += e[i];                                   \
        __syncthreads();                                                                   \
        float t_ = RF(tmp.f).Sum(part_);                                                   \
        if (tid == 0) s_f = t_;                                                            \
        __syncthreads();                                                                   \
        OUT = s_f;                                                                         \
    } while (0)
        float total;
        MASS_AT(kk, total);
        uint32_t kp = kk;
        if (R.top_p < 1.0f) {
            const float want = R.top_p * total;
            uint32_t prefix = 0;
            for (int bit = 31; bit >= 0; bit--) {
                uint32_t cand = prefix | (1u << bit), k2 = cand > kk ? cand : kk;
                float s;
                MASS_AT(k2, s);
                if (s >= want) prefix = cand;
            }
            kp = prefix > kk ? prefix : kk;
            uint32_t kmax = fkey(mz);
            if (kp > kmax) kp = kmax; /* the argmax is always kept */
        }
        float mass;
        MASS_AT(kp, mass);
#undef MASS_AT
        const float target = (float)(uniform(R.seed, R.stream, R.step) * (double)mass);
        /* the first kept id, in id order, where the running mass passes target */
        const int per = (V + ST - 1) / ST, i0 = tid * per, i1 = i0 + per < V ? i0 + per : V;
        float mine = 0.0f;
        int last = -1;
        for (int i = i0; i < i1; i++)
            if (fkey(x[i] * invT) >= kp) {
                mine += e[i];
                last = i;
            }
        float before;
        __syncthreads();
        SF(tmp.s).ExclusiveSum(mine, before);
        if (tid == 0) s_i = -1;
        __syncthreads();
        if (last >= 0 && target >= before && target < before + mine) {
            float acc = before;
            for (int i = i0; i < i1; i++)
                if (fkey(x[i] * invT) >= kp) {
                    acc += e[i];
                    if (target < acc) {
                        atomicMax(&s_i, i); /* one thread only, barring a rounding tie */
                        break;
                    }
                }
        }
        __syncthreads();
        int chosen = s_i;
        if (chosen < 0) { /* target at the very end (rounding): the last kept id */
            __syncthreads();
            int lm = RI(tmp.i).Reduce(last, max_op());
            if (tid == 0) s_i = lm >= 0 ? lm : am;
            __syncthreads();
            chosen = s_i;
        }
        tok = chosen;
    }
    if (tid == 0) {
        tok_out[r] = tok;
        if (lp_out) lp_out[r] = (float)((double)x[tok] - mx - log(sum));
    }
    for (int w = tid; w < n_watch; w += ST) watch_out[(size_t)r * n_watch + w] = x[watch[w]];
}

int gr_cuda_sample(gr_backend *b, const float *logits, int n, int vocab, const gr_sample_row *rows, const int *watch,
                   int n_watch, int *tokens, float *logprob, float *watch_out) {
    if (n <= 0) return 0;
    cuda_impl *ci = gr_cuda_impl(b);
    int any_temp = 0;
    for (int i = 0; i < n; i++) any_temp |= rows[i].temperature >= 1e-5f;
    size_t need_e = any_temp ? (size_t)n * (size_t)vocab : 1;
    if (need_e > ci->sample_cap) {
        GR_CU(cudaStreamSynchronize(ci->stream));
        GR_CU(cudaFree(ci->sample_buf));
        GR_CU(cudaMalloc((void **)&ci->sample_buf, need_e * sizeof(float)));
        ci->sample_cap = need_e;
    }
    /* one staging area: rows | watch ids | tokens | logprobs | watched logits */
    size_t o_rows = 0, o_watch = o_rows + sizeof(gr_sample_row) * (size_t)n;
    size_t o_tok = (o_watch + sizeof(int) * (size_t)n_watch + 15) & ~(size_t)15;
    size_t o_lp = o_tok + sizeof(int) * (size_t)n, o_wo = o_lp + sizeof(float) * (size_t)n;
    size_t bytes = o_wo + sizeof(float) * (size_t)n * (size_t)n_watch;
    if (bytes > ci->sample_io_cap) {
        GR_CU(cudaStreamSynchronize(ci->stream));
        GR_CU(cudaFree(ci->sample_io));
        GR_CU(cudaFreeHost(ci->sample_host));
        GR_CU(cudaMalloc(&ci->sample_io, bytes));
        GR_CU(cudaMallocHost(&ci->sample_host, bytes));
        ci->sample_io_cap = bytes;
    }
    char *h = (char *)ci->sample_host, *d = (char *)ci->sample_io;
    memcpy(h + o_rows, rows, sizeof(gr_sample_row) * (size_t)n);
    if (n_watch) memcpy(h + o_watch, watch, sizeof(int) * (size_t)n_watch);
    GR_CU(cudaMemcpyAsync(d, h, o_tok, cudaMemcpyHostToDevice, ci->stream));
    sample_kernel<<<n, ST, 0, ci->stream>>>(logits, vocab, (const gr_sample_row *)(d + o_rows),
                                            (const int *)(d + o_watch), n_watch, ci->sample_buf, (int *)(d + o_tok),
                                            (float *)(d + o_lp), (float *)(d + o_wo));
    GR_CU_LAUNCH();
    GR_CU(cudaMemcpyAsync(h + o_tok, d + o_tok, bytes - o_tok, cudaMemcpyDeviceToHost, ci->stream));
    GR_CU(cudaStreamSynchronize(ci->stream));
    memcpy(tokens, h + o_tok, sizeof(int) * (size_t)n);
    if (logprob) memcpy(logprob, h + o_lp, sizeof(float) * (size_t)n);
    if (n_watch && watch_out) memcpy(watch_out, h + o_wo, sizeof(float) * (size_t)n * (size_t)n_watch);
    return 0;
}

void gr_cuda_sample_free(gr_backend *b) {
    cuda_impl *ci = gr_cuda_impl(b);
    cudaFree(ci->sample_buf);
    cudaFree(ci->sample_io);
    cudaFreeHost(ci->sample_host);
    ci->sample_buf = NULL;
    ci->sample_io = NULL;
    ci->sample_host = NULL;
}
