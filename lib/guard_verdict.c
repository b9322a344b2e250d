/* The guard's verdict and tiered modes: see guard_verdict.h. */
#include "guard_verdict.h"
#include "model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int gr_guard_mode_parse(const char *s, gr_guard_mode *mode) {
    static const char *names[] = {"reason", "verdict", "tiered"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *mode = (gr_guard_mode)i;
            return 0;
        }
    return -1;
}

const char *gr_guard_mode_name(gr_guard_mode mode) {
    return mode == GR_GUARD_VERDICT ? "verdict" : mode == GR_GUARD_TIERED ? "tiered" : "reason";
}

static int parse_prob(const char *s, size_t n, double *out) {
    char buf[64];
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    double v = strtod(buf, &end);
    if (*end || !(v >= 0.0 && v <= 1.0)) return -1;
    *out = v;
    return 0;
}

int gr_escalate_parse(const char *s, double *lo, double *hi, gr_err *err) {
    const char *colon = strchr(s, ':');
    if (!colon || parse_prob(s, (size_t)(colon - s), lo) || parse_prob(colon + 1, strlen(colon + 1), hi))
        return gr_errf(err, "'%s': want LO:HI, two probabilities (e.g. 0.1:0.9)", s);
    if (*lo > *hi) return gr_errf(err, "'%s': LO is above HI", s);
    return 0;
}

/* ---- the plan: the answer block's ids --------------------------------------- */
static int encode(const gr_tokenizer *t, const char *s, gr_ids *out, gr_err *err) {
    out->n = 0;
    if (gr_tokenizer_encode(t, s, strlen(s), out, err)) return -1;
    if (out->n == 0) return gr_errf(err, "the tokenizer gives no ids for '%s'", s);
    return 0;
}

int gr_fast_plan_init(const gr_tokenizer *t, gr_fast_plan *p, gr_err *err) {
    memset(p, 0, sizeof *p);
    static const char *words[GR_NTASKS][GR_FAST_MAX_CAND] = {
        {"harmful", "unharmful", NULL}, {"refusal", "compliance", "None"}, {"harmful", "unharmful", "None"}};
    static const gr_label labels[GR_NTASKS][GR_FAST_MAX_CAND] = {
        {GR_LABEL_HARMFUL, GR_LABEL_UNHARMFUL, GR_LABEL_NONE},
        {GR_LABEL_REFUSAL, GR_LABEL_COMPLIANCE, GR_LABEL_NONE},
        {GR_LABEL_HARMFUL, GR_LABEL_UNHARMFUL, GR_LABEL_NONE}};
    if (encode(t, "Answers: \nRequest:", &p->head, err)) goto fail;
    p->max_tail = (int)p->head.n;
    for (int k = 0; k < GR_NTASKS; k++) {
        int longest = 0;
        for (int j = 0; j < GR_FAST_MAX_CAND && words[k][j]; j++) {
            char s[64];
            gr_ids first = {0};
            snprintf(s, sizeof s, " %s", words[k][j]);
            if (encode(t, s, &first, err)) {
                gr_ids_free(&first);
                goto fail;
            }
            if (k + 1 < GR_NTASKS) snprintf(s, sizeof s, " %s\n%s:", words[k][j], gr_task_title((gr_task)(k + 1)));
            int rc = encode(t, s, &p->feed[k][j], err);
            /* the word is read from its first token's logit: the token the fed
             * line starts with, and one no other candidate of the task shares */
            int id = first.v[0];
            gr_ids_free(&first);
            if (rc) goto fail;
            if (p->feed[k][j].v[0] != id) {
                gr_errf(err, "the tokenizer merges '%s' with the next line; verdict mode cannot read it", words[k][j]);
                goto fail;
            }
            for (int i = 0; i < j; i++)
                if (p->cand[k][i] == id) {
                    gr_errf(err, "'%s' and '%s' start with the same token; verdict mode cannot tell them apart",
                            words[k][i], words[k][j]);
                    goto fail;
                }
            p->cand[k][j] = id;
            p->label[k][j] = labels[k][j];
            p->n_cand[k] = j + 1;
            if ((int)p->feed[k][j].n > longest) longest = (int)p->feed[k][j].n;
        }
        p->max_tail += longest;
    }
    return 0;
fail:
    gr_fast_plan_free(p);
    return -1;
}

