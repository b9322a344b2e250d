/* The CPU backend's side of the device interface (backend.h): its memory space
 * is host memory, so buffers are aligned malloc blocks, upload/download/copy are
 * memcpy, there is no stream to wait for, and the weights need no preparing.
 * The KV pool is F32; kv_store copies rows, the same bytes forward.c used to
 * write into its caches. */
#include "cpu_backend.h"
#include "gr_common.h"
#include <stdlib.h>
#include <string.h>

static void *cpu_dev_alloc(gr_backend *b, size_t bytes) {
    (void)b;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64)) return NULL;
    return p;
}

static void cpu_dev_free(gr_backend *b, void *p) {
    (void)b;
    free(p);
}

static void cpu_memcpy(gr_backend *b, void *dst, const void *src, size_t bytes) {
    (void)b;
    if (bytes) memcpy(dst, src, bytes);
}

static void cpu_sync(gr_backend *b) { (void)b; }

static void cpu_kv_store(gr_backend *b, const gr_kv_layout *L, int layer, const float *k,
                         const float *v, const int *slot, int n) {
    (void)b;
    size_t kvd = (size_t)L->kv_dim, bs = (size_t)L->block_size;
    float *base = L->base;
    for (int t = 0; t < n; t++) {
        size_t blk = (size_t)slot[t] / bs, i = (size_t)slot[t] % bs;
        float *kd = base + ((blk * (size_t)L->n_layers + (size_t)layer) * 2 * bs + i) * kvd;
        memcpy(kd, k + (size_t)t * kvd, sizeof(float) * kvd);
        memcpy(kd + bs * kvd, v + (size_t)t * kvd, sizeof(float) * kvd);
    }
}

void gr_cpu_device_init(gr_backend *b) {
    b->host_memory = 1;
    b->kv_dtype = GR_F32;
    b->stream = NULL;
    b->dev_alloc = cpu_dev_alloc;
    b->dev_free = cpu_dev_free;
    b->upload = cpu_memcpy;
    b->download = cpu_memcpy;
    b->copy = cpu_memcpy;
    b->sync = cpu_sync;
    b->prepare = NULL;
    b->kv_store = cpu_kv_store;
    b->sample = NULL; /* generate.c samples on the host with gr_sample */
}
