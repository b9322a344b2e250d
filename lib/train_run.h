/* Pieces of a training run's file handling shared by gr-sft and gr-dpo. */
#ifndef GR_TRAIN_RUN_H
#define GR_TRAIN_RUN_H
#include <stdint.h>
#include "gr_common.h"

/* mkdir -p: dir and its missing parents. */
int gr_mkdir_p(const char *dir, gr_err *err);

/* On --resume: rewrites the JSONL log at path (atomically) keeping the lines of
 * steps <= step (a killed run may have logged steps after its last checkpoint,
 * and a torn last line). *elapsed = the elapsed_s of the last kept line (0 if
 * none). A missing file is no error. */
int gr_train_log_cut(const char *path, uint64_t step, double *elapsed, gr_err *err);
#endif
