#include "mine.h"
#include "gr_io.h"
#include "gr_utf8.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct sample {
    char *text;
    size_t chars; /* length in code points, as Python's len() */
    gr_label lab[GR_NTASKS];
} sample;

typedef struct example {
    char *key;
    jv id;              /* the record's id, or its first line number */
    char *instruction, *input;
    gr_label gold[GR_NTASKS];
    int has_response;
    sample *s;
    int n, cap;
} example;

typedef struct source {
    char *name;
    example *ex;
    size_t n, cap;
    size_t *slot;      /* open-addressing index: key hash -> ex index + 1 */
    size_t n_slots;
} source;

struct gr_miner {
    gr_mine_opts o;
    source *src;
    int n_src;
    gr_mine_stats st;
};

gr_miner *gr_miner_new(const gr_mine_opts *opts) {
    gr_miner *m = gr_xcalloc(1, sizeof *m);
    m->o = *opts;
    if (m->o.tail_chars == 0) m->o.tail_chars = 300;
    return m;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void index_grow(source *s) {
    size_t n = s->n_slots ? 2 * s->n_slots : 1024;
    size_t *slot = gr_xcalloc(n, sizeof *slot);
    for (size_t i = 0; i < s->n; i++) {
        size_t h = (size_t)hash_str(s->ex[i].key) & (n - 1);
        while (slot[h]) h = (h + 1) & (n - 1);
        slot[h] = i + 1;
    }
    free(s->slot);
    s->slot = slot;
    s->n_slots = n;
}

/* The example of key, created when new (*is_new set). */
static example *source_get(source *s, const char *key, int *is_new) {
    if (2 * (s->n + 1) > s->n_slots) index_grow(s);
    size_t h = (size_t)hash_str(key) & (s->n_slots - 1);
    while (s->slot[h]) {
        example *e = &s->ex[s->slot[h] - 1];
        if (strcmp(e->key, key) == 0) { *is_new = 0; return e; }
        h = (h + 1) & (s->n_slots - 1);
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->ex = gr_xrealloc(s->ex, s->cap * sizeof *s->ex);
    }
    example *e = &s->ex[s->n];
    memset(e, 0, sizeof *e);
    e->key = gr_xstrdup(key);
    s->slot[h] = ++s->n;
    *is_new = 1;
    return e;
}

static size_t count_chars(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* Gold labels: an object keyed by task, or text with an answer block, or a
 * bare word (whose task is opts->label_task for harmful/unharmful). */
static void gold_labels(gr_miner *m, jv rec, gr_label gold[GR_NTASKS]) {
    for (int t = 0; t < GR_NTASKS; t++) gold[t] = GR_LABEL_NONE;
    jv v = jv_object_get(jv_copy(rec), jv_string("label"));
    if (jv_get_kind(v) == JV_KIND_OBJECT) {
        for (int t = 0; t < GR_NTASKS; t++) {
            const char *w = gr_jv_str(v, gr_task_field((gr_task)t));
            gr_label l = w ? gr_label_from_word(w) : GR_LABEL_NONE;
            gold[t] = gr_label_fits((gr_task)t, l) ? l : GR_LABEL_NONE;
        }
    } else if (jv_get_kind(v) == JV_KIND_STRING) {
        const char *s = jv_string_value(v);
        gr_label w = gr_label_from_word(s);
        if (w == GR_LABEL_REFUSAL || w == GR_LABEL_COMPLIANCE) gold[GR_TASK_COMPLETION] = w;
        else if (w != GR_LABEL_NONE) gold[m->o.label_task >= 0 ? m->o.label_task : GR_TASK_REQUEST] = w;
        else {
            gr_answers a;
            gr_answers_parse(s, (size_t)jv_string_length_bytes(jv_copy(v)), m->o.tail_chars, &a);
            memcpy(gold, a.label, sizeof a.label);
        }
    }
    jv_free(v);
}

/* Does the prompt carry an AI response? The guard input ends with
 * "AI assistant:\n{response}\n\n", and the word None stands for no response. */
static int prompt_has_response(const char *p) {
    const char *k = NULL, *q = p;
    while ((q = strstr(q, "AI assistant:\n")) != NULL) k = q++;
    if (!k) return 1;
    k += strlen("AI assistant:\n");
    size_t n = strlen(k);
    while (n > 0 && k[n - 1] == '\n') n--;
    return !(n == 4 && strncmp(k, "None", 4) == 0);
}

static int split_prompt(gr_miner *m, const char *prompt, example *e) {
    const char *h = strstr(prompt, "\n\nHuman user:");
    if (!h) return -1;
    size_t cut = (size_t)(h - prompt) + (m->o.split == GR_SPLIT_EXACT ? 1 : 0);
    e->instruction = gr_xstrndup(prompt, cut);
    e->input = gr_xstrdup(h + 2);
    return 0;
}

static void add_sample(gr_miner *m, example *e, const char *text, size_t n) {
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 4;
        e->s = gr_xrealloc(e->s, (size_t)e->cap * sizeof *e->s);
    }
    sample *s = &e->s[e->n++];
    s->text = gr_xstrndup(text, n);
    s->chars = count_chars(text, n);
    gr_answers a;
    gr_answers_parse(text, n, m->o.tail_chars, &a);
    memcpy(s->lab, a.label, sizeof a.label);
    if (!a.label[0] && !a.label[1] && !a.label[2]) m->st.unparsed_samples++;
}

int gr_miner_add_file(gr_miner *m, const char *path, const char *source_name, gr_err *err) {
    gr_reader_opts ro = {.map = m->o.map, .replace_invalid_utf8 = m->o.replace_invalid_utf8};
    gr_reader *r = gr_reader_open(path, &ro, err);
    if (!r) return -1;
    m->src = gr_xrealloc(m->src, (size_t)(m->n_src + 1) * sizeof *m->src);
    source *src = &m->src[m->n_src++];
    memset(src, 0, sizeof *src);
    src->name = gr_xstrdup(source_name);
    int rc = 0;
    gr_buf key = {0}, prompt = {0};
    for (;;) {
        jv rec;
        int k = gr_reader_next(r, &rec, err);
        if (k <= 0) { rc = k; break; }
        m->st.records++;
        const char *name = gr_reader_name(r);
        long line = gr_reader_line(r);
        /* the prompt: `prompt`, or instruction + "\n" + input */
        prompt.len = 0;
        const char *p = gr_jv_str(rec, "prompt");
        const char *ins = gr_jv_str(rec, "instruction"), *inp = gr_jv_str(rec, "input");
        if (p) gr_buf_append(&prompt, p, strlen(p));
        else if (ins && inp) gr_buf_printf(&prompt, "%s\n%s", ins, inp);
        else {
            jv_free(rec);
            rc = gr_errf(err, "%s:%ld: sample record without \"prompt\" (or \"instruction\" and \"input\")", name, line);
            break;
        }
        jv predict = jv_object_get(jv_copy(rec), jv_string("predict"));
        jv_kind pk = jv_get_kind(predict);
        if (pk != JV_KIND_STRING && pk != JV_KIND_ARRAY) {
            jv_free(predict);
            jv_free(rec);
            rc = gr_errf(err, "%s:%ld: sample record without \"predict\" (a string, or an array of k strings)", name, line);
            break;
        }
        key.len = 0;
        jv id = jv_object_get(jv_copy(rec), jv_string("id"));
        if (jv_get_kind(id) == JV_KIND_STRING) gr_buf_printf(&key, "s:%s", jv_string_value(id));
        else if (jv_get_kind(id) == JV_KIND_NUMBER) gr_buf_printf(&key, "n:%.17g", jv_number_value(id));
        else gr_buf_printf(&key, "p:%s", gr_buf_cstr(&prompt));
        int is_new;
        example *e = source_get(src, gr_buf_cstr(&key), &is_new);
        if (is_new) {
            e->id = jv_get_kind(id) == JV_KIND_STRING || jv_get_kind(id) == JV_KIND_NUMBER ? jv_copy(id)
                                                                                         : jv_number((double)line);
            gold_labels(m, rec, e->gold);
            jv resp = jv_object_get(jv_copy(rec), jv_string("response"));
            if (jv_is_valid(resp)) e->has_response = jv_get_kind(resp) == JV_KIND_STRING;
            else e->has_response = prompt_has_response(gr_buf_cstr(&prompt));
            jv_free(resp);
            int ok;
            if (ins && inp) {
                size_t n = strlen(ins);
                if (m->o.split == GR_SPLIT_REFERENCE && n > 0 && ins[n - 1] == '\n') n--;
                e->instruction = gr_xstrndup(ins, n);
                e->input = gr_xstrdup(inp);
                ok = 0;
            } else {
                ok = split_prompt(m, gr_buf_cstr(&prompt), e);
            }
            if (ok < 0) {
                jv_free(id);
                jv_free(predict);
                jv_free(rec);
                rc = gr_errf(err, "%s:%ld: cannot split the prompt into instruction and input (no \"\\n\\nHuman user:\")",
                             name, line);
                break;
            }
        }
        jv_free(id);
        if (pk == JV_KIND_STRING) {
            add_sample(m, e, jv_string_value(predict), (size_t)jv_string_length_bytes(jv_copy(predict)));
        } else {
            int n = jv_array_length(jv_copy(predict));
            for (int i = 0; i < n; i++) {
                jv s = jv_array_get(jv_copy(predict), i);
                if (jv_get_kind(s) == JV_KIND_STRING) add_sample(m, e, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)));
                else m->st.unparsed_samples++;
                jv_free(s);
            }
        }
        jv_free(predict);
        jv_free(rec);
    }
    gr_buf_free(&key);
    gr_buf_free(&prompt);
    m->st.examples += (long)src->n;
    gr_reader_close(r);
    return rc < 0 ? -1 : 0;
}

