/* The blocked GEMM (see gemm.h). A task owns 16 weight rows. Their values
 * are converted once and packed k-major (wp[k][16]); the K loop runs in blocks
 * of 256 (16 KB of packed weights: they stay in L1 while every token passes).
 * x is packed once per matmul into 6-token tiles ([k][6]), and each (6 tokens x
 * 16 rows) tile is the shared micro-kernel of cpu_microkernel.c. At level
 * avx512 the block is gemm_avx512.c's instead (x in place, the same bits). */
#include "gemm.h"
#include "cpu_backend.h"
#include "cpu_microkernel.h"
#include "isa.h"
#include <string.h>

enum { KC = 256, MR = GR_MR };

/* a multiple of 8 floats, so every slot of an aligned buffer stays 32-byte aligned */
int64_t gr_gemm_scratch(int64_t cols) { return (2 * (int64_t)GR_GEMM_NR * cols + 7) / 8 * 8; }

/* y[t][0..16) (+)= Σ_k xp[k][t] wp[k][0..16) for k < kc, stored for t < mr and
 * the first nr columns: xp is a packed tile of 6 tokens (zero rows past the last
 * token), wp 16 packed weight rows. Full tiles go straight to y; edge tiles
 * through a scratch tile, by the same kernel. */
static void kernel(int mr, const float *xp, const float *wp, int kc, float *y, int64_t ldy,
                   int first, int nr) {
    if (mr == MR && nr == GR_NR) {
        gr_micro_6x16(kc, xp, wp, y, (int)ldy, !first);
        return;
    }
    _Alignas(32) float o[MR * GR_NR];
    gr_micro_6x16(kc, xp, wp, o, GR_NR, 0);
    for (int t = 0; t < mr; t++) {
        float *yt = y + (int64_t)t * ldy;
        for (int r = 0; r < nr; r++) yt[r] = first ? o[t * GR_NR + r] : yt[r] + o[t * GR_NR + r];
    }
}

int64_t gr_gemm_xpack_size(int n, int64_t cols) { return (int64_t)((n + MR - 1) / MR) * MR * cols; }

void gr_gemm_pack_x(float *xp, const float *x, int n, int64_t cols) {
    for (int t0 = 0; t0 < n; t0 += MR) {
        float *tile = xp + (int64_t)t0 * cols;
        for (int u = 0; u < MR; u++) {
            const float *xr = t0 + u < n ? x + (int64_t)(t0 + u) * cols : NULL;
            for (int64_t k = 0; k < cols; k++) tile[MR * k + u] = xr ? xr[k] : 0.0f;
        }
    }
}

void gr_gemm_block(float *y, const float *xp, int n, const gr_tensor *w, int64_t r0, gr_row_fn row,
                   float *scratch) {
    int64_t cols = w->cols, rows = w->rows;
    int nr = rows - r0 < GR_GEMM_NR ? (int)(rows - r0) : GR_GEMM_NR;
    float *wp = scratch, *buf = scratch + GR_GEMM_NR * cols;
    /* pack once: wp[k][r] = w[r0 + r][k], zero rows past the end; a K-block is
     * then the contiguous slice wp + 16*k0. The 16 rows are converted first,
     * then transposed 8 x 8 at a time. */
    const float *wr[GR_GEMM_NR];
    for (int r = 0; r < GR_GEMM_NR; r++) {
        if (r < nr) {
            wr[r] = row(w, r0 + r, buf + (int64_t)r * cols);
        } else {
            memset(buf + (int64_t)r * cols, 0, sizeof(float) * (size_t)cols);
            wr[r] = buf + (int64_t)r * cols;
        }
    }
    int64_t k = 0;
#if GR_CPU_X86
    if (gr_cpu_isa >= GR_ISA_AVX2) k = gr_gemm_pack_w_avx2(wp, wr, cols);
#endif
    for (; k < cols; k++)
        for (int r = 0; r < GR_GEMM_NR; r++) wp[16 * k + r] = wr[r][k];
    for (int64_t k0 = 0; k0 < cols; k0 += KC) {
        int kc = cols - k0 < KC ? (int)(cols - k0) : KC;
        const float *wk = wp + 16 * k0;
        for (int t = 0; t < n; t += MR) {
            int mr = n - t < MR ? n - t : MR;
            kernel(mr, xp + (int64_t)t * cols + MR * k0, wk, kc, y + (int64_t)t * rows + r0, rows,
                   k0 == 0, nr);
        }
    }
}
