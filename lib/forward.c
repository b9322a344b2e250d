/* The LLaMA forward pass (transformers' LlamaForCausalLM in fp32):
 *   h = embed(tokens)
 *   per layer: a = h + Wo·attn(rope(Wq·n1), rope(Wk·n1), Wv·n1),  n1 = rmsnorm(h)
 *              h = a + Wdown·(silu(Wgate·n2) ⊙ Wup·n2),           n2 = rmsnorm(a)
 *   logits = lm_head · rmsnorm(h)
 * over a flat list of tokens from many sequences, in chunks of at most c->chunk. */
#include "forward.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

gr_kv *gr_kv_new(const gr_model *m, const gr_kv *prefix) {
    gr_kv *kv = gr_xcalloc(1, sizeof *kv);
    kv->prefix = prefix;
    kv->n_prefix = prefix ? gr_kv_pos(prefix) : 0;
    kv->n_layers = m->cfg.n_layers;
    kv->kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
    kv->k = gr_xcalloc((size_t)kv->n_layers, sizeof *kv->k);
    kv->v = gr_xcalloc((size_t)kv->n_layers, sizeof *kv->v);
    return kv;
}

/* The per-layer arrays are anonymous mappings, not malloc blocks: a cache
 * reserved for its whole length costs only the pages it writes, and freeing it
 * gives them back. With malloc, glibc's rising mmap threshold moved the caches of
 * later batches onto the heap, where every doubling left a resident hole (batch
 * moderation peaked at 1.23x weights + caches). */
static size_t kv_bytes(const gr_kv *kv, int cap) { return sizeof(float) * (size_t)cap * (size_t)kv->kv_dim; }

static float *kv_map(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "out of memory (a KV cache of %zu bytes)\n", bytes);
        abort();
    }
    return p;
}

void gr_kv_free(gr_kv *kv) {
    if (!kv) return;
    for (int l = 0; l < kv->n_layers && kv->cap > 0; l++) {
        munmap(kv->k[l], kv_bytes(kv, kv->cap));
        munmap(kv->v[l], kv_bytes(kv, kv->cap));
    }
    free(kv->k);
    free(kv->v);
    free(kv);
}

void gr_kv_truncate(gr_kv *kv, int pos) {
    if (pos < kv->n_prefix) pos = kv->n_prefix;
    if (pos - kv->n_prefix < kv->len) kv->len = pos - kv->n_prefix;
}

static void kv_grow(gr_kv *kv, int cap) {
    for (int l = 0; l < kv->n_layers; l++) {
        float *k = kv_map(kv_bytes(kv, cap)), *v = kv_map(kv_bytes(kv, cap));
        if (kv->cap > 0) {
            memcpy(k, kv->k[l], kv_bytes(kv, kv->len));
            memcpy(v, kv->v[l], kv_bytes(kv, kv->len));
            munmap(kv->k[l], kv_bytes(kv, kv->cap));
            munmap(kv->v[l], kv_bytes(kv, kv->cap));
        }
        kv->k[l] = k;
        kv->v[l] = v;
    }
    kv->cap = cap;
}

/* Growth as needed by gr_forward: doubling. */
static void kv_reserve(gr_kv *kv, int len) {
    if (len <= kv->cap) return;
    int cap = kv->cap ? kv->cap : 64;
    while (cap < len) cap *= 2;
    kv_grow(kv, cap);
}

void gr_kv_reserve(gr_kv *kv, int len) {
    if (len > kv->cap) kv_grow(kv, len);
}

gr_ctx *gr_ctx_new(const gr_model *m, gr_backend *be) {
    gr_ctx *c = gr_xcalloc(1, sizeof *c);
    c->model = m;
    c->be = be;
    c->chunk = 256;
    return c;
}

void gr_ctx_free(gr_ctx *c) {
    if (!c) return;
    free(c->x); free(c->xb); free(c->q); free(c->k); free(c->v);
    free(c->att); free(c->hb); free(c->hb2); free(c->last);
    free(c->pos); free(c->tok); free(c->tkv); free(c->dec);
    free(c);
}

