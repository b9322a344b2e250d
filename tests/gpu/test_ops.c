/* Every CUDA op against the CPU backend on the same inputs (as llama.cpp's
 * test-backend-ops): the normalised mean squared error
 *     NMSE = sum (gpu - cpu)^2 / sum cpu^2
 * must stay under a threshold per op, set from what the GPU's number formats
 * allow: exact copies 0, f32 element-wise ops 1e-10, weights and activations
 * rounded to bf16 (2^-9 relative, NMSE ~ 1e-6 per factor) 5e-5, attention with
 * bf16 K/V against the CPU on the same bf16-rounded K/V 1e-8. Sampling: greedy
 * tokens equal, logprobs within 1e-4, watched logits exact, and the sampled
 * frequencies of a small vocabulary within 0.03 of the kept set's renormalised
 * probabilities (vLLM's temperature -> top-k -> top-p), never outside it.
 *
 * Prints "ok NAME ..." / "not ok NAME ..." per case; exits 77 when there is no
 * CUDA device (tests/gpu/run.sh reports that as "no GPU"). GR_TEST_DEVICE=cpu
 * runs the same comparisons with a second CPU backend in the GPU's place (a dry
 * run of this program's own plumbing on a machine without a GPU; sampling, a
 * device-only op, is then skipped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "forward.h"
#include "kv_cache.h"
#include "quant.h"
#include "sample.h"

static int failures, cases;
/* Host weights stay allocated until the end: the CUDA backend keys its device
 * copies by host address, and a freed block's address comes back. */
static void *keep[64];
static int n_keep;
static void keep_alive(void *p) {
    if (n_keep < 64) keep[n_keep++] = p;
    else abort();
}
static gr_backend *cpu, *gpu;

static uint64_t rs = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (float)((double)(rs >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}
static float *randv(size_t n, float scale) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) v[i] = frand() * scale;
    return v;
}
static void *up(const void *h, size_t bytes) {
    void *d = gpu->dev_alloc(gpu, bytes);
    if (!d) { fprintf(stderr, "out of GPU memory\n"); exit(1); }
    gpu->upload(gpu, d, h, bytes);
    return d;
}
static float *down(const void *d, size_t n) {
    float *h = malloc(sizeof(float) * (n ? n : 1));
    gpu->download(gpu, h, d, sizeof(float) * n);
    return h;
}

static void report(const char *name, const float *ref, const float *got, size_t n, double thr) {
    double num = 0, den = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        if (fabs(d) > worst || d != d) worst = d != d ? INFINITY : fabs(d);
    }
    double nmse = den > 0 ? num / den : num;
    cases++;
    int ok = nmse <= thr && worst == worst && worst != INFINITY;
    if (!ok) failures++;
    printf("%s %s: nmse %.3g (max |diff| %.3g) threshold %.1g\n", ok ? "ok" : "not ok", name, nmse, worst, thr);
}

static void check(const char *name, int cond, const char *detail) {
    cases++;
    if (!cond) failures++;
    printf("%s %s%s%s\n", cond ? "ok" : "not ok", name, detail ? ": " : "", detail ? detail : "");
}

/* ---- matrices of every weight type ------------------------------------------ */
static const uint16_t f16_scales[4] = {0x2000, 0x2400, 0x2800, 0x2a00}; /* 2^-9 .. 0.046875 */

