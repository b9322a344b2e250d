/* Byte-pair encoding of one pre-tokenized piece, and the two hash maps it
 * uses (token bytes -> id, and pair of ids -> merge).
 *
 * Merge order is the one Hugging Face tokenizers and tiktoken share: the
 * adjacent pair with the lowest rank merges first, the leftmost on a tie. Short
 * pieces use a plain scan (pieces are mostly a few bytes); long ones a binary
 * heap with lazy deletion, so a 1 MB run of one letter is O(n log n), not
 * quadratic. */
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"

static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    return h;
}

static inline uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline const unsigned char *tok_ptr(const gr_tokenizer *t, int32_t id) {
    return (const unsigned char *)t->arena + t->off[id];
}

int32_t tok_vocab_find(const gr_tokenizer *t, const void *bytes, size_t len) {
    if (!t->vocab.slot) return -1;
    size_t i = (size_t)hash_bytes(bytes, len) & t->vocab.mask;
    for (;;) {
        uint32_t v = t->vocab.slot[i];
        if (!v) return -1;
        int32_t id = (int32_t)(v - 1);
        if (t->len[id] == len && memcmp(tok_ptr(t, id), bytes, len) == 0) return id;
        i = (i + 1) & t->vocab.mask;
    }
}

/* Builds the bytes -> id map over the ids marked in_bpe. When two ids have the
 * same bytes the lower id wins (as a vocabulary dict keeps one). */
void tok_build_vocab_map(gr_tokenizer *t) {
    size_t cap = 16;
    while (cap < t->n_vocab * 2 + 2) cap <<= 1;
    free(t->vocab.slot);
    t->vocab.slot = gr_xcalloc(cap, sizeof(uint32_t));
    t->vocab.mask = cap - 1;
    for (size_t id = 0; id < t->n_vocab; id++) {
        if (!t->in_bpe[id]) continue;
        const unsigned char *p = tok_ptr(t, (int32_t)id);
        size_t i = (size_t)hash_bytes(p, t->len[id]) & t->vocab.mask, dup = 0;
        while (t->vocab.slot[i]) {
            int32_t o = (int32_t)(t->vocab.slot[i] - 1);
            if (t->len[o] == t->len[id] && memcmp(tok_ptr(t, o), p, t->len[id]) == 0) {
                dup = 1;
                break;
            }
            i = (i + 1) & t->vocab.mask;
        }
        if (!dup) t->vocab.slot[i] = (uint32_t)id + 1;
    }
}

static void pair_grow(tok_pairmap *m) {
    size_t cap = m->slot ? (m->mask + 1) * 2 : 1024;
    tok_pair *old = m->slot;
    size_t old_cap = m->slot ? m->mask + 1 : 0;
    m->slot = gr_xcalloc(cap, sizeof(tok_pair));
    m->mask = cap - 1;
    for (size_t k = 0; k < old_cap; k++) {
        if (!old[k].key) continue;
        size_t i = (size_t)hash_u64(old[k].key) & m->mask;
        while (m->slot[i].key) i = (i + 1) & m->mask;
        m->slot[i] = old[k];
    }
    free(old);
}

/* Adds a merge; an existing pair keeps its (earlier, lower) rank. */
void tok_pair_put(tok_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t result) {
    if (!m->slot || (m->n + 1) * 2 > m->mask + 1) pair_grow(m);
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = (size_t)hash_u64(key) & m->mask;
    while (m->slot[i].key) {
        if (m->slot[i].key == key) {
            if (rank < m->slot[i].rank) { m->slot[i].rank = rank; m->slot[i].result = result; }
            return;
        }
        i = (i + 1) & m->mask;
    }
    m->slot[i].key = key;
    m->slot[i].rank = rank;
    m->slot[i].result = result;
    m->n++;
}

static inline const tok_pair *pair_get(const tok_pairmap *m, int32_t a, int32_t b) {
    if (!m->slot) return NULL;
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = (size_t)hash_u64(key) & m->mask;
    for (;;) {
        const tok_pair *p = &m->slot[i];
        if (p->key == key) return p;
        if (!p->key) return NULL;
        i = (i + 1) & m->mask;
    }
}

void tok_merges_from_ranks(gr_tokenizer *t) {
    for (size_t id = 0; id < t->n_vocab; id++) {
        if (!t->in_bpe[id] || t->len[id] < 2) continue;
        const unsigned char *p = tok_ptr(t, (int32_t)id);
        for (size_t k = 1; k < t->len[id]; k++) {
            int32_t a = tok_vocab_find(t, p, k);
            if (a < 0) continue;
            int32_t b = tok_vocab_find(t, p + k, t->len[id] - k);
            if (b < 0) continue;
            tok_pair_put(&t->merges, a, b, (uint32_t)id, (int32_t)id);
        }
    }
}

/* ---- BPE ------------------------------------------------------------------ */
#define SMALL 64

