/* The AVX2/FMA 6x16 micro-kernels (see cpu_microkernel.h): the k loops in
 * assembly, each C element one chain of fused multiply-adds in k order, as
 * the portable kernel's fmaf (microkernel.c): the same bits. */
#include "cpu_backend.h"
#if GR_CPU_AVX2
#include "cpu_microkernel.h"
#include <immintrin.h>
#include <stddef.h>

enum { MR = GR_MR, NR = GR_NR };

/* C += (load) and store of the twelve accumulators */
#define ST(r, x0, x1)                                                                     \
    if (load) {                                                                           \
        x0 = _mm256_add_ps(_mm256_loadu_ps(C + (size_t)(r) * ldc), x0);                   \
        x1 = _mm256_add_ps(_mm256_loadu_ps(C + (size_t)(r) * ldc + 8), x1);               \
    }                                                                                     \
    _mm256_storeu_ps(C + (size_t)(r) * ldc, x0);                                          \
    _mm256_storeu_ps(C + (size_t)(r) * ldc + 8, x1);
/* the twelve accumulators as asm in-out operands */
#define ACC_OPERANDS                                                                      \
    [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11), [c20] "+x"(c20),   \
        [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31), [c40] "+x"(c40),                 \
        [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51)
#define STORE_TILE() do { ST(0, c00, c01) ST(1, c10, c11) ST(2, c20, c21) ST(3, c30, c31) ST(4, c40, c41) ST(5, c50, c51) } while (0)

void gr_micro_6x16_avx2(int kc, const float *a, const float *b, float *C, int ldc, int load) {
    /* Twelve named accumulators: an array would live on the stack at -O2. */
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int r = 0; r < MR; r++) { /* C is added at the end: fetch it meanwhile */
        _mm_prefetch((const char *)(C + (size_t)r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + (size_t)r * ldc + NR - 1), _MM_HINT_T0);
    }
    /* The k loop in assembly: GCC's scheduling of the intrinsics spills and
     * re-loads B from memory (-O2), well below the FMA ports' rate. */
#define BC(u, r, t, c0, c1)                                                               \
    "vbroadcastss " #u "*24+" #r "*4(%[a]), %%" t "\n\t"                                  \
    "vfmadd231ps %%ymm12, %%" t ", %[" c0 "]\n\t"                                         \
    "vfmadd231ps %%ymm13, %%" t ", %[" c1 "]\n\t"
#define STEP(u)                                                                           \
    "vmovaps " #u "*64(%[b]), %%ymm12\n\t"                                                \
    "vmovaps " #u "*64+32(%[b]), %%ymm13\n\t"                                             \
    BC(u, 0, "ymm14", "c00", "c01") BC(u, 1, "ymm15", "c10", "c11")                       \
    BC(u, 2, "ymm14", "c20", "c21") BC(u, 3, "ymm15", "c30", "c31")                       \
    BC(u, 4, "ymm14", "c40", "c41") BC(u, 5, "ymm15", "c50", "c51")
    long n = kc;
    __asm__("mov %[n], %%rcx\n\t"
            "shr $2, %%rcx\n\t"
            "jz 2f\n\t"
            ".p2align 4\n"
            "1:\n\t"
            "prefetcht0 384(%[a])\n\t"
            STEP(0) STEP(1) STEP(2) STEP(3)
            "add $96, %[a]\n\t"
            "add $256, %[b]\n\t"
            "dec %%rcx\n\t"
            "jnz 1b\n"
            "2:\n\t"
            "mov %[n], %%rdx\n\t"
            "and $3, %%rdx\n\t"
            "jz 4f\n"
            "3:\n\t"
            STEP(0)
            "add $24, %[a]\n\t"
            "add $64, %[b]\n\t"
            "dec %%rdx\n\t"
            "jnz 3b\n"
            "4:\n"
            : ACC_OPERANDS, [a] "+r"(a), [b] "+r"(b)
            : [n] "r"(n)
            : "rcx", "rdx", "ymm12", "ymm13", "ymm14", "ymm15", "cc", "memory");
#undef STEP
#undef BC
    STORE_TILE();
}


void gr_micro_6x16_strided_avx2(int kc, const float *a, long a_is, long a_ks, const float *b, long b_ks,
                           float *C, int ldc, int load) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    /* rows 0-2 from a and 3-5 from r8 = a + 3 a_is, each as base + index x
     * {0, 1, 2}; the counts and strides come through memory (GCC allows at most
     * 30 asm operands, and the accumulators take 24) */
    const long arg[4] = {kc, a_is * 4, a_ks * 4, b_ks * 4};
#define BC(addr, t, c0, c1)                                                               \
    "vbroadcastss " addr ", %%" t "\n\t"                                                   \
    "vfmadd231ps %%ymm12, %%" t ", %[" c0 "]\n\t"                                         \
    "vfmadd231ps %%ymm13, %%" t ", %[" c1 "]\n\t"
    __asm__("mov (%[arg]), %%rcx\n\t"
            "mov 8(%[arg]), %%r9\n\t"
            "mov 16(%[arg]), %%r10\n\t"
            "mov 24(%[arg]), %%r11\n\t"
            "lea (%[a],%%r9,2), %%r8\n\t"
            "add %%r9, %%r8\n\t"
            "test %%rcx, %%rcx\n\t"
            "jz 2f\n\t"
            ".p2align 4\n"
            "1:\n\t"
            "vmovups (%[b]), %%ymm12\n\t"
            "vmovups 32(%[b]), %%ymm13\n\t"
            BC("(%[a])", "ymm14", "c00", "c01")
            BC("(%[a],%%r9,1)", "ymm15", "c10", "c11")
            BC("(%[a],%%r9,2)", "ymm14", "c20", "c21")
            BC("(%%r8)", "ymm15", "c30", "c31")
            BC("(%%r8,%%r9,1)", "ymm14", "c40", "c41")
            BC("(%%r8,%%r9,2)", "ymm15", "c50", "c51")
            "add %%r10, %[a]\n\t"
            "add %%r10, %%r8\n\t"
            "add %%r11, %[b]\n\t"
            "dec %%rcx\n\t"
            "jnz 1b\n"
            "2:\n"
            : ACC_OPERANDS, [a] "+r"(a), [b] "+r"(b)
            : [arg] "r"(arg)
            : "rcx", "r8", "r9", "r10", "r11", "ymm12", "ymm13", "ymm14", "ymm15", "cc",
              "memory");
#undef BC
    STORE_TILE();
}
#else
typedef int gr_microkernel_avx2_empty; /* ISO C: no empty file */
#endif
