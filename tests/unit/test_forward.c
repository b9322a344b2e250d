/* The forward pass against transformers: tiny random LLaMA folders written by
 * scripts/make-model-fixtures.py with the logits transformers computed for them.
 * Also: batched = unbatched, chunked prefill = whole, prefix KV reuse changes
 * nothing, greedy continuation identical, 1 thread = 2 threads. */
#include <stdlib.h>
#include "test.h"
#include "forward.h"
#include <jv.h>

static const char *MODELS[] = {"tiny-gqa-tied", "tiny-mha-untied", "tiny-llama3-bf16",
                               "tiny-oddhead-f16", "tiny-gqa-tied-sharded"};
#define N_MODELS 5

static char *path_of(const char *name, const char *file) {
    static char buf[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(buf, sizeof buf, "%s/testdata/models/%s%s%s", root ? root : ".", name, file ? "/" : "", file ? file : "");
    return buf;
}

static jv load_ref(const char *name) {
    char base[256];
    snprintf(base, sizeof base, "%s", name);
    char *sh = strstr(base, "-sharded"); /* same weights as the unsharded folder */
    if (sh) *sh = 0;
    FILE *f = fopen(path_of(base, "ref.json"), "rb");
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
    int *ids = malloc(sizeof(int) * (size_t)*n);
    for (int i = 0; i < *n; i++) {
        jv x = jv_array_get(jv_copy(arr), i);
        ids[i] = (int)jv_number_value(x);
        jv_free(x);
    }
    jv_free(arr);
    return ids;
}

/* max over rows of |a-b| / max(1, |b|) */
static double max_rel(const float *got, jv rows, int n_rows, int vocab) {
    double worst = 0;
    for (int r = 0; r < n_rows; r++) {
        jv row = jv_array_get(jv_copy(rows), r);
        for (int v = 0; v < vocab; v++) {
            jv x = jv_array_get(jv_copy(row), v);
            double want = jv_number_value(x), d = fabs(got[(size_t)r * vocab + v] - want);
            jv_free(x);
            double rel = d / (fabs(want) > 1 ? fabs(want) : 1);
            if (rel > worst) worst = rel;
        }
        jv_free(row);
    }
    jv_free(rows);
    return worst;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void check_model(const char *test_name_, const char *name, int threads) {
    gr_err err;
    gr_model *m = gr_model_load(path_of(name, NULL), &err);
    CHECK_MSG(m, "%s", err.msg);
    jv ref = load_ref(name);
    CHECK(jv_get_kind(ref) == JV_KIND_OBJECT);
    gr_backend *be = gr_backend_cpu(threads);
    be->exact = 1; /* f32 activations: the 1e-4 parity (BF16 outside it: below) */
    gr_ctx *c = gr_ctx_new(m, be);
    int V = m->cfg.vocab_size;
    jv prompts = jv_object_get(jv_copy(ref), jv_string("prompts"));
    jv logits = jv_object_get(jv_copy(ref), jv_string("logits"));
    int np = jv_array_length(jv_copy(prompts));
    int *ids[8], n[8];
    int64_t total = 0;
    for (int p = 0; p < np; p++) {
        ids[p] = ids_of(jv_array_get(jv_copy(prompts), p), &n[p]);
        total += n[p];
    }
    /* 1. each prompt alone, every position's logits */
    for (int p = 0; p < np; p++) {
        gr_kv *kv = gr_kv_new(m, NULL);
        float *out = malloc(sizeof(float) * (size_t)n[p] * V);
        const int *tk = ids[p];
        CHECK_MSG(gr_forward(c, &kv, &tk, &n[p], 1, out, 1, &err) == 0, "%s", err.msg);
        double rel = max_rel(out, jv_array_get(jv_copy(logits), p), n[p], V);
        CHECK_MSG(rel <= 1e-4, "%s prompt %d: relative error %g", name, p, rel);
        free(out);
        gr_kv_free(kv);
    }
    /* 2. all prompts in one batch, with chunks of 5 tokens (splits sequences) */
    {
        gr_kv *kv[8];
        for (int p = 0; p < np; p++) kv[p] = gr_kv_new(m, NULL);
        float *out = malloc(sizeof(float) * (size_t)total * V);
        c->chunk = 5;
        CHECK(gr_forward(c, kv, (const int *const *)ids, n, np, out, 1, &err) == 0);
        c->chunk = 256;
        int64_t row = 0;
        for (int p = 0; p < np; p++) {
            double rel = max_rel(out + row * V, jv_array_get(jv_copy(logits), p), n[p], V);
            CHECK_MSG(rel <= 1e-4, "%s batched prompt %d: relative error %g", name, p, rel);
            row += n[p];
        }
        /* last-token logits only: same rows */
        for (int p = 0; p < np; p++) gr_kv_truncate(kv[p], 0);
        float *last = malloc(sizeof(float) * (size_t)np * V);
        CHECK(gr_forward(c, kv, (const int *const *)ids, n, np, last, 0, &err) == 0);
        row = 0;
        for (int p = 0; p < np; p++) {
            row += n[p];
            jv want = jv_array_append(jv_array(), jv_array_get(jv_array_get(jv_copy(logits), p), n[p] - 1));
            double rel = max_rel(last + (size_t)p * V, want, 1, V);
            CHECK_MSG(rel <= 1e-4, "%s last-token logits %d: relative error %g", name, p, rel);
        }
        free(last);
        free(out);
        for (int p = 0; p < np; p++) gr_kv_free(kv[p]);
    }
    /* 3. prefix reuse: the first 6 tokens of prompt 0 computed once, shared by two sequences */
    {
        gr_kv *pre = gr_kv_new(m, NULL);
        int six = 6;
        const int *tk = ids[0];
        CHECK(gr_forward(c, &pre, &tk, &six, 1, NULL, 0, &err) == 0);
        gr_kv *a = gr_kv_new(m, pre), *b = gr_kv_new(m, pre);
        CHECK(gr_kv_pos(a) == 6);
        int rest = n[0] - 6, one = 1;
        const int *toks[2] = {ids[0] + 6, ids[0] + 6};
        int ns[2] = {rest, one};
        gr_kv *kvs[2] = {a, b};
        float *out = malloc(sizeof(float) * (size_t)(rest + 1) * V);
        CHECK(gr_forward(c, kvs, toks, ns, 2, out, 1, &err) == 0);
        jv rows = jv_array_get(jv_copy(logits), 0);
        jv tail = jv_array_slice(jv_copy(rows), 6, n[0]);
        double rel = max_rel(out, tail, rest, V);
        CHECK_MSG(rel <= 1e-4, "%s prefix reuse: relative error %g", name, rel);
        jv r6 = jv_array_append(jv_array(), jv_array_get(rows, 6));
        rel = max_rel(out + (size_t)rest * V, r6, 1, V);
        CHECK_MSG(rel <= 1e-4, "%s prefix reuse (2nd seq): relative error %g", name, rel);
        free(out);
        gr_kv_free(a);
        gr_kv_free(b);
        gr_kv_free(pre);
    }
    /* 4. greedy continuation of prompt 0, token by token with the cache */
    {
        int ng;
        int *want = ids_of(jv_object_get(jv_copy(ref), jv_string("greedy")), &ng);
        gr_kv *kv = gr_kv_new(m, NULL);
        float *out = malloc(sizeof(float) * V);
        const int *tk = ids[0];
        CHECK(gr_forward(c, &kv, &tk, &n[0], 1, out, 0, &err) == 0);
        for (int i = 0; i < ng; i++) {
            int t = argmax(out, V);
            CHECK_MSG(t == want[i], "%s greedy token %d: %d, transformers %d", name, i, t, want[i]);
            const int *one = &t;
            int k1 = 1;
            CHECK(gr_forward(c, &kv, &one, &k1, 1, out, 0, &err) == 0);
        }
        free(out);
        free(want);
        gr_kv_free(kv);
    }
    for (int p = 0; p < np; p++) free(ids[p]);
    jv_free(prompts);
    jv_free(logits);
    jv_free(ref);
    gr_ctx_free(c);
    gr_backend_free(be);
    gr_model_free(m);
}

TEST(matches_transformers_1_thread) {
    for (int i = 0; i < N_MODELS; i++) {
        int before = test_failed_;
        check_model(test_name_, MODELS[i], 1);
        if (test_failed_ != before) return;
    }
}

TEST(matches_transformers_2_threads) {
    for (int i = 0; i < N_MODELS; i++) {
        int before = test_failed_;
        check_model(test_name_, MODELS[i], 2);
        if (test_failed_ != before) return;
    }
}

TEST(config_fields) {
    gr_err err;
    gr_model *m = gr_model_load(path_of("tiny-llama3-bf16", NULL), &err);
    CHECK_MSG(m, "%s", err.msg);
    CHECK(m->cfg.rope_llama3 && m->cfg.rope_factor == 32.0f && m->cfg.rope_orig_max == 64);
    CHECK(m->cfg.n_eos == 2 && gr_model_is_eos(m, 298) && gr_model_is_eos(m, 299));
    CHECK(m->cfg.tie_embeddings && m->lm_head.data == m->tok_emb.data);
    CHECK(m->tok_emb.type == GR_BF16);
    CHECK_STR(m->cfg.torch_dtype, "bfloat16");
    gr_model_free(m);
    m = gr_model_load(path_of("tiny-oddhead-f16", NULL), &err);
    CHECK_MSG(m, "%s", err.msg);
    CHECK(m->cfg.head_dim == 10 && m->cfg.n_heads == 3 && m->cfg.dim == 48);
    CHECK(m->layers[0].wq.type == GR_F16 && m->layers[0].wq.rows == 30);
    gr_model_free(m);
}

/* The same weights as GGUF files written the llama.cpp way (permuted q/k,
 * rope_freqs for llama3): same logits as transformers on the HF folder. */
TEST(gguf_copies_match_transformers) {
    const char *names[] = {"tiny-gqa-tied", "tiny-llama3-bf16"};
    for (int i = 0; i < 2; i++) {
        char path[4096];
        const char *root = getenv("GR_ROOT");
        snprintf(path, sizeof path, "%s/testdata/gguf/%s.gguf", root ? root : ".", names[i]);
        gr_err err;
        gr_model *m = gr_model_load(path, &err);
        CHECK_MSG(m, "%s", err.msg);
        CHECK(m->is_gguf);
        jv ref = load_ref(names[i]);
        jv prompts = jv_object_get(jv_copy(ref), jv_string("prompts"));
        int np = jv_array_length(jv_copy(prompts)), V = m->cfg.vocab_size;
        gr_backend *be = gr_backend_cpu(2);
        be->exact = 1;
        gr_ctx *c = gr_ctx_new(m, be);
        for (int p = 0; p < np; p++) {
            int n;
            int *ids = ids_of(jv_array_get(jv_copy(prompts), p), &n);
            gr_kv *kv = gr_kv_new(m, NULL);
            float *out = malloc(sizeof(float) * (size_t)n * V);
            const int *tk = ids;
            CHECK(gr_forward(c, &kv, &tk, &n, 1, out, 1, &err) == 0);
            double rel = max_rel(out, jv_array_get(jv_object_get(jv_copy(ref), jv_string("logits")), p), n, V);
            CHECK_MSG(rel <= 1e-4, "%s.gguf prompt %d: relative error %g", names[i], p, rel);
            free(out);
            free(ids);
            gr_kv_free(kv);
        }
        jv_free(prompts);
        jv_free(ref);
        gr_ctx_free(c);
        gr_backend_free(be);
        gr_model_free(m);
    }
}

/* keep_hidden: the residual stream at every layer equals transformers'
 * output_hidden_states (prompt 0), also when the prompt is split in chunks. */
TEST(hidden_states_match_transformers) {
    for (int i = 0; i < N_MODELS - 1; i++) {
        gr_err err;
        gr_model *m = gr_model_load(path_of(MODELS[i], NULL), &err);
        CHECK_MSG(m, "%s", err.msg);
        jv ref = load_ref(MODELS[i]);
        int n, L = m->cfg.n_layers, D = m->cfg.dim;
        int *ids = ids_of(jv_array_get(jv_object_get(jv_copy(ref), jv_string("prompts")), 0), &n);
        jv hidden = jv_object_get(jv_copy(ref), jv_string("hidden"));
        CHECK(jv_array_length(jv_copy(hidden)) == L + 1);
        gr_backend *be = gr_backend_cpu(2);
        be->exact = 1;
        gr_ctx *c = gr_ctx_new(m, be);
        c->chunk = 5;
        float *h = malloc(sizeof(float) * (size_t)(L + 1) * n * D);
        c->keep_hidden = h;
        gr_kv *kv = gr_kv_new(m, NULL);
        const int *tk = ids;
        CHECK(gr_forward(c, &kv, &tk, &n, 1, NULL, 0, &err) == 0);
        for (int l = 0; l <= L; l++) {
            double rel = max_rel(h + (size_t)l * n * D, jv_array_get(jv_copy(hidden), l), n, D);
            CHECK_MSG(rel <= 1e-4, "%s hidden state %d: relative error %g", MODELS[i], l, rel);
        }
        free(h);
        free(ids);
        jv_free(hidden);
        jv_free(ref);
        gr_kv_free(kv);
        gr_ctx_free(c);
        gr_backend_free(be);
        gr_model_free(m);
    }
}

/* The default path for BF16 weights (not exact mode): on AVX512-BF16 the
 * prefill rows round the activations to bf16 (kernels/cpu/prefill_bf16.h), as
 * llama.cpp does, so the 1e-4 parity cannot hold there; measured on this tiny
 * random model (residual values up to ~10) the worst logit moves by 0.04-0.07 of
 * max(1,|l|). What must hold: every logit within 0.1·max(1,|l|) of
 * transformers', and the argmax the same at >= 90% of the prompt positions.
 * Elsewhere the path is the exact one and the same bound holds trivially. */
TEST(bf16_default_path_close_to_transformers) {
    const char *name = "tiny-llama3-bf16";
    gr_err err;
    gr_model *m = gr_model_load(path_of(name, NULL), &err);
    CHECK_MSG(m, "%s", err.msg);
    jv ref = load_ref(name);
    gr_backend *be = gr_backend_cpu(2);
    CHECK(be->exact == 0);
    gr_ctx *c = gr_ctx_new(m, be);
    int V = m->cfg.vocab_size, agree = 0, total = 0;
    jv prompts = jv_object_get(jv_copy(ref), jv_string("prompts"));
    jv logits = jv_object_get(jv_copy(ref), jv_string("logits"));
    double worst = 0;
    for (int p = 0; p < jv_array_length(jv_copy(prompts)); p++) {
        int n;
        int *ids = ids_of(jv_array_get(jv_copy(prompts), p), &n);
        gr_kv *kv = gr_kv_new(m, NULL);
        float *out = malloc(sizeof(float) * (size_t)n * V), *want = malloc(sizeof(float) * (size_t)V);
        const int *tk = ids;
        CHECK(gr_forward(c, &kv, &tk, &n, 1, out, 1, &err) == 0);
        jv rows = jv_array_get(jv_copy(logits), p);
        double rel = max_rel(out, jv_copy(rows), n, V);
        if (rel > worst) worst = rel;
        for (int t = 0; t < n; t++) {
            jv row = jv_array_get(jv_copy(rows), t);
            for (int v = 0; v < V; v++) want[v] = (float)jv_number_value(jv_array_get(jv_copy(row), v));
            jv_free(row);
            agree += argmax(out + (size_t)t * V, V) == argmax(want, V);
            total++;
        }
        jv_free(rows);
        free(out);
        free(want);
        free(ids);
        gr_kv_free(kv);
    }
    printf("# %s, default path: worst relative logit error %.3g, argmax agrees at %d of %d positions\n", name,
           worst, agree, total);
    CHECK_MSG(worst <= 0.1, "worst relative logit error %g", worst);
    CHECK_MSG(agree * 10 >= total * 9, "argmax agrees at %d of %d positions", agree, total);
    jv_free(prompts);
    jv_free(logits);
    jv_free(ref);
    gr_ctx_free(c);
    gr_backend_free(be);
    gr_model_free(m);
}

int main(void) {
    (void)test_shared_dir;
    RUN(config_fields);
    RUN(matches_transformers_1_thread);
    RUN(matches_transformers_2_threads);
    RUN(gguf_copies_match_transformers);
    RUN(hidden_states_match_transformers);
    RUN(bf16_default_path_close_to_transformers);
    return TEST_EXIT();
}
