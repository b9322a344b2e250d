/* GEMM micro-benchmark of the training matmuls (built and run by scripts/bench-gemm):
 * the SmolLM2-135M shapes at 1024 tokens (the LM head at 256 rows, the chunk the
 * cross-entropy op computes at once), through the same entry points training uses:
 *   fwd  y = x·Wᵀ          gr_cpu_gemm_nt   (matmul_fwd)
 *   dX   dX += dY·W         gr_cpu_gemm      (matmul_bwd's first GEMM)
 *   dW   dW += dYᵀ·X        matmul_bwd with dx = NULL
 * Prints GFLOP/s (best of the repeats) and the share of the measured FP32 peak
 * of one core times the threads.
 *
 * usage: bench-gemm [threads (1)] [repeats (5)] [peak GFLOP/s per core (measured)] */
#include "backend.h"
#include "backend_train.h"
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* 12 independent FMA chains, as scripts/bench-train measures it */
static double peak_core(void) {
#if defined(__AVX2__) && defined(__FMA__)
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        __m256 b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
        /* distinct starting values: equal chains would be merged into one by the
         * compiler, and the loop would time the FMA latency instead */
        __m256 a0 = b, a1 = _mm256_set1_ps(1.01f), a2 = _mm256_set1_ps(1.02f), a3 = _mm256_set1_ps(1.03f),
               a4 = _mm256_set1_ps(1.04f), a5 = _mm256_set1_ps(1.05f), a6 = _mm256_set1_ps(1.06f),
               a7 = _mm256_set1_ps(1.07f), a8 = _mm256_set1_ps(1.08f), a9 = _mm256_set1_ps(1.09f),
               a10 = _mm256_set1_ps(1.10f), a11 = _mm256_set1_ps(1.11f);
        long n = 30000000;
        double t0 = now();
        for (long k = 0; k < n; k++) {
#define F(x) x = _mm256_fmadd_ps(x, b, c);
            F(a0) F(a1) F(a2) F(a3) F(a4) F(a5) F(a6) F(a7) F(a8) F(a9) F(a10) F(a11)
#undef F
        }
        double dt = now() - t0;
        __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                 _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
        s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
        float o[8];
        _mm256_storeu_ps(o, s);
        double g = (double)n * 12.0 * 16 / dt / 1e9 + (o[0] == 12345.0f);
        if (g > best) best = g;
    }
    return best;
#else
    return 0;
#endif
}

static float *rnd(size_t n, unsigned seed) {
    float *p = malloc(sizeof(float) * n);
    if (!p) {
        perror("malloc");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

int main(int argc, char **argv) {
    printf("# %s\n", gr_cpu_describe()); /* first line: the CPU and the kernel paths */
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 5;
    double peak = argc > 3 ? atof(argv[3]) : peak_core();
    gr_backend *b = gr_backend_cpu(threads);
    const char *prec = getenv("BENCH_PRECISION"); /* bf16: the --precision bf16 GEMMs */
    b->train_bf16 = prec && !strcmp(prec, "bf16");
    const gr_train_ops *ops = gr_train_ops_cpu();
    static const int shapes[][3] = {/* in, out, rows */
                                    {576, 576, 1024},  {576, 192, 1024}, {576, 1536, 1024},
                                    {1536, 576, 1024}, {576, 49152, 256}};
    printf("bench-gemm: %d thread(s), best of %d, %s operands; peak %.1f GFLOP/s/core\n", threads, reps,
           b->train_bf16 ? "bf16" : "fp32", peak);
    printf("%6s %6s %5s  %-4s %9s %7s %6s\n", "in", "out", "rows", "op", "ms", "GF/s", "%peak");
    double tot[3] = {0}, totf = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int in = shapes[s][0], out = shapes[s][1], n = shapes[s][2];
        float *x = rnd((size_t)n * in, 1), *w = rnd((size_t)out * in, 2);
        float *dy = rnd((size_t)n * out, 3), *y = rnd((size_t)n * out, 4);
        float *dx = rnd((size_t)n * in, 5), *dw = rnd((size_t)out * in, 6);
        double fl = 2.0 * n * in * out;
        int r = fl > 2e10 ? (reps + 1) / 2 : reps;
        for (int op = 0; op < 3; op++) {
            double best = 1e30;
            for (int i = 0; i < r + 1; i++) { /* the first is a warm-up */
                double t0 = now();
                if (op == 0)
                    gr_cpu_gemm_nt(b, n, out, in, x, in, w, in, y, out, 0);
                else if (op == 1)
                    gr_cpu_gemm(b, n, in, out, dy, out, w, in, dx, in, 1);
                else
                    ops->matmul_bwd(b, NULL, dw, dy, x, w, n, in, out);
                double dt = now() - t0;
                if (i > 0 && dt < best) best = dt;
            }
            double gf = fl / best / 1e9;
            tot[op] += best;
            printf("%6d %6d %5d  %-4s %9.2f %7.1f %5.0f%%\n", in, out, n,
                   op == 0 ? "fwd" : op == 1 ? "dX" : "dW", best * 1e3, gf,
                   peak > 0 ? 100 * gf / (peak * threads) : 0);
            fflush(stdout);
        }
        totf += fl;
        free(x), free(w), free(dy), free(y), free(dx), free(dw);
    }
    for (int op = 0; op < 3; op++)
        printf("all shapes %-4s %7.1f GF/s\n", op == 0 ? "fwd" : op == 1 ? "dX" : "dW",
               totf / tot[op] / 1e9);
    gr_backend_free(b);
    return 0;
}
