/* Training forward and backward of the LLaMA block (see train_model.h):
 *   h0 = emb[tok]
 *   per layer: n1 = rms(h)·w1;  q,k,v = n1·Wqᵀ,Wkᵀ,Wvᵀ;  rope(q,k);  o = attn(q,k,v)
 *              a = h + o·Woᵀ;   n2 = rms(a)·w2;  u = silu(n2·Wgᵀ) ⊙ n2·Wuᵀ
 *              h' = a + u·Wdᵀ
 *   loss = Σ_t NLL(softmax(rms(h_L)·wf · Wlmᵀ), target_t) over target rows only. */
#include "train_model.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Memory the ops address (ops->alloc): out of memory aborts, as gr_xmalloc does. */
static void *talloc(const gr_train_ops *o, gr_backend *be, size_t bytes) {
    void *p = o->alloc(be, bytes);
    if (!p) {
        fprintf(stderr, "out of memory (%s: %zu bytes for training)\n", o->name, bytes);
        abort();
    }
    return p;
}

/* w's pointers into base, whose elements are esz bytes (4, or 2 for bf16) */
static void weights_point(gr_train_model *m, void *base_v, int esz, gr_tweights *w) {
    const gr_model_config *c = &m->cfg;
    gr_tparam *t = m->tab;
    char *base = base_v;
    int i = 0;
#define AT(k) ((float *)(void *)(base + (size_t)esz * (size_t)t[k].off))
    w->emb = AT(i), i++;
    for (int l = 0; l < c->n_layers; l++) {
        gr_tlayer *L = &w->layers[l];
        L->attn_norm = AT(i), i++;
        L->wq = AT(i), i++;
        L->wk = AT(i), i++;
        L->wv = AT(i), i++;
        L->wo = AT(i), i++;
        L->ffn_norm = AT(i), i++;
        L->w_gate = AT(i), i++;
        L->w_up = AT(i), i++;
        L->w_down = AT(i), i++;
    }
    w->final_norm = AT(i), i++;
    w->lm_head = c->tie_embeddings ? w->emb : AT(i);
#undef AT
}

gr_train_model *gr_train_model_alloc(const gr_model_config *c, gr_backend *be,
                                     const gr_train_ops *ops, gr_err *err) {
    if (c->head_dim % 2 || c->n_heads % c->n_kv_heads)
        return gr_errf(err, "train: head_dim must be even and heads a multiple of kv heads"), NULL;
    gr_train_model *m = gr_xcalloc(1, sizeof *m);
    m->cfg = *c;
    m->be = be;
    m->ops = ops;
    m->store16 = ops->storage16 && ops->alloc16 && ops->weights16 && ops->storage16(be);
    m->tab = gr_xcalloc((size_t)gr_tparam_count(c), sizeof *m->tab);
    m->n_tab = gr_tparam_table(c, m->tab, &m->n_params);
    size_t n = (size_t)m->n_params;
    m->params = talloc(ops, be, sizeof(float) * n);
    if (m->store16) {
        m->w16 = ops->alloc16(be, m->n_params);
        m->grads = ops->alloc16(be, m->n_params);
        if (!m->w16 || !m->grads) {
            fprintf(stderr, "out of memory (%s: 2 x %zu bytes of bf16 weights and gradients)\n", ops->name,
                    2 * n);
            abort();
        }
    } else {
        m->grads = talloc(ops, be, sizeof(float) * n);
    }
    m->rope_inv = talloc(ops, be, sizeof(float) * (size_t)(c->head_dim / 2));
    m->w.layers = gr_xcalloc((size_t)c->n_layers, sizeof(gr_tlayer));
    m->g.layers = gr_xcalloc((size_t)c->n_layers, sizeof(gr_tlayer));
    weights_point(m, m->params, 4, &m->w);
    weights_point(m, m->grads, m->store16 ? 2 : 4, &m->g);
    if (m->store16) ops->weights16(be, m->params, m->w16, m->n_params);
    return m;
}

/* tensor t (rows, cols) into the master block at off: rows converted on the
 * host into buf (cap floats, at least one row), put a buffer at a time */
static void put_matrix(gr_train_model *m, int64_t off, const gr_tensor *t, float *buf, int64_t cap) {
    int64_t per = cap / t->cols;
    for (int64_t r0 = 0; r0 < t->rows; r0 += per) {
        int64_t rn = t->rows - r0 < per ? t->rows - r0 : per;
        for (int64_t r = 0; r < rn; r++) gr_tensor_row_f32(t, r0 + r, buf + r * t->cols);
        gr_train_params_put(m, buf, off + r0 * t->cols, rn * t->cols);
    }
}

