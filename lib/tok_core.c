/* The tokenizer object: construction helpers, encode (with and without
 * added-token recognition), lookups, and gr_tokenizer_load's dispatch. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include "tok_internal.h"
#include "gguf.h"

void gr_ids_push(gr_ids *a, int32_t id) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = gr_xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = id;
}

void gr_ids_append(gr_ids *a, const int32_t *ids, size_t n) {
    if (a->n + n > a->cap) {
        while (a->n + n > a->cap) a->cap = a->cap ? a->cap * 2 : 64;
        a->v = gr_xrealloc(a->v, a->cap * sizeof *a->v);
    }
    if (n) memcpy(a->v + a->n, ids, n * sizeof *ids);
    a->n += n;
}

void gr_ids_free(gr_ids *a) {
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

gr_tokenizer *tok_new(size_t n_vocab) {
    gr_tokenizer *t = gr_xcalloc(1, sizeof *t);
    t->n_vocab = n_vocab;
    t->off = gr_xmalloc((n_vocab ? n_vocab : 1) * sizeof *t->off);
    for (size_t i = 0; i < n_vocab; i++) t->off[i] = UINT64_MAX;
    t->len = gr_xcalloc(n_vocab ? n_vocab : 1, sizeof *t->len);
    t->special = gr_xcalloc(n_vocab ? n_vocab : 1, 1);
    t->in_bpe = gr_xcalloc(n_vocab ? n_vocab : 1, 1);
    t->bos = t->eos = -1;
    return t;
}

void tok_set_token(gr_tokenizer *t, int32_t id, const void *bytes, size_t len) {
    if (t->arena_len + len > t->arena_cap) {
        while (t->arena_len + len > t->arena_cap) t->arena_cap = t->arena_cap ? t->arena_cap * 2 : 1 << 16;
        t->arena = gr_xrealloc(t->arena, t->arena_cap);
    }
    if (len) memcpy(t->arena + t->arena_len, bytes, len);
    t->off[id] = t->arena_len;
    t->len[id] = (uint32_t)len;
    t->arena_len += len;
}

void tok_add_added(gr_tokenizer *t, int32_t id, const char *content, size_t len,
                   int special, int lstrip, int rstrip) {
    t->added = gr_xrealloc(t->added, (t->n_added + 1) * sizeof *t->added);
    tok_added *a = &t->added[t->n_added++];
    a->id = id;
    a->content = gr_xstrndup(content, len);
    a->len = len;
    a->special = special;
    a->lstrip = lstrip;
    a->rstrip = rstrip;
    a->single_word = 0;
    if (special && id >= 0 && (size_t)id < t->n_vocab) t->special[id] = 1;
}

void tok_added_single_word(gr_tokenizer *t) {
    if (t->n_added) t->added[t->n_added - 1].single_word = 1;
}

static int added_cmp(const void *x, const void *y) {
    const tok_added *a = x, *b = y;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

void tok_build_vocab_map(gr_tokenizer *t);

int tok_finish(gr_tokenizer *t, const char *src, gr_err *err) {
    tok_build_vocab_map(t);
    /* A byte without a token is dropped by BPE, as Hugging Face tokenizers
     * drops it when the model has no unk_token (SmolLM2 lacks a few control
     * bytes and bytes that never occur in UTF-8). At least the ASCII letters
     * must be there, or this is not a byte-level vocabulary. */
    int have = 0;
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        t->byte_id[b] = tok_vocab_find(t, &c, 1);
        have += t->byte_id[b] >= 0 && ((b | 0x20) >= 'a' && (b | 0x20) <= 'z');
    }
    if (have < 52) return gr_errf(err, "%s: not a byte-level vocabulary (no single-byte letters)", src);
    if (t->n_added) qsort(t->added, t->n_added, sizeof *t->added, added_cmp);
    return 0;
}

/* ---- encode ---------------------------------------------------------------- */
static void piece_cb(const unsigned char *s, size_t a, size_t b, void *ctx) {
    struct { const gr_tokenizer *t; gr_ids *out; } *c = ctx;
    tok_bpe_piece(c->t, s + a, b - a, c->out);
}

