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

gr_ctx *gr_ctx_open(const gr_model *m, gr_backend *be, gr_err *err) {
    if (be->prepare && be->prepare(be, m, err)) return NULL;
    gr_ctx *c = gr_xcalloc(1, sizeof *c);
    c->model = m;
    c->be = be;
    /* a device wants big launches: a chunk of up to 1024 tokens per weight pass */
    c->chunk = be->host_memory ? 256 : 1024;
    return c;
}

gr_ctx *gr_ctx_new(const gr_model *m, gr_backend *be) {
    gr_err err;
    gr_ctx *c = gr_ctx_open(m, be, &err);
    if (!c) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    return c;
}

void gr_ctx_free(gr_ctx *c) {
    if (!c) return;
    gr_backend *be = c->be;
    gr_dbuf *d[] = {&c->x, &c->xb, &c->q, &c->k, &c->v, &c->att, &c->hb, &c->hb2, &c->last,
                    &c->tok_d, &c->pos_d, &c->seq_d, &c->slot_d, &c->bt_d, &c->logits_d};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) gr_dbuf_free(be, d[i]);
    free(c->pos); free(c->tok); free(c->seq); free(c->slot); free(c->tkv); free(c->bt); free(c->dec);
    free(c);
}

static void dbuf_need(gr_backend *be, gr_dbuf *d, int dtype, size_t n) {
    if (d->p && d->n >= n) return;
    gr_dbuf_free(be, d);
    *d = gr_dbuf_alloc(be, dtype, n ? n : 1);
}

static void ctx_reserve(gr_ctx *c, int n) {
    if (n <= c->cap) return;
    const gr_model_config *m = &c->model->cfg;
    gr_backend *be = c->be;
    size_t D = (size_t)m->dim, Q = (size_t)m->n_heads * m->head_dim,
           K = (size_t)m->n_kv_heads * m->head_dim, H = (size_t)m->hidden_dim, N = (size_t)n;
#define GROW(d, w) (gr_dbuf_free(be, &(d)), (d) = gr_dbuf_alloc(be, GR_F32, N * (w)))
    GROW(c->x, D); GROW(c->xb, D > Q ? D : Q); GROW(c->q, Q); GROW(c->k, K); GROW(c->v, K);
    GROW(c->att, Q); GROW(c->hb, H); GROW(c->hb2, H);
#undef GROW
    gr_dbuf *ints[] = {&c->tok_d, &c->pos_d, &c->seq_d, &c->slot_d};
    for (int i = 0; i < 4; i++) {
        gr_dbuf_free(be, ints[i]);
        *ints[i] = gr_dbuf_alloc(be, GR_I32, N);
    }
    free(c->pos); free(c->tok); free(c->seq); free(c->slot); free(c->tkv); free(c->dec);
    c->dec = gr_xmalloc(N);
    c->pos = gr_xmalloc(sizeof(int) * N);
    c->tok = gr_xmalloc(sizeof(int) * N);
    c->seq = gr_xmalloc(sizeof(int) * N);
    c->slot = gr_xmalloc(sizeof(int) * N);
    c->tkv = gr_xmalloc(sizeof(gr_kv *) * N);
    c->cap = n;
}

/* One chunk of n tokens (already in c->tok/pos/tkv, contiguous per sequence and
 * in order); their K/V go into the caches, whose capacity is already reserved. */
/* Copies the chunk's residual rows into keep_hidden entry l (rows from `row0`). */
static void keep(gr_ctx *c, int l, int64_t row0, const float *x, int n) {
    if (!c->keep_hidden) return;
    size_t D = (size_t)c->model->cfg.dim;
    c->be->download(c->be, c->keep_hidden + ((size_t)l * (size_t)c->keep_rows_ + (size_t)row0) * D, x,
                    sizeof(float) * D * (size_t)n);
}

/* The chunk's K/V rows into the pool(s): one kv_store per run of tokens whose
 * caches share a pool (the engine has one pool; separate gr_kv_new caches each
 * have their own). */
static void store_kv(gr_ctx *c, int n, int l, const float *k, const float *v) {
    gr_backend *be = c->be;
    size_t KD = (size_t)c->model->cfg.n_kv_heads * (size_t)c->model->cfg.head_dim;
    for (int t = 0; t < n;) {
        int e = t + 1;
        while (e < n && c->tkv[e]->pool == c->tkv[t]->pool) e++;
        be->kv_store(be, &c->tkv[t]->pool->lay, l, k + (size_t)t * KD, v + (size_t)t * KD,
                     (const int *)c->slot_d.p + t, e - t);
        t = e;
    }
}

