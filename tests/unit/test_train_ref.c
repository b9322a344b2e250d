/* The training core against PyTorch + transformers (scripts/make-train-fixtures.py):
 * loss and every parameter's gradient of a right-padded batch with masked
 * prompts; the parameters after three AdamW steps with gradient accumulation,
 * active clipping and the cosine schedule; the learning-rate sequences.
 * Tolerances (fp32): gradients |ours − ref| <= 1e-4·max|ref| + 1e-7 per tensor;
 * loss 1e-5 relative; parameters after 3 steps 2e-5 absolute (lr 2e-3). */
#include "test.h"
#include "train_model.h"
#include "train_optim.h"
#include "safetensors.h"
#include <jv.h>

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    if (fread(b, 1, (size_t)len, f) != (size_t)len) len = 0;
    b[len] = 0;
    fclose(f);
    if (n) *n = (size_t)len;
    return b;
}

static jv load_json(const char *path) {
    char *s = slurp(path, NULL);
    if (!s) return jv_invalid();
    jv v = jv_parse(s);
    free(s);
    return v;
}

typedef struct seqset {
    int n;
    int **ids;
    int *len, *np;
} seqset;

static void seqs_read(jv seqs, seqset *S) {
    S->n = jv_array_length(jv_copy(seqs));
    S->ids = calloc((size_t)S->n, sizeof(int *));
    S->len = calloc((size_t)S->n, sizeof(int));
    S->np = calloc((size_t)S->n, sizeof(int));
    for (int i = 0; i < S->n; i++) {
        jv s = jv_array_get(jv_copy(seqs), i);
        jv ids = jv_object_get(jv_copy(s), jv_string("ids"));
        S->len[i] = jv_array_length(jv_copy(ids));
        S->ids[i] = malloc(sizeof(int) * (size_t)S->len[i]);
        for (int t = 0; t < S->len[i]; t++)
            S->ids[i][t] = (int)jv_number_value(jv_array_get(jv_copy(ids), t));
        S->np[i] = (int)jv_number_value(jv_object_get(s, jv_string("n_prompt")));
        jv_free(ids);
    }
    jv_free(seqs);
}

static void seqs_free(seqset *S) {
    for (int i = 0; i < S->n; i++) free(S->ids[i]);
    free(S->ids); free(S->len); free(S->np);
}

/* A micro-batch of the sequences with the given indices. */
static gr_tbatch make_batch(const seqset *S, jv idx, const int **ids, int *len, int *np) {
    int n = jv_array_length(jv_copy(idx));
    for (int i = 0; i < n; i++) {
        int k = (int)jv_number_value(jv_array_get(jv_copy(idx), i));
        ids[i] = S->ids[k];
        len[i] = S->len[k];
        np[i] = S->np[k];
    }
    jv_free(idx);
    gr_tbatch b = {n, ids, len, np};
    return b;
}

/* Compares the model's block (params or grads) with a safetensors file. */
static int compare_block(const gr_train_model *m, const float *block, const char *path,
                         double rel, double abs_tol, double *worst, char *what, size_t wn) {
    gr_err err;
    st_file *f = st_open(path, &err);
    if (!f) { snprintf(what, wn, "%.400s", err.msg); return 0; }
    int ok = 1;
    *worst = 0;
    for (int i = 0; i < m->n_tab && ok; i++) {
        const gr_tparam *p = &m->tab[i];
        const st_tensor *t = st_find(f, p->name);
        int64_t n = p->rows * (p->cols ? p->cols : 1);
        if (!t || t->dtype != ST_F32 || t->nbytes != (uint64_t)n * 4) {
            snprintf(what, wn, "%.96s missing or wrong size in %.300s", p->name, path);
            ok = 0;
            break;
        }
        const float *ref = t->data;
        double mx = 0, e = 0;
        for (int64_t j = 0; j < n; j++) mx = fmax(mx, fabs(ref[j]));
        for (int64_t j = 0; j < n; j++) e = fmax(e, fabs(ref[j] - block[p->off + j]));
        double lim = rel * mx + abs_tol;
        if (e / (lim > 0 ? lim : 1) > *worst) *worst = e / lim;
        if (e > lim) {
            snprintf(what, wn, "%.96s: max error %g > %g (max abs ref %g)", p->name, e, lim, mx);
            ok = 0;
        }
    }
    st_close(f);
    return ok;
}

static const char *MODELS[] = {"tiny-gqa-tied", "tiny-mha-untied", "tiny-llama3-bf16"};

