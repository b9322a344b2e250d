/* The paged KV cache: see kv_cache.h. */
#define _GNU_SOURCE /* mremap */
#include "kv_cache.h"
#include "forward.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int pool_on_host(const gr_kv_pool *p) { return !p->be || p->be->host_memory; }

/* Host pools are anonymous mappings: room reserved for a sequence costs only the
 * pages it writes, freeing gives them back, and growing remaps without a copy.
 * (With malloc, glibc's rising mmap threshold moved later caches onto the heap,
 * where every doubling left a resident hole.) */
static void *host_grow(void *old, size_t old_bytes, size_t bytes) {
    void *p;
#ifdef __linux__
    if (old) {
        p = mremap(old, old_bytes, bytes, MREMAP_MAYMOVE);
        return p == MAP_FAILED ? NULL : p;
    }
#endif
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (old) {
        memcpy(p, old, old_bytes);
        munmap(old, old_bytes);
    }
    return p;
}

gr_kv_pool *gr_kv_pool_new(gr_backend *be, int n_layers, int kv_dim, int max_blocks) {
    gr_kv_pool *p = gr_xcalloc(1, sizeof *p);
    p->be = be;
    p->lay.dtype = be ? be->kv_dtype : GR_F32;
    p->lay.n_layers = n_layers;
    p->lay.kv_dim = kv_dim;
    p->lay.block_size = GR_KV_BLOCK;
    p->block_bytes = (size_t)n_layers * 2 * GR_KV_BLOCK * (size_t)kv_dim * gr_dtype_size(p->lay.dtype);
    p->max_blocks = max_blocks > 0 ? max_blocks : 0;
    p->users = 1;
    return p;
}

static void pool_destroy(gr_kv_pool *p) {
    if (p->lay.base) {
        if (pool_on_host(p)) munmap(p->lay.base, p->block_bytes * (size_t)p->n_blocks);
        else p->be->dev_free(p->be, p->lay.base);
    }
    free(p->ref);
    free(p->free_ids);
    free(p->sum);
    free(p);
}

static void pool_drop(gr_kv_pool *p) {
    if (--p->users == 0) pool_destroy(p);
}

void gr_kv_pool_release(gr_kv_pool *p) {
    if (p) pool_drop(p);
}

void gr_kv_pool_verify_shared(gr_kv_pool *p) {
    p->verify_shared = 1;
    p->sum = gr_xrealloc(p->sum, sizeof(uint64_t) * (size_t)(p->n_blocks ? p->n_blocks : 1));
}

int gr_kv_pool_available(const gr_kv_pool *p) {
    if (!p->max_blocks) return INT32_MAX;
    return p->n_free + (p->max_blocks - p->n_blocks);
}

/* Room for at least `want` blocks in all; -1 when the limit or memory says no. */
static int pool_grow(gr_kv_pool *p, int want) {
    if (want <= p->n_blocks) return 0;
    if (p->max_blocks && want > p->max_blocks) return -1;
    int64_t n = p->n_blocks ? 2 * (int64_t)p->n_blocks : 16;
    if (n < want) n = want;
    if (p->max_blocks && n > p->max_blocks) n = p->max_blocks;
    if (n > INT32_MAX / 2) return -1;
    size_t old = p->block_bytes * (size_t)p->n_blocks, bytes = p->block_bytes * (size_t)n;
    void *base;
    if (pool_on_host(p)) {
        base = host_grow(p->lay.base, old, bytes);
        if (!base) return -1;
    } else {
        base = p->be->dev_alloc(p->be, bytes);
        if (!base) return -1;
        if (old) p->be->copy(p->be, base, p->lay.base, old);
        if (p->lay.base) p->be->dev_free(p->be, p->lay.base);
    }
    p->lay.base = base;
    p->ref = gr_xrealloc(p->ref, sizeof(int) * (size_t)n);
    p->free_ids = gr_xrealloc(p->free_ids, sizeof(int) * (size_t)n);
    if (p->verify_shared) p->sum = gr_xrealloc(p->sum, sizeof(uint64_t) * (size_t)n);
    /* the lowest new ids on top of the stack: handed out in order */
    for (int b = (int)n - 1; b >= p->n_blocks; b--) {
        p->ref[b] = 0;
        p->free_ids[p->n_free++] = b;
    }
    p->n_blocks = (int)n;
    return 0;
}

int gr_kv_pool_reserve(gr_kv_pool *p, int n_blocks) {
    if (p->max_blocks && n_blocks > p->max_blocks) n_blocks = p->max_blocks;
    return pool_grow(p, n_blocks); /* (at least doubles an existing pool) */
}

static int block_take(gr_kv_pool *p) {
    if (!p->n_free && pool_grow(p, p->n_blocks + 1)) return -1;
    int b = p->free_ids[--p->n_free];
    p->ref[b] = 1;
    if (gr_kv_pool_used(p) > p->peak_used) p->peak_used = gr_kv_pool_used(p);
    return b;
}

