/* The real test model: SmolLM2-135M-Instruct Q4_1 GGUF (fetched by
 * scripts/fetch-test-model) against transformers loading the same GGUF
 * (testdata/smollm2/ref.json, scripts/make-smollm2-fixtures.py).
 * Tolerance: |Δlogit| <= 1e-4 · max(1, |logit|) (measured: 1.3e-6) on the 32 top logits of each
 * prompt (both sides dequantize to the same f32 weights; what remains is f32
 * summation order over 30 layers); argmax identical at every prompt position;
 * 64-token greedy continuations identical, decoded as one batch of 4. */
#include <stdlib.h>
#include <sys/wait.h>
#include "test.h"
#include "forward.h"
#include <jv.h>

static char model_path[4096];
static int skip;

static int fetch(void) {
    char cmd[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(cmd, sizeof cmd, "%s/scripts/fetch-test-model", root ? root : ".");
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    if (!fgets(model_path, sizeof model_path, p)) model_path[0] = 0;
    int st = pclose(p);
    model_path[strcspn(model_path, "\n")] = 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3) return 3;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && model_path[0] ? 0 : -1;
}

static jv load_ref(void) {
    char path[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(path, sizeof path, "%s/testdata/smollm2/ref.json", root ? root : ".");
    FILE *f = fopen(path, "rb");
    if (!f) return jv_invalid();
    gr_buf b = {0};
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) gr_buf_append(&b, chunk, k);
    fclose(f);
    jv j = jv_parse_sized(b.data, (int)b.len);
    gr_buf_free(&b);
    return j;
}

