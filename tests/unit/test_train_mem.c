/* The training memory plan (lib/train_mem_plan.h) against the allocation code
 * it describes: a counting fake op table drives gr_train_model_alloc,
 * gr_adamw_init_model and gr_tact_reserve (no memory behind the fake's
 * addresses: nothing there touches it) and every category's bytes must equal
 * the plan's; the real CPU table, wrapped to count, trains a tiny model for a
 * step and asks for exactly the plan's bytes too. LLaMA-3.1-8B shapes at
 * sequence 2048, micro-batch 1: with --recompute the CUDA plan fits 141 GB;
 * without it, it does not (and fp32 gradients would not fit even with it). */
#include "test.h"
#include "train_mem_plan.h"
#include "train_model.h"
#include "train_optim.h"
#include <stdint.h>

/* ---- the counting fake ---- */
static int64_t fake_bytes, fake_calls;
static uintptr_t fake_next = (uintptr_t)1 << 40;
static int fake_store16;

static void *fake_take(size_t bytes) {
    fake_bytes += (int64_t)bytes;
    fake_calls++;
    uintptr_t p = fake_next;
    fake_next += (bytes + 4095) / 4096 * 4096 + 4096;
    return (void *)p;
}
static void *fake_alloc(gr_backend *b, size_t bytes) { (void)b; return fake_take(bytes); }
static void *fake_alloc16(gr_backend *b, int64_t n) { (void)b; return fake_take(2 * (size_t)n); }
static void fake_release(gr_backend *b, void *p) { (void)b; (void)p; }
static void fake_sync(gr_backend *b) { (void)b; }
static int fake_s16(gr_backend *b) { (void)b; return fake_store16; }
static void fake_w16(gr_backend *b, const float *m, void *w, int64_t n) { (void)b; (void)m; (void)w; (void)n; }
static const gr_train_ops fake_ops = {.name = "fake", .alloc = fake_alloc, .release = fake_release,
                                      .sync = fake_sync, .storage16 = fake_s16, .alloc16 = fake_alloc16,
                                      .weights16 = fake_w16};

static gr_model_config llama31_8b(void) {
    gr_model_config c;
    memset(&c, 0, sizeof c);
    c.dim = 4096;
    c.hidden_dim = 14336;
    c.n_layers = 32;
    c.n_heads = 32;
    c.n_kv_heads = 8;
    c.head_dim = 128;
    c.vocab_size = 128256;
    c.max_pos = 131072;
    c.norm_eps = 1e-5f;
    c.tie_embeddings = 0;
    return c;
}

/* the fake's bytes for each category against the plan's */
static int fake_matches(const gr_model_config *c, int store16, int n, int n_seq, int recompute, char *why,
                        size_t why_n) {
    gr_tmem_plan p;
    gr_tmem_plan_make(c, store16, n, n_seq, recompute, 0, &p);
    fake_store16 = store16;
    gr_err err;
    int64_t b0 = fake_bytes;
    gr_train_model *m = gr_train_model_alloc(c, NULL, &fake_ops, &err);
    if (!m) return snprintf(why, why_n, "alloc failed: %.200s", err.msg), 0;
    int64_t model = fake_bytes - b0;
    b0 = fake_bytes;
    gr_adamw opt;
    gr_adamw_init_model(&opt, m);
    int64_t moments = fake_bytes - b0;
    b0 = fake_bytes;
    gr_tact *a = gr_tact_new(recompute);
    gr_tact_reserve(a, m, n, n_seq);
    int64_t acts = fake_bytes - b0;
    gr_tact_free(a);
    gr_adamw_free(&opt);
    gr_train_model_free(m);
    int ok = model == p.master + p.weights16 + p.grads && moments == p.moments &&
             acts == p.saved + p.act_scratch + p.index;
    snprintf(why, why_n, "model %lld vs %lld, moments %lld vs %lld, activations %lld vs %lld", (long long)model,
             (long long)(p.master + p.weights16 + p.grads), (long long)moments, (long long)p.moments,
             (long long)acts, (long long)(p.saved + p.act_scratch + p.index));
    return ok;
}

