/* Loading a gr_model from a Hugging Face folder or a GGUF file. Every tensor's
 * type and shape is checked against the configuration before it is used. */
#include "model.h"
#include "gguf.h"
#include "quant.h"
#include "safetensors.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void *own(gr_model *m, size_t n) {
    if (m->n_owned_ == m->cap_owned_) {
        m->cap_owned_ = m->cap_owned_ ? 2 * m->cap_owned_ : 64;
        m->owned_ = gr_xrealloc(m->owned_, sizeof *m->owned_ * (size_t)m->cap_owned_);
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1)) p = gr_xmalloc(n); /* aborts on failure */
    m->owned_[m->n_owned_++] = p;
    return p;
}

static size_t row_bytes_of(int type, int64_t cols) {
    switch (type) {
    case GR_F32: return (size_t)cols * 4;
    case GR_F16: case GR_BF16: return (size_t)cols * 2;
    case GR_Q8_0: return (size_t)cols / 32 * 34;
    case GR_Q4_0: return (size_t)cols / 32 * 18;
    case GR_Q4_1: return (size_t)cols / 32 * 20;
    default: return 0;
    }
}

void gr_tensor_row_f32(const gr_tensor *t, int64_t row, float *out) {
    gr_dequantize(t->type, (const uint8_t *)t->data + (size_t)row * t->row_bytes, out, t->cols);
}

/* ---- Hugging Face folder ------------------------------------------------- */

static int st_dtype_to_gr(int d) {
    return d == ST_F32 ? GR_F32 : d == ST_F16 ? GR_F16 : d == ST_BF16 ? GR_BF16 : -1;
}

static int st_matrix(gr_model *m, const st_set *s, const char *name, int64_t rows, int64_t cols,
                     gr_tensor *out, gr_err *err) {
    const st_tensor *t = st_set_find(s, name);
    if (!t) return gr_errf(err, "%s: tensor '%s' is missing", m->path, name);
    int type = st_dtype_to_gr(t->dtype);
    if (type < 0)
        return gr_errf(err, "%s: tensor '%s': dtype %s (F32, F16 or BF16 expected)", m->path, name,
                       st_dtype_name(t->dtype));
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return gr_errf(err, "%s: tensor '%s': shape [%lld, %lld] expected", m->path, name,
                       (long long)rows, (long long)cols);
    out->type = type;
    out->rows = rows;
    out->cols = cols;
    out->row_bytes = row_bytes_of(type, cols);
    out->data = t->data;
    /* safetensors does not align its data; the kernels read elements in place. */
    if ((uintptr_t)t->data % (type == GR_F32 ? 4 : 2)) {
        void *p = own(m, t->nbytes);
        memcpy(p, t->data, t->nbytes);
        out->data = p;
    }
    return 0;
}

static int st_vector(gr_model *m, const st_set *s, const char *name, int64_t n, const float **out,
                     gr_err *err) {
    const st_tensor *t = st_set_find(s, name);
    if (!t) return gr_errf(err, "%s: tensor '%s' is missing", m->path, name);
    int type = st_dtype_to_gr(t->dtype);
    if (type < 0 || t->n_dims != 1 || t->shape[0] != n)
        return gr_errf(err, "%s: tensor '%s': a float vector of %lld expected", m->path, name,
                       (long long)n);
    float *p = own(m, (size_t)n * 4);
    gr_dequantize(type, t->data, p, n);
    *out = p;
    return 0;
}

static char *read_text(const char *path, size_t *n, gr_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        gr_errf(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    gr_buf b = {0};
    char chunk[8192];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (16u << 20)) gr_buf_append(&b, chunk, k);
    fclose(f);
    *n = b.len;
    gr_buf_putc(&b, 0);
    return b.data;
}

