/* The attention op: every query token against its own cache. Decode rows
 * (backend.h decode_rows) decode-style, one task per (token, head): scores,
 * softmax with glibc's expf, weighted sum of values; the row kernel is
 * attention_avx2.c's at level avx2 and above (isa.h), the portable one below
 * otherwise (declared in attention.h). Prefill rows go to the blocked prefill
 * attention (attention_prefill.c), whose one order per row differs from this
 * one's; so, as in the matmul, a row's result depends on its kind and values
 * only. */
#include "attention.h"
#include "attention_prefill.h"
#include "cpu_backend.h"
#include "cpu_expf.h"
#include "forward.h"
#include "matmul_rows.h"
#include <math.h>
#include <string.h>

void gr_att_row_scalar(float *o, const float *qv, const gr_kv *kv, int layer, int kvh, int hd, int P, float *sc) {
    float scale = 1.0f / sqrtf((float)hd), mx = -INFINITY;
    int p = 0;
    for (; p <= P; p++) {
        const float *kp = gr_kv_k(kv, layer, p) + kvh * hd;
        float s = gr_dot_f32_scalar(qv, kp, hd) * scale;
        sc[p] = s;
        if (s > mx) mx = s;
    }
    /* gr_expf_n returns expf's values: the same weights as one expf per score */
    for (p = 0; p <= P; p++) sc[p] -= mx;
    gr_expf_n(sc, P + 1);
    float sum = 0;
    for (p = 0; p <= P; p++) sum += sc[p];
    memset(o, 0, sizeof(float) * (size_t)hd);
    float inv = 1.0f / sum;
    for (p = 0; p <= P; p++) {
        const float *vv = gr_kv_v(kv, layer, p) + kvh * hd;
        float a = sc[p] * inv;
        for (int i = 0; i < hd; i++) o[i] += a * vv[i];
    }
}

typedef struct att_job {
    const int *tok; /* the decode rows */
    float *out;
    const float *q;
    const gr_attn_batch *ab;
    int layer, n_heads, n_kv_heads, hd;
    float *scratch; /* per task: (max_pos+1) scores */
    int max_len;
} att_job;

static void att_task(void *ctx, int task) {
    att_job *j = ctx;
    int t = j->tok[task / j->n_heads], h = task % j->n_heads;
    int kvh = h / (j->n_heads / j->n_kv_heads), hd = j->hd;
    const float *qv = j->q + ((size_t)t * j->n_heads + h) * hd;
    float *o = j->out + ((size_t)t * j->n_heads + h) * hd;
    float *sc = j->scratch + (size_t)task * (size_t)j->max_len;
#if GR_CPU_X86
    if (gr_cpu_isa >= GR_ISA_AVX2) {
        gr_att_row_avx2(o, qv, j->ab->kv[t], j->layer, kvh, hd, j->ab->pos[t], sc);
        return;
    }
#endif
    gr_att_row_scalar(o, qv, j->ab->kv[t], j->layer, kvh, hd, j->ab->pos[t], sc);
}

void gr_cpu_attention(gr_backend *b, float *out, const float *q, const gr_attn_batch *ab,
                      int layer, int n_heads, int n_kv_heads, int hd) {
    const unsigned char *dec = b->decode_rows;
    gr_cpu_attention_prefill(b, out, q, ab, dec, layer, n_heads, n_kv_heads, hd);
    int nd = 0, max_len = 1;
    for (int t = 0; dec && t < ab->n; t++)
        if (dec[t]) {
            nd++;
            if (ab->pos[t] + 1 > max_len) max_len = ab->pos[t] + 1;
        }
    if (nd == 0) return;
    int *tok = gr_cpu_buffer(b, GR_CPU_BUF_SPLIT, sizeof(int) * (size_t)nd);
    nd = 0;
    for (int t = 0; t < ab->n; t++)
        if (dec[t]) tok[nd++] = t;
    int tasks = nd * n_heads;
    size_t need = (size_t)tasks * (size_t)max_len;
    att_job j = {tok, out, q, ab, layer, n_heads, n_kv_heads, hd, gr_cpu_scratch(b, need), max_len};
    gr_cpu_run_tasks(b, att_task, &j, tasks, 2.0 * (double)tasks * (double)max_len * (double)hd);
}