static uint64_t block_sum(const gr_kv_pool *p, int b) {
    const unsigned char *s = (const unsigned char *)p->lay.base + p->block_bytes * (size_t)b;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < p->block_bytes; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static void block_share(gr_kv_pool *p, int b) {
    if (++p->ref[b] == 2 && p->verify_shared && pool_on_host(p)) p->sum[b] = block_sum(p, b);
}

static void block_drop(gr_kv_pool *p, int b) {
    if (p->ref[b] == 2 && p->verify_shared && pool_on_host(p)) {
        p->shared_checked++;
        if (block_sum(p, b) != p->sum[b]) p->shared_changed++;
    }
    if (--p->ref[b] == 0) p->free_ids[p->n_free++] = b;
}

static void table_room(gr_kv *kv, int n) {
    if (n <= kv->cap_blocks) return;
    int cap = kv->cap_blocks ? kv->cap_blocks : 8;
    while (cap < n) cap *= 2;
    kv->blocks = gr_xrealloc(kv->blocks, sizeof(int) * (size_t)cap);
    kv->cap_blocks = cap;
}

gr_kv *gr_kv_new_in(gr_kv_pool *p, const gr_kv *prefix) {
    return gr_kv_new_in_len(p, prefix, prefix ? prefix->len : 0);
}

gr_kv *gr_kv_new_in_len(gr_kv_pool *p, const gr_kv *prefix, int len) {
    gr_kv *kv = gr_xcalloc(1, sizeof *kv);
    kv->pool = p;
    kv->n_layers = p->lay.n_layers;
    kv->kv_dim = p->lay.kv_dim;
    p->users++;
    if (!prefix || len <= 0) return kv;
    if (len > prefix->len) len = prefix->len;
    int full = len >> GR_KV_BLOCK_SHIFT, part = len & (GR_KV_BLOCK - 1);
    table_room(kv, full + (part ? 1 : 0));
    if (part) {
        /* the partial block is copied, so that this sequence's own positions never
         * land in a block another sequence reads */
        int b = block_take(p);
        if (b < 0) {
            gr_kv_free(kv);
            return NULL;
        }
        void *dst = (char *)p->lay.base + p->block_bytes * (size_t)b;
        const void *src = (const char *)p->lay.base + p->block_bytes * (size_t)prefix->blocks[full];
        if (pool_on_host(p)) memcpy(dst, src, p->block_bytes);
        else p->be->copy(p->be, dst, src, p->block_bytes);
        kv->blocks[full] = b;
    }
    for (int i = 0; i < full; i++) {
        kv->blocks[i] = prefix->blocks[i];
        block_share(p, prefix->blocks[i]);
    }
    kv->n_blocks = full + (part ? 1 : 0);
    kv->n_prefix = kv->len = len;
    return kv;
}

int gr_kv_try_reserve(gr_kv *kv, int len) {
    gr_kv_pool *p = kv->pool;
    int need = gr_kv_blocks_for(len) - kv->n_blocks;
    if (need <= 0) return 0;
    if (p->n_free < need && pool_grow(p, p->n_blocks + (need - p->n_free))) return -1;
    table_room(kv, kv->n_blocks + need);
    for (int i = 0; i < need; i++) kv->blocks[kv->n_blocks++] = block_take(p);
    return 0;
}

int gr_kv_slot(gr_kv *kv, int pos) {
    int bi = pos >> GR_KV_BLOCK_SHIFT;
    if (pos < 0 || bi >= kv->n_blocks) return -1;
    int b = kv->blocks[bi];
    if (kv->pool->ref[b] > 1) {
        kv->pool->shared_write_refused++;
        return -1;
    }
    return b * GR_KV_BLOCK + (pos & (GR_KV_BLOCK - 1));
}

void gr_kv_free(gr_kv *kv) {
    if (!kv) return;
    for (int i = 0; i < kv->n_blocks; i++) block_drop(kv->pool, kv->blocks[i]);
    free(kv->blocks);
    pool_drop(kv->pool);
    free(kv);
}

/* ---- the forward.h interface: caches in a host pool of their own ------------- */
gr_kv *gr_kv_new(const gr_model *m, const gr_kv *prefix) {
    if (prefix) {
        gr_kv *kv = gr_kv_new_in(prefix->pool, prefix);
        if (!kv) {
            fprintf(stderr, "out of memory (the KV pool is full)\n");
            abort();
        }
        return kv;
    }
    gr_kv_pool *p = gr_kv_pool_new(NULL, m->cfg.n_layers, m->cfg.n_kv_heads * m->cfg.head_dim, 0);
    gr_kv *kv = gr_kv_new_in(p, NULL);
    gr_kv_pool_release(p);
    return kv;
}

void gr_kv_reserve(gr_kv *kv, int len) {
    if (gr_kv_try_reserve(kv, kv->n_prefix + len)) {
        fprintf(stderr, "out of memory (a KV cache of %d positions)\n", kv->n_prefix + len);
        abort();
    }
}

void gr_kv_truncate(gr_kv *kv, int pos) {
    if (pos < kv->n_prefix) pos = kv->n_prefix;
    if (pos < kv->len) kv->len = pos;
}
