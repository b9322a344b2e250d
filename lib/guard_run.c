/* gr-classify / gr-sample driver: see guard_run.h. */
#include "guard_run.h"
#include <dirent.h>
#include <stddef.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "forward.h"
#include "generate.h"
#include "gr_lock.h"
#include "guard.h"
#include "guard_policy.h"
#include "guard_resume.h"
#include "guard_verdict.h"
#include "model.h"

/* ---- the items between the input and the output ---------------------------- */
enum { ITEM_QUEUED, ITEM_DONE, ITEM_WRITTEN };

typedef struct item {
    jv rec;            /* with id set */
    char *prompt_text; /* instruction + "\n" + input (sample records' `prompt`) */
    gr_ids ids;
    int k;             /* sample number (sample mode), 0 in classify mode */
    long pos;          /* the record's 0-based position in the input */
    char fp[GR_FINGERPRINT_HEX + 1];
    char policy[65];   /* sha256 of the instruction the record is classified with */
    int by_verdict;    /* decided by the verdict tier (--mode verdict / tiered) */
    int state;
    jv out;            /* the output record once done */
    gr_gen_req req;    /* its generation (streamed runs) */
} item;

typedef struct runner {
    const gr_run_opts *o;
    gr_model *m;
    gr_tokenizer *tok;
    gr_backend *be;
    gr_ctx *ctx;
    gr_guard_watch watch;
    gr_fast_plan fast;           /* --mode verdict / tiered */
    int stop[2], n_stop;
    size_t max_token_bytes; /* the longest token's bytes: a lower bound on a text's tokens */
    char *model_name;
    gr_writer *w;
    gr_run_stats *st;
    /* Items in input order, each allocated alone (their addresses stay put):
     * items[0..head) written and freed, items[head..n_items) not yet written;
     * items[give..n_items) not yet handed to the engine (streamed runs). */
    item **items;
    int n_items, cap_items, head, give;
    item **req_item;              /* request index -> item, in flush_window */
    gr_gen_req *reqs;
    int failed;                   /* a write or decode failed inside a callback */
    gr_err cb_err;
    struct timespec t0;
} runner;

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static int stop_asked(const runner *R) { return R->o->stop && *R->o->stop; }

static void item_free(item *it) {
    gr_gen_req_free(&it->req);
    jv_free(it->rec);
    it->rec = jv_invalid();
    free(it->prompt_text);
    it->prompt_text = NULL;
    gr_ids_free(&it->ids);
    if (it->state == ITEM_DONE) jv_free(it->out);
    it->state = ITEM_WRITTEN;
}

/* Frees every item not yet written and empties the list. */
static void items_clear(runner *R) {
    for (int i = R->head; i < R->n_items; i++) {
        item_free(R->items[i]);
        free(R->items[i]);
    }
    R->n_items = R->head = R->give = 0;
}

/* Writes (and flushes) every done record at the head of the list, in order. */
static int emit_ready(runner *R, gr_err *err) {
    int wrote = 0;
    while (R->head < R->n_items && R->items[R->head]->state == ITEM_DONE) {
        item *it = R->items[R->head];
        R->items[R->head++] = NULL;
        jv out = it->out;
        it->state = ITEM_QUEUED; /* out is consumed by the writer */
        item_free(it);
        free(it);
        if (gr_writer_put(R->w, out, err)) return -1;
        R->st->written++;
        wrote = 1;
    }
    if (R->give < R->head) R->give = R->head; /* past answered items it had not reached */
    if (R->head >= 64 && 2 * R->head >= R->n_items) { /* move the live ones to the front */
        memmove(R->items, R->items + R->head, sizeof *R->items * (size_t)(R->n_items - R->head));
        R->n_items -= R->head;
        R->give -= R->head;
        R->head = 0;
    }
    return wrote ? gr_writer_flush(R->w, err) : 0;
}