void gr_fast_plan_free(gr_fast_plan *p) {
    gr_ids_free(&p->head);
    for (int k = 0; k < GR_NTASKS; k++)
        for (int j = 0; j < GR_FAST_MAX_CAND; j++) gr_ids_free(&p->feed[k][j]);
    memset(p, 0, sizeof *p);
}

/* ---- verdict mode ----------------------------------------------------------- */
static void out_append(gr_gen_req *r, const int32_t *ids, int n, int n_watch) {
    if (r->n_out + n > r->cap_out) {
        r->cap_out = r->n_out + n + 16;
        r->out = gr_xrealloc(r->out, sizeof(int) * (size_t)r->cap_out);
        if (n_watch) r->watch = gr_xrealloc(r->watch, sizeof(float) * (size_t)r->cap_out * (size_t)n_watch);
    }
    for (int i = 0; i < n; i++) r->out[r->n_out + i] = ids[i];
    /* only the steps where a word was read carry logits; the others are fed text */
    if (n_watch) memset(r->watch + (size_t)r->n_out * n_watch, 0, sizeof(float) * (size_t)n * (size_t)n_watch);
    r->n_out += n;
}

int gr_fast_run(gr_ctx *c, const gr_fast_plan *p, gr_gen_req *reqs, int n, const gr_gen_opts *g, gr_err *err) {
    const gr_model *m = c->model;
    int V = m->cfg.vocab_size;
    int max_len = g->max_len > 0 && g->max_len < m->cfg.max_pos ? g->max_len : m->cfg.max_pos;
    int B = g->max_batch > 0 ? g->max_batch : 1;
    for (int k = 0; k < GR_NTASKS; k++)
        for (int j = 0; j < p->n_cand[k]; j++)
            if (p->cand[k][j] < 0 || p->cand[k][j] >= V) return gr_errf(err, "verdict mode: answer word id out of range");
    for (int w = 0; w < g->n_watch; w++)
        if (g->watch[w] < 0 || g->watch[w] >= V) return gr_errf(err, "verdict mode: watched id out of range");
    int rc = 0;
    gr_kv *prefix = NULL;
    int *todo = gr_xmalloc(sizeof(int) * (size_t)(n ? n : 1)), n_todo = 0;
    for (int i = 0; i < n; i++) {
        gr_gen_req *r = &reqs[i];
        r->n_out = 0;
        r->eos_id = -1;
        r->stop = GR_STOP_EOS;
        if (r->n_prompt < 1 || r->n_prompt + p->max_tail > max_len) r->stop = GR_STOP_TOO_LONG;
        else todo[n_todo++] = i;
    }
    if (n_todo && g->prefix && g->n_prefix > 0) {
        prefix = gr_kv_new(m, NULL);
        const int *pt = g->prefix;
        int np = g->n_prefix;
        if (gr_forward(c, &prefix, &pt, &np, 1, NULL, 0, err)) rc = -1;
    }
    float *logits = gr_xmalloc(sizeof(float) * (size_t)B * (size_t)V);
    gr_kv **kvs = gr_xcalloc((size_t)B, sizeof(gr_kv *));
    const int **toks = gr_xmalloc(sizeof(int *) * (size_t)B);
    int *ntok = gr_xmalloc(sizeof(int) * (size_t)B);
    int **first = gr_xcalloc((size_t)B, sizeof(int *));  /* prompt (after the prefix) + head */
    int *choice = gr_xmalloc(sizeof(int) * (size_t)B);
    for (int start = 0; start < n_todo && !rc; start += B) {
        int nb = n_todo - start < B ? n_todo - start : B;
        for (int b = 0; b < nb; b++) {
            gr_gen_req *r = &reqs[todo[start + b]];
            int use_prefix = prefix && r->n_prompt > g->n_prefix &&
                             memcmp(r->prompt, g->prefix, sizeof(int) * (size_t)g->n_prefix) == 0;
            int from = use_prefix ? g->n_prefix : 0, len = r->n_prompt - from + (int)p->head.n;
            kvs[b] = gr_kv_new(m, use_prefix ? prefix : NULL);
            gr_kv_reserve(kvs[b], r->n_prompt - from + p->max_tail);
            first[b] = gr_xrealloc(first[b], sizeof(int) * (size_t)len);
            memcpy(first[b], r->prompt + from, sizeof(int) * (size_t)(r->n_prompt - from));
            for (size_t h = 0; h < p->head.n; h++) first[b][r->n_prompt - from + (int)h] = p->head.v[h];
            toks[b] = first[b];
            ntok[b] = len;
            out_append(r, p->head.v, (int)p->head.n, g->n_watch);
        }
        for (int k = 0; k < GR_NTASKS && !rc; k++) {
            if (gr_forward(c, kvs, toks, ntok, nb, logits, 0, err)) {
                rc = -1;
                break;
            }
            for (int b = 0; b < nb; b++) {
                gr_gen_req *r = &reqs[todo[start + b]];
                const float *lg = logits + (size_t)b * V;
                int best = 0;
                for (int j = 1; j < p->n_cand[k]; j++)
                    if (lg[p->cand[k][j]] > lg[p->cand[k][best]]) best = j;
                choice[b] = best;
                int step = r->n_out;
                const gr_ids *f = &p->feed[k][best];
                out_append(r, f->v, (int)f->n, g->n_watch);
                for (int w = 0; w < g->n_watch; w++) r->watch[(size_t)step * g->n_watch + w] = lg[g->watch[w]];
                toks[b] = f->v;
                ntok[b] = (int)f->n;
            }
        }
        for (int b = 0; b < nb; b++) {
            gr_kv_free(kvs[b]);
            kvs[b] = NULL;
        }
    }
    for (int b = 0; b < B; b++) {
        gr_kv_free(kvs[b]);
        free(first[b]);
    }
    free(first);
    free(choice);
    free(kvs);
    free(toks);
    free(ntok);
    free(logits);
    free(todo);
    gr_kv_free(prefix);
    return rc;
}

