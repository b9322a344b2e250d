/* Matrix products y (n, rows) f32 = x (n, cols) f32 · Wᵀ with W bf16 [rows][cols]:
 * x is rounded to bf16 (one pass), then cuBLASLt multiplies bf16 by bf16 with
 * fp32 accumulation and an f32 output. In cuBLAS's column-major terms
 * yᵀ (rows x n) = op_T(W as cols x rows) · xᵀ (cols x n). cuBLASLt's algorithm
 * for each (rows, n, cols) is chosen once by its heuristic and kept; when it
 * offers none, cublasGemmEx does the product (same types) from then on.
 * Exact mode (gr_backend.exact): f32 weights and activations, cublasSgemm. */
#include "cuda_impl.h"
#include <map>
#include <tuple>

struct mm_plan {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, bl, c;
    cublasLtMatmulAlgo_t algo;
    bool ok;
};
struct gr_matmul_cache {
    std::map<std::tuple<int64_t, int64_t, int64_t>, mm_plan> plans;
};

static mm_plan *plan_for(cuda_impl *ci, int64_t m, int64_t n, int64_t k) {
    if (!ci->mm) ci->mm = new gr_matmul_cache();
    auto key = std::make_tuple(m, n, k);
    auto it = ci->mm->plans.find(key);
    if (it != ci->mm->plans.end()) return &it->second;
    mm_plan p = {};
    GR_CUBLAS(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    GR_CUBLAS(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    GR_CUBLAS(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    GR_CUBLAS(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, (uint64_t)k, (uint64_t)m, k));
    GR_CUBLAS(cublasLtMatrixLayoutCreate(&p.bl, CUDA_R_16BF, (uint64_t)k, (uint64_t)n, k));
    GR_CUBLAS(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, (uint64_t)m, (uint64_t)n, m));
    cublasLtMatmulPreference_t pref;
    GR_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
    GR_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                   &ci->workspace_bytes, sizeof ci->workspace_bytes));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(ci->lt, p.op, p.a, p.bl, p.c, p.c, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    p.ok = st == CUBLAS_STATUS_SUCCESS && found > 0;
    if (p.ok) p.algo = res.algo;
    return &(ci->mm->plans[key] = p);
}

void gr_cuda_matmul(gr_backend *b, float *y, const float *x, int n, const gr_tensor *w) {
    if (n <= 0) return;
    cuda_impl *ci = gr_cuda_impl(b);
    const void *W = gr_cuda_weight(b, w);
    int64_t m = w->rows, k = w->cols;
    const float one = 1.0f, zero = 0.0f;
    if (ci->f32) { /* exact mode: f32 throughout (cuBLAS's default math: no TF32) */
        GR_CUBLAS(cublasSgemm(ci->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, n, (int)k, &one, (const float *)W,
                              (int)k, x, (int)k, &zero, y, (int)m));
        return;
    }
    size_t need = (size_t)n * (size_t)k;
    if (need > ci->xbf_cap) {
        GR_CU(cudaStreamSynchronize(ci->stream));
        GR_CU(cudaFree(ci->xbf));
        GR_CU(cudaMalloc((void **)&ci->xbf, need * sizeof(__nv_bfloat16)));
        ci->xbf_cap = need;
    }
    gr_cuda_f32_to_bf16(b, ci->xbf, x, (int64_t)need);
    mm_plan *p = plan_for(ci, m, n, k);
    if (p->ok && ci->use_lt) {
        GR_CUBLAS(cublasLtMatmul(ci->lt, p->op, &one, W, p->a, ci->xbf, p->bl, &zero, y, p->c, y, p->c, &p->algo,
                                 ci->workspace, ci->workspace_bytes, ci->stream));
        return;
    }
    GR_CUBLAS(cublasGemmEx(ci->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, n, (int)k, &one, W, CUDA_R_16BF, (int)k,
                           ci->xbf, CUDA_R_16BF, (int)k, &zero, y, CUDA_R_32F, (int)m, CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT));
}

void gr_cuda_matmul_free(gr_backend *b) {
    cuda_impl *ci = gr_cuda_impl(b);
    if (!ci->mm) return;
    for (auto &e : ci->mm->plans) {
        cublasLtMatrixLayoutDestroy(e.second.a);
        cublasLtMatrixLayoutDestroy(e.second.bl);
        cublasLtMatrixLayoutDestroy(e.second.c);
        cublasLtMatmulDescDestroy(e.second.op);
    }
    delete ci->mm;
    ci->mm = NULL;
}