unsigned gr_verdict_flags(const gr_verdict *v, int per_task[GR_NTASKS]) {
    static const gr_label positive[GR_NTASKS] = {GR_LABEL_HARMFUL, GR_LABEL_REFUSAL, GR_LABEL_HARMFUL};
    static const unsigned flag[GR_NTASKS] = {GR_FLAG_HARMFUL, GR_FLAG_REFUSAL, GR_FLAG_HARMFUL};
    unsigned f = 0;
    for (int k = 0; k < GR_NTASKS; k++) {
        /* an unverified verdict flags no task: its labels are not read at all */
        per_task[k] = v->parse_ok && v->ans.label[k] == positive[k];
        if (per_task[k]) f |= flag[k];
    }
    return v->parse_ok ? f : GR_FLAG_UNVERIFIED;
}

/* pred and scores of an unverified verdict are null: never read as safe. */
static jv unverified(jv out) {
    jv none = jv_object();
    for (int k = 0; k < GR_NTASKS; k++) none = jv_object_set(none, jv_string(gr_task_field((gr_task)k)), jv_null());
    out = jv_object_set(out, jv_string("pred"), jv_copy(none));
    return jv_object_set(out, jv_string("scores"), none);
}

/* The output record of an item from its generation (n ids; watch NULL when
 * none), or -1 with err when the ids cannot be decoded. too_long: the
 * rejection message, or NULL. */
static int build_output(runner *R, item *it, const gr_gen_req *q, const char *too_long, gr_err *err) {
    const gr_run_opts *o = R->o;
    const int *ids = q ? q->out : NULL;
    int n = q ? q->n_out : 0;
    gr_verdict v;
    if (gr_verdict_build(R->tok, ids, n, q ? q->watch : NULL, &R->watch, &v, err)) return -1;
    gr_run_stats *st = R->st;
    if (q) {
        st->generated_tokens += q->n_out;
        st->prompt_tokens += q->n_prompt;
        if (q->stop == GR_STOP_LENGTH) st->truncated++;
    }
    if (too_long) st->rejected++;
    int per_task[GR_NTASKS];
    unsigned flags = gr_verdict_flags(&v, per_task);
    if (flags & GR_FLAG_UNVERIFIED) st->unparsed++;
    for (int k = 0; k < GR_NTASKS; k++) st->flagged[k] += per_task[k];
    if (flags & o->fail_on) st->matched++;
    jv rec = jv_copy(it->rec), out;
    if (o->mode == GR_RUN_CLASSIFY) {
        out = gr_verdict_to_json(&v, rec);
        if (!v.parse_ok) out = unverified(out);
        out = jv_object_set(out, jv_string("model"), jv_string(R->model_name));
        out = jv_object_set(out, jv_string("tokens"), jv_number(n));
        out = jv_object_set(out, jv_string("mode"), jv_string(it->by_verdict ? "verdict" : "reason"));
        out = jv_object_set(out, jv_string("policy"), jv_string(it->policy));
        if (q && q->stop == GR_STOP_LENGTH) out = jv_object_set(out, jv_string("truncated"), jv_true());
        if (o->logprobs) {
            jv lp = jv_array();
            for (int t = 0; t < n; t++) lp = jv_array_append(lp, jv_number(q->logprobs[t]));
            out = jv_object_set(out, jv_string("token_logprobs"), lp);
        }
    } else {
        out = jv_object();
        out = jv_object_set(out, jv_string("prompt"), jv_string(it->prompt_text));
        jv label = jv_object_get(jv_copy(rec), jv_string("output"));
        if (!jv_is_valid(label)) {
            jv_free(label);
            label = jv_object_get(jv_copy(rec), jv_string("label"));
        }
        if (!jv_is_valid(label)) {
            jv_free(label);
            label = jv_null();
        }
        out = jv_object_set(out, jv_string("label"), label);
        out = jv_object_set(out, jv_string("predict"),
                            jv_string_sized(v.text.data ? v.text.data : "", (int)v.text.len));
        out = jv_object_set(out, jv_string("id"), jv_object_get(jv_copy(rec), jv_string("id")));
        out = jv_object_set(out, jv_string("k"), jv_number(it->k));
        out = jv_object_set(out, jv_string("model"), jv_string(R->model_name));
        out = jv_object_set(out, jv_string("tokens"), jv_number(n));
        jv_free(rec);
    }
    if (o->token_ids) {
        jv a = jv_array();
        for (int t = 0; t < n; t++) a = jv_array_append(a, jv_number(ids[t]));
        out = jv_object_set(out, jv_string("token_ids"), a);
    }
    if (too_long) out = jv_object_set(out, jv_string("error"), jv_string(too_long));
    out = jv_object_set(out, jv_string("fingerprint"), jv_string(it->fp));
    gr_verdict_free(&v);
    it->out = out;
    it->state = ITEM_DONE;
    return 0;
}

