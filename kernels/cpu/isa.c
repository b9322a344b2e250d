/* The run-time choice of kernel variants (see isa.h): cpuid and xgetbv for what
 * the CPU has and the OS saves, GR_CPU_ISA to force a lower level, and the line
 * gr_cpu_describe prints (tools' --version, the benchmarks' first line). */
#include "isa.h"
#include "backend.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

int gr_cpu_isa = GR_ISA_SCALAR;
static int isa_max = GR_ISA_SCALAR, has_vnni, has_bf16, has_avxvnni, has_amx, amx_mode, amx_granted = -1;
static char model[64] = "unknown CPU";
static int forced; /* GR_CPU_ISA chose the level */

#if defined(__x86_64__)
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

static void probe(void) {
    unsigned a, b, c, d;
    unsigned brand[12];
    if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2], &brand[4 * i + 3]);
        char s[49];
        memcpy(s, brand, 48);
        s[48] = 0;
        char *p = s;
        while (*p == ' ') p++;
        size_t n = strlen(p);
        while (n && p[n - 1] == ' ') p[--n] = 0;
        if (n) snprintf(model, sizeof model, "%s", p);
    }
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int fma = c >> 12 & 1, osxsave = c >> 27 & 1, avx = c >> 28 & 1, f16c = c >> 29 & 1;
    if (!osxsave || !avx) return;
    unsigned long long xcr0 = xgetbv0();
    int ymm_ok = (xcr0 & 6) == 6, zmm_ok = (xcr0 & 0xe6) == 0xe6;
    unsigned b7 = 0, c7 = 0, a71 = 0, d7 = 0;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b7, c7, d7);
        unsigned x, y, z;
        __cpuid_count(7, 1, a71, x, y, z);
    }
    int avx2 = b7 >> 5 & 1;
    int f = b7 >> 16 & 1, dq = b7 >> 17 & 1, bw = b7 >> 30 & 1, vl = b7 >> 31 & 1;
    if (ymm_ok && avx2 && fma && f16c) isa_max = GR_ISA_AVX2;
    if (isa_max == GR_ISA_AVX2 && zmm_ok && f && dq && bw && vl) isa_max = GR_ISA_AVX512;
    has_vnni = isa_max == GR_ISA_AVX512 && (c7 >> 11 & 1);
    has_bf16 = isa_max == GR_ISA_AVX512 && (a71 >> 5 & 1);
    has_avxvnni = ymm_ok && (a71 >> 4 & 1);
    /* AMX-TILE, AMX-BF16, and the OS saving XTILECFG and XTILEDATA (XCR0 bits 17, 18) */
    has_amx = (d7 >> 24 & 1) && (d7 >> 22 & 1) && (xcr0 >> 17 & 3) == 3;
}
#else
static void probe(void) {}
#endif

const char *gr_cpu_isa_name(int level) {
    static const char *names[GR_ISA_N] = {"scalar", "avx2", "avx512"};
    return level >= 0 && level < GR_ISA_N ? names[level] : "?";
}

int gr_cpu_isa_max(void) { return GR_CPU_X86 ? isa_max : GR_ISA_SCALAR; }

int gr_cpu_isa_set(int level) {
    int old = gr_cpu_isa;
    if (level > gr_cpu_isa_max()) level = gr_cpu_isa_max();
    if (level < GR_ISA_SCALAR) level = GR_ISA_SCALAR;
    gr_cpu_isa = level;
    return old;
}

int gr_cpu_amx_available(void) {
    if (!GR_CPU_X86 || !has_amx || !has_bf16) return 0;
    if (amx_granted < 0) {
#if defined(__x86_64__) && defined(__linux__)
        /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18): without it
         * the first tile instruction faults */
        amx_granted = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
        amx_granted = 0;
#endif
    }
    return amx_granted;
}

int gr_cpu_amx(void) { return gr_cpu_bf16() ? amx_mode : GR_AMX_OFF; }

int gr_cpu_amx_set(int mode) {
    int old = amx_mode;
    if (mode == GR_AMX_HW && !gr_cpu_amx_available()) mode = GR_AMX_OFF;
    if (mode != GR_AMX_HW && mode != GR_AMX_EMUL) mode = GR_AMX_OFF;
    amx_mode = mode;
    return old;
}

int gr_cpu_vnni(void) { return gr_cpu_isa == GR_ISA_AVX512 && has_vnni; }
int gr_cpu_bf16(void) { return GR_CPU_X86 && gr_cpu_isa == GR_ISA_AVX512 && has_bf16; }

__attribute__((constructor)) static void isa_init(void) {
    probe();
    gr_cpu_isa = gr_cpu_isa_max();
    const char *e = getenv("GR_CPU_ISA");
    if (e && *e) {
        int want = -1;
        for (int l = 0; l < GR_ISA_N; l++)
            if (!strcmp(e, gr_cpu_isa_name(l))) want = l;
        if (want < 0)
            fprintf(stderr, "warning: GR_CPU_ISA=%s is not scalar, avx2 or avx512: ignored\n", e);
        else if (want > gr_cpu_isa_max())
            fprintf(stderr, "warning: GR_CPU_ISA=%s: this %s cannot run it; using %s\n", e,
                    GR_CPU_X86 ? "CPU" : "build", gr_cpu_isa_name(gr_cpu_isa_max()));
        else {
            gr_cpu_isa = want;
            forced = 1;
        }
    }
    const char *a = getenv("GR_CPU_AMX");
    if (a && !strcmp(a, "1")) {
        if (!gr_cpu_amx_available())
            fprintf(stderr, "warning: GR_CPU_AMX=1: %s; AMX off\n",
                    !has_amx || !has_bf16 ? "this CPU has no AMX-BF16 with AVX512-BF16" : "Linux refused the tile state");
        gr_cpu_amx_set(GR_AMX_HW);
    }
}

const char *gr_cpu_describe(void) {
    static char line[512];
    int l = gr_cpu_isa;
    const char *wide = l == GR_ISA_AVX512 ? "avx512" : l == GR_ISA_AVX2 ? "avx2" : "scalar";
    snprintf(line, sizeof line,
             "cpu: %s [%s%s%s%s%s]; kernels: %s (decode %s, prefill gemm %s%s, q8 %s, attention decode %s prefill %s)%s",
             model, gr_cpu_isa_name(gr_cpu_isa_max()), has_vnni ? " avx512-vnni" : "",
             has_bf16 ? " avx512-bf16" : "", has_avxvnni ? " avx-vnni" : "", has_amx ? " amx" : "",
             gr_cpu_isa_name(l), wide, wide, gr_cpu_amx() == GR_AMX_HW ? ", bf16 weights amx (GR_CPU_AMX=1; untested on hardware)" : gr_cpu_amx() == GR_AMX_EMUL ? ", bf16 weights amx model" : gr_cpu_bf16() ? has_amx ? ", bf16 weights avx512-bf16 (amx off: GR_CPU_AMX=1)" : ", bf16 weights avx512-bf16" : "", gr_cpu_vnni() ? "avx512-vnni" : l >= GR_ISA_AVX2 ? "avx2" : "scalar",
             l >= GR_ISA_AVX2 ? "avx2" : "scalar", l == GR_ISA_AVX512 ? "avx512 (head dim a multiple of 16)" : "portable", forced ? " (set by GR_CPU_ISA)" : "");
    return line;
}
