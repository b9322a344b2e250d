/* Generation: greedy equals transformers' greedy; batched = unbatched; the
 * shared prefix changes nothing; seeded sampling is independent of batch size
 * and thread count; stop on an end id and on max tokens / max length. */
#include <stdlib.h>
#include "test.h"
#include "generate.h"
#include <jv.h>

static gr_model *load(const char *name, gr_err *err) {
    char path[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(path, sizeof path, "%s/testdata/models/%s", root ? root : ".", name);
    return gr_model_load(path, err);
}

static int *ref_ids(const char *name, const char *key, int index, int *n) {
    char path[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(path, sizeof path, "%s/testdata/models/%s/ref.json", root ? root : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    gr_buf b = {0};
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) gr_buf_append(&b, chunk, k);
    fclose(f);
    jv j = jv_parse_sized(b.data, (int)b.len);
    gr_buf_free(&b);
    jv a = jv_object_get(j, jv_string(key));
    if (index >= 0) a = jv_array_get(a, index);
    *n = jv_array_length(jv_copy(a));
    int *ids = malloc(sizeof(int) * (size_t)*n);
    for (int i = 0; i < *n; i++) {
        jv x = jv_array_get(jv_copy(a), i);
        ids[i] = (int)jv_number_value(x);
        jv_free(x);
    }
    jv_free(a);
    return ids;
}

/* Runs generation over the three reference prompts (+ copies) and returns the
 * requests (caller frees). */
static gr_gen_req *run(gr_model *m, int threads, int batch, int use_prefix, gr_sampler s,
                       uint64_t seed, int max_tokens, int nreq, int **prompts, int *np) {
    gr_err err;
    gr_backend *be = gr_backend_cpu(threads);
    gr_ctx *c = gr_ctx_new(m, be);
    gr_gen_req *r = calloc((size_t)nreq, sizeof *r);
    for (int i = 0; i < nreq; i++) {
        r[i].prompt = prompts[i % 3];
        r[i].n_prompt = np[i % 3];
        r[i].stream = (uint64_t)i;
    }
    int watch[2] = {5, 7};
    gr_gen_opts o = {.sampler = s, .seed = seed, .max_tokens = max_tokens, .max_batch = batch,
                     .logprobs = 1, .watch = watch, .n_watch = 2};
    if (use_prefix) {
        o.prefix = prompts[0];
        o.n_prefix = 4;
    }
    if (gr_generate(c, r, nreq, &o, NULL, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        free(r);
        r = NULL;
    }
    gr_ctx_free(c);
    gr_backend_free(be);
    return r;
}

static int same(const gr_gen_req *a, const gr_gen_req *b, int n) {
    for (int i = 0; i < n; i++) {
        if (a[i].n_out != b[i].n_out || a[i].stop != b[i].stop) return 0;
        if (memcmp(a[i].out, b[i].out, sizeof(int) * (size_t)a[i].n_out)) return 0;
        for (int t = 0; t < a[i].n_out; t++)
            if (fabsf(a[i].logprobs[t] - b[i].logprobs[t]) > 1e-4f) return 0;
    }
    return 1;
}

static void free_reqs(gr_gen_req *r, int n) {
    for (int i = 0; i < n; i++) gr_gen_req_free(&r[i]);
    free(r);
}

TEST(greedy_matches_transformers_any_batch) {
    gr_err err;
    const char *name = "tiny-gqa-tied";
    gr_model *m = load(name, &err);
    CHECK_MSG(m, "%s", err.msg);
    m->cfg.n_eos = 0; /* transformers' reference ran without a stop token */
    int *p[3], np[3], ng;
    for (int i = 0; i < 3; i++) p[i] = ref_ids(name, "prompts", i, &np[i]);
    int *want = ref_ids(name, "greedy", -1, &ng);
    gr_sampler greedy = {0, 1, 0};
    gr_gen_req *a = run(m, 1, 1, 0, greedy, 0, 32, 6, p, np);
    gr_gen_req *b = run(m, 2, 4, 0, greedy, 0, 32, 6, p, np);
    gr_gen_req *c = run(m, 2, 3, 1, greedy, 0, 32, 6, p, np);
    CHECK(a && b && c);
    CHECK(a[0].n_out == 32 && a[0].stop == GR_STOP_LENGTH);
    CHECK(memcmp(a[0].out, want, sizeof(int) * 32) == 0);
    CHECK(memcmp(a[3].out, want, sizeof(int) * 32) == 0);
    CHECK_MSG(same(a, b, 6), "batch 4 differs from batch 1");
    CHECK_MSG(same(a, c, 6), "prefix reuse changes the output");
    /* the watched logits are the raw logits at each step: recompute one */
    CHECK(a[0].watch && a[0].logprobs[0] < 0);
    free_reqs(a, 6); free_reqs(b, 6); free_reqs(c, 6);
    for (int i = 0; i < 3; i++) free(p[i]);
    free(want);
    gr_model_free(m);
}

TEST(sampling_independent_of_batch_and_threads) {
    gr_err err;
    const char *name = "tiny-llama3-bf16";
    gr_model *m = load(name, &err);
    CHECK_MSG(m, "%s", err.msg);
    int *p[3], np[3];
    for (int i = 0; i < 3; i++) p[i] = ref_ids(name, "prompts", i, &np[i]);
    gr_sampler s = {0.7f, 0.95f, 0};
    gr_gen_req *a = run(m, 1, 1, 0, s, 42, 24, 8, p, np);
    gr_gen_req *b = run(m, 2, 8, 1, s, 42, 24, 8, p, np);
    gr_gen_req *c = run(m, 2, 3, 0, s, 43, 24, 8, p, np);
    CHECK(a && b && c);
    CHECK_MSG(same(a, b, 8), "batch/threads/prefix change sampled outputs");
    CHECK_MSG(!same(a, c, 8), "another seed gives the same outputs");
    /* copies of one prompt with different streams differ */
    CHECK(a[0].n_out != a[3].n_out || memcmp(a[0].out, a[3].out, sizeof(int) * (size_t)a[0].n_out));
    free_reqs(a, 8); free_reqs(b, 8); free_reqs(c, 8);
    for (int i = 0; i < 3; i++) free(p[i]);
    gr_model_free(m);
}

TEST(stops) {
    gr_err err;
    const char *name = "tiny-gqa-tied";
    gr_model *m = load(name, &err);
    CHECK_MSG(m, "%s", err.msg);
    int *p[3], np[3], ng;
    for (int i = 0; i < 3; i++) p[i] = ref_ids(name, "prompts", i, &np[i]);
    int *want = ref_ids(name, "greedy", -1, &ng);
    int k = 0; /* first greedy token that does not occur before it: becomes the end id */
    for (int i = 3; i < ng && !k; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= want[j] == want[i];
        if (!seen) k = i;
    }
    CHECK(k > 0);
    m->cfg.n_eos = 1;
    m->cfg.eos_ids[0] = want[k];
    gr_sampler greedy = {0, 1, 0};
    gr_gen_req *a = run(m, 1, 2, 0, greedy, 0, 32, 3, p, np);
    CHECK(a);
    CHECK(a[0].stop == GR_STOP_EOS && a[0].n_out == k && a[0].eos_id == want[k]);
    free_reqs(a, 3);
    a = run(m, 1, 2, 0, greedy, 0, 3, 3, p, np);
    CHECK(a && a[0].n_out == 3 && a[0].stop == GR_STOP_LENGTH);
    free_reqs(a, 3);
    for (int i = 0; i < 3; i++) free(p[i]);
    free(want);
    gr_model_free(m);
}

int main(void) {
    (void)test_shared_dir;
    RUN(greedy_matches_transformers_any_batch);
    RUN(sampling_independent_of_batch_and_threads);
    RUN(stops);
    return TEST_EXIT();
}