/* gr_generate's callbacks: a finished request becomes its output record at once,
 * and is written as soon as everything before it is. */
static void on_done(void *ud, gr_gen_req *q, int index) {
    runner *R = ud;
    if (R->failed) return;
    item *it = R->req_item[index];
    if (build_output(R, it, q, NULL, &R->cb_err) || emit_ready(R, &R->cb_err)) R->failed = 1;
    gr_gen_req_free(q); /* its ids and logits are in the output record now */
}

static int on_step(void *ud, int n_seqs, int n_fed) {
    runner *R = ud;
    if (n_seqs) {
        R->st->steps++;
        R->st->sampled_tokens += n_seqs;
    }
    if (R->o->on_step) {
        R->st->seconds = since(&R->t0);
        R->o->on_step(R->o->step_ud, R->st, n_seqs, n_fed);
    }
    return R->failed || stop_asked(R);
}

/* 0 when the window is written; -1 (err); GR_RUN_STOPPED. */
static int flush_window(runner *R, gr_err *err) {
    const gr_run_opts *o = R->o;
    int n = 0;
    for (int i = R->head; i < R->n_items; i++) n += R->items[i]->state == ITEM_QUEUED;
    int rc = 0;
    if (n > 0) {
        R->reqs = gr_xcalloc((size_t)n, sizeof *R->reqs);
        R->req_item = gr_xmalloc(sizeof *R->req_item * (size_t)n);
        int r = 0;
        for (int i = R->head; i < R->n_items; i++) {
            item *it = R->items[i];
            if (it->state != ITEM_QUEUED) continue;
            R->req_item[r] = it;
            R->reqs[r].prompt = it->ids.v;
            R->reqs[r].n_prompt = (int)it->ids.n;
            /* streams from the record's position in the input, so that a sample does
             * not depend on the batch or window it falls in */
            R->reqs[r].stream = (uint64_t)it->pos * 1024u + (uint64_t)it->k;
            r++;
        }
        /* the longest common prefix of the prompts (each already known to fit the
         * context), one token short of the shortest */
        const gr_ids *first = &R->req_item[0]->ids;
        int lcp = (int)first->n - 1;
        for (int i = 1; i < n && lcp > 0; i++) {
            const gr_ids *b = &R->req_item[i]->ids;
            int j = 0, m = (int)b->n - 1;
            while (j < lcp && j < m && b->v[j] == first->v[j]) j++;
            lcp = j;
        }
        gr_gen_opts g = {.sampler = o->sampler, .seed = o->seed, .max_tokens = o->max_tokens,
                         .max_batch = o->batch, .logprobs = o->logprobs,
                         .watch = o->mode == GR_RUN_CLASSIFY ? R->watch.ids : NULL,
                         .n_watch = o->mode == GR_RUN_CLASSIFY ? R->watch.n : 0,
                         .stop = R->stop, .n_stop = R->n_stop,
                         .prefix = lcp >= 8 ? first->v : NULL, .n_prefix = lcp >= 8 ? lcp : 0,
                         .step = on_step, .step_ud = R, .ignore_eos = o->ignore_eos};
        unsigned char *decided = NULL; /* 1: the verdict tier decided the record */
        int *prefix_copy = NULL;
        if (o->mode == GR_RUN_CLASSIFY && o->guard_mode != GR_GUARD_REASON) {
            decided = gr_xcalloc((size_t)n, 1);
            /* the prefix lives in the first item's ids, which are freed once that
             * item's verdict is written below: tiered's reason pass needs a copy */
            if (g.n_prefix) {
                prefix_copy = gr_xmalloc(sizeof(int) * (size_t)g.n_prefix);
                memcpy(prefix_copy, g.prefix, sizeof(int) * (size_t)g.n_prefix);
                g.prefix = prefix_copy;
            }
            rc = gr_fast_window(R->ctx, R->tok, &R->fast, &R->watch, &g, o->guard_mode == GR_GUARD_TIERED,
                                o->escalate_lo, o->escalate_hi, R->reqs, n, decided, err);
            for (int i = 0; i < n && !rc; i++) {
                if (!decided[i]) continue;
                item *it = R->req_item[i];
                int too_long = R->reqs[i].stop == GR_STOP_TOO_LONG;
                it->by_verdict = 1;
                if (build_output(R, it, too_long ? NULL : &R->reqs[i],
                                 too_long ? "prompt and answer block longer than the model's context" : NULL, err))
                    rc = -1;
                gr_gen_req_free(&R->reqs[i]);
            }
            if (!rc) rc = emit_ready(R, err);
        }
        if (!rc) rc = gr_generate_some(R->ctx, R->reqs, n, decided, &g, on_done, R, err);
        free(decided);
        free(prefix_copy);
        if (!rc && R->failed) {
            *err = R->cb_err;
            rc = -1;
        }
        for (int i = 0; i < n; i++) gr_gen_req_free(&R->reqs[i]);
        free(R->reqs);
        free(R->req_item);
        R->reqs = NULL;
        R->req_item = NULL;
    }
    if (!rc) rc = emit_ready(R, err);
    if (!rc && R->head < R->n_items) rc = GR_RUN_STOPPED; /* stopped with records in flight */
    items_clear(R);
    return rc;
}

