/* The DPO trainer against PyTorch + transformers (scripts/make-dpo-fixtures.py):
 * per-pair policy log-probs, h, the weighted DPO term, the SFT term and the
 * loss; the step's means (loss, parts, rewards, accuracy, margin), the gradient
 * norm and every parameter's gradient of the mean loss, weighted and plain; for
 * plain DPO also TRL's sigmoid loss (+ LF's ftx term). Also: the reference pass,
 * the reference file (round trip, other pairs, damage) and the pair loaders.
 * Tolerances (fp32 forward/backward): log-probs 2e-4 absolute (sums of ~10 terms
 * of ~5); per-pair loss and means 1e-5 relative + 1e-6; gradients
 * |ours − ref| <= 1e-4·max|ref| + 1e-7 per tensor; grad norm 1e-4 relative. */
#include "test.h"
#include "dpo.h"
#include "safetensors.h"
#include <jv.h>
#include <unistd.h>

static jv load_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return jv_invalid();
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    b[n] = 0;
    fclose(f);
    jv v = jv_parse(b);
    free(b);
    return v;
}

static double num(jv o, const char *k) {
    jv v = jv_object_get(jv_copy(o), jv_string(k));
    double d = jv_number_value(v);
    jv_free(v);
    return d;
}
static double at(jv o, const char *k, int i) {
    jv a = jv_object_get(jv_copy(o), jv_string(k));
    double d = jv_number_value(jv_array_get(a, i));
    return d;
}

static int compare_grads(const gr_train_model *m, const char *path, char *what, size_t wn) {
    gr_err err;
    st_file *f = st_open(path, &err);
    if (!f) { snprintf(what, wn, "%.400s", err.msg); return 0; }
    int ok = 1;
    for (int i = 0; i < m->n_tab && ok; i++) {
        const gr_tparam *p = &m->tab[i];
        const st_tensor *t = st_find(f, p->name);
        int64_t n = p->rows * (p->cols ? p->cols : 1);
        if (!t || t->dtype != ST_F32 || t->nbytes != (uint64_t)n * 4) {
            snprintf(what, wn, "%.96s missing or wrong size", p->name);
            ok = 0;
            break;
        }
        const float *ref = t->data;
        double mx = 0, e = 0;
        for (int64_t j = 0; j < n; j++) mx = fmax(mx, fabs(ref[j]));
        for (int64_t j = 0; j < n; j++) e = fmax(e, fabs(ref[j] - m->grads[p->off + j]));
        if (e > 1e-4 * mx + 1e-7) {
            snprintf(what, wn, "%.96s: max error %g (max abs ref %g)", p->name, e, mx);
            ok = 0;
        }
    }
    st_close(f);
    return ok;
}

/* The fixture's pairs as pre-tokenized JSONL, loaded through gr_pdata_load. */
static int load_pairs(jv J, int vocab, gr_pdata *d, gr_err *err) {
    char path[] = "/tmp/gr-test-dpo-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return gr_errf(err, "mkstemp");
    FILE *f = fdopen(fd, "w");
    jv pairs = jv_object_get(jv_copy(J), jv_string("pairs"));
    for (int i = 0; i < jv_array_length(jv_copy(pairs)); i++) {
        jv s = jv_dump_string(jv_array_get(jv_copy(pairs), i), 0);
        fprintf(f, "%s\n", jv_string_value(s));
        jv_free(s);
    }
    jv_free(pairs);
    fclose(f);
    gr_pdata_opts o = {vocab, 2048, NULL, GR_TEMPLATE_RAW, NULL, 0};
    int rc = gr_pdata_load(path, &o, d, err);
    unlink(path);
    return rc;
}

