#include "dpo_data.h"
#include "gr_io.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void push(gr_pdata *d, int *cap, int *c, int lc, int *r, int lr, int np, double w) {
    if (d->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        size_t k = (size_t)*cap;
        d->chosen = gr_xrealloc(d->chosen, sizeof(int *) * k);
        d->rejected = gr_xrealloc(d->rejected, sizeof(int *) * k);
        d->len_c = gr_xrealloc(d->len_c, sizeof(int) * k);
        d->len_r = gr_xrealloc(d->len_r, sizeof(int) * k);
        d->n_prompt = gr_xrealloc(d->n_prompt, sizeof(int) * k);
        d->weight = gr_xrealloc(d->weight, sizeof(double) * k);
    }
    int i = d->n++;
    d->chosen[i] = c;
    d->rejected[i] = r;
    d->len_c[i] = lc;
    d->len_r[i] = lr;
    d->n_prompt[i] = np;
    d->weight[i] = w;
    d->n_tokens += lc + lr;
}

/* ids of array field key into out (appended after n already there); NULL or why. */
static const char *read_ids(jv rec, const char *key, int vocab, int **out, int *n) {
    jv a = jv_object_get(jv_copy(rec), jv_string(key));
    if (jv_get_kind(a) != JV_KIND_ARRAY) {
        jv_free(a);
        return "is missing or not an array";
    }
    int len = jv_array_length(jv_copy(a));
    *out = gr_xrealloc(*out, sizeof(int) * (size_t)(*n + len + 1));
    const char *bad = NULL;
    for (int i = 0; i < len && !bad; i++) {
        jv x = jv_array_get(jv_copy(a), i);
        double v = jv_get_kind(x) == JV_KIND_NUMBER ? jv_number_value(x) : -1;
        jv_free(x);
        if (!(v >= 0 && v < vocab && v == floor(v))) bad = "holds a value that is not a token id of this model";
        else (*out)[(*n)++] = (int)v;
    }
    jv_free(a);
    return bad;
}

/* The weight: field `weight` or `sample_weight`; missing 1, null NaN. (The key
 * is chosen by presence, not by value: a null sample_weight is a null weight.) */
static const char *read_weight(jv rec, double *w) {
    int has_sw = jv_object_has(jv_copy(rec), jv_string("sample_weight"));
    const char *key = has_sw ? "sample_weight" : "weight";
    jv v = jv_object_get(jv_copy(rec), jv_string(key));
    const char *bad = NULL;
    if (!jv_is_valid(v)) *w = 1.0;
    else if (jv_get_kind(v) == JV_KIND_NULL) *w = NAN;
    else if (jv_get_kind(v) == JV_KIND_NUMBER) *w = jv_number_value(v);
    else bad = "the weight is not a number";
    if (!bad && (isinf(*w) || *w < 0)) bad = "the weight is negative or infinite";
    jv_free(v);
    return bad;
}

/* A pre-tokenized record. */
static const char *pair_tokens(jv rec, const gr_pdata_opts *o, int **c, int *lc, int **r, int *lr,
                               int *np, char *why, size_t whyn) {
    int *p = NULL, n = 0;
    const char *bad = read_ids(rec, "prompt_ids", o->vocab, &p, &n);
    if (bad) { snprintf(why, whyn, "`prompt_ids` %s", bad); free(p); return why; }
    int S = n;
    *c = gr_xmalloc(sizeof(int) * (size_t)(S + 1));
    *r = gr_xmalloc(sizeof(int) * (size_t)(S + 1));
    memcpy(*c, p, sizeof(int) * (size_t)S);
    memcpy(*r, p, sizeof(int) * (size_t)S);
    free(p);
    *lc = *lr = S;
    if ((bad = read_ids(rec, "chosen_ids", o->vocab, c, lc))) {
        snprintf(why, whyn, "`chosen_ids` %s", bad);
        return why;
    }
    if ((bad = read_ids(rec, "rejected_ids", o->vocab, r, lr))) {
        snprintf(why, whyn, "`rejected_ids` %s", bad);
        return why;
    }
    *np = S;
    return NULL;
}