static const char *base_name(const char *p) {
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    const char *s = p + n;
    while (s > p && s[-1] != '/') s--;
    return s;
}

static item *new_item(runner *R) {
    if (R->n_items == R->cap_items) {
        R->cap_items = R->cap_items ? 2 * R->cap_items : 64;
        R->items = gr_xrealloc(R->items, sizeof *R->items * (size_t)R->cap_items);
    }
    item *it = gr_xcalloc(1, sizeof *it);
    R->items[R->n_items++] = it;
    it->rec = jv_invalid();
    it->out = jv_invalid();
    return it;
}

/* Queues one (record, sample) for generation (*queued: its item), or answers
 * it at once with `error` when its prompt cannot fit the context (*queued
 * NULL). -1 on a tokenizer or write error. */
static int add_item(runner *R, jv rec, const char *fp, int k, long pos, const char *instr, const char *input,
                    item **queued, gr_err *err) {
    *queued = NULL;
    const gr_run_opts *o = R->o;
    int max_len = R->m->cfg.max_pos; /* gr_generate admits prompts of fewer ids than this */
    item *it = new_item(R);
    it->rec = jv_copy(rec);
    it->k = k;
    it->pos = pos;
    memcpy(it->fp, fp, sizeof it->fp);
    gr_policy_hash(instr, it->policy);
    if (o->mode == GR_RUN_SAMPLE) {
        gr_buf pt = {0};
        gr_buf_printf(&pt, "%s\n%s", instr, input);
        it->prompt_text = gr_xstrdup(gr_buf_cstr(&pt));
        gr_buf_free(&pt);
    }
    /* A text of B bytes has at least B / (longest token) tokens: a prompt far too
     * long is rejected without tokenizing it (a 50 MB line would take minutes).
     * The factor 4 leaves room for a normalizer that shortens text before
     * tokenizing; the exact check on the ids below decides every other case. */
    size_t bytes = strlen(instr) + strlen(input);
    char why[160];
    if (R->max_token_bytes && bytes / R->max_token_bytes >= 4 * (size_t)max_len) {
        snprintf(why, sizeof why, "prompt longer than the model's context (%zu bytes: at least %zu tokens; context %d)",
                 bytes, bytes / R->max_token_bytes, max_len);
        return build_output(R, it, NULL, why, err) ? -1 : emit_ready(R, err);
    }
    if (gr_template_prompt(R->tok, o->tmpl, o->system, instr, input, &it->ids, err)) {
        R->n_items--;
        jv_free(it->rec);
        free(it->prompt_text);
        gr_ids_free(&it->ids);
        free(it);
        return -1;
    }
    if (it->ids.n < 1 || it->ids.n >= (size_t)max_len) {
        snprintf(why, sizeof why, "prompt longer than the model's context (%zu tokens; context %d)",
                 it->ids.n, max_len);
        gr_ids_free(&it->ids);
        return build_output(R, it, NULL, why, err) ? -1 : emit_ready(R, err);
    }
    *queued = it;
    return 0;
}

