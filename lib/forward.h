/* The LLaMA forward pass over a batch of sequences, with a KV cache per sequence.
 *
 * A gr_kv holds one sequence's keys and values for every layer, in blocks of a
 * paged pool (kv_cache.h). It may start from a shared prefix cache (the guard
 * instruction, identical in every query): the prefix's full blocks are shared by
 * reference, never copied, so the prefix is computed once and reused by every
 * sequence; a shared block is never written again.
 *
 * Every buffer of a gr_ctx is in its backend's memory (backend.h); gr_forward
 * takes and returns host arrays (token ids, logits) and moves them.
 *
 * gr_forward feeds new tokens of several sequences at once (prefill: many tokens
 * of a sequence; decode: one per sequence; mixed is fine). The weight matrices are
 * read once per call for all tokens, which is what makes batching pay off. */
#ifndef GR_FORWARD_H
#define GR_FORWARD_H
#include "backend.h"
#include "kv_cache.h"
#include "model.h"

/* The KV cache of one sequence is a gr_kv of the paged cache (kv_cache.h). */

/* A sequence in a host pool of its own (the CPU backend's memory), or, with a
 * prefix, in the prefix's pool, continuing after all of its positions. The
 * engine (generate.c) uses one pool for all its sequences: gr_kv_new_in. */
gr_kv *gr_kv_new(const gr_model *m, const gr_kv *prefix);
void gr_kv_free(gr_kv *kv);
/* Blocks for `len` own positions at once (a cache that will grow to a known
 * length; untouched room in a host pool costs no memory). Aborts when the pool
 * is full: the engine, whose pool may have a limit, uses gr_kv_try_reserve. */
void gr_kv_reserve(gr_kv *kv, int len);
static inline int gr_kv_pos(const gr_kv *kv) { return kv->len; }
/* Drops own positions from `pos` on (pos >= n_prefix). */
void gr_kv_truncate(gr_kv *kv, int pos);

/* Run state: scratch activations, grown on demand; one per thread of control. */
typedef struct gr_ctx {
    const gr_model *model;
    gr_backend *be;
    int cap;                 /* tokens the buffers hold */
    int chunk;               /* most tokens per internal step (1..1024, default 256) */
    /* backend memory: activations (cap, width) each, all F32 */
    gr_dbuf x, xb, q, k, v, att, hb, hb2;
    gr_dbuf last;            /* (2 * last_cap, dim) final hidden rows for logits */
    int last_cap;
    gr_dbuf tok_d, pos_d, seq_d, slot_d;  /* (cap) ints per chunk token */
    gr_dbuf bt_d;            /* block tables of the call, (n_seq, max_blocks) */
    gr_dbuf logits_d;        /* device backends: the logits of the call */
    /* host mirrors */
    int *pos, *tok, *seq, *slot;
    gr_kv **tkv;
    int *bt;
    size_t bt_cap;
    unsigned char *dec;      /* (cap) row kinds for backend.decode_rows */
    /* Optional, for training and inspection: when non-NULL, gr_forward stores the
     * residual stream here: (n_layers + 1, Σ n_tokens, dim), entry l < n_layers
     * the input of layer l, entry n_layers the final-normed output (the layout
     * of transformers' output_hidden_states). The caller allocates it. */
    float *keep_hidden;
    int64_t keep_rows_;      /* private: Σ n_tokens of the current call */
} gr_ctx;

/* gr_ctx_open prepares the model's weights for the backend (a device backend
 * uploads them): NULL with err when that fails. gr_ctx_new aborts instead. */
gr_ctx *gr_ctx_open(const gr_model *m, gr_backend *be, gr_err *err);
gr_ctx *gr_ctx_new(const gr_model *m, gr_backend *be);
void gr_ctx_free(gr_ctx *c);

/* Feeds tokens[s][0..n_tokens[s]) to sequence s (cache kv[s]) for s < n_seq.
 * logits (n_seq, vocab): the next-token logits after each sequence's last new
 * token; or, with all_logits, (Σ n_tokens, vocab) for every new token in order.
 * logits may be NULL. Every sequence needs n_tokens >= 1. */
int gr_forward(gr_ctx *c, gr_kv *const *kv, const int *const *tokens, const int *n_tokens,
               int n_seq, float *logits, int all_logits, gr_err *err);
/* gr_forward leaving the logits in the backend's memory: *logits_d (n_seq or
 * Σ n_tokens rows), valid until the next call. For the engine's on-device sampling. */
int gr_forward_dev(gr_ctx *c, gr_kv *const *kv, const int *const *tokens, const int *n_tokens,
                   int n_seq, const float **logits_d, int all_logits, gr_err *err);
#endif
