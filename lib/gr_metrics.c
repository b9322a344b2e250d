#include "gr_metrics.h"
#include "gr_common.h"
#include <math.h>
#include <stdlib.h>

void gr_confusion_add(gr_confusion *c, int gold_pos, int pred_pos, long count) {
    if (gold_pos && pred_pos) c->tp += count;
    else if (!gold_pos && pred_pos) c->fp += count;
    else if (gold_pos && !pred_pos) c->fn += count;
    else c->tn += count;
}

static double ratio(long a, long b) { return b ? (double)a / (double)b : 0.0; }

double gr_f1(const gr_confusion *c) { return ratio(2 * c->tp, 2 * c->tp + c->fp + c->fn); }
double gr_precision(const gr_confusion *c) { return ratio(c->tp, c->tp + c->fp); }
double gr_recall(const gr_confusion *c) { return ratio(c->tp, c->tp + c->fn); }
double gr_accuracy(const gr_confusion *c) { return ratio(c->tp + c->tn, c->tp + c->tn + c->fp + c->fn); }

void gr_scores_add(gr_scores *s, double score, int pos) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->score = gr_xrealloc(s->score, s->cap * sizeof *s->score);
        s->pos = gr_xrealloc(s->pos, s->cap);
    }
    s->score[s->n] = score;
    s->pos[s->n] = (unsigned char)(pos != 0);
    s->n++;
}

typedef struct { double score; unsigned char pos; } pair;

static int by_score_desc(const void *a, const void *b) {
    double x = ((const pair *)a)->score, y = ((const pair *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

double gr_average_precision(gr_scores *s) {
    pair *p = gr_xmalloc((s->n ? s->n : 1) * sizeof *p);
    long total_pos = 0;
    for (size_t i = 0; i < s->n; i++) {
        p[i].score = s->score[i];
        p[i].pos = s->pos[i];
        total_pos += s->pos[i];
    }
    if (total_pos == 0) {
        free(p);
        return NAN;
    }
    qsort(p, s->n, sizeof *p, by_score_desc);
    double ap = 0, prev_recall = 0;
    long tp = 0, seen = 0;
    for (size_t i = 0; i < s->n;) {
        size_t j = i;
        while (j < s->n && p[j].score == p[i].score) { tp += p[j].pos; j++; }
        seen += (long)(j - i);
        double recall = (double)tp / (double)total_pos, precision = (double)tp / (double)seen;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j;
    }
    free(p);
    return ap;
}

void gr_scores_free(gr_scores *s) {
    free(s->score);
    free(s->pos);
    s->score = NULL;
    s->pos = NULL;
    s->n = s->cap = 0;
}
