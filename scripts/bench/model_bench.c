/* Model benchmark (built and run by scripts/bench-model, not a test):
 *   limits   FP32 FMA peaks on THREADS threads (AVX2 and AVX-512, 0 where
 *            absent) and the read bandwidth on THREADS threads (cpu_limits.c);
 *            decode is divided by the read bandwidth (weight bytes per token
 *            read once), prefill's matmul work by the widest FMA peak
 *   prefill  tokens/s for one prompt of P tokens (best of 3 after a warm-up pass)
 *   decode   tokens/s at batch 1 (N new tokens after a short prompt)
 *   batch    records/s for R records of the benchmark form, T new tokens each,
 *            --batch B, shared guard prefix reused
 * BENCH_EXACT=1 runs the backend in exact mode (f32 activations for quantized weights).
 * Usage: model_bench MODEL THREADS P N R T B; model_bench --describe prints the
 * CPU and the kernel paths (gr_cpu_describe). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include "forward.h"
#include "generate.h"
#include "guard_prompt.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double cpu_fma_peak_gflops(int T, int width);
double cpu_read_gbps(int T);

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--describe")) {
        printf("%s\n", gr_cpu_describe());
        return 0;
    }
    if (argc < 8) {
        fprintf(stderr, "usage: model_bench MODEL THREADS P N R T B\n");
        return 2;
    }
    int threads = atoi(argv[2]), P = atoi(argv[3]), N = atoi(argv[4]), R = atoi(argv[5]),
        T = atoi(argv[6]), B = atoi(argv[7]);
    gr_err err;
    double t = now();
    gr_model *m = gr_model_load(argv[1], &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("load_s %.2f\n", now() - t);
    /* bytes of weights read per decoded token: every matrix once */
    double wbytes = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const gr_layer *L = &m->layers[l];
        const gr_tensor *ts[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) wbytes += (double)ts[i]->rows * (double)ts[i]->row_bytes;
    }
    wbytes += (double)m->lm_head.rows * (double)m->lm_head.row_bytes;
    printf("weight_MB_per_token %.1f\n", wbytes / 1e6);
    /* prefill work: 2 flops per weight of the layer matmuls per token (the
     * head runs for the last token only), plus attention's QK^T and PV over
     * the causal prompt (2 * 2 * P/2 * heads * head_dim per layer per token) */
    double wflops = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const gr_layer *L = &m->layers[l];
        const gr_tensor *ts[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) wflops += 2.0 * (double)ts[i]->rows * (double)ts[i]->cols;
    }
    /* all weights: the token embedding too when the head is not tied to it */
    double wall = wbytes + (m->lm_head.data == m->tok_emb.data ? 0 : (double)m->tok_emb.rows * (double)m->tok_emb.row_bytes);
    gr_backend *be = gr_backend_cpu(threads);
    /* BENCH_EXACT=1: f32 activations for quantized weights (the pre-integer path) */
    const char *ex = getenv("BENCH_EXACT");
    be->exact = ex && strcmp(ex, "1") == 0;
    gr_ctx *c = gr_ctx_new(m, be);
    int V = m->cfg.vocab_size;
    float *logits = malloc(sizeof(float) * (size_t)V * (size_t)(B > 1 ? B : 1));
    int *prompt = malloc(sizeof(int) * (size_t)P);
    for (int i = 0; i < P; i++) prompt[i] = 100 + (i * 37) % (V - 200);
    /* prefill: one untimed pass (first touch of the buffers, the pool's threads
     * started), then the best of 3 - the llama.cpp peer is timed the same way */
    gr_kv *kv = NULL;
    const int *pp = prompt;
    double tp = 0;
    for (int rep = 0; rep < 4; rep++) {
        kv = gr_kv_new(m, NULL);
        pp = prompt;
        t = now();
        gr_forward(c, &kv, &pp, &P, 1, logits, 0, &err);
        double dt = now() - t;
        if (rep == 1 || (rep > 1 && dt < tp)) tp = dt;
        gr_kv_free(kv);
    }
    kv = NULL;
    printf("prefill_tok_s %.1f\n", P / tp);
    double aflops = 2.0 * P * (double)m->cfg.n_layers * m->cfg.n_heads * m->cfg.head_dim;
    double pgf = P * (wflops + aflops) / tp / 1e9;
    printf("prefill_GFLOPs %.1f\n", pgf);
    /* decode at batch 1 after 8 prompt tokens */
    kv = gr_kv_new(m, NULL);
    int eight = 8;
    gr_forward(c, &kv, &pp, &eight, 1, logits, 0, &err);
    t = now();
    int tok = 5, one = 1;
    for (int i = 0; i < N; i++) {
        const int *tp1 = &tok;
        gr_forward(c, &kv, &tp1, &one, 1, logits, 0, &err);
        tok = 100 + i % 50;
    }
    double td = now() - t;
    printf("decode_tok_s %.2f\n", N / td);
    gr_kv_free(kv);
    /* batch moderation: R records sharing the guard instruction, T new tokens each
     * (no stop: every record generates exactly T) */
    if (R > 0) {
        int ni = 0;
        int *ids[4096];
        gr_gen_req *reqs = calloc((size_t)R, sizeof *reqs);
        int plen = 0;
        int *pref = malloc(sizeof(int) * 200);
        for (int i = 0; i < 120; i++) pref[plen++] = 200 + (i * 7) % 1000; /* ~ the instruction */
        for (int r = 0; r < R; r++) {
            int n = plen + 40 + (r * 13) % 60;
            ids[ni] = malloc(sizeof(int) * (size_t)n);
            memcpy(ids[ni], pref, sizeof(int) * (size_t)plen);
            for (int i = plen; i < n; i++) ids[ni][i] = 300 + (i * 31 + r * 17) % 5000;
            reqs[r].prompt = ids[ni++];
            reqs[r].n_prompt = n;
            reqs[r].stream = (uint64_t)r;
        }
        m->cfg.n_eos = 0;
        gr_gen_opts o = {.sampler = {0, 1, 0}, .max_tokens = T, .max_batch = B,
                         .prefix = pref, .n_prefix = plen};
        t = now();
        if (gr_generate(c, reqs, R, &o, NULL, NULL, &err)) fprintf(stderr, "%s\n", err.msg);
        double tb = now() - t;
        printf("batch_records_s %.3f\nbatch_gen_tok_s %.1f\n", R / tb, (double)R * T / tb);
        /* Peak memory against what it must hold: every weight (mapped, all of it
         * read) and the KV cache of the largest batch in flight (shared prefix once). */
        double kvpt = 2.0 * m->cfg.n_layers * m->cfg.n_kv_heads * m->cfg.head_dim * sizeof(float);
        double kvb = plen * kvpt, best = 0;
        for (int r0 = 0; r0 < R; r0 += B) {
            double s = 0;
            for (int r = r0; r < R && r < r0 + B; r++) s += (reqs[r].n_prompt - plen + T) * kvpt;
            if (s > best) best = s;
        }
        kvb += best;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("weights_MB %.1f\nkv_MB %.1f\npeak_rss_MB %.1f\nrss_over_needed %.3f\n", wall / 1e6,
               kvb / 1e6, ru.ru_maxrss / 1e3, ru.ru_maxrss * 1e3 / (wall + kvb));
        for (int r = 0; r < R; r++) {
            gr_gen_req_free(&reqs[r]);
            free(ids[r]);
        }
        free(reqs);
        free(pref);
    }
    /* after the rest, so its buffers do not count in the peak memory above */
    double rd = cpu_read_gbps(threads);
    double p8 = cpu_fma_peak_gflops(threads, 8), p16 = cpu_fma_peak_gflops(threads, 16);
    double pk = p16 > p8 ? p16 : p8;
    printf("read_GBps %.2f\n", rd);
    printf("fma_peak_avx2_GFLOPs %.1f\nfma_peak_avx512_GFLOPs %.1f\n", p8, p16);
    printf("decode_read_bw_fraction %.3f\n", (N / td) * wbytes / (rd * 1e9));
    printf("prefill_peak_fraction %.3f\n", pk > 0 ? pgf / pk : 0);
    free(prompt);
    free(logits);
    gr_ctx_free(c);
    gr_backend_free(be);
    gr_model_free(m);
    return 0;
}