static void encode_plain(const gr_tokenizer *t, const unsigned char *s, size_t n, gr_ids *out) {
    struct { const gr_tokenizer *t; gr_ids *out; } c = {t, out};
    tok_pretokenize(t, s, n, piece_cb, &c);
}

/* The start of the character that ends at a (a > 0), its class and code point. */
static size_t prev_char(const unsigned char *s, size_t len, size_t a, int *cls, uint32_t *cp) {
    size_t k = a - 1;
    while (k > 0 && a - k < 4 && (s[k] & 0xC0) == 0x80) k--;
    if ((size_t)tok_next_char(s, len, k, cls, cp) != a - k) {
        k = a - 1; /* an invalid byte is a character of its own */
        tok_next_char(s, len, k, cls, cp);
    }
    return k;
}

/* A word character for single_word: a letter, a number or '_'. */
static int word_char(int cls, uint32_t cp) { return cls == TOK_C_L || cls == TOK_C_N || cp == '_'; }

/* 1 when s[a..b) is not preceded or followed by a word character. */
static int word_bounded(const unsigned char *s, size_t len, size_t a, size_t b) {
    int cls;
    uint32_t cp;
    if (b < len) {
        tok_next_char(s, len, b, &cls, &cp);
        if (word_char(cls, cp)) return 0;
    }
    if (a > 0) {
        prev_char(s, len, a, &cls, &cp);
        if (word_char(cls, cp)) return 0;
    }
    return 1;
}

/* Splits text on added tokens (special ones only when `specials`), longest
 * match first at the leftmost position, and encodes the text between. */
static int encode_split(const gr_tokenizer *t, const char *text, size_t len, int specials,
                        gr_ids *out) {
    const unsigned char *s = (const unsigned char *)text;
    size_t n_cand = 0;
    for (size_t k = 0; k < t->n_added; k++)
        if (t->added[k].len && (specials || !t->added[k].special)) n_cand++;
    if (!n_cand) { encode_plain(t, s, len, out); return 0; }
    uint8_t first[256] = {0};
    for (size_t k = 0; k < t->n_added; k++)
        if (t->added[k].len && (specials || !t->added[k].special))
            first[(unsigned char)t->added[k].content[0]] = 1;
    size_t start = 0, i = 0;
    while (i < len) {
        const tok_added *hit = NULL;
        if (first[s[i]]) {
            for (size_t k = 0; k < t->n_added; k++) {
                const tok_added *a = &t->added[k];
                if (!a->len || (!specials && a->special)) continue;
                if (a->len <= len - i && memcmp(s + i, a->content, a->len) == 0 &&
                    (!a->single_word || word_bounded(s, len, i, i + a->len))) { hit = a; break; }
            }
        }
        if (!hit) { i++; continue; }
        size_t seg_end = i, next = i + hit->len;
        /* lstrip / rstrip: the token takes the whitespace beside it */
        int cls;
        uint32_t cp;
        if (hit->lstrip)
            while (seg_end > start) {
                size_t k = prev_char(s, len, seg_end, &cls, &cp);
                if (cls != TOK_C_S || k < start) break;
                seg_end = k;
            }
        if (hit->rstrip)
            while (next < len) {
                int l = tok_next_char(s, len, next, &cls, &cp);
                if (cls != TOK_C_S) break;
                next += (size_t)l;
            }
        encode_plain(t, s + start, seg_end - start, out);
        gr_ids_push(out, hit->id);
        start = i = next;
    }
    encode_plain(t, s + start, len - start, out);
    return 0;
}

int gr_tokenizer_encode(const gr_tokenizer *t, const char *text, size_t len, gr_ids *out,
                        gr_err *err) {
    (void)err;
    return encode_split(t, text, len, 0, out);
}

int gr_tokenizer_encode_special(const gr_tokenizer *t, const char *text, size_t len,
                                gr_ids *out, gr_err *err) {
    (void)err;
    return encode_split(t, text, len, 1, out);
}

