/* The step plan shared by the trainers (gr-sft, gr-dpo), as transformers 4.46's
 * loop cuts an epoch (REFERENCE-SEMANTICS §3):
 *   - each epoch the n examples are shuffled (seeded, gr_tdata_shuffle) and cut
 *     into micro-batches of micro_batch (the last may be smaller):
 *     M = ceil(n / micro_batch);
 *   - an optimizer step accumulates grad_accum micro-batches; the last step of an
 *     epoch takes the remaining ones: ceil(M / grad_accum) steps per epoch;
 *   - the run (and the cosine schedule) spans T = epochs · max(1, ⌊M / grad_accum⌋). */
#ifndef GR_TRAIN_PLAN_H
#define GR_TRAIN_PLAN_H
#include <stdint.h>

typedef struct gr_train_plan {
    int64_t n, micro_batch, grad_accum, epochs;
    int64_t M;                /* micro-batches per epoch */
    int64_t steps_per_epoch;
    int64_t T;                /* optimizer steps of the schedule */
} gr_train_plan;

/* All arguments >= 1. */
void gr_train_plan_init(gr_train_plan *p, int64_t n, int64_t micro_batch, int64_t grad_accum,
                        int64_t epochs);
/* Optimizer step k (from 0): its epoch and its micro-batches [*u0, *u1) of that epoch. */
void gr_train_plan_step(const gr_train_plan *p, int64_t k, int64_t *epoch, int64_t *u0,
                        int64_t *u1);
/* Examples [*a, *b) of the epoch order that micro-batch u holds. */
void gr_train_plan_micro(const gr_train_plan *p, int64_t u, int64_t *a, int64_t *b);
#endif