static gr_tensor make_tensor(int type, int64_t rows, int64_t cols, void **owned) {
    gr_tensor t = {type, rows, cols, 0, NULL};
    size_t nb = (size_t)(cols / 32);
    unsigned char *p;
    switch (type) {
    case GR_F32: t.row_bytes = 4 * (size_t)cols; break;
    case GR_F16: case GR_BF16: t.row_bytes = 2 * (size_t)cols; break;
    case GR_Q8_0: t.row_bytes = 34 * nb; break;
    case GR_Q4_0: t.row_bytes = 18 * nb; break;
    case GR_Q4_1: t.row_bytes = 20 * nb; break;
    }
    p = malloc(t.row_bytes * (size_t)rows);
    for (int64_t r = 0; r < rows; r++) {
        unsigned char *row = p + t.row_bytes * (size_t)r;
        for (int64_t c = 0; c < cols && type <= GR_F16; c++) {
            float v = frand() * 0.1f;
            if (type == GR_F32) memcpy(row + 4 * c, &v, 4);
            else { uint16_t h = f16_scales[rs & 3] ^ ((rs >> 5) & 0x8000u); memcpy(row + 2 * c, &h, 2); }
        }
        for (int64_t c = 0; c < cols && type == GR_BF16; c++) {
            uint16_t h = gr_f32_to_bf16(frand() * 0.1f);
            memcpy(row + 2 * c, &h, 2);
        }
        for (size_t b = 0; b < nb && type >= GR_Q4_0 && type != GR_BF16; b++) {
            size_t bb = type == GR_Q8_0 ? 34 : type == GR_Q4_0 ? 18 : 20;
            unsigned char *blk = row + bb * b;
            uint16_t d = f16_scales[(unsigned)(frand() * 2 + 2) & 3];
            memcpy(blk, &d, 2);
            size_t off = 2;
            if (type == GR_Q4_1) { uint16_t m = 0xa400; memcpy(blk + 2, &m, 2); off = 4; }
            for (size_t i = off; i < bb; i++) blk[i] = (unsigned char)(rs = rs * 6364136223846793005ull + 1, rs >> 56);
        }
    }
    t.data = p;
    *owned = p;
    return t;
}

