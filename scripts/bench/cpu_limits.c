/* The limits the model benchmark divides by (built into model_bench by
 * scripts/bench-model, not a test):
 *   cpu_fma_peak_gflops  FP32 FMA throughput on T threads at one vector width
 *                        (8: AVX2+FMA, 16: AVX-512F), 0 where the CPU lacks it:
 *                        12 independent FMA chains per thread, each thread's
 *                        rate over its own CPU time (so a shared machine's
 *                        other processes do not lower it; 2 threads on SMT
 *                        siblings would overstate it), summed, best of 3;
 *   cpu_read_gbps        memory read bandwidth on T threads: each sums its
 *                        share of a 256 MiB buffer (bytes read, no write
 *                        stream), best of 5.
 * Both are measured, not looked up, so on a shared machine they are as noisy
 * as the figures they scale; bench-model prints them beside the load. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>

static double lim_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

enum { FMA_ITERS = 20000000 };

/* 12 named accumulators (an array would live on the stack at -O2) */
#define FMA12(T, FMA, SET1)                                                          \
    T a0 = SET1(0.f), a1 = SET1(1.f), a2 = SET1(2.f), a3 = SET1(3.f), a4 = SET1(4.f),  \
      a5 = SET1(5.f), a6 = SET1(6.f), a7 = SET1(7.f), a8 = SET1(8.f), a9 = SET1(9.f),  \
      a10 = SET1(10.f), a11 = SET1(11.f), m = SET1(0.999999f), s = SET1(1e-7f);      \
    for (long k = 0; k < iters; k++) {                                                 \
        a0 = FMA(a0, m, s); a1 = FMA(a1, m, s); a2 = FMA(a2, m, s); a3 = FMA(a3, m, s);    \
        a4 = FMA(a4, m, s); a5 = FMA(a5, m, s); a6 = FMA(a6, m, s); a7 = FMA(a7, m, s);    \
        a8 = FMA(a8, m, s); a9 = FMA(a9, m, s); a10 = FMA(a10, m, s); a11 = FMA(a11, m, s); \
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5)); \
    }

__attribute__((target("avx2,fma"))) static float fma8(long iters) {
    FMA12(__m256, _mm256_fmadd_ps, _mm256_set1_ps)
    __m256 r = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    r = _mm256_add_ps(r, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    return _mm256_cvtss_f32(r);
}

__attribute__((target("avx512f"))) static float fma16(long iters) {
    FMA12(__m512, _mm512_fmadd_ps, _mm512_set1_ps)
    __m512 r = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    r = _mm512_add_ps(r, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(r);
}

typedef struct { int width; long iters; const uint64_t *buf; size_t n; volatile double sink; double cpu_s; } lim_job;

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *fma_thread(void *arg) {
    lim_job *j = arg;
    double c = thread_cpu();
    j->sink = j->width == 16 ? fma16(j->iters) : fma8(j->iters);
    j->cpu_s = thread_cpu() - c;
    return NULL;
}

static void *read_thread(void *arg) {
    lim_job *j = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= j->n; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    j->sink = (double)(s0 ^ s1 ^ s2 ^ s3);
    return NULL;
}

/* Runs fn on T threads (the caller one of them) and returns the wall time. */
static double lim_run(int T, lim_job *jobs, void *(*fn)(void *)) {
    pthread_t th[64];
    if (T > 64) T = 64;
    double t = lim_now();
    for (int i = 1; i < T; i++) pthread_create(&th[i], NULL, fn, &jobs[i]);
    fn(&jobs[0]);
    for (int i = 1; i < T; i++) pthread_join(th[i], NULL);
    return lim_now() - t;
}

double cpu_fma_peak_gflops(int T, int width) {
    if (width == 8 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return 0;
    if (width == 16 && !__builtin_cpu_supports("avx512f")) return 0;
    if (T < 1) T = 1;
    lim_job jobs[64];
    long iters = FMA_ITERS / 4;
    double best = 0;
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < T && i < 64; i++) jobs[i] = (lim_job){.width = width, .iters = iters};
        (void)lim_run(T, jobs, fma_thread);
        double g = 0;
        for (int i = 0; i < T && i < 64; i++) g += (double)iters * 12 * width * 2 / jobs[i].cpu_s / 1e9;
        if (g > best) best = g;
    }
    return best;
}

double cpu_read_gbps(int T) {
    size_t n = ((size_t)256 << 20) / sizeof(uint64_t);
    uint64_t *buf = malloc(n * sizeof *buf);
    if (!buf) return 0;
    memset(buf, 1, n * sizeof *buf);
    if (T < 1) T = 1;
    if (T > 64) T = 64;
    lim_job jobs[64];
    size_t per = n / (size_t)T;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        for (int i = 0; i < T; i++) jobs[i] = (lim_job){.buf = buf + (size_t)i * per, .n = per};
        double t = lim_run(T, jobs, read_thread);
        double g = (double)per * (double)T * sizeof *buf / t / 1e9;
        if (g > best) best = g;
    }
    free(buf);
    return best;
}
