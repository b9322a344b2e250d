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

static void weights_point(gr_train_model *m, float *base, gr_tweights *w) {
    const gr_model_config *c = &m->cfg;
    gr_tparam *t = m->tab;
    int i = 0;
    w->emb = base + t[i++].off;
    for (int l = 0; l < c->n_layers; l++) {
        gr_tlayer *L = &w->layers[l];
        L->attn_norm = base + t[i++].off;
        L->wq = base + t[i++].off;
        L->wk = base + t[i++].off;
        L->wv = base + t[i++].off;
        L->wo = base + t[i++].off;
        L->ffn_norm = base + t[i++].off;
        L->w_gate = base + t[i++].off;
        L->w_up = base + t[i++].off;
        L->w_down = base + t[i++].off;
    }
    w->final_norm = base + t[i++].off;
    w->lm_head = c->tie_embeddings ? w->emb : base + t[i++].off;
}

static void tab_add(gr_train_model *m, const char *name, int64_t rows, int64_t cols) {
    gr_tparam *p = &m->tab[m->n_tab++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->rows = rows;
    p->cols = cols;
    p->off = m->n_params;
    m->n_params += rows * (cols ? cols : 1);
}

static void copy_matrix(float *dst, const gr_tensor *t) {
    for (int64_t r = 0; r < t->rows; r++) gr_tensor_row_f32(t, r, dst + r * t->cols);
}

gr_train_model *gr_train_model_new(const gr_model *src, gr_backend *be, gr_err *err) {
    const gr_model_config *c = &src->cfg;
    if (c->head_dim % 2 || c->n_heads % c->n_kv_heads)
        return gr_errf(err, "train: head_dim must be even and heads a multiple of kv heads"), NULL;
    const gr_train_ops *ops = gr_train_ops_for(be, err);
    if (!ops) return NULL;
    gr_train_model *m = gr_xcalloc(1, sizeof *m);
    m->cfg = *c;
    m->be = be;
    m->ops = ops;
    int64_t D = c->dim, Q = (int64_t)c->n_heads * c->head_dim,
            K = (int64_t)c->n_kv_heads * c->head_dim, F = c->hidden_dim, V = c->vocab_size;
    m->tab = gr_xcalloc((size_t)(3 + 9 * c->n_layers), sizeof *m->tab);
    char nm[96];
    tab_add(m, "model.embed_tokens.weight", V, D);
    for (int l = 0; l < c->n_layers; l++) {
#define ADD(s, r, cc) (snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, s), tab_add(m, nm, r, cc))
        ADD("input_layernorm", D, 0);
        ADD("self_attn.q_proj", Q, D);
        ADD("self_attn.k_proj", K, D);
        ADD("self_attn.v_proj", K, D);
        ADD("self_attn.o_proj", D, Q);
        ADD("post_attention_layernorm", D, 0);
        ADD("mlp.gate_proj", F, D);
        ADD("mlp.up_proj", F, D);
        ADD("mlp.down_proj", D, F);
#undef ADD
    }
    tab_add(m, "model.norm.weight", D, 0);
    if (!c->tie_embeddings) tab_add(m, "lm_head.weight", V, D);
    m->params = talloc(ops, be, sizeof(float) * (size_t)m->n_params);
    m->grads = talloc(ops, be, sizeof(float) * (size_t)m->n_params);
    m->w.layers = gr_xcalloc((size_t)c->n_layers, sizeof(gr_tlayer));
    m->g.layers = gr_xcalloc((size_t)c->n_layers, sizeof(gr_tlayer));
    weights_point(m, m->params, &m->w);
    weights_point(m, m->grads, &m->g);
    copy_matrix(m->w.emb, &src->tok_emb);
    for (int l = 0; l < c->n_layers; l++) {
        const gr_layer *S = &src->layers[l];
        gr_tlayer *L = &m->w.layers[l];
        memcpy(L->attn_norm, S->attn_norm, sizeof(float) * (size_t)D);
        memcpy(L->ffn_norm, S->ffn_norm, sizeof(float) * (size_t)D);
        copy_matrix(L->wq, &S->wq);
        copy_matrix(L->wk, &S->wk);
        copy_matrix(L->wv, &S->wv);
        copy_matrix(L->wo, &S->wo);
        copy_matrix(L->w_gate, &S->w_gate);
        copy_matrix(L->w_up, &S->w_up);
        copy_matrix(L->w_down, &S->w_down);
    }
    memcpy(m->w.final_norm, src->final_norm, sizeof(float) * (size_t)D);
    if (!c->tie_embeddings) copy_matrix(m->w.lm_head, &src->lm_head);
    m->rope_inv = talloc(ops, be, sizeof(float) * (size_t)(c->head_dim / 2));
    memcpy(m->rope_inv, src->rope_inv, sizeof(float) * (size_t)(c->head_dim / 2));
    return m;
}

void gr_train_model_free(gr_train_model *m) {
    if (!m) return;
    m->ops->sync(m->be);
    m->ops->release(m->be, m->params);
    m->ops->release(m->be, m->grads);
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
    float *block;          /* every kept activation */
    tlayer_act *L;         /* (n_layers) */
    float *hL, *rstdf, *xnf;                 /* (N, D), (N), (N, D) */
    float *dh, *dxn, *dq, *dk, *dv, *datt, *dgate, *dup, *dact; /* backward scratch */
    float *xt, *dxt;       /* (targets, D) */
    int *tok, *pos, *start, *trow, *ttok;
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

void gr_tact_free(gr_tact *a) {
    if (!a) return;
    if (a->ops) {
        a->ops->sync(a->be);
        a->ops->release(a->be, a->block);
        a->ops->release(a->be, a->tok);
        a->ops->release(a->be, a->pos);
        a->ops->release(a->be, a->start);
        a->ops->release(a->be, a->trow);
        a->ops->release(a->be, a->ttok);
    }
    free(a->L);
    free(a);
}

static int64_t layer_floats(const gr_model_config *c) {
    int64_t D = c->dim, Q = (int64_t)c->n_heads * c->head_dim,
            K = (int64_t)c->n_kv_heads * c->head_dim, F = c->hidden_dim;
    return 4 * D + 2 * Q + 2 * K + 3 * F + c->n_heads + 2;
}

/* Kept per token: every layer's activations, or with recompute every layer's
 * input plus one layer's worth (reused). */
static int64_t kept_floats(const gr_model_config *c, int recompute) {
    if (recompute) return (int64_t)c->dim * c->n_layers + layer_floats(c) + 2 * c->dim + 1;
    return layer_floats(c) * c->n_layers + 2 * c->dim + 1;
}

int64_t gr_tact_bytes_per_token(const gr_model_config *c, int recompute) {
    return (int64_t)sizeof(float) * kept_floats(c, recompute);
}

static void tact_reserve(gr_tact *a, const gr_train_model *m, int n, int n_seq) {
    const gr_model_config *c = &m->cfg;
    const gr_train_ops *o = m->ops;
    gr_backend *be = m->be;
    if (a->ops && a->ops != o) { /* moved to another backend: start afresh */
        a->ops->sync(a->be);
        a->ops->release(a->be, a->block);
        a->ops->release(a->be, a->tok);
        a->ops->release(a->be, a->pos);
        a->ops->release(a->be, a->start);
        a->ops->release(a->be, a->trow);
        a->ops->release(a->be, a->ttok);
        a->block = NULL;
        a->tok = a->pos = a->start = a->trow = a->ttok = NULL;
        a->cap = a->n_seq_cap = 0;
    }
    a->ops = o;
    a->be = be;
    if (n_seq + 1 > a->n_seq_cap) {
        o->release(be, a->start);
        a->start = talloc(o, be, sizeof(int) * (size_t)(n_seq + 1));
        a->n_seq_cap = n_seq + 1;
    }
    if (n <= a->cap && a->n_layers == c->n_layers) return;
    int64_t N = n, D = c->dim, Q = (int64_t)c->n_heads * c->head_dim,
            K = (int64_t)c->n_kv_heads * c->head_dim, F = c->hidden_dim, Hh = c->n_heads;
    int64_t DQ = D > Q ? D : Q;
    int64_t total = N * kept_floats(c, a->recompute) + N * (D + DQ + Q + 2 * K + Q + 3 * F) +
                    2 * N * D;
    o->release(be, a->block);
    a->block = talloc(o, be, sizeof(float) * (size_t)total);
    free(a->L);
    a->L = gr_xcalloc((size_t)c->n_layers, sizeof(tlayer_act));
    float *p = a->block;
#define TAKE(w) (p += N * (w), p - N * (w))
    for (int l = 0; l < c->n_layers; l++) {
        tlayer_act *L = &a->L[l];
        L->h = TAKE(D);
        if (a->recompute && l > 0) { /* the rest shared with layer 0 */
            float *h = L->h;
            *L = a->L[0];
            L->h = h;
            continue;
        }
        L->rstd1 = TAKE(1); L->xn1 = TAKE(D); L->q = TAKE(Q); L->k = TAKE(K);
        L->v = TAKE(K); L->att = TAKE(Q); L->lse = TAKE(Hh); L->a = TAKE(D); L->rstd2 = TAKE(1);
        L->xn2 = TAKE(D); L->gate = TAKE(F); L->up = TAKE(F); L->act = TAKE(F);
    }
    a->hL = TAKE(D); a->rstdf = TAKE(1); a->xnf = TAKE(D);
    a->dh = TAKE(D); a->dxn = TAKE(DQ); a->dq = TAKE(Q); a->dk = TAKE(K); a->dv = TAKE(K);
    a->datt = TAKE(Q); a->dgate = TAKE(F); a->dup = TAKE(F); a->dact = TAKE(F);
    a->xt = TAKE(D); a->dxt = TAKE(D);
#undef TAKE
    o->release(be, a->tok); o->release(be, a->pos); o->release(be, a->trow); o->release(be, a->ttok);
    a->tok = talloc(o, be, sizeof(int) * (size_t)N);
    a->pos = talloc(o, be, sizeof(int) * (size_t)N);
    a->trow = talloc(o, be, sizeof(int) * (size_t)N);
    a->ttok = talloc(o, be, sizeof(int) * (size_t)N);
    a->cap = n;
    a->n_layers = c->n_layers;
}

void gr_tact_reserve(gr_train_model *m, gr_tact *a, int n, int n_seq) {
    if (n > 0 && n_seq > 0) tact_reserve(a, m, n, n_seq);
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
    o->sync(be); /* the host writes the index arrays below */
    tact_reserve(a, m, n, b->n_seq);
    int D = c->dim, V = c->vocab_size;
    int nt = 0;
    a->start[0] = 0;
    for (int s = 0, r = 0; s < b->n_seq; s++) {
        int first = b->n_prompt[s] > 1 ? b->n_prompt[s] : 1;
        for (int i = 0; i < b->len[s]; i++, r++) {
            a->tok[r] = b->ids[s][i];
            a->pos[r] = i;
            if (i + 1 < b->len[s] && i + 1 >= first) {
                a->trow[nt] = r;
                a->ttok[nt++] = b->ids[s][i + 1];
            }
        }
        a->start[s + 1] = r;
    }
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
