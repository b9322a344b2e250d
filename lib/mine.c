#include "mine.h"
#include "gr_io.h"
#include "gr_utf8.h"
#include "mine_answers.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct sample {
    char *text;
    size_t len;           /* bytes */
    size_t chars;         /* length in code points, as Python's len() */
    long num;             /* sample number: the record's k, or the order of arrival */
    long seq;             /* order of arrival within the example */
    int explicit_num;     /* num came from a `k` field */
    long line;            /* the record's line */
    char *word[GR_NTASKS]; /* the answer per task; NULL: not counted for that task */
    jv extra;             /* the record's other fields (null when none) */
} sample;

typedef struct example {
    char *key;
    jv id;              /* the record's id, or its first line number */
    jv label;           /* the first record's label, to check the others against */
    int by_id;          /* grouped by id (else by prompt and label) */
    char *prompt;
    char *instruction, *input;
    char *gold[GR_NTASKS]; /* NULL: no gold label for the task */
    char *ai_word;      /* the first `AI assistant:\s*(\w+)` word of the prompt, or NULL */
    long line;          /* line of the first record */
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

static void set_free(source *s) {
    for (size_t i = 0; i < s->n; i++) free(s->ex[i].key);
    free(s->ex);
    free(s->slot);
}

static size_t count_chars(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* n bytes and a NUL (the text may hold NULs of its own: JSON's \u0000). */
static char *copy_bytes(const char *s, size_t n) {
    char *d = gr_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* The script's answer word for task t in text[0..n), or NULL. */
static char *script_word(const char *text, size_t n, gr_task t) {
    char key[16];
    snprintf(key, sizeof key, "%s:", gr_task_title(t));
    size_t off, len;
    return gr_mine_re_word(text, n, key, &off, &len) ? gr_xstrndup(text + off, len) : NULL;
}

/* A bare label word: its task (opts->label_task for harmful/unharmful). */
static int bare_label_task(gr_miner *m, gr_label w) {
    if (w == GR_LABEL_REFUSAL || w == GR_LABEL_COMPLIANCE) return GR_TASK_COMPLETION;
    return m->o.label_task >= 0 ? m->o.label_task : GR_TASK_REQUEST;
}

/* Gold labels: text with an answer block (the reference form), an object keyed
 * by task, or a bare word. From text, SCRIPT reads the three words as the script
 * does and needs all three; EVAL reads the label words, each on its own. An
 * object gives the tasks it names (SCRIPT: any word as written; EVAL: label
 * words only), a bare word one task; the other tasks have no gold label. */
static void gold_labels(gr_miner *m, jv rec, char *gold[GR_NTASKS]) {
    const int script = m->o.answers == GR_ANSWERS_SCRIPT;
    for (int t = 0; t < GR_NTASKS; t++) gold[t] = NULL;
    jv v = jv_object_get(jv_copy(rec), jv_string("label"));
    if (jv_get_kind(v) == JV_KIND_OBJECT) {
        for (int t = 0; t < GR_NTASKS; t++) {
            const char *w = gr_jv_str(v, gr_task_field((gr_task)t));
            if (!w) continue;
            if (script) {
                gold[t] = gr_xstrdup(w);
            } else {
                gr_label l = gr_label_from_word(w);
                if (gr_label_fits((gr_task)t, l)) gold[t] = gr_xstrdup(gr_label_name(l));
            }
        }
    } else if (jv_get_kind(v) == JV_KIND_STRING) {
        const char *s = jv_string_value(v);
        size_t n = (size_t)jv_string_length_bytes(jv_copy(v));
        gr_label w = gr_label_from_word(s);
        if (w != GR_LABEL_NONE) {
            gold[bare_label_task(m, w)] = gr_xstrdup(gr_label_name(w));
        } else if (script) {
            int all = 1;
            for (int t = 0; t < GR_NTASKS; t++) all &= (gold[t] = script_word(s, n, (gr_task)t)) != NULL;
            if (!all)
                for (int t = 0; t < GR_NTASKS; t++) { free(gold[t]); gold[t] = NULL; }
        } else {
            gr_answers a;
            gr_answers_parse(s, n, m->o.tail_chars, &a);
            for (int t = 0; t < GR_NTASKS; t++)
                if (a.label[t]) gold[t] = gr_xstrdup(gr_label_name(a.label[t]));
        }
    }
    jv_free(v);
}

static int split_prompt(gr_miner *m, const char *prompt, example *e) {
    const char *h = strstr(prompt, "\n\nHuman user:");
    if (!h) return -1;
    size_t cut = (size_t)(h - prompt) + (m->o.split == GR_SPLIT_EXACT ? 1 : 0);
    e->instruction = gr_xstrndup(prompt, cut);
    e->input = gr_xstrdup(h + 2);
    return 0;
}

static void add_sample(gr_miner *m, example *e, const char *text, size_t n, long num, int explicit_num,
                       long line, jv extra) {
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 4;
        e->s = gr_xrealloc(e->s, (size_t)e->cap * sizeof *e->s);
    }
    sample *s = &e->s[e->n];
    memset(s, 0, sizeof *s);
    s->seq = e->n++;
    s->num = num;
    s->explicit_num = explicit_num;
    s->line = line;
    s->text = copy_bytes(text, n);
    s->len = n;
    s->chars = count_chars(text, n);
    s->extra = extra;
    if (m->o.answers == GR_ANSWERS_SCRIPT) {
        int all = 1;
        for (int t = 0; t < GR_NTASKS; t++) all &= (s->word[t] = script_word(text, n, (gr_task)t)) != NULL;
        if (!all) { /* the script drops such a sample from every task */
            for (int t = 0; t < GR_NTASKS; t++) { free(s->word[t]); s->word[t] = NULL; }
            m->st.unparsed_samples++;
        }
    } else {
        gr_answers a;
        gr_answers_parse(text, n, m->o.tail_chars, &a);
        for (int t = 0; t < GR_NTASKS; t++)
            s->word[t] = gr_label_fits((gr_task)t, a.label[t]) ? gr_xstrdup(gr_label_name(a.label[t])) : NULL;
        if (!s->word[0] && !s->word[1] && !s->word[2]) m->st.unparsed_samples++;
    }
}

/* The fields of a sample record that gr-mine reads or that describe one sample
 * only; every other field passes through to the pair. */
static const char *const consumed_fields[] = {"prompt", "instruction", "input", "label", "predict", "id", "k",
                                              "model", "tokens", "error", "token_logprobs", "token_ids"};

static jv extra_fields(jv rec) {
    for (size_t i = 0; i < sizeof consumed_fields / sizeof *consumed_fields; i++)
        rec = jv_object_delete(rec, jv_string(consumed_fields[i]));
    if (jv_object_length(jv_copy(rec)) == 0) {
        jv_free(rec);
        return jv_null();
    }
    return rec;
}

static char *dump(jv v) {
    jv s = jv_dump_string(v, 0);
    char *out = gr_xstrdup(jv_string_value(s));
    jv_free(s);
    return out;
}

/* The example's name in messages: its id, or "of line L". */
static void example_name(const example *e, gr_buf *b) {
    if (e->by_id) {
        char *d = dump(jv_copy(e->id));
        gr_buf_printf(b, "id %s", d);
        free(d);
    } else {
        gr_buf_printf(b, "the example of line %ld", e->line);
    }
}

/* Checks a further record of an existing example: the same prompt and label
 * (one id, two examples would otherwise be mixed), and a new sample number. */
static int check_record(const example *e, const char *prompt, jv rec, int explicit_num, long num,
                        const char *name, long line, gr_err *err) {
    gr_buf b = {0};
    example_name(e, &b);
    int rc = 0;
    if (strcmp(prompt, e->prompt) != 0) {
        rc = gr_errf(err, "%s:%ld: %s: the prompt differs from that of line %ld (two examples under one id?)",
                     name, line, gr_buf_cstr(&b), e->line);
    } else {
        jv label = jv_object_get(jv_copy(rec), jv_string("label"));
        if (!jv_is_valid(label)) {
            jv_free(label);
            label = jv_null();
        }
        if (!jv_equal(label, jv_copy(e->label)))
            rc = gr_errf(err, "%s:%ld: %s: the label differs from that of line %ld (two examples under one id?)",
                         name, line, gr_buf_cstr(&b), e->line);
    }
    if (rc == 0 && explicit_num)
        for (int j = 0; j < e->n; j++)
            if (e->s[j].explicit_num && e->s[j].num == num) {
                rc = gr_errf(err, "%s:%ld: %s: sample k=%ld appears twice (also at line %ld)", name, line,
                             gr_buf_cstr(&b), num, e->s[j].line);
                break;
            }
    gr_buf_free(&b);
    return rc;
}

/* The record's `k`: 1 with *k set, 0 when absent, -1 when not a sample number. */
static int record_k(jv rec, long *k) {
    jv v = jv_object_get(jv_copy(rec), jv_string("k"));
    int rc = 0;
    if (jv_get_kind(v) == JV_KIND_NUMBER) {
        double d = jv_number_value(v);
        if (d >= 0 && d <= 2147483647.0 && d == floor(d)) {
            *k = (long)d;
            rc = 1;
        } else {
            rc = -1;
        }
    } else if (jv_get_kind(v) != JV_KIND_INVALID && jv_get_kind(v) != JV_KIND_NULL) {
        rc = -1;
    }
    jv_free(v);
    return rc;
}

static int new_example(gr_miner *m, example *e, jv rec, jv id, const char *prompt, const char *ins,
                       const char *inp, long line) {
    e->by_id = jv_get_kind(id) == JV_KIND_STRING || jv_get_kind(id) == JV_KIND_NUMBER;
    e->id = e->by_id ? jv_copy(id) : jv_number((double)line);
    e->line = line;
    e->label = jv_object_get(jv_copy(rec), jv_string("label"));
    if (!jv_is_valid(e->label)) {
        jv_free(e->label);
        e->label = jv_null();
    }
    e->prompt = gr_xstrdup(prompt);
    gold_labels(m, rec, e->gold);
    size_t off, len;
    if (gr_mine_re_word(prompt, strlen(prompt), "AI assistant:", &off, &len))
        e->ai_word = gr_xstrndup(prompt + off, len);
    if (ins && inp) {
        size_t n = strlen(ins);
        if (m->o.split == GR_SPLIT_REFERENCE && n > 0 && ins[n - 1] == '\n') n--;
        e->instruction = gr_xstrndup(ins, n);
        e->input = gr_xstrdup(inp);
        return 0;
    }
    return split_prompt(m, prompt, e);
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
        /* the prompt: `prompt`, or instruction + "\n" + input (as n_generate.py builds it) */
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
        long num = 0;
        int has_k = record_k(rec, &num);
        if (pk != JV_KIND_STRING && pk != JV_KIND_ARRAY) {
            rc = gr_errf(err, "%s:%ld: sample record without \"predict\" (a string, or an array of k strings)", name, line);
        } else if (has_k < 0) {
            rc = gr_errf(err, "%s:%ld: \"k\" is not a sample number (a non-negative integer)", name, line);
        }
        if (rc < 0) {
            jv_free(predict);
            jv_free(rec);
            break;
        }
        /* Within a source, the records of one example share an id (as the
         * script's k files share a row); without an id, its prompt and label. */
        key.len = 0;
        jv id = jv_object_get(jv_copy(rec), jv_string("id"));
        if (jv_get_kind(id) == JV_KIND_STRING) gr_buf_printf(&key, "s:%s", jv_string_value(id));
        else if (jv_get_kind(id) == JV_KIND_NUMBER) gr_buf_printf(&key, "n:%.17g", jv_number_value(id));
        else {
            jv label = jv_object_get(jv_copy(rec), jv_string("label"));
            char *d = dump(jv_is_valid(label) ? label : jv_null());
            gr_buf_printf(&key, "p:%s", gr_buf_cstr(&prompt));
            gr_buf_putc(&key, '\x01');
            gr_buf_append(&key, d, strlen(d));
            free(d);
        }
        int is_new;
        example *e = source_get(src, gr_buf_cstr(&key), &is_new);
        if (is_new) {
            if (new_example(m, e, rec, id, gr_buf_cstr(&prompt), ins, inp, line) < 0)
                rc = gr_errf(err, "%s:%ld: cannot split the prompt into instruction and input (no \"\\n\\nHuman user:\")",
                             name, line);
        } else {
            rc = check_record(e, gr_buf_cstr(&prompt), rec, has_k == 1 && pk == JV_KIND_STRING, num, name, line, err);
        }
        jv_free(id);
        if (rc < 0) {
            jv_free(predict);
            jv_free(rec);
            break;
        }
        jv extra = extra_fields(jv_copy(rec));
        if (pk == JV_KIND_STRING) {
            add_sample(m, e, jv_string_value(predict), (size_t)jv_string_length_bytes(jv_copy(predict)),
                       has_k == 1 ? num : e->n, has_k == 1, line, extra);
        } else {
            /* k samples in one record: numbered from k (or from the count so far) */
            long base = has_k == 1 ? num : e->n;
            int n = jv_array_length(jv_copy(predict));
            for (int i = 0; i < n; i++) {
                jv s = jv_array_get(jv_copy(predict), i);
                if (jv_get_kind(s) == JV_KIND_STRING)
                    add_sample(m, e, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)), base + i, 0,
                               line, jv_copy(extra));
                else m->st.unparsed_samples++;
                jv_free(s);
            }
            jv_free(extra);
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

/* The script's samples are its k files in order, so ties go to the lower k. */
static int by_number(const void *a, const void *b) {
    const sample *x = a, *y = b;
    if (x->num != y->num) return x->num < y->num ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int is_none(const char *w) { return w && strcmp(w, "None") == 0; }

static int mine_example(gr_miner *m, example *e, int src, pair *out) {
    qsort(e->s, (size_t)e->n, sizeof *e->s, by_number);
    int any_gold = 0, enough = 0;
    for (int i = 0; i < GR_NTASKS; i++) {
        gr_task t = mine_order[i];
        const char *g = e->gold[t];
        if (!g) continue;
        any_gold = 1;
        /* the script's gate: a gold "None", or a prompt whose first
         * `AI assistant:\s*(\w+)` reads None, leaves the response tasks out */
        if (t != GR_TASK_REQUEST && (is_none(g) || is_none(e->ai_word))) continue;
        int kc = 0, ki = 0, best_c = -1, best_i = -1;
        for (int j = 0; j < e->n; j++) {
            sample *s = &e->s[j];
            if (!s->word[t]) continue; /* unparseable: not counted */
            if (strcmp(s->word[t], g) == 0) {
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
                if (!s->word[t]) continue;
                if (strcmp(s->word[t], g) == 0) { if (want_c-- == 0) best_c = j; }
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
 * p[lo..hi), in the script's order of operations (1 + (raw-min)*γ*2/(max-min) - γ,
 * so the weights are the same doubles); all equal raw weights give 1 (the
 * reference divided by zero). */
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
        if (mx == mn) {
            p[i].weight = 1.0;
            continue;
        }
        double x = (double)(raw - mn) * gamma;
        x = x * 2.0;
        x = x / (double)(mx - mn);
        p[i].weight = 1.0 + x - gamma;
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
    /* The union, as merge_hard_sample.py's drop_duplicates(subset='input') over
     * the concatenated files: the first pair per input text, earlier sources
     * first (and within a source, too). One source is H_self as it is. */
    source seen = {0};
    jv out = jv_array();
    for (size_t i = 0; i < np; i++) {
        example *e = p[i].e;
        if (m->n_src > 1) {
            int is_new;
            source_get(&seen, e->input, &is_new);
            if (!is_new) {
                m->st.duplicates++;
                continue;
            }
        }
        sample *c = &e->s[p[i].chosen], *rj = &e->s[p[i].rejected];
        /* the other fields of the chosen sample's record, as the script takes
         * the chosen sample's row */
        jv r = jv_get_kind(c->extra) == JV_KIND_OBJECT ? jv_copy(c->extra) : jv_object();
        r = jv_object_set(r, jv_string("instruction"), jv_string(e->instruction));
        r = jv_object_set(r, jv_string("input"), jv_string(e->input));
        r = jv_object_set(r, jv_string("chosen"), jv_string_sized(c->text, (int)c->len));
        r = jv_object_set(r, jv_string("rejected"), jv_string_sized(rj->text, (int)rj->len));
        r = jv_object_set(r, jv_string("sample_weight"), jv_number(p[i].weight));
        r = jv_object_set(r, jv_string("id"), jv_copy(e->id));
        r = jv_object_set(r, jv_string("task"), jv_string(gr_task_field(p[i].task)));
        r = jv_object_set(r, jv_string("k_correct"), jv_number(p[i].k_correct));
        r = jv_object_set(r, jv_string("k_incorrect"), jv_number(p[i].k_incorrect));
        r = jv_object_set(r, jv_string("source"), jv_string(m->src[p[i].src].name));
        r = jv_object_set(r, jv_string("weight_norm"), jv_string(m->o.norm == GR_NORM_UNION ? "union" : "source"));
        r = jv_object_set(r, jv_string("split"), jv_string(m->o.split == GR_SPLIT_EXACT ? "exact" : "reference"));
        r = jv_object_set(r, jv_string("answers"), jv_string(m->o.answers == GR_ANSWERS_EVAL ? "eval" : "script"));
        out = jv_array_append(out, r);
        m->st.pairs++;
    }
    set_free(&seen);
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
            for (int j = 0; j < e->n; j++) {
                free(e->s[j].text);
                for (int t = 0; t < GR_NTASKS; t++) free(e->s[j].word[t]);
                jv_free(e->s[j].extra);
            }
            free(e->s);
            for (int t = 0; t < GR_NTASKS; t++) free(e->gold[t]);
            free(e->prompt);
            free(e->ai_word);
            free(e->instruction);
            free(e->input);
            jv_free(e->id);
            jv_free(e->label);
        }
        set_free(src);
        free(src->name);
    }
    free(m->src);
    free(m);
}
