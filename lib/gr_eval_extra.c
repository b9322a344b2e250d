#include "gr_eval_extra.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void gr_eval_extra_compute(const gr_bench_result *r, int corrected, gr_parse_failure_mode mode, int sweep,
                           const double *fpr, size_t n_fpr, gr_eval_extra *x) {
    double threshold = x->threshold;
    memset(x, 0, sizeof *x);
    x->threshold = threshold;
    x->ece = NAN;
    gr_scores s = {0};
    gr_confusion fixed;
    gr_eval_scored(r, mode, corrected, &s, &fixed);
    x->n_fpr = n_fpr;
    if (n_fpr) {
        x->fpr = gr_xmalloc(n_fpr * sizeof *x->fpr);
        x->fpr_recall = gr_xmalloc(n_fpr * sizeof *x->fpr_recall);
        x->fpr_threshold = gr_xmalloc(n_fpr * sizeof *x->fpr_threshold);
    }
    for (size_t i = 0; i < n_fpr; i++) {
        x->fpr[i] = fpr[i];
        x->fpr_recall[i] = s.n ? gr_recall_at_fpr(&s, fpr[i], &x->fpr_threshold[i]) : NAN;
        if (!s.n) x->fpr_threshold[i] = INFINITY;
    }
    if (s.n) {
        x->has_calib = 1;
        x->ece = gr_calibration(&s, GR_CALIB_BINS, x->bins);
        if (sweep) {
            x->n_curve = gr_sweep(&s, &fixed, &x->curve);
            x->best = gr_sweep_best(x->curve, x->n_curve);
        }
    }
    gr_scores_free(&s);
}

void gr_eval_extra_free(gr_eval_extra *x) {
    free(x->curve);
    free(x->fpr);
    free(x->fpr_recall);
    free(x->fpr_threshold);
    x->curve = NULL;
    x->fpr = x->fpr_recall = x->fpr_threshold = NULL;
}