/* A raw record through the template. */
static const char *pair_raw(jv rec, const gr_pdata_opts *o, int **c, int *lc, int **r, int *lr,
                            int *np, int *truncated, char *why, size_t whyn) {
    const char *ins = gr_jv_str(rec, "instruction"), *inp = gr_jv_str(rec, "input");
    const char *ch = gr_jv_str(rec, "chosen"), *rj = gr_jv_str(rec, "rejected");
    if (!ins && !inp) return "no `instruction` or `input` string";
    if (!ch || !rj) return "a pair record needs string `chosen` and `rejected`";
    /* the template would still give the end-of-turn token: check the text */
    if (!*ch || !*rj) return "the chosen or the rejected response is empty";
    if (!o->tok) return "a raw pair record needs a tokenizer";
    gr_ids p = {0}, a = {0}, b = {0};
    gr_err e = {{0}};
    if (gr_template_pair(o->tok, o->tmpl, o->system, ins, inp, ch, rj, (size_t)o->cutoff, &p, &a,
                         &b, truncated, &e) < 0) {
        snprintf(why, whyn, "%s", e.msg);
        gr_ids_free(&p); gr_ids_free(&a); gr_ids_free(&b);
        return why;
    }
    *c = gr_xmalloc(sizeof(int) * (p.n + a.n + 1));
    *r = gr_xmalloc(sizeof(int) * (p.n + b.n + 1));
    for (size_t i = 0; i < p.n; i++) (*c)[i] = (*r)[i] = p.v[i];
    for (size_t i = 0; i < a.n; i++) (*c)[p.n + i] = a.v[i];
    for (size_t i = 0; i < b.n; i++) (*r)[p.n + i] = b.v[i];
    *np = (int)p.n;
    *lc = (int)(p.n + a.n);
    *lr = (int)(p.n + b.n);
    const char *bad = NULL;
    for (int i = 0; i < *lc && !bad; i++)
        if ((*c)[i] >= o->vocab) bad = "the tokenizer gave an id outside the model's vocabulary";
    for (int i = 0; i < *lr && !bad; i++)
        if ((*r)[i] >= o->vocab) bad = "the tokenizer gave an id outside the model's vocabulary";
    gr_ids_free(&p); gr_ids_free(&a); gr_ids_free(&b);
    return bad;
}

int gr_pdata_load(const char *path, const gr_pdata_opts *o, gr_pdata *d, gr_err *err) {
    *d = (gr_pdata){0};
    gr_reader *rd = gr_reader_open(path, NULL, err);
    if (!rd) return -1;
    int cap = 0, rc;
    jv rec;
    char why[2400];
    while ((rc = gr_reader_next(rd, &rec, err)) == 1) {
        int *c = NULL, *r = NULL, lc = 0, lr = 0, np = 0, trunc = 0;
        double w = 1.0;
        const char *bad = NULL;
        int raw = !gr_jv_has(rec, "prompt_ids");
        if (jv_get_kind(rec) != JV_KIND_OBJECT) bad = "not a JSON object";
        else if (raw) bad = pair_raw(rec, o, &c, &lc, &r, &lr, &np, &trunc, why, sizeof why);
        else bad = pair_tokens(rec, o, &c, &lc, &r, &lr, &np, why, sizeof why);
        if (!bad) bad = read_weight(rec, &w);
        if (!bad && isnan(w) && o->refuse_null_weight)
            bad = "the weight is null (the reference miner's all-weights-equal case): re-mine "
                  "with gr-mine or train with --no-weights";
        if (!bad && np < 1) bad = "the prompt is empty (a response needs a token before it)";
        if (!bad && (lc == np || lr == np)) bad = "the chosen or the rejected response is empty";
        if (!bad && (lc > o->cutoff || lr > o->cutoff))
            bad = "the prompt and the longer response hold more ids than the cutoff "
                  "(gr-tokenize --cutoff)";
        jv_free(rec);
        if (bad) {
            free(c);
            free(r);
            gr_errf(err, "%s:%ld: %s", gr_reader_name(rd), gr_reader_line(rd), bad);
            rc = -1;
            break;
        }
        push(d, &cap, c, lc, r, lr, np, w);
        d->n_truncated += trunc;
        d->n_raw += raw;
    }
    gr_reader_close(rd);
    if (rc < 0) {
        gr_pdata_free(d);
        return -1;
    }
    return 0;
}

void gr_pdata_free(gr_pdata *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->chosen[i]);
        free(d->rejected[i]);
    }
    free(d->chosen);
    free(d->rejected);
    free(d->len_c);
    free(d->len_r);
    free(d->n_prompt);
    free(d->weight);
    *d = (gr_pdata){0};
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t gr_pdata_checksum(const gr_pdata *d) {
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, &d->n, sizeof d->n);
    for (int i = 0; i < d->n; i++) {
        int hdr[3] = {d->len_c[i], d->len_r[i], d->n_prompt[i]};
        h = fnv(h, hdr, sizeof hdr);
        h = fnv(h, d->chosen[i], sizeof(int) * (size_t)d->len_c[i]);
        h = fnv(h, d->rejected[i], sizeof(int) * (size_t)d->len_r[i]);
        h = fnv(h, &d->weight[i], sizeof(double));
    }
    return h;
}
