/* gr-classify / gr-sample driver: see guard_run.h. */
#include "guard_run.h"
#include "forward.h"
#include "generate.h"
#include "guard.h"
#include "guard_policy.h"
#include "guard_verdict.h"
#include "model.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a set of strings (ids already written) -------------------------------- */
typedef struct strset {
    char **slot;
    size_t cap, n;
} strset;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int set_has(const strset *s, const char *k) {
    if (!s->cap) return 0;
    for (size_t i = hash_str(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slot[i]) return 0;
        if (strcmp(s->slot[i], k) == 0) return 1;
    }
}

static void set_add(strset *s, const char *k) {
    if (set_has(s, k)) return;
    if (2 * (s->n + 1) > s->cap) {
        strset bigger = {gr_xcalloc(s->cap ? 2 * s->cap : 1024, sizeof(char *)), s->cap ? 2 * s->cap : 1024, 0};
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) {
                size_t j = hash_str(s->slot[i]) & (bigger.cap - 1);
                while (bigger.slot[j]) j = (j + 1) & (bigger.cap - 1);
                bigger.slot[j] = s->slot[i];
                bigger.n++;
            }
        free(s->slot);
        *s = bigger;
    }
    size_t j = hash_str(k) & (s->cap - 1);
    while (s->slot[j]) j = (j + 1) & (s->cap - 1);
    s->slot[j] = gr_xstrdup(k);
    s->n++;
}

static void set_free(strset *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->slot[i]);
    free(s->slot);
}

/* The resume key of an id (its JSON text), with "/k" in sample mode. */
static char *key_of(jv id, int k) {
    jv d = jv_dump_string(jv_copy(id), 0);
    char buf[64];
    snprintf(buf, sizeof buf, "/%d", k);
    gr_buf b = {0};
    gr_buf_append(&b, jv_string_value(d), strlen(jv_string_value(d)));
    if (k >= 0) gr_buf_append(&b, buf, strlen(buf));
    jv_free(d);
    gr_buf_putc(&b, 0);
    return b.data;
}

static int load_done(const char *path, gr_run_mode mode, strset *done, gr_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0; /* nothing written yet */
    fclose(f);
    gr_reader *r = gr_reader_open(path, NULL, err);
    if (!r) return -1;
    jv rec;
    int k;
    while ((k = gr_reader_next(r, &rec, err)) == 1) {
        jv id = jv_object_get(jv_copy(rec), jv_string("id"));
        if (jv_is_valid(id) && jv_get_kind(id) != JV_KIND_NULL) {
            int kk = -1;
            if (mode == GR_RUN_SAMPLE) {
                jv kv = jv_object_get(jv_copy(rec), jv_string("k"));
                kk = jv_get_kind(kv) == JV_KIND_NUMBER ? (int)jv_number_value(kv) : -1;
                jv_free(kv);
            }
            char *key = key_of(id, kk);
            set_add(done, key);
            free(key);
        }
        jv_free(id);
        jv_free(rec);
    }
    gr_reader_close(r);
    return k < 0 ? -1 : 0;
}

/* ---- one window ------------------------------------------------------------- */
typedef struct item {
    jv rec;         /* with id set */
    char *prompt_text; /* instruction + "\n" + input (sample records' `prompt`) */
    gr_ids ids;
    int k;          /* sample number (sample mode), 0 in classify mode */
    long pos;       /* the record's 0-based position in the input */
    char policy[65]; /* sha256 of the instruction the record is classified with */
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
    char *model_name;
    gr_writer *w;
    gr_run_stats *st;
    item *items;
    int n_items, cap_items;
    long next_stream;
} runner;