/* The chunk's token ids, positions, sequences and slots into the backend's memory. */
static void upload_chunk(gr_ctx *c, int n) {
    gr_backend *be = c->be;
    be->upload(be, c->tok_d.p, c->tok, sizeof(int) * (size_t)n);
    be->upload(be, c->pos_d.p, c->pos, sizeof(int) * (size_t)n);
    be->upload(be, c->seq_d.p, c->seq, sizeof(int) * (size_t)n);
    be->upload(be, c->slot_d.p, c->slot, sizeof(int) * (size_t)n);
}

/* The chunk's ops, its inputs uploaded (upload_chunk): nothing here allocates or
 * waits, so that a device can capture them as a graph. */
/* m projections of one input: the backend's matmul_x where it has one */
static void matmuls(gr_backend *be, float *const *ys, const gr_tensor *const *ws, int m, const float *x, int n) {
    if (be->matmul_x) {
        be->matmul_x(be, ys, ws, m, x, n);
        return;
    }
    for (int i = 0; i < m; i++) be->matmul(be, ys[i], x, n, ws[i]);
}

static void forward_chunk(gr_ctx *c, int n, int64_t row0, const gr_attn_batch *call) {
    const gr_model *M = c->model;
    const gr_model_config *cf = &M->cfg;
    gr_backend *be = c->be;
    int D = cf->dim, hd = cf->head_dim;
    float *x = c->x.p, *xb = c->xb.p, *q = c->q.p, *k = c->k.p, *v = c->v.p, *att = c->att.p,
          *hb = c->hb.p, *hb2 = c->hb2.p;
    const int *tok_d = c->tok_d.p, *pos_d = c->pos_d.p;
    be->embedding(be, x, &M->tok_emb, tok_d, n);
    gr_attn_batch ab = *call;
    ab.n = n;
    ab.kv = c->tkv;
    ab.pos = c->pos;
    ab.pos_d = pos_d;
    ab.seq_d = c->seq_d.p;
    ab.max_pos = 0;
    for (int t = 0; t < n; t++)
        if (c->pos[t] > ab.max_pos) ab.max_pos = c->pos[t];
    for (int l = 0; l < cf->n_layers; l++) {
        const gr_layer *L = &M->layers[l];
        keep(c, l, row0, x, n);
        be->rmsnorm(be, xb, x, L->attn_norm, n, D, cf->norm_eps);
        {
            float *ys[3] = {q, k, v};
            const gr_tensor *ws[3] = {&L->wq, &L->wk, &L->wv};
            matmuls(be, ys, ws, 3, xb, n);
        }
        be->rope(be, q, pos_d, n, cf->n_heads, hd, M->rope_inv);
        be->rope(be, k, pos_d, n, cf->n_kv_heads, hd, M->rope_inv);
        store_kv(c, n, l, k, v);
        be->attention(be, att, q, &ab, l, cf->n_heads, cf->n_kv_heads, hd);
        be->matmul(be, xb, att, n, &L->wo);
        be->add(be, x, xb, (int64_t)n * D);
        be->rmsnorm(be, xb, x, L->ffn_norm, n, D, cf->norm_eps);
        {
            float *ys[2] = {hb, hb2};
            const gr_tensor *ws[2] = {&L->w_gate, &L->w_up};
            matmuls(be, ys, ws, 2, xb, n);
        }
        be->swiglu(be, hb, hb, hb2, (int64_t)n * cf->hidden_dim);
        be->matmul(be, xb, hb, n, &L->w_down);
        be->add(be, x, xb, (int64_t)n * D);
    }
    if (c->keep_hidden) {
        be->rmsnorm(be, xb, x, M->final_norm, n, D, cf->norm_eps);
        keep(c, cf->n_layers, row0, xb, n);
    }
}

/* The output rows' logits: rows out_rows[0..n_out) of the chunk's residual,
 * normed, times the LM head, into rows out_idx of logits (c->last sized). */