/* ---- lookups ----------------------------------------------------------------- */
int32_t gr_tokenizer_token_id(const gr_tokenizer *t, const char *s) {
    size_t n = strlen(s);
    for (size_t k = 0; k < t->n_added; k++)
        if (t->added[k].len == n && memcmp(t->added[k].content, s, n) == 0) return t->added[k].id;
    return tok_vocab_find(t, s, n);
}

int32_t gr_tokenizer_bos(const gr_tokenizer *t) { return t->bos; }
int32_t gr_tokenizer_eos(const gr_tokenizer *t) { return t->eos; }
int gr_tokenizer_adds_bos(const gr_tokenizer *t) { return t->adds_bos && t->bos >= 0; }
size_t gr_tokenizer_vocab_size(const gr_tokenizer *t) { return t->n_vocab; }
const char *gr_tokenizer_pretok_name(const gr_tokenizer *t) { return t->pre_name; }

const char *gr_tokenizer_token_bytes(const gr_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= t->n_vocab || t->off[id] == UINT64_MAX) return NULL;
    *len = t->len[id];
    return t->arena + t->off[id];
}

int gr_tokenizer_is_special(const gr_tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->n_vocab && t->special[id];
}

void gr_tokenizer_free(gr_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_pre; i++) tok_pre_free(&t->pre[i]);
    for (size_t k = 0; k < t->n_added; k++) free(t->added[k].content);
    free(t->added);
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->special);
    free(t->in_bpe);
    free(t->vocab.slot);
    free(t->merges.slot);
    free(t);
}

