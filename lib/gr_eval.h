/* Scoring one benchmark file for one task, the way GuardReasoner's evaluate.py
 * does (see man/gr-eval.1 for the exact semantics and its two quirks), plus the
 * score-based views of the same records: a threshold on `scores`, corrected gold
 * labels, and what a label review needs. */
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

/* Corrected gold labels by record key (gr_eval_corrections_load). */
typedef struct gr_eval_corrections gr_eval_corrections;

typedef struct gr_eval_opts {
    gr_parse_failure_mode parse_failures;
    const char *map;          /* --map jq program for the prediction records */
    int replace_invalid_utf8;
    /* Gold labels from a separate benchmark file (the WildGuardTest case): the
     * i-th record of gold_file gives the gold label of the i-th prediction in
     * its field gold_field. NULL: gold labels come from the records. */
    const char *gold_file;
    const char *gold_field;
    const gr_eval_corrections *corrections; /* NULL: none */
    int keep_text;            /* keep a snippet of each record's text (review queue) */
} gr_eval_opts;

/* One record as scored. */
typedef struct gr_eval_item {
    char *key;          /* `id` as text, or the 1-based record number when it has none */
    char *text;         /* the interaction, for the review queue (keep_text), or NULL */
    long line;          /* where the record began */
    gr_label gold;      /* GR_LABEL_NONE: no gold label for the task */
    gr_label corrected; /* the gold label after the corrections (= gold without one) */
    gr_label pred;      /* the parsed prediction; GR_LABEL_NONE: a parse failure */
    double score;       /* scores.<task>, when has_score */
    int has_score;
} gr_eval_item;

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
    gr_scores scores;    /* (score, gold positive) of the labelled records with a score */
    gr_eval_item *items; /* every record, in input order */
    long n_items;
    long corrected;      /* labelled records whose gold label a correction changed */
} gr_bench_result;

/* Scores path into out (whose name/model/task the caller sets): the confusion
 * counts of the parsed labels, AUPRC, and the items. 0 or -1. A file with no
 * labelled record for the task is an error naming the unlabelled count. */
int gr_eval_file(const char *path, const gr_eval_opts *opts, gr_bench_result *out, gr_err *err);
void gr_bench_result_free(gr_bench_result *r);

/* The confusion counts of r's items under the parse-failure mode: predictions
 * are the parsed labels when threshold is NaN, else `score >= threshold` (an
 * item without a score is then a parse failure); gold labels are the corrected
 * ones when corrected is 1. pf and dropped (may be NULL) get the parse failures
 * and the reference's dropped ones. */
void gr_eval_confusion(const gr_bench_result *r, gr_parse_failure_mode mode, double threshold,
                       int corrected, gr_confusion *cm, long *pf, long *dropped);

/* The (score, corrected gold positive) pairs of the labelled items with a
 * score, and the confusion counts that the labelled items without a score add
 * at any threshold (as parse failures under mode). */
void gr_eval_scored(const gr_bench_result *r, gr_parse_failure_mode mode, int corrected,
                    gr_scores *s, gr_confusion *fixed);

/* --corrections FILE: records {id, label[, benchmark]}; label as a gold label
 * (a bare word, an answer block, or an object by task); benchmark limits it
 * to the benchmarks of that name. A repeated (id, benchmark) is an error. */
gr_eval_corrections *gr_eval_corrections_load(const char *path, int replace_invalid, gr_err *err);
/* Corrections that matched no record of any benchmark so far. */
long gr_eval_corrections_unused(const gr_eval_corrections *c);
void gr_eval_corrections_free(gr_eval_corrections *c);
#endif
