/* Internals shared by the tok_*.c files; not part of the public API. */
#ifndef GR_TOK_INTERNAL_H
#define GR_TOK_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "gr_common.h"
#include "tokenizer.h"

/* ---- Unicode classes (tok_unicode.c, generated) ---------------------------- */
enum { TOK_C_OTHER = 0, TOK_C_L = 1, TOK_C_N = 2, TOK_C_S = 4 };
extern const uint16_t tok_uclass_index[0x1100];
extern const uint8_t tok_uclass_blocks[][256];
static inline int tok_uclass(uint32_t cp) {
    return tok_uclass_blocks[tok_uclass_index[cp >> 8]][cp & 255];
}
/* Reads one character at s[i..n): returns its length (1..4) and its class in
 * *cls. An invalid UTF-8 byte is a one-byte character of class OTHER and
 * code point 0xFFFFFFFF. */
int tok_next_char(const unsigned char *s, size_t n, size_t i, int *cls, uint32_t *cp);

/* ---- hash maps ------------------------------------------------------------ */
/* bytes -> id over the tokenizer's own token table (slots hold id + 1). */
typedef struct tok_strmap {
    uint32_t *slot;
    size_t mask;
} tok_strmap;
/* (left id, right id) -> (rank, merged id). */
typedef struct tok_pair {
    uint64_t key;     /* (left << 32 | right) + 1; 0 = empty */
    uint32_t rank;
    int32_t result;
} tok_pair;
typedef struct tok_pairmap {
    tok_pair *slot;
    size_t mask, n;
} tok_pairmap;

/* ---- pre-tokenizer steps --------------------------------------------------- */
typedef enum {
    TOK_PRE_LLAMA3,   /* LLaMA 3's Split pattern, hand-written scanner */
    TOK_PRE_GPT2,     /* GPT-2's ByteLevel pattern, hand-written scanner */
    TOK_PRE_DIGITS,   /* HF Digits: \p{N} isolated, one by one or in runs */
    TOK_PRE_REGEX,    /* any other Split pattern (Isolated), through Oniguruma */
} tok_pre_kind;
typedef struct tok_pre {
    tok_pre_kind kind;
    int individual;   /* DIGITS: one piece per digit */
    void *onig;       /* REGEX: the compiled OnigRegex */
} tok_pre;
#define TOK_MAX_PRE 4

typedef struct tok_added {
    int32_t id;
    char *content;
    size_t len;
    int special, lstrip, rstrip, single_word;
} tok_added;

struct gr_tokenizer {
    size_t n_vocab;           /* ids are 0 .. n_vocab-1 */
    char *arena;              /* token bytes, all of them */
    size_t arena_len, arena_cap;
    uint64_t *off;            /* (n_vocab) start in arena, UINT64_MAX for a hole */
    uint32_t *len;            /* (n_vocab) byte length */
    uint8_t *special;         /* (n_vocab) 1 for special / control tokens */
    uint8_t *in_bpe;          /* (n_vocab) 1 when BPE may produce the id */
    tok_strmap vocab;         /* bytes -> id, BPE vocabulary only */
    tok_pairmap merges;
    int32_t byte_id[256];     /* the id of each single byte, -1 if none */
    int ignore_merges;        /* a piece that is a whole token is that token */
    tok_pre pre[TOK_MAX_PRE];
    int n_pre;
    char pre_name[32];
    tok_added *added;         /* added tokens, longest first */
    size_t n_added;
    int32_t bos, eos;
    int adds_bos;
};

/* tok_core.c: building a tokenizer */
gr_tokenizer *tok_new(size_t n_vocab);
/* Sets the bytes of id (copied). */
void tok_set_token(gr_tokenizer *t, int32_t id, const void *bytes, size_t len);
/* Finishes after tokens, merges and pre-tokenizers are set: fills byte_id and
 * the vocab map over in_bpe ids, sorts added tokens. -1 if a byte has no token. */
int tok_finish(gr_tokenizer *t, const char *src, gr_err *err);
void tok_add_added(gr_tokenizer *t, int32_t id, const char *content, size_t len,
                   int special, int lstrip, int rstrip);
/* Marks the added token just added as single_word (matched only between
 * non-word characters, as Hugging Face's single_word). */
void tok_added_single_word(gr_tokenizer *t);
int32_t tok_vocab_find(const gr_tokenizer *t, const void *bytes, size_t len);
void tok_pair_put(tok_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t result);
/* Builds a merge table from token ranks, as tiktoken merges: any two adjacent
 * parts whose concatenation is a token merge, lowest resulting id first. */
void tok_merges_from_ranks(gr_tokenizer *t);
/* Sets the pre-tokenizer by its llama.cpp / our name; -1 if unknown. */
int tok_set_pre_named(gr_tokenizer *t, const char *name);
/* Adds a Split step for a regex pattern: the LLaMA 3 or GPT-2 pattern are
 * recognised and scanned by hand; others are compiled with Oniguruma. */
int tok_add_pre_regex(gr_tokenizer *t, const char *pattern, gr_err *err, const char *src);

/* tok_pretok.c: calls fn(s, a, b, ctx) for each piece [a, b) of s[0..n). */
typedef void (*tok_piece_fn)(const unsigned char *s, size_t a, size_t b, void *ctx);
void tok_pretokenize(const gr_tokenizer *t, const unsigned char *s, size_t n,
                     tok_piece_fn fn, void *ctx);
size_t tok_scan_llama3(const unsigned char *s, size_t n, size_t i);
size_t tok_scan_gpt2(const unsigned char *s, size_t n, size_t i);
void tok_pre_free(tok_pre *p);

/* tok_bpe.c: appends the ids of one piece. */
void tok_bpe_piece(const gr_tokenizer *t, const unsigned char *s, size_t n, gr_ids *out);

/* tok_load_*.c */
gr_tokenizer *tok_load_tiktoken(const char *path, const char *data, size_t n, gr_err *err);
gr_tokenizer *tok_load_hf_json(const char *path, const char *data, size_t n,
                               const char *config_path, gr_err *err);
gr_tokenizer *tok_load_gguf(const char *path, gr_err *err);
struct gguf_file;
/* The tokenizer of an already parsed GGUF (f stays the caller's). */
gr_tokenizer *tok_from_gguf(const struct gguf_file *f, const char *path, gr_err *err);
/* Reads a whole file (zstd-compressed files are decompressed). NULL on error. */
char *tok_read_file(const char *path, size_t *n, gr_err *err);

/* The GPT-2 byte <-> unicode mapping used by byte-level vocabularies. */
int tok_bytelevel_decode(const char *s, size_t n, char *out, size_t *out_len);
#endif