static void ctx_reserve(gr_ctx *c, int n) {
    if (n <= c->cap) return;
    const gr_model_config *m = &c->model->cfg;
    size_t D = (size_t)m->dim, Q = (size_t)m->n_heads * m->head_dim,
           K = (size_t)m->n_kv_heads * m->head_dim, H = (size_t)m->hidden_dim, N = (size_t)n;
#define GROW(p, w) (free(p), (p) = gr_xmalloc(sizeof(float) * N * (w)))
    GROW(c->x, D); GROW(c->xb, D > Q ? D : Q); GROW(c->q, Q); GROW(c->k, K); GROW(c->v, K);
    GROW(c->att, Q); GROW(c->hb, H); GROW(c->hb2, H);
#undef GROW
    free(c->pos); free(c->tok); free(c->tkv); free(c->dec);
    c->dec = gr_xmalloc(N);
    c->pos = gr_xmalloc(sizeof(int) * N);
    c->tok = gr_xmalloc(sizeof(int) * N);
    c->tkv = gr_xmalloc(sizeof(gr_kv *) * N);
    c->cap = n;
}

/* One chunk of n tokens (already in c->tok/pos/tkv, contiguous per sequence and
 * in order); their K/V go into the caches, whose capacity is already reserved. */
/* Copies the chunk's residual rows into keep_hidden entry l (rows from `row0`). */
static void keep(gr_ctx *c, int l, int64_t row0, const float *x, int n) {
    if (!c->keep_hidden) return;
    size_t D = (size_t)c->model->cfg.dim;
    memcpy(c->keep_hidden + ((size_t)l * (size_t)c->keep_rows_ + (size_t)row0) * D, x,
           sizeof(float) * D * (size_t)n);
}

static void forward_chunk(gr_ctx *c, int n, int64_t row0) {
    const gr_model *M = c->model;
    const gr_model_config *cf = &M->cfg;
    gr_backend *be = c->be;
    int D = cf->dim, hd = cf->head_dim, KD = cf->n_kv_heads * hd;
    be->embedding(be, c->x, &M->tok_emb, c->tok, n);
    gr_attn_batch ab = {n, c->tkv, c->pos};
    for (int l = 0; l < cf->n_layers; l++) {
        const gr_layer *L = &M->layers[l];
        keep(c, l, row0, c->x, n);
        be->rmsnorm(be, c->xb, c->x, L->attn_norm, n, D, cf->norm_eps);
        be->matmul(be, c->q, c->xb, n, &L->wq);
        be->matmul(be, c->k, c->xb, n, &L->wk);
        be->matmul(be, c->v, c->xb, n, &L->wv);
        be->rope(be, c->q, c->pos, n, cf->n_heads, hd, M->rope_inv);
        be->rope(be, c->k, c->pos, n, cf->n_kv_heads, hd, M->rope_inv);
        for (int t = 0; t < n; t++) {
            gr_kv *kv = c->tkv[t];
            size_t off = (size_t)(c->pos[t] - kv->n_prefix) * (size_t)KD;
            memcpy(kv->k[l] + off, c->k + (size_t)t * KD, sizeof(float) * (size_t)KD);
            memcpy(kv->v[l] + off, c->v + (size_t)t * KD, sizeof(float) * (size_t)KD);
        }
        be->attention(be, c->att, c->q, &ab, l, cf->n_heads, cf->n_kv_heads, hd);
        be->matmul(be, c->xb, c->att, n, &L->wo);
        be->add(be, c->x, c->xb, (int64_t)n * D);
        be->rmsnorm(be, c->xb, c->x, L->ffn_norm, n, D, cf->norm_eps);
        be->matmul(be, c->hb, c->xb, n, &L->w_gate);
        be->matmul(be, c->hb2, c->xb, n, &L->w_up);
        be->swiglu(be, c->hb, c->hb, c->hb2, (int64_t)n * cf->hidden_dim);
        be->matmul(be, c->xb, c->hb, n, &L->w_down);
        be->add(be, c->x, c->xb, (int64_t)n * D);
    }
    if (c->keep_hidden) {
        be->rmsnorm(be, c->xb, c->x, M->final_norm, n, D, cf->norm_eps);
        keep(c, cf->n_layers, row0, c->xb, n);
    }
}