static void run_model(const char *test_name_, const char *name, int threads) {
    char path[512], what[512];
    gr_err err;
    snprintf(path, sizeof path, "testdata/models/%s", name);
    gr_model *gm = gr_model_load(path, &err);
    CHECK_MSG(gm, "%s", err.msg);
    gr_backend *be = gr_backend_cpu(threads);
    gr_train_model *m = gr_train_model_new(gm, be, &err);
    CHECK_MSG(m, "%s", err.msg);
    snprintf(path, sizeof path, "testdata/train/%s/batch.json", name);
    jv J = load_json(path);
    CHECK(jv_get_kind(J) == JV_KIND_OBJECT);
    seqset S;
    seqs_read(jv_object_get(jv_copy(J), jv_string("seqs")), &S);
    const int *ids[16];
    int len[16], np[16];
    gr_tact *a = gr_tact_new(0);

    /* 1. loss and gradients */
    gr_tbatch b = make_batch(&S, jv_object_get(jv_copy(J), jv_string("grad_batch")), ids, len, np);
    int64_t N = gr_tbatch_targets(&b), nt;
    CHECK(N == (int64_t)jv_number_value(jv_object_get(jv_copy(J), jv_string("grad_targets"))));
    double nll;
    gr_train_zero_grad(m);
    CHECK(gr_train_step_micro(m, a, &b, 1, 1.0f / (float)N, &nll, &nt, &err) == 0);
    CHECK(nt == N);
    double ref_loss = jv_number_value(jv_object_get(jv_copy(J), jv_string("grad_loss")));
    CHECK_NEAR(nll / (double)N, ref_loss, 1e-5 * ref_loss);
    /* activation recomputation gives the same gradients bit for bit */
    {
        float *keep = malloc(sizeof(float) * (size_t)m->n_params);
        memcpy(keep, m->grads, sizeof(float) * (size_t)m->n_params);
        gr_tact *ar = gr_tact_new(1);
        double nll2;
        gr_train_zero_grad(m);
        CHECK(gr_train_step_micro(m, ar, &b, 1, 1.0f / (float)N, &nll2, &nt, &err) == 0);
        CHECK(nll2 == nll);
        CHECK(memcmp(keep, m->grads, sizeof(float) * (size_t)m->n_params) == 0);
        gr_tact_free(ar);
        free(keep);
    }
    double worst;
    snprintf(path, sizeof path, "testdata/train/%s/grads.safetensors", name);
    CHECK_MSG(compare_block(m, m->grads, path, 1e-4, 1e-7, &worst, what, sizeof what), "%s", what);

    /* 2. three optimizer steps */
    jv plan = jv_object_get(jv_copy(J), jv_string("plan"));
    double lr0 = jv_number_value(jv_object_get(jv_copy(J), jv_string("lr")));
    int T = (int)jv_number_value(jv_object_get(jv_copy(J), jv_string("T")));
    int W = (int)jv_number_value(jv_object_get(jv_copy(J), jv_string("warmup")));
    float maxn = (float)jv_number_value(jv_object_get(jv_copy(J), jv_string("max_grad_norm")));
    jv losses = jv_object_get(jv_copy(J), jv_string("losses"));
    jv norms = jv_object_get(jv_copy(J), jv_string("grad_norms"));
    jv lrs = jv_object_get(jv_copy(J), jv_string("lrs"));
    gr_adamw opt;
    gr_adamw_init(&opt, m->n_params);
    int steps = jv_array_length(jv_copy(plan));
    for (int k = 0; k < steps; k++) {
        jv step = jv_array_get(jv_copy(plan), k);
        int nmb = jv_array_length(jv_copy(step));
        int64_t Nstep = 0;
        for (int u = 0; u < nmb; u++) {
            gr_tbatch mb = make_batch(&S, jv_array_get(jv_copy(step), u), ids, len, np);
            Nstep += gr_tbatch_targets(&mb);
        }
        gr_train_zero_grad(m);
        double tot = 0;
        for (int u = 0; u < nmb; u++) {
            gr_tbatch mb = make_batch(&S, jv_array_get(jv_copy(step), u), ids, len, np);
            CHECK(gr_train_step_micro(m, a, &mb, 1, 1.0f / (float)Nstep, &nll, &nt, &err) == 0);
            tot += nll;
        }
        jv_free(step);
        double rl = jv_number_value(jv_array_get(jv_copy(losses), k));
        CHECK_NEAR(tot / (double)Nstep, rl, 1e-5 * rl);
        double norm = gr_clip_grad_norm(m, maxn);
        double rn = jv_number_value(jv_array_get(jv_copy(norms), k));
        CHECK_NEAR(norm, rn, 1e-4 * rn);
        double lr = gr_lr_cosine(lr0, k, T, W);
        CHECK_NEAR(lr, jv_number_value(jv_array_get(jv_copy(lrs), k)), 1e-12);
        gr_adamw_step(&opt, m, (float)lr);
    }
    snprintf(path, sizeof path, "testdata/train/%s/params3.safetensors", name);
    CHECK_MSG(compare_block(m, m->params, path, 0, 2e-5, &worst, what, sizeof what), "%s", what);
    jv_free(plan); jv_free(losses); jv_free(norms); jv_free(lrs); jv_free(J);
    gr_adamw_free(&opt);
    gr_tact_free(a);
    seqs_free(&S);
    gr_train_model_free(m);
    gr_backend_free(be);
    gr_model_free(gm);
}

TEST(grads_and_steps_gqa_tied) { run_model(test_name_, MODELS[0], 2); }
TEST(grads_and_steps_mha_untied) { run_model(test_name_, MODELS[1], 1); }
TEST(grads_and_steps_llama3_rope) { run_model(test_name_, MODELS[2], 2); }

TEST(lr_schedule_matches_transformers) {
    jv cases = load_json("testdata/train/lr.json");
    CHECK(jv_get_kind(cases) == JV_KIND_ARRAY);
    int nc = jv_array_length(jv_copy(cases));
    for (int c = 0; c < nc; c++) {
        jv o = jv_array_get(jv_copy(cases), c);
        double lr0 = jv_number_value(jv_object_get(jv_copy(o), jv_string("lr")));
        int T = (int)jv_number_value(jv_object_get(jv_copy(o), jv_string("T")));
        int W = (int)jv_number_value(jv_object_get(jv_copy(o), jv_string("warmup")));
        jv seq = jv_object_get(o, jv_string("lrs"));
        for (int k = 0; k <= T; k++)
            CHECK_NEAR(gr_lr_cosine(lr0, k, T, W), jv_number_value(jv_array_get(jv_copy(seq), k)),
                       1e-15);
        jv_free(seq);
    }
    jv_free(cases);
}

int main(void) {
    RUN(grads_and_steps_gqa_tied);
    RUN(grads_and_steps_mha_untied);
    RUN(grads_and_steps_llama3_rope);
    RUN(lr_schedule_matches_transformers);
    return TEST_EXIT();
}