gr_train_model *gr_train_model_new(const gr_model *src, gr_backend *be, gr_err *err) {
    const gr_model_config *c = &src->cfg;
    const gr_train_ops *ops = gr_train_ops_for(be, err);
    if (!ops) return NULL;
    gr_train_model *m = gr_train_model_alloc(c, be, ops, err);
    if (!m) return NULL;
    int64_t D = c->dim, wide = D > c->hidden_dim ? D : c->hidden_dim;
    if ((int64_t)c->n_heads * c->head_dim > wide) wide = (int64_t)c->n_heads * c->head_dim;
    int64_t cap = (int64_t)1 << 22; /* 16 MiB of rows a copy */
    if (cap < wide) cap = wide;
    float *row = gr_xmalloc(sizeof(float) * (size_t)cap);
    const gr_tparam *t = m->tab;
    int i = 0;
    put_matrix(m, t[i++].off, &src->tok_emb, row, cap);
    for (int l = 0; l < c->n_layers; l++) {
        const gr_layer *S = &src->layers[l];
        gr_train_params_put(m, S->attn_norm, t[i++].off, D);
        put_matrix(m, t[i++].off, &S->wq, row, cap);
        put_matrix(m, t[i++].off, &S->wk, row, cap);
        put_matrix(m, t[i++].off, &S->wv, row, cap);
        put_matrix(m, t[i++].off, &S->wo, row, cap);
        gr_train_params_put(m, S->ffn_norm, t[i++].off, D);
        put_matrix(m, t[i++].off, &S->w_gate, row, cap);
        put_matrix(m, t[i++].off, &S->w_up, row, cap);
        put_matrix(m, t[i++].off, &S->w_down, row, cap);
    }
    gr_train_params_put(m, src->final_norm, t[i++].off, D);
    if (!c->tie_embeddings) put_matrix(m, t[i++].off, &src->lm_head, row, cap);
    free(row);
    gr_tops_put(ops, be, m->rope_inv, src->rope_inv, sizeof(float) * (size_t)(c->head_dim / 2));
    gr_train_params_refresh(m);
    return m;
}

void gr_train_params_get(const gr_train_model *m, float *dst, int64_t off, int64_t n) {
    gr_tops_get(m->ops, m->be, dst, m->params + off, sizeof(float) * (size_t)n);
}

void gr_train_params_put(gr_train_model *m, const float *src, int64_t off, int64_t n) {
    gr_tops_put(m->ops, m->be, m->params + off, src, sizeof(float) * (size_t)n);
}

void gr_train_params_refresh(gr_train_model *m) {
    if (m->store16) m->ops->weights16(m->be, m->params, m->w16, m->n_params);
}

void gr_train_grads_get(const gr_train_model *m, float *dst) {
    size_t n = (size_t)m->n_params;
    if (!m->store16) {
        gr_tops_get(m->ops, m->be, dst, m->grads, sizeof(float) * n);
        return;
    }
    /* bf16 into the top half of dst's words, widened in place from the end */
    uint16_t *h = (uint16_t *)(void *)dst;
    gr_tops_get(m->ops, m->be, h, m->grads, 2 * n);
    for (size_t i = n; i-- > 0;) {
        uint32_t u = (uint32_t)h[i] << 16;
        memcpy(&dst[i], &u, 4);
    }
}

void gr_train_model_free(gr_train_model *m) {
    if (!m) return;
    m->ops->sync(m->be);
    m->ops->release(m->be, m->params);
    m->ops->release(m->be, m->grads);
    if (m->w16) m->ops->release(m->be, m->w16);
    m->ops->release(m->be, m->rope_inv);
    free(m->w.layers);
    free(m->g.layers);
    free(m->tab);
    free(m);
}

void gr_train_zero_grad(gr_train_model *m) {
    m->ops->zero(m->be, m->grads, m->n_params);
}

int64_t gr_tbatch_targets(const gr_tbatch *b) {
    int64_t n = 0;
    for (int s = 0; s < b->n_seq; s++) {
        int first = b->n_prompt[s] > 1 ? b->n_prompt[s] : 1;
        if (b->len[s] > first) n += b->len[s] - first;
    }
    return n;
}