static int flush_window(runner *R, gr_err *err) {
    if (R->n_items == 0) return 0;
    const gr_run_opts *o = R->o;
    gr_gen_req *reqs = gr_xcalloc((size_t)R->n_items, sizeof *reqs);
    /* the longest common prefix of all prompts, one token short of the shortest */
    int lcp = (int)R->items[0].ids.n - 1;
    for (int i = 1; i < R->n_items && lcp > 0; i++) {
        int j = 0, n = (int)R->items[i].ids.n - 1;
        while (j < lcp && j < n && R->items[i].ids.v[j] == R->items[0].ids.v[j]) j++;
        lcp = j;
    }
    for (int i = 0; i < R->n_items; i++) {
        reqs[i].prompt = R->items[i].ids.v;
        reqs[i].n_prompt = (int)R->items[i].ids.n;
        /* streams from the record's position in the input, so that a sample does
         * not depend on the batch or window it falls in */
        reqs[i].stream = (uint64_t)R->items[i].pos * 1024u + (uint64_t)R->items[i].k;
    }
    gr_gen_opts g = {.sampler = o->sampler, .seed = o->seed, .max_tokens = o->max_tokens,
                     .max_batch = o->batch, .logprobs = o->logprobs,
                     .watch = o->mode == GR_RUN_CLASSIFY ? R->watch.ids : NULL,
                     .n_watch = o->mode == GR_RUN_CLASSIFY ? R->watch.n : 0,
                     .stop = R->stop, .n_stop = R->n_stop,
                     .prefix = lcp >= 8 ? R->items[0].ids.v : NULL, .n_prefix = lcp >= 8 ? lcp : 0};
    unsigned char *decided = NULL; /* 1: the verdict tier decided the record */
    int rc = 0;
    if (o->mode == GR_RUN_CLASSIFY && o->guard_mode != GR_GUARD_REASON) {
        decided = gr_xcalloc((size_t)R->n_items, 1);
        rc = gr_fast_window(R->ctx, R->tok, &R->fast, &R->watch, &g, o->guard_mode == GR_GUARD_TIERED,
                            o->escalate_lo, o->escalate_hi, reqs, R->n_items, decided, err);
    }
    if (!rc) rc = gr_generate_some(R->ctx, reqs, R->n_items, decided, &g, err);
    for (int i = 0; i < R->n_items && !rc; i++) {
        item *it = &R->items[i];
        gr_gen_req *q = &reqs[i];
        jv rec = jv_copy(it->rec);
        gr_verdict v;
        if (gr_verdict_build(R->tok, q->out, q->n_out, q->watch, &R->watch, &v, err)) {
            jv_free(rec);
            rc = -1;
            break;
        }
        R->st->generated_tokens += q->n_out;
        R->st->prompt_tokens += q->n_prompt;
        if (q->stop == GR_STOP_LENGTH) R->st->truncated++;
        if (!v.parse_ok) R->st->unparsed++;
        jv out;
        if (o->mode == GR_RUN_CLASSIFY) {
            out = gr_verdict_to_json(&v, rec);
            out = jv_object_set(out, jv_string("model"), jv_string(R->model_name));
            out = jv_object_set(out, jv_string("tokens"), jv_number(q->n_out));
            out = jv_object_set(out, jv_string("mode"), jv_string(decided && decided[i] ? "verdict" : "reason"));
            out = jv_object_set(out, jv_string("policy"), jv_string(it->policy));
            if (q->stop == GR_STOP_LENGTH) out = jv_object_set(out, jv_string("truncated"), jv_true());
            if (q->stop == GR_STOP_TOO_LONG)
                out = jv_object_set(out, jv_string("error"), jv_string("prompt longer than the model's context"));
            if (o->logprobs) {
                jv lp = jv_array();
                for (int t = 0; t < q->n_out; t++) lp = jv_array_append(lp, jv_number(q->logprobs[t]));
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
            out = jv_object_set(out, jv_string("tokens"), jv_number(q->n_out));
            if (q->stop == GR_STOP_TOO_LONG)
                out = jv_object_set(out, jv_string("error"), jv_string("prompt longer than the model's context"));
            jv_free(rec);
        }
        gr_verdict_free(&v);
        if (gr_writer_put(R->w, out, err)) rc = -1;
        else R->st->written++;
    }
    if (!rc) rc = gr_writer_flush(R->w, err);
    for (int i = 0; i < R->n_items; i++) {
        gr_gen_req_free(&reqs[i]);
        jv_free(R->items[i].rec);
        free(R->items[i].prompt_text);
        gr_ids_free(&R->items[i].ids);
    }
    free(reqs);
    free(decided);
    R->n_items = 0;
    return rc;
}

static const char *base_name(const char *p) {
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    const char *s = p + n;
    while (s > p && s[-1] != '/') s--;
    return s;
}

int gr_run(const gr_run_opts *o, char *const *files, int n_files, const char *done_path,
           gr_writer *w, gr_run_warn warn, void *ud, gr_run_stats *st, gr_err *err) {
    memset(st, 0, sizeof *st);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    runner R = {.o = o, .w = w, .st = st};
    strset done = {0};
    int rc = -1;
    if (done_path && load_done(done_path, o->mode, &done, err)) goto out;
    R.m = gr_model_load(o->model_path, err);
    if (!R.m) goto out;
    R.tok = gr_tokenizer_load(o->tokenizer_path ? o->tokenizer_path : o->model_path, err);
    if (!R.tok) goto out;
    if ((int64_t)gr_tokenizer_vocab_size(R.tok) > R.m->cfg.vocab_size) {
        gr_errf(err, "%s: the tokenizer has %zu ids, the model %d", o->model_path,
                gr_tokenizer_vocab_size(R.tok), R.m->cfg.vocab_size);
        goto out;
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
    R.be = gr_backend_cpu(o->threads);
    R.be->exact = o->exact;
    R.ctx = gr_ctx_new(R.m, R.be);
    int window = o->batch * 4 < 64 ? 64 : o->batch * 4;
    int k_per = o->mode == GR_RUN_SAMPLE ? o->k : 1;
    long pos = 0;
    rc = 0;
    for (int f = 0; f < n_files && !rc; f++) {
        gr_reader *r = gr_reader_open(files[f], o->reader, err);
        if (!r) {
            rc = -1;
            break;
        }
        jv rec;
        int k;
        while (!rc && (k = gr_reader_next(r, &rec, err)) == 1) {
            long my = pos++;
            jv id = jv_object_get(jv_copy(rec), jv_string("id"));
            if (!jv_is_valid(id) || jv_get_kind(id) == JV_KIND_NULL) {
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
            char *instr = NULL, *input = NULL;
            gr_err qerr;
            if (gr_guard_query(rec, &instr, &input, &qerr)) {
                char msg[2300];
                snprintf(msg, sizeof msg, "%s:%ld: %s", gr_reader_name(r), gr_reader_line(r), qerr.msg);
                st->skipped_bad++;
                jv_free(id);
                jv_free(rec);
                if (o->strict) {
                    rc = gr_errf(err, "%s", msg);
                    break;
                }
                if (warn) warn(ud, msg);
                continue;
            }
            gr_policy_apply(o->policy, rec, &instr);
            for (int s = 0; s < k_per && !rc; s++) {
                char *key = key_of(id, o->mode == GR_RUN_SAMPLE ? s : -1);
                int skip = set_has(&done, key);
                free(key);
                if (skip) {
                    st->skipped_done++;
                    continue;
                }
                if (R.n_items == R.cap_items) {
                    R.cap_items = R.cap_items ? 2 * R.cap_items : 64;
                    R.items = gr_xrealloc(R.items, sizeof *R.items * (size_t)R.cap_items);
                }
                item *it = &R.items[R.n_items];
                memset(it, 0, sizeof *it);
                it->rec = jv_copy(rec);
                it->k = s;
                it->pos = my;
                gr_policy_hash(instr, it->policy);
                gr_buf pt = {0};
                gr_buf_printf(&pt, "%s\n%s", instr, input);
                it->prompt_text = gr_xstrdup(gr_buf_cstr(&pt));
                gr_buf_free(&pt);
                if (gr_template_prompt(R.tok, o->tmpl, o->system, instr, input, &it->ids, err)) {
                    jv_free(it->rec);
                    free(it->prompt_text);
                    rc = -1;
                    break;
                }
                R.n_items++;
                if (R.n_items >= window) rc = flush_window(&R, err);
            }
            free(instr);
            free(input);
            jv_free(id);
            jv_free(rec);
        }
        if (!rc && k < 0) rc = -1;
        gr_reader_close(r);
    }
    if (!rc) rc = flush_window(&R, err);
out:
    for (int i = 0; i < R.n_items; i++) {
        jv_free(R.items[i].rec);
        free(R.items[i].prompt_text);
        gr_ids_free(&R.items[i].ids);
    }
    free(R.items);
    free(R.model_name);
    gr_fast_plan_free(&R.fast);
    gr_ctx_free(R.ctx);
    if (R.be) gr_backend_free(R.be);
    gr_tokenizer_free(R.tok);
    gr_model_free(R.m);
    set_free(&done);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    st->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return rc;
}

int gr_run_to_path(const gr_run_opts *o, char *const *files, int n_files, const char *out_path,
                   int resume, gr_run_warn warn, void *ud, gr_run_stats *st, gr_err *err) {
    gr_writer_opts wo = {0};
    size_t cut = 0;
    if (resume) {
        if (gr_jsonl_cut_torn_tail(out_path, &cut, err)) return -1;
        wo.append = 1;
    }
    gr_writer *w = gr_writer_open(out_path, &wo, err);
    if (!w) return -1;
    if (gr_run(o, files, n_files, resume ? out_path : NULL, w, warn, ud, st, err)) {
        gr_err ignored;
        if (resume) gr_writer_commit(w, &ignored); /* keep what was written: --resume continues */
        else gr_writer_abort(w);
        st->cut_bytes = cut;
        return -1;
    }
    st->cut_bytes = cut;
    return gr_writer_commit(w, err);
}