static int load_hf(gr_model *m, const char *dir, gr_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t n;
    char *txt = read_text(path, &n, err);
    if (!txt) return -1;
    int rc = gr_config_parse(txt, n, path, &m->cfg, err);
    free(txt);
    if (rc) return -1;
    st_set *s = st_set_open(dir, err);
    if (!s) return -1;
    m->st_ = s;
    const gr_model_config *c = &m->cfg;
    int64_t D = c->dim, H = c->hidden_dim, QD = (int64_t)c->n_heads * c->head_dim,
            KD = (int64_t)c->n_kv_heads * c->head_dim;
    if (st_matrix(m, s, "model.embed_tokens.weight", c->vocab_size, D, &m->tok_emb, err) ||
        st_vector(m, s, "model.norm.weight", D, &m->final_norm, err))
        return -1;
    if (c->tie_embeddings) {
        m->lm_head = m->tok_emb;
    } else if (st_matrix(m, s, "lm_head.weight", c->vocab_size, D, &m->lm_head, err)) {
        return -1;
    }
    m->layers = gr_xcalloc((size_t)c->n_layers, sizeof *m->layers);
    for (int l = 0; l < c->n_layers; l++) {
        gr_layer *L = &m->layers[l];
        char nm[256];
#define P(suffix) (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix), nm)
        if (st_vector(m, s, P("input_layernorm.weight"), D, &L->attn_norm, err) ||
            st_vector(m, s, P("post_attention_layernorm.weight"), D, &L->ffn_norm, err) ||
            st_matrix(m, s, P("self_attn.q_proj.weight"), QD, D, &L->wq, err) ||
            st_matrix(m, s, P("self_attn.k_proj.weight"), KD, D, &L->wk, err) ||
            st_matrix(m, s, P("self_attn.v_proj.weight"), KD, D, &L->wv, err) ||
            st_matrix(m, s, P("self_attn.o_proj.weight"), D, QD, &L->wo, err) ||
            st_matrix(m, s, P("mlp.gate_proj.weight"), H, D, &L->w_gate, err) ||
            st_matrix(m, s, P("mlp.up_proj.weight"), H, D, &L->w_up, err) ||
            st_matrix(m, s, P("mlp.down_proj.weight"), D, H, &L->w_down, err))
            return -1;
#undef P
    }
    return 0;
}

/* ---- GGUF ------------------------------------------------------------------ */

static int gguf_cfg_int(const gguf_file *g, const char *key, int required, int *out,
                        const char *path, gr_err *err) {
    int64_t v;
    int r = gguf_get_int(g, key, &v, err);
    if (r < 0) return -1;
    if (r == 1) return required ? gr_errf(err, "%s: metadata '%s' is missing", path, key) : 0;
    if (v < 0 || v > (1 << 30)) return gr_errf(err, "%s: metadata '%s' out of range", path, key);
    *out = (int)v;
    return 0;
}

static int gguf_config(gr_model *m, const gguf_file *g, gr_err *err) {
    gr_model_config *c = &m->cfg;
    const char *arch = NULL;
    memset(c, 0, sizeof *c);
    if (gguf_get_str(g, "general.architecture", &arch, err) != 0 || strcmp(arch, "llama") != 0)
        return gr_errf(err, "%s: general.architecture is not 'llama'", m->path);
    if (gguf_cfg_int(g, "llama.embedding_length", 1, &c->dim, m->path, err) ||
        gguf_cfg_int(g, "llama.feed_forward_length", 1, &c->hidden_dim, m->path, err) ||
        gguf_cfg_int(g, "llama.block_count", 1, &c->n_layers, m->path, err) ||
        gguf_cfg_int(g, "llama.attention.head_count", 1, &c->n_heads, m->path, err))
        return -1;
    /* every layer has 9 tensors: a larger count is a lie (and would size allocations) */
    if ((uint64_t)c->n_layers * 9 > g->n_tensors)
        return gr_errf(err, "%s: llama.block_count %d but only %llu tensors", m->path, c->n_layers,
                       (unsigned long long)g->n_tensors);
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->n_heads ? c->dim / c->n_heads : 0;
    c->max_pos = 2048;
    c->bos_id = -1;
    if (gguf_cfg_int(g, "llama.attention.head_count_kv", 0, &c->n_kv_heads, m->path, err) ||
        gguf_cfg_int(g, "llama.attention.key_length", 0, &c->head_dim, m->path, err) ||
        gguf_cfg_int(g, "llama.context_length", 0, &c->max_pos, m->path, err) ||
        gguf_cfg_int(g, "tokenizer.ggml.bos_token_id", 0, &c->bos_id, m->path, err))
        return -1;
    double d = 1e-5;
    if (gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &d, err) < 0) return -1;
    c->norm_eps = (float)d;
    d = 10000.0;
    if (gguf_get_float(g, "llama.rope.freq_base", &d, err) < 0) return -1;
    c->rope_theta = (float)d;
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2) return gr_errf(err, "%s: token_embd.weight missing or not 2-D", m->path);
    c->vocab_size = (int)(emb->ne[1] > (1 << 24) ? 0 : emb->ne[1]);
    c->tie_embeddings = gguf_find_tensor(g, "output.weight") == NULL;
    /* end ids: eos and, when present, eot (llama 3's <|eot_id|>) */
    int ids[2] = {-1, -1};
    if (gguf_cfg_int(g, "tokenizer.ggml.eos_token_id", 0, &ids[0], m->path, err) ||
        gguf_cfg_int(g, "tokenizer.ggml.eot_token_id", 0, &ids[1], m->path, err))
        return -1;
    for (int i = 0; i < 2; i++)
        if (ids[i] >= 0 && (i == 0 || ids[1] != ids[0])) c->eos_ids[c->n_eos++] = ids[i];
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "gguf");
    return gr_config_check(c, m->path, err);
}

