/* Loads a tiktoken rank file: one "BASE64 RANK" line per token, the rank being
 * the id. As Meta ships LLaMA 3's tokenizer.model, the 256 special tokens are
 * not in the file; when it holds exactly LLaMA 3's 128000 ranks they are
 * appended from id 128000 in llama-models' order (the LLaMA 3.1 list), and the
 * LLaMA 3 pattern is the pre-tokenizer. Other rank files get the GPT-2 one. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "tok_internal.h"

static int b64val(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes standard base64 (with '=' padding) into out; -1 if malformed. */
static long b64_decode(const char *s, size_t n, unsigned char *out, size_t cap) {
    size_t o = 0;
    if (n % 4) return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) { v[k] = 0; pad++; continue; }
            if (pad) return -1;
            v[k] = b64val((unsigned char)s[i + k]);
            if (v[k] < 0) return -1;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        unsigned char b[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8), (unsigned char)w};
        for (int k = 0; k < 3 - pad; k++) {
            if (o >= cap) return -1;
            out[o++] = b[k];
        }
    }
    return (long)o;
}

static const char *const LLAMA3_SPECIAL[11] = {
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
};

#define MAX_RANK 4000000L /* the largest vocabularies have ~256k */

gr_tokenizer *tok_load_tiktoken(const char *path, const char *data, size_t n, gr_err *err) {
    /* first pass: count lines and the largest rank */
    long max_rank = -1, lines = 0;
    size_t i = 0;
    unsigned char bytes[1024];
    while (i < n) {
        size_t e = i;
        while (e < n && data[e] != '\n') e++;
        size_t le = e;
        if (le > i && data[le - 1] == '\r') le--;
        lines++;
        if (le > i) {
            const char *sp = memchr(data + i, ' ', le - i);
            if (!sp) return (gr_errf(err, "%s:%ld: expected \"BASE64 RANK\"", path, lines), NULL);
            char *end;
            long r = strtol(sp + 1, &end, 10);
            if (end != data + le || r < 0 || r > MAX_RANK || sp + 1 == end)
                return (gr_errf(err, "%s:%ld: bad rank", path, lines), NULL);
            if (r > max_rank) max_rank = r;
        }
        i = e + 1;
    }
    if (max_rank < 255) return (gr_errf(err, "%s: not a tiktoken rank file (too few ranks)", path), NULL);
    int llama3 = max_rank == 127999;
    size_t n_vocab = (size_t)max_rank + 1 + (llama3 ? 256 : 0);
    gr_tokenizer *t = tok_new(n_vocab);
    i = 0;
    lines = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && data[e] != '\n') e++;
        size_t le = e;
        if (le > i && data[le - 1] == '\r') le--;
        lines++;
        if (le > i) {
            const char *sp = memchr(data + i, ' ', le - i);
            long r = strtol(sp + 1, NULL, 10);
            long k = b64_decode(data + i, (size_t)(sp - (data + i)), bytes, sizeof bytes);
            if (k <= 0) {
                gr_tokenizer_free(t);
                return (gr_errf(err, "%s:%ld: bad base64 token", path, lines), NULL);
            }
            if (t->off[r] != UINT64_MAX) {
                gr_tokenizer_free(t);
                return (gr_errf(err, "%s:%ld: rank %ld given twice", path, lines, r), NULL);
            }
            tok_set_token(t, (int32_t)r, bytes, (size_t)k);
            t->in_bpe[r] = 1;
        }
        i = e + 1;
    }
    if (llama3) {
        char name[64];
        for (int k = 0; k < 256; k++) {
            const char *s = name;
            if (k < 11) s = LLAMA3_SPECIAL[k];
            else snprintf(name, sizeof name, "<|reserved_special_token_%d|>", k - 8);
            tok_set_token(t, 128000 + k, s, strlen(s));
            tok_add_added(t, 128000 + k, s, strlen(s), 1, 0, 0);
        }
        t->bos = 128000;
        t->eos = 128001;
        t->adds_bos = 1;
        t->ignore_merges = 1; /* tiktoken: a piece that is a token is that token */
        tok_set_pre_named(t, "llama3");
    } else {
        t->ignore_merges = 1;
        tok_set_pre_named(t, "gpt2");
    }
    if (tok_finish(t, path, err)) { gr_tokenizer_free(t); return NULL; }
    tok_merges_from_ranks(t);
    return t;
}
