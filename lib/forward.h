/* The LLaMA forward pass over a batch of sequences, with a KV cache per sequence.
 *
 * A gr_kv holds one sequence's keys and values for every layer. It may start from
 * a shared prefix cache (the guard instruction, identical in every query): the
 * prefix's positions are read from the prefix cache, never copied, so the prefix
 * is computed once and reused by every sequence; the prefix must not grow while
 * others use it.
 *
 * gr_forward feeds new tokens of several sequences at once (prefill: many tokens
 * of a sequence; decode: one per sequence; mixed is fine). The weight matrices are
 * read once per call for all tokens, which is what makes batching pay off. */
#ifndef GR_FORWARD_H
#define GR_FORWARD_H
#include "backend.h"
#include "model.h"

typedef struct gr_kv {
    const struct gr_kv *prefix; /* positions [0, n_prefix) live there */
    int n_prefix;
    int len, cap;               /* own positions: n_prefix .. n_prefix+len-1 */
    int n_layers, kv_dim;
    float **k, **v;             /* per layer: (cap, kv_dim) */
} gr_kv;

/* prefix may be NULL. The new cache continues after all of the prefix's positions. */
gr_kv *gr_kv_new(const gr_model *m, const gr_kv *prefix);
void gr_kv_free(gr_kv *kv);
/* Room for `len` own positions at once (a cache that will grow to a known length:
 * no copies on the way; untouched room costs no memory). */
void gr_kv_reserve(gr_kv *kv, int len);
static inline int gr_kv_pos(const gr_kv *kv) { return kv->n_prefix + kv->len; }
/* Drops own positions from `pos` on (pos >= n_prefix). */
void gr_kv_truncate(gr_kv *kv, int pos);
/* Key / value row of position p (< gr_kv_pos) in a layer. */
static inline const float *gr_kv_k(const gr_kv *kv, int layer, int p) {
    while (p < kv->n_prefix) kv = kv->prefix;
    return kv->k[layer] + (size_t)(p - kv->n_prefix) * (size_t)kv->kv_dim;
}
static inline const float *gr_kv_v(const gr_kv *kv, int layer, int p) {
    while (p < kv->n_prefix) kv = kv->prefix;
    return kv->v[layer] + (size_t)(p - kv->n_prefix) * (size_t)kv->kv_dim;
}

/* Run state: scratch activations, grown on demand; one per thread of control. */
typedef struct gr_ctx {
    const gr_model *model;
    gr_backend *be;
    int cap;                 /* tokens the buffers hold */
    int chunk;               /* most tokens per internal step (1..1024, default 256) */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2; /* (cap, width) each */
    float *last;             /* (n_seq, dim) final hidden rows for logits */
    int last_cap;
    int *pos, *tok;
    gr_kv **tkv;
    unsigned char *dec;      /* (cap) row kinds for backend.decode_rows */
    /* Optional, for training and inspection: when non-NULL, gr_forward stores the
     * residual stream here: (n_layers + 1, Σ n_tokens, dim), entry l < n_layers
     * the input of layer l, entry n_layers the final-normed output (the layout
     * of transformers' output_hidden_states). The caller allocates it. */
    float *keep_hidden;
    int64_t keep_rows_;      /* private: Σ n_tokens of the current call */
} gr_ctx;

gr_ctx *gr_ctx_new(const gr_model *m, gr_backend *be);
void gr_ctx_free(gr_ctx *c);

/* Feeds tokens[s][0..n_tokens[s]) to sequence s (cache kv[s]) for s < n_seq.
 * logits (n_seq, vocab): the next-token logits after each sequence's last new
 * token; or, with all_logits, (Σ n_tokens, vocab) for every new token in order.
 * logits may be NULL. Every sequence needs n_tokens >= 1. */
int gr_forward(gr_ctx *c, gr_kv *const *kv, const int *const *tokens, const int *n_tokens,
               int n_seq, float *logits, int all_logits, gr_err *err);
#endif
