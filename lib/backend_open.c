/* Opening a backend by its --device name, and the typed buffers of backend.h.
 * The CUDA backend exists only when the build defines GR_HAVE_CUDA (the
 * Makefile does when nvcc is found); it lives in libgr-cuda.so, loaded on first
 * use (lib/cuda_dl.h), and this file sees no CUDA header. */
#include "backend.h"
#include "cuda_dl.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *gr_backends_built(void) {
#ifdef GR_HAVE_CUDA
    static char s[4200];
    const char *lib = gr_cuda_lib_path();
    snprintf(s, sizeof s, "cpu, cuda (%s%s)", lib ? lib : "libgr-cuda.so not found",
             lib ? ", loaded by --device cuda" : ": set GR_CUDA_LIB");
    return s;
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
                       "nvcc on PATH)", device, "cpu");
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
    gr_backend *(*open_cuda)(int, gr_err *);
    /* POSIX's way to turn dlsym's object pointer into a function pointer */
    *(void **)&open_cuda = gr_cuda_symbol("gr_backend_cuda", err);
    return open_cuda ? open_cuda(gpu, err) : NULL;
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
