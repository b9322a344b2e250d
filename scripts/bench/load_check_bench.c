/* The cost of the finite-weights check pass at load (gr_model_check_finite):
 * for each model given, the median of N loads (gr_model_load, which includes
 * the check, and with it the first touch of every page), and of N check passes
 * on the loaded model (the scan alone), warm page cache.
 *   load_check_bench N MODEL... */
#define _POSIX_C_SOURCE 200809L
#include "model.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t tbytes(const gr_tensor *t) { return (size_t)t->rows * t->row_bytes; }

/* The bytes the check reads. */
static size_t weight_bytes(const gr_model *m) {
    size_t b = tbytes(&m->tok_emb);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const gr_layer *L = &m->layers[l];
        b += tbytes(&L->wq) + tbytes(&L->wk) + tbytes(&L->wv) + tbytes(&L->wo) + tbytes(&L->w_gate) +
             tbytes(&L->w_up) + tbytes(&L->w_down);
    }
    if (m->lm_head.data != m->tok_emb.data) b += tbytes(&m->lm_head);
    return b;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: load_check_bench N MODEL...\n");
        return 2;
    }
    int n = atoi(argv[1]);
    if (n < 1 || n > 1000) n = 5;
    double *tl = malloc(sizeof(double) * (size_t)n), *tc = malloc(sizeof(double) * (size_t)n),
           *t2 = malloc(sizeof(double) * (size_t)n);
    for (int a = 2; a < argc; a++) {
        gr_err err;
        size_t bytes = 0;
        for (int i = 0; i < n; i++) {
            double t0 = now_s();
            gr_model *m = gr_model_load(argv[a], &err);
            tl[i] = now_s() - t0;
            if (!m) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            t0 = now_s();
            if (gr_model_check_finite(m, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            tc[i] = now_s() - t0;
            t0 = now_s(); /* again: the pages are mapped now, so this is the scan alone */
            if (gr_model_check_finite(m, &err)) return 1;
            t2[i] = now_s() - t0;
            bytes = weight_bytes(m);
            gr_model_free(m);
        }
        qsort(tl, (size_t)n, sizeof *tl, cmp);
        qsort(tc, (size_t)n, sizeof *tc, cmp);
        qsort(t2, (size_t)n, sizeof *t2, cmp);
        printf("%s: load (with the check, which maps every page) %.1f ms; the check pass alone %.1f ms "
               "(%.1f GB/s); median of %d\n", argv[a], 1e3 * tl[n / 2], 1e3 * t2[n / 2],
               (double)bytes / t2[n / 2] / 1e9, n);
    }
    free(tl);
    free(tc);
    free(t2);
    return 0;
}
