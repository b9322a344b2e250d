/* Token records for training (DESIGN.md "tokens": id, ids, n_prompt), held in
 * memory, and the seeded per-epoch shuffle. */
#ifndef GR_TRAIN_DATA_H
#define GR_TRAIN_DATA_H
#include <stdint.h>
#include "gr_common.h"

typedef struct gr_tdata {
    int n;
    int **ids;        /* (n)(len[i]) */
    int *len;
    int *n_prompt;    /* leading ids without loss, 0..len */
    int64_t n_tokens; /* Σ len */
    int64_t n_targets;/* Σ tokens with a loss */
} gr_tdata;

/* Reads every record of path ("-" = stdin; JSONL, JSON array, zstd) through
 * gr_io's reader. Each needs `ids` (integers in [0, vocab)) with 1..cutoff of
 * them and `n_prompt` (0..len); errors name FILE:LINE. */
int gr_tdata_load(const char *path, int vocab, int cutoff, gr_tdata *d, gr_err *err);
void gr_tdata_free(gr_tdata *d);

/* perm (n) = a permutation of 0..n-1 that depends only on (seed, epoch)
 * (Fisher-Yates over a splitmix64 stream). */
void gr_tdata_shuffle(uint64_t seed, int64_t epoch, int n, int *perm);
#endif