/* ---- the input stream ----------------------------------------------------------- */
/* The records still to read, one (record, sample) item at a time. */
typedef struct source {
    char *const *files;
    int n_files, f;
    gr_reader *r;
    gr_resume *done;
    gr_run_warn warn;
    void *warn_ud;
    int k_per;
    long pos;                 /* records read so far */
    /* the record whose samples are being queued (have 1) */
    int have, s;
    jv rec;
    char fp[GR_FINGERPRINT_HEX + 1];
    char *instr, *input;
    long my;                  /* its position */
} source;

static void source_drop_record(source *S) {
    if (!S->have) return;
    jv_free(S->rec);
    S->rec = jv_invalid();
    free(S->instr);
    free(S->input);
    S->instr = S->input = NULL;
    S->have = 0;
}

static void source_close(source *S, gr_run_stats *st) {
    source_drop_record(S);
    if (S->r) {
        st->replaced += gr_reader_replaced(S->r);
        gr_reader_close(S->r);
        S->r = NULL;
    }
}

/* Reads until a record with a readable query is at hand (S->have): 1; 0 at the
 * end of the input; -1 (err). */
static int source_read(runner *R, source *S, gr_err *err) {
    const gr_run_opts *o = R->o;
    gr_run_stats *st = R->st;
    for (;;) {
        if (!S->r) {
            if (S->f >= S->n_files) return 0;
            S->r = gr_reader_open(S->files[S->f], o->reader, err);
            if (!S->r) return -1;
        }
        jv rec;
        int k = gr_reader_next(S->r, &rec, err);
        if (k < 0) return -1;
        if (k == 0) {
            st->replaced += gr_reader_replaced(S->r);
            gr_reader_close(S->r);
            S->r = NULL;
            S->f++;
            continue;
        }
        long my = S->pos++;
        jv id = jv_object_get(jv_copy(rec), jv_string("id"));
        int has_id = jv_is_valid(id) && jv_get_kind(id) != JV_KIND_NULL;
        gr_record_fingerprint(rec, has_id, S->files[S->f], gr_reader_line(S->r), S->fp);
        if (!has_id) {
            jv_free(id);
            id = jv_number((double)my);
            rec = jv_object_set(rec, jv_string("id"), jv_copy(id));
        }
        if (!gr_shard_mine(o->shard, id)) { /* --shard: another shard's record */
            st->other_shard++;
            jv_free(id);
            jv_free(rec);
            continue;
        }
        st->records++;
        jv_free(id);
        char *instr = NULL, *input = NULL;
        gr_err qerr;
        if (gr_guard_query(rec, &instr, &input, &qerr)) {
            char msg[2300];
            snprintf(msg, sizeof msg, "%s:%ld: %s", gr_reader_name(S->r), gr_reader_line(S->r), qerr.msg);
            st->skipped_bad++;
            jv_free(rec);
            if (o->strict) return gr_errf(err, "%s", msg);
            if (S->warn) S->warn(S->warn_ud, msg);
            continue;
        }
        gr_policy_apply(o->policy, rec, &instr);
        S->rec = rec;
        S->instr = instr;
        S->input = input;
        S->my = my;
        S->s = 0;
        S->have = 1;
        return 1;
    }
}

/* The next item to generate, in input order (*out, appended to R's items): 1;
 * 0 at the end of the input; -1 (err); GR_RUN_STOPPED when a stop was asked.
 * Records already in the output (--resume), of other shards, bad, or too long
 * for the context (answered at once with `error`) are dealt with on the way. */
