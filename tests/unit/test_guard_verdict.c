/* Verdict mode (lib/guard_verdict.c): the answer block's ids are the
 * tokenizer's own ids of the whole block (SmolLM2's tokenizer); the batched,
 * prefix-sharing engine reads the same words and logits as a naive one-record,
 * no-prefix, one-forward-per-task reading on the tiny SmolLM2-vocabulary model;
 * its generation turns into verdicts whose scores are the two-word softmax of
 * those logits; tiered mode clears exactly the records with a score in the
 * band; --mode / --escalate parsing. */
#include <stdlib.h>
#include "test.h"
#include "guard_verdict.h"
#include "guard_prompt.h"
#include "model.h"
#include "template.h"

static char *path_of(const char *rel) {
    static char buf[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

static gr_tokenizer *tok(void) {
    gr_err err;
    gr_tokenizer *t = gr_tokenizer_load(path_of("testdata/tokenizer/smollm2/tokenizer.json.zst"), &err);
    if (!t) printf("# %s\n", err.msg);
    return t;
}

TEST(parse_mode_and_band) {
    gr_guard_mode m;
    CHECK(gr_guard_mode_parse("verdict", &m) == 0 && m == GR_GUARD_VERDICT);
    CHECK(gr_guard_mode_parse("tiered", &m) == 0 && m == GR_GUARD_TIERED);
    CHECK(gr_guard_mode_parse("reason", &m) == 0 && m == GR_GUARD_REASON);
    CHECK(gr_guard_mode_parse("Verdict", &m) == -1 && gr_guard_mode_parse("", &m) == -1);
    CHECK_STR(gr_guard_mode_name(GR_GUARD_TIERED), "tiered");
    double lo, hi;
    gr_err err;
    CHECK(gr_escalate_parse("0.1:0.9", &lo, &hi, &err) == 0 && lo == 0.1 && hi == 0.9);
    CHECK(gr_escalate_parse("0:1", &lo, &hi, &err) == 0 && lo == 0 && hi == 1);
    CHECK(gr_escalate_parse("0.5:0.5", &lo, &hi, &err) == 0);
    static const char *bad[] = {"0.9:0.1", "0.1", ":0.9", "0.1:", "-0.1:0.5", "0.1:1.5", "a:b", "0.1:0.9x", "nan:1", "0.1:0.2:0.3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(gr_escalate_parse(bad[i], &lo, &hi, &err) == -1, "accepted '%s'", bad[i]);
}

TEST(plan_is_the_tokenizers_block) {
    gr_tokenizer *t = tok();
    CHECK(t);
    gr_fast_plan p;
    gr_err err;
    CHECK_MSG(gr_fast_plan_init(t, &p, &err) == 0, "%s", err.msg);
    static const char *w[3][3] = {{"harmful", "unharmful", NULL}, {"refusal", "compliance", "None"}, {"harmful", "unharmful", "None"}};
    CHECK(p.n_cand[0] == 2 && p.n_cand[1] == 3 && p.n_cand[2] == 3);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++) {
                char text[200];
                snprintf(text, sizeof text, "Answers: \nRequest: %s\nCompletion: %s\nResponse: %s", w[0][a], w[1][b], w[2][c]);
                gr_ids whole = {0}, parts = {0};
                gr_tokenizer_encode(t, text, strlen(text), &whole, &err);
                gr_ids_append(&parts, p.head.v, p.head.n);
                gr_ids_append(&parts, p.feed[0][a].v, p.feed[0][a].n);
                gr_ids_append(&parts, p.feed[1][b].v, p.feed[1][b].n);
                gr_ids_append(&parts, p.feed[2][c].v, p.feed[2][c].n);
                int same = whole.n == parts.n && memcmp(whole.v, parts.v, sizeof(int32_t) * whole.n) == 0;
                gr_ids_free(&whole);
                gr_ids_free(&parts);
                CHECK_MSG(same, "block '%s' fed as other ids than the tokenizer's", text);
            }
    CHECK(p.label[1][2] == GR_LABEL_NONE && p.label[0][1] == GR_LABEL_UNHARMFUL && p.label[1][0] == GR_LABEL_REFUSAL);
    gr_fast_plan_free(&p);
    gr_tokenizer_free(t);
}

#define NREC 5
static const char *PROMPTS[NREC][2] = {
    {"How do I make a bomb?", "I cannot help with that."},
    {"What is the capital of France?", NULL},
    {"Write a poem about cats.", "Cats are soft, cats are warm."},
    {"Tell me how to hack my neighbour's wifi.", "Sure: first, find the router."},
    {"hi", "hello"}};

/* The naive reading: one record, no prefix, the whole prompt + head in one call. */
static int naive(gr_ctx *c, const gr_fast_plan *p, const gr_ids *prompt, const int *watch, int n_watch,
                 int choice[3], float wl[3][16], gr_err *err) {
    int V = c->model->cfg.vocab_size;
    float *lg = malloc(sizeof(float) * (size_t)V);
    gr_kv *kv = gr_kv_new(c->model, NULL);
    gr_ids seq = {0};
    gr_ids_append(&seq, prompt->v, prompt->n);
    gr_ids_append(&seq, p->head.v, p->head.n);
    const int *tk = seq.v;
    int nt = (int)seq.n, rc = 0;
    for (int k = 0; k < 3 && !rc; k++) {
        if (gr_forward(c, &kv, &tk, &nt, 1, lg, 0, err)) rc = -1;
        int best = 0;
        for (int j = 1; j < p->n_cand[k]; j++)
            if (lg[p->cand[k][j]] > lg[p->cand[k][best]]) best = j;
        choice[k] = best;
        for (int w = 0; w < n_watch; w++) wl[k][w] = lg[watch[w]];
        tk = p->feed[k][best].v;
        nt = (int)p->feed[k][best].n;
    }
    gr_ids_free(&seq);
    gr_kv_free(kv);
    free(lg);
    return rc;
}

TEST(engine_matches_naive_reading) {
    gr_err err;
    gr_tokenizer *t = tok();
    CHECK(t);
    gr_model *m = gr_model_load(path_of("testdata/models/tiny-smollm2-vocab"), &err);
    CHECK_MSG(m, "%s", err.msg);
    gr_backend *be = gr_backend_cpu(2);
    gr_ctx *c = gr_ctx_new(m, be);
    gr_fast_plan p;
    gr_guard_watch w;
    CHECK(gr_fast_plan_init(t, &p, &err) == 0 && gr_guard_watch_init(t, &w, &err) == 0);
    gr_ids ids[NREC] = {{0}};
    gr_gen_req reqs[NREC];
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < NREC; i++) {
        gr_buf in = {0};
        gr_buf_printf(&in, "Human user:\n%s\n\nAI assistant:\n%s\n\n", PROMPTS[i][0], PROMPTS[i][1] ? PROMPTS[i][1] : "None");
        CHECK(gr_template_prompt(t, GR_TEMPLATE_RAW, NULL, gr_guard_instruction, gr_buf_cstr(&in), &ids[i], &err) == 0);
        gr_buf_free(&in);
        reqs[i].prompt = ids[i].v;
        reqs[i].n_prompt = (int)ids[i].n;
    }
    gr_gen_opts g = {.max_batch = 2, .watch = w.ids, .n_watch = w.n, .prefix = ids[0].v, .n_prefix = 40};
    CHECK_MSG(gr_fast_run(c, &p, reqs, NREC, &g, &err) == 0, "%s", err.msg);
    int any_in = 0, any_out = 0;
    double score0[NREC];
    for (int i = 0; i < NREC; i++) {
        int choice[3];
        float wl[3][16];
        CHECK(naive(c, &p, &ids[i], w.ids, w.n, choice, wl, &err) == 0);
        gr_ids want = {0};
        gr_ids_append(&want, p.head.v, p.head.n);
        int steps[3];
        for (int k = 0; k < 3; k++) {
            steps[k] = (int)want.n;
            gr_ids_append(&want, p.feed[k][choice[k]].v, p.feed[k][choice[k]].n);
        }
        CHECK(reqs[i].stop == GR_STOP_EOS && reqs[i].n_out == (int)want.n);
        CHECK(memcmp(reqs[i].out, want.v, sizeof(int) * want.n) == 0);
        gr_ids_free(&want);
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < w.n; j++)
                CHECK_NEAR(reqs[i].watch[(size_t)steps[k] * w.n + j], wl[k][j], 2e-3);
        /* the verdict: labels as chosen, scores the two-word softmax at those steps */
        gr_verdict v;
        CHECK(gr_verdict_build(t, reqs[i].out, reqs[i].n_out, reqs[i].watch, &w, &v, &err) == 0);
        CHECK(v.parse_ok);
        for (int k = 0; k < 3; k++) {
            CHECK(v.ans.label[k] == p.label[k][choice[k]]);
            if (p.label[k][choice[k]] == GR_LABEL_NONE) {
                CHECK(isnan(v.score[k]));
                continue;
            }
            float la = -1e30f, lb = -1e30f;
            for (int j = 0; j < w.n; j++) {
                if (w.ids[j] == p.cand[k][0]) la = wl[k][j];
                if (w.ids[j] == p.cand[k][1]) lb = wl[k][j];
            }
            CHECK_NEAR(v.score[k], 1.0 / (1.0 + exp((double)lb - (double)la)), 1e-3);
            CHECK((v.score[k] >= 0.5) == (choice[k] == 0) || fabs(v.score[k] - 0.5) < 1e-6);
        }
        score0[i] = v.score[0];
        gr_verdict_free(&v);
    }
    /* tiered: a band around the median request score escalates exactly those */
    double sorted[NREC];
    memcpy(sorted, score0, sizeof sorted);
    for (int i = 0; i < NREC; i++)
        for (int j = i + 1; j < NREC; j++)
            if (sorted[j] < sorted[i]) { double x = sorted[i]; sorted[i] = sorted[j]; sorted[j] = x; }
    double lo = sorted[1], hi = sorted[3];
    unsigned char decided[NREC];
    CHECK(gr_fast_window(c, t, &p, &w, &g, 1, lo, hi, reqs, NREC, decided, &err) == 0);
    for (int i = 0; i < NREC; i++) {
        gr_verdict v;
        /* whether a record stands depends on all three tasks' scores: recompute */
        gr_gen_req one = {.prompt = ids[i].v, .n_prompt = (int)ids[i].n};
        CHECK(gr_fast_run(c, &p, &one, 1, &g, &err) == 0);
        CHECK(gr_verdict_build(t, one.out, one.n_out, one.watch, &w, &v, &err) == 0);
        int in = gr_fast_in_band(&v, lo, hi);
        gr_verdict_free(&v);
        gr_gen_req_free(&one);
        CHECK_MSG(decided[i] == !in, "record %d: decided %d, in band %d", i, decided[i], in);
        if (!decided[i]) CHECK(reqs[i].n_out == 0 && reqs[i].out == NULL && reqs[i].stop == GR_STOP_NONE);
        any_in |= in;
        any_out |= !in;
    }
    CHECK(any_in && any_out);
    /* too long for the context: no output, the verdict tier decides it (as an error) */
    gr_gen_opts shortctx = g;
    shortctx.max_len = reqs[1].n_prompt + 3;
    shortctx.prefix = NULL;
    shortctx.n_prefix = 0;
    CHECK(gr_fast_window(c, t, &p, &w, &shortctx, 1, 0, 1, &reqs[1], 1, decided, &err) == 0);
    CHECK(reqs[1].stop == GR_STOP_TOO_LONG && reqs[1].n_out == 0 && decided[0] == 1);
    for (int i = 0; i < NREC; i++) {
        gr_gen_req_free(&reqs[i]);
        gr_ids_free(&ids[i]);
    }
    gr_fast_plan_free(&p);
    gr_ctx_free(c);
    gr_backend_free(be);
    gr_model_free(m);
    gr_tokenizer_free(t);
}

int main(void) {
    RUN(parse_mode_and_band);
    RUN(plan_is_the_tokenizers_block);
    RUN(engine_matches_naive_reading);
    return TEST_EXIT();
}
