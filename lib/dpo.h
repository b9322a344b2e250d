/* Direct preference optimisation with sample weights (the paper's HS-DPO, Eq. 2-3)
 * as LLaMA-Factory v0.9.1 + TRL 0.9.6 compute it (REFERENCE-SEMANTICS §2, §3).
 *
 * Per pair (c chosen, r rejected, w its weight, π = Σ log p over the response
 * tokens including the end of turn, ref = the same under the frozen starting
 * model, |c| = chosen response tokens):
 *   h      = (πc − πr) − (refc − refr)
 *   L_dpo  = −log σ(β·h)               (TRL's sigmoid loss, no label smoothing)
 *   L_sft  = −πc / |c|                 (LF's pref_ftx term)
 *   ℓ      = w·L_dpo + ftx·L_sft       (the weight on the DPO term: Eq. 2's α)
 * A step's loss is the mean of ℓ over its pairs; the gradient is that mean's.
 * Through the training core: ∂ℓ/∂πc = −w·β·σ(−βh) − ftx/|c|, ∂ℓ/∂πr = w·β·σ(−βh),
 * so each step runs, per pair, a forward of both sequences (πc, πr; both sets
 * of activations kept), then the backward of Σ NLL of c scaled by
 * (w·β·σ(−βh) + ftx/|c|)/P and of r by −w·β·σ(−βh)/P (P = pairs in the step)
 * from those activations (gr_train_backward_micro).
 *
 * The reference log-probabilities never change: gr_dpo_reference computes them
 * once with the starting weights, so training holds one model, not two. The
 * step plan (shuffle, micro-batches, accumulation, T) is gr-sft's (train_plan.h);
 * a micro-batch's pairs are computed one by one (the sums are the same). */
#ifndef GR_DPO_H
#define GR_DPO_H
#include <stdint.h>
#include "dpo_data.h"
#include "train_model.h"
#include "train_optim.h"
#include "train_plan.h"

typedef struct gr_dpo_opts {
    double lr;              /* 5e-6 */
    int epochs;             /* 2 */
    int micro_batch;        /* 1 */
    int grad_accum;         /* 64 */
    double max_grad_norm;   /* 1.0; 0 = no clipping */
    int64_t warmup_steps;   /* 0 */
    double weight_decay;    /* 0 */
    uint64_t seed;          /* 42 */
    int64_t max_steps;      /* 0: T from the epochs; else stop after this many (T unchanged) */
    double beta;            /* 0.01 */
    double ftx;             /* 2.0 */
    int use_weights;        /* 1; 0 = plain DPO (every w = 1) */
    int recompute;          /* activation recomputation (gr_tact_new) */
    /* Data parallelism (dp.h), NULL: one process. Process rank takes the pairs j
     * of each step (in the step's order) with j % world == rank, and the pairs i
     * of the reference and of an evaluation with i % world == rank; gradients
     * are summed in buckets (started during the backward pass of its last
     * pair), the metrics and reference log-probs after. */
    struct gr_dp *dp;
} gr_dpo_opts;

void gr_dpo_opts_default(gr_dpo_opts *o);

/* One pair's loss and its parts from the four log-probabilities. */
typedef struct gr_dpo_terms {
    double h, loss, dpo, sft;     /* dpo = w·L_dpo, sft = L_sft (unweighted, before ftx) */
    double reward_c, reward_r;    /* β(πc − refc), β(πr − refr) */
    double dl_dpc, dl_dpr;        /* ∂ℓ/∂πc, ∂ℓ/∂πr */
} gr_dpo_terms;
void gr_dpo_pair_terms(double beta, double ftx, double w, double pc, double pr, double ref_c,
                       double ref_r, int64_t len_c, gr_dpo_terms *t);

/* Means over a set of pairs (a step, or an evaluation). */
typedef struct gr_dpo_info {
    int64_t step;           /* the step just taken, from 1 */
    double epoch;           /* fractional epoch reached */
    double loss, dpo_loss, sft_loss;
    double reward_c, reward_r, accuracy, margin;  /* rewards/chosen, /rejected, /accuracies, /margins */
    double logp_c, logp_r;  /* mean summed policy log-probs */
    double lr, grad_norm;
    int64_t pairs, tokens;
} gr_dpo_info;

typedef struct gr_dpo {
    gr_dpo_opts o;
    gr_train_model *m;
    const gr_pdata *data;
    gr_tact *act, *act_r;   /* activations of the chosen and the rejected sequence */
    gr_adamw opt;
    gr_train_plan plan;
    int64_t step;           /* optimizer steps done */
    int *perm;              /* (n) order of the current epoch */
    int64_t perm_epoch;
    double *ref_c, *ref_r;  /* (n) reference log-probs */
    int have_ref;
} gr_dpo;

/* The trainer over data for model m (both borrowed). Refuses null weights when
 * weights are on. */
int gr_dpo_init(gr_dpo *s, gr_train_model *m, const gr_pdata *data, const gr_dpo_opts *o,
                gr_err *err);
void gr_dpo_free(gr_dpo *s);
int64_t gr_dpo_last_step(const gr_dpo *s);

/* The reference log-probabilities of every pair with m's current weights (call
 * before the first step). progress(i, n, arg) is called after each pair, or NULL. */
int gr_dpo_reference(gr_dpo *s, void (*progress)(int, int, void *), void *arg, gr_err *err);

/* The reference file: "GRDPOREF" u32 version (1) u32 0, u64 n, u64 pairs
 * checksum (gr_pdata_checksum), u64 model checksum (gr_dpo_model_checksum of the
 * starting weights), f64 ref_c[n], f64 ref_r[n], u64 FNV-1a 64 of every byte
 * before it. Written atomically. */
uint64_t gr_dpo_model_checksum(const gr_train_model *m);
int gr_dpo_ref_write(const gr_dpo *s, const char *path, uint64_t model_sum, gr_err *err);
/* 1 when path holds the reference of these pairs and this model (loaded into s),
 * 0 when it is missing or made for other pairs or another model, -1 when damaged. */
int gr_dpo_ref_read(gr_dpo *s, const char *path, uint64_t model_sum, gr_err *err);

/* Takes optimizer step s->step + 1. */
int gr_dpo_step(gr_dpo *s, gr_dpo_info *info, gr_err *err);
/* The loss and metrics over every pair of s->data with the current weights (no update). */
int gr_dpo_eval(gr_dpo *s, gr_dpo_info *info, gr_err *err);
#endif
