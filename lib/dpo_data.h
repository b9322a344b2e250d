/* Preference pairs for DPO training, held in memory.
 *
 * Two record forms are read (DESIGN.md "pair"):
 *   - pre-tokenized, what gr-tokenize writes for a pair: prompt_ids, chosen_ids,
 *     rejected_ids (token ids, already cut), weight;
 *   - raw: instruction, input, chosen, rejected, sample_weight (what gr-mine
 *     writes), encoded here exactly as gr-tokenize encodes them
 *     (gr_template_pair: the template's prompt, each response + end of turn,
 *     LLaMA-Factory's infer_seqlen on max(|c|, |r|)).
 * A pair is kept as two training sequences, prompt ++ chosen and prompt ++
 * rejected, with n_prompt leading ids without loss. A missing weight is 1; a
 * null (GuardReasoner's NaN when all raw weights were equal) is kept as NaN and
 * refused by the trainer unless weights are off. */
#ifndef GR_DPO_DATA_H
#define GR_DPO_DATA_H
#include <stdint.h>
#include "gr_common.h"
#include "template.h"
#include "tokenizer.h"

typedef struct gr_pdata {
    int n;
    int **chosen, **rejected; /* (n)(len_c[i]), (n)(len_r[i]): prompt ++ response */
    int *len_c, *len_r;
    int *n_prompt;            /* (n) >= 1 */
    double *weight;           /* (n) sample weights (NaN: null in the record) */
    int64_t n_tokens;         /* Σ len_c + len_r */
    int n_truncated;          /* raw records cut to the cutoff */
    int n_raw;                /* records that were tokenized here */
} gr_pdata;

typedef struct gr_pdata_opts {
    int vocab;                /* ids must be in [0, vocab) */
    int cutoff;               /* most ids of prompt + the longer response */
    const gr_tokenizer *tok;  /* for raw records; NULL: raw records are an error */
    gr_template_kind tmpl;
    const char *system;       /* NULL: no system turn */
    int refuse_null_weight;   /* 1: a null weight is an error naming FILE:LINE */
} gr_pdata_opts;

/* Reads every record of path ("-" = stdin; JSONL, JSON array, zstd). Errors name
 * FILE:LINE. */
int gr_pdata_load(const char *path, const gr_pdata_opts *o, gr_pdata *d, gr_err *err);
void gr_pdata_free(gr_pdata *d);
/* FNV-1a 64 over every pair's ids, n_prompt and weight bits: what the stored
 * reference log-probabilities were computed for. */
uint64_t gr_pdata_checksum(const gr_pdata *d);
#endif
