/* bf16 rounding of packed GEMM panels: the portable variant and the dispatch
 * (see gemm_bf16.h). */
#include "gemm_bf16.h"
#include "isa.h"

void gr_bf16_round(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = gr_bf16_round1(x[i]);
}

void gr_bf16_round_any(float *x, size_t n) {
#if GR_CPU_X86
    if (gr_cpu_isa >= GR_ISA_AVX512) {
        gr_bf16_round_avx512(x, n);
        return;
    }
#endif
    gr_bf16_round(x, n);
}
