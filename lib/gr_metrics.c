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

/* (score, pos) pairs sorted by score, highest first; NULL when s is empty. */
static pair *sorted_desc(const gr_scores *s) {
    if (!s->n) return NULL;
    pair *p = gr_xmalloc(s->n * sizeof *p);
    for (size_t i = 0; i < s->n; i++) {
        p[i].score = s->score[i];
        p[i].pos = s->pos[i];
    }
    qsort(p, s->n, sizeof *p, by_score_desc);
    return p;
}

size_t gr_sweep(const gr_scores *s, const gr_confusion *fixed, gr_sweep_point **pts) {
    *pts = NULL;
    pair *p = sorted_desc(s);
    if (!p) return 0;
    long total_pos = 0;
    for (size_t i = 0; i < s->n; i++) total_pos += p[i].pos;
    long total_neg = (long)s->n - total_pos;
    gr_sweep_point *out = gr_xmalloc(s->n * sizeof *out);
    size_t k = 0;
    long tp = 0, fp = 0;
    for (size_t i = 0; i < s->n;) {
        size_t j = i;
        while (j < s->n && p[j].score == p[i].score) {
            tp += p[j].pos;
            fp += !p[j].pos;
            j++;
        }
        gr_confusion cm = *fixed;
        cm.tp += tp;
        cm.fp += fp;
        cm.fn += total_pos - tp;
        cm.tn += total_neg - fp;
        out[k++] = (gr_sweep_point){p[i].score, cm};
        i = j;
    }
    free(p);
    *pts = out;
    return k;
}

size_t gr_sweep_best(const gr_sweep_point *p, size_t n) {
    size_t best = 0;
    double bf = gr_f1(&p[0].cm);
    for (size_t i = 1; i < n; i++) { /* highest threshold first: only a strictly better F1 moves */
        double f = gr_f1(&p[i].cm);
        if (f > bf) {
            bf = f;
            best = i;
        }
    }
    return best;
}

void gr_threshold_confusion(const gr_scores *s, double threshold, gr_confusion *cm) {
    *cm = (gr_confusion){0};
    for (size_t i = 0; i < s->n; i++) gr_confusion_add(cm, s->pos[i], s->score[i] >= threshold, 1);
}

double gr_recall_at_fpr(const gr_scores *s, double max_fpr, double *threshold) {
    *threshold = INFINITY;
    long total_pos = 0;
    for (size_t i = 0; i < s->n; i++) total_pos += s->pos[i];
    long total_neg = (long)s->n - total_pos;
    if (!total_pos || !total_neg) return NAN;
    pair *p = sorted_desc(s);
    double best = 0; /* the point (0, 0): nothing flagged */
    long tp = 0, fp = 0;
    for (size_t i = 0; i < s->n;) {
        size_t j = i;
        while (j < s->n && p[j].score == p[i].score) {
            tp += p[j].pos;
            fp += !p[j].pos;
            j++;
        }
        double fpr = (double)fp / (double)total_neg, tpr = (double)tp / (double)total_pos;
        if (fpr > max_fpr) break; /* the FPR only grows from here */
        if (tpr > best) {
            best = tpr;
            *threshold = p[i].score;
        }
        i = j;
    }
    free(p);
    return best;
}

double gr_calibration(const gr_scores *s, int n_bins, gr_calib_bin *bins) {
    for (int k = 0; k < n_bins; k++) {
        /* numpy.linspace(0, 1, B + 1): k * (1/B), the last edge exactly 1 */
        double step = 1.0 / (double)n_bins;
        bins[k] = (gr_calib_bin){(double)k * step, k + 1 == n_bins ? 1.0 : (double)(k + 1) * step, 0, 0, 0};
    }
    for (size_t i = 0; i < s->n; i++) {
        /* numpy.searchsorted(inner edges, score, side="left"): the number of
         * inner edges strictly below the score */
        int k = 0;
        while (k < n_bins - 1 && bins[k].hi < s->score[i]) k++;
        bins[k].n++;
        bins[k].pos += s->pos[i];
        bins[k].sum_score += s->score[i];
    }
    if (!s->n) return NAN;
    double ece = 0;
    for (int k = 0; k < n_bins; k++)
        if (bins[k].n)
            ece += (double)bins[k].n / (double)s->n *
                   fabs((double)bins[k].pos / (double)bins[k].n - bins[k].sum_score / (double)bins[k].n);
    return ece;
}