static void test_matmul(void) {
    const int types[] = {GR_F32, GR_F16, GR_BF16, GR_Q8_0, GR_Q4_0, GR_Q4_1};
    const char *names[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1"};
    const int ns[] = {1, 5, 64, 300};
    for (int ti = 0; ti < 6; ti++) {
        void *owned;
        gr_tensor w = make_tensor(types[ti], 384, 512, &owned);
        for (int ni = 0; ni < 4; ni++) {
            int n = ns[ni];
            float *x = randv((size_t)n * 512, 1.0f), *y = malloc(sizeof(float) * (size_t)n * 384);
            cpu->exact = 1;
            cpu->matmul(cpu, y, x, n, &w);
            float *xd = up(x, sizeof(float) * (size_t)n * 512), *yd = gpu->dev_alloc(gpu, sizeof(float) * (size_t)n * 384);
            gpu->matmul(gpu, yd, xd, n, &w);
            float *g = down(yd, (size_t)n * 384);
            char name[64];
            snprintf(name, sizeof name, "matmul_%s_n%d", names[ti], n);
            report(name, y, g, (size_t)n * 384, 5e-5);
            gpu->dev_free(gpu, xd); gpu->dev_free(gpu, yd);
            free(x); free(y); free(g);
        }
        keep_alive(owned);
    }
}

static void test_elementwise(void) {
    int n = 37, dim = 576;
    size_t N = (size_t)n * dim;
    float *x = randv(N, 2.0f), *w = randv((size_t)dim, 1.0f), *ref = malloc(sizeof(float) * N);
    float *xd = up(x, sizeof(float) * N), *od = gpu->dev_alloc(gpu, sizeof(float) * N);
    cpu->rmsnorm(cpu, ref, x, w, n, dim, 1e-5f);
    gpu->rmsnorm(gpu, od, xd, w, n, dim, 1e-5f);
    float *g = down(od, N);
    report("rmsnorm", ref, g, N, 1e-10);
    free(g);
    gpu->rmsnorm(gpu, xd, xd, w, n, dim, 1e-5f); /* in place */
    g = down(xd, N);
    report("rmsnorm_in_place", ref, g, N, 1e-10);
    free(g);
    /* swiglu and add */
    float *u = randv(N, 3.0f), *ud = up(u, sizeof(float) * N);
    gpu->upload(gpu, xd, x, sizeof(float) * N);
    cpu->swiglu(cpu, ref, x, u, (int64_t)N);
    gpu->swiglu(gpu, od, xd, ud, (int64_t)N);
    g = down(od, N);
    report("swiglu", ref, g, N, 1e-10);
    free(g);
    memcpy(ref, x, sizeof(float) * N);
    cpu->add(cpu, ref, u, (int64_t)N);
    gpu->add(gpu, xd, ud, (int64_t)N);
    g = down(xd, N);
    report("add", ref, g, N, 0);
    free(g);
    /* rope with llama3 scaling at long positions: Llama-3.2's rope settings */
    gr_model_config c = {0};
    c.head_dim = 64;
    c.rope_theta = 500000.0f;
    c.rope_llama3 = 1;
    c.rope_factor = 32.0f;
    c.rope_low_freq = 1.0f;
    c.rope_high_freq = 4.0f;
    c.rope_orig_max = 8192;
    float *inv = malloc(sizeof(float) * 32);
    keep_alive(inv);
    gr_rope_inv_freq(&c, inv);
    int heads = 8, pos[37];
    for (int t = 0; t < n; t++) pos[t] = t * 311;
    size_t R = (size_t)n * heads * 64;
    float *q = randv(R, 1.0f), *qd = up(q, sizeof(float) * R);
    int *pd = up(pos, sizeof pos);
    cpu->rope(cpu, q, pos, n, heads, 64, inv);
    gpu->rope(gpu, qd, pd, n, heads, 64, inv);
    g = down(qd, R);
    report("rope_llama3", q, g, R, 1e-9);
    free(g);
    /* embedding: a bf16 table is exact, an f32 one rounds to bf16 */
    void *owned;
    gr_tensor e = make_tensor(GR_BF16, 1000, 256, &owned);
    int toks[37];
    for (int t = 0; t < n; t++) toks[t] = (t * 97) % 1000;
    int *td = up(toks, sizeof toks);
    cpu->embedding(cpu, ref, &e, toks, n);
    gpu->embedding(gpu, od, &e, td, n);
    g = down(od, (size_t)n * 256);
    report("embedding_bf16", ref, g, (size_t)n * 256, 0);
    free(g);
    keep_alive(owned);
    e = make_tensor(GR_F32, 1000, 256, &owned);
    cpu->embedding(cpu, ref, &e, toks, n);
    gpu->embedding(gpu, od, &e, td, n);
    g = down(od, (size_t)n * 256);
    report("embedding_f32_as_bf16", ref, g, (size_t)n * 256, 5e-5);
    free(g);
    keep_alive(owned);
    gpu->dev_free(gpu, xd); gpu->dev_free(gpu, od); gpu->dev_free(gpu, ud); gpu->dev_free(gpu, qd);
    gpu->dev_free(gpu, pd); gpu->dev_free(gpu, td);
    keep_alive(w);
    free(x); free(ref); free(u); free(q);
}

/* Attention over paged pools built the same way on both backends: sequences of
 * several lengths, K/V written by kv_store (rounded to bf16 first, so that both
 * read the same values), queries at every position (prefill) and at the last
 * (decode), sequences interleaved in the batch. */
static void test_attention_case(int n_heads, int n_kv, int hd) {
    const int L = 2, layer = 1, n_seq = 3, lens[3] = {5, 40, 300};
    int kvd = n_kv * hd;
    gr_kv_pool *pc = gr_kv_pool_new(cpu, L, kvd, 0), *pg = gr_kv_pool_new(gpu, L, kvd, 0);
    gr_kv *kc[3], *kg[3];
    int max_blocks = 0;
    for (int s = 0; s < n_seq; s++) {
        kc[s] = gr_kv_new_in(pc, NULL);
        kg[s] = gr_kv_new_in(pg, NULL);
        gr_kv_try_reserve(kc[s], lens[s]);
        gr_kv_try_reserve(kg[s], lens[s]);
        if (kc[s]->n_blocks > max_blocks) max_blocks = kc[s]->n_blocks;
        for (int b = 0; b < kc[s]->n_blocks; b++)
            if (kc[s]->blocks[b] != kg[s]->blocks[b]) check("attention_same_blocks", 0, "block ids differ");
    }
    int total = 0;
    for (int s = 0; s < n_seq; s++) total += lens[s];
    /* K/V rows for every (sequence, position), bf16-rounded */
    float *k = randv((size_t)total * kvd, 1.0f), *v = randv((size_t)total * kvd, 1.0f);
    for (size_t i = 0; i < (size_t)total * kvd; i++) {
        k[i] = gr_bf16_to_f32(gr_f32_to_bf16(k[i] * 2.0f));
        v[i] = gr_bf16_to_f32(gr_f32_to_bf16(v[i]));
    }
    int *slot_c = malloc(sizeof(int) * (size_t)total), *slot_g = malloc(sizeof(int) * (size_t)total);
    int *pos = malloc(sizeof(int) * (size_t)total), *seq = malloc(sizeof(int) * (size_t)total);
    gr_kv **tkv = malloc(sizeof(gr_kv *) * (size_t)total);
    int t = 0;
    for (int s = 0; s < n_seq; s++)
        for (int p = 0; p < lens[s]; p++, t++) {
            slot_c[t] = gr_kv_slot(kc[s], p);
            slot_g[t] = gr_kv_slot(kg[s], p);
            pos[t] = p;
            seq[t] = s;
            tkv[t] = kc[s];
        }
    for (int s = 0; s < n_seq; s++) kc[s]->len = kg[s]->len = lens[s];
    cpu->kv_store(cpu, &pc->lay, layer, k, v, slot_c, total);
    float *kd = up(k, sizeof(float) * (size_t)total * kvd), *vd = up(v, sizeof(float) * (size_t)total * kvd);
    int *sd = up(slot_g, sizeof(int) * (size_t)total);
    gpu->kv_store(gpu, &pg->lay, layer, kd, vd, sd, total);
    int *bt = calloc((size_t)n_seq * max_blocks, sizeof(int));
    for (int s = 0; s < n_seq; s++) memcpy(bt + s * max_blocks, kc[s]->blocks, sizeof(int) * (size_t)kc[s]->n_blocks);
    int *btd = up(bt, sizeof(int) * (size_t)n_seq * max_blocks), *posd = up(pos, sizeof(int) * (size_t)total),
        *seqd = up(seq, sizeof(int) * (size_t)total);
    size_t Q = (size_t)total * n_heads * hd;
    float *q = randv(Q, 1.0f), *qd = up(q, sizeof(float) * Q), *ref = malloc(sizeof(float) * Q);
    float *od = gpu->dev_alloc(gpu, sizeof(float) * Q);
    gr_attn_batch ac = {total, tkv, pos, pos, seq, bt, n_seq, max_blocks, 299, pc->lay};
    gr_attn_batch ag = {total, tkv, pos, posd, seqd, btd, n_seq, max_blocks, 299, pg->lay};
    cpu->attention(cpu, ref, q, &ac, layer, n_heads, n_kv, hd);
    gpu->attention(gpu, od, qd, &ag, layer, n_heads, n_kv, hd);
    float *g = down(od, Q);
    char name[96];
    snprintf(name, sizeof name, "attention_prefill_h%d_kv%d_hd%d", n_heads, n_kv, hd);
    report(name, ref, g, Q, 1e-8);
    free(g);
    /* decode: the last position of each sequence only, in reverse order */
    int dpos[3], dseq[3];
    gr_kv *dkv[3];
    for (int i = 0; i < n_seq; i++) {
        int s = n_seq - 1 - i;
        dpos[i] = lens[s] - 1;
        dseq[i] = s;
        dkv[i] = kc[s];
    }
    int *dposd = up(dpos, sizeof dpos), *dseqd = up(dseq, sizeof dseq);
    gr_attn_batch dc = {n_seq, dkv, dpos, dpos, dseq, bt, n_seq, max_blocks, 299, pc->lay};
    gr_attn_batch dg = {n_seq, dkv, dpos, dposd, dseqd, btd, n_seq, max_blocks, 299, pg->lay};
    size_t DQ = (size_t)n_seq * n_heads * hd;
    cpu->attention(cpu, ref, q, &dc, layer, n_heads, n_kv, hd);
    gpu->attention(gpu, od, qd, &dg, layer, n_heads, n_kv, hd);
    g = down(od, DQ);
    snprintf(name, sizeof name, "attention_decode_h%d_kv%d_hd%d", n_heads, n_kv, hd);
    report(name, ref, g, DQ, 1e-8);
    free(g);
    /* a call as continuous batching makes them: prompt parts that start after
     * position 0 (after a shared prefix), with a decode token between them:
     * sequence 1 at 17..39 (query tiles of 16 + 7), sequence 0 at 4, sequence 2
     * at 250..299 (the keys of 8 tiles of 32 and a partial one) */
    enum { NCH = 23 + 1 + 50 };
    int cpos[NCH], cseq[NCH];
    gr_kv *ckv[NCH];
    for (int i = 0; i < NCH; i++) {
        int s = i < 23 ? 1 : i == 23 ? 0 : 2;
        cseq[i] = s;
        cpos[i] = i < 23 ? 17 + i : i == 23 ? 4 : 250 + (i - 24);
        ckv[i] = kc[s];
    }
    int *cposd = up(cpos, sizeof cpos), *cseqd = up(cseq, sizeof cseq);
    gr_attn_batch cc = {NCH, ckv, cpos, cpos, cseq, bt, n_seq, max_blocks, 299, pc->lay};
    gr_attn_batch cg = {NCH, ckv, cpos, cposd, cseqd, btd, n_seq, max_blocks, 299, pg->lay};
    size_t CQ = (size_t)NCH * n_heads * hd;
    cpu->attention(cpu, ref, q, &cc, layer, n_heads, n_kv, hd);
    gpu->attention(gpu, od, qd, &cg, layer, n_heads, n_kv, hd);
    g = down(od, CQ);
    snprintf(name, sizeof name, "attention_chunk_h%d_kv%d_hd%d", n_heads, n_kv, hd);
    report(name, ref, g, CQ, 1e-8);
    free(g);
    void *dd[] = {kd, vd, sd, btd, posd, seqd, qd, od, dposd, dseqd, cposd, cseqd};
    for (size_t i = 0; i < sizeof dd / sizeof *dd; i++) gpu->dev_free(gpu, dd[i]);
    for (int s = 0; s < n_seq; s++) { gr_kv_free(kc[s]); gr_kv_free(kg[s]); }
    gr_kv_pool_release(pc);
    gr_kv_pool_release(pg);
    free(k); free(v); free(slot_c); free(slot_g); free(pos); free(seq); free(tkv); free(bt); free(q); free(ref);
}

/* ---- sampling ----------------------------------------------------------------- */
static void test_sampling(void) {
    const int n = 6, V = 50000;
    float *lg = randv((size_t)n * V, 3.0f);
    lg[2 * V + 7] = lg[2 * V + 9] = 20.0f; /* a tie: the first index wins */
    float *ld = up(lg, sizeof(float) * (size_t)n * V);
    gr_sample_row rows[6];
    for (int i = 0; i < n; i++) rows[i] = (gr_sample_row){0.0f, 1.0f, 0, 1, (uint64_t)i, 0};
    int watch[3] = {3, 49999, 7}, tok[6];
    float lp[6], wo[18];
    gpu->sample(gpu, ld, n, V, rows, watch, 3, tok, lp, wo);
    gr_sample_buf sb;
    gr_sample_buf_init(&sb, V);
    gr_sampler greedy = {0.0f, 1.0f, 0};
    int same = 1, wexact = 1;
    double lpw = 0;
    for (int i = 0; i < n; i++) {
        float l;
        int c = gr_sample(lg + (size_t)i * V, V, &greedy, NULL, &sb, &l);
        same &= c == tok[i];
        if (fabs(l - lp[i]) > lpw) lpw = fabs(l - lp[i]);
        for (int w = 0; w < 3; w++) wexact &= wo[i * 3 + w] == lg[(size_t)i * V + watch[w]];
    }
    char msg[128];
    check("sample_greedy_equals_cpu", same && tok[2] == 7, NULL);
    snprintf(msg, sizeof msg, "max |diff| %.3g", lpw);
    check("sample_logprob", lpw < 1e-4, msg);
    check("sample_watch_logits_exact", wexact, NULL);
    gr_sample_buf_free(&sb);
    gpu->dev_free(gpu, ld);
    free(lg);
    /* distribution: 8 tokens, T 0.7, top-k 5, top-p 0.8, 4000 draws (steps) */
    enum { SV = 8, DRAWS = 4000 };
    float small[SV] = {2.0f, 1.5f, 1.4f, 0.2f, 1.0f, -1.0f, 0.9f, 0.0f};
    float T = 0.7f, P = 0.8f;
    int K = 5;
    /* expected kept set and probabilities, as lib/sample.c computes them */
    int order[SV];
    for (int i = 0; i < SV; i++) order[i] = i;
    for (int i = 0; i < SV; i++)
        for (int j = i + 1; j < SV; j++)
            if (small[order[j]] > small[order[i]]) { int x = order[i]; order[i] = order[j]; order[j] = x; }
    double z[SV], tot = 0, above = 0, mass = 0, expect[SV] = {0};
    for (int r = 0; r < K; r++) tot += (z[r] = exp((small[order[r]] - small[order[0]]) / T));
    int kept = 0;
    while (kept < K && (kept == 0 || above < P)) above += z[kept++] / tot;
    for (int r = 0; r < kept; r++) mass += z[r];
    for (int r = 0; r < kept; r++) expect[order[r]] = z[r] / mass;
    float *rowsl = malloc(sizeof(float) * DRAWS * SV);
    gr_sample_row *sr = malloc(sizeof *sr * DRAWS);
    for (int d = 0; d < DRAWS; d++) {
        memcpy(rowsl + d * SV, small, sizeof small);
        sr[d] = (gr_sample_row){T, P, K, 42, 7, (uint64_t)d};
    }
    float *sd = up(rowsl, sizeof(float) * DRAWS * SV);
    int *dt = malloc(sizeof(int) * DRAWS);
    gpu->sample(gpu, sd, DRAWS, SV, sr, NULL, 0, dt, NULL, NULL);
    int cnt[SV] = {0}, outside = 0;
    for (int d = 0; d < DRAWS; d++) {
        cnt[dt[d]]++;
        outside += expect[dt[d]] == 0;
    }
    double worst = 0;
    for (int i = 0; i < SV; i++) {
        double f = (double)cnt[i] / DRAWS;
        if (fabs(f - expect[i]) > worst) worst = fabs(f - expect[i]);
    }
    snprintf(msg, sizeof msg, "%d kept, max |freq - p| %.3f, %d outside", kept, worst, outside);
    check("sample_topk_topp_distribution", worst < 0.03 && outside == 0, msg);
    /* the draw depends on (seed, stream, step) only: the same rows reversed */
    for (int d = 0; d < DRAWS / 2; d++) { gr_sample_row x = sr[d]; sr[d] = sr[DRAWS - 1 - d]; sr[DRAWS - 1 - d] = x; }
    int *dt2 = malloc(sizeof(int) * DRAWS), same2 = 1;
    gpu->sample(gpu, sd, DRAWS, SV, sr, NULL, 0, dt2, NULL, NULL);
    for (int d = 0; d < DRAWS; d++) same2 &= dt2[d] == dt[DRAWS - 1 - d];
    check("sample_independent_of_row_order", same2, NULL);
    gpu->dev_free(gpu, sd);
    free(rowsl); free(sr); free(dt); free(dt2);
}

int main(void) {
    gr_err err;
    const char *dev = getenv("GR_TEST_DEVICE");
    gpu = gr_backend_open(dev && *dev ? dev : "cuda", 0, &err);
    if (!gpu) {
        printf("# skip: %s\n", err.msg);
        return 77;
    }
    cpu = gr_backend_cpu(0);
    cpu->exact = 1; /* quantized matmuls on the CPU: f32 activations */
    if (gpu->host_memory) gpu->exact = 1; /* a CPU stand-in (the ops here are CUDA's bf16 ones) */
    test_elementwise();
    test_matmul();
    test_attention_case(8, 2, 64);   /* vectorised K loads, GQA 4 */
    test_attention_case(9, 3, 64);   /* SmolLM2's heads */
    test_attention_case(4, 4, 128);  /* 8B head size, no GQA */
    test_attention_case(3, 1, 10);   /* odd head size: the scalar path */
    test_attention_case(32, 8, 64);  /* LLaMA-3.2-1B's heads: GQA 4 */
    test_attention_case(2, 1, 160);  /* head_dim > 128: prefill through attention.cu's kernel */
    if (gpu->sample) test_sampling();
    else printf("# skip sampling: %s samples on the host\n", gpu->name);
    printf("%d passed, %d failed\n", cases - failures, failures);
    gr_backend_free(gpu);
    gr_backend_free(cpu);
    for (int i = 0; i < n_keep; i++) free(keep[i]);
    return failures ? 1 : 0;
}
