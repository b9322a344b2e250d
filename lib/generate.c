/* Continuous-batching generation: see generate.h. */
#include "generate.h"
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    int req;        /* index into reqs, -1 when free */
    gr_kv *kv;
    gr_rng rng;
    int pending;    /* the token to feed next (decode) */
    int prefill;    /* 1: the prompt is still to be fed */
    uint64_t step;  /* tokens sampled so far (the device sampler's counter) */
    int from;       /* first prompt token to feed (after the shared prefix) */
} slot;

void gr_gen_req_free(gr_gen_req *r) {
    free(r->out);
    free(r->logprobs);
    free(r->watch);
    r->out = NULL;
    r->logprobs = NULL;
    r->watch = NULL;
    r->n_out = r->cap_out = 0;
}

/* logits: the whole row when `watch` is given, else the n_watch watched values. */
static void push_token(gr_gen_req *r, int tok, float lp, const float *logits, const int *watch,
                       const gr_gen_opts *o) {
    if (r->n_out == r->cap_out) {
        r->cap_out = r->cap_out ? 2 * r->cap_out : 64;
        r->out = gr_xrealloc(r->out, sizeof(int) * (size_t)r->cap_out);
        if (o->logprobs) r->logprobs = gr_xrealloc(r->logprobs, sizeof(float) * (size_t)r->cap_out);
        if (o->n_watch)
            r->watch = gr_xrealloc(r->watch, sizeof(float) * (size_t)r->cap_out * (size_t)o->n_watch);
    }
    r->out[r->n_out] = tok;
    if (o->logprobs) r->logprobs[r->n_out] = lp;
    for (int w = 0; w < o->n_watch; w++)
        r->watch[(size_t)r->n_out * o->n_watch + w] = watch ? logits[watch[w]] : logits[w];
    r->n_out++;
}

/* The array behind gr_generate, as a stream. */
typedef struct array_src {
    gr_gen_req *reqs;
    int n, next;
    gr_gen_done done;
    void *ud;
} array_src;

static void array_done(void *ud, gr_gen_req *req, int index) {
    array_src *a = ud;
    if (a->done) a->done(a->ud, req, index); /* pull numbers are the array's indices */
}

static int array_pull(void *ud, gr_gen_req **req, gr_err *err) {
    (void)err;
    array_src *a = ud;
    if (a->next >= a->n) return GR_PULL_END;
    *req = &a->reqs[a->next++];
    return GR_PULL_OK;
}

int gr_generate(gr_ctx *c, gr_gen_req *reqs, int n, const gr_gen_opts *o, gr_gen_done done, void *ud,
                gr_err *err) {
    const gr_model *m = c->model;
    int max_len = o->max_len > 0 && o->max_len < m->cfg.max_pos ? o->max_len : m->cfg.max_pos;
    gr_gen_opts g = *o;
    if (!g.expect_len && !g.pool) {
        /* a device pool sized once for the longest sequences (growing it copies it) */
        int longest = 0;
        for (int i = 0; i < n; i++) {
            int t = reqs[i].n_prompt + (o->max_tokens > 0 ? o->max_tokens : 0);
            if (t > longest) longest = t < max_len ? t : max_len;
        }
        g.expect_len = longest;
        if (n < g.max_batch) g.max_batch = n > 0 ? n : 1; /* no more slots than requests */
    }
    array_src a = {reqs, n, 0, done, ud};
    return gr_generate_stream(c, &g, array_pull, array_done, &a, err);
}

/* How many leading tokens of the prompt the prefix's KV can stand for: all of
 * the prefix when the prompt starts with it (and is longer), else the common
 * tokens when they fill a block or more; 0: none. */
static int prefix_use(const gr_gen_req *r, const gr_gen_opts *o) {
    int lim = o->n_prefix < r->n_prompt - 1 ? o->n_prefix : r->n_prompt - 1, j = 0;
    while (j < lim && r->prompt[j] == o->prefix[j]) j++;
    if (j == o->n_prefix) return j;
    return j >= GR_KV_BLOCK ? j : 0;
}

