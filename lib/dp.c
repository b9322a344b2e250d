/* The bucketed gradient sum of data parallelism (see dp.h). */
#include "dp.h"
#include "cuda_dl.h"
#include <stdlib.h>

void gr_dp_init(gr_dp *d, gr_dp_transport *grad, gr_dp_transport *host, int64_t bucket_bytes) {
    *d = (gr_dp){.grad = grad, .host = host ? host : grad};
    d->rank = grad ? grad->rank : 0;
    d->world = grad ? grad->world : 1;
    const char *env = getenv("GR_DP_BUCKET_BYTES"); /* tests: many small buckets */
    if (bucket_bytes <= 0 && env && *env) bucket_bytes = strtoll(env, NULL, 10);
    if (bucket_bytes <= 0) bucket_bytes = 25 << 20;
    d->bucket = bucket_bytes / (int64_t)sizeof(float);
    if (d->bucket < 1) d->bucket = 1;
}

void gr_dp_bucket(const gr_dp *d, int64_t n, int64_t i, int64_t *lo, int64_t *hi) {
    *hi = n - i * d->bucket;
    *lo = *hi - d->bucket > 0 ? *hi - d->bucket : 0;
}

void gr_dp_begin(gr_dp *d, float *x, int64_t n) {
    d->x = x;
    d->n = n;
    d->next = 0;
    d->n_buckets = n > 0 ? (n + d->bucket - 1) / d->bucket : 0;
    d->active = 1;
    d->failed = 0;
}

static int start(gr_dp *d, int64_t i, gr_err *err) {
    int64_t lo, hi;
    gr_dp_bucket(d, d->n, i, &lo, &hi);
    return d->grad->isum_f32(d->grad, d->x + lo, hi - lo, err);
}

void gr_dp_ready(gr_dp *d, int64_t lo) {
    if (!d->active || d->world <= 1 || d->failed) return;
    while (d->next < d->n_buckets) {
        int64_t blo, bhi;
        gr_dp_bucket(d, d->n, d->next, &blo, &bhi);
        if (blo < lo) break;
        if (start(d, d->next, &d->err)) {
            d->failed = 1;
            return;
        }
        d->next++;
    }
    if (d->grad->poll) d->grad->poll(d->grad);
}

void gr_dp_hook(void *d, int64_t lo) { gr_dp_ready(d, lo); }

int gr_dp_finish(gr_dp *d, gr_err *err) {
    if (!d->active) return gr_errf(err, "dp: finish without begin");
    d->active = 0;
    if (d->world <= 1) return 0;
    if (d->failed) {
        *err = d->err;
        return -1;
    }
    for (; d->next < d->n_buckets; d->next++)
        if (start(d, d->next, err)) return -1;
    return d->grad->wait(d->grad, err);
}

int gr_dp_sum_f64(gr_dp *d, double *x, int64_t n, gr_err *err) {
    if (d->world <= 1 || n == 0) return 0;
    return d->host->sum_f64(d->host, x, n, err);
}

int gr_dp_nccl_built(void) {
#ifdef GR_HAVE_NCCL
    return 1;
#else
    return 0;
#endif
}

/* The NCCL transport is in libgr-cuda.so (kernels/cuda/dp_nccl.cu), loaded on
 * first use (lib/cuda_dl.h). */
gr_dp_transport *gr_dp_nccl_open(gr_dp_transport *boot, struct gr_backend *b, gr_err *err) {
#ifdef GR_HAVE_NCCL
    gr_dp_transport *(*open_nccl)(gr_dp_transport *, struct gr_backend *, gr_err *);
    *(void **)&open_nccl = gr_cuda_symbol("gr_dp_nccl_open_cuda", err);
    return open_nccl ? open_nccl(boot, b, err) : NULL;
#else
    (void)boot;
    (void)b;
    gr_errf(err, "data parallelism on GPUs: this build has no NCCL (rebuild with nvcc and nccl.h found)");
    return NULL;
#endif
}
