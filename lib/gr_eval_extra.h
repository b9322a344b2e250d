/* The score-based figures of a benchmark: the threshold sweep, recall at fixed
 * false-positive rates, and calibration (ECE and the reliability table). */
#ifndef GR_EVAL_EXTRA_H
#define GR_EVAL_EXTRA_H
#include "gr_eval.h"

#define GR_CALIB_BINS 10

typedef struct gr_eval_extra {
    double threshold;       /* the threshold applied to the F1 figures; NaN: parsed labels */
    gr_sweep_point *curve;  /* --sweep: every distinct score, highest first (NULL: none) */
    size_t n_curve, best;   /* points, index of the best F1 */
    size_t n_fpr;
    double *fpr, *fpr_recall, *fpr_threshold; /* (n_fpr) recall NaN: undefined */
    int has_calib;
    double ece;             /* NaN without scores */
    gr_calib_bin bins[GR_CALIB_BINS];
} gr_eval_extra;

/* The figures of r's labelled, scored items (corrected gold labels when
 * corrected is 1). The sweep counts the items without a score as parse
 * failures under mode at every threshold, as --threshold does. */
void gr_eval_extra_compute(const gr_bench_result *r, int corrected, gr_parse_failure_mode mode, int sweep,
                           const double *fpr, size_t n_fpr, gr_eval_extra *x);
void gr_eval_extra_free(gr_eval_extra *x);
#endif
