/* Prompt templates: how an (instruction, input[, output]) record becomes ids.
 *
 * A prompt (the "source", no loss) and a response (the "target", loss) are
 * built separately, as LLaMA-Factory does: the response is encoded on its own
 * and followed by the template's end-of-turn id. User text is always encoded
 * as plain text (special-token strings in it stay text); control tokens are
 * inserted by id.
 *
 *   raw     [bos if the tokenizer adds one] + enc(instruction + "\n" + input)
 *           (GuardReasoner's generate.py through vLLM; the "\n" is always there)
 *           response: enc(output) + [eos]
 *   llama3  LLaMA-Factory v0.9.1 `llama3`:
 *           [<|begin_of_text|>]
 *           (+ <|start_header_id|>system<|end_header_id|>\n\n SYSTEM <|eot_id|>
 *              when a system text is given)
 *           + <|start_header_id|>user<|end_header_id|> + enc("\n\n" + U)
 *           + <|eot_id|><|start_header_id|>assistant<|end_header_id|> + enc("\n\n")
 *           response: enc(output) + [<|eot_id|>]
 *   chatml  (SmolLM2-Instruct) (<|im_start|>system\nSYSTEM<|im_end|>\n when a
 *           system text is given) + <|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n
 *           response: enc(output) + [<|im_end|>]
 * where U = instruction + "\n" + input with an empty part (and its "\n")
 * left out (LLaMA-Factory's alpaca converter). Where a layout string mixes
 * text and control tokens, each text run is encoded as a whole (LF's
 * _convert_elements_to_ids), e.g. "user" and "\n\n"+U are separate runs. */
#ifndef GR_TEMPLATE_H
#define GR_TEMPLATE_H
#include <stddef.h>
#include "gr_common.h"
#include "tokenizer.h"

typedef enum { GR_TEMPLATE_RAW, GR_TEMPLATE_LLAMA3, GR_TEMPLATE_CHATML } gr_template_kind;

/* "raw", "llama3", "chatml" -> kind; -1 (err lists the names) otherwise. */
int gr_template_parse(const char *name, gr_template_kind *kind, gr_err *err);
const char *gr_template_name(gr_template_kind kind);

/* Appends the prompt ids to out. system may be NULL or "" (no system turn);
 * instruction / input may be NULL (treated as ""). -1 when the tokenizer
 * lacks a token the template needs (err names it). */
int gr_template_prompt(const gr_tokenizer *t, gr_template_kind kind, const char *system,
                       const char *instruction, const char *input, gr_ids *out, gr_err *err);
/* Appends enc(response) + [end-of-turn id] to out. */
int gr_template_response(const gr_tokenizer *t, gr_template_kind kind, const char *response,
                         gr_ids *out, gr_err *err);
/* The end-of-turn id that ends a response (and stops generation): llama3
 * <|eot_id|>, chatml <|im_end|>, raw the tokenizer's eos. -1 if missing. */
int32_t gr_template_eot(const gr_tokenizer *t, gr_template_kind kind);

/* LLaMA-Factory's infer_seqlen (data/processors/processor_utils.py): how many
 * leading source and target ids to keep so that both fit in cutoff.
 *   if 2T < C: maxT = C; elif 2S < C: maxT = C - S; else maxT = C*T/(S+T)
 *   T' = min(maxT, T); S' = min(max(C - T', 0), S)
 * maxT in the last case is computed in double precision and truncated, as
 * Python's int(C * (T / (S + T))) is, so a ratio such as T/C*C = T - 1e-16
 * gives the same T - 1 as the reference. */
void gr_infer_seqlen(size_t source_len, size_t target_len, size_t cutoff,
                     size_t *source_keep, size_t *target_keep);

/* A preference pair as LLaMA-Factory's pairwise processor encodes it: the prompt,
 * c = enc(chosen) + [eot], r = enc(rejected) + [eot]; (S', T') =
 * gr_infer_seqlen(|prompt|, max(|c|, |r|), cutoff), and the prompt is cut to S',
 * each response to T' (leading ids kept). *truncated = 1 when anything was cut.
 * prompt, c and r are appended to. -1 as gr_template_prompt. */
int gr_template_pair(const gr_tokenizer *t, gr_template_kind kind, const char *system,
                     const char *instruction, const char *input, const char *chosen,
                     const char *rejected, size_t cutoff, gr_ids *prompt, gr_ids *c, gr_ids *r,
                     int *truncated, gr_err *err);
#endif
