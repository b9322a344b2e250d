/* The training model (llm.c's layout): every parameter in one fp32 block, the
 * gradients in a second block of the same layout (bf16 elements when the ops
 * store16, beside a bf16 copy of the weights), and per-tensor pointers into
 * both; a forward pass that keeps the activations the backward pass needs.
 * Every block comes from the ops (lib/train_mem_plan.h lays them out and sums
 * them into the memory plan); the host reaches them only through
 * gr_train_params_get/put and gr_train_grads_get (a device's memory is not the
 * host's).
 *
 * A micro-batch is a set of token sequences packed without padding; the loss is
 * the cross-entropy of the tokens after each sequence's prompt: position t is
 * scored against ids[t+1] when t+1 >= n_prompt (REFERENCE-SEMANTICS §1: logits at
 * t against labels[t+1], labels -100 on the prompt and on padding). */
#ifndef GR_TRAIN_MODEL_H
#define GR_TRAIN_MODEL_H
#include <stdint.h>
#include "backend_train.h"
#include "model.h"
#include "train_mem_plan.h"

typedef struct gr_tlayer {
    float *attn_norm;      /* (D) */
    float *wq;             /* (H*hd, D) */
    float *wk, *wv;        /* (Hkv*hd, D) */
    float *wo;             /* (D, H*hd) */
    float *ffn_norm;       /* (D) */
    float *w_gate, *w_up;  /* (F, D) */
    float *w_down;         /* (D, F) */
} gr_tlayer;

typedef struct gr_tweights {
    float *emb;            /* (V, D) */
    gr_tlayer *layers;     /* (n_layers) */
    float *final_norm;     /* (D) */
    float *lm_head;        /* (V, D); == emb when tied */
} gr_tweights;

typedef struct gr_train_model {
    gr_model_config cfg;
    float *rope_inv;       /* (hd/2) */
    int64_t n_params;
    float *params;         /* (n_params) fp32 master weights */
    float *grads;          /* (n_params): bf16 storage when grads16 (ops->alloc16) */
    void *w16;             /* (n_params) bf16 copy of params (ops->weights16), or NULL */
    int store16;           /* ops->storage16: bf16 copy, bf16 gradients, bf16 matmul inputs */
    gr_tweights w, g;      /* pointers into params and grads (g: bf16 elements when store16) */
    gr_tparam *tab;
    int n_tab;
    gr_backend *be;
    const gr_train_ops *ops;
    /* When set, the backward pass calls grad_ready(grad_ready_ud, lo) each time
     * the gradients from float lo to the end of the block are complete for the
     * micro-batch (the block is laid out in the forward order, so the backward
     * pass completes it from the top down): data parallelism starts summing
     * those buckets while the rest of the backward pass runs (dp.h). */
    void (*grad_ready)(void *ud, int64_t lo);
    void *grad_ready_ud;
} gr_train_model;

/* A copy of a loaded model's weights in fp32 (any stored type is converted). */
gr_train_model *gr_train_model_new(const gr_model *m, gr_backend *be, gr_err *err);
/* The model's blocks for config c through ops (the weights left zero): what
 * gr_train_model_new allocates before it copies the weights in (exposed for
 * tests/unit/test_train_mem.c, which drives it with a counting fake). */
gr_train_model *gr_train_model_alloc(const gr_model_config *c, gr_backend *be,
                                     const gr_train_ops *ops, gr_err *err);
/* Host access to the master weights: elements [off, off + n) to or from host
 * memory (a device backend copies). After puts, gr_train_params_refresh
 * updates the bf16 copy. */
void gr_train_params_get(const gr_train_model *m, float *dst, int64_t off, int64_t n);
void gr_train_params_put(gr_train_model *m, const float *src, int64_t off, int64_t n);
void gr_train_params_refresh(gr_train_model *m);
/* 0 when m can train under data parallelism of `world` processes; -1 with err
 * when its gradients are bf16 (store16), which the transports (dp.h, fp32
 * blocks) cannot sum. Checked once, when a trainer is set up. */
int gr_train_dp_check(const gr_train_model *m, int world, gr_err *err);
/* All n_params gradients into host memory as fp32 (bf16 ones widened). */
void gr_train_grads_get(const gr_train_model *m, float *dst);
void gr_train_model_free(gr_train_model *m);
void gr_train_zero_grad(gr_train_model *m);

/* A micro-batch: n_seq sequences. */
typedef struct gr_tbatch {
    int n_seq;
    const int *const *ids;  /* (n_seq)(len[s]) */
    const int *len;
    const int *n_prompt;    /* leading ids without loss */
} gr_tbatch;

/* Tokens of the batch that carry a loss (the count of labels != -100). */
int64_t gr_tbatch_targets(const gr_tbatch *b);

/* Activations of one micro-batch, grown on demand. With recompute, only each
 * layer's input is kept and the backward pass recomputes the layer's forward
 * first (about a third more arithmetic, a fraction of the memory; the results
 * are the same bit for bit). */
typedef struct gr_tact gr_tact;
gr_tact *gr_tact_new(int recompute);
/* Makes room for a micro-batch of n tokens in n_seq sequences (the blocks of
 * gr_tact_carve through m's ops); the step does this itself. gr_sft_init
 * reserves the run's largest micro-batch up front: growing the block later
 * frees the old one and makes every page of the new one fault in again
 * (SmolLM2-135M: ~1.4 MB a token, 235k page faults in the step of a 688-token
 * micro-batch after a 600-token one). */
void gr_tact_reserve(gr_tact *a, const gr_train_model *m, int n, int n_seq);
void gr_tact_free(gr_tact *a);
/* Bytes of activations kept per token (for the docs and the run's report). */
int64_t gr_tact_bytes_per_token(const gr_model_config *c, int recompute);

/* Forward over the batch; with backward, also the backward pass, adding
 * scale · ∂(Σ NLL)/∂θ into m->grads. *nll = Σ NLL over the target tokens,
 * *n_targets = their count. */
int gr_train_step_micro(gr_train_model *m, gr_tact *a, const gr_tbatch *b, int backward,
                        float scale, double *nll, int64_t *n_targets, gr_err *err);

/* The backward pass of the forward-only pass (backward = 0) that a holds, of the
 * same batch b, without recomputing it: adds scale · ∂(Σ NLL)/∂θ into m->grads,
 * as gr_train_step_micro with backward would have. Lets a caller choose the
 * scale after seeing the loss (DPO). The activations are used up: -1 when a
 * holds no such forward pass (none, another batch, or already used). */
int gr_train_backward_micro(gr_train_model *m, gr_tact *a, const gr_tbatch *b, float scale,
                            gr_err *err);
#endif