/* splitmix64: a seeded choice that depends only on the seed and the example. */
static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

typedef struct pair {
    example *e;
    int src;
    gr_task task;
    int chosen, rejected;
    int k_correct, k_incorrect;
    double weight;
} pair;

/* The reference's task order: request, then response, then completion. */
static const gr_task mine_order[GR_NTASKS] = {GR_TASK_REQUEST, GR_TASK_RESPONSE, GR_TASK_COMPLETION};

static int mine_example(gr_miner *m, example *e, int src, pair *out) {
    int any_gold = 0, enough = 0;
    for (int i = 0; i < GR_NTASKS; i++) {
        gr_task t = mine_order[i];
        if (e->gold[t] == GR_LABEL_NONE) continue;
        if (t != GR_TASK_REQUEST && !e->has_response) continue;
        any_gold = 1;
        int kc = 0, ki = 0, best_c = -1, best_i = -1;
        for (int j = 0; j < e->n; j++) {
            sample *s = &e->s[j];
            if (!gr_label_fits(t, s->lab[t])) continue; /* unparseable: not counted */
            if (s->lab[t] == e->gold[t]) {
                kc++;
                if (best_c < 0 || s->chars > e->s[best_c].chars) best_c = j;
            } else {
                ki++;
                if (best_i < 0 || s->chars > e->s[best_i].chars) best_i = j;
            }
        }
        if (kc + ki >= 2) enough = 1;
        if (kc == 0 || ki == 0) continue;
        if (m->o.pick == GR_PICK_RANDOM) {
            uint64_t r = mix(m->o.seed ^ hash_str(e->key) ^ ((uint64_t)t << 56));
            int want_c = (int)(r % (uint64_t)kc), want_i = (int)(mix(r) % (uint64_t)ki);
            for (int j = 0; j < e->n; j++) {
                sample *s = &e->s[j];
                if (!gr_label_fits(t, s->lab[t])) continue;
                if (s->lab[t] == e->gold[t]) { if (want_c-- == 0) best_c = j; }
                else if (want_i-- == 0) best_i = j;
            }
        }
        *out = (pair){.e = e, .src = src, .task = t, .chosen = best_c, .rejected = best_i,
                      .k_correct = kc, .k_incorrect = ki};
        m->st.hard[t]++;
        return 1;
    }
    if (!any_gold) m->st.no_gold++;
    else if (!enough) m->st.too_few++;
    else m->st.not_hard++;
    return 0;
}

