/* Batch-1 decode on a backend against the weight-streaming roofline: one
 * sequence, a 32-token prompt, then STEPS greedy steps (forward through the
 * paged KV cache + sampling on the device), timed after a warm-up. Each step
 * must read every matrix once (the LM head included; the embedding only its
 * row) plus the KV rows so far, so
 *     roofline ms/token = bytes per step / peak bandwidth
 * (peak from GR_PEAK_GBS, default 4800: the H200's datasheet 4.8 TB/s).
 * Prints one line: ms/token, GB/s achieved, % of the roofline.
 * Usage: bench_decode MODEL [STEPS] (device from GR_TEST_DEVICE, default cuda). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backend.h"
#include "generate.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_decode MODEL [STEPS]\n");
        return 2;
    }
    int steps = argc > 2 ? atoi(argv[2]) : 256;
    gr_err err;
    const char *dev = getenv("GR_TEST_DEVICE");
    gr_backend *be = gr_backend_open(dev && *dev ? dev : "cuda", 0, &err);
    if (!be) {
        printf("# skip: %s\n", err.msg);
        return 77;
    }
    gr_model *m = gr_model_load(argv[1], &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gr_ctx *c = gr_ctx_open(m, be, &err);
    if (!c) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const gr_model_config *cf = &m->cfg;
    int V = cf->vocab_size, kvd = cf->n_kv_heads * cf->head_dim;
    gr_kv_pool *pool = gr_kv_pool_new(be, cf->n_layers, kvd, 0);
    int toks[32];
    for (int i = 0; i < 32; i++) toks[i] = 100 + 37 * i;
    float *host = malloc(sizeof(float) * (size_t)V);
    double t0 = 0, kv_bytes = 0;
    int warm = 16, next = 0;
    for (int rep = 0; rep < 2; rep++) { /* rep 0: warm-up (plans, first launches) */
        gr_kv *kv = gr_kv_new_in(pool, NULL);
        gr_kv_try_reserve(kv, 32 + steps + warm);
        const int *tp = toks;
        int n = 32;
        const float *ld;
        if (gr_forward_dev(c, &kv, &tp, &n, 1, &ld, 0, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        int todo = rep ? steps : warm, one = 1;
        gr_sample_row row = {0.0f, 1.0f, 0, 0, 0, 0};
        if (be->sample) be->sample(be, ld, 1, V, &row, NULL, 0, &next, NULL, NULL);
        else next = 0;
        if (rep) t0 = now();
        for (int s = 0; s < todo; s++) {
            const int *np = &next;
            if (gr_forward_dev(c, &kv, &np, &one, 1, &ld, 0, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            if (be->sample) {
                row.step = (uint64_t)s;
                be->sample(be, ld, 1, V, &row, NULL, 0, &next, NULL, NULL);
            } else {
                be->download(be, host, ld, sizeof(float) * (size_t)V);
                next = 0;
                for (int i = 1; i < V; i++)
                    if (host[i] > host[next]) next = i;
            }
            if (rep) kv_bytes += (double)gr_kv_pos(kv) * cf->n_layers * 2.0 * kvd * gr_dtype_size(be->kv_dtype);
        }
        be->sync(be);
        gr_kv_free(kv);
    }
    double dt = now() - t0;
    double D = cf->dim, H = cf->hidden_dim, Q = (double)cf->n_heads * cf->head_dim;
    double per_layer = Q * D * 2 + (double)kvd * D * 2 + 3 * H * D;
    double wbytes = 2.0 * (per_layer * cf->n_layers + (double)V * D); /* bf16 */
    double per_step = wbytes + kv_bytes / steps;
    double peak = getenv("GR_PEAK_GBS") ? atof(getenv("GR_PEAK_GBS")) : 4800.0;
    double ms = 1e3 * dt / steps, gbs = per_step / (dt / steps) / 1e9;
    printf("decode batch 1 on %s: %.3f ms/token, %.0f GB/s of %.0f (%.1f%% of the roofline %.3f ms/token; "
           "%.2f GB weights + %.1f MB KV per step)\n", be->name, ms, gbs, peak, 100.0 * gbs / peak,
           1e3 * per_step / (peak * 1e9), wbytes / 1e9, kv_bytes / steps / 1e6);
    free(host);
    gr_kv_pool_release(pool);
    gr_ctx_free(c);
    gr_model_free(m);
    gr_backend_free(be);
    return 0;
}