static int source_next(runner *R, source *S, item **out, gr_err *err) {
    for (;;) {
        if (!S->have) {
            if (stop_asked(R)) return GR_RUN_STOPPED;
            int k = source_read(R, S, err);
            if (k <= 0) return k;
        }
        while (S->s < S->k_per) {
            int s = S->s++;
            if (gr_resume_take(S->done, S->fp, R->o->mode == GR_RUN_SAMPLE ? s : -1)) {
                R->st->skipped_done++;
                continue;
            }
            item *it = NULL;
            if (add_item(R, S->rec, S->fp, s, S->my, S->instr, S->input, &it, err)) return -1;
            if (it) {
                *out = it;
                return 1;
            }
        }
        source_drop_record(S);
    }
}

/* ---- reason mode: the engine pulls from the input ------------------------------ */
typedef struct stream_ctx {
    runner *R;
    source *S;
    int cap;          /* items held at most (not yet written): bounds the reorder buffer */
    int ended;
    int stopped;      /* the input stopped at a signal */
} stream_ctx;

static int stream_pull(void *ud, gr_gen_req **req, gr_err *err) {
    stream_ctx *X = ud;
    runner *R = X->R;
    if (R->failed) return GR_PULL_END;
    item *it = NULL;
    while (!it && R->give < R->n_items) { /* the next one read ahead, past answered ones */
        item *c = R->items[R->give++];
        if (c->state == ITEM_QUEUED) it = c;
    }
    if (!it) {
        if (X->ended) return GR_PULL_END;
        /* a record finished long after those behind it holds them all: read no
         * more until it is written */
        if (R->n_items - R->head >= X->cap) return GR_PULL_WAIT;
        int k = source_next(R, X->S, &it, err);
        if (k < 0) return -1;
        if (k != 1) {
            X->ended = 1;
            X->stopped = k == GR_RUN_STOPPED;
            return GR_PULL_END;
        }
        /* it is the last item (records answered at once may come before it) */
        R->give = R->n_items;
    }
    it->req.prompt = it->ids.v;
    it->req.n_prompt = (int)it->ids.n;
    /* streams from the record's position in the input, so that a sample does not
     * depend on the batch, or on when it was admitted */
    it->req.stream = (uint64_t)it->pos * 1024u + (uint64_t)it->k;
    *req = &it->req;
    return GR_PULL_OK;
}

static void on_stream_done(void *ud, gr_gen_req *q, int index) {
    (void)index;
    stream_ctx *X = ud;
    runner *R = X->R;
    if (R->failed) return;
    item *it = (item *)(void *)((char *)q - offsetof(item, req));
    int bad = build_output(R, it, q, NULL, &R->cb_err);
    gr_gen_req_free(q); /* its ids and logits are in the output record now */
    if (bad || emit_ready(R, &R->cb_err)) R->failed = 1; /* (may free it) */
}

/* Reads `window` items ahead for the shared prefix (their longest common token
 * prefix: the guard instruction), then lets the engine pull the rest as slots
 * free. 0 when everything is written; -1 (err); GR_RUN_STOPPED. */
