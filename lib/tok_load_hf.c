/* Loads a Hugging Face tokenizer.json (model type BPE, byte-level), plus
 * tokenizer_config.json for bos/eos/add_bos_token when present.
 *
 * Supported, as the LLaMA 3 and SmolLM2 files use them: normalizer null;
 * pre_tokenizer ByteLevel (use_regex -> the GPT-2 pattern), Split (Regex or
 * String pattern, behavior Isolated), Digits, or a Sequence of those;
 * model.ignore_merges; merges as "a b" strings or [a, b] pairs; added_tokens
 * with special/lstrip/rstrip. Anything else that would change the ids is an
 * error naming the field, never silently ignored. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <jv.h>
#include "tok_internal.h"
#include "gr_utf8.h"

/* obj[key] (a new reference) or jv_null() when obj is not an object or lacks it. */
static jv field(jv obj, const char *key) {
    if (jv_get_kind(obj) != JV_KIND_OBJECT) return jv_null();
    jv v = jv_object_get(jv_copy(obj), jv_string(key));
    if (!jv_is_valid(v)) { jv_free(v); return jv_null(); }
    return v;
}

static int field_bool(jv obj, const char *key, int dflt) {
    jv v = field(obj, key);
    int r = dflt;
    if (jv_get_kind(v) == JV_KIND_TRUE) r = 1;
    else if (jv_get_kind(v) == JV_KIND_FALSE) r = 0;
    jv_free(v);
    return r;
}

/* 1 when obj.key is a string equal to s. */
static int field_is(jv obj, const char *key, const char *s) {
    jv v = field(obj, key);
    int r = jv_get_kind(v) == JV_KIND_STRING && !strcmp(jv_string_value(v), s);
    jv_free(v);
    return r;
}

static int add_pre(gr_tokenizer *t, jv p, const char *src, gr_err *err) {
    if (jv_get_kind(p) == JV_KIND_NULL) return 0;
    if (field_is(p, "type", "Sequence")) {
        jv arr = field(p, "pretokenizers");
        if (jv_get_kind(arr) != JV_KIND_ARRAY) {
            jv_free(arr);
            return gr_errf(err, "%s: pre_tokenizer Sequence without pretokenizers", src);
        }
        int n = jv_array_length(jv_copy(arr)), rc = 0;
        for (int i = 0; i < n && !rc; i++) {
            jv e = jv_array_get(jv_copy(arr), i);
            rc = add_pre(t, e, src, err);
            jv_free(e);
        }
        jv_free(arr);
        return rc;
    }
    if (t->n_pre >= TOK_MAX_PRE) return gr_errf(err, "%s: too many pre-tokenizers", src);
    if (field_is(p, "type", "ByteLevel")) {
        if (field_bool(p, "add_prefix_space", 0))
            return gr_errf(err, "%s: ByteLevel add_prefix_space=true is not supported", src);
        if (field_bool(p, "use_regex", 1)) {
            t->pre[t->n_pre++] = (tok_pre){TOK_PRE_GPT2, 0, NULL};
        }
        return 0;
    }
    if (field_is(p, "type", "Digits")) {
        t->pre[t->n_pre++] = (tok_pre){TOK_PRE_DIGITS, field_bool(p, "individual_digits", 0), NULL};
        return 0;
    }
    if (field_is(p, "type", "Split")) {
        if (!field_is(p, "behavior", "Isolated") || field_bool(p, "invert", 0))
            return gr_errf(err, "%s: only Split with behavior Isolated is supported", src);
        jv pat = field(p, "pattern");
        jv re = field(pat, "Regex"), str = field(pat, "String");
        int rc;
        if (jv_get_kind(re) == JV_KIND_STRING) {
            rc = tok_add_pre_regex(t, jv_string_value(re), err, src);
        } else if (jv_get_kind(str) == JV_KIND_STRING) {
            /* a literal string: escape it for Oniguruma */
            gr_buf b = {0};
            const char *s = jv_string_value(str);
            gr_buf_append(&b, "\\Q", 2);
            gr_buf_append(&b, s, strlen(s));
            gr_buf_append(&b, "\\E", 2);
            rc = tok_add_pre_regex(t, gr_buf_cstr(&b), err, src);
            gr_buf_free(&b);
        } else {
            rc = gr_errf(err, "%s: Split without a pattern", src);
        }
        jv_free(re);
        jv_free(str);
        jv_free(pat);
        return rc;
    }
    jv ty = field(p, "type");
    int rc = gr_errf(err, "%s: unsupported pre_tokenizer type %s", src,
                     jv_get_kind(ty) == JV_KIND_STRING ? jv_string_value(ty) : "?");
    jv_free(ty);
    return rc;
}