static int *ids_of(jv arr, int *n) {
    *n = jv_array_length(jv_copy(arr));
    int *ids = malloc(sizeof(int) * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++) {
        jv x = jv_array_get(jv_copy(arr), i);
        ids[i] = (int)jv_number_value(x);
        jv_free(x);
    }
    jv_free(arr);
    return ids;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

TEST(smollm2_gguf_matches_transformers) {
    gr_err err;
    gr_model *m = gr_model_load(model_path, &err);
    CHECK_MSG(m, "%s", err.msg);
    CHECK(m->cfg.n_layers == 30 && m->cfg.n_heads == 9 && m->cfg.n_kv_heads == 3 && m->cfg.dim == 576);
    CHECK(m->cfg.tie_embeddings && m->tok_emb.type == GR_Q8_0);
    jv ref = load_ref();
    CHECK(jv_get_kind(ref) == JV_KIND_OBJECT);
    gr_backend *be = gr_backend_cpu(0);
    be->exact = 1; /* f32 activations: the 1e-4 parity; the integer path is tested below */
    gr_ctx *c = gr_ctx_new(m, be);
    int V = m->cfg.vocab_size;
    jv prompts = jv_object_get(jv_copy(ref), jv_string("prompts"));
    int np = jv_array_length(jv_copy(prompts));
    CHECK(np == 4);
    int *ids[4], n[4];
    gr_kv *kv[4];
    double worst = 0;
    float *last = malloc(sizeof(float) * 4 * (size_t)V);
    for (int p = 0; p < np; p++) {
        ids[p] = ids_of(jv_array_get(jv_copy(prompts), p), &n[p]);
        kv[p] = gr_kv_new(m, NULL);
        float *out = malloc(sizeof(float) * (size_t)n[p] * V);
        const int *tk = ids[p];
        CHECK_MSG(gr_forward(c, &kv[p], &tk, &n[p], 1, out, 1, &err) == 0, "%s", err.msg);
        int na;
        jv am = jv_array_get(jv_object_get(jv_copy(ref), jv_string("argmax")), p);
        int *want = ids_of(am, &na);
        CHECK(na == n[p]);
        for (int i = 0; i < n[p]; i++)
            CHECK_MSG(argmax(out + (size_t)i * V, V) == want[i], "prompt %d position %d: argmax %d, "
                      "transformers %d", p, i, argmax(out + (size_t)i * V, V), want[i]);
        free(want);
        jv top = jv_array_get(jv_object_get(jv_copy(ref), jv_string("top")), p);
        for (int k = 0; k < 32; k++) {
            jv e = jv_array_get(jv_copy(top), k);
            jv a = jv_array_get(jv_copy(e), 0), b = jv_array_get(e, 1);
            int id = (int)jv_number_value(a);
            double want_l = jv_number_value(b), got = out[(size_t)(n[p] - 1) * V + id];
            jv_free(a);
            jv_free(b);
            double rel = fabs(got - want_l) / fmax(1, fabs(want_l));
            if (rel > worst) worst = rel;
            CHECK_MSG(rel <= 1e-4, "prompt %d token %d: %g vs %g", p, id, got, want_l);
        }
        jv_free(top);
        memcpy(last + (size_t)p * V, out + (size_t)(n[p] - 1) * V, sizeof(float) * V);
        free(out);
    }
    printf("# smollm2: worst relative logit error %.3g\n", worst);
    /* greedy: the four prompts decode together */
    jv greedy = jv_object_get(jv_copy(ref), jv_string("greedy"));
    int *want[4], nw[4];
    for (int p = 0; p < np; p++) want[p] = ids_of(jv_array_get(jv_copy(greedy), p), &nw[p]);
    int cur[4];
    for (int step = 0; step < 64; step++) {
        const int *tk[4];
        int ones[4] = {1, 1, 1, 1};
        for (int p = 0; p < np; p++) {
            cur[p] = argmax(last + (size_t)p * V, V);
            CHECK_MSG(cur[p] == want[p][step], "prompt %d greedy step %d: %d, transformers %d", p,
                      step, cur[p], want[p][step]);
            tk[p] = &cur[p];
        }
        CHECK(gr_forward(c, kv, tk, ones, np, last, 0, &err) == 0);
    }
    for (int p = 0; p < np; p++) {
        free(want[p]);
        free(ids[p]);
        gr_kv_free(kv[p]);
    }
    free(last);
    jv_free(greedy);
    jv_free(prompts);
    jv_free(ref);
    gr_ctx_free(c);
    gr_backend_free(be);
    gr_model_free(m);
}

/* The folder scripts/convert-smollm2-hf.py writes (transformers' conversion of
 * the same GGUF, float32): same logits as the GGUF at every position. Skipped
 * when absent (CI has no torch to write it). */
TEST(smollm2_hf_folder_matches_gguf) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s/SmolLM2-135M-Instruct-hf", (int)(strrchr(model_path, '/') - model_path), model_path);
    char cfgp[4200];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    FILE *f = fopen(cfgp, "r");
    if (!f) {
        printf("# skip smollm2_hf_folder_matches_gguf: no %s (scripts/convert-smollm2-hf.py)\n", dir);
        return;
    }
    fclose(f);
    gr_err err;
    gr_model *g = gr_model_load(model_path, &err), *h = gr_model_load(dir, &err);
    CHECK_MSG(g && h, "%s", err.msg);
    CHECK(h->tok_emb.type == GR_F32 && !h->is_gguf);
    gr_backend *be = gr_backend_cpu(0);
    be->exact = 1;
    gr_ctx *cg = gr_ctx_new(g, be), *ch = gr_ctx_new(h, be);
    int ids[24], n = 24, V = g->cfg.vocab_size;
    for (int i = 0; i < n; i++) ids[i] = 1 + (i * 977) % (V - 1);
    float *lg = malloc(sizeof(float) * (size_t)n * V), *lh = malloc(sizeof(float) * (size_t)n * V);
    gr_kv *kg = gr_kv_new(g, NULL), *kh = gr_kv_new(h, NULL);
    const int *tk = ids;
    CHECK(gr_forward(cg, &kg, &tk, &n, 1, lg, 1, &err) == 0);
    CHECK(gr_forward(ch, &kh, &tk, &n, 1, lh, 1, &err) == 0);
    double worst = 0;
    for (size_t i = 0; i < (size_t)n * V; i++) {
        double rel = fabs(lg[i] - lh[i]) / fmax(1, fabs(lh[i]));
        if (rel > worst) worst = rel;
    }
    printf("# smollm2 HF folder vs GGUF: worst relative logit difference %.3g\n", worst);
    CHECK_MSG(worst <= 1e-4, "relative difference %g", worst);
    free(lg); free(lh);
    gr_kv_free(kg); gr_kv_free(kh);
    gr_ctx_free(cg); gr_ctx_free(ch);
    gr_backend_free(be);
    gr_model_free(g); gr_model_free(h);
}

/* The default integer path (8-bit activations, kernels/cpu/q8.h) as llama.cpp runs
 * this model: the activation rounding moves logits by ~1e-2 relative (measured on
 * these prompts: 0.03-0.05, see the printed figures), so the 1e-4 parity above cannot hold;
 * what must hold is the model's behaviour: the same argmax as transformers at
 * nearly every prompt position, top-32 logits within 0.1·max(1,|l|), and the
 * same first greedy token (the continuations then diverge after 5-64 tokens,
 * as llama.cpp's own do from transformers'). */
