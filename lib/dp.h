/* Data parallelism shared by gr-sft and gr-dpo (issue 17): one process per
 * device, each computes the gradients of its share of a step's sequences, and
 * the gradient block is summed over the processes before the optimizer step, so
 * every process takes the same step. Identical to one process up to the order
 * in which the processes' partial sums are added.
 *
 * The sum runs in buckets of a fixed size laid from the top of the block down
 * (the backward pass finishes the parameters in that order: lm_head, the final
 * norm, the last layer, ..., the embeddings). The trainer tells gr_dp_ready how
 * far down the gradients of the step's last micro-batch are final, and each
 * bucket wholly above that mark starts summing at once (non-blocking), while the
 * backward pass goes on; gr_dp_finish starts the rest and waits. The bucket
 * boundaries depend only on the block size and the bucket size, never on when
 * gr_dp_ready is called, and every process starts the buckets in the same order.
 *
 * Transports (no home-made one):
 *   - MPI (lib/dp_mpi.c, compiled with mpicc -DGR_MPI into the MPI binaries;
 *     libgr.a has no MPI): host buffers, MPI_Iallreduce per bucket.
 *   - NCCL (kernels/cuda/dp_nccl.cu, in libgr.a when nvcc and nccl.h are found):
 *     buffers in GPU memory, ncclAllReduce per bucket on a stream of its own;
 *     the communicator comes from ncclCommInitRank with the unique id broadcast
 *     by the MPI transport (the rendezvous, also under Slurm's srun).
 * The small sums (loss terms, in double) and broadcasts always go through the
 * bootstrap transport (MPI), on the host. */
#ifndef GR_DP_H
#define GR_DP_H
#include <stddef.h>
#include <stdint.h>
#include "gr_common.h"

struct gr_backend;

typedef struct gr_dp_transport gr_dp_transport;
struct gr_dp_transport {
    const char *name;      /* "mpi", "nccl" */
    int rank, world;
    int device_memory;     /* 1: isum_f32 takes buffers in the GPU's memory */
    /* Starts summing x[0..n) over the processes, in place. */
    int (*isum_f32)(gr_dp_transport *t, float *x, int64_t n, gr_err *err);
    /* Waits for every sum started (x holds the sums after). */
    int (*wait)(gr_dp_transport *t, gr_err *err);
    /* Lets started sums progress (may be NULL). */
    void (*poll)(gr_dp_transport *t);
    /* Host only, blocking (NULL on NCCL: the bootstrap transport does these). */
    int (*sum_f64)(gr_dp_transport *t, double *x, int64_t n, gr_err *err);
    int (*bcast)(gr_dp_transport *t, void *buf, size_t bytes, int root, gr_err *err);
    void (*close)(gr_dp_transport *t);
    void *impl;
};

/* MPI (only in binaries built with -DGR_MPI and lib/dp_mpi.c): MPI_Init on
 * open (MPI_THREAD_FUNNELED), MPI_Finalize on close. */
gr_dp_transport *gr_dp_mpi_open(int *argc, char ***argv, gr_err *err);

/* NCCL over the GPU of backend b (a CUDA backend), bootstrapped by boot (its
 * rank and world; rank 0's ncclUniqueId is broadcast through it). NULL with err
 * when this build has no NCCL. */
gr_dp_transport *gr_dp_nccl_open(gr_dp_transport *boot, struct gr_backend *b, gr_err *err);
/* 1 when libgr.a was built with the NCCL transport. */
int gr_dp_nccl_built(void);

typedef struct gr_dp {
    gr_dp_transport *grad;   /* sums the gradient block (MPI or NCCL) */
    gr_dp_transport *host;   /* small host sums and broadcasts (MPI) */
    int rank, world;
    int64_t bucket;          /* floats per bucket */
    float *x;                /* the block of the step being summed */
    int64_t n;
    int64_t next;            /* buckets started so far */
    int64_t n_buckets;
    int active;
    int failed;              /* a start in gr_dp_ready failed: err, reported by finish */
    gr_err err;
} gr_dp;

/* bucket_bytes <= 0: 25 MiB (PyTorch DDP's default). grad may equal host. */
void gr_dp_init(gr_dp *d, gr_dp_transport *grad, gr_dp_transport *host, int64_t bucket_bytes);
/* Floats in bucket i of a block of n (bucket 0 is the top one): [*lo, *hi). */
void gr_dp_bucket(const gr_dp *d, int64_t n, int64_t i, int64_t *lo, int64_t *hi);
/* A step's sum of x[0..n) begins; nothing is started yet. */
void gr_dp_begin(gr_dp *d, float *x, int64_t n);
/* x[lo, n) is final on this process: starts every bucket that lies in it (an
 * error is kept for gr_dp_finish). gr_dp_hook is the same for a void * (the
 * training model's grad_ready callback, train_model.h). */
void gr_dp_ready(gr_dp *d, int64_t lo);
void gr_dp_hook(void *d, int64_t lo);
/* Starts the remaining buckets and waits: x holds the sum over the processes. */
int gr_dp_finish(gr_dp *d, gr_err *err);
/* Sums x[0..n) (host doubles) over the processes, blocking. */
int gr_dp_sum_f64(gr_dp *d, double *x, int64_t n, gr_err *err);
#endif