/* llama.cpp's converter reorders the rows of each q/k head from HF's half-split
 * RoPE layout to interleaved pairs: GGUF row 2i+j of a head is HF row j*hd/2+i.
 * Returns the HF row stored at GGUF row r. */
static int64_t unpermute_row(int64_t r, int hd) {
    int64_t h = r / hd, k = r % hd;
    int64_t i = k / 2, j = k % 2;
    return h * hd + j * (hd / 2) + i;
}

static int g_matrix(gr_model *m, const gguf_file *g, const char *name, int64_t rows, int64_t cols,
                    int permute_hd, gr_tensor *out, gr_err *err) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t) return gr_errf(err, "%s: tensor '%s' is missing", m->path, name);
    if (t->n_dims != 2 || (int64_t)t->ne[0] != cols || (int64_t)t->ne[1] != rows)
        return gr_errf(err, "%s: tensor '%s': shape [%lld, %lld] expected (ggml order)", m->path,
                       name, (long long)cols, (long long)rows);
    int direct = t->type == GGML_F32 || t->type == GGML_F16 || t->type == GGML_BF16 ||
                 t->type == GGML_Q8_0 || t->type == GGML_Q4_0 || t->type == GGML_Q4_1;
    out->rows = rows;
    out->cols = cols;
    if (direct) {
        out->type = (int)t->type;
        out->row_bytes = row_bytes_of(out->type, cols);
        int aligned = ggml_type_block(t->type) > 1 || (uintptr_t)t->data % (t->type == GGML_F32 ? 4 : 2) == 0;
        if (!permute_hd && aligned) {
            out->data = t->data;
            return 0;
        }
        uint8_t *p = own(m, (size_t)rows * out->row_bytes);
        for (int64_t r = 0; r < rows; r++) {
            int64_t dst = permute_hd ? unpermute_row(r, permute_hd) : r;
            memcpy(p + (size_t)dst * out->row_bytes, (const uint8_t *)t->data + (size_t)r * out->row_bytes,
                   out->row_bytes);
        }
        out->data = p;
        return 0;
    }
    /* Other quantized types: dequantize once to F32. */
    int64_t blk = ggml_type_block(t->type), bb = ggml_type_block_bytes(t->type);
    size_t src_row = (size_t)(cols / blk * bb);
    float *p = own(m, (size_t)rows * (size_t)cols * 4);
    for (int64_t r = 0; r < rows; r++) {
        int64_t dst = permute_hd ? unpermute_row(r, permute_hd) : r;
        if (gr_dequantize((int)t->type, (const uint8_t *)t->data + (size_t)r * src_row,
                          p + (size_t)dst * (size_t)cols, cols))
            return gr_errf(err, "%s: tensor '%s': type %s is not supported", m->path, name,
                           ggml_type_name(t->type));
    }
    out->type = GR_F32;
    out->row_bytes = (size_t)cols * 4;
    out->data = p;
    return 0;
}

static int g_vector(gr_model *m, const gguf_file *g, const char *name, int64_t n, const float **out,
                    gr_err *err) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t) return gr_errf(err, "%s: tensor '%s' is missing", m->path, name);
    if (t->n_dims != 1 || (int64_t)t->ne[0] != n)
        return gr_errf(err, "%s: tensor '%s': a vector of %lld expected", m->path, name, (long long)n);
    float *p = own(m, (size_t)n * 4);
    if (gr_dequantize((int)t->type, t->data, p, n))
        return gr_errf(err, "%s: tensor '%s': unsupported type %s", m->path, name,
                       ggml_type_name(t->type));
    *out = p;
    return 0;
}

