/* Loads the tokenizer embedded in a GGUF file (tokenizer.ggml.* keys), read
 * through the container parser of gguf.h. Model "gpt2" (byte-level BPE) only:
 * tokens are in GPT-2's byte-level form, merges are "a b" strings ranked by
 * position, token_type 3 (control) marks special tokens and 4 (user-defined)
 * added ones; the pre-tokenizer is named by tokenizer.ggml.pre as llama.cpp
 * names them ("llama-bpe", "smollm", "gpt-2", ...). */
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"
#include "gguf.h"

enum { GGUF_TOK_NORMAL = 1, GGUF_TOK_UNKNOWN = 2, GGUF_TOK_CONTROL = 3, GGUF_TOK_USER = 4,
       GGUF_TOK_UNUSED = 5, GGUF_TOK_BYTE = 6 };

gr_tokenizer *tok_load_gguf(const char *path, gr_err *err) {
    gguf_file *f = gguf_open(path, err);
    if (!f) return NULL;
    gr_tokenizer *t = tok_from_gguf(f, path, err);
    gguf_close(f);
    return t;
}

gr_tokenizer *tok_from_gguf(const gguf_file *f, const char *path, gr_err *err) {
    gr_tokenizer *t = NULL;
    char *buf = NULL, *buf2 = NULL;
    const char *model = NULL, *pre = "default";
    const gguf_kv *tokens = NULL, *types = NULL, *merges = NULL;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model, err) < 0) goto fail;
    if (!model) { gr_errf(err, "%s: no tokenizer.ggml.model", path); goto fail; }
    if (strcmp(model, "gpt2")) {
        gr_errf(err, "%s: tokenizer model \"%s\" is not supported (only byte-level BPE, \"gpt2\")", path, model);
        goto fail;
    }
    if (gguf_get_str(f, "tokenizer.ggml.pre", &pre, err) < 0) goto fail;
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_T_STRING, &tokens, err)) {
        if (!err->msg[0] || !tokens) gr_errf(err, "%s: no tokenizer.ggml.tokens", path);
        goto fail;
    }
    if (gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_T_INT64, &types, err) < 0) goto fail;
    if (gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_T_STRING, &merges, err) < 0) goto fail;
    if (types && types->arr_n != tokens->arr_n) {
        gr_errf(err, "%s: token_type has %llu entries for %llu tokens", path,
                (unsigned long long)types->arr_n, (unsigned long long)tokens->arr_n);
        goto fail;
    }
    if (tokens->arr_n == 0 || tokens->arr_n > 4000000) { gr_errf(err, "%s: bad token count", path); goto fail; }
    size_t nv = (size_t)tokens->arr_n, cap = 0, cap2 = 0;
    t = tok_new(nv);
    for (size_t id = 0; id < nv; id++) {
        const gguf_str *s = &tokens->arr_str[id];
        int64_t ty = types ? gguf_arr_int(types, id) : GGUF_TOK_NORMAL;
        if (ty == GGUF_TOK_CONTROL || ty == GGUF_TOK_USER) {
            /* added tokens are stored as their text */
            tok_set_token(t, (int32_t)id, s->s, (size_t)s->len);
            tok_add_added(t, (int32_t)id, s->s, (size_t)s->len, ty == GGUF_TOK_CONTROL, 0, 0);
            /* a control token is also in the BPE vocabulary of tokenizer.json
             * files (SmolLM2's); keep it reachable the same way */
            t->in_bpe[id] = 1;
            continue;
        }
        if (s->len * 2 + 4 > cap) { cap = (size_t)s->len * 2 + 4; buf = gr_xrealloc(buf, cap); }
        size_t blen;
        if (tok_bytelevel_decode(s->s, (size_t)s->len, buf, &blen)) {
            gr_errf(err, "%s: token %zu is not in byte-level form", path, id);
            goto fail;
        }
        tok_set_token(t, (int32_t)id, buf, blen);
        t->in_bpe[id] = 1;
    }
    if (tok_set_pre_named(t, pre)) {
        gr_errf(err, "%s: pre-tokenizer \"%s\" is not supported (llama-bpe, smollm, gpt-2)", path, pre);
        goto fail;
    }
    /* llama.cpp: the LLaMA 3 pre-tokenizer comes with ignore_merges (a piece
     * that is a whole token is that token), as LLaMA 3's tokenizer.json says */
    t->ignore_merges = !strcmp(t->pre_name, "llama3");
    int64_t v;
    if (gguf_get_int(f, "tokenizer.ggml.bos_token_id", &v, err) < 0) goto fail;
    t->bos = -1;
    if (!gguf_get_int(f, "tokenizer.ggml.bos_token_id", &v, err) && v >= 0 && (size_t)v < nv) t->bos = (int32_t)v;
    if (!gguf_get_int(f, "tokenizer.ggml.eos_token_id", &v, err) && v >= 0 && (size_t)v < nv) t->eos = (int32_t)v;
    t->adds_bos = 0;
    if (!gguf_get_int(f, "tokenizer.ggml.add_bos_token", &v, err)) t->adds_bos = v != 0;
    else if (!strcmp(t->pre_name, "llama3")) t->adds_bos = 1; /* llama.cpp's default for llama-bpe */
    if (tok_finish(t, path, err)) goto fail;
    if (merges) {
        for (uint64_t r = 0; r < merges->arr_n; r++) {
            const gguf_str *m = &merges->arr_str[r];
            const char *sp = memchr(m->s, ' ', (size_t)m->len);
            int32_t ia = -1, ib = -1, ir = -1;
            size_t na, nb, la = sp ? (size_t)(sp - m->s) : 0, lb = sp ? (size_t)m->len - la - 1 : 0;
            if (la + lb + 8 > cap) { cap = (la + lb) * 2 + 8; buf = gr_xrealloc(buf, cap); }
            if (lb + 8 > cap2) { cap2 = lb * 2 + 8; buf2 = gr_xrealloc(buf2, cap2); }
            if (sp && la && lb && !tok_bytelevel_decode(m->s, la, buf, &na) &&
                !tok_bytelevel_decode(sp + 1, lb, buf2, &nb)) {
                ia = tok_vocab_find(t, buf, na);
                ib = tok_vocab_find(t, buf2, nb);
                memcpy(buf + na, buf2, nb);
                ir = tok_vocab_find(t, buf, na + nb);
            }
            if (ia < 0 || ib < 0 || ir < 0) {
                gr_errf(err, "%s: merge %llu is malformed or names a token not in the vocabulary",
                        path, (unsigned long long)r);
                goto fail;
            }
            tok_pair_put(&t->merges, ia, ib, (uint32_t)r, ir);
        }
    }
    free(buf);
    free(buf2);
    return t;
fail:
    free(buf);
    free(buf2);
    gr_tokenizer_free(t);
    return NULL;
}
