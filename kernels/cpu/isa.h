/* Which kernel variants run (isa.c): every ISA variant is compiled in (each
 * *_avx2.c / *_avx512.c file with its own -m flags, see the Makefile), and the
 * op drivers choose among them at run time by gr_cpu_isa, fixed at startup from
 * cpuid (what the CPU and the OS support) and the environment variable
 * GR_CPU_ISA=scalar|avx2|avx512 (a lower level than the CPU has; a higher one
 * is refused with a warning). Tests switch it with gr_cpu_isa_set. */
#ifndef GR_CPU_ISA_H
#define GR_CPU_ISA_H

enum { GR_ISA_SCALAR, GR_ISA_AVX2, GR_ISA_AVX512, GR_ISA_N };

/* Whether this build has the x86 variants at all (the Makefile defines
 * GR_CPU_VARIANTS where it compiles them with their flags; an ad-hoc build of
 * the sources, the fuzzers', has the portable kernels only). */
#if defined(__x86_64__) && defined(GR_CPU_VARIANTS)
#define GR_CPU_X86 1
#else
#define GR_CPU_X86 0
#endif

/* The level in use (read by the drivers on every call). */
extern int gr_cpu_isa;
/* The highest level this CPU and build support. */
int gr_cpu_isa_max(void);
/* Sets the level (clipped to gr_cpu_isa_max); returns the previous one. Not
 * while an op runs. */
int gr_cpu_isa_set(int level);
/* Whether the AVX512-VNNI integer kernels run (level avx512 and the CPU has VNNI). */
int gr_cpu_vnni(void);
/* Whether the AVX512-BF16 kernels run (level avx512 and the CPU has vdpbf16ps):
 * the BF16-weight prefill GEMM (prefill_bf16.h) and bf16 training (gemm_bf16.h). */
int gr_cpu_bf16(void);
/* AMX-BF16 for the BF16 prefill GEMM (prefill_bf16.h): GR_AMX_OFF, GR_AMX_HW
 * (the tiles), or GR_AMX_EMUL (prefill_bf16_amx.inc's same block over a C
 * model of the tiles: the tests' way to run that code without AMX). Never
 * anything but off below level avx512 with AVX512-BF16. GR_AMX_HW needs the
 * CPU's AMX-TILE and AMX-BF16, the OS's tile state (XCR0) and Linux's
 * permission (arch_prctl ARCH_REQ_XCOMP_PERM), and is off unless GR_CPU_AMX=1:
 * the path has not yet run on an AMX CPU. */
enum { GR_AMX_OFF, GR_AMX_HW, GR_AMX_EMUL };
int gr_cpu_amx(void);
/* Whether GR_AMX_HW can be set (asks Linux for the tile state once). */
int gr_cpu_amx_available(void);
/* Sets the mode (GR_AMX_HW only where available, else off); returns the
 * previous one. Not while an op runs. */
int gr_cpu_amx_set(int mode);
/* "scalar", "avx2", "avx512" */
const char *gr_cpu_isa_name(int level);
#endif
