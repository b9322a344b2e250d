/* Guard queries and verdicts: see guard.h. */
#include "guard.h"
#include "gr_io.h"
#include "gr_utf8.h"
#include "guard_prompt.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int gr_guard_query(jv rec, char **instruction, char **input, gr_err *err) {
    *instruction = *input = NULL;
    if (gr_jv_has(rec, "instruction") || gr_jv_has(rec, "input")) {
        const char *in = gr_jv_str(rec, "instruction"), *inp = gr_jv_str(rec, "input");
        if ((gr_jv_has(rec, "instruction") && !in) || (gr_jv_has(rec, "input") && !inp))
            return gr_errf(err, "alpaca record: instruction and input must be strings");
        *instruction = gr_xstrdup(in ? in : "");
        *input = gr_xstrdup(inp ? inp : "");
        return 0;
    }
    if (!gr_jv_has(rec, "prompt"))
        return gr_errf(err, "record has neither instruction/input nor prompt");
    const char *p = gr_jv_str(rec, "prompt"), *r = gr_jv_str(rec, "response");
    if (!p) return gr_errf(err, "prompt must be a string");
    if (gr_jv_has(rec, "response") && !r) return gr_errf(err, "response must be a string or null");
    gr_buf b = {0};
    gr_buf_printf(&b, "Human user:\n%s\n\nAI assistant:\n%s\n\n", p, r ? r : "None");
    *instruction = gr_xstrndup(gr_guard_instruction, GR_GUARD_INSTRUCTION_LEN);
    *input = gr_xstrdup(gr_buf_cstr(&b));
    gr_buf_free(&b);
    return 0;
}

static const char *WORDS[GR_NTASKS][2] = {
    {"harmful", "unharmful"}, {"refusal", "compliance"}, {"harmful", "unharmful"}};
static const char *PREFIXES[] = {"", " "};

/* First id of enc(prefix + word), or -1. */
static int first_id(const gr_tokenizer *t, const char *prefix, const char *word, gr_err *err) {
    char s[64];
    snprintf(s, sizeof s, "%s%s", prefix, word);
    gr_ids ids = {0};
    int r = -1;
    if (gr_tokenizer_encode(t, s, strlen(s), &ids, err) == 0 && ids.n > 0) r = ids.v[0];
    gr_ids_free(&ids);
    return r;
}

int gr_guard_watch_init(const gr_tokenizer *t, gr_guard_watch *w, gr_err *err) {
    w->n = 0;
    for (int k = 0; k < GR_NTASKS; k++)
        for (int j = 0; j < 2; j++)
            for (size_t p = 0; p < sizeof PREFIXES / sizeof *PREFIXES; p++) {
                int id = first_id(t, PREFIXES[p], WORDS[k][j], err);
                if (id < 0) return gr_errf(err, "tokenizer cannot encode '%s'", WORDS[k][j]);
                int seen = 0;
                for (int i = 0; i < w->n; i++) seen |= w->ids[i] == id;
                if (!seen && w->n < GR_GUARD_MAX_WATCH) w->ids[w->n++] = id;
            }
    return 0;
}

static int watch_index(const gr_guard_watch *w, int id) {
    for (int i = 0; i < w->n; i++)
        if (w->ids[i] == id) return i;
    return -1;
}

static int ci_prefix(const char *s, size_t n, const char *word) {
    size_t k = strlen(word);
    if (k > n) return 0;
    for (size_t i = 0; i < k; i++)
        if (tolower((unsigned char)s[i]) != word[i]) return 0;
    return 1;
}

/* Byte offset of the answer word of task k: the first "<Title>:\s*(pos|neg)"
 * (case-insensitive) in text[from..n); -1 if none. */
static long answer_word_pos(const char *text, size_t n, size_t from, int k) {
    static const char *titles[GR_NTASKS] = {"request:", "completion:", "response:"};
    size_t tl = strlen(titles[k]);
    for (size_t i = from; i + tl <= n; i++) {
        if (!ci_prefix(text + i, n - i, titles[k])) continue;
        size_t j = i + tl;
        while (j < n && isspace((unsigned char)text[j])) j++;
        const char *a = k == 1 ? "refusal" : "harmful", *b = k == 1 ? "compliance" : "unharmful";
        if (ci_prefix(text + j, n - j, a) || ci_prefix(text + j, n - j, b)) return (long)j;
    }
    return -1;
}

int gr_verdict_build(const gr_tokenizer *t, const int *ids, int n, const float *watch_logits,
                     const gr_guard_watch *w, gr_verdict *v, gr_err *err) {
    memset(v, 0, sizeof *v);
    size_t *off = gr_xmalloc(sizeof(size_t) * (size_t)(n + 1));
    gr_tok_decoder *d = gr_tok_decoder_new(t, 1);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        off[i] = v->text.len;
        if (gr_tok_decoder_put(d, ids[i], &v->text, err) < 0) rc = -1;
    }
    gr_tok_decoder_flush(d, &v->text);
    gr_tok_decoder_free(d);
    off[n] = v->text.len;
    if (rc) {
        free(off);
        return -1;
    }
    const char *text = gr_buf_cstr(&v->text);
    size_t len = v->text.len, tail = gr_utf8_tail(text, len, 300);
    gr_answers_parse(text, len, 300, &v->ans);
    v->parse_ok = v->ans.label[GR_TASK_REQUEST] != GR_LABEL_NONE;
    for (int k = 0; k < GR_NTASKS; k++) {
        v->score[k] = NAN;
        if (v->ans.label[k] == GR_LABEL_NONE || !watch_logits) continue;
        long pos = answer_word_pos(text, len, tail, k);
        if (pos < 0) continue;
        /* the step whose token holds the word's first byte */
        int step = -1;
        for (int i = 0; i < n; i++)
            if (off[i] <= (size_t)pos && (size_t)pos < off[i + 1]) step = i;
        if (step < 0) continue;
        size_t pl = (size_t)pos - off[step];
        char prefix[8];
        if (pl >= sizeof prefix) continue;
        memcpy(prefix, text + off[step], pl);
        prefix[pl] = 0;
        int ia = watch_index(w, first_id(t, prefix, WORDS[k][0], err));
        int ib = watch_index(w, first_id(t, prefix, WORDS[k][1], err));
        if (ia < 0 || ib < 0 || ia == ib) continue;
        double la = watch_logits[(size_t)step * w->n + ia], lb = watch_logits[(size_t)step * w->n + ib];
        v->score[k] = 1.0 / (1.0 + exp(lb - la));
    }
    free(off);
    return 0;
}

void gr_verdict_free(gr_verdict *v) { gr_buf_free(&v->text); }

jv gr_verdict_to_json(const gr_verdict *v, jv rec) {
    rec = jv_object_set(rec, jv_string("reasoning"), jv_string_sized(v->text.data ? v->text.data : "", (int)v->text.len));
    jv pred = jv_object(), scores = jv_object();
    for (int k = 0; k < GR_NTASKS; k++) {
        const char *name = gr_label_name(v->ans.label[k]);
        pred = jv_object_set(pred, jv_string(gr_task_field((gr_task)k)), name ? jv_string(name) : jv_null());
        scores = jv_object_set(scores, jv_string(gr_task_field((gr_task)k)),
                               isnan(v->score[k]) ? jv_null() : jv_number(v->score[k]));
    }
    rec = jv_object_set(rec, jv_string("pred"), pred);
    rec = jv_object_set(rec, jv_string("scores"), scores);
    return jv_object_set(rec, jv_string("parse_ok"), jv_bool(v->parse_ok));
}
