/* The 6x16 f32 micro-kernels (see cpu_microkernel.h): the portable versions
 * (fmaf: the same roundings as the FMA kernels, so every build trains and runs
 * alike), and the choice of the compiled-in one (microkernel_avx2.c). */
#include "cpu_backend.h"
#include "cpu_microkernel.h"
#include "isa.h"
#include <math.h>
#include <stddef.h>

enum { MR = GR_MR, NR = GR_NR };

static void micro_portable(int kc, const float *a, long a_is, long a_ks, const float *b, long b_ks,
                           float *C, int ldc, int load) {
    float c[MR][NR] = {{0}};
    for (int p = 0; p < kc; p++)
        for (int i = 0; i < MR; i++)
            for (int jx = 0; jx < NR; jx++)
                c[i][jx] = fmaf(a[i * a_is + p * a_ks], b[p * b_ks + jx], c[i][jx]);
    for (int i = 0; i < MR; i++)
        for (int jx = 0; jx < NR; jx++)
            C[(size_t)i * ldc + jx] = load ? C[(size_t)i * ldc + jx] + c[i][jx] : c[i][jx];
}

void gr_micro_6x16_scalar(int kc, const float *a, const float *b, float *C, int ldc, int load) {
    micro_portable(kc, a, 1, MR, b, NR, C, ldc, load);
}

void gr_micro_6x16_strided_scalar(int kc, const float *a, long a_is, long a_ks, const float *b,
                                  long b_ks, float *C, int ldc, int load) {
    micro_portable(kc, a, a_is, a_ks, b, b_ks, C, ldc, load);
}

void gr_micro_6x16(int kc, const float *a, const float *b, float *C, int ldc, int load) {
#if GR_CPU_X86
    if (gr_cpu_isa >= GR_ISA_AVX2) {
        gr_micro_6x16_avx2(kc, a, b, C, ldc, load);
        return;
    }
#endif
    gr_micro_6x16_scalar(kc, a, b, C, ldc, load);
}

void gr_micro_6x16_strided(int kc, const float *a, long a_is, long a_ks, const float *b, long b_ks,
                           float *C, int ldc, int load) {
#if GR_CPU_X86
    if (gr_cpu_isa >= GR_ISA_AVX2) {
        gr_micro_6x16_strided_avx2(kc, a, a_is, a_ks, b, b_ks, C, ldc, load);
        return;
    }
#endif
    gr_micro_6x16_strided_scalar(kc, a, a_is, a_ks, b, b_ks, C, ldc, load);
}