/* ---- activations ------------------------------------------------------------ */
typedef struct tlayer_act {
    float *h, *rstd1, *xn1, *q, *k, *v, *att, *lse, *a, *rstd2, *xn2, *gate, *up, *act;
} tlayer_act;

struct gr_tact {
    int cap, n_seq_cap, n_layers;
    int recompute;         /* keep only each layer's input; redo the rest in backward */
    float *block;          /* the fp32 activations (gr_tact_carve) */
    void *block16;         /* the bf16 ones (store16), or NULL */
    tlayer_act *L;         /* (n_layers) */
    float *hL, *rstdf, *xnf;                 /* (N, D), (N), (N, D) */
    float *dh, *dxn, *dq, *dk, *dv, *datt, *dgate, *dup, *dact; /* backward scratch */
    float *xt, *dxt;       /* (targets, D) */
    int *tok, *pos, *start, *trow, *ttok;    /* op memory */
    int *htok, *hpos, *hstart, *htrow, *httok; /* their host copies */
    int last_n, last_nt, last_nseq;  /* the forward these activations hold (-1: none) */
    const gr_train_ops *ops;         /* where block and the index arrays live */
    gr_backend *be;
};

gr_tact *gr_tact_new(int recompute) {
    gr_tact *a = gr_xcalloc(1, sizeof(gr_tact));
    a->recompute = recompute;
    a->last_n = -1;
    return a;
}

static void tact_release(gr_tact *a) {
    if (!a->ops) return;
    a->ops->sync(a->be);
    a->ops->release(a->be, a->block);
    if (a->block16) a->ops->release(a->be, a->block16);
    a->ops->release(a->be, a->tok);
    a->ops->release(a->be, a->pos);
    a->ops->release(a->be, a->start);
    a->ops->release(a->be, a->trow);
    a->ops->release(a->be, a->ttok);
    a->block = NULL;
    a->block16 = NULL;
    a->tok = a->pos = a->start = a->trow = a->ttok = NULL;
    a->cap = a->n_seq_cap = 0;
}

void gr_tact_free(gr_tact *a) {
    if (!a) return;
    tact_release(a);
    free(a->htok);
    free(a->hpos);
    free(a->hstart);
    free(a->htrow);
    free(a->httok);
    free(a->L);
    free(a);
}

int64_t gr_tact_bytes_per_token(const gr_model_config *c, int recompute) {
    gr_tact_sizes sz;
    gr_tact_carve(c, 1024, recompute, 0, NULL, NULL, &sz); /* fp32 storage */
    return sz.saved_bytes / 1024;
}