/* Min-max normalisation of k_incorrect - k_correct to [1-γ, 1+γ] over
 * p[lo..hi); all equal raw weights give 1 (the reference divided by zero). */
static void normalise(pair *p, size_t lo, size_t hi, double gamma) {
    if (lo >= hi) return;
    int mn = p[lo].k_incorrect - p[lo].k_correct, mx = mn;
    for (size_t i = lo; i < hi; i++) {
        int raw = p[i].k_incorrect - p[i].k_correct;
        if (raw < mn) mn = raw;
        if (raw > mx) mx = raw;
    }
    for (size_t i = lo; i < hi; i++) {
        int raw = p[i].k_incorrect - p[i].k_correct;
        p[i].weight = mx == mn ? 1.0 : (1.0 - gamma) + 2.0 * gamma * (double)(raw - mn) / (double)(mx - mn);
    }
}

jv gr_miner_pairs(gr_miner *m, gr_mine_stats *stats) {
    size_t total = 0;
    for (int s = 0; s < m->n_src; s++) total += m->src[s].n;
    pair *p = gr_xmalloc((total ? total : 1) * sizeof *p);
    size_t np = 0;
    size_t *start = gr_xcalloc((size_t)m->n_src + 1, sizeof *start);
    for (int s = 0; s < m->n_src; s++) {
        start[s] = np;
        for (size_t i = 0; i < m->src[s].n; i++)
            if (mine_example(m, &m->src[s].ex[i], s, &p[np])) np++;
        if (m->o.norm == GR_NORM_SOURCE) normalise(p, start[s], np, m->o.gamma);
    }
    start[m->n_src] = np;
    if (m->o.norm == GR_NORM_UNION) normalise(p, 0, np, m->o.gamma);
    /* the union: first pair per example, earlier sources first */
    source seen = {0};
    jv out = jv_array();
    for (size_t i = 0; i < np; i++) {
        int is_new;
        source_get(&seen, p[i].e->key, &is_new);
        if (!is_new) {
            m->st.duplicates++;
            continue;
        }
        example *e = p[i].e;
        jv r = jv_object();
        r = jv_object_set(r, jv_string("instruction"), jv_string(e->instruction));
        r = jv_object_set(r, jv_string("input"), jv_string(e->input));
        r = jv_object_set(r, jv_string("chosen"), jv_string(e->s[p[i].chosen].text));
        r = jv_object_set(r, jv_string("rejected"), jv_string(e->s[p[i].rejected].text));
        r = jv_object_set(r, jv_string("sample_weight"), jv_number(p[i].weight));
        r = jv_object_set(r, jv_string("id"), jv_copy(e->id));
        r = jv_object_set(r, jv_string("task"), jv_string(gr_task_field(p[i].task)));
        r = jv_object_set(r, jv_string("k_correct"), jv_number(p[i].k_correct));
        r = jv_object_set(r, jv_string("k_incorrect"), jv_number(p[i].k_incorrect));
        r = jv_object_set(r, jv_string("source"), jv_string(m->src[p[i].src].name));
        r = jv_object_set(r, jv_string("weight_norm"), jv_string(m->o.norm == GR_NORM_UNION ? "union" : "source"));
        r = jv_object_set(r, jv_string("split"), jv_string(m->o.split == GR_SPLIT_EXACT ? "exact" : "reference"));
        out = jv_array_append(out, r);
        m->st.pairs++;
    }
    for (size_t i = 0; i < seen.n; i++) free(seen.ex[i].key);
    free(seen.ex);
    free(seen.slot);
    free(start);
    free(p);
    if (stats) *stats = m->st;
    return out;
}

void gr_miner_free(gr_miner *m) {
    if (!m) return;
    for (int s = 0; s < m->n_src; s++) {
        source *src = &m->src[s];
        for (size_t i = 0; i < src->n; i++) {
            example *e = &src->ex[i];
            for (int j = 0; j < e->n; j++) free(e->s[j].text);
            free(e->s);
            free(e->key);
            free(e->instruction);
            free(e->input);
            jv_free(e->id);
        }
        free(src->ex);
        free(src->slot);
        free(src->name);
    }
    free(m->src);
    free(m);
}
