/* The paged KV cache (vLLM's PagedAttention layout, gr_kv_layout in backend.h).
 *
 * A pool holds fixed-size blocks of GR_KV_BLOCK positions, each with every
 * layer's keys and values, in one buffer of the backend's memory. A sequence
 * (gr_kv) owns a block table: position p lives in block blocks[p / GR_KV_BLOCK]
 * at row p % GR_KV_BLOCK. Blocks are reference-counted: a sequence started from
 * a shared prefix (the guard instruction, computed once) takes the prefix's
 * full blocks by reference and a private copy of its last, partial block, so
 * the shared blocks are only ever read; writing a position in a block that is
 * shared is refused (gr_kv_slot), and freeing a sequence returns every block
 * whose count drops to 0.
 *
 * A pool grows on demand (block ids stay valid: the buffer is remapped or copied)
 * up to max_blocks when that is set; the engine reserves a sequence's blocks for
 * its whole length when it admits it, so a forward pass never runs out. */
#ifndef GR_KV_CACHE_H
#define GR_KV_CACHE_H
#include <stdint.h>
#include "backend.h"

#define GR_KV_BLOCK_SHIFT 4
#define GR_KV_BLOCK (1 << GR_KV_BLOCK_SHIFT) /* positions per block */

typedef struct gr_kv_pool {
    gr_backend *be;          /* NULL: host memory of its own (the CPU's) */
    gr_kv_layout lay;        /* base, dtype, n_layers, kv_dim, block_size */
    size_t block_bytes;
    int n_blocks;            /* blocks in the buffer */
    int max_blocks;          /* 0: no limit */
    int *ref;                /* (n_blocks) reference counts; 0 = free */
    int *free_ids;           /* stack of free block ids */
    int n_free;
    int users;               /* sequences holding the pool, + 1 for its creator */
    int peak_used;           /* most blocks in use at once */
    /* Checks of the sharing rule, read by the tests: refused writes to shared
     * blocks; with verify_shared (host pools), a checksum of each block taken
     * when it becomes shared and compared when it stops being shared. */
    long shared_write_refused;
    int verify_shared;
    uint64_t *sum;           /* (n_blocks) with verify_shared */
    long shared_checked, shared_changed;
} gr_kv_pool;

/* be: the backend whose memory holds the pool (its kv_dtype), or NULL for host
 * F32 memory. max_blocks 0: grow without limit. */
gr_kv_pool *gr_kv_pool_new(gr_backend *be, int n_layers, int kv_dim, int max_blocks);
/* Drops the creator's hold; the pool goes when its last sequence does. */
void gr_kv_pool_release(gr_kv_pool *p);
/* Grows the pool to at least n_blocks now (capped by the limit; one allocation
 * instead of doublings with copies: what a device pool wants); -1 when memory
 * says no. */
int gr_kv_pool_reserve(gr_kv_pool *p, int n_blocks);
/* Turns on the checksums of shared blocks (host pools; for the tests). */
void gr_kv_pool_verify_shared(gr_kv_pool *p);
static inline int gr_kv_pool_used(const gr_kv_pool *p) { return p->n_blocks - p->n_free; }
/* Blocks that could still be handed out (free ones + room to grow); INT32_MAX without a limit. */
int gr_kv_pool_available(const gr_kv_pool *p);
/* Blocks a sequence of `len` positions needs. */
static inline int gr_kv_blocks_for(int len) { return (len + GR_KV_BLOCK - 1) >> GR_KV_BLOCK_SHIFT; }

typedef struct gr_kv {
    gr_kv_pool *pool;
    int n_prefix;            /* positions taken from a shared prefix (read-only) */
    int len;                 /* positions held, prefix included */
    int *blocks;             /* block table */
    int n_blocks, cap_blocks;
    int n_layers, kv_dim;
} gr_kv;

/* A sequence in pool p continuing after all of prefix's positions (prefix may be
 * NULL; when given it must be in p). NULL when p has no block left for the copy
 * of the prefix's partial block. */
gr_kv *gr_kv_new_in(gr_kv_pool *p, const gr_kv *prefix);
/* The same from the prefix's first len positions (0 <= len <= prefix->len):
 * its full blocks shared, the block holding position len - 1 copied. */
gr_kv *gr_kv_new_in_len(gr_kv_pool *p, const gr_kv *prefix, int len);
/* Blocks for `len` positions in all; -1 (nothing taken) when the pool is full. */
int gr_kv_try_reserve(gr_kv *kv, int len);
/* The slot (block * GR_KV_BLOCK + row) position pos is written to, or -1 when
 * its block is not reserved or is shared (counted in shared_write_refused). */
int gr_kv_slot(gr_kv *kv, int pos);
/* Pointers to a layer's key / value row at position p of a host F32 pool. */
static inline const float *gr_kv_k(const gr_kv *kv, int layer, int p) {
    const gr_kv_layout *L = &kv->pool->lay;
    size_t b = (size_t)kv->blocks[p >> GR_KV_BLOCK_SHIFT];
    return (const float *)L->base +
           (((b * (size_t)L->n_layers + (size_t)layer) * 2) * GR_KV_BLOCK + (size_t)(p & (GR_KV_BLOCK - 1))) *
               (size_t)L->kv_dim;
}
static inline const float *gr_kv_v(const gr_kv *kv, int layer, int p) {
    return gr_kv_k(kv, layer, p) + (size_t)GR_KV_BLOCK * (size_t)kv->pool->lay.kv_dim;
}
#endif