static void run(const char *test_name_, const char *name, int weighted, int threads, int recompute) {
    char path[512], what[512];
    gr_err err;
    snprintf(path, sizeof path, "testdata/models/%s", name);
    gr_model *gm = gr_model_load(path, &err);
    CHECK_MSG(gm, "%s", err.msg);
    gr_backend *be = gr_backend_cpu(threads);
    gr_train_model *m = gr_train_model_new(gm, be, &err);
    CHECK_MSG(m, "%s", err.msg);
    snprintf(path, sizeof path, "testdata/dpo/%s/pairs.json", name);
    jv J = load_json(path);
    CHECK(jv_get_kind(J) == JV_KIND_OBJECT);
    jv R = jv_object_get(jv_copy(J), jv_string(weighted ? "weighted" : "plain"));
    gr_pdata pd;
    CHECK_MSG(load_pairs(J, m->cfg.vocab_size, &pd, &err) == 0, "%s", err.msg);
    int n = pd.n;
    CHECK(n == 6);
    gr_dpo_opts o;
    gr_dpo_opts_default(&o);
    o.beta = num(J, "beta");
    o.ftx = num(J, "ftx");
    o.use_weights = weighted;
    o.recompute = recompute;
    o.grad_accum = n; /* one step over all pairs */
    o.epochs = 1;
    o.lr = 0;
    o.max_grad_norm = 0;
    gr_dpo s;
    CHECK_MSG(gr_dpo_init(&s, m, &pd, &o, &err) == 0, "%s", err.msg);
    CHECK(s.plan.T == 1);

    /* the reference pass with the policy itself gives the policy's log-probs */
    CHECK_MSG(gr_dpo_reference(&s, NULL, NULL, &err) == 0, "%s", err.msg);
    for (int i = 0; i < n; i++) {
        CHECK_NEAR(s.ref_c[i], at(R, "policy_chosen", i), 2e-4);
        CHECK_NEAR(s.ref_r[i], at(R, "policy_rejected", i), 2e-4);
    }
    /* per pair, against the fixture's reference numbers */
    for (int i = 0; i < n; i++) {
        s.ref_c[i] = at(J, "ref_chosen", i);
        s.ref_r[i] = at(J, "ref_rejected", i);
        gr_dpo_terms t;
        gr_dpo_pair_terms(o.beta, o.ftx, weighted ? pd.weight[i] : 1.0, at(R, "policy_chosen", i),
                          at(R, "policy_rejected", i), s.ref_c[i], s.ref_r[i],
                          (int64_t)at(R, "len_chosen", i), &t);
        CHECK(pd.len_c[i] - pd.n_prompt[i] == (int)at(R, "len_chosen", i));
        CHECK_NEAR(t.h, at(R, "h", i), 1e-6 * fabs(t.h) + 1e-6);
        CHECK_NEAR(t.dpo, at(R, "dpo", i), 1e-5 * fabs(t.dpo) + 1e-6);
        CHECK_NEAR(t.sft, at(R, "sft", i), 1e-5 * fabs(t.sft) + 1e-6);
        CHECK_NEAR(t.loss, at(R, "loss", i), 1e-5 * fabs(t.loss) + 1e-6);
        if (!weighted) CHECK_NEAR(t.loss, at(R, "trl_loss", i), 1e-5 * fabs(t.loss) + 1e-6);
    }
    /* the step: means, gradient norm, gradients */
    gr_dpo_info in;
    CHECK_MSG(gr_dpo_step(&s, &in, &err) == 0, "%s", err.msg);
    jv M = jv_object_get(jv_copy(R), jv_string("mean"));
    CHECK(in.pairs == n);
    CHECK_NEAR(in.loss, num(M, "loss"), 1e-5 * fabs(in.loss) + 1e-6);
    CHECK_NEAR(in.dpo_loss, num(M, "dpo_loss"), 1e-5 * fabs(in.dpo_loss) + 1e-6);
    CHECK_NEAR(in.sft_loss, num(M, "sft_loss"), 1e-5 * fabs(in.sft_loss) + 1e-6);
    CHECK_NEAR(in.reward_c, num(M, "rewards/chosen"), 1e-5 * fabs(in.reward_c) + 1e-5);
    CHECK_NEAR(in.reward_r, num(M, "rewards/rejected"), 1e-5 * fabs(in.reward_r) + 1e-5);
    CHECK_NEAR(in.margin, num(M, "rewards/margins"), 1e-5 * fabs(in.margin) + 1e-5);
    CHECK_NEAR(in.accuracy, num(M, "rewards/accuracies"), 1e-6); /* fp32 in the fixture */
    double gn = num(R, "grad_norm");
    CHECK_NEAR(in.grad_norm, gn, 1e-4 * gn);
    jv_free(M);
    snprintf(path, sizeof path, "testdata/dpo/%s/grads-%s.safetensors", name,
             weighted ? "weighted" : "plain");
    CHECK_MSG(compare_grads(m, path, what, sizeof what), "%s", what);

    /* the reference file: round trip, another model, damage */
    char rp[] = "/tmp/gr-test-dpo-ref-XXXXXX";
    int fd = mkstemp(rp);
    CHECK(fd >= 0);
    close(fd);
    CHECK_MSG(gr_dpo_ref_write(&s, rp, 1234, &err) == 0, "%s", err.msg);
    double keep = s.ref_c[2];
    s.ref_c[2] = 0;
    CHECK(gr_dpo_ref_read(&s, rp, 1234, &err) == 1);
    CHECK(s.ref_c[2] == keep);
    CHECK(gr_dpo_ref_read(&s, rp, 999, &err) == 0);
    FILE *f = fopen(rp, "r+b");
    fseek(f, 50, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    CHECK(gr_dpo_ref_read(&s, rp, 1234, &err) == -1);
    unlink(rp);

    gr_dpo_free(&s);
    gr_pdata_free(&pd);
    jv_free(R);
    jv_free(J);
    gr_train_model_free(m);
    gr_backend_free(be);
    gr_model_free(gm);
}

TEST(dpo_weighted_gqa_tied) { run(test_name_, "tiny-gqa-tied", 1, 2, 0); }
TEST(dpo_weighted_gqa_tied_recompute) { run(test_name_, "tiny-gqa-tied", 1, 1, 1); }
TEST(dpo_plain_gqa_tied_and_trl) { run(test_name_, "tiny-gqa-tied", 0, 1, 0); }
TEST(dpo_weighted_mha_untied) { run(test_name_, "tiny-mha-untied", 1, 1, 0); }
TEST(dpo_plain_mha_untied_and_trl) { run(test_name_, "tiny-mha-untied", 0, 2, 1); }

TEST(dpo_pair_terms_extremes) {
    gr_dpo_terms t;
    /* h = 0: L_dpo = log 2, ∂/∂πc = −wβ/2 − ftx/|c| */
    gr_dpo_pair_terms(0.1, 2.0, 1.2, -10, -12, -10, -12, 4, &t);
    CHECK_NEAR(t.dpo, 1.2 * log(2.0), 1e-15);
    CHECK_NEAR(t.dl_dpc, -1.2 * 0.1 * 0.5 - 0.5, 1e-15);
    CHECK_NEAR(t.dl_dpr, 1.2 * 0.1 * 0.5, 1e-15);
    CHECK_NEAR(t.sft, 2.5, 1e-15);
    /* a huge margin either way stays finite */
    gr_dpo_pair_terms(1.0, 0, 1, 0, -2000, 0, 0, 1, &t);
    CHECK(t.dpo >= 0 && t.dpo < 1e-12 && isfinite(t.dl_dpc));
    gr_dpo_pair_terms(1.0, 0, 1, -2000, 0, 0, 0, 1, &t);
    CHECK_NEAR(t.dpo, 2000, 1e-9);
    CHECK_NEAR(t.dl_dpr, 1.0, 1e-12);
}

TEST(dpo_pairs_bad_records) {
    const char *cases[][2] = {
        {"{\"prompt_ids\":[1,2],\"chosen_ids\":[3],\"rejected_ids\":[999]}", "rejected_ids"},
        {"{\"prompt_ids\":[],\"chosen_ids\":[3],\"rejected_ids\":[4]}", "prompt is empty"},
        {"{\"prompt_ids\":[1],\"chosen_ids\":[],\"rejected_ids\":[4]}", "response is empty"},
        {"{\"prompt_ids\":[1],\"chosen_ids\":[2],\"rejected_ids\":[4],\"weight\":\"x\"}", "not a number"},
        {"{\"prompt_ids\":[1,2,3],\"chosen_ids\":[2,3],\"rejected_ids\":[4]}", "cutoff"},
        {"{\"instruction\":\"a\",\"input\":\"b\",\"chosen\":\"c\",\"rejected\":\"d\"}", "needs a tokenizer"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char path[] = "/tmp/gr-test-dpo-bad-XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        FILE *f = fdopen(fd, "w");
        fprintf(f, "{\"prompt_ids\":[1],\"chosen_ids\":[2],\"rejected_ids\":[3],\"weight\":null}\n%s\n",
                cases[k][0]);
        fclose(f);
        gr_pdata d;
        gr_err err = {{0}};
        gr_pdata_opts o = {300, 4, NULL, GR_TEMPLATE_RAW, NULL, 0};
        int rc = gr_pdata_load(path, &o, &d, &err);
        unlink(path);
        CHECK_MSG(rc == -1 && strstr(err.msg, ":2: ") && strstr(err.msg, cases[k][1]),
                  "case %zu: %s", k, err.msg);
    }
    /* with weights on, a null weight (or sample_weight) is refused at its line */
    static const char *nulls[] = {"\"weight\":null", "\"sample_weight\":null", "\"sample_weight\":null,\"weight\":1"};
    for (size_t k = 0; k < sizeof nulls / sizeof nulls[0]; k++) {
        char path[] = "/tmp/gr-test-dpo-null-XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        FILE *f = fdopen(fd, "w");
        fprintf(f, "{\"prompt_ids\":[1],\"chosen_ids\":[2],\"rejected_ids\":[3]}\n"
                   "{\"prompt_ids\":[1],\"chosen_ids\":[2],\"rejected_ids\":[3],%s}\n", nulls[k]);
        fclose(f);
        gr_pdata d;
        gr_err err = {{0}};
        gr_pdata_opts o = {300, 4, NULL, GR_TEMPLATE_RAW, NULL, 1};
        int rc = gr_pdata_load(path, &o, &d, &err);
        unlink(path);
        CHECK_MSG(rc == -1 && strstr(err.msg, ":2: ") && strstr(err.msg, "null"), "null case %zu: %s", k, err.msg);
    }
}

/* gr_train_backward_micro from a kept forward = gr_train_step_micro with
 * backward, bit for bit; refused without a kept forward of that batch. */
TEST(backward_from_kept_forward) {
    gr_err err;
    gr_model *gm = gr_model_load("testdata/models/tiny-mha-untied", &err);
    CHECK_MSG(gm, "%s", err.msg);
    gr_backend *be = gr_backend_cpu(2);
    gr_train_model *m = gr_train_model_new(gm, be, &err);
    CHECK(m);
    int s0[] = {1, 5, 9, 33, 2, 7, 8}, s1[] = {4, 4, 100, 3};
    const int *ids[2] = {s0, s1};
    int len[2] = {7, 4}, np[2] = {3, 1};
    gr_tbatch b = {2, ids, len, np};
    gr_tact *a = gr_tact_new(0);
    double nll1, nll2;
    int64_t nt;
    gr_train_zero_grad(m);
    CHECK(gr_train_step_micro(m, a, &b, 1, 0.37f, &nll1, &nt, &err) == 0);
    float *g1 = malloc(sizeof(float) * (size_t)m->n_params);
    memcpy(g1, m->grads, sizeof(float) * (size_t)m->n_params);
    CHECK(gr_train_backward_micro(m, a, &b, 0.37f, &err) == -1); /* used up */
    gr_train_zero_grad(m);
    CHECK(gr_train_step_micro(m, a, &b, 0, 0.0f, &nll2, &nt, &err) == 0);
    CHECK(nll1 == nll2);
    gr_tbatch b1 = {1, ids, len, np};
    CHECK(gr_train_backward_micro(m, a, &b1, 0.37f, &err) == -1); /* another batch */
    CHECK_MSG(gr_train_backward_micro(m, a, &b, 0.37f, &err) == 0, "%s", err.msg);
    CHECK(memcmp(g1, m->grads, sizeof(float) * (size_t)m->n_params) == 0);
    free(g1);
    gr_tact_free(a);
    gr_train_model_free(m);
    gr_backend_free(be);
    gr_model_free(gm);
}

int main(void) {
    RUN(backward_from_kept_forward);
    RUN(dpo_weighted_gqa_tied);
    RUN(dpo_weighted_gqa_tied_recompute);
    RUN(dpo_plain_gqa_tied_and_trl);
    RUN(dpo_weighted_mha_untied);
    RUN(dpo_plain_mha_untied_and_trl);
    RUN(dpo_pair_terms_extremes);
    RUN(dpo_pairs_bad_records);
    return TEST_EXIT();
}
