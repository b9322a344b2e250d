/* Guard queries and verdicts: the prompt built from each record kind, the
 * answer block parsed, and scores computed at the answer word's step from the
 * kept logits (SmolLM2's tokenizer from testdata/tokenizer). */
#include <stdlib.h>
#include "test.h"
#include "guard.h"
#include "guard_prompt.h"

static gr_tokenizer *tok(void) {
    char path[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(path, sizeof path, "%s/testdata/tokenizer/smollm2/tokenizer.json.zst", root ? root : ".");
    gr_err err;
    gr_tokenizer *t = gr_tokenizer_load(path, &err);
    if (!t) printf("# %s\n", err.msg);
    return t;
}

TEST(queries) {
    gr_err err;
    char *ins, *in;
    jv r = jv_parse("{\"prompt\":\"hi\",\"response\":null}");
    CHECK(gr_guard_query(r, &ins, &in, &err) == 0);
    CHECK_STR(in, "Human user:\nhi\n\nAI assistant:\nNone\n\n");
    CHECK(strlen(ins) == GR_GUARD_INSTRUCTION_LEN && ins[489] == '\n');
    free(ins); free(in); jv_free(r);
    r = jv_parse("{\"prompt\":\"hi\",\"response\":\"yo\"}");
    CHECK(gr_guard_query(r, &ins, &in, &err) == 0);
    CHECK_STR(in, "Human user:\nhi\n\nAI assistant:\nyo\n\n");
    free(ins); free(in); jv_free(r);
    r = jv_parse("{\"instruction\":\"I\",\"input\":\"X\",\"output\":\"harmful\"}");
    CHECK(gr_guard_query(r, &ins, &in, &err) == 0);
    CHECK_STR(ins, "I");
    CHECK_STR(in, "X");
    free(ins); free(in); jv_free(r);
    r = jv_parse("{\"text\":\"x\"}");
    CHECK(gr_guard_query(r, &ins, &in, &err) == -1 && strstr(err.msg, "neither"));
    jv_free(r);
    r = jv_parse("{\"prompt\":3}");
    CHECK(gr_guard_query(r, &ins, &in, &err) == -1);
    jv_free(r);
}

TEST(verdict_and_scores) {
    gr_tokenizer *t = tok();
    CHECK(t);
    gr_err err;
    gr_guard_watch w;
    CHECK(gr_guard_watch_init(t, &w, &err) == 0);
    CHECK(w.n >= 6);
    const char *text = "The request asks for weapons.\n\nAnswers: \nRequest: harmful\nCompletion: refusal\n"
                       "Response: unharmful\n";
    gr_ids ids = {0};
    CHECK(gr_tokenizer_encode(t, text, strlen(text), &ids, &err) == 0);
    /* logits: 0 everywhere; at the step of each answer word, +a for the positive
     * word's first token and +b for the negative one */
    float *wl = calloc(ids.n * (size_t)w.n, sizeof(float));
    gr_ids h = {0}, u = {0}, rf = {0}, cp = {0};
    gr_tokenizer_encode(t, " harmful", 8, &h, &err);
    gr_tokenizer_encode(t, " unharmful", 10, &u, &err);
    gr_tokenizer_encode(t, " refusal", 8, &rf, &err);
    gr_tokenizer_encode(t, " compliance", 11, &cp, &err);
    int seen_h = 0;
    for (size_t i = 0; i < ids.n; i++) {
        for (int k = 0; k < w.n; k++) {
            float *x = &wl[i * (size_t)w.n + k];
            if (ids.v[i] == h.v[0] && w.ids[k] == h.v[0]) *x = 2.0f;        /* Request: p = sigmoid(2 - (-1)) */
            if (ids.v[i] == h.v[0] && w.ids[k] == u.v[0]) *x = -1.0f;
            if (ids.v[i] == rf.v[0] && w.ids[k] == rf.v[0]) *x = 0.5f;      /* Completion: sigmoid(0.5) */
            if (ids.v[i] == u.v[0] && w.ids[k] == u.v[0]) *x = 3.0f;        /* Response: sigmoid(-3) */
        }
        seen_h |= ids.v[i] == h.v[0];
    }
    CHECK(seen_h);
    gr_verdict v;
    CHECK(gr_verdict_build(t, ids.v, (int)ids.n, wl, &w, &v, &err) == 0);
    CHECK_STR(gr_buf_cstr(&v.text), text);
    CHECK(v.parse_ok);
    CHECK(v.ans.label[GR_TASK_REQUEST] == GR_LABEL_HARMFUL);
    CHECK(v.ans.label[GR_TASK_COMPLETION] == GR_LABEL_REFUSAL);
    CHECK(v.ans.label[GR_TASK_RESPONSE] == GR_LABEL_UNHARMFUL);
    CHECK_NEAR(v.score[GR_TASK_REQUEST], 1 / (1 + exp(-3.0)), 1e-6);
    CHECK_NEAR(v.score[GR_TASK_COMPLETION], 1 / (1 + exp(-0.5)), 1e-6);
    CHECK_NEAR(v.score[GR_TASK_RESPONSE], 1 / (1 + exp(3.0)), 1e-6);
    jv out = gr_verdict_to_json(&v, jv_object());
    jv s = jv_object_get(jv_object_get(jv_copy(out), jv_string("pred")), jv_string("completion"));
    CHECK_STR(jv_string_value(s), "refusal");
    jv_free(s);
    jv_free(out);
    gr_verdict_free(&v);
    /* no answer block: parse_ok false, scores null */
    gr_ids_free(&ids);
    gr_tokenizer_encode(t, "I am not sure.", 14, &ids, &err);
    CHECK(gr_verdict_build(t, ids.v, (int)ids.n, wl, &w, &v, &err) == 0);
    CHECK(!v.parse_ok && isnan(v.score[0]));
    gr_verdict_free(&v);
    free(wl);
    gr_ids_free(&ids); gr_ids_free(&h); gr_ids_free(&u); gr_ids_free(&rf); gr_ids_free(&cp);
    gr_tokenizer_free(t);
}

int main(void) {
    RUN(queries);
    RUN(verdict_and_scores);
    return TEST_EXIT();
}