void gr_tact_reserve(gr_tact *a, const gr_train_model *m, int n, int n_seq) {
    const gr_model_config *c = &m->cfg;
    const gr_train_ops *o = m->ops;
    gr_backend *be = m->be;
    if (a->ops && a->ops != o) tact_release(a); /* moved to another backend: start afresh */
    a->ops = o;
    a->be = be;
    if (n_seq + 1 > a->n_seq_cap) {
        o->release(be, a->start);
        a->start = talloc(o, be, sizeof(int) * (size_t)(n_seq + 1));
        free(a->hstart);
        a->hstart = gr_xmalloc(sizeof(int) * (size_t)(n_seq + 1));
        a->n_seq_cap = n_seq + 1;
    }
    if (n <= a->cap && a->n_layers == c->n_layers) return;
    int64_t N = n;
    gr_tslot *L = gr_xmalloc(sizeof(gr_tslot) * (size_t)c->n_layers * GR_TA_N), top[GR_TT_N];
    gr_tact_sizes sz;
    gr_tact_carve(c, N, a->recompute, m->store16, L, top, &sz);
    o->sync(be);
    o->release(be, a->block);
    if (a->block16) o->release(be, a->block16);
    a->block = talloc(o, be, sizeof(float) * (size_t)sz.n32);
    a->block16 = NULL;
    if (sz.n16) {
        a->block16 = o->alloc16(be, sz.n16);
        if (!a->block16) {
            fprintf(stderr, "out of memory (%s: %lld bytes of bf16 activations)\n", o->name,
                    (long long)(2 * sz.n16));
            abort();
        }
    }
    free(a->L);
    a->L = gr_xcalloc((size_t)c->n_layers, sizeof(tlayer_act));
    char *b32 = (char *)a->block, *b16 = a->block16;
#define AT(s) ((float *)(void *)((s).half ? b16 + 2 * (size_t)(s).off : b32 + 4 * (size_t)(s).off))
    for (int l = 0; l < c->n_layers; l++) {
        tlayer_act *A = &a->L[l];
        const gr_tslot *S = L + (size_t)l * GR_TA_N;
        A->h = AT(S[GR_TA_H]); A->rstd1 = AT(S[GR_TA_RSTD1]); A->xn1 = AT(S[GR_TA_XN1]);
        A->q = AT(S[GR_TA_Q]); A->k = AT(S[GR_TA_K]); A->v = AT(S[GR_TA_V]);
        A->att = AT(S[GR_TA_ATT]); A->lse = AT(S[GR_TA_LSE]); A->a = AT(S[GR_TA_A]);
        A->rstd2 = AT(S[GR_TA_RSTD2]); A->xn2 = AT(S[GR_TA_XN2]); A->gate = AT(S[GR_TA_GATE]);
        A->up = AT(S[GR_TA_UP]); A->act = AT(S[GR_TA_ACT]);
    }
    a->hL = AT(top[GR_TT_HL]); a->rstdf = AT(top[GR_TT_RSTDF]); a->xnf = AT(top[GR_TT_XNF]);
    a->dh = AT(top[GR_TT_DH]); a->dxn = AT(top[GR_TT_DXN]); a->dq = AT(top[GR_TT_DQ]);
    a->dk = AT(top[GR_TT_DK]); a->dv = AT(top[GR_TT_DV]); a->datt = AT(top[GR_TT_DATT]);
    a->dgate = AT(top[GR_TT_DGATE]); a->dup = AT(top[GR_TT_DUP]); a->dact = AT(top[GR_TT_DACT]);
    a->xt = AT(top[GR_TT_XT]); a->dxt = AT(top[GR_TT_DXT]);
#undef AT
    free(L);
    o->release(be, a->tok); o->release(be, a->pos); o->release(be, a->trow); o->release(be, a->ttok);
    a->tok = talloc(o, be, sizeof(int) * (size_t)N);
    a->pos = talloc(o, be, sizeof(int) * (size_t)N);
    a->trow = talloc(o, be, sizeof(int) * (size_t)N);
    a->ttok = talloc(o, be, sizeof(int) * (size_t)N);
    free(a->htok); free(a->hpos); free(a->htrow); free(a->httok);
    a->htok = gr_xmalloc(sizeof(int) * (size_t)N);
    a->hpos = gr_xmalloc(sizeof(int) * (size_t)N);
    a->htrow = gr_xmalloc(sizeof(int) * (size_t)N);
    a->httok = gr_xmalloc(sizeof(int) * (size_t)N);
    a->cap = n;
    a->n_layers = c->n_layers;
}

/* Layer l's forward from its input L[l].h; with full, also the down projection
 * and the residual into the next layer's input (not needed when recomputing). */
static void layer_forward(gr_train_model *m, gr_tact *a, int l, int n, int n_seq, int full) {
    const gr_model_config *c = &m->cfg;
    const gr_train_ops *o = m->ops;
    gr_backend *be = m->be;
    int D = c->dim, H = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim, Q = H * hd,
        K = Hkv * hd, F = c->hidden_dim;
    tlayer_act *A = &a->L[l];
    const gr_tlayer *W = &m->w.layers[l];
    o->rmsnorm_fwd(be, A->xn1, A->rstd1, A->h, W->attn_norm, n, D, c->norm_eps);
    o->matmul_fwd(be, A->q, A->xn1, W->wq, n, D, Q);
    o->matmul_fwd(be, A->k, A->xn1, W->wk, n, D, K);
    o->matmul_fwd(be, A->v, A->xn1, W->wv, n, D, K);
    o->rope(be, A->q, a->pos, n, H, hd, m->rope_inv, 0);
    o->rope(be, A->k, a->pos, n, Hkv, hd, m->rope_inv, 0);
    o->attention_fwd(be, A->att, A->lse, A->q, A->k, A->v, a->start, n_seq, H, Hkv, hd);
    o->matmul_fwd(be, A->a, A->att, W->wo, n, Q, D);
    o->add(be, A->a, A->h, (int64_t)n * D);
    o->rmsnorm_fwd(be, A->xn2, A->rstd2, A->a, W->ffn_norm, n, D, c->norm_eps);
    o->matmul_fwd(be, A->gate, A->xn2, W->w_gate, n, D, F);
    o->matmul_fwd(be, A->up, A->xn2, W->w_up, n, D, F);
    o->swiglu_fwd(be, A->act, A->gate, A->up, (int64_t)n * F);
    if (!full) return;
    float *next = l + 1 < c->n_layers ? a->L[l + 1].h : a->hL;
    o->matmul_fwd(be, next, A->act, W->w_down, n, F, D);
    o->add(be, next, A->a, (int64_t)n * D);
}

