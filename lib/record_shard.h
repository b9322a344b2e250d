/* --shard K/N: a deterministic split of records by a hash of their id.
 *
 * A record belongs to shard K of N (K = 1..N) when
 *     fnv1a64(id_text) mod N == K - 1
 * where id_text is the id's compact JSON text as jq -c prints it (a string id
 * with its quotes: "abc" hashes the 5 bytes "abc" in quotes, the number 7 the
 * byte 7) and fnv1a64 is 64-bit FNV-1a (offset basis 14695981039346656037,
 * prime 1099511628211). Every record is in exactly one shard, so N runs with
 * --shard 1/N .. N/N moderate disjoint shares whose union is the whole input,
 * whatever the order, the batch or the machine. */
#ifndef GR_RECORD_SHARD_H
#define GR_RECORD_SHARD_H
#include <jv.h>
#include "gr_common.h"

typedef struct gr_shard {
    uint32_t k, n; /* 1 <= k <= n; n == 0: no sharding */
} gr_shard;

/* Parses "K/N" (1 <= K <= N <= 1000000). 0, or -1 with the reason in err. */
int gr_shard_parse(const char *s, gr_shard *out, gr_err *err);
/* The shard (1..n) of an id (not consumed). */
uint32_t gr_shard_of(jv id, uint32_t n);
/* 1 when the id falls in shard s (always 1 without sharding). */
int gr_shard_mine(const gr_shard *s, jv id);
#endif
