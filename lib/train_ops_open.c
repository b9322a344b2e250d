/* The training-op table of a backend (backend_train.h). Like backend_open.c,
 * this file learns from GR_HAVE_CUDA (set by the Makefile when nvcc is found)
 * whether the CUDA table exists (in libgr-cuda.so, lib/cuda_dl.h), and sees no
 * CUDA header. */
#include "backend_train.h"
#include "cuda_dl.h"
#include <string.h>

const gr_train_ops *gr_train_ops_for(gr_backend *b, gr_err *err) {
    if (b->host_memory) return gr_train_ops_cpu();
#ifdef GR_HAVE_CUDA
    const gr_train_ops *(*table)(void);
    *(void **)&table = gr_cuda_symbol("gr_train_ops_cuda", err);
    return table ? table() : NULL;
#else
    gr_errf(err, "train: backend %s has no training ops in this build", b->name);
    return NULL;
#endif
}

void gr_tops_put(const gr_train_ops *o, gr_backend *b, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    if (o->upload) o->upload(b, dst, src, bytes);
    else memcpy(dst, src, bytes);
}

void gr_tops_get(const gr_train_ops *o, gr_backend *b, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    if (o->download) o->download(b, dst, src, bytes);
    else memcpy(dst, src, bytes);
}