/* ---- forward / backward ------------------------------------------------------ */
/* The backward pass from a->dxt (d loss / d final-norm output of the target rows,
 * written by xent) down to the embeddings, through the kept activations. */
static void backward_rest(gr_train_model *m, gr_tact *a, int n_seq, int n, int nt) {
    const gr_model_config *c = &m->cfg;
    const gr_train_ops *o = m->ops;
    gr_backend *be = m->be;
    int D = c->dim, H = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim, Q = H * hd,
        K = Hkv * hd, F = c->hidden_dim;
    /* d(final norm input) */
    int64_t ND = (int64_t)n * D;
    o->zero(be, a->dxn, ND);
    o->rows(be, a->dxn, a->dxt, a->trow, nt, D, 1);
    o->zero(be, a->dh, ND);
    o->rmsnorm_bwd(be, a->dh, m->g.final_norm, a->dxn, a->hL, m->w.final_norm, a->rstdf, n, D);
    /* tab: emb, 9 per layer, final norm, (lm_head) */
    if (m->grad_ready) m->grad_ready(m->grad_ready_ud, m->tab[1 + 9 * c->n_layers].off);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        if (a->recompute) layer_forward(m, a, l, n, n_seq, 0);
        tlayer_act *A = &a->L[l];
        const gr_tlayer *W = &m->w.layers[l];
        gr_tlayer *G = &m->g.layers[l];
        /* h' = a + act·Wdᵀ: dh flows to a unchanged */
        o->zero(be, a->dact, (int64_t)n * F);
        o->matmul_bwd(be, a->dact, G->w_down, a->dh, A->act, W->w_down, n, F, D);
        o->swiglu_bwd(be, a->dgate, a->dup, a->dact, A->gate, A->up, (int64_t)n * F);
        o->zero(be, a->dxn, ND);
        o->matmul_bwd(be, a->dxn, G->w_gate, a->dgate, A->xn2, W->w_gate, n, D, F);
        o->matmul_bwd(be, a->dxn, G->w_up, a->dup, A->xn2, W->w_up, n, D, F);
        o->rmsnorm_bwd(be, a->dh, G->ffn_norm, a->dxn, A->a, W->ffn_norm, A->rstd2, n, D);
        /* a = h + att·Woᵀ */
        o->zero(be, a->datt, (int64_t)n * Q);
        o->matmul_bwd(be, a->datt, G->wo, a->dh, A->att, W->wo, n, Q, D);
        o->attention_bwd(be, a->dq, a->dk, a->dv, a->datt, A->att, A->lse, A->q, A->k, A->v,
                         a->start, n_seq, H, Hkv, hd);
        o->rope(be, a->dq, a->pos, n, H, hd, m->rope_inv, 1);
        o->rope(be, a->dk, a->pos, n, Hkv, hd, m->rope_inv, 1);
        o->zero(be, a->dxn, ND);
        o->matmul_bwd(be, a->dxn, G->wq, a->dq, A->xn1, W->wq, n, D, Q);
        o->matmul_bwd(be, a->dxn, G->wk, a->dk, A->xn1, W->wk, n, D, K);
        o->matmul_bwd(be, a->dxn, G->wv, a->dv, A->xn1, W->wv, n, D, K);
        o->rmsnorm_bwd(be, a->dh, G->attn_norm, a->dxn, A->h, W->attn_norm, A->rstd1, n, D);
        if (m->grad_ready) m->grad_ready(m->grad_ready_ud, m->tab[1 + 9 * l].off);
    }
    o->embedding_bwd(be, m->g.emb, a->dh, a->tok, n, D);
    if (m->grad_ready) m->grad_ready(m->grad_ready_ud, 0);
}

