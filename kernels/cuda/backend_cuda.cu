/* The CUDA backend's gr_backend table (see kernels/cuda/README): device memory,
 * the stream, cuBLAS(Lt) handles, and the ops of the other .cu files. */
#include "cuda_impl.h"
#include <string.h>

void gr_cuda_check(cudaError_t e, const char *what, const char *file, int line) {
    if (e == cudaSuccess) return;
    fprintf(stderr, "CUDA error %s (%s) in %s at %s:%d\n", cudaGetErrorName(e), cudaGetErrorString(e),
            what, file, line);
    abort();
}

void gr_cublas_check(cublasStatus_t s, const char *what, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    fprintf(stderr, "cuBLAS error %d in %s at %s:%d\n", (int)s, what, file, line);
    abort();
}

static void *cu_alloc(gr_backend *b, size_t bytes) {
    (void)b;
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 256) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear it: the caller reports the failure */
        return NULL;
    }
    return p;
}

static void cu_free_buf(gr_backend *b, void *p) {
    if (!p) return;
    /* a buffer may still be in use by queued work */
    GR_CU(cudaStreamSynchronize(gr_cuda_impl(b)->stream));
    GR_CU(cudaFree(p));
}

static void cu_upload(gr_backend *b, void *dst, const void *src, size_t bytes) {
    if (bytes) GR_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, gr_cuda_impl(b)->stream));
}

static void cu_download(gr_backend *b, void *dst, const void *src, size_t bytes) {
    cudaStream_t s = gr_cuda_impl(b)->stream;
    if (bytes) GR_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
    GR_CU(cudaStreamSynchronize(s));
}

static void cu_copy(gr_backend *b, void *dst, const void *src, size_t bytes) {
    if (bytes) GR_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, gr_cuda_impl(b)->stream));
}

static void cu_sync(gr_backend *b) { GR_CU(cudaStreamSynchronize(gr_cuda_impl(b)->stream)); }

static void cu_free(gr_backend *b) {
    cuda_impl *ci = gr_cuda_impl(b);
    cudaStreamSynchronize(ci->stream);
    gr_cuda_graphs_free(b);
    gr_cuda_prefill_free(b);
    gr_cuda_weights_free(b);
    gr_cuda_matmul_free(b);
    gr_cuda_sample_free(b);
    cudaFree(ci->workspace);
    cudaFree(ci->xbf);
    if (ci->lt) cublasLtDestroy(ci->lt);
    if (ci->cublas) cublasDestroy(ci->cublas);
    cudaStreamDestroy(ci->stream);
    free(ci);
    free(b);
}

extern "C" gr_backend *gr_backend_cuda(int device, gr_err *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        gr_errf(err, "--device cuda:%d: no usable CUDA device (%s)", device,
                e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        (void)cudaGetLastError();
        return NULL;
    }
    if (device >= n) {
        gr_errf(err, "--device cuda:%d: this machine has %d CUDA device%s", device, n, n == 1 ? "" : "s");
        return NULL;
    }
    cuda_impl *ci = (cuda_impl *)calloc(1, sizeof *ci);
    if (!ci) abort();
    ci->device = device;
    if ((e = cudaSetDevice(device)) != cudaSuccess || (e = cudaGetDeviceProperties(&ci->prop, device)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&ci->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        gr_errf(err, "--device cuda:%d: %s", device, cudaGetErrorString(e));
        free(ci);
        return NULL;
    }
    if (ci->prop.major < 8) {
        gr_errf(err, "--device cuda:%d: %s has compute capability %d.%d; bf16 kernels need 8.0 or later",
                device, ci->prop.name, ci->prop.major, ci->prop.minor);
        cudaStreamDestroy(ci->stream);
        free(ci);
        return NULL;
    }
    if (cublasLtCreate(&ci->lt) != CUBLAS_STATUS_SUCCESS || cublasCreate(&ci->cublas) != CUBLAS_STATUS_SUCCESS) {
        gr_errf(err, "--device cuda:%d: cuBLAS could not start", device);
        if (ci->lt) cublasLtDestroy(ci->lt);
        cudaStreamDestroy(ci->stream);
        free(ci);
        return NULL;
    }
    GR_CUBLAS(cublasSetStream(ci->cublas, ci->stream));
    GR_CUBLAS(cublasSetMathMode(ci->cublas, CUBLAS_PEDANTIC_MATH)); /* SGEMM stays f32: no TF32 */
    /* GR_CUDA_CUBLAS=1: cublasGemmEx instead of cuBLASLt (to test the fallback) */
    const char *fb = getenv("GR_CUDA_CUBLAS");
    ci->use_lt = !(fb && *fb && strcmp(fb, "0") != 0);
    ci->workspace_bytes = 32u << 20;
    GR_CU(cudaMalloc(&ci->workspace, ci->workspace_bytes));
    gr_backend *b = (gr_backend *)calloc(1, sizeof *b);
    if (!b) abort();
    b->name = "cuda";
    b->n_threads = 1;
    b->impl = ci;
    b->embedding = gr_cuda_embedding;
    b->rmsnorm = gr_cuda_rmsnorm;
    b->matmul = gr_cuda_matmul;
    b->rope = gr_cuda_rope;
    b->attention = gr_cuda_attention;
    b->swiglu = gr_cuda_swiglu;
    b->add = gr_cuda_add;
    b->free = cu_free;
    b->host_memory = 0;
    b->kv_dtype = GR_BF16;
    b->stream = ci->stream;
    b->dev_alloc = cu_alloc;
    b->dev_free = cu_free_buf;
    b->upload = cu_upload;
    b->download = cu_download;
    b->copy = cu_copy;
    b->sync = cu_sync;
    b->prepare = gr_cuda_prepare;
    b->kv_store = gr_cuda_kv_store;
    b->sample = gr_cuda_sample;
    /* GR_CUDA_GRAPHS=0: every decode step launched op by op (to compare) */
    const char *gr = getenv("GR_CUDA_GRAPHS");
    b->use_graphs = !(gr && strcmp(gr, "0") == 0);
    b->graph_begin = gr_cuda_graph_begin;
    b->graph_end = gr_cuda_graph_end;
    return b;
}