int gr_generate_stream(gr_ctx *c, const gr_gen_opts *o, gr_gen_pull pull, gr_gen_done done, void *ud,
                       gr_err *err) {
    const gr_model *m = c->model;
    int V = m->cfg.vocab_size;
    int max_len = o->max_len > 0 && o->max_len < m->cfg.max_pos ? o->max_len : m->cfg.max_pos;
    int B = o->max_batch > 0 ? o->max_batch : 1;
    for (int w = 0; w < o->n_watch; w++)
        if (o->watch[w] < 0 || o->watch[w] >= V) return gr_errf(err, "generate: watched id out of range");
    int rc = 0;
    if (o->step && o->step(o->step_ud, 0, 0)) return 0;
    gr_backend *be = c->be;
    gr_kv_pool *pool = o->pool;
    if (!pool) {
        pool = gr_kv_pool_new(be, m->cfg.n_layers, m->cfg.n_kv_heads * m->cfg.head_dim, 0);
        if (!be->host_memory && o->expect_len > 0) {
            /* if the device says no, the pool grows as needed */
            int64_t want = (int64_t)B * (gr_kv_blocks_for(o->expect_len) + 1) +
                           gr_kv_blocks_for(o->n_prefix > 0 ? o->n_prefix : 0);
            if (want < INT32_MAX / 4) (void)gr_kv_pool_reserve(pool, (int)want);
        }
    } else {
        pool->users++;
    }
    gr_kv *prefix = NULL;
    if (o->prefix && o->n_prefix > 0) {
        prefix = gr_kv_new_in(pool, NULL);
        const int *pt = o->prefix;
        int np = o->n_prefix;
        if (gr_kv_try_reserve(prefix, np)) {
            gr_kv_free(prefix);
            gr_kv_pool_release(pool);
            return gr_errf(err, "generate: the KV pool has no room for the shared prefix (%d tokens)", np);
        }
        if (gr_forward(c, &prefix, &pt, &np, 1, NULL, 0, err)) {
            gr_kv_free(prefix);
            gr_kv_pool_release(pool);
            return -1;
        }
    }
    slot *slots = gr_xcalloc((size_t)B, sizeof *slots);
    gr_gen_req **sreq = gr_xcalloc((size_t)B, sizeof *sreq); /* the slots' requests */
    for (int s = 0; s < B; s++) slots[s].req = -1;
    gr_sample_row *srows = gr_xmalloc(sizeof *srows * (size_t)B);
    int *dtok = gr_xmalloc(sizeof(int) * (size_t)B);
    float *dlp = gr_xmalloc(sizeof(float) * (size_t)B);
    float *dwatch = gr_xmalloc(sizeof(float) * (size_t)B * (size_t)(o->n_watch ? o->n_watch : 1));
    gr_kv **kvs = gr_xmalloc(sizeof(gr_kv *) * (size_t)B);
    const int **toks = gr_xmalloc(sizeof(int *) * (size_t)B);
    int *ntok = gr_xmalloc(sizeof(int) * (size_t)B), *which = gr_xmalloc(sizeof(int) * (size_t)B);
    gr_sample_buf sb;
    gr_sample_buf_init(&sb, V);
    gr_gen_req *held = NULL; /* pulled, waiting for a slot or blocks */
    int held_index = 0, pulled = 0, ended = 0, active = 0;
    for (;;) {
        /* admit: refill every free slot from the stream */
        int waiting = 0;
        for (int s = 0; s < B; s++) {
            if (slots[s].req >= 0) continue;
            if (!held) {
                if (ended) break;
                gr_gen_req *q = NULL;
                int p = pull(ud, &q, err);
                if (p < 0) {
                    rc = -1;
                    goto out;
                }
                if (p == GR_PULL_END) {
                    ended = 1;
                    break;
                }
                if (p == GR_PULL_WAIT) {
                    waiting = 1;
                    break;
                }
                held = q;
                held_index = pulled++;
            }
            gr_gen_req *r = held;
            r->n_out = 0;
            r->stop = GR_STOP_NONE;
            r->eos_id = -1;
            if (r->n_prompt < 1 || r->n_prompt >= max_len) {
                r->stop = GR_STOP_TOO_LONG;
                held = NULL;
                if (done) done(ud, r, held_index);
                s--; /* try this slot again */
                continue;
            }
            int from = prefix ? prefix_use(r, o) : 0;
            /* its blocks for its final length, prompt + new tokens within max_len,
             * all at admission: a running sequence never waits for memory */
            int total = r->n_prompt + (o->max_tokens > 0 ? o->max_tokens : 0);
            if (total > max_len) total = max_len;
            gr_kv *kv = gr_kv_new_in_len(pool, from ? prefix : NULL, from);
            if (!kv || gr_kv_try_reserve(kv, total)) {
                gr_kv_free(kv);
                if (active > 0) break; /* wait for a running sequence's blocks */
                rc = gr_errf(err, "generate: the KV pool cannot hold one sequence of %d positions", total);
                goto out;
            }
            slots[s].req = held_index;
            sreq[s] = r;
            held = NULL;
            slots[s].kv = kv;
            slots[s].from = from;
            slots[s].step = 0;
            slots[s].prefill = 1;
            gr_rng_seed(&slots[s].rng, o->seed, r->stream);
            active++;
        }
        if (active == 0) {
            if (held || waiting)
                rc = gr_errf(err, "generate: the input stream waits while no sequence is running");
            break;
        }
        /* one forward call: prefills and decode steps together */
        int nb = 0;
        for (int s = 0; s < B; s++) {
            if (slots[s].req < 0) continue;
            gr_gen_req *r = sreq[s];
            kvs[nb] = slots[s].kv;
            if (slots[s].prefill) {
                toks[nb] = r->prompt + slots[s].from;
                ntok[nb] = r->n_prompt - slots[s].from;
            } else {
                toks[nb] = &slots[s].pending;
                ntok[nb] = 1;
            }
            which[nb++] = s;
        }
        const float *lgd;
        if (gr_forward_dev(c, kvs, toks, ntok, nb, &lgd, 0, err)) {
            rc = -1;
            break;
        }
        int fed = 0;
        for (int b = 0; b < nb; b++) fed += ntok[b];
        if (be->sample) {
            for (int b = 0; b < nb; b++) {
                slot *sl = &slots[which[b]];
                srows[b] = (gr_sample_row){o->sampler.temperature, o->sampler.top_p, o->sampler.top_k,
                                           o->seed, sreq[which[b]]->stream, sl->step};
            }
            if (be->sample(be, lgd, nb, V, srows, o->watch, o->n_watch, dtok, o->logprobs ? dlp : NULL,
                           o->n_watch ? dwatch : NULL)) {
                rc = gr_errf(err, "generate: sampling on %s failed", be->name);
                break;
            }
        }
        for (int b = 0; b < nb; b++) {
            slot *sl = &slots[which[b]];
            gr_gen_req *r = sreq[which[b]];
            sl->prefill = 0;
            float lp = 0;
            int tok;
            const float *lg;
            if (be->sample) {
                tok = dtok[b];
                lp = o->logprobs ? dlp[b] : 0;
                lg = dwatch + (size_t)b * (size_t)o->n_watch; /* the watched logits, in order */
            } else {
                lg = lgd + (size_t)b * V; /* host memory */
                tok = gr_sample(lg, V, &o->sampler, &sl->rng, &sb, o->logprobs ? &lp : NULL);
            }
            sl->step++;
            int is_stop = 0;
            if (!o->ignore_eos) {
                is_stop = gr_model_is_eos(m, tok);
                for (int k = 0; k < o->n_stop && !is_stop; k++) is_stop = o->stop[k] == tok;
            }
            if (is_stop) {
                r->stop = GR_STOP_EOS;
                r->eos_id = tok;
            } else {
                push_token(r, tok, lp, lg, be->sample ? NULL : o->watch, o);
                if (r->n_out >= o->max_tokens || gr_kv_pos(sl->kv) + 1 >= max_len)
                    r->stop = GR_STOP_LENGTH;
            }
            if (r->stop) {
                gr_kv_free(sl->kv);
                sl->kv = NULL;
                int idx = sl->req;
                sl->req = -1;
                sreq[which[b]] = NULL;
                active--;
                if (done) done(ud, r, idx);
            } else {
                sl->pending = tok;
            }
        }
        if (o->step && o->step(o->step_ud, nb, fed)) break; /* the caller stops early */
    }
out:
    for (int s = 0; s < B; s++) gr_kv_free(slots[s].kv);
    gr_sample_buf_free(&sb);
    free(slots);
    free(sreq);
    free(srows);
    free(dtok);
    free(dlp);
    free(dwatch);
    free(kvs);
    free(toks);
    free(ntok);
    free(which);
    gr_kv_free(prefix);
    gr_kv_pool_release(pool);
    return rc;
}