static void bpe_small(const gr_tokenizer *t, const unsigned char *s, size_t n, gr_ids *out) {
    int32_t sym[SMALL];
    uint32_t rank[SMALL]; /* rank[i]: the pair (sym[i], sym[i+1]) */
    int32_t res[SMALL];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (t->byte_id[s[i]] >= 0) sym[m++] = t->byte_id[s[i]];
    for (size_t i = 0; i + 1 < m; i++) {
        const tok_pair *p = pair_get(&t->merges, sym[i], sym[i + 1]);
        rank[i] = p ? p->rank : UINT32_MAX;
        res[i] = p ? p->result : -1;
    }
    while (m > 1) {
        size_t best = 0;
        uint32_t br = UINT32_MAX;
        for (size_t i = 0; i + 1 < m; i++)
            if (rank[i] < br) { br = rank[i]; best = i; }
        if (br == UINT32_MAX) break;
        sym[best] = res[best];
        memmove(sym + best + 1, sym + best + 2, (m - best - 2) * sizeof *sym);
        memmove(rank + best + 1, rank + best + 2, (m - best - 2) * sizeof *rank);
        memmove(res + best + 1, res + best + 2, (m - best - 2) * sizeof *res);
        m--;
        for (size_t i = best ? best - 1 : 0; i <= best && i + 1 < m; i++) {
            const tok_pair *p = pair_get(&t->merges, sym[i], sym[i + 1]);
            rank[i] = p ? p->rank : UINT32_MAX;
            res[i] = p ? p->result : -1;
        }
    }
    gr_ids_append(out, sym, m);
}

typedef struct heap_ent {
    uint32_t rank;
    uint32_t pos;   /* left symbol index */
    int32_t left, right, result;
} heap_ent;

static inline int ent_less(const heap_ent *a, const heap_ent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

typedef struct heap { heap_ent *v; size_t n, cap; } heap;

static void heap_push(heap *h, heap_ent e) {
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->v = gr_xrealloc(h->v, h->cap * sizeof *h->v);
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ent_less(&e, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = e;
}

static heap_ent heap_pop(heap *h) {
    heap_ent top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && ent_less(&h->v[c + 1], &h->v[c])) c++;
        if (!ent_less(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static void bpe_large(const gr_tokenizer *t, const unsigned char *s, size_t n, gr_ids *out) {
    int32_t *sym = gr_xmalloc(n * sizeof *sym);
    uint32_t *next = gr_xmalloc(n * sizeof *next), *prev = gr_xmalloc(n * sizeof *prev);
    heap h = {0};
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (t->byte_id[s[i]] >= 0) sym[m++] = t->byte_id[s[i]];
    n = m;
    for (size_t i = 0; i < n; i++) {
        next[i] = (uint32_t)(i + 1);
        prev[i] = (uint32_t)(i ? i - 1 : UINT32_MAX);
    }
    for (size_t i = 0; i + 1 < n; i++) {
        const tok_pair *p = pair_get(&t->merges, sym[i], sym[i + 1]);
        if (p) heap_push(&h, (heap_ent){p->rank, (uint32_t)i, sym[i], sym[i + 1], p->result});
    }
    while (h.n) {
        heap_ent e = heap_pop(&h);
        uint32_t i = e.pos, j = next[i];
        /* stale when either side has changed since the entry was pushed */
        if (sym[i] != e.left || j >= n || sym[j] != e.right) continue;
        sym[i] = e.result;
        sym[j] = -1;
        next[i] = next[j];
        if (next[j] < n) prev[next[j]] = i;
        if (prev[i] != UINT32_MAX) {
            uint32_t k = prev[i];
            const tok_pair *p = pair_get(&t->merges, sym[k], sym[i]);
            if (p) heap_push(&h, (heap_ent){p->rank, k, sym[k], sym[i], p->result});
        }
        if (next[i] < n) {
            uint32_t k = next[i];
            const tok_pair *p = pair_get(&t->merges, sym[i], sym[k]);
            if (p) heap_push(&h, (heap_ent){p->rank, i, sym[i], sym[k], p->result});
        }
    }
    for (uint32_t i = 0; i < n; i = next[i]) gr_ids_push(out, sym[i]);
    free(h.v);
    free(sym);
    free(next);
    free(prev);
}

void tok_bpe_piece(const gr_tokenizer *t, const unsigned char *s, size_t n, gr_ids *out) {
    if (n == 1) {
        if (t->byte_id[s[0]] >= 0) gr_ids_push(out, t->byte_id[s[0]]);
        return;
    }
    if (t->ignore_merges) {
        int32_t id = tok_vocab_find(t, s, n);
        if (id >= 0) { gr_ids_push(out, id); return; }
    }
    if (n <= SMALL) bpe_small(t, s, n, out);
    else bpe_large(t, s, n, out);
}