/* A token string in tokenizer_config.json: "..." or {"content": "..."}. */
static jv config_token(jv cfg, const char *key) {
    jv v = field(cfg, key);
    if (jv_get_kind(v) == JV_KIND_OBJECT) {
        jv c = field(v, "content");
        jv_free(v);
        v = c;
    }
    return v;
}

/* Reads tokenizer_config.json if it exists; a broken one is an error. */
static int read_config(gr_tokenizer *t, const char *cfg_path, gr_err *err) {
    FILE *f = fopen(cfg_path, "rb");
    if (!f) return 0;
    fclose(f);
    size_t n;
    char *data = tok_read_file(cfg_path, &n, err);
    if (!data) return -1;
    jv cfg = jv_parse_sized(data, (int)n);
    free(data);
    if (!jv_is_valid(cfg) || jv_get_kind(cfg) != JV_KIND_OBJECT) {
        jv_free(cfg);
        return gr_errf(err, "%s: not a JSON object", cfg_path);
    }
    const char *keys[2] = {"bos_token", "eos_token"};
    int32_t *dst[2] = {&t->bos, &t->eos};
    for (int k = 0; k < 2; k++) {
        jv s = config_token(cfg, keys[k]);
        if (jv_get_kind(s) == JV_KIND_STRING) {
            int32_t id = gr_tokenizer_token_id(t, jv_string_value(s));
            if (id < 0) {
                gr_errf(err, "%s: %s \"%s\" is not a token", cfg_path, keys[k], jv_string_value(s));
                jv_free(s);
                jv_free(cfg);
                return -1;
            }
            *dst[k] = id;
        }
        jv_free(s);
    }
    jv ab = field(cfg, "add_bos_token");
    if (jv_get_kind(ab) == JV_KIND_TRUE) t->adds_bos = 1;
    else if (jv_get_kind(ab) == JV_KIND_FALSE) t->adds_bos = 0;
    jv_free(ab);
    jv_free(cfg);
    return 0;
}

/* The post-processor prepends a special token to single sequences: that is
 * the BOS (LLaMA 3's TemplateProcessing). */
static void post_bos(gr_tokenizer *t, jv pp) {
    if (field_is(pp, "type", "Sequence")) {
        jv arr = field(pp, "processors");
        if (jv_get_kind(arr) == JV_KIND_ARRAY) {
            int n = jv_array_length(jv_copy(arr));
            for (int i = 0; i < n; i++) {
                jv e = jv_array_get(jv_copy(arr), i);
                post_bos(t, e);
                jv_free(e);
            }
        }
        jv_free(arr);
        return;
    }
    if (!field_is(pp, "type", "TemplateProcessing")) return;
    jv single = field(pp, "single");
    if (jv_get_kind(single) == JV_KIND_ARRAY && jv_array_length(jv_copy(single)) > 0) {
        jv first = jv_array_get(jv_copy(single), 0);
        jv st = field(first, "SpecialToken");
        jv id = field(st, "id");
        if (jv_get_kind(id) == JV_KIND_STRING) {
            int32_t tid = gr_tokenizer_token_id(t, jv_string_value(id));
            if (tid >= 0) { t->bos = tid; t->adds_bos = 1; }
        }
        jv_free(id);
        jv_free(st);
        jv_free(first);
    }
    jv_free(single);
}

static int bl_bytes(const char *s, size_t n, char **buf, size_t *cap, size_t *out) {
    if (n > *cap) { *cap = n * 2; *buf = gr_xrealloc(*buf, *cap); }
    return tok_bytelevel_decode(s, n, *buf, out);
}

