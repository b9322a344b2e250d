/* The optimizer step of training (REFERENCE-SEMANTICS §3): global-norm clipping,
 * AdamW with bias correction (torch.optim.AdamW), and transformers' cosine
 * schedule with linear warmup. */
#ifndef GR_TRAIN_OPTIM_H
#define GR_TRAIN_OPTIM_H
#include <stdint.h>
#include "train_model.h"

typedef struct gr_adamw {
    float beta1, beta2, eps, weight_decay;  /* 0.9, 0.999, 1e-8, 0 */
    int64_t t;                              /* steps taken */
    int64_t n;
    float *m, *v;                           /* (n) first and second moments */
    const gr_train_ops *ops;                /* where m, v live (NULL: the heap) */
    gr_backend *be;
} gr_adamw;

/* Zeroed moments for n parameters, the reference defaults. */
void gr_adamw_init(gr_adamw *o, int64_t n);
/* The same for the parameters of model m, the moments where its ops address
 * (device memory for a device backend). */
void gr_adamw_init_model(gr_adamw *o, const gr_train_model *m);
void gr_adamw_free(gr_adamw *o);
/* One update of m->params from m->grads at learning rate lr (t advances). */
void gr_adamw_step(gr_adamw *o, gr_train_model *m, float lr);

/* The learning rate before optimizer step k (k steps already taken) of T, with
 * `warmup` linear warmup steps (transformers' _get_cosine_schedule_with_warmup_lr_lambda,
 * num_cycles 0.5): lr0·k/W while k < W, then lr0·max(0, ½(1+cos(π·(k−W)/(T−W)))). */
double gr_lr_cosine(double lr0, int64_t k, int64_t T, int64_t warmup);

/* The global L2 norm of the gradients; when max_norm > 0 and (norm + 1e-6) >
 * max_norm, the gradients are scaled by max_norm / (norm + 1e-6). Returns the
 * norm before clipping. */
double gr_clip_grad_norm(gr_train_model *m, float max_norm);

/* The step the trainers take: gr_clip_grad_norm then gr_adamw_step, fused
 * into one pass over the parameters where the ops have adamw_clip (the CUDA
 * table: a fixed-order squared-norm reduction, then one kernel doing clip,
 * AdamW and the bf16 copy; the gradients are not rewritten). fused = 0 forces
 * the separate passes (the GPU test compares the two). Returns the norm before
 * clipping. */
double gr_optim_step(gr_adamw *o, gr_train_model *m, float lr, float max_norm, int fused);
#endif
