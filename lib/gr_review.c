#include "gr_review.h"
#include "gr_io.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    const gr_bench_result *b;
    size_t bench;     /* position of b, for a stable order */
    long first;       /* index of the first record of the key */
    gr_label gold, pred;
    long k, votes;    /* records of the key, those predicting pred */
    int has_score;
    double score;     /* mean score of the key's records that have one */
    double confidence;
} entry;

static const gr_bench_result *sort_bench; /* qsort has no context argument */

static int by_key(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    int d = strcmp(sort_bench->items[x].key, sort_bench->items[y].key);
    return d ? d : (x > y) - (x < y);
}

static int by_confidence(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->confidence != y->confidence) return x->confidence < y->confidence ? 1 : -1;
    double ax = (double)x->votes / (double)x->k, ay = (double)y->votes / (double)y->k;
    if (ax != ay) return ax < ay ? 1 : -1;
    if (x->bench != y->bench) return x->bench < y->bench ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

/* TSV cell: tabs, newlines, carriage returns and backslashes escaped. */
static void cell(gr_buf *o, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '\t': gr_buf_printf(o, "\\t"); break;
        case '\n': gr_buf_printf(o, "\\n"); break;
        case '\r': gr_buf_printf(o, "\\r"); break;
        case '\\': gr_buf_printf(o, "\\\\"); break;
        default: gr_buf_putc(o, *s);
        }
    }
}

/* The disagreements of one benchmark, appended to *e. */
static void bench_entries(const gr_bench_result *b, size_t bi, double threshold, entry **e, size_t *n,
                          size_t *cap) {
    gr_label pos = gr_task_positive(b->task), neg = gr_label_opposite(pos);
    long *idx = gr_xmalloc(((size_t)b->n_items + 1) * sizeof *idx);
    for (long i = 0; i < b->n_items; i++) idx[i] = i;
    sort_bench = b;
    qsort(idx, (size_t)b->n_items, sizeof *idx, by_key);
    for (long i = 0; i < b->n_items;) {
        long j = i, npos = 0, nneg = 0, nscore = 0;
        double sum = 0;
        const gr_eval_item *f = &b->items[idx[i]];
        while (j < b->n_items && strcmp(b->items[idx[j]].key, f->key) == 0) {
            const gr_eval_item *it = &b->items[idx[j]];
            gr_label p = it->pred;
            if (!isnan(threshold)) p = it->has_score ? (it->score >= threshold ? pos : neg) : GR_LABEL_NONE;
            npos += p == pos;
            nneg += p == neg;
            if (it->has_score) nscore++, sum += it->score;
            j++;
        }
        entry x = {b, bi, idx[i], f->corrected, GR_LABEL_NONE, j - i, 0, nscore > 0,
                   nscore ? sum / (double)nscore : NAN, 0};
        i = j;
        if (x.gold == GR_LABEL_NONE || npos + nneg == 0) continue; /* unlabelled, or no prediction */
        /* a tie is a disagreement of no confidence in either label */
        x.pred = npos > nneg ? pos : nneg > npos ? neg : gr_label_opposite(x.gold);
        x.votes = x.pred == pos ? npos : nneg;
        if (x.pred == x.gold) continue;
        x.confidence = x.has_score ? (x.pred == pos ? x.score : 1 - x.score) : (double)x.votes / (double)x.k;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 64;
            *e = gr_xrealloc(*e, *cap * sizeof **e);
        }
        (*e)[(*n)++] = x;
    }
    free(idx);
}

int gr_review_write(const char *path, gr_bench_result *const *r, const double *thresholds, size_t n,
                    long *rows, gr_err *err) {
    entry *e = NULL;
    size_t ne = 0, cap = 0;
    for (size_t i = 0; i < n; i++) bench_entries(r[i], i, thresholds[i], &e, &ne, &cap);
    if (ne) qsort(e, ne, sizeof *e, by_confidence);
    gr_buf o = {0};
    gr_buf_printf(&o, "rank\tmodel\tbenchmark\ttask\tid\tline\tgold\tpred\tconfidence\tscore\tvotes\ttext\n");
    for (size_t i = 0; i < ne; i++) {
        const entry *x = &e[i];
        const gr_eval_item *f = &x->b->items[x->first];
        gr_buf_printf(&o, "%zu\t", i + 1);
        cell(&o, x->b->model);
        gr_buf_putc(&o, '\t');
        cell(&o, x->b->name);
        gr_buf_printf(&o, "\t%s\t", gr_task_eval_name(x->b->task));
        cell(&o, f->key);
        gr_buf_printf(&o, "\t%ld\t%s\t%s\t%.4f\t", f->line, gr_label_name(x->gold), gr_label_name(x->pred),
                      x->confidence);
        if (x->has_score) gr_buf_printf(&o, "%.4f", x->score);
        gr_buf_printf(&o, "\t%ld/%ld\t", x->votes, x->k);
        cell(&o, f->text);
        gr_buf_putc(&o, '\n');
    }
    free(e);
    int rc = gr_write_file_atomic(path, o.data, o.len, err);
    gr_buf_free(&o);
    *rows = (long)ne;
    return rc;
}