static void logits_rows(gr_ctx *c, float *logits, int n_out, const int *out_rows, const int64_t *out_idx,
                        const unsigned char *out_dec) {
    gr_backend *be = c->be;
    const gr_model_config *cf = &c->model->cfg;
    int D = cf->dim;
    float *h = c->last.p, *o = h + (size_t)n_out * D, *x = c->x.p;
    /* the output rows, one copy per run of consecutive rows */
    for (int r = 0; r < n_out;) {
        int e = r + 1;
        while (e < n_out && out_rows[e] == out_rows[e - 1] + 1) e++;
        be->copy(be, h + (size_t)r * D, x + (size_t)out_rows[r] * D, sizeof(float) * (size_t)D * (size_t)(e - r));
        r = e;
    }
    be->rmsnorm(be, o, h, c->model->final_norm, n_out, D, cf->norm_eps);
    /* Rows are consecutive in the output except across sequences without
     * all_logits; compute into place row group by row group. */
    int r = 0;
    while (r < n_out) {
        int e = r + 1;
        while (e < n_out && out_idx[e] == out_idx[e - 1] + 1) e++;
        be->decode_rows = out_dec + r;
        be->matmul(be, logits + (size_t)out_idx[r] * (size_t)cf->vocab_size, o + (size_t)r * D, e - r,
                   &c->model->lm_head);
        r = e;
    }
}

/* What a decode step's launches depend on besides the uploaded inputs: its
 * size, the block tables' width, the model, and every buffer's address. */
static uint64_t graph_key(const gr_ctx *c, int n, const gr_attn_batch *call, const float *logits) {
    const void *ptrs[] = {c->model, c->x.p, c->xb.p, c->q.p, c->k.p, c->v.p, c->att.p, c->hb.p, c->hb2.p,
                          c->tok_d.p, c->pos_d.p, c->seq_d.p, c->slot_d.p, c->bt_d.p, c->last.p, logits,
                          call->kv_pool.base};
    uint64_t h = 1469598103934665603ull;
    uint64_t vals[3] = {(uint64_t)n, (uint64_t)call->max_blocks, (uint64_t)call->kv_pool.dtype};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) h = (h ^ vals[i]) * 1099511628211ull;
    for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) h = (h ^ (uint64_t)(uintptr_t)ptrs[i]) * 1099511628211ull;
    return h;
}

/* The forward pass with the logits written to `logits` in the backend's memory
 * (NULL: none). */
