/* Byte-level BPE tokenizer (the LLaMA 3 family, SmolLM2, GPT-2 style).
 *
 * Sources, all loaded by gr_tokenizer_load (the kind is detected, not guessed
 * from the name):
 *   - a Hugging Face folder: DIR/tokenizer.json (+ DIR/tokenizer_config.json for
 *     bos_token / eos_token / add_bos_token when present);
 *   - a tokenizer.json file (tokenizer_config.json beside it is read too);
 *   - a tiktoken rank file ("BASE64 RANK" per line), as Meta ships LLaMA 3's
 *     tokenizer.model; the 256 LLaMA 3 special tokens are appended from id
 *     128000 in Meta's order when the file has LLaMA 3's 128000 ranks;
 *   - a .gguf file (tokenizer.ggml.* keys; model "gpt2", pre "llama-bpe",
 *     "smollm", "gpt-2"), read through gguf.h.
 * tokenizer.json and GGUF files may also be zstd-compressed. Where two sources
 * describe the same tokenizer they give the same ids: tests check LLaMA 3's
 * tiktoken file = its tokenizer.json = tiktoken = HF tokenizers, and SmolLM2's
 * tokenizer.json = its GGUF = HF tokenizers, on the GuardReasoner corpus, an
 * adversarial set and every Unicode code point.
 *
 * Pre-tokenizers: LLaMA 3's and GPT-2's patterns are scanned by hand (with
 * \p{L} / \p{N} / \s tables generated from HF tokenizers' Oniguruma); HF
 * Digits and any other Split regex (through Oniguruma) are supported too.
 * Bytes a vocabulary has no token for are dropped, as HF tokenizers drops
 * them (SmolLM2 lacks a few control bytes), so decode(encode(x)) == x holds
 * when every byte of x has a token (always for LLaMA 3).
 *
 * Thread safety: a loaded tokenizer is read-only; encode/decode may run from
 * many threads at once on the same gr_tokenizer.
 *
 * Special tokens. gr_tokenizer_encode treats its input as plain text: the
 * string "<|eot_id|>" inside a user prompt is tokenized as the characters it
 * is made of and never becomes the control token (a guard model must not be
 * prompt-injectable through special-token strings). Templates insert control
 * tokens by id. gr_tokenizer_encode_special is the exception for trusted
 * strings: it recognises added tokens (as HF's encode does).
 *
 * Invalid UTF-8 in the input is tokenized as its bytes (each invalid byte is
 * a one-byte "other" character for the pre-tokenizer); decode gives it back. */
#ifndef GR_TOKENIZER_H
#define GR_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include "gr_common.h"

/* A growable array of token ids. Zero-initialise ({0}) before first use. */
typedef struct gr_ids {
    int32_t *v;
    size_t n, cap;
} gr_ids;
void gr_ids_push(gr_ids *a, int32_t id);
void gr_ids_append(gr_ids *a, const int32_t *ids, size_t n);
void gr_ids_free(gr_ids *a);

typedef struct gr_tokenizer gr_tokenizer;

/* NULL on failure, err names the file and what is wrong. */
gr_tokenizer *gr_tokenizer_load(const char *path, gr_err *err);
void gr_tokenizer_free(gr_tokenizer *t);

/* Appends the ids of text[0..len) to out. Plain text: no BOS is added and
 * special-token strings are not recognised. Returns 0 (it cannot fail on any
 * input; -1 is reserved for resource errors reported in err). */
int gr_tokenizer_encode(const gr_tokenizer *t, const char *text, size_t len,
                        gr_ids *out, gr_err *err);
/* As encode, but added tokens written in the text (e.g. "<|eot_id|>") become
 * their ids, honouring their lstrip/rstrip flags. For trusted strings only. */
int gr_tokenizer_encode_special(const gr_tokenizer *t, const char *text, size_t len,
                                gr_ids *out, gr_err *err);

/* The id of the token whose text is exactly s (an added token such as
 * "<|eot_id|>", or a vocabulary entry given as its raw bytes), or -1. */
int32_t gr_tokenizer_token_id(const gr_tokenizer *t, const char *s);
/* -1 when the tokenizer defines none. */
int32_t gr_tokenizer_bos(const gr_tokenizer *t);
int32_t gr_tokenizer_eos(const gr_tokenizer *t);
/* 1 when the source says a BOS is prepended to every sequence
 * (tokenizer_config.json add_bos_token, LLaMA 3's post-processor, GGUF
 * tokenizer.ggml.add_bos_token). */
int gr_tokenizer_adds_bos(const gr_tokenizer *t);
/* Number of ids (the largest id + 1). */
size_t gr_tokenizer_vocab_size(const gr_tokenizer *t);
/* The bytes a token decodes to (*len set), or NULL for an id out of range
 * or a hole in the id space. */
const char *gr_tokenizer_token_bytes(const gr_tokenizer *t, int32_t id, size_t *len);
/* 1 for special (control) tokens, which decode skips when asked to. */
int gr_tokenizer_is_special(const gr_tokenizer *t, int32_t id);
/* "bpe" and the pre-tokenizer name ("llama3", "gpt2", "smollm", "regex"). */
const char *gr_tokenizer_pretok_name(const gr_tokenizer *t);

/* Appends the bytes of ids to out (out->data is not NUL-terminated; use
 * gr_buf_cstr). skip_special drops special tokens. An id out of range is an
 * error (-1, err names it). The bytes may be invalid UTF-8 if the ids are an
 * arbitrary sequence; gr_tok_decoder gives valid text. */
int gr_tokenizer_decode(const gr_tokenizer *t, const int32_t *ids, size_t n,
                        int skip_special, gr_buf *out, gr_err *err);

/* Streaming decoder: feed ids one at a time, get text as soon as it is
 * complete UTF-8. A character split across tokens is emitted once, when its
 * last byte arrives; bytes that can never become valid UTF-8 are emitted as
 * U+FFFD (one per maximal invalid subpart, as Python's errors="replace"). */
typedef struct gr_tok_decoder gr_tok_decoder;
gr_tok_decoder *gr_tok_decoder_new(const gr_tokenizer *t, int skip_special);
/* Appends to out the text completed by id. -1 on an id out of range. */
int gr_tok_decoder_put(gr_tok_decoder *d, int32_t id, gr_buf *out, gr_err *err);
/* End of stream: a pending incomplete character becomes U+FFFD. */
void gr_tok_decoder_flush(gr_tok_decoder *d, gr_buf *out);
void gr_tok_decoder_free(gr_tok_decoder *d);
#endif
