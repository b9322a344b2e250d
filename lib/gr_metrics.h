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

/* ---- score thresholds (predictions: score >= threshold) ---------------- */
typedef struct gr_sweep_point {
    double threshold;
    gr_confusion cm;
} gr_sweep_point;
/* One point per distinct score, highest threshold first (scikit-learn's
 * precision_recall_curve thresholds), each with `fixed` added to its counts
 * (the records without a score, counted the same at every threshold). Returns
 * the number of points; *pts is malloc'd (NULL when there is no score). */
size_t gr_sweep(const gr_scores *s, const gr_confusion *fixed, gr_sweep_point **pts);
/* The index of the point with the highest F1; ties go to the highest threshold
 * (the fewest records flagged). n must be > 0. */
size_t gr_sweep_best(const gr_sweep_point *p, size_t n);
/* The confusion counts of `score >= threshold`. */
void gr_threshold_confusion(const gr_scores *s, double threshold, gr_confusion *cm);

/* Recall (true-positive rate) at a false-positive rate of at most max_fpr: the
 * highest TPR of the ROC points (every distinct score as a threshold, and
 * "nothing flagged"), as max(tpr[fpr <= max_fpr]) over scikit-learn's
 * roc_curve(drop_intermediate=False). *threshold gets the highest threshold
 * reaching it (INFINITY: nothing flagged). NaN without a positive or a negative. */
double gr_recall_at_fpr(const gr_scores *s, double max_fpr, double *threshold);

/* Calibration of the positive-class probability over uniform bins, as
 * scikit-learn's calibration_curve(strategy="uniform"): bin k holds the scores
 * in (k/B, (k+1)/B], the first also 0 (edges as numpy.linspace computes them). */
typedef struct gr_calib_bin {
    double lo, hi;
    long n, pos;      /* records in the bin, positives among them */
    double sum_score; /* Σ score over the bin */
} gr_calib_bin;
/* Fills bins[0..n_bins) and returns the expected calibration error
 * Σ_k n_k/N |pos_k/n_k - mean score_k| (NaN with no score). */
double gr_calibration(const gr_scores *s, int n_bins, gr_calib_bin *bins);
#endif
