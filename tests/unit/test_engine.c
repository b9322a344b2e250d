/* The inference engine on the CPU backend: the paged KV cache (blocks, block
 * tables, reference-counted shared prefix blocks) and continuous batching.
 *   - continuous batching (with the shared prefix, and with a pool so small that
 *     admissions wait for blocks) gives the same greedy tokens as generating the
 *     50 records one at a time, each alone, without a prefix;
 *   - every block is back in the pool at the end;
 *   - shared prefix blocks are never written after they are shared: writes are
 *     refused, and their checksums (taken when shared) still hold when released;
 *   - fed from a stream (gr_generate_stream), in another order, with an input
 *     that is sometimes not ready, a freed slot is refilled at once (every step
 *     runs a full batch until the input ends) and the tokens, greedy and
 *     sampled, are the same as one at a time. */
#include <stdlib.h>
#include "test.h"
#include "generate.h"

static gr_model *load(const char *name) {
    char path[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(path, sizeof path, "%s/testdata/models/%s", root ? root : ".", name);
    gr_err err;
    gr_model *m = gr_model_load(path, &err);
    if (!m) fprintf(stderr, "%s\n", err.msg);
    return m;
}

enum { N_REC = 50, PREFIX = 37, MAX_TOK = 24 };

typedef struct corpus {
    int *ids[N_REC];
    int n[N_REC];
    int prefix[PREFIX];
} corpus;

/* 50 prompts of mixed lengths (prefix + 1..90 tokens); 40 start with the shared
 * prefix, 10 do not (they take the path without it). */
static void make_corpus(corpus *c, int vocab) {
    uint64_t x = 12345;
#define NEXT() (x = x * 6364136223846793005ull + 1442695040888963407ull, (int)((x >> 33) % (uint64_t)(vocab - 3)) + 3)
    for (int i = 0; i < PREFIX; i++) c->prefix[i] = NEXT();
    for (int r = 0; r < N_REC; r++) {
        int own = 1 + (r * 37 + 11) % 90;
        int with = r % 5 != 4;
        c->n[r] = (with ? PREFIX : 0) + own;
        c->ids[r] = malloc(sizeof(int) * (size_t)c->n[r]);
        int k = 0;
        if (with) for (int i = 0; i < PREFIX; i++) c->ids[r][k++] = c->prefix[i];
        while (k < c->n[r]) c->ids[r][k++] = NEXT();
    }
#undef NEXT
}

static void free_corpus(corpus *c) {
    for (int r = 0; r < N_REC; r++) free(c->ids[r]);
}

/* Generation for records [from, to) with these options; 0 on success. */
static int gen(gr_ctx *ctx, const corpus *cp, gr_gen_req *reqs, int from, int to, int batch,
               int use_prefix, gr_kv_pool *pool) {
    static const int stop[2] = {7, 11}; /* end ids, so that the records finish at different steps */
    gr_gen_opts o = {.sampler = {0.0f, 1.0f, 0}, .max_tokens = MAX_TOK, .max_batch = batch,
                     .stop = stop, .n_stop = 2, .pool = pool};
    if (use_prefix) {
        o.prefix = cp->prefix;
        o.n_prefix = PREFIX;
    }
    for (int r = from; r < to; r++) {
        reqs[r].prompt = cp->ids[r];
        reqs[r].n_prompt = cp->n[r];
        reqs[r].stream = (uint64_t)r;
    }
    gr_err err;
    if (gr_generate(ctx, reqs + from, to - from, &o, NULL, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int same_tokens(const gr_gen_req *a, const gr_gen_req *b, int *lens_differ) {
    int bad = 0, n_lens[MAX_TOK + 2] = {0};
    for (int r = 0; r < N_REC; r++) {
        if (a[r].n_out != b[r].n_out || a[r].stop != b[r].stop ||
            (a[r].n_out && memcmp(a[r].out, b[r].out, sizeof(int) * (size_t)a[r].n_out))) {
            printf("# record %d: %d vs %d tokens\n", r, a[r].n_out, b[r].n_out);
            bad++;
        }
        n_lens[a[r].n_out <= MAX_TOK ? a[r].n_out : MAX_TOK + 1]++;
    }
    int distinct = 0;
    for (int i = 0; i < MAX_TOK + 2; i++) distinct += n_lens[i] > 0;
    *lens_differ = distinct;
    return bad == 0;
}

TEST(continuous_batching_equals_one_at_a_time) {
    gr_model *m = load("tiny-mha-untied");
    CHECK(m);
    corpus cp;
    make_corpus(&cp, m->cfg.vocab_size);
    gr_backend *be = gr_backend_cpu(2);
    gr_ctx *ctx = gr_ctx_new(m, be);
    gr_gen_req *alone = calloc(N_REC, sizeof *alone), *batched = calloc(N_REC, sizeof *batched),
               *tight = calloc(N_REC, sizeof *tight);
    /* one at a time: each record alone, no prefix, its own pool */
    for (int r = 0; r < N_REC; r++) CHECK(gen(ctx, &cp, alone, r, r + 1, 1, 0, NULL) == 0);
    /* continuous batching, 8 slots, the shared prefix, a pool checked for sharing */
    gr_kv_pool *pool = gr_kv_pool_new(be, m->cfg.n_layers, m->cfg.n_kv_heads * m->cfg.head_dim, 0);
    gr_kv_pool_verify_shared(pool);
    CHECK(gen(ctx, &cp, batched, 0, N_REC, 8, 1, pool) == 0);
    int distinct;
    CHECK(same_tokens(alone, batched, &distinct));
    printf("# %d distinct output lengths; pool peak %d blocks of %d positions\n", distinct,
           pool->peak_used, GR_KV_BLOCK);
    CHECK(distinct >= 3);                 /* the records did finish at different steps */
    CHECK(gr_kv_pool_used(pool) == 0);    /* every block returned */
    CHECK(pool->peak_used > 8);
    CHECK(pool->shared_write_refused == 0);
    CHECK(pool->shared_checked > 0);      /* shared blocks were released and verified ... */
    CHECK(pool->shared_changed == 0);     /* ... unchanged since they were shared */
    gr_kv_pool_release(pool);
    /* a pool with room for about three sequences at once: admissions wait for
     * finishing sequences' blocks, the output stays the same */
    int per = gr_kv_blocks_for(PREFIX + 90 + MAX_TOK);
    gr_kv_pool *small = gr_kv_pool_new(be, m->cfg.n_layers, m->cfg.n_kv_heads * m->cfg.head_dim,
                                       3 * per + 3);
    CHECK(gen(ctx, &cp, tight, 0, N_REC, 8, 1, small) == 0);
    CHECK(same_tokens(alone, tight, &distinct));
    CHECK(small->peak_used <= 3 * per + 3);
    CHECK(gr_kv_pool_used(small) == 0);
    /* a pool that cannot hold one sequence is an error, not a hang */
    gr_kv_pool *tiny = gr_kv_pool_new(be, m->cfg.n_layers, m->cfg.n_kv_heads * m->cfg.head_dim, 2);
    gr_err err;
    gr_gen_opts o = {.sampler = {0.0f, 1.0f, 0}, .max_tokens = MAX_TOK, .max_batch = 4, .pool = tiny};
    gr_gen_req one = {.prompt = cp.ids[0], .n_prompt = cp.n[0]};
    CHECK(gr_generate(ctx, &one, 1, &o, NULL, NULL, &err) == -1);
    CHECK(strstr(err.msg, "KV pool") != NULL);
    CHECK(gr_kv_pool_used(tiny) == 0);
    gr_gen_req_free(&one);
    gr_kv_pool_release(tiny);
    gr_kv_pool_release(small);
    for (int r = 0; r < N_REC; r++) {
        gr_gen_req_free(&alone[r]);
        gr_gen_req_free(&batched[r]);
        gr_gen_req_free(&tight[r]);
    }
    free(alone);
    free(batched);
    free(tight);
    gr_ctx_free(ctx);
    gr_backend_free(be);
    free_corpus(&cp);
    gr_model_free(m);
}

/* A stream over the corpus in a permuted order; from the 25th record on,
 * every third pull first says "not now" (an input not ready yet). */
typedef struct stream {
    gr_gen_req *reqs;
    int order[N_REC], next, pulls, running, waits;
    int done_seen[N_REC];
    int B, full_steps, short_steps, ended;
} stream;

static int stream_pull(void *ud, gr_gen_req **req, gr_err *err) {
    (void)err;
    stream *S = ud;
    if (S->next >= N_REC) {
        S->ended = 1;
        return GR_PULL_END;
    }
    if (S->next >= 25 && S->running > 0 && S->pulls++ % 3 == 2) {
        S->waits++;
        return GR_PULL_WAIT;
    }
    *req = &S->reqs[S->order[S->next++]];
    S->running++;
    return GR_PULL_OK;
}

static void stream_done(void *ud, gr_gen_req *req, int index) {
    stream *S = ud;
    S->running--;
    int r = (int)(req - S->reqs);
    if (r >= 0 && r < N_REC && S->order[index] == r) S->done_seen[r]++;
}

static int stream_step(void *ud, int n_seqs, int n_fed) {
    (void)n_fed;
    stream *S = ud;
    if (n_seqs == 0) return 0;
    if (!S->ended && S->waits == 0) S->full_steps += n_seqs == S->B; /* before any wait */
    if (!S->ended && S->waits == 0 && n_seqs != S->B) S->short_steps++;
    return 0;
}

static int gen_stream(gr_ctx *ctx, const corpus *cp, gr_gen_req *reqs, stream *S, int batch, float temp,
                      const int *prefix, int n_prefix, gr_kv_pool *pool) {
    static const int stop[2] = {7, 11};
    gr_gen_opts o = {.sampler = {temp, temp > 0 ? 0.9f : 1.0f, 0}, .seed = 99, .max_tokens = MAX_TOK,
                     .max_batch = batch, .stop = stop, .n_stop = 2, .pool = pool, .prefix = prefix,
                     .n_prefix = n_prefix, .step = stream_step, .step_ud = S};
    for (int r = 0; r < N_REC; r++) {
        reqs[r].prompt = cp->ids[r];
        reqs[r].n_prompt = cp->n[r];
        reqs[r].stream = (uint64_t)r;
    }
    S->reqs = reqs;
    S->B = batch;
    for (int i = 0; i < N_REC; i++) S->order[i] = (i * 17 + 5) % N_REC; /* 17 is prime to 50 */
    gr_err err;
    if (gr_generate_stream(ctx, &o, stream_pull, stream_done, S, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

TEST(stream_refills_at_once_and_matches_one_at_a_time) {
    gr_model *m = load("tiny-gqa-tied");
    CHECK(m);
    corpus cp;
    make_corpus(&cp, m->cfg.vocab_size);
    gr_backend *be = gr_backend_cpu(2);
    gr_ctx *ctx = gr_ctx_new(m, be);
    int kvd = m->cfg.n_kv_heads * m->cfg.head_dim;
    for (int pass = 0; pass < 2; pass++) {
        float temp = pass ? 0.8f : 0.0f; /* greedy, then sampled: seeded per sequence */
        gr_gen_req alone[N_REC], streamed[N_REC];
        memset(alone, 0, sizeof alone);
        memset(streamed, 0, sizeof streamed);
        static const int stop[2] = {7, 11};
        gr_gen_opts o1 = {.sampler = {temp, temp > 0 ? 0.9f : 1.0f, 0}, .seed = 99, .max_tokens = MAX_TOK,
                          .max_batch = 1, .stop = stop, .n_stop = 2};
        gr_err err;
        for (int r = 0; r < N_REC; r++) {
            alone[r] = (gr_gen_req){.prompt = cp.ids[r], .n_prompt = cp.n[r], .stream = (uint64_t)r};
            CHECK(gr_generate(ctx, &alone[r], 1, &o1, NULL, NULL, &err) == 0);
        }
        /* the stream: 6 slots, a pool checked for sharing; the prefix given is the
         * corpus prefix with its last 17 tokens changed, so that prompts share
         * only its first 20 tokens (one full block and a copied partial one) */
        int prefix[PREFIX];
        memcpy(prefix, cp.prefix, sizeof prefix);
        for (int i = 20; i < PREFIX; i++) prefix[i] = 1 + (prefix[i] + 1) % (m->cfg.vocab_size - 1);
        gr_kv_pool *pool = gr_kv_pool_new(be, m->cfg.n_layers, kvd, 0);
        gr_kv_pool_verify_shared(pool);
        stream S;
        memset(&S, 0, sizeof S);
        CHECK(gen_stream(ctx, &cp, streamed, &S, 6, temp, prefix, PREFIX, pool) == 0);
        int distinct, every_once = 1;
        CHECK(same_tokens(alone, streamed, &distinct));
        for (int r = 0; r < N_REC; r++) every_once &= S.done_seen[r] == 1;
        CHECK(every_once);     /* each finished once, with its pull number */
        CHECK(S.running == 0);
        CHECK(S.waits > 0);    /* the input did say "not now" ... */
        CHECK(S.full_steps > 0 && S.short_steps == 0); /* ... and until then every step was full */
        printf("# %s: %d distinct lengths; %d full steps before the first wait; %d waits\n",
               pass ? "sampled" : "greedy", distinct, S.full_steps, S.waits);
        CHECK(gr_kv_pool_used(pool) == 0);
        CHECK(pool->shared_write_refused == 0);
        CHECK(pool->shared_checked > 0 && pool->shared_changed == 0);
        gr_kv_pool_release(pool);
        /* with a pool that holds about two sequences: pulled requests wait for
         * blocks, the result is the same */
        int per = gr_kv_blocks_for(PREFIX + 90 + MAX_TOK);
        gr_kv_pool *small = gr_kv_pool_new(be, m->cfg.n_layers, kvd, 2 * per + 2);
        gr_gen_req tight[N_REC];
        memset(tight, 0, sizeof tight);
        memset(&S, 0, sizeof S);
        CHECK(gen_stream(ctx, &cp, tight, &S, 6, temp, cp.prefix, PREFIX, small) == 0);
        CHECK(same_tokens(alone, tight, &distinct));
        CHECK(small->peak_used <= 2 * per + 2 && gr_kv_pool_used(small) == 0);
        gr_kv_pool_release(small);
        for (int r = 0; r < N_REC; r++) {
            gr_gen_req_free(&alone[r]);
            gr_gen_req_free(&streamed[r]);
            gr_gen_req_free(&tight[r]);
        }
    }
    gr_ctx_free(ctx);
    gr_backend_free(be);
    free_corpus(&cp);
    gr_model_free(m);
}

static int wait_always(void *ud, gr_gen_req **req, gr_err *err) {
    (void)ud, (void)req, (void)err;
    return GR_PULL_WAIT;
}

TEST(stream_waiting_with_nothing_running_is_an_error) {
    gr_model *m = load("tiny-gqa-tied");
    CHECK(m);
    gr_backend *be = gr_backend_cpu(1);
    gr_ctx *ctx = gr_ctx_new(m, be);
    gr_gen_opts o = {.sampler = {0.0f, 1.0f, 0}, .max_tokens = 4, .max_batch = 2};
    gr_err err;
    CHECK(gr_generate_stream(ctx, &o, wait_always, NULL, NULL, &err) == -1);
    CHECK(strstr(err.msg, "waits") != NULL);
    gr_ctx_free(ctx);
    gr_backend_free(be);
    gr_model_free(m);
}

/* forward.c's graph hooks (backend.h graph_begin / graph_end), driven on the
 * CPU by fake hooks: a decode step is wrapped in them with a key that repeats
 * for steps of one shape; when a "capture" fails (graph_end -1) the ops run
 * again plainly; the tokens are those of a run without hooks. */
static struct { uint64_t keys[256]; int n_keys, begins, ends, failed_ends; } fk;

static int fake_begin(gr_backend *b, uint64_t key) {
    (void)b;
    fk.begins++;
    for (int i = 0; i < fk.n_keys; i++)
        if (fk.keys[i] == key) return 0; /* "capture": the ops run, then graph_end */
    if (fk.n_keys < 256) fk.keys[fk.n_keys++] = key;
    return -1; /* first sight: plainly */
}

static int fake_end(gr_backend *b, uint64_t key) {
    (void)b, (void)key;
    fk.ends++;
    if (fk.ends % 2) return 0;
    fk.failed_ends++;
    return -1; /* a failed capture: forward.c queues the ops again */
}

TEST(graph_hooks_wrap_decode_steps) {
    gr_model *m = load("tiny-gqa-tied");
    CHECK(m);
    corpus cp;
    make_corpus(&cp, m->cfg.vocab_size);
    gr_backend *be = gr_backend_cpu(2);
    gr_ctx *ctx = gr_ctx_new(m, be);
    gr_gen_req *plain = calloc(N_REC, sizeof *plain), *hooked = calloc(N_REC, sizeof *hooked);
    CHECK(gen(ctx, &cp, plain, 0, N_REC, 4, 1, NULL) == 0);
    memset(&fk, 0, sizeof fk);
    be->graph_begin = fake_begin;
    be->graph_end = fake_end;
    be->use_graphs = 1;
    CHECK(gen(ctx, &cp, hooked, 0, N_REC, 4, 1, NULL) == 0);
    be->graph_begin = NULL;
    be->graph_end = NULL;
    int distinct;
    CHECK(same_tokens(plain, hooked, &distinct));
    printf("# %d decode steps wrapped, %d keys, %d captures, %d failed\n", fk.begins, fk.n_keys, fk.ends,
           fk.failed_ends);
    CHECK(fk.begins > 50);            /* decode steps went through the hooks ... */
    CHECK(fk.n_keys >= 2 && fk.n_keys <= 16); /* ... keyed by shape: batch 1..4 x a few table widths */
    CHECK(fk.ends > 0 && fk.failed_ends > 0);
    for (int r = 0; r < N_REC; r++) {
        gr_gen_req_free(&plain[r]);
        gr_gen_req_free(&hooked[r]);
    }
    free(plain);
    free(hooked);
    gr_ctx_free(ctx);
    gr_backend_free(be);
    free_corpus(&cp);
    gr_model_free(m);
}

TEST(shared_blocks_are_read_only) {
    gr_model *m = load("tiny-gqa-tied");
    CHECK(m);
    gr_backend *be = gr_backend_cpu(1);
    gr_ctx *ctx = gr_ctx_new(m, be);
    gr_kv_pool *p = gr_kv_pool_new(be, m->cfg.n_layers, m->cfg.n_kv_heads * m->cfg.head_dim, 0);
    gr_kv_pool_verify_shared(p);
    int toks[40];
    for (int i = 0; i < 40; i++) toks[i] = 3 + (i * 7) % 50;
    gr_kv *pre = gr_kv_new_in(p, NULL);
    const int *tp = toks;
    int n = 40;
    gr_err err;
    CHECK(gr_forward(ctx, &pre, &tp, &n, 1, NULL, 0, &err) == 0);
    CHECK(pre->len == 40 && pre->n_blocks == 3); /* 16 + 16 + 8 */
    CHECK(gr_kv_pool_used(p) == 3);
    gr_kv *a = gr_kv_new_in(p, pre), *b = gr_kv_new_in(p, pre);
    CHECK(a && b && a->len == 40 && a->n_prefix == 40);
    /* the two full blocks are shared, the partial one copied */
    CHECK(a->blocks[0] == pre->blocks[0] && a->blocks[1] == pre->blocks[1]);
    CHECK(a->blocks[2] != pre->blocks[2] && b->blocks[2] != a->blocks[2]);
    CHECK(p->ref[pre->blocks[0]] == 3 && p->ref[pre->blocks[2]] == 1);
    CHECK(gr_kv_pool_used(p) == 5);
    /* the copy holds the prefix's rows */
    CHECK(memcmp(gr_kv_k(a, 1, 35), gr_kv_k(pre, 1, 35), sizeof(float) * (size_t)a->kv_dim) == 0);
    /* a position in a shared block cannot be written, in the child or the prefix */
    CHECK(gr_kv_slot(a, 5) == -1 && gr_kv_slot(pre, 20) == -1);
    CHECK(p->shared_write_refused == 2);
    CHECK(gr_kv_slot(a, 40) >= 0);
    gr_kv_truncate(pre, 10);
    int one = 9;
    const int *op = &one;
    int n1 = 1;
    CHECK(gr_forward(ctx, &pre, &op, &n1, 1, NULL, 0, &err) == -1);
    CHECK(strstr(err.msg, "shared") != NULL);
    /* the children go on from position 40 */
    gr_kv *ab[2] = {a, b};
    const int *t2[2] = {op, op};
    int n2[2] = {1, 1};
    float logits[2 * 512];
    CHECK(m->cfg.vocab_size <= 512);
    CHECK(gr_forward(ctx, ab, t2, n2, 2, logits, 0, &err) == 0);
    CHECK(a->len == 41 && b->len == 41);
    CHECK(memcmp(logits, logits + m->cfg.vocab_size, sizeof(float) * (size_t)m->cfg.vocab_size) == 0);
    gr_kv_free(a);
    CHECK(p->ref[pre->blocks[0]] == 2);
    /* the check can fail: a shared block changed behind the cache's back is caught */
    float *blk = (float *)((char *)p->lay.base + p->block_bytes * (size_t)pre->blocks[0]);
    blk[3] += 1.0f;
    gr_kv_free(b);
    CHECK(p->shared_checked == 2 && p->shared_changed == 1); /* blocks 0 and 1; 0 changed */
    gr_kv_free(pre);
    CHECK(gr_kv_pool_used(p) == 0 && p->n_free == p->n_blocks);
    gr_kv_pool_release(p);
    gr_ctx_free(ctx);
    gr_backend_free(be);
    gr_model_free(m);
}

TEST(pool_grows_and_limits) {
    gr_backend *be = gr_backend_cpu(1);
    gr_kv_pool *p = gr_kv_pool_new(be, 2, 8, 40);
    gr_kv *a = gr_kv_new_in(p, NULL), *b = gr_kv_new_in(p, NULL);
    CHECK(gr_kv_try_reserve(a, 17 * GR_KV_BLOCK) == 0); /* grows 0 -> 17 blocks */
    CHECK(a->n_blocks == 17 && gr_kv_pool_used(p) == 17);
    CHECK(gr_kv_try_reserve(b, 24 * GR_KV_BLOCK) == -1); /* 41 > 40 */
    CHECK(b->n_blocks == 0 && gr_kv_pool_used(p) == 17);
    CHECK(gr_kv_try_reserve(b, 23 * GR_KV_BLOCK) == 0);
    CHECK(gr_kv_pool_available(p) == 0);
    CHECK(gr_kv_slot(b, 23 * GR_KV_BLOCK) == -1); /* not reserved */
    gr_kv_free(a);
    CHECK(gr_kv_pool_available(p) == 17);
    gr_kv_free(b);
    CHECK(gr_kv_pool_used(p) == 0);
    gr_kv_pool_release(p);
    /* reserving up front: one growth to the size asked, capped by the limit */
    gr_kv_pool *q = gr_kv_pool_new(be, 2, 8, 100);
    CHECK(gr_kv_pool_reserve(q, 70) == 0 && q->n_blocks == 70 && q->n_free == 70);
    CHECK(gr_kv_pool_reserve(q, 500) == 0 && q->n_blocks == 100);
    gr_kv_pool_release(q);
    gr_backend_free(be);
}

int main(void) {
    RUN(continuous_batching_equals_one_at_a_time);
    RUN(stream_refills_at_once_and_matches_one_at_a_time);
    RUN(stream_waiting_with_nothing_running_is_an_error);
    RUN(graph_hooks_wrap_decode_steps);
    RUN(shared_blocks_are_read_only);
    RUN(pool_grows_and_limits);
    return TEST_EXIT();
}