TEST(smollm2_integer_path_close_to_transformers) {
    gr_err err;
    gr_model *m = gr_model_load(model_path, &err);
    CHECK_MSG(m, "%s", err.msg);
    jv ref = load_ref();
    gr_backend *be = gr_backend_cpu(0);
    CHECK(be->exact == 0);
    gr_ctx *c = gr_ctx_new(m, be);
    int V = m->cfg.vocab_size;
    jv prompts = jv_object_get(jv_copy(ref), jv_string("prompts"));
    int np = jv_array_length(jv_copy(prompts)), agree = 0, total = 0;
    double worst = 0;
    int *ids[4], n[4];
    gr_kv *kv[4];
    float *last = malloc(sizeof(float) * 4 * (size_t)V);
    for (int p = 0; p < np; p++) {
        ids[p] = ids_of(jv_array_get(jv_copy(prompts), p), &n[p]);
        kv[p] = gr_kv_new(m, NULL);
        float *out = malloc(sizeof(float) * (size_t)n[p] * V);
        const int *tk = ids[p];
        CHECK_MSG(gr_forward(c, &kv[p], &tk, &n[p], 1, out, 1, &err) == 0, "%s", err.msg);
        int na;
        int *want = ids_of(jv_array_get(jv_object_get(jv_copy(ref), jv_string("argmax")), p), &na);
        for (int i = 0; i < n[p]; i++, total++) agree += argmax(out + (size_t)i * V, V) == want[i];
        free(want);
        jv top = jv_array_get(jv_object_get(jv_copy(ref), jv_string("top")), p);
        for (int k = 0; k < 32; k++) {
            jv e = jv_array_get(jv_copy(top), k);
            jv a = jv_array_get(jv_copy(e), 0), b = jv_array_get(e, 1);
            int id = (int)jv_number_value(a);
            double want_l = jv_number_value(b), got = out[(size_t)(n[p] - 1) * V + id];
            jv_free(a);
            jv_free(b);
            worst = fmax(worst, fabs(got - want_l) / fmax(1, fabs(want_l)));
        }
        jv_free(top);
        memcpy(last + (size_t)p * V, out + (size_t)(n[p] - 1) * V, sizeof(float) * V);
        free(out);
    }
    jv greedy = jv_object_get(jv_copy(ref), jv_string("greedy"));
    int *want[4], nw[4], same[4] = {0}, diverged[4] = {0}, cur[4];
    for (int p = 0; p < np; p++) want[p] = ids_of(jv_array_get(jv_copy(greedy), p), &nw[p]);
    for (int step = 0; step < 64; step++) {
        const int *tk[4];
        int ones[4] = {1, 1, 1, 1};
        for (int p = 0; p < np; p++) {
            cur[p] = argmax(last + (size_t)p * V, V);
            if (cur[p] != want[p][step]) diverged[p] = 1;
            if (!diverged[p]) same[p]++;
            tk[p] = &cur[p];
        }
        CHECK(gr_forward(c, kv, tk, ones, np, last, 0, &err) == 0);
    }
    printf("# smollm2 integer path: worst relative top-32 logit error %.3g, argmax agreement %d/%d, "
           "greedy tokens identical before divergence %d %d %d %d of 64\n", worst, agree, total,
           same[0], same[1], same[2], same[3]);
    /* measured 0.032 (AVX2) and 0.052 (NATIVE=0: other summation orders, the same
     * rounding amplified differently over 30 layers); a wrong kernel gives errors of
     * order 1 and loses the argmax */
    CHECK_MSG(worst <= 0.1, "relative logit error %g", worst);
    CHECK_MSG(agree * 100 >= total * 90, "argmax agreement %d/%d", agree, total);
    for (int p = 0; p < np; p++) CHECK_MSG(same[p] >= 1, "prompt %d: first greedy token differs", p);
    for (int p = 0; p < np; p++) {
        free(want[p]);
        free(ids[p]);
        gr_kv_free(kv[p]);
    }
    free(last);
    jv_free(greedy);
    jv_free(prompts);
    jv_free(ref);
    gr_ctx_free(c);
    gr_backend_free(be);
    gr_model_free(m);
}

int main(void) {
    (void)test_shared_dir;
    int r = fetch();
    if (r == 3) {
        printf("# skip smollm2: the model download failed\n");
        return 0;
    }
    if (r != 0) {
        printf("not ok smollm2_fetch: scripts/fetch-test-model failed\n");
        return 1;
    }
    (void)skip;
    RUN(smollm2_gguf_matches_transformers);
    RUN(smollm2_hf_folder_matches_gguf);
    RUN(smollm2_integer_path_close_to_transformers);
    return TEST_EXIT();
}