static int forward_impl(gr_ctx *c, gr_kv *const *kv, const int *const *tokens, const int *n_tokens,
                        int n_seq, float *logits, int all_logits, gr_err *err) {
    const gr_model_config *cf = &c->model->cfg;
    gr_backend *be = c->be;
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
        if (kv[s]->pool->lay.n_layers != cf->n_layers ||
            kv[s]->pool->lay.kv_dim != cf->n_kv_heads * cf->head_dim)
            return gr_errf(err, "forward: a cache of another model shape");
        if (!be->host_memory && (kv[s]->pool->be != be || kv[s]->pool != kv[0]->pool))
            return gr_errf(err, "forward: on %s every cache must be in one pool of that backend",
                           be->name);
        total += n_tokens[s];
    }
    c->keep_rows_ = total;
    if (c->chunk < 1) c->chunk = 1;
    if (c->chunk > 1024) c->chunk = 1024; /* out_rows below */
    ctx_reserve(c, c->chunk);
    for (int s = 0; s < n_seq; s++)
        if (gr_kv_try_reserve(kv[s], gr_kv_pos(kv[s]) + n_tokens[s]))
            return gr_errf(err, "forward: the KV pool has no room for %d more positions", n_tokens[s]);
    int D = cf->dim;
    /* The call's block tables (after the reserves above, so they cover every
     * position written), padded to the longest. */
    gr_attn_batch call = {0};
    int max_blocks = 1;
    for (int s = 0; s < n_seq; s++)
        if (kv[s]->n_blocks > max_blocks) max_blocks = kv[s]->n_blocks;
    /* a decode step on a backend with graphs: one chunk, one token a sequence;
     * the tables' width rounded up to a power of two (fewer shapes to capture) */
    int graph = be->graph_begin && be->use_graphs && logits && !all_logits && !c->keep_hidden && n_seq > 0 &&
                total == n_seq && n_seq <= c->chunk;
    if (graph)
        while (max_blocks & (max_blocks - 1)) max_blocks += max_blocks & -max_blocks;
    size_t bt_n = (size_t)(n_seq ? n_seq : 1) * (size_t)max_blocks;
    if (bt_n > c->bt_cap) {
        free(c->bt);
        c->bt = gr_xmalloc(sizeof(int) * bt_n);
        c->bt_cap = bt_n;
    }
    memset(c->bt, 0, sizeof(int) * bt_n);
    for (int s = 0; s < n_seq; s++)
        memcpy(c->bt + (size_t)s * max_blocks, kv[s]->blocks, sizeof(int) * (size_t)kv[s]->n_blocks);
    dbuf_need(be, &c->bt_d, GR_I32, bt_n);
    be->upload(be, c->bt_d.p, c->bt, sizeof(int) * bt_n);
    call.block_table_d = c->bt_d.p;
    call.n_seq = n_seq;
    call.max_blocks = max_blocks;
    if (n_seq) call.kv_pool = kv[0]->pool->lay;
    /* Start positions, fixed before the caches advance chunk by chunk. */
    int *start = gr_xmalloc(sizeof(int) * (size_t)(n_seq ? n_seq : 1));
    for (int q = 0; q < n_seq; q++) start[q] = gr_kv_pos(kv[q]);
    int s = 0, i = 0;         /* next (sequence, token index) to feed */
    int64_t done = 0;         /* tokens fed so far (row index for all_logits) */
    int rc = 0;
    while (done < total) {
        int n = 0, n_out = 0;
        int out_rows[1024];   /* chunk <= 1024 */
        int64_t out_idx[1024];
        unsigned char out_dec[1024];
        while (n < c->chunk && s < n_seq) {
            c->tok[n] = tokens[s][i];
            c->pos[n] = start[s] + i;
            c->tkv[n] = kv[s];
            c->seq[n] = s;
            c->slot[n] = gr_kv_slot(kv[s], start[s] + i);
            if (c->slot[n] < 0) {
                rc = gr_errf(err, "forward: position %d of sequence %d is in a shared (read-only) KV block",
                             start[s] + i, s);
                break;
            }
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
        if (rc) break;
        be->decode_rows = c->dec;
        upload_chunk(c, n);
        if (logits && n_out && n_out > c->last_cap) {
            gr_dbuf_free(be, &c->last);
            c->last = gr_dbuf_alloc(be, GR_F32, (size_t)n_out * (size_t)D * 2);
            c->last_cap = n_out;
        }
        if (graph) {
            /* a decode step: replayed from the graph of its shape when there is one */
            uint64_t key = graph_key(c, n, &call, logits);
            int g = be->graph_begin(be, key);
            if (g != 1) {
                forward_chunk(c, n, done, &call);
                logits_rows(c, logits, n_out, out_rows, out_idx, out_dec);
                if (g == 0 && be->graph_end(be, key)) { /* the capture failed: nothing ran */
                    forward_chunk(c, n, done, &call);
                    logits_rows(c, logits, n_out, out_rows, out_idx, out_dec);
                }
            }
        } else {
            forward_chunk(c, n, done, &call);
            if (logits && n_out) logits_rows(c, logits, n_out, out_rows, out_idx, out_dec);
        }
        /* Caches now hold the chunk's positions: advance their lengths. */
        for (int t = 0; t < n; t++) {
            gr_kv *k = c->tkv[t];
            if (c->pos[t] + 1 > k->len) k->len = c->pos[t] + 1;
        }
        c->be->decode_rows = NULL;
        done += n;
    }
    be->decode_rows = NULL;
    free(start);
    return rc;
}

static float *logits_buf(gr_ctx *c, int n_seq, const int *n_tokens, int all_logits, size_t *n) {
    size_t rows = 0;
    for (int s = 0; s < n_seq; s++) rows += all_logits ? (size_t)n_tokens[s] : 1;
    *n = rows * (size_t)c->model->cfg.vocab_size;
    dbuf_need(c->be, &c->logits_d, GR_F32, *n);
    return c->logits_d.p;
}

int gr_forward(gr_ctx *c, gr_kv *const *kv, const int *const *tokens, const int *n_tokens,
               int n_seq, float *logits, int all_logits, gr_err *err) {
    if (!logits || c->be->host_memory)
        return forward_impl(c, kv, tokens, n_tokens, n_seq, logits, all_logits, err);
    size_t n;
    float *d = logits_buf(c, n_seq, n_tokens, all_logits, &n);
    if (forward_impl(c, kv, tokens, n_tokens, n_seq, d, all_logits, err)) return -1;
    c->be->download(c->be, logits, d, n * sizeof(float));
    return 0;
}

int gr_forward_dev(gr_ctx *c, gr_kv *const *kv, const int *const *tokens, const int *n_tokens,
                   int n_seq, const float **logits_d, int all_logits, gr_err *err) {
    size_t n;
    float *d = logits_buf(c, n_seq, n_tokens, all_logits, &n);
    *logits_d = d;
    return forward_impl(c, kv, tokens, n_tokens, n_seq, d, all_logits, err);
}
