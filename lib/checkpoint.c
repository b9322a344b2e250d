#include "checkpoint.h"
#include "gr_io.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- atomic files ------------------------------------------------------------ */
typedef struct afile {
    FILE *f;
    char *path, *tmp;
    uint64_t fnv;
} afile;

static int afile_open(afile *a, const char *path, gr_err *err) {
    a->path = gr_xstrdup(path);
    size_t n = strlen(path) + 16;
    a->tmp = gr_xmalloc(n);
    snprintf(a->tmp, n, "%s.tmp", path);
    a->fnv = 0xcbf29ce484222325ULL;
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        gr_errf(err, "%s: %s", a->tmp, strerror(errno));
        free(a->path);
        free(a->tmp);
        return -1;
    }
    return 0;
}

/* FNV-1a over 8-byte little-endian words (bytes past a multiple of 8 one by
 * one): byte-wise FNV is too slow for gigabytes of optimizer state. */
static uint64_t fnv_update(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    for (; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static void afile_put(afile *a, const void *p, size_t n) {
    a->fnv = fnv_update(a->fnv, p, n);
    fwrite(p, 1, n, a->f);
}

static int afile_close(afile *a, gr_err *err) {
    int bad = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
    bad |= fclose(a->f) != 0;
    if (!bad && rename(a->tmp, a->path) != 0) bad = 1;
    int rc = 0;
    if (bad) {
        rc = gr_errf(err, "%s: write failed: %s", a->path, strerror(errno));
        unlink(a->tmp);
    }
    free(a->path);
    free(a->tmp);
    return rc;
}

static int write_text(const char *path, const char *s, gr_err *err) {
    afile a;
    if (afile_open(&a, path, err)) return -1;
    afile_put(&a, s, strlen(s));
    return afile_close(&a, err);
}

static int copy_file(const char *from, const char *to, gr_err *err) {
    FILE *f = fopen(from, "rb");
    if (!f) return gr_errf(err, "%s: %s", from, strerror(errno));
    afile a;
    if (afile_open(&a, to, err)) {
        fclose(f);
        return -1;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) afile_put(&a, buf, n);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        fclose(a.f);
        unlink(a.tmp);
        free(a.path);
        free(a.tmp);
        return gr_errf(err, "%s: read error", from);
    }
    return afile_close(&a, err);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- the HF folder ------------------------------------------------------------- */
static uint16_t f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0; /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                    /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static int write_safetensors(const char *path, const gr_train_model *m, int f32, gr_err *err) {
    gr_buf h = {0};
    gr_buf_putc(&h, '{');
    uint64_t off = 0;
    int es = f32 ? 4 : 2;
    for (int i = 0; i < m->n_tab; i++) {
        const gr_tparam *p = &m->tab[i];
        uint64_t n = (uint64_t)(p->rows * (p->cols ? p->cols : 1)) * (uint64_t)es;
        if (p->cols)
            gr_buf_printf(&h, "\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]},",
                          p->name, f32 ? "F32" : "BF16", (long long)p->rows, (long long)p->cols,
                          (unsigned long long)off, (unsigned long long)(off + n));
        else
            gr_buf_printf(&h, "\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]},",
                          p->name, f32 ? "F32" : "BF16", (long long)p->rows,
                          (unsigned long long)off, (unsigned long long)(off + n));
        off += n;
    }
    gr_buf_printf(&h, "\"__metadata__\":{\"format\":\"pt\"}}");
    while (h.len % 8) gr_buf_putc(&h, ' ');
    afile a;
    if (afile_open(&a, path, err)) {
        gr_buf_free(&h);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    afile_put(&a, len8, 8);
    afile_put(&a, h.data, h.len);
    gr_buf_free(&h);
    uint16_t buf[4096];
    float x[4096]; /* the master weights, fetched from the ops' memory in pieces */
    for (int i = 0; i < m->n_tab; i++) {
        const gr_tparam *p = &m->tab[i];
        int64_t n = p->rows * (p->cols ? p->cols : 1);
        for (int64_t j = 0; j < n; j += 4096) {
            int k = n - j < 4096 ? (int)(n - j) : 4096;
            gr_train_params_get(m, x, p->off + j, k);
            if (f32) {
                afile_put(&a, x, sizeof(float) * (size_t)k); /* little-endian hosts only */
                continue;
            }
            for (int q = 0; q < k; q++) buf[q] = f32_to_bf16(x[q]);
            afile_put(&a, buf, sizeof(uint16_t) * (size_t)k);
        }
    }
    return afile_close(&a, err);
}

static void put_eos(gr_buf *b, const gr_model_config *c) {
    if (c->n_eos == 1)
        gr_buf_printf(b, "%d", c->eos_ids[0]);
    else {
        gr_buf_putc(b, '[');
        for (int i = 0; i < c->n_eos; i++) gr_buf_printf(b, "%s%d", i ? "," : "", c->eos_ids[i]);
        gr_buf_putc(b, ']');
    }
}

static int write_config(const char *path, const gr_model_config *c, int f32, gr_err *err) {
    gr_buf b = {0};
    gr_buf_printf(&b,
                  "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n"
                  "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n"
                  "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n"
                  "  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": %.7g,\n"
                  "  \"rope_theta\": %.7g,\n",
                  c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
                  c->vocab_size, c->max_pos, (double)c->norm_eps, (double)c->rope_theta);
    if (c->rope_llama3)
        gr_buf_printf(&b,
                      "  \"rope_scaling\": {\"factor\": %.7g, \"low_freq_factor\": %.7g, "
                      "\"high_freq_factor\": %.7g, \"original_max_position_embeddings\": %d, "
                      "\"rope_type\": \"llama3\"},\n",
                      (double)c->rope_factor, (double)c->rope_low_freq, (double)c->rope_high_freq,
                      c->rope_orig_max);
    else
        gr_buf_printf(&b, "  \"rope_scaling\": null,\n");
    gr_buf_printf(&b,
                  "  \"tie_word_embeddings\": %s,\n  \"hidden_act\": \"silu\",\n"
                  "  \"attention_bias\": false,\n  \"attention_dropout\": 0.0,\n  \"mlp_bias\": false,\n"
                  "  \"pretraining_tp\": 1,\n  \"initializer_range\": 0.02,\n  \"use_cache\": true,\n",
                  c->tie_embeddings ? "true" : "false");
    if (c->bos_id >= 0) gr_buf_printf(&b, "  \"bos_token_id\": %d,\n", c->bos_id);
    if (c->n_eos > 0) {
        gr_buf_printf(&b, "  \"eos_token_id\": ");
        put_eos(&b, c);
        gr_buf_printf(&b, ",\n");
    }
    gr_buf_printf(&b, "  \"torch_dtype\": \"%s\"\n}\n", f32 ? "float32" : "bfloat16");
    int rc = write_text(path, gr_buf_cstr(&b), err);
    gr_buf_free(&b);
    return rc;
}

static const char *TOKENIZER_FILES[] = {"tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "tokenizer.model",
                                        "chat_template.jinja", NULL};

int gr_hf_write(const char *dir, const gr_train_model *m, const char *base, int f32,
                gr_err *err) {
    char p[4096], q[4096];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (write_safetensors(p, m, f32, err)) return -1;
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (write_config(p, &m->cfg, f32, err)) return -1;
    int base_dir = base && is_dir(base);
    snprintf(p, sizeof p, "%s/generation_config.json", dir);
    snprintf(q, sizeof q, "%s/generation_config.json", base_dir ? base : "");
    if (base_dir && is_file(q)) {
        if (copy_file(q, p, err)) return -1;
    } else {
        gr_buf b = {0};
        gr_buf_printf(&b, "{\n  \"_from_model_config\": true");
        if (m->cfg.bos_id >= 0) gr_buf_printf(&b, ",\n  \"bos_token_id\": %d", m->cfg.bos_id);
        if (m->cfg.n_eos > 0) {
            gr_buf_printf(&b, ",\n  \"eos_token_id\": ");
            put_eos(&b, &m->cfg);
        }
        gr_buf_printf(&b, "\n}\n");
        int rc = write_text(p, gr_buf_cstr(&b), err);
        gr_buf_free(&b);
        if (rc) return -1;
    }
    for (int i = 0; base_dir && TOKENIZER_FILES[i]; i++) {
        snprintf(q, sizeof q, "%s/%s", base, TOKENIZER_FILES[i]);
        snprintf(p, sizeof p, "%s/%s", dir, TOKENIZER_FILES[i]);
        if (is_file(q) && copy_file(q, p, err)) return -1;
    }
    return 0;
}

/* ---- trainer state ------------------------------------------------------------ */
static const char MAGIC[8] = {'G', 'R', 'T', 'R', 'A', 'I', 'N', 0};
enum { STATE_VERSION = 1, STATE_HEADER = 11 * 8, STATE_HEADER_OLD = 10 * 8 };

static void put_u64(unsigned char *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

/* n bytes of the ops' memory at p (host memory when o is NULL), in pieces */
static void afile_put_ops(afile *a, const gr_train_ops *o, gr_backend *be, const void *p, size_t n) {
    if (!o || !o->download) {
        afile_put(a, p, n);
        return;
    }
    enum { PIECE = 1 << 22 };
    unsigned char *buf = gr_xmalloc(PIECE);
    for (size_t i = 0; i < n; i += PIECE) {
        size_t k = n - i < PIECE ? n - i : PIECE;
        gr_tops_get(o, be, buf, (const unsigned char *)p + i, k);
        afile_put(a, buf, k);
    }
    free(buf);
}

static int state_write(const char *path, const gr_train_state *s, const gr_train_ops *o,
                       gr_backend *be, gr_err *err) {
    afile a;
    if (afile_open(&a, path, err)) return -1;
    unsigned char h[16 + STATE_HEADER];
    memcpy(h, MAGIC, 8);
    uint32_t ver = STATE_VERSION, hl = STATE_HEADER;
    for (int i = 0; i < 4; i++) h[8 + i] = (unsigned char)(ver >> (8 * i));
    for (int i = 0; i < 4; i++) h[12 + i] = (unsigned char)(hl >> (8 * i));
    uint64_t lr;
    memcpy(&lr, &s->lr, 8);
    uint64_t f[11] = {s->step, s->seed, s->n_examples, s->micro_batch, s->grad_accum, s->epochs,
                      s->T, s->adam_t, (uint64_t)s->n_params, lr, s->precision};
    for (int i = 0; i < 11; i++) put_u64(h + 16 + 8 * i, f[i]);
    afile_put(&a, h, sizeof h);
    afile_put_ops(&a, o, be, s->params, sizeof(float) * (size_t)s->n_params);
    afile_put_ops(&a, o, be, s->m, sizeof(float) * (size_t)s->n_params);
    afile_put_ops(&a, o, be, s->v, sizeof(float) * (size_t)s->n_params);
    unsigned char sum[8];
    put_u64(sum, a.fnv);
    afile_put(&a, sum, 8);
    return afile_close(&a, err);
}

int gr_state_write(const char *path, const gr_train_state *s, gr_err *err) {
    return state_write(path, s, NULL, NULL, err);
}

int gr_state_read(const char *path, gr_train_state *s, gr_err *err) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) return gr_errf(err, "%s: %s", path, strerror(errno));
    unsigned char h[16 + STATE_HEADER];
    uint64_t fnv = 0xcbf29ce484222325ULL;
#define HASH(p, n) (fnv = fnv_update(fnv, (p), (n)))
    if (fread(h, 1, 16 + STATE_HEADER_OLD, f) != 16 + STATE_HEADER_OLD || memcmp(h, MAGIC, 8) != 0) {
        fclose(f);
        return gr_errf(err, "%s: not a gr training state (bad magic or too short)", path);
    }
    uint32_t ver = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
    uint32_t hl = (uint32_t)h[12] | (uint32_t)h[13] << 8 | (uint32_t)h[14] << 16 | (uint32_t)h[15] << 24;
    /* the 10-field header (before the precision field) is still read: fp32 */
    if (ver == STATE_VERSION && hl == STATE_HEADER &&
        fread(h + 16 + STATE_HEADER_OLD, 1, 8, f) != 8) {
        fclose(f);
        return gr_errf(err, "%s: not a gr training state (too short)", path);
    }
    if (ver != STATE_VERSION || (hl != STATE_HEADER && hl != STATE_HEADER_OLD)) {
        fclose(f);
        return gr_errf(err, "%s: training state version %u (header %u) not supported (want %d)",
                       path, ver, hl, STATE_VERSION);
    }
    HASH(h, 16 + hl);
    uint64_t v[11] = {0};
    for (int i = 0; i < (int)hl / 8; i++) v[i] = get_u64(h + 16 + 8 * i);
    s->precision = v[10];
    if (s->precision > 1) {
        fclose(f);
        return gr_errf(err, "%s: corrupt training state (precision %llu)", path, (unsigned long long)v[10]);
    }
    s->step = v[0]; s->seed = v[1]; s->n_examples = v[2]; s->micro_batch = v[3];
    s->grad_accum = v[4]; s->epochs = v[5]; s->T = v[6]; s->adam_t = v[7];
    memcpy(&s->lr, &v[9], 8);
    /* the file's size must be what the header promises, before any allocation */
    struct stat fs;
    uint64_t want = (uint64_t)(16 + hl) + 12 * v[8] + 8;
    if (v[8] == 0 || v[8] > ((uint64_t)1 << 40) || fstat(fileno(f), &fs) != 0 ||
        (uint64_t)fs.st_size != want) {
        fclose(f);
        return gr_errf(err, "%s: truncated or corrupt training state (%llu parameters in the header, "
                       "file size does not match)", path, (unsigned long long)v[8]);
    }
    s->n_params = (int64_t)v[8];
    size_t n = (size_t)s->n_params;
    s->params = gr_xmalloc(sizeof(float) * n);
    s->m = gr_xmalloc(sizeof(float) * n);
    s->v = gr_xmalloc(sizeof(float) * n);
    unsigned char sum[8];
    int ok = fread(s->params, sizeof(float), n, f) == n && fread(s->m, sizeof(float), n, f) == n &&
             fread(s->v, sizeof(float), n, f) == n && fread(sum, 1, 8, f) == 8 && fgetc(f) == EOF;
    fclose(f);
    if (ok) {
        HASH(s->params, sizeof(float) * n);
        HASH(s->m, sizeof(float) * n);
        HASH(s->v, sizeof(float) * n);
        ok = get_u64(sum) == fnv;
    }
#undef HASH
    if (!ok) {
        gr_state_free(s);
        return gr_errf(err, "%s: truncated or corrupt training state (size or checksum)", path);
    }
    return 0;
}

void gr_state_free(gr_train_state *s) {
    free(s->params);
    free(s->m);
    free(s->v);
    s->params = s->m = s->v = NULL;
}

/* ---- checkpoint folders --------------------------------------------------------- */
static void remove_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int gr_checkpoint_save(const char *out, const gr_train_model *m, const char *base, int f32,
                       const gr_train_state *s, gr_err *err) {
    char tmp[4096], fin[4096], old[4096], p[4200];
    snprintf(tmp, sizeof tmp, "%s/.checkpoint-%llu.tmp", out, (unsigned long long)s->step);
    snprintf(fin, sizeof fin, "%s/checkpoint-%llu", out, (unsigned long long)s->step);
    snprintf(old, sizeof old, "%s/.checkpoint-%llu.old", out, (unsigned long long)s->step);
    remove_flat_dir(tmp);
    if (mkdir(tmp, 0777) != 0) return gr_errf(err, "%s: %s", tmp, strerror(errno));
    if (gr_hf_write(tmp, m, base, f32, err)) return -1;
    snprintf(p, sizeof p, "%s/trainer_state.bin", tmp);
    /* params, m and v are in the model's op memory */
    if (state_write(p, s, m->ops, m->be, err)) return -1;
    if (is_dir(fin)) {
        remove_flat_dir(old);
        if (rename(fin, old) != 0) return gr_errf(err, "%s: %s", fin, strerror(errno));
    }
    if (rename(tmp, fin) != 0) return gr_errf(err, "%s: %s", fin, strerror(errno));
    remove_flat_dir(old);
    return 0;
}

int gr_checkpoint_latest(const char *out, uint64_t *step, char *path, size_t path_n, gr_err *err) {
    *step = 0;
    if (path_n) path[0] = 0;
    DIR *d = opendir(out);
    if (!d) {
        if (errno == ENOENT) return 0;
        return gr_errf(err, "%s: %s", out, strerror(errno));
    }
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strncmp(nm, "checkpoint-", 11) != 0 || !nm[11]) continue;
        char *end;
        errno = 0;
        unsigned long long k = strtoull(nm + 11, &end, 10);
        if (*end || errno || nm[11] < '0' || nm[11] > '9') continue;
        snprintf(p, sizeof p, "%s/%s/trainer_state.bin", out, nm);
        if (!is_file(p) || k <= *step) continue;
        *step = k;
        snprintf(path, path_n, "%s/%s", out, nm);
    }
    closedir(d);
    return 0;
}
