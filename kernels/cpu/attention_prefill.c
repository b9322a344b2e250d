/* The prefill attention's driver and portable kernel (numerics in
 * attention_prefill.h). The prefill tokens are cut into runs (consecutive
 * tokens of one cache at consecutive positions); at level avx512 (head dims a
 * multiple of 16) each (run, kv head)'s keys up to the run's last position are
 * transposed once ([16-key block][d][16]), then a unit of work is (run, head,
 * up to 12 tokens): their scores against every key the last of them sees, each
 * row's softmax, and P·V six rows at a time. Below avx512, or for other head
 * dims, each row runs the portable kernel: the same arithmetic (fmaf chains,
 * gr_expf_n, the same partial sums), so the same bits. A task owns a
 * contiguous range of units and one score slot (12 rows of the longest run). */
#include "attention_prefill.h"
#include "cpu_backend.h"
#include "cpu_expf.h"
#include "isa.h"
#include "kv_cache.h"
#include <math.h>
#include <string.h>

enum { TQ = GR_AP_TQ };

/* one row by the stated numerics, sc: P+1 floats of scratch */
static void row_portable(float *o, const float *qv, const gr_kv *kv, int layer, int g, int hd, int P, float *sc) {
    float scale = 1.0f / sqrtf((float)hd), mx = -INFINITY;
    for (int p = 0; p <= P; p++) {
        const float *kp = gr_kv_k(kv, layer, p) + (size_t)g * hd;
        float s = 0;
        for (int d = 0; d < hd; d++) s = fmaf(qv[d], kp[d], s);
        sc[p] = s * scale;
        if (sc[p] > mx) mx = sc[p];
    }
    for (int p = 0; p <= P; p++) sc[p] -= mx;
    gr_expf_n(sc, P + 1);
    float l[16] = {0};
    for (int p = 0; p <= P; p++) l[p % 16] += sc[p];
    for (int w = 8; w; w >>= 1)
        for (int i = 0; i < w; i++) l[i] += l[i + w];
    float inv = 1.0f / l[0];
    for (int p = 0; p <= P; p++) sc[p] *= inv;
    for (int d = 0; d < hd; d++) o[d] = 0;
    for (int p = 0; p <= P; p++) {
        const float *vp = gr_kv_v(kv, layer, p) + (size_t)g * hd;
        for (int d = 0; d < hd; d++) o[d] = fmaf(sc[p], vp[d], o[d]);
    }
}

typedef struct ap_run {
    int t0, n;          /* its tokens t0 .. t0+n-1 (of the call) */
    int nblk;           /* 16-key blocks up to its last position */
    size_t kt;          /* offset of its packed keys (floats), per kv head nblk*hd*16 */
} ap_run;

typedef struct ap_job {
    float *out;
    const float *q;
    const gr_attn_batch *ab;
    const int *tok;     /* the prefill tokens, in order */
    const ap_run *runs;
    int nruns, layer, n_heads, n_kv_heads, hd, wide, units, tasks;
    const int *unit0;   /* first unit of each run (nruns + 1) */
    float *kt, *scratch;
    size_t slot;        /* floats per task */
} ap_job;

static void pack_task(void *ctx, int task) {
#if GR_CPU_X86
    ap_job *j = ctx;
    const ap_run *r = &j->runs[task / j->n_kv_heads];
    int g = task % j->n_kv_heads;
    gr_ap_pack_k_avx512(j->kt + r->kt + (size_t)g * r->nblk * j->hd * 16, j->ab->kv[j->tok[r->t0]], j->layer,
                        g, j->hd, r->nblk);
#else
    (void)ctx, (void)task;
#endif
}

static void unit_run(ap_job *j, int u, float *S) {
    int ri = 0;
    while (j->unit0[ri + 1] <= u) ri++;
    const ap_run *r = &j->runs[ri];
    int tiles = (r->n + TQ - 1) / TQ, k = u - j->unit0[ri];
    int h = k / tiles, i0 = k % tiles * TQ, m = r->n - i0 < TQ ? r->n - i0 : TQ;
    int hd = j->hd, g = h / (j->n_heads / j->n_kv_heads), layer = j->layer;
    const gr_kv *kv = j->ab->kv[j->tok[r->t0]];
    int ld = (int)(j->slot / TQ);
    const float *qr[TQ];
    float *orow[TQ];
    int P[TQ];
    for (int i = 0; i < m; i++) {
        int t = j->tok[r->t0 + i0 + i];
        qr[i] = j->q + ((size_t)t * j->n_heads + h) * hd;
        orow[i] = j->out + ((size_t)t * j->n_heads + h) * hd;
        P[i] = j->ab->pos[t];
    }
#if GR_CPU_X86
    if (j->wide) {
        int nblk = P[m - 1] / 16 + 1; /* positions rise along the run */
        gr_ap_scores_avx512(S, ld, qr, m, j->kt + r->kt + (size_t)g * r->nblk * hd * 16, hd, nblk,
                            1.0f / sqrtf((float)hd));
        for (int i = 0; i < m; i++) gr_ap_softmax_avx512(S + (size_t)i * ld, P[i]);
        for (int i = 0; i < m; i += GR_AP_PV) {
            const float *a[GR_AP_PV];
            int mm = m - i < GR_AP_PV ? m - i : GR_AP_PV;
            for (int z = 0; z < mm; z++) a[z] = S + (size_t)(i + z) * ld;
            gr_ap_pv_avx512(orow + i, a, P + i, mm, kv, layer, g, hd);
        }
        return;
    }
#endif
    for (int i = 0; i < m; i++) row_portable(orow[i], qr[i], kv, layer, g, hd, P[i], S);
}

