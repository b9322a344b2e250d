/* Decoding ids to bytes, the streaming decoder, and the GPT-2 byte-level
 * character mapping that tokenizer.json and GGUF vocabularies are written in. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"
#include "gr_utf8.h"

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
 * other 68 bytes for U+0100.. in byte order. Inverse: code point -> byte. */
static int16_t inv_table[324];
static pthread_once_t inv_once = PTHREAD_ONCE_INIT;

static void inv_init(void) {
    for (int k = 0; k < 324; k++) inv_table[k] = -1;
    int m = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable) inv_table[b] = (int16_t)b;
        else inv_table[256 + m++] = (int16_t)b;
    }
}

static int unicode_to_byte(uint32_t cp) {
    pthread_once(&inv_once, inv_init);
    return cp < 324 ? inv_table[cp] : -1;
}

int tok_bytelevel_decode(const char *s, size_t n, char *out, size_t *out_len) {
    size_t o = 0, i = 0;
    while (i < n) {
        uint32_t cp;
        int l = gr_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (!l) return -1;
        int b = unicode_to_byte(cp);
        if (b < 0) return -1;
        out[o++] = (char)b;
        i += (size_t)l;
    }
    *out_len = o;
    return 0;
}

int gr_tokenizer_decode(const gr_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                        gr_buf *out, gr_err *err) {
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *p = gr_tokenizer_token_bytes(t, ids[i], &len);
        if (!p) return gr_errf(err, "token id %ld is not in the vocabulary (size %zu)",
                               (long)ids[i], t->n_vocab);
        if (skip_special && t->special[ids[i]]) continue;
        gr_buf_append(out, p, len);
    }
    return 0;
}

/* ---- streaming ------------------------------------------------------------- */
struct gr_tok_decoder {
    const gr_tokenizer *t;
    int skip_special;
    unsigned char pend[4];
    int npend;
};

gr_tok_decoder *gr_tok_decoder_new(const gr_tokenizer *t, int skip_special) {
    gr_tok_decoder *d = gr_xcalloc(1, sizeof *d);
    d->t = t;
    d->skip_special = skip_special;
    return d;
}

static const char REPL[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

/* How many bytes a sequence starting with lead byte c needs, 0 if c can never
 * start one. */
static int need_of(unsigned c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

/* 1 when p[0..k) (k < need) can still be the start of a valid sequence. */
static int prefix_ok(const unsigned char *p, int k) {
    if (k < 2) return 1;
    unsigned c = p[0], c1 = p[1];
    if ((c1 & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && c1 < 0xA0) return 0;
    if (c == 0xED && c1 > 0x9F) return 0;
    if (c == 0xF0 && c1 < 0x90) return 0;
    if (c == 0xF4 && c1 > 0x8F) return 0;
    for (int i = 2; i < k; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return 1;
}

static void feed_byte(gr_tok_decoder *d, unsigned char b, gr_buf *out) {
    for (;;) {
        if (d->npend == 0) {
            int need = need_of(b);
            if (need == 1) { gr_buf_putc(out, (char)b); return; }
            if (need == 0) { gr_buf_append(out, REPL, 3); return; }
            d->pend[d->npend++] = b;
            return;
        }
        d->pend[d->npend] = b;
        if (!prefix_ok(d->pend, d->npend + 1)) {
            /* the pending prefix is a maximal invalid subpart: one U+FFFD,
             * then b starts afresh */
            gr_buf_append(out, REPL, 3);
            d->npend = 0;
            continue;
        }
        d->npend++;
        if (d->npend == need_of(d->pend[0])) {
            gr_buf_append(out, d->pend, (size_t)d->npend);
            d->npend = 0;
        }
        return;
    }
}

int gr_tok_decoder_put(gr_tok_decoder *d, int32_t id, gr_buf *out, gr_err *err) {
    size_t len;
    const char *p = gr_tokenizer_token_bytes(d->t, id, &len);
    if (!p) return gr_errf(err, "token id %ld is not in the vocabulary (size %zu)", (long)id,
                           d->t->n_vocab);
    if (d->skip_special && d->t->special[id]) return 0;
    for (size_t i = 0; i < len; i++) feed_byte(d, (unsigned char)p[i], out);
    return 0;
}

void gr_tok_decoder_flush(gr_tok_decoder *d, gr_buf *out) {
    if (d->npend) gr_buf_append(out, REPL, 3);
    d->npend = 0;
}

void gr_tok_decoder_free(gr_tok_decoder *d) { free(d); }
