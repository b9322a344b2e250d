#include "train_mem_plan.h"
#include <string.h>

int gr_tparam_count(const gr_model_config *c) { return 2 + 9 * c->n_layers + !c->tie_embeddings; }

static void add(gr_tparam *tab, int *i, int64_t *n, const char *name, int64_t rows, int64_t cols) {
    if (tab) {
        gr_tparam *p = &tab[*i];
        snprintf(p->name, sizeof p->name, "%s", name);
        p->rows = rows;
        p->cols = cols;
        p->off = *n;
    }
    (*i)++;
    *n += rows * (cols ? cols : 1);
}

int gr_tparam_table(const gr_model_config *c, gr_tparam *tab, int64_t *n_params) {
    int64_t D = c->dim, Q = (int64_t)c->n_heads * c->head_dim,
            K = (int64_t)c->n_kv_heads * c->head_dim, F = c->hidden_dim, V = c->vocab_size;
    int i = 0;
    int64_t n = 0;
    char nm[96];
    add(tab, &i, &n, "model.embed_tokens.weight", V, D);
    for (int l = 0; l < c->n_layers; l++) {
#define ADD(s, r, cc) (snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, s), add(tab, &i, &n, nm, r, cc))
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
    add(tab, &i, &n, "model.norm.weight", D, 0);
    if (!c->tie_embeddings) add(tab, &i, &n, "lm_head.weight", V, D);
    *n_params = n;
    return i;
}

static int64_t round8(int64_t x) { return (x + 7) / 8 * 8; }

void gr_tact_carve(const gr_model_config *c, int64_t n, int recompute, int acts16, gr_tslot *L,
                   gr_tslot *top, gr_tact_sizes *sz) {
    int64_t D = c->dim, Q = (int64_t)c->n_heads * c->head_dim,
            K = (int64_t)c->n_kv_heads * c->head_dim, F = c->hidden_dim, Hh = c->n_heads;
    int64_t DQ = D > Q ? D : Q;
    /* per-token widths of the layer slots, in enum order */
    const int64_t lw[GR_TA_N] = {D, 1, D, Q, K, K, Q, Hh, D, 1, D, F, F, F};
    const int64_t tw[GR_TT_N] = {D, 1, D, D, DQ, Q, K, K, Q, F, F, F, D, D};
    int64_t off[2] = {0, 0};
    memset(sz, 0, sizeof *sz);
    for (int l = 0; l < c->n_layers; l++)
        for (int j = 0; j < GR_TA_N; j++) {
            if (recompute && l > 0 && j != GR_TA_H) {
                if (L) L[l * GR_TA_N + j] = L[j];
                continue;
            }
            int h = acts16 && (j == GR_TA_XN1 || j == GR_TA_ATT || j == GR_TA_XN2 || j == GR_TA_ACT);
            int64_t e = round8(n * lw[j]);
            if (L) L[l * GR_TA_N + j] = (gr_tslot){h, off[h]};
            off[h] += e;
            sz->saved_bytes += e * (h ? 2 : 4);
        }
    for (int j = 0; j < GR_TT_N; j++) {
        int64_t e = round8(n * tw[j]);
        if (top) top[j] = (gr_tslot){0, off[0]};
        off[0] += e;
        if (j <= GR_TT_XNF) sz->saved_bytes += e * 4;
        else sz->scratch_bytes += e * 4;
    }
    sz->n32 = off[0];
    sz->n16 = off[1];
}

void gr_tmem_plan_make(const gr_model_config *c, int store16, int64_t tokens, int64_t n_seq,
                       int recompute, int64_t reserve, gr_tmem_plan *p) {
    memset(p, 0, sizeof *p);
    gr_tparam_table(c, NULL, &p->n_params);
    p->tokens = tokens;
    p->n_seq = n_seq;
    p->recompute = recompute;
    p->store16 = store16;
    int64_t N = p->n_params;
    p->master = 4 * N + 4 * (int64_t)(c->head_dim / 2); /* + the RoPE frequencies */
    p->weights16 = store16 ? 2 * N : 0;
    p->grads = (store16 ? 2 : 4) * N;
    p->moments = 8 * N;
    gr_tact_sizes sz;
    gr_tact_carve(c, tokens, recompute, store16, NULL, NULL, &sz);
    p->saved = sz.saved_bytes;
    p->act_scratch = sz.scratch_bytes;
    p->index = 4 * (4 * tokens + n_seq + 1); /* tok, pos, trow, ttok; start */
    if (reserve > 0) { /* a device backend: the ops' own scratch */
        int64_t D = c->dim, Q = (int64_t)c->n_heads * c->head_dim, F = c->hidden_dim,
                V = c->vocab_size;
        int64_t ch = gr_txent_chunk_rows(V, tokens);
        p->logits = 4 * ch * V + (store16 ? 2 * ch * V : 0);
        int64_t wmax = D > Q ? D : Q;
        if (F > wmax) wmax = F;
        p->workspace = gr_tpart_bytes(tokens, D) + 4 * tokens * c->n_heads /* attention's D */
                       + 8 * tokens /* per-row NLL */
                       + (store16 ? 2 * tokens * wmax /* dy as bf16 */ + 2 * ch * D /* head rows */
                                        + 8 * tokens /* embedding-gradient chains */
                                  : 0);
    }
    p->reserve = reserve;
    p->total = p->master + p->weights16 + p->grads + p->moments + p->saved + p->act_scratch + p->index +
               p->logits + p->workspace + p->reserve;
}

void gr_tmem_plan_print(FILE *f, const char *device, const gr_tmem_plan *p) {
    fprintf(f, "memory plan (%s): %lld parameters, micro-batch of %lld tokens in %lld sequences, %s, %s\n",
            device, (long long)p->n_params, (long long)p->tokens, (long long)p->n_seq,
            p->recompute ? "--recompute" : "no recompute",
            p->store16 ? "bf16 weights/gradients/matmul inputs" : "fp32 storage");
    const struct { const char *name; int64_t b; } row[] = {
        {"master weights (fp32)", p->master},
        {"bf16 weights", p->weights16},
        {p->store16 ? "gradients (bf16)" : "gradients (fp32)", p->grads},
        {"AdamW moments (fp32)", p->moments},
        {"saved activations", p->saved},
        {"activation gradients", p->act_scratch},
        {"index arrays", p->index},
        {"logits chunk", p->logits},
        {"workspace", p->workspace},
        {"reserve (context, cuBLAS)", p->reserve},
        {"total", p->total},
    };
    for (size_t i = 0; i < sizeof row / sizeof row[0]; i++)
        fprintf(f, "  %-28s %16lld bytes %9.3f GB\n", row[i].name, (long long)row[i].b, (double)row[i].b / 1e9);
}
