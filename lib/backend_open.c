/* Opening a backend by its --device name, and the typed buffers of backend.h.
 * The CUDA backend is linked in only when the build defines GR_HAVE_CUDA (the
 * Makefile does when nvcc is found); this file still sees no CUDA header. */
#include "backend.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *gr_backends_built(void) {
#ifdef GR_HAVE_CUDA
    return "cpu, cuda";
#else
    return "cpu";
#endif
}

/* 0 for the CPU, 1 for CUDA with *gpu its number; -1 with err otherwise. */
static int parse_device(const char *device, int *gpu, gr_err *err) {
    *gpu = 0;
    if (!device || strcmp(device, "cpu") == 0) return 0;
    if (strncmp(device, "cuda", 4) == 0 && (device[4] == 0 || device[4] == ':')) {
        if (device[4] == ':') {
            char *end;
            errno = 0;
            long n = strtol(device + 5, &end, 10);
            if (end == device + 5 || *end || errno || n < 0 || n > 1023)
                return gr_errf(err, "--device %s: expected cuda or cuda:N with N a GPU number", device);
            *gpu = (int)n;
        }
#ifdef GR_HAVE_CUDA
        return 1;
#else
        return gr_errf(err, "--device %s: this build has no CUDA backend (backends: %s; rebuild with "
                       "nvcc on PATH)", device, gr_backends_built());
#endif
    }
    return gr_errf(err, "--device %s: unknown device (cpu, cuda, cuda:N)", device);
}

int gr_device_check(const char *device, gr_err *err) {
    int gpu;
    return parse_device(device, &gpu, err) < 0 ? -1 : 0;
}

gr_backend *gr_backend_open(const char *device, int n_threads, gr_err *err) {
    int gpu, kind = parse_device(device, &gpu, err);
    if (kind < 0) return NULL;
    if (kind == 0) return gr_backend_cpu(n_threads);
#ifdef GR_HAVE_CUDA
    return gr_backend_cuda(gpu, err);
#else
    return NULL; /* not reached: parse_device refused it */
#endif
}

size_t gr_dtype_size(int dtype) {
    switch (dtype) {
    case GR_F32: case GR_I32: return 4;
    case GR_F16: case GR_BF16: return 2;
    default: return 0;
    }
}

gr_dbuf gr_dbuf_alloc(gr_backend *b, int dtype, size_t n) {
    gr_dbuf d = {NULL, n, dtype};
    size_t es = gr_dtype_size(dtype);
    if (!es || (n && es > SIZE_MAX / n)) {
        fprintf(stderr, "gr_dbuf_alloc: bad size (%zu elements of type %d)\n", n, dtype);
        abort();
    }
    d.p = b->dev_alloc(b, n * es);
    if (!d.p) {
        fprintf(stderr, "out of memory (%s: a buffer of %zu bytes)\n", b->name, n * es);
        abort();
    }
    return d;
}

void gr_dbuf_free(gr_backend *b, gr_dbuf *d) {
    if (d->p) b->dev_free(b, d->p);
    d->p = NULL;
    d->n = 0;
}