gr_tokenizer *tok_load_hf_json(const char *path, const char *data, size_t n,
                               const char *config_path, gr_err *err) {
    if (n > 0x7FFFFFFF) return (gr_errf(err, "%s: too large", path), NULL);
    /* JSON text is UTF-8; checking first also keeps libjq 1.6's parser off a
     * path where it leaks on invalid UTF-8 followed by a syntax error */
    size_t bad = gr_utf8_check(data, n);
    if (bad != n) return (gr_errf(err, "%s: invalid UTF-8 at byte %zu", path, bad), NULL);
    jv root = jv_parse_sized(data, (int)n);
    if (!jv_is_valid(root)) {
        jv msg = jv_invalid_get_msg(root);
        gr_errf(err, "%s: %s", path, jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "invalid JSON");
        jv_free(msg);
        return NULL;
    }
    gr_tokenizer *t = NULL;
    char *buf = NULL, *buf2 = NULL;
    size_t cap = 0, cap2 = 0;
    jv model = field(root, "model"), vocab = field(model, "vocab"), merges = field(model, "merges");
    jv added = field(root, "added_tokens"), norm = field(root, "normalizer");
    if (jv_get_kind(root) != JV_KIND_OBJECT || jv_get_kind(model) != JV_KIND_OBJECT) {
        gr_errf(err, "%s: no \"model\" object", path);
        goto fail;
    }
    if (!field_is(model, "type", "BPE")) { gr_errf(err, "%s: model.type is not BPE", path); goto fail; }
    if (jv_get_kind(vocab) != JV_KIND_OBJECT) { gr_errf(err, "%s: model.vocab is not an object", path); goto fail; }
    if (jv_get_kind(norm) != JV_KIND_NULL) { gr_errf(err, "%s: normalizers are not supported", path); goto fail; }
    if (field_bool(model, "byte_fallback", 0)) { gr_errf(err, "%s: byte_fallback is not supported", path); goto fail; }
    {
        jv d = field(model, "dropout");
        int bad = jv_get_kind(d) == JV_KIND_NUMBER && jv_number_value(d) > 0;
        jv_free(d);
        jv cs = field(model, "continuing_subword_prefix"), ew = field(model, "end_of_word_suffix");
        bad |= (jv_get_kind(cs) == JV_KIND_STRING && jv_string_length_bytes(jv_copy(cs)) > 0);
        bad |= (jv_get_kind(ew) == JV_KIND_STRING && jv_string_length_bytes(jv_copy(ew)) > 0);
        jv_free(cs);
        jv_free(ew);
        if (bad) { gr_errf(err, "%s: BPE dropout / subword prefix / word suffix are not supported", path); goto fail; }
    }
    /* the id space: vocab ids and added-token ids */
    long max_id = -1;
    jv_object_foreach(vocab, k, v) {
        double d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : -1;
        jv_free(k);
        jv_free(v);
        if (d < 0 || d > 4000000 || d != (double)(long)d) { max_id = -2; break; }
        if ((long)d > max_id) max_id = (long)d;
    }
    if (max_id == -2) { gr_errf(err, "%s: model.vocab has a bad id", path); goto fail; }
    int n_added = jv_get_kind(added) == JV_KIND_ARRAY ? jv_array_length(jv_copy(added)) : 0;
    for (int i = 0; i < n_added; i++) {
        jv a = jv_array_get(jv_copy(added), i), id = field(a, "id"), c = field(a, "content");
        int ok = jv_get_kind(id) == JV_KIND_NUMBER && jv_get_kind(c) == JV_KIND_STRING &&
                 jv_number_value(id) >= 0 && jv_number_value(id) <= 4000000;
        if (ok && (long)jv_number_value(id) > max_id) max_id = (long)jv_number_value(id);
        jv_free(a);
        jv_free(id);
        jv_free(c);
        if (!ok) { gr_errf(err, "%s: added_tokens[%d] needs an id and a content", path, i); goto fail; }
    }
    if (max_id < 0) { gr_errf(err, "%s: empty vocabulary", path); goto fail; }
    t = tok_new((size_t)max_id + 1);
    jv_object_foreach(vocab, k, v) {
        long id = (long)jv_number_value(v);
        size_t blen;
        int bad = bl_bytes(jv_string_value(k), (size_t)jv_string_length_bytes(jv_copy(k)), &buf, &cap, &blen);
        if (bad) {
            gr_errf(err, "%s: vocab entry \"%s\" is not byte-level", path, jv_string_value(k));
            jv_free(k);
            jv_free(v);
            goto fail;
        }
        if (t->off[id] != UINT64_MAX) {
            gr_errf(err, "%s: id %ld appears twice in model.vocab", path, id);
            jv_free(k);
            jv_free(v);
            goto fail;
        }
        tok_set_token(t, (int32_t)id, buf, blen);
        t->in_bpe[id] = 1;
        jv_free(k);
        jv_free(v);
    }
    for (int i = 0; i < n_added; i++) {
        jv a = jv_array_get(jv_copy(added), i), id = field(a, "id"), c = field(a, "content");
        int32_t tid = (int32_t)jv_number_value(id);
        const char *s = jv_string_value(c);
        size_t len = (size_t)jv_string_length_bytes(jv_copy(c));
        tok_set_token(t, tid, s, len);
        tok_add_added(t, tid, s, len, field_bool(a, "special", 0), field_bool(a, "lstrip", 0),
                      field_bool(a, "rstrip", 0));
        if (field_bool(a, "single_word", 0)) tok_added_single_word(t);
        jv_free(a);
        jv_free(id);
        jv_free(c);
    }
    t->ignore_merges = field_bool(model, "ignore_merges", 0);
    {
        jv pre = field(root, "pre_tokenizer");
        int rc = add_pre(t, pre, path, err);
        jv_free(pre);
        if (rc) goto fail;
        if (t->n_pre == 1 && t->pre[0].kind == TOK_PRE_LLAMA3) snprintf(t->pre_name, sizeof t->pre_name, "llama3");
        else if (t->n_pre == 1 && t->pre[0].kind == TOK_PRE_GPT2) snprintf(t->pre_name, sizeof t->pre_name, "gpt2");
        else if (t->n_pre == 2 && t->pre[0].kind == TOK_PRE_DIGITS && t->pre[0].individual &&
                 t->pre[1].kind == TOK_PRE_GPT2) snprintf(t->pre_name, sizeof t->pre_name, "smollm");
        else snprintf(t->pre_name, sizeof t->pre_name, "regex");
    }
    if (tok_finish(t, path, err)) goto fail;
    /* merges, in rank order */
    if (jv_get_kind(merges) == JV_KIND_ARRAY) {
        int nm = jv_array_length(jv_copy(merges));
        for (int r = 0; r < nm; r++) {
            jv m = jv_array_get(jv_copy(merges), r);
            const char *a = NULL, *b = NULL;
            size_t la = 0, lb = 0;
            jv ja = jv_null(), jb = jv_null();
            if (jv_get_kind(m) == JV_KIND_STRING) {
                const char *s = jv_string_value(m);
                const char *sp = strchr(s, ' ');
                if (sp && sp != s) { a = s; la = (size_t)(sp - s); b = sp + 1; lb = strlen(b); }
            } else if (jv_get_kind(m) == JV_KIND_ARRAY && jv_array_length(jv_copy(m)) == 2) {
                ja = jv_array_get(jv_copy(m), 0);
                jb = jv_array_get(jv_copy(m), 1);
                if (jv_get_kind(ja) == JV_KIND_STRING && jv_get_kind(jb) == JV_KIND_STRING) {
                    a = jv_string_value(ja); la = (size_t)jv_string_length_bytes(jv_copy(ja));
                    b = jv_string_value(jb); lb = (size_t)jv_string_length_bytes(jv_copy(jb));
                }
            }
            int32_t ia = -1, ib = -1, ir = -1;
            size_t na, nb;
            if (a && b && !bl_bytes(a, la, &buf, &cap, &na) && !bl_bytes(b, lb, &buf2, &cap2, &nb)) {
                ia = tok_vocab_find(t, buf, na);
                ib = tok_vocab_find(t, buf2, nb);
                if (na + nb > cap) { cap = (na + nb) * 2; buf = gr_xrealloc(buf, cap); }
                memcpy(buf + na, buf2, nb);
                ir = tok_vocab_find(t, buf, na + nb);
            }
            jv_free(ja);
            jv_free(jb);
            jv_free(m);
            if (ia < 0 || ib < 0 || ir < 0) {
                gr_errf(err, "%s: merges[%d] is malformed or names a token not in the vocabulary", path, r);
                goto fail;
            }
            tok_pair_put(&t->merges, ia, ib, (uint32_t)r, ir);
        }
    } else if (jv_get_kind(merges) != JV_KIND_NULL) {
        gr_errf(err, "%s: model.merges is not an array", path);
        goto fail;
    }
    {
        jv pp = field(root, "post_processor");
        post_bos(t, pp);
        jv_free(pp);
    }
    if (read_config(t, config_path, err)) goto fail;
    free(buf);
    free(buf2);
    jv_free(model); jv_free(vocab); jv_free(merges); jv_free(added); jv_free(norm); jv_free(root);
    return t;
fail:
    free(buf);
    free(buf2);
    gr_tokenizer_free(t);
    jv_free(model); jv_free(vocab); jv_free(merges); jv_free(added); jv_free(norm); jv_free(root);
    return NULL;
}
