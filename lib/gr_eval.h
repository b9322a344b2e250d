/* Scoring one benchmark file for one task, the way GuardReasoner's evaluate.py
 * does (see man/gr-eval.1 for the exact semantics and its two quirks). */
#ifndef GR_EVAL_H
#define GR_EVAL_H
#include "gr_common.h"
#include "gr_labels.h"
#include "gr_metrics.h"

typedef enum {
    GR_PF_REFERENCE = 0, /* the reference: counted twice as wrong; dropped when gold is harmful */
    GR_PF_WRONG,         /* counted once as a wrong answer */
    GR_PF_SKIP           /* left out of the confusion counts */
} gr_parse_failure_mode;

typedef struct gr_eval_opts {
    gr_parse_failure_mode parse_failures;
    const char *map;          /* --map jq program for the prediction records */
    int replace_invalid_utf8;
    /* Gold labels from a separate benchmark file (the WildGuardTest case): the
     * i-th record of gold_file gives the gold label of the i-th prediction in
     * its field gold_field. NULL: gold labels come from the records. */
    const char *gold_file;
    const char *gold_field;
} gr_eval_opts;

typedef struct gr_bench_result {
    char *name, *model, *path;
    gr_task task;
    long n;              /* records in the file: the weight of the benchmark */
    long no_label;       /* records without a gold label for the task (not scored) */
    long parse_failures; /* predictions without a parseable answer for the task */
    long dropped;        /* parse failures the reference drops (gold harmful) */
    gr_confusion cm;
    int has_scores;      /* records carried `scores` for the task */
    double auprc;        /* average precision over the scored records, NaN if none */
    gr_scores scores;
} gr_bench_result;

/* Scores path into out (whose name/model/task the caller sets). 0 or -1. */
int gr_eval_file(const char *path, const gr_eval_opts *opts, gr_bench_result *out, gr_err *err);
void gr_bench_result_free(gr_bench_result *r);
#endif