static int run_stream(runner *R, source *S, int window, gr_err *err) {
    const gr_run_opts *o = R->o;
    stream_ctx X = {.R = R, .S = S, .cap = 4 * window};
    int n = 0, rc = 0;
    item *it;
    while (n < window && (rc = source_next(R, S, &it, err)) == 1) n++;
    if (rc < 0) return -1;
    if (rc != 1) {
        X.ended = 1;
        X.stopped = rc == GR_RUN_STOPPED;
    }
    rc = 0;
    int *prefix = NULL, n_prefix = 0, longest = 0;
    if (n > 0) {
        /* one token short of the shortest prompt (each already known to fit) */
        const gr_ids *first = NULL;
        int lcp = 0;
        for (int i = R->head; i < R->n_items; i++) {
            const item *q = R->items[i];
            if (q->state != ITEM_QUEUED) continue;
            if ((int)q->ids.n > longest) longest = (int)q->ids.n;
            if (!first) {
                first = &q->ids;
                lcp = (int)first->n - 1;
                continue;
            }
            int j = 0, m = (int)q->ids.n - 1;
            while (j < lcp && j < m && q->ids.v[j] == first->v[j]) j++;
            lcp = j;
        }
        if (lcp >= 8) {
            n_prefix = lcp;
            prefix = gr_xmalloc(sizeof(int) * (size_t)lcp); /* the first item's ids go when it is written */
            memcpy(prefix, first->v, sizeof(int) * (size_t)lcp);
        }
        int max_len = R->m->cfg.max_pos, per = longest + (o->max_tokens > 0 ? o->max_tokens : 0);
        gr_gen_opts g = {.sampler = o->sampler, .seed = o->seed, .max_tokens = o->max_tokens,
                         .max_batch = o->batch, .logprobs = o->logprobs,
                         .watch = o->mode == GR_RUN_CLASSIFY ? R->watch.ids : NULL,
                         .n_watch = o->mode == GR_RUN_CLASSIFY ? R->watch.n : 0,
                         .stop = R->stop, .n_stop = R->n_stop, .prefix = prefix, .n_prefix = n_prefix,
                         .step = on_step, .step_ud = R, .ignore_eos = o->ignore_eos,
                         .expect_len = per < max_len ? per : max_len};
        rc = gr_generate_stream(R->ctx, &g, stream_pull, on_stream_done, &X, err);
        free(prefix);
        if (!rc && R->failed) {
            *err = R->cb_err;
            rc = -1;
        }
    }
    if (!rc) rc = emit_ready(R, err);
    /* the engine returns 0 before the end of the input only when a stop was asked */
    if (!rc && (X.stopped || !X.ended || R->head < R->n_items)) rc = GR_RUN_STOPPED;
    items_clear(R);
    return rc;
}

int gr_run(const gr_run_opts *o, char *const *files, int n_files, const char *done_path,
           gr_writer *w, gr_run_warn warn, void *ud, gr_run_stats *st, gr_err *err) {
    memset(st, 0, sizeof *st);
    runner R = {.o = o, .w = w, .st = st};
    clock_gettime(CLOCK_MONOTONIC, &R.t0);
    gr_resume *done = NULL;
    int rc = -1;
    done = done_path ? gr_resume_load(done_path, o->mode == GR_RUN_SAMPLE, err) : gr_resume_empty();
    if (!done) goto out;
    st->done_in_output = gr_resume_size(done);
    R.m = gr_model_load(o->model_path, err);
    if (!R.m) goto out;
    R.tok = gr_tokenizer_load(o->tokenizer_path ? o->tokenizer_path : o->model_path, err);
    if (!R.tok) goto out;
    if ((int64_t)gr_tokenizer_vocab_size(R.tok) > R.m->cfg.vocab_size) {
        gr_errf(err, "%s: the tokenizer has %zu ids, the model %d", o->model_path,
                gr_tokenizer_vocab_size(R.tok), R.m->cfg.vocab_size);
        goto out;
    }
    for (size_t i = 0; i < gr_tokenizer_vocab_size(R.tok); i++) {
        size_t len = 0;
        if (gr_tokenizer_token_bytes(R.tok, (int32_t)i, &len) && len > R.max_token_bytes) R.max_token_bytes = len;
    }
    if (o->mode == GR_RUN_CLASSIFY && gr_guard_watch_init(R.tok, &R.watch, err)) goto out;
    if (o->mode == GR_RUN_CLASSIFY && o->guard_mode != GR_GUARD_REASON && gr_fast_plan_init(R.tok, &R.fast, err))
        goto out;
    int32_t eot = gr_template_eot(R.tok, o->tmpl), eos = gr_tokenizer_eos(R.tok);
    if (eot >= 0) R.stop[R.n_stop++] = eot;
    if (eos >= 0 && eos != eot) R.stop[R.n_stop++] = eos;
    for (int i = 0; i < R.n_stop; i++)
        if (R.stop[i] >= R.m->cfg.vocab_size) R.stop[i--] = R.stop[--R.n_stop];
    R.model_name = gr_xstrdup(o->model_name ? o->model_name : base_name(o->model_path));
    R.be = gr_backend_open(o->device, o->threads, err);
    if (!R.be) goto out;
    R.be->exact = o->exact;
    R.ctx = gr_ctx_open(R.m, R.be, err);
    if (!R.ctx) goto out;
    source S = {.files = files, .n_files = n_files, .done = done, .warn = warn, .warn_ud = ud,
                .k_per = o->mode == GR_RUN_SAMPLE ? o->k : 1, .rec = jv_invalid()};
    int window = o->batch * 4 < 64 ? 64 : o->batch * 4;
    if (o->mode == GR_RUN_CLASSIFY && o->guard_mode != GR_GUARD_REASON) {
        /* verdict / tiered: the fast tier runs over windows of records */
        int queued = 0;
        rc = 0;
        while (!rc) {
            item *it;
            rc = source_next(&R, &S, &it, err);
            if (rc != 1) break;
            rc = 0;
            if (++queued >= window) {
                rc = flush_window(&R, err);
                queued = 0;
            }
        }
        if (!rc) rc = flush_window(&R, err);
    } else {
        rc = run_stream(&R, &S, window, err);
    }
    source_close(&S, st);
out:
    items_clear(&R);
    free(R.items);
    free(R.model_name);
    gr_fast_plan_free(&R.fast);
    gr_ctx_free(R.ctx);
    if (R.be) gr_backend_free(R.be);
    gr_tokenizer_free(R.tok);
    gr_model_free(R.m);
    gr_resume_free(done);
    st->seconds = since(&R.t0);
    /* a signal that interrupted a read shows as a read error: it is a stop */
    if (rc < 0 && stop_asked(&R)) rc = GR_RUN_STOPPED;
    return rc;
}