TEST(plan_equals_allocator_8b) {
    gr_model_config c = llama31_8b();
    char why[4096];
    for (int s16 = 0; s16 <= 1; s16++)
        for (int rc = 0; rc <= 1; rc++) CHECK_MSG(fake_matches(&c, s16, 2048, 1, rc, why, sizeof why), "store16 %d recompute %d: %s", s16, rc, why);
    /* several sequences and a size whose slots need rounding */
    CHECK_MSG(fake_matches(&c, 1, 1237, 3, 1, why, sizeof why), "%s", why);
}

TEST(plan_llama31_8b_fits_h200) {
    gr_model_config c = llama31_8b();
    const double H200 = 141e9;
    gr_tmem_plan r, f, w;
    gr_tmem_plan_make(&c, 1, 2048, 1, 1, (int64_t)1 << 30, &r);
    gr_tmem_plan_make(&c, 1, 2048, 1, 0, (int64_t)1 << 30, &f);
    CHECK(r.n_params == 8030261248LL); /* LLaMA-3.1-8B's parameter count */
    gr_tmem_plan_print(stdout, "cuda", &r);
    gr_tmem_plan_print(stdout, "cuda", &f);
    CHECK_MSG((double)r.total <= H200, "with --recompute: %.2f GB", (double)r.total / 1e9);
    CHECK_MSG((double)f.total > H200, "without --recompute: %.2f GB (the docs say it does not fit)",
              (double)f.total / 1e9);
    /* 16 bytes a parameter of model and optimizer state with bf16 gradients */
    CHECK(r.master + r.weights16 + r.grads + r.moments == 16 * r.n_params + 4 * 64);
    /* fp32 gradients beside the bf16 copy: 18 bytes a parameter, over 141 GB before any activation */
    w = r;
    w.grads = 4 * r.n_params;
    CHECK((double)(w.master + w.weights16 + w.grads + w.moments) > H200);
    printf("# 8B seq 2048 micro 1 on cuda: %.2f GB with --recompute, %.2f GB without (141 GB)\n",
           (double)r.total / 1e9, (double)f.total / 1e9);
}

/* ---- the real CPU table, wrapped to count ---- */
static const gr_train_ops *cpu_real;
static int64_t cpu_bytes;
static void *cnt_alloc(gr_backend *b, size_t bytes) {
    cpu_bytes += (int64_t)bytes;
    return cpu_real->alloc(b, bytes);
}

TEST(plan_equals_cpu_allocations) {
    gr_err err;
    gr_model *gm = gr_model_load("testdata/models/tiny-gqa-tied", &err);
    CHECK_MSG(gm, "%s", err.msg);
    gr_backend *be = gr_backend_cpu(1);
    cpu_real = gr_train_ops_for(be, &err);
    CHECK(cpu_real);
    gr_train_ops ops = *cpu_real;
    ops.alloc = cnt_alloc;
    for (int rc = 0; rc <= 1; rc++) {
        cpu_bytes = 0;
        gr_train_model *m = gr_train_model_alloc(&gm->cfg, be, &ops, &err);
        CHECK_MSG(m, "%s", err.msg);
        gr_adamw opt;
        gr_adamw_init_model(&opt, m);
        gr_tact *a = gr_tact_new(rc);
        /* one real step of two sequences, 7 + 5 tokens */
        int s0[7] = {1, 5, 9, 3, 4, 8, 2}, s1[5] = {7, 6, 5, 4, 3};
        const int *ids[2] = {s0, s1};
        int len[2] = {7, 5}, np[2] = {2, 1};
        gr_tbatch b = {2, ids, len, np};
        double nll;
        int64_t nt;
        gr_train_zero_grad(m);
        CHECK(gr_train_step_micro(m, a, &b, 1, 0.1f, &nll, &nt, &err) == 0);
        CHECK(nt == 9 && isfinite(nll));
        gr_tmem_plan p;
        gr_tmem_plan_make(&gm->cfg, 0, 12, 2, rc, 0, &p);
        CHECK_MSG(cpu_bytes == p.total, "recompute %d: %lld bytes asked, plan %lld", rc, (long long)cpu_bytes,
                  (long long)p.total);
        gr_tact_free(a);
        gr_adamw_free(&opt);
        gr_train_model_free(m);
    }
    gr_backend_free(be);
    gr_model_free(gm);
}

int main(void) {
    RUN(plan_equals_allocator_8b);
    RUN(plan_llama31_8b_fits_h200);
    RUN(plan_equals_cpu_allocations);
    return TEST_EXIT();
}