int gr_forward(gr_ctx *c, gr_kv *const *kv, const int *const *tokens, const int *n_tokens,
               int n_seq, float *logits, int all_logits, gr_err *err) {
    const gr_model_config *cf = &c->model->cfg;
    int64_t total = 0;
    for (int s = 0; s < n_seq; s++) {
        if (n_tokens[s] < 1) return gr_errf(err, "forward: sequence %d has no tokens", s);
        for (int i = 0; i < n_tokens[s]; i++)
            if (tokens[s][i] < 0 || tokens[s][i] >= cf->vocab_size)
                return gr_errf(err, "forward: token id %d outside the vocabulary (%d)",
                               tokens[s][i], cf->vocab_size);
        for (int j = 0; j < s; j++)
            if (kv[j] == kv[s]) return gr_errf(err, "forward: one cache given twice");
        if ((int64_t)gr_kv_pos(kv[s]) + n_tokens[s] > (1 << 30))
            return gr_errf(err, "forward: sequence too long");
        total += n_tokens[s];
    }
    c->keep_rows_ = total;
    if (c->chunk < 1) c->chunk = 1;
    if (c->chunk > 1024) c->chunk = 1024; /* out_rows below */
    ctx_reserve(c, c->chunk);
    for (int s = 0; s < n_seq; s++) kv_reserve(kv[s], kv[s]->len + n_tokens[s]);
    int D = cf->dim;
    /* Start positions, fixed before the caches advance chunk by chunk. */
    int *start = gr_xmalloc(sizeof(int) * (size_t)(n_seq ? n_seq : 1));
    for (int q = 0; q < n_seq; q++) start[q] = gr_kv_pos(kv[q]);
    int s = 0, i = 0;         /* next (sequence, token index) to feed */
    int64_t done = 0;         /* tokens fed so far (row index for all_logits) */
    while (done < total) {
        int n = 0, n_out = 0;
        int out_rows[1024];   /* chunk <= 1024 */
        int64_t out_idx[1024];
        unsigned char out_dec[1024];
        while (n < c->chunk && s < n_seq) {
            c->tok[n] = tokens[s][i];
            c->pos[n] = start[s] + i;
            c->tkv[n] = kv[s];
            /* a row's kind (backend.h): the same for a sequence's token whatever
             * else is in the call, so its results do not depend on the batch */
            c->dec[n] = n_tokens[s] == 1;
            int last = i == n_tokens[s] - 1;
            if (all_logits || last) {
                /* a sequence's next-token logits are one row of the lm_head
                 * matmul: the decode kernel, whatever the row's kind (the GEMM
                 * would pack the whole vocabulary for one token); every
                 * position's logits (all_logits): each row by its kind */
                out_dec[n_out] = all_logits ? c->dec[n] : 1;
                out_rows[n_out] = n;
                out_idx[n_out++] = all_logits ? done + n : s;
            }
            n++;
            if (++i == n_tokens[s]) {
                s++;
                i = 0;
            }
        }
        c->be->decode_rows = c->dec;
        forward_chunk(c, n, done);
        /* Caches now hold the chunk's positions: advance their lengths. */
        for (int t = 0; t < n; t++) {
            gr_kv *k = c->tkv[t];
            if (c->pos[t] - k->n_prefix + 1 > k->len) k->len = c->pos[t] - k->n_prefix + 1;
        }
        if (logits && n_out) {
            if (n_out > c->last_cap) {
                free(c->last);
                c->last = gr_xmalloc(sizeof(float) * (size_t)n_out * (size_t)D * 2);
                c->last_cap = n_out;
            }
            float *h = c->last, *o = c->last + (size_t)n_out * D;
            for (int r = 0; r < n_out; r++)
                memcpy(h + (size_t)r * D, c->x + (size_t)out_rows[r] * D, sizeof(float) * (size_t)D);
            c->be->rmsnorm(c->be, o, h, c->model->final_norm, n_out, D, cf->norm_eps);
            /* Rows are consecutive in the output except across sequences without
             * all_logits; compute into place row group by row group. */
            int r = 0;
            while (r < n_out) {
                int e = r + 1;
                while (e < n_out && out_idx[e] == out_idx[e - 1] + 1) e++;
                c->be->decode_rows = out_dec + r;
                c->be->matmul(c->be, logits + (size_t)out_idx[r] * (size_t)cf->vocab_size,
                              o + (size_t)r * D, e - r, &c->model->lm_head);
                r = e;
            }
        }
        c->be->decode_rows = NULL;
        done += n;
    }
    free(start);
    return 0;
}
