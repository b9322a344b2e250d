/* The label-review queue (the paper's §3.6 as a tool): the records where the
 * guard and the gold label disagree, most confident first, as TSV for a person
 * to check; the corrections they write go back to gr-eval --corrections. */
#ifndef GR_REVIEW_H
#define GR_REVIEW_H
#include "gr_eval.h"

/* Writes the queue of benchmarks r[0..n) to path atomically. thresholds[i]:
 * NaN to use the parsed labels of r[i], else classify by score >= it. Records
 * of one key (k sample records of one example) are one entry, predicted by
 * their majority. Gold labels are the corrected ones. *rows gets the count. */
int gr_review_write(const char *path, gr_bench_result *const *r, const double *thresholds, size_t n,
                    long *rows, gr_err *err);
#endif
