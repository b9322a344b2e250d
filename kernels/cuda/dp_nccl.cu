/* The NCCL transport of data parallelism (lib/dp.h): gradient buckets in GPU
 * memory summed by ncclAllReduce on a stream of its own, after an event on the
 * backend's stream (the bucket's gradients are final there), so the sums overlap
 * the rest of the backward pass; wait makes the backend's stream wait for them.
 * The communicator: rank 0's ncclUniqueId broadcast by the bootstrap transport
 * (MPI; under Slurm, srun starts the MPI processes), then ncclCommInitRank.
 * Built when nccl.h is found (GR_HAVE_NCCL). COMPILED, NEVER RUN here (no GPU). */
#ifdef GR_HAVE_NCCL
#include "cuda_impl.h"
#include <nccl.h>
extern "C" {
#include "dp.h"
}

typedef struct nccl_impl {
    ncclComm_t comm;
    gr_backend *b;
    cudaStream_t stream;   /* the sums' stream */
    cudaEvent_t ready, done;
    int pending;
} nccl_impl;

static int nccl_fail(gr_err *err, const char *what, ncclResult_t r) {
    return gr_errf(err, "NCCL %s: %s", what, ncclGetErrorString(r));
}

static int nccl_isum(gr_dp_transport *t, float *x, int64_t n, gr_err *err) {
    nccl_impl *m = (nccl_impl *)t->impl;
    cudaStream_t compute = gr_cuda_impl(m->b)->stream;
    /* the sums' stream waits for the backward pass up to here */
    if (cudaEventRecord(m->ready, compute) != cudaSuccess ||
        cudaStreamWaitEvent(m->stream, m->ready, 0) != cudaSuccess)
        return gr_errf(err, "NCCL bucket: %s", cudaGetErrorString(cudaGetLastError()));
    ncclResult_t r = ncclAllReduce(x, x, (size_t)n, ncclFloat, ncclSum, m->comm, m->stream);
    if (r != ncclSuccess) return nccl_fail(err, "AllReduce", r);
    m->pending = 1;
    return 0;
}

static int nccl_wait(gr_dp_transport *t, gr_err *err) {
    nccl_impl *m = (nccl_impl *)t->impl;
    if (!m->pending) return 0;
    cudaStream_t compute = gr_cuda_impl(m->b)->stream;
    /* the optimizer step (on the backend's stream) runs after every sum */
    if (cudaEventRecord(m->done, m->stream) != cudaSuccess ||
        cudaStreamWaitEvent(compute, m->done, 0) != cudaSuccess)
        return gr_errf(err, "NCCL wait: %s", cudaGetErrorString(cudaGetLastError()));
    m->pending = 0;
    return 0;
}

static void nccl_close(gr_dp_transport *t) {
    nccl_impl *m = (nccl_impl *)t->impl;
    cudaStreamSynchronize(m->stream);
    ncclCommDestroy(m->comm);
    cudaEventDestroy(m->ready);
    cudaEventDestroy(m->done);
    cudaStreamDestroy(m->stream);
    free(m);
    free(t);
}

/* reached through lib/dp.c's gr_dp_nccl_open, by name (lib/cuda_dl.h) */
extern "C" gr_dp_transport *gr_dp_nccl_open_cuda(gr_dp_transport *boot, gr_backend *b, gr_err *err);
extern "C" gr_dp_transport *gr_dp_nccl_open_cuda(gr_dp_transport *boot, gr_backend *b, gr_err *err) {
    if (b->host_memory) {
        gr_errf(err, "NCCL data parallelism needs a CUDA backend (--device cuda)");
        return NULL;
    }
    ncclUniqueId id;
    ncclResult_t r;
    if (boot->rank == 0 && (r = ncclGetUniqueId(&id)) != ncclSuccess) {
        nccl_fail(err, "GetUniqueId", r);
        return NULL;
    }
    if (boot->bcast(boot, &id, sizeof id, 0, err)) return NULL;
    nccl_impl *m = (nccl_impl *)calloc(1, sizeof *m);
    m->b = b;
    GR_CU(cudaSetDevice(gr_cuda_impl(b)->device));
    if ((r = ncclCommInitRank(&m->comm, boot->world, id, boot->rank)) != ncclSuccess) {
        nccl_fail(err, "CommInitRank", r);
        free(m);
        return NULL;
    }
    GR_CU(cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking));
    GR_CU(cudaEventCreateWithFlags(&m->ready, cudaEventDisableTiming));
    GR_CU(cudaEventCreateWithFlags(&m->done, cudaEventDisableTiming));
    gr_dp_transport *t = (gr_dp_transport *)calloc(1, sizeof *t);
    if (!t) abort();
    t->name = "nccl";
    t->rank = boot->rank;
    t->world = boot->world;
    t->device_memory = 1;
    t->isum_f32 = nccl_isum;
    t->wait = nccl_wait;
    t->close = nccl_close;
    t->impl = m;
    return t;
}
#else
/* no nccl.h: lib/dp.c reports that this build has no NCCL */
typedef int gr_dp_nccl_absent;
#endif
