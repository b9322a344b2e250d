/* Supervised fine-tuning (the paper's R-SFT, Eq. 1) as LLaMA-Factory's Trainer
 * runs it (REFERENCE-SEMANTICS §3):
 *   - each epoch the examples are shuffled (seeded) and cut into micro-batches of
 *     `micro_batch` (the last may be smaller): M = ceil(n / micro_batch);
 *   - an optimizer step accumulates `grad_accum` micro-batches; the last step of an
 *     epoch takes the remaining ones (transformers 4.46's loop), so an epoch has
 *     ceil(M / grad_accum) steps;
 *   - training stops after T = epochs · max(1, ⌊M / grad_accum⌋) steps (4.46's
 *     max_steps), which the cosine schedule spans;
 *   - loss: the token-weighted mean NLL over all target tokens of the step
 *     (default), or the mean over micro-batches of each one's token mean.
 * Everything a step does is a function of (seed, step number, weights, moments),
 * so a run resumed from a checkpoint continues bit for bit. */
#ifndef GR_TRAIN_SFT_H
#define GR_TRAIN_SFT_H
#include <stdint.h>
#include "train_data.h"
#include "train_model.h"
#include "train_optim.h"

typedef struct gr_sft_opts {
    double lr;              /* 5e-5 */
    int epochs;             /* 3 */
    int micro_batch;        /* 6 */
    int grad_accum;         /* 16 */
    double max_grad_norm;   /* 1.0; 0 = no clipping */
    int64_t warmup_steps;   /* 0 */
    double weight_decay;    /* 0 */
    uint64_t seed;          /* 42 */
    int loss_micro;         /* 0: token mean over the step; 1: mean of micro-batch means */
    int64_t max_steps;      /* 0: T from the epochs; else stop after this many (T unchanged) */
    int recompute;          /* activation recomputation (gr_tact_new) */
    /* Data parallelism (dp.h): with dp (world > 1), process rank takes the
     * sequences i of every micro-batch with i % world == rank; the gradient
     * block is summed over the processes in buckets, started during the
     * backward pass of the step's last micro-batch, and the loss sums after,
     * so every process takes the same optimizer step. NULL: one process. */
    struct gr_dp *dp;
} gr_sft_opts;

void gr_sft_opts_default(gr_sft_opts *o);

typedef struct gr_sft {
    gr_sft_opts o;
    gr_train_model *m;
    const gr_tdata *data;
    gr_tact *act;
    gr_adamw opt;
    int64_t M;              /* micro-batches per epoch */
    int64_t steps_per_epoch;
    int64_t T;              /* total optimizer steps of the schedule */
    int64_t step;           /* optimizer steps done */
    int *perm;              /* (n) order of the current epoch */
    int64_t perm_epoch;     /* epoch perm belongs to, -1 none */
} gr_sft;

typedef struct gr_sft_info {
    int64_t step;           /* the step just taken, from 1 */
    double epoch;           /* fractional epoch reached */
    double loss, lr, grad_norm;
    int64_t tokens, targets;
} gr_sft_info;

/* The trainer over data for model m (both borrowed). */
int gr_sft_init(gr_sft *s, gr_train_model *m, const gr_tdata *data, const gr_sft_opts *o,
                gr_err *err);
void gr_sft_free(gr_sft *s);
/* The step count the run ends at (T, or max_steps when smaller). */
int64_t gr_sft_last_step(const gr_sft *s);
/* Takes optimizer step s->step + 1. */
int gr_sft_step(gr_sft *s, gr_sft_info *info, gr_err *err);
/* Mean NLL per target token of data (in micro-batches of micro_batch, no update). */
int gr_sft_eval(gr_sft *s, const gr_tdata *data, double *loss, gr_err *err);
/* The same for any model: loss and the number of target tokens. */
int gr_train_eval(gr_train_model *m, gr_tact *act, const gr_tdata *d, int micro_batch,
                  double *loss, int64_t *n_targets, gr_err *err);
#endif