int gr_fast_in_band(const gr_verdict *v, double lo, double hi) {
    for (int k = 0; k < GR_NTASKS; k++)
        if (!isnan(v->score[k]) && v->score[k] >= lo && v->score[k] <= hi) return 1;
    return 0;
}

int gr_fast_window(gr_ctx *c, const gr_tokenizer *t, const gr_fast_plan *p, const gr_guard_watch *w,
                   const gr_gen_opts *g, int tiered, double lo, double hi, gr_gen_req *reqs, int n,
                   unsigned char *decided, gr_err *err) {
    if (gr_fast_run(c, p, reqs, n, g, err)) return -1;
    for (int i = 0; i < n; i++) {
        decided[i] = 1;
        if (!tiered || reqs[i].stop == GR_STOP_TOO_LONG) continue;
        gr_verdict v;
        if (gr_verdict_build(t, reqs[i].out, reqs[i].n_out, reqs[i].watch, w, &v, err)) return -1;
        if (gr_fast_in_band(&v, lo, hi)) {
            decided[i] = 0;
            gr_gen_req_free(&reqs[i]);
            reqs[i].stop = GR_STOP_NONE;
        }
        gr_verdict_free(&v);
    }
    return 0;
}

/* gr_generate's callback on the subset, with the index mapped back to reqs */
typedef struct sub_done {
    gr_gen_done done;
    void *ud;
    const int *index;
} sub_done;

static void on_sub_done(void *ud, gr_gen_req *req, int i) {
    sub_done *s = ud;
    s->done(s->ud, req, s->index[i]);
}

int gr_generate_some(gr_ctx *c, gr_gen_req *reqs, int n, const unsigned char *decided, const gr_gen_opts *g,
                     gr_gen_done done, void *ud, gr_err *err) {
    if (!decided) return gr_generate(c, reqs, n, g, done, ud, err);
    int cnt = 0;
    for (int i = 0; i < n; i++) cnt += !decided[i];
    if (cnt == 0) return 0;
    gr_gen_req *sub = gr_xmalloc(sizeof *sub * (size_t)cnt);
    int *index = gr_xmalloc(sizeof(int) * (size_t)cnt);
    for (int i = 0, j = 0; i < n; i++)
        if (!decided[i]) {
            index[j] = i;
            sub[j++] = reqs[i];
        }
    sub_done s = {done, ud, index};
    int rc = gr_generate(c, sub, cnt, g, done ? on_sub_done : NULL, &s, err);
    for (int j = 0; j < cnt; j++) reqs[index[j]] = sub[j];
    free(sub);
    free(index);
    return rc;
}