/* Temporaries (".NAME.tmp.XXXXXX", gr_writer) beside path left by runs that died
 * without cleaning up (SIGKILL): with the output's lock held, none is live. */
static void remove_stale_temps(const char *path) {
    char *dcopy = gr_xstrdup(path), *bcopy = gr_xstrdup(path);
    const char *dir = dirname(dcopy), *base = basename(bcopy);
    gr_buf prefix = {0};
    gr_buf_printf(&prefix, ".%s.tmp.", base);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix.data, prefix.len) != 0 || strlen(e->d_name) != prefix.len + 6) continue;
        gr_buf full = {0};
        gr_buf_printf(&full, "%s/%s", dir, e->d_name);
        unlink(gr_buf_cstr(&full));
        gr_buf_free(&full);
    }
    if (d) closedir(d);
    gr_buf_free(&prefix);
    free(dcopy);
    free(bcopy);
}

int gr_run_to_path(const gr_run_opts *o, char *const *files, int n_files, const char *out_path,
                   int resume, gr_run_warn warn, void *ud, gr_run_stats *st, gr_err *err) {
    memset(st, 0, sizeof *st);
    gr_writer_opts wo = {0};
    size_t cut = 0;
    gr_lock lock = GR_LOCK_INIT;
    if (out_path && strcmp(out_path, "-") != 0) {
        int l = gr_lock_output(&lock, out_path, 0, o->wait_lock, err);
        if (l) return l;
        remove_stale_temps(out_path);
    }
    int rc = -1;
    if (resume) {
        if (gr_jsonl_cut_torn_tail(out_path, &cut, err)) goto out;
        wo.append = 1;
    }
    gr_writer *w = gr_writer_open(out_path, &wo, err);
    if (!w) goto out;
    rc = gr_run(o, files, n_files, resume ? out_path : NULL, w, warn, ud, st, err);
    if (rc) {
        gr_err ignored;
        if (resume) gr_writer_commit(w, &ignored); /* keep what was written: --resume continues */
        else gr_writer_abort(w);
    } else {
        rc = gr_writer_commit(w, err);
    }
out:
    st->cut_bytes = cut;
    gr_lock_release(&lock);
    return rc;
}