int gr_train_step_micro(gr_train_model *m, gr_tact *a, const gr_tbatch *b, int backward,
                        float scale, double *nll, int64_t *n_targets, gr_err *err) {
    const gr_model_config *c = &m->cfg;
    const gr_train_ops *o = m->ops;
    gr_backend *be = m->be;
    int64_t total = 0;
    for (int s = 0; s < b->n_seq; s++) {
        if (b->len[s] < 1) return gr_errf(err, "train: sequence %d is empty", s);
        if (b->len[s] > c->max_pos)
            return gr_errf(err, "train: sequence %d has %d tokens, more than the model's %d positions",
                           s, b->len[s], c->max_pos);
        for (int i = 0; i < b->len[s]; i++)
            if (b->ids[s][i] < 0 || b->ids[s][i] >= c->vocab_size)
                return gr_errf(err, "train: token id %d outside the vocabulary (%d)", b->ids[s][i],
                               c->vocab_size);
        total += b->len[s];
    }
    if (total > (1 << 28)) return gr_errf(err, "train: micro-batch too large");
    int n = (int)total;
    gr_tact_reserve(a, m, n, b->n_seq);
    int D = c->dim, V = c->vocab_size;
    int nt = 0;
    a->hstart[0] = 0;
    for (int s = 0, r = 0; s < b->n_seq; s++) {
        int first = b->n_prompt[s] > 1 ? b->n_prompt[s] : 1;
        for (int i = 0; i < b->len[s]; i++, r++) {
            a->htok[r] = b->ids[s][i];
            a->hpos[r] = i;
            if (i + 1 < b->len[s] && i + 1 >= first) {
                a->htrow[nt] = r;
                a->httok[nt++] = b->ids[s][i + 1];
            }
        }
        a->hstart[s + 1] = r;
    }
    o->sync(be); /* the ops of the last batch may still read the index arrays */
    gr_tops_put(o, be, a->tok, a->htok, sizeof(int) * (size_t)n);
    gr_tops_put(o, be, a->pos, a->hpos, sizeof(int) * (size_t)n);
    gr_tops_put(o, be, a->start, a->hstart, sizeof(int) * (size_t)(b->n_seq + 1));
    gr_tops_put(o, be, a->trow, a->htrow, sizeof(int) * (size_t)nt);
    gr_tops_put(o, be, a->ttok, a->httok, sizeof(int) * (size_t)nt);
    *n_targets = nt;
    *nll = 0;
    a->last_n = -1;
    if (n == 0) return 0;

    o->embedding_fwd(be, a->L[0].h, m->w.emb, a->tok, n, D);
    for (int l = 0; l < c->n_layers; l++) layer_forward(m, a, l, n, b->n_seq, 1);
    o->rmsnorm_fwd(be, a->xnf, a->rstdf, a->hL, m->w.final_norm, n, D, c->norm_eps);
    o->rows(be, a->xt, a->xnf, a->trow, nt, D, 0);
    *nll = o->xent(be, backward ? a->dxt : NULL, backward ? m->g.lm_head : NULL, a->xt,
                   m->w.lm_head, a->ttok, nt, D, V, scale);
    a->last_n = n;
    a->last_nt = nt;
    a->last_nseq = b->n_seq;
    if (!backward) return 0;
    a->last_n = -1; /* the backward pass used the activations up */

    backward_rest(m, a, b->n_seq, n, nt);
    return 0;
}

int gr_train_backward_micro(gr_train_model *m, gr_tact *a, const gr_tbatch *b, float scale,
                            gr_err *err) {
    int64_t total = 0;
    for (int s = 0; s < b->n_seq; s++) total += b->len[s];
    if (a->last_n < 0 || a->last_n != total || a->last_nseq != b->n_seq)
        return gr_errf(err, "train: no kept forward pass of this batch to run backward from");
    const gr_model_config *c = &m->cfg;
    int n = a->last_n, nt = a->last_nt;
    m->ops->xent(m->be, a->dxt, m->g.lm_head, a->xt, m->w.lm_head, a->ttok, nt, c->dim,
                 c->vocab_size, scale);
    a->last_n = -1;
    backward_rest(m, a, b->n_seq, n, nt);
    return 0;
}

int gr_train_dp_check(const gr_train_model *m, int world, gr_err *err) {
    if (world > 1 && m->store16)
        return gr_errf(err, "data parallelism needs fp32 gradients: GR_CUDA_TRAIN_STORE is set to another "
                            "storage (bf16 gradients are not all-reduced yet; leave it unset or f32)");
    return 0;
}