/* ---- pre-tokenizer set-up ------------------------------------------------- */
static const char LLAMA3_PAT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT2_PAT[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static void pre_push(gr_tokenizer *t, tok_pre_kind kind, int individual, void *onig) {
    tok_pre *p = &t->pre[t->n_pre++];
    p->kind = kind;
    p->individual = individual;
    p->onig = onig;
}

int tok_set_pre_named(gr_tokenizer *t, const char *name) {
    t->n_pre = 0;
    if (!strcmp(name, "llama3") || !strcmp(name, "llama-bpe") || !strcmp(name, "llama-v3")) {
        pre_push(t, TOK_PRE_LLAMA3, 0, NULL);
        snprintf(t->pre_name, sizeof t->pre_name, "llama3");
    } else if (!strcmp(name, "gpt2") || !strcmp(name, "gpt-2") || !strcmp(name, "default")) {
        pre_push(t, TOK_PRE_GPT2, 0, NULL);
        snprintf(t->pre_name, sizeof t->pre_name, "gpt2");
    } else if (!strcmp(name, "smollm")) {
        /* llama.cpp's smollm: each \p{N} alone, then the GPT-2 pattern (the
         * Hub's SmolLM2 tokenizer.json: Digits(individual) + ByteLevel) */
        pre_push(t, TOK_PRE_DIGITS, 1, NULL);
        pre_push(t, TOK_PRE_GPT2, 0, NULL);
        snprintf(t->pre_name, sizeof t->pre_name, "smollm");
    } else {
        return -1;
    }
    return 0;
}

#include <oniguruma.h>
#include <pthread.h>
static pthread_once_t onig_once = PTHREAD_ONCE_INIT;
static void tok_onig_init(void) {
    OnigEncoding enc = ONIG_ENCODING_UTF8;
    onig_initialize(&enc, 1);
}

int tok_add_pre_regex(gr_tokenizer *t, const char *pattern, gr_err *err, const char *src) {
    if (t->n_pre >= TOK_MAX_PRE) return gr_errf(err, "%s: too many pre-tokenizers", src);
    if (!strcmp(pattern, LLAMA3_PAT)) { pre_push(t, TOK_PRE_LLAMA3, 0, NULL); return 0; }
    if (!strcmp(pattern, GPT2_PAT)) { pre_push(t, TOK_PRE_GPT2, 0, NULL); return 0; }
    pthread_once(&onig_once, tok_onig_init);
    OnigRegex re;
    OnigErrorInfo einfo;
    const unsigned char *p = (const unsigned char *)pattern;
    int r = onig_new(&re, p, p + strlen(pattern), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                     ONIG_SYNTAX_RUBY, &einfo);
    if (r != ONIG_NORMAL) {
        unsigned char msg[ONIG_MAX_ERROR_MESSAGE_LEN];
        onig_error_code_to_str(msg, r, &einfo);
        return gr_errf(err, "%s: pre-tokenizer pattern does not compile: %s", src, msg);
    }
    pre_push(t, TOK_PRE_REGEX, 0, re);
    return 0;
}

/* ---- loading ------------------------------------------------------------- */
#include <zstd.h>
char *tok_read_file(const char *path, size_t *n, gr_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return (gr_errf(err, "%s: cannot open", path), NULL);
    gr_buf b = {0};
    char tmp[1 << 16];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) gr_buf_append(&b, tmp, k);
    int bad = ferror(f);
    fclose(f);
    if (bad) { gr_buf_free(&b); return (gr_errf(err, "%s: read error", path), NULL); }
    if (b.len >= 4 && (unsigned char)b.data[0] == 0x28 && (unsigned char)b.data[1] == 0xB5 &&
        (unsigned char)b.data[2] == 0x2F && (unsigned char)b.data[3] == 0xFD) {
        ZSTD_DStream *z = ZSTD_createDStream();
        gr_buf o = {0};
        ZSTD_inBuffer in = {b.data, b.len, 0};
        size_t r = 0;
        while (in.pos < in.size) {
            gr_buf_reserve(&o, 1 << 20);
            ZSTD_outBuffer out = {o.data + o.len, o.cap - o.len, 0};
            r = ZSTD_decompressStream(z, &out, &in);
            if (ZSTD_isError(r)) break;
            o.len += out.pos;
            if (o.len > ((size_t)1 << 31)) { r = (size_t)-1; break; }
        }
        ZSTD_freeDStream(z);
        gr_buf_free(&b);
        if (ZSTD_isError(r) || r != 0) {
            gr_buf_free(&o);
            return (gr_errf(err, "%s: corrupt or truncated zstd data", path), NULL);
        }
        b = o;
    }
    gr_buf_putc(&b, 0);
    b.len--;
    *n = b.len;
    return b.data;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

gr_tokenizer *gr_tokenizer_load(const char *path, gr_err *err) {
    char buf[4096];
    const char *file = path;
    if (is_dir(path)) {
        snprintf(buf, sizeof buf, "%s/tokenizer.json", path);
        FILE *f = fopen(buf, "rb");
        if (!f) snprintf(buf, sizeof buf, "%s/tokenizer.model", path);
        else fclose(f);
        file = buf;
    }
    FILE *f = fopen(file, "rb");
    if (!f) return (gr_errf(err, "%s: cannot open", file), NULL);
    unsigned char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && !memcmp(magic, "GGUF", 4)) return tok_load_gguf(file, err);
    size_t n;
    char *data = tok_read_file(file, &n, err);
    if (!data) return NULL;
    size_t i = 0;
    while (i < n && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t')) i++;
    gr_tokenizer *t;
    if (n >= 4 && !memcmp(data, "GGUF", 4)) {
        /* a zstd-compressed GGUF (vocabulary-only fixtures) */
        gguf_file *g = gguf_open_mem(data, n, file, err);
        t = g ? tok_from_gguf(g, file, err) : NULL;
        if (g) gguf_close(g);
    } else if (i < n && data[i] == '{') {
        /* tokenizer_config.json beside the file */
        char cfg[4096];
        const char *slash = strrchr(file, '/');
        if (slash) snprintf(cfg, sizeof cfg, "%.*s/tokenizer_config.json", (int)(slash - file), file);
        else snprintf(cfg, sizeof cfg, "tokenizer_config.json");
        t = tok_load_hf_json(file, data, n, cfg, err);
    } else {
        t = tok_load_tiktoken(file, data, n, err);
    }
    free(data);
    return t;
}
