/* The memory of training: one description of every block the training model
 * asks its ops for, used both by the code that allocates (train_model.c,
 * train_optim.c, and the CUDA scratch in kernels/cuda/train_*.cu) and by the
 * plan that `gr-sft --plan` prints, so the two cannot drift: the plan sums
 * what the carving functions below lay out, and tests/unit/test_train_mem.c
 * drives the real allocation code with a counting fake and checks that it
 * asks for exactly the plan's bytes.
 *
 * Storage (store16 = the backend's storage16, the CUDA table's default):
 *   master weights   fp32                    (n_params)
 *   bf16 weights     bf16 copy of the master  (n_params; store16 only), the
 *                    matmuls' operand, refreshed by the optimizer step
 *   gradients        bf16 with store16, else fp32 (n_params); every reduction
 *                    that produces them accumulates in fp32 (cuBLAS compute
 *                    32F, fp32 partial sums), the stored sum is rounded once
 *                    per micro-batch
 *   AdamW moments    fp32 (2 n_params)
 *   saved activations per layer: the residual stream (h, a), q, k, v, gate,
 *                    up, the norms' rstd and attention's lse in fp32; the
 *                    matmul inputs xn1, att, xn2, act in bf16 with store16
 *                    (the tensor cores read them as bf16 anyway, so storing
 *                    them rounded loses nothing the matmul kept)
 * Why bf16 gradients: for LLaMA-3.1-8B, fp32 master + bf16 copy + fp32
 * gradients + fp32 moments is 18 bytes a parameter, 144.5 GB before any
 * activation, more than an H200's 141 GB; bf16 gradients make it 16 (128.5 GB). */
#ifndef GR_TRAIN_MEM_PLAN_H
#define GR_TRAIN_MEM_PLAN_H
#include <stdint.h>
#include <stdio.h>
#include "model.h"

/* One parameter tensor: its Hugging Face name and where it sits in the block. */
typedef struct gr_tparam {
    char name[96];
    int64_t rows, cols;    /* cols == 0 for vectors (shape [rows]) */
    int64_t off;           /* element offset in the block */
} gr_tparam;

/* The parameter table in block order (the forward order: embeddings, 9 per
 * layer, final norm, lm_head unless tied): fills tab when not NULL (room for
 * gr_tparam_count), returns the count; *n_params = the elements in all. */
int gr_tparam_count(const gr_model_config *c);
int gr_tparam_table(const gr_model_config *c, gr_tparam *tab, int64_t *n_params);

/* Activations: per-layer slots and the top-level ones. */
enum { GR_TA_H, GR_TA_RSTD1, GR_TA_XN1, GR_TA_Q, GR_TA_K, GR_TA_V, GR_TA_ATT, GR_TA_LSE, GR_TA_A,
       GR_TA_RSTD2, GR_TA_XN2, GR_TA_GATE, GR_TA_UP, GR_TA_ACT, GR_TA_N };
enum { GR_TT_HL, GR_TT_RSTDF, GR_TT_XNF, /* saved; the backward's scratch: */ GR_TT_DH, GR_TT_DXN,
       GR_TT_DQ, GR_TT_DK, GR_TT_DV, GR_TT_DATT, GR_TT_DGATE, GR_TT_DUP, GR_TT_DACT, GR_TT_XT,
       GR_TT_DXT, GR_TT_N };

typedef struct gr_tslot {
    int half;              /* 1: in the bf16 block */
    int64_t off;           /* element offset in its block */
} gr_tslot;

typedef struct gr_tact_sizes {
    int64_t n32, n16;      /* elements of the fp32 and the bf16 block */
    int64_t saved_bytes;   /* the kept activations (layers, final norm) */
    int64_t scratch_bytes; /* the backward pass's gradients of activations */
} gr_tact_sizes;

/* Lays out the activations of n tokens: L (n_layers * GR_TA_N slots, layer
 * l's at L + l*GR_TA_N) and top (GR_TT_N) when not NULL. With recompute every
 * layer but the first keeps only its input h and shares layer 0's other slots.
 * Each slot starts on a multiple of 8 elements. */
void gr_tact_carve(const gr_model_config *c, int64_t n, int recompute, int acts16, gr_tslot *L,
                   gr_tslot *top, gr_tact_sizes *sz);

/* ---- the CUDA ops' scratch (kernels/cuda/train_*.cu ask for these sizes) ---- */
/* Rows of logits per chunk of the fused LM head: at most 256 MiB of fp32 logits. */
static inline int64_t gr_txent_chunk_rows(int64_t vocab, int64_t n) {
    int64_t ch = ((int64_t)256 << 20) / (vocab * (int64_t)sizeof(float));
    return ch < 1 ? 1 : ch > n ? n : ch;
}
enum { GR_TSUM_BLOCKS = 1024, GR_TRMS_CHUNK = 256 };
/* Bytes of the partial-sum scratch: the squared norm's block partials (+ the
 * total and the clip coefficient) or RMSNorm's weight-gradient partials. */
static inline int64_t gr_tpart_bytes(int64_t n, int64_t dim) {
    int64_t sum = (int64_t)sizeof(double) * (GR_TSUM_BLOCKS + 2);
    int64_t rms = (int64_t)sizeof(float) * ((n + GR_TRMS_CHUNK - 1) / GR_TRMS_CHUNK) * dim;
    return sum > rms ? sum : rms;
}

/* The whole plan, in bytes. */
typedef struct gr_tmem_plan {
    int64_t n_params, tokens, n_seq;
    int recompute, store16;
    int64_t master, weights16, grads, moments;
    int64_t saved, act_scratch, index;   /* from alloc per micro-batch */
    int64_t logits, workspace;           /* the ops' own scratch (CUDA) */
    int64_t reserve;                     /* CUDA context, cuBLAS workspace: an allowance */
    int64_t total;
} gr_tmem_plan;

/* store16: the backend's storage16 (CPU 0, CUDA 1); tokens of the largest
 * micro-batch in n_seq sequences. reserve: 0 for the CPU, 1 GiB for CUDA. */
void gr_tmem_plan_make(const gr_model_config *c, int store16, int64_t tokens, int64_t n_seq,
                       int recompute, int64_t reserve, gr_tmem_plan *p);
/* The plan as a table on f (one line a category, GB = 1e9 bytes). */
void gr_tmem_plan_print(FILE *f, const char *device, const gr_tmem_plan *p);
#endif
