/* Binary classification metrics: confusion counts, F1 (as scikit-learn's
 * f1_score with pos_label), precision, recall, accuracy, and average precision
 * (scikit-learn's average_precision_score, the area under the PR curve). */
#ifndef GR_METRICS_H
#define GR_METRICS_H
#include <stddef.h>

typedef struct gr_confusion {
    long tp, fp, tn, fn;
} gr_confusion;

void gr_confusion_add(gr_confusion *c, int gold_pos, int pred_pos, long count);
/* Fractions in [0,1]; 0 where the denominator is 0 (scikit-learn's zero_division=0). */
double gr_f1(const gr_confusion *c);
double gr_precision(const gr_confusion *c);
double gr_recall(const gr_confusion *c);
double gr_accuracy(const gr_confusion *c);

/* (score, gold) pairs for average precision. */
typedef struct gr_scores {
    double *score;
    unsigned char *pos;
    size_t n, cap;
} gr_scores;
void gr_scores_add(gr_scores *s, double score, int pos);
/* Average precision: sum over distinct thresholds (descending) of
 * (R_k - R_{k-1}) * P_k. Sorts s in place. NaN when there is no positive. */
double gr_average_precision(gr_scores *s);
void gr_scores_free(gr_scores *s);
#endif