static int load_gguf(gr_model *m, const char *path, gr_err *err) {
    gguf_file *g = gguf_open(path, err);
    if (!g) return -1;
    m->gguf = g;
    m->is_gguf = 1;
    if (gguf_config(m, g, err)) return -1;
    const gr_model_config *c = &m->cfg;
    int64_t D = c->dim, H = c->hidden_dim, QD = (int64_t)c->n_heads * c->head_dim,
            KD = (int64_t)c->n_kv_heads * c->head_dim;
    if (g_matrix(m, g, "token_embd.weight", c->vocab_size, D, 0, &m->tok_emb, err) ||
        g_vector(m, g, "output_norm.weight", D, &m->final_norm, err))
        return -1;
    if (c->tie_embeddings) m->lm_head = m->tok_emb;
    else if (g_matrix(m, g, "output.weight", c->vocab_size, D, 0, &m->lm_head, err)) return -1;
    m->layers = gr_xcalloc((size_t)c->n_layers, sizeof *m->layers);
    for (int l = 0; l < c->n_layers; l++) {
        gr_layer *L = &m->layers[l];
        char nm[256];
#define P(suffix) (snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix), nm)
        if (g_vector(m, g, P("attn_norm.weight"), D, &L->attn_norm, err) ||
            g_vector(m, g, P("ffn_norm.weight"), D, &L->ffn_norm, err) ||
            g_matrix(m, g, P("attn_q.weight"), QD, D, c->head_dim, &L->wq, err) ||
            g_matrix(m, g, P("attn_k.weight"), KD, D, c->head_dim, &L->wk, err) ||
            g_matrix(m, g, P("attn_v.weight"), KD, D, 0, &L->wv, err) ||
            g_matrix(m, g, P("attn_output.weight"), D, QD, 0, &L->wo, err) ||
            g_matrix(m, g, P("ffn_gate.weight"), H, D, 0, &L->w_gate, err) ||
            g_matrix(m, g, P("ffn_up.weight"), H, D, 0, &L->w_up, err) ||
            g_matrix(m, g, P("ffn_down.weight"), D, H, 0, &L->w_down, err))
            return -1;
#undef P
    }
    return 0;
}

gr_model *gr_model_load(const char *path, gr_err *err) {
    struct stat st;
    if (stat(path, &st) != 0) {
        gr_errf(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    gr_model *m = gr_xcalloc(1, sizeof *m);
    m->path = gr_xstrdup(path);
    int rc = S_ISDIR(st.st_mode) ? load_hf(m, path, err) : load_gguf(m, path, err);
    if (!rc) {
        const gr_model_config *c = &m->cfg;
        m->rope_inv = own(m, sizeof(float) * (size_t)(c->head_dim / 2));
        gr_rope_inv_freq(c, m->rope_inv);
        /* llama.cpp stores llama3 scaling as per-frequency divisors */
        if (m->gguf) {
            const gguf_tensor *rf = gguf_find_tensor(m->gguf, "rope_freqs.weight");
            if (rf) {
                if (rf->type != GGML_F32 || rf->n_dims != 1 || (int)rf->ne[0] != c->head_dim / 2) {
                    rc = gr_errf(err, "%s: rope_freqs.weight: F32 vector of %d expected", path,
                                 c->head_dim / 2);
                } else {
                    for (int i = 0; i < c->head_dim / 2; i++) {
                        float f;
                        memcpy(&f, (const uint8_t *)rf->data + 4 * i, 4);
                        m->rope_inv[i] /= f;
                    }
                }
            }
        }
    }
    if (!rc) rc = gr_model_check_finite(m, err);
    if (rc) {
        gr_model_free(m);
        return NULL;
    }
    return m;
}

void gr_model_free(gr_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned_; i++) free(m->owned_[i]);
    free(m->owned_);
    free(m->layers);
    st_set_close(m->st_);
    gguf_close(m->gguf);
    free(m->path);
    free(m);
}

int gr_model_is_eos(const gr_model *m, int token) {
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos_ids[i] == token) return 1;
    return 0;
}
