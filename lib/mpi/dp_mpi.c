/* The MPI transport of data parallelism (dp.h): host buffers, one
 * MPI_Iallreduce (MPI_SUM, in place) per bucket, in pieces that fit MPI's int
 * counts. Not part of libgr.a (which has no MPI): the MPI binaries compile this
 * file with mpicc -DGR_MPI beside cmd/gr-sft.c or cmd/gr-dpo.c (Makefile: make mpi). */
#include "dp.h"
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

typedef struct mpi_impl {
    MPI_Request *req;
    int n, cap;
} mpi_impl;

static int mpi_fail(gr_err *err, const char *what, int rc) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) len = 0;
    s[len] = 0;
    return gr_errf(err, "MPI %s: %s", what, len ? s : "failed");
}

static int mpi_isum_f32(gr_dp_transport *t, float *x, int64_t n, gr_err *err) {
    mpi_impl *m = t->impl;
    for (int64_t i = 0; i < n; i += INT_MAX / 2) {
        int k = n - i < INT_MAX / 2 ? (int)(n - i) : INT_MAX / 2;
        if (m->n == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 16;
            m->req = gr_xrealloc(m->req, sizeof(MPI_Request) * (size_t)m->cap);
        }
        int rc = MPI_Iallreduce(MPI_IN_PLACE, x + i, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                                &m->req[m->n]);
        if (rc != MPI_SUCCESS) return mpi_fail(err, "Iallreduce", rc);
        m->n++;
    }
    return 0;
}

static int mpi_wait(gr_dp_transport *t, gr_err *err) {
    mpi_impl *m = t->impl;
    int rc = m->n ? MPI_Waitall(m->n, m->req, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    m->n = 0;
    return rc == MPI_SUCCESS ? 0 : mpi_fail(err, "Waitall", rc);
}

static void mpi_poll(gr_dp_transport *t) {
    mpi_impl *m = t->impl;
    int done;
    if (m->n) MPI_Testall(m->n, m->req, &done, MPI_STATUSES_IGNORE);
}

static int mpi_sum_f64(gr_dp_transport *t, double *x, int64_t n, gr_err *err) {
    (void)t;
    for (int64_t i = 0; i < n; i += INT_MAX / 2) {
        int k = n - i < INT_MAX / 2 ? (int)(n - i) : INT_MAX / 2;
        int rc = MPI_Allreduce(MPI_IN_PLACE, x + i, k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(err, "Allreduce", rc);
    }
    return 0;
}

static int mpi_bcast(gr_dp_transport *t, void *buf, size_t bytes, int root, gr_err *err) {
    (void)t;
    if (bytes > INT_MAX) return gr_errf(err, "MPI Bcast: %zu bytes is too many", bytes);
    int rc = MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(err, "Bcast", rc);
}

static void mpi_close(gr_dp_transport *t) {
    mpi_impl *m = t->impl;
    free(m->req);
    free(m);
    free(t);
    MPI_Finalize();
}

gr_dp_transport *gr_dp_mpi_open(int *argc, char ***argv, gr_err *err) {
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        gr_errf(err, "MPI_Init_thread failed");
        return NULL;
    }
    /* errors come back as codes, reported with the step that failed */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    gr_dp_transport *t = gr_xcalloc(1, sizeof *t);
    t->name = "mpi";
    MPI_Comm_rank(MPI_COMM_WORLD, &t->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &t->world);
    t->isum_f32 = mpi_isum_f32;
    t->wait = mpi_wait;
    t->poll = mpi_poll;
    t->sum_f64 = mpi_sum_f64;
    t->bcast = mpi_bcast;
    t->close = mpi_close;
    t->impl = gr_xcalloc(1, sizeof(mpi_impl));
    return t;
}
