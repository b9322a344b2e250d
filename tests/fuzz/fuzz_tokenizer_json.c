/* libFuzzer target: the tokenizer loaders on untrusted bytes, then encode and
 * decode with whatever loaded. The first byte picks the loader (0 mod 3:
 * tokenizer.json, 1: tiktoken rank file, 2: GGUF, parsed by gguf.h and read
 * by the tokenizer.ggml.* loader); the rest is the file. When it
 * loads, the file's own bytes are encoded as text and decoded back, which
 * must give them back exactly when every byte has a token. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sanitizer/lsan_interface.h>
#include <jv.h>
#include "tok_internal.h"
#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 3;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    char *copy = malloc(n + 1); /* the loaders expect a NUL after the data */
    memcpy(copy, body, n);
    copy[n] = 0;
    gr_err err = {{0}};
    if (mode == 0) {
        /* libjq 1.6's parser leaks on some malformed JSON (inside
         * jv_parser_next, not ours): such input stops here, with leak
         * checking off for that parse only, so that every jv the loader
         * handles stays leak-checked. */
        __lsan_disable();
        jv v = jv_parse_sized(copy, (int)(n > 0x7FFFFFFF ? 0x7FFFFFFF : n));
        int valid = jv_is_valid(v);
        jv_free(v);
        __lsan_enable();
        if (!valid) { free(copy); return 0; }
    }
    gr_tokenizer *t = NULL;
    if (mode == 0) t = tok_load_hf_json("fuzz", copy, n, "/nonexistent/tokenizer_config.json", &err);
    else if (mode == 1) t = tok_load_tiktoken("fuzz", copy, n, &err);
    else {
        gguf_file *g = gguf_open_mem(copy, n, "fuzz", &err);
        if (g) {
            t = tok_from_gguf(g, "fuzz", &err);
            gguf_close(g);
        }
    }
    if (t) {
        gr_ids ids = {0};
        gr_tokenizer_encode(t, copy, n, &ids, &err);
        gr_tokenizer_encode_special(t, copy, n < 256 ? n : 256, &ids, &err);
        gr_buf b = {0};
        gr_tokenizer_decode(t, ids.v, ids.n, 0, &b, &err);
        gr_tok_decoder *d = gr_tok_decoder_new(t, 1);
        for (size_t i = 0; i < ids.n; i++) gr_tok_decoder_put(d, ids.v[i], &b, &err);
        gr_tok_decoder_flush(d, &b);
        gr_tok_decoder_free(d);
        int all = 1;
        for (int c = 0; c < 256; c++) all &= t->byte_id[c] >= 0;
        if (all) {
            gr_ids one = {0};
            gr_buf back = {0};
            gr_tokenizer_encode(t, copy, n, &one, &err);
            if (gr_tokenizer_decode(t, one.v, one.n, 0, &back, &err) == 0 &&
                (back.len != n || (n && memcmp(back.data, copy, n))))
                abort(); /* byte-level BPE must round-trip */
            gr_ids_free(&one);
            gr_buf_free(&back);
        }
        gr_buf_free(&b);
        gr_ids_free(&ids);
        gr_tokenizer_free(t);
    }
    free(copy);
    return 0;
}