static void unit_task(void *ctx, int task) {
    ap_job *j = ctx;
    int u0 = (int)((long)j->units * task / j->tasks), u1 = (int)((long)j->units * (task + 1) / j->tasks);
    float *S = j->scratch + (size_t)task * j->slot;
    for (int u = u0; u < u1; u++) unit_run(j, u, S);
}

void gr_cpu_attention_prefill(gr_backend *b, float *out, const float *q, const gr_attn_batch *ab,
                              const unsigned char *dec, int layer, int n_heads, int n_kv_heads, int hd) {
    /* first pass: how many prefill tokens and runs, the packed keys' size */
    int np = 0, nruns = 0, maxlen = 1, last = -1;
    size_t ktf = 0;
    for (int t = 0; t < ab->n; t++) {
        if (dec && dec[t]) continue;
        int cont = last >= 0 && ab->kv[t] == ab->kv[last] && ab->pos[t] == ab->pos[last] + 1;
        if (!cont && last >= 0) ktf += (size_t)(ab->pos[last] / 16 + 1);
        nruns += !cont;
        np++;
        last = t;
        if (ab->pos[t] + 1 > maxlen) maxlen = ab->pos[t] + 1;
    }
    if (np == 0) return;
    ktf = (ktf + (size_t)(ab->pos[last] / 16 + 1)) * (size_t)n_kv_heads * (size_t)hd * 16;
    int wide = 0;
#if GR_CPU_X86
    wide = gr_cpu_isa >= GR_ISA_AVX512 && hd % 16 == 0;
#endif
    /* one buffer: the packed keys, the runs, the token list, the first units */
    size_t kbytes = wide ? sizeof(float) * ktf : 0;
    char *base = gr_cpu_buffer(b, GR_CPU_BUF_ATT_PREFILL,
                               kbytes + sizeof(ap_run) * (size_t)nruns + sizeof(int) * ((size_t)np + (size_t)nruns + 1));
    float *kt = wide ? (float *)(void *)base : NULL;
    ap_run *runs = (ap_run *)(void *)(base + kbytes);
    int *tok = (int *)(void *)(runs + nruns), *unit0 = tok + np;
    np = nruns = 0;
    for (int t = 0; t < ab->n; t++) {
        if (dec && dec[t]) continue;
        if (nruns && ab->kv[t] == ab->kv[tok[np - 1]] && ab->pos[t] == ab->pos[tok[np - 1]] + 1)
            runs[nruns - 1].n++;
        else
            runs[nruns++] = (ap_run){np, 1, 0, 0};
        tok[np++] = t;
    }
    unit0[0] = 0;
    ktf = 0;
    for (int r = 0; r < nruns; r++) {
        runs[r].nblk = ab->pos[tok[runs[r].t0 + runs[r].n - 1]] / 16 + 1;
        runs[r].kt = ktf;
        ktf += (size_t)n_kv_heads * runs[r].nblk * hd * 16;
        unit0[r + 1] = unit0[r] + n_heads * ((runs[r].n + TQ - 1) / TQ);
    }
    int units = unit0[nruns], tasks = 4 * b->n_threads;
    if (tasks > units) tasks = units;
    size_t slot = (size_t)TQ * (size_t)((maxlen + 31) / 32 * 32);
    float *scratch = gr_cpu_scratch(b, (size_t)tasks * slot);
    ap_job j = {out, q, ab, tok, runs, nruns, layer, n_heads, n_kv_heads, hd, wide, units, tasks, unit0, kt,
                scratch, slot};
    if (wide) {
        double w = 0;
        for (int r = 0; r < nruns; r++) w += (double)runs[r].nblk * 16 * hd;
        gr_cpu_run_tasks(b, pack_task, &j, nruns * n_kv_heads, w * n_kv_heads);
    }
    double work = 0;
    for (int r = 0; r < nruns; r++) work += (double)runs[r].n * runs[r].nblk * 16 * 2 * hd * n_heads;
    gr_cpu_run_tasks(b, unit_task, &j, tasks, work);
}
