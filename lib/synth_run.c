#include "synth_run.h"
#include <curl/curl.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gr_io.h"
#include "guard_prompt.h"
#include "synth_answer.h"
#include "synth_idset.h"
#include "synth_limit.h"
#include "synth_reply.h"
#include "gr_lock.h"
#include "synth_resume.h"
#include "synth_url.h"

#define REPLY_MAX ((size_t)64 << 20) /* a bigger reply is not a completion */

enum { SLOT_FREE, SLOT_WAITING, SLOT_RUNNING };

typedef struct slot {
    int state;
    jv rec, id;             /* the input record and its id */
    char *key;              /* the id's key in the id sets */
    char where[512];        /* "FILE:LINE" for messages */
    synth_labels labels;
    gr_buf input;           /* the user message = the alpaca input */
    char *body;             /* the request body */
    size_t body_len;
    double est_tokens;      /* charged to --tpm at the start */
    int attempts;           /* answers refused so far */
    int retries;            /* server/transport errors so far */
    double ready_at;        /* WAITING: not before this time */
    char reason[400];       /* the last failure */
    char *answer;           /* the last refused answer */
    size_t answer_len;
    CURL *easy;
    gr_buf resp;
    int overflow;
} slot;

typedef struct run {
    synth_config *cfg;
    synth_stats *st;
    gr_err *err;
    int fatal;
    char *url;              /* what curl is given */
    char *url_shown;        /* what messages show: no userinfo, no query values */
    synth_secrets secrets;  /* the key, the URL's password and query values */
    struct curl_slist *hdrs;
    CURLM *multi;
    slot *slots;
    int nslots;
    int input_i, eof;
    gr_reader *reader;
    synth_idset done, seen;
    gr_writer *out, *rej;
    synth_bucket rpm, tpm;
    double pause_until, t0, last_progress;
    uint64_t rng;
    gr_buf scratch;
    int lock_fd;            /* flock on the output: one run per output at a time */
} run;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Replaces every copy of a secret (the API key, the URL's password and query
 * values) in msg by "***": a server may echo them. */
static void redact(const run *r, char *msg) { synth_secrets_redact_str(&r->secrets, msg); }

static void note(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(run *r, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    redact(r, msg);
    if (r->cfg->note) r->cfg->note(r->cfg->ctx, msg);
}

/* The first fatal error wins; the run then stops starting requests. */
static void set_fatal(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_fatal(run *r, const char *fmt, ...) {
    if (r->fatal) return;
    r->fatal = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err->msg, sizeof r->err->msg, fmt, ap);
    va_end(ap);
    redact(r, r->err->msg);
}

/* ---- resume ------------------------------------------------------------- */

/* Cuts a torn last line off path (noting it) and adds its ids to done. */
static int load_done(run *r, const char *path) {
    size_t cut = 0;
    if (synth_resume_load(path, &r->done, &cut, r->err) < 0) return -1;
    if (cut) {
        note(r, "%s: cut a torn last line (%zu bytes) left by a killed run; its record is redone",
             path, cut);
        r->st->resumed_cut += (long)cut;
    }
    return 0;
}

/* ---- input -------------------------------------------------------------- */

/* 1: *rec is the next input record; 0: end of all inputs; -1: error. */
static int next_input(run *r, jv *rec) {
    for (;;) {
        if (!r->reader) {
            int n = r->cfg->ninputs > 0 ? r->cfg->ninputs : 1;
            if (r->input_i >= n) return 0;
            const char *path = r->cfg->ninputs > 0 ? r->cfg->inputs[r->input_i] : "-";
            gr_reader_opts o = {0};
            o.map = r->cfg->map;
            r->reader = gr_reader_open(path, &o, r->err);
            if (!r->reader) return -1;
        }
        int rc = gr_reader_next(r->reader, rec, r->err);
        if (rc != 0) return rc;
        gr_reader_close(r->reader);
        r->reader = NULL;
        r->input_i++;
    }
}

static void slot_release(slot *s) {
    jv_free(s->rec);
    jv_free(s->id);
    free(s->key);
    free(s->body);
    free(s->answer);
    gr_buf_free(&s->input);
    CURL *easy = s->easy;
    gr_buf resp = s->resp;
    memset(s, 0, sizeof *s);
    s->rec = s->id = jv_invalid();
    s->easy = easy; /* kept for the next record */
    s->resp = resp;
    s->resp.len = 0;
    s->state = SLOT_FREE;
}

/* Turns rec into a request in s. 1: ready; 0: skipped (done, or invalid and
 * noted); -1: fatal (--strict). rec is consumed. */
static int slot_prepare(run *r, slot *s, jv rec) {
    synth_config *c = r->cfg;
    const char *file = gr_reader_name(r->reader);
    long line = gr_reader_line(r->reader);
    snprintf(s->where, sizeof s->where, "%s:%ld", file, line);
    s->rec = rec;
    gr_err why;
    const char *bad = NULL;
    jv prompt = jv_object_get(jv_copy(rec), jv_string("prompt"));
    jv resp = jv_object_get(jv_copy(rec), jv_string("response"));
    jv id = jv_object_get(jv_copy(rec), jv_string("id"));
    jv_kind rk = jv_get_kind(resp), ik = jv_get_kind(id);
    if (jv_get_kind(prompt) != JV_KIND_STRING) bad = "no \"prompt\" string";
    else if (rk != JV_KIND_STRING && rk != JV_KIND_NULL && rk != JV_KIND_INVALID)
        bad = "\"response\" is neither a string nor null";
    else if (ik != JV_KIND_STRING && ik != JV_KIND_NUMBER && ik != JV_KIND_NULL && ik != JV_KIND_INVALID)
        bad = "\"id\" is neither a string nor a number";
    else if (synth_labels_get(rec, &s->labels, &why) < 0) bad = why.msg;
    if (ik != JV_KIND_STRING && ik != JV_KIND_NUMBER) {
        jv_free(id);
        /* No id: the line number, or FILE:LINE when there are several inputs. */
        id = c->ninputs > 1 ? jv_string(s->where) : jv_number((double)line);
    }
    s->id = id;
    s->key = synth_id_key(id);
    int rc = 1;
    if (!bad && !synth_idset_add(&r->seen, s->key)) bad = "duplicate id";
    if (bad) {
        r->st->invalid++;
        if (c->strict) {
            set_fatal(r, "%s: %s (--strict)", s->where, bad);
            rc = -1;
        } else {
            note(r, "%s: %s; record skipped", s->where, bad);
            rc = 0;
        }
    } else if (synth_idset_has(&r->done, s->key)) {
        r->st->skipped_done++;
        rc = 0;
    } else {
        const char *rs = rk == JV_KIND_STRING ? jv_string_value(resp) : NULL;
        size_t rl = rs ? (size_t)jv_string_length_bytes(jv_copy(resp)) : 0;
        synth_user_message(jv_string_value(prompt), (size_t)jv_string_length_bytes(jv_copy(prompt)),
                           rs, rl, &s->input);
        r->scratch.len = 0;
        synth_system_render(c->system_tmpl, &s->labels, &r->scratch);
        s->body = synth_request_body(&c->params, r->scratch.data ? r->scratch.data : "",
                                     r->scratch.len, s->input.data, s->input.len, &s->body_len);
        long completion = c->params.max_tokens > 0 ? c->params.max_tokens : c->est_completion_tokens;
        s->est_tokens = (double)(s->body_len / 4) + (double)completion;
    }
    jv_free(prompt);
    jv_free(resp);
    if (rc != 1) slot_release(s);
    return rc;
}

/* ---- writing ------------------------------------------------------------ */

/* Writes one line and flushes it. On failure (a full disk) the run stops, and
 * the record is released unwritten: the next run redoes it. */
static int put(run *r, slot *s, gr_writer *w, jv rec) {
    gr_err e;
    if (gr_writer_put(w, rec, &e) < 0 || gr_writer_flush(w, &e) < 0) {
        if (!r->fatal) {
            r->fatal = 1;
            memcpy(r->err, &e, sizeof e);
        }
        r->st->unstarted++;
        slot_release(s);
        return -1;
    }
    return 0;
}

static void count_retried(run *r, const slot *s) {
    if (s->attempts > 0 || s->retries > 0) r->st->records_retried++;
}

static void accept_answer(run *r, slot *s, synth_reply *rep, const synth_check *chk) {
    jv o = jv_object();
    o = jv_object_set(o, jv_string("instruction"),
                      jv_string_sized(gr_guard_instruction, (int)GR_GUARD_INSTRUCTION_LEN));
    o = jv_object_set(o, jv_string("input"), jv_string_sized(s->input.data, (int)s->input.len));
    o = jv_object_set(o, jv_string("output"), jv_string_sized(rep->content, (int)rep->content_len));
    o = jv_object_set(o, jv_string("id"), jv_copy(s->id));
    o = jv_object_set(o, jv_string("model"),
                      jv_string(rep->model ? rep->model : r->cfg->params.model));
    jv u = jv_object();
    u = jv_object_set(u, jv_string("prompt_tokens"),
                      rep->prompt_tokens >= 0 ? jv_number((double)rep->prompt_tokens) : jv_null());
    u = jv_object_set(u, jv_string("completion_tokens"),
                      rep->completion_tokens >= 0 ? jv_number((double)rep->completion_tokens) : jv_null());
    o = jv_object_set(o, jv_string("usage"), u);
    if (put(r, s, r->out, o) < 0) return;
    r->st->accepted++;
    r->st->steps += chk->steps_total;
    r->st->step_chars += chk->step_chars;
    count_retried(r, s);
    slot_release(s);
}

/* The input record with its id, plus "reject": why, how often, the last answer. */
static void reject(run *r, slot *s, long status) {
    jv o = jv_object_set(jv_copy(s->rec), jv_string("id"), jv_copy(s->id));
    jv j = jv_object();
    redact(r, s->reason);
    j = jv_object_set(j, jv_string("reason"), jv_string(s->reason));
    j = jv_object_set(j, jv_string("attempts"), jv_number(s->attempts));
    j = jv_object_set(j, jv_string("status"), status ? jv_number((double)status) : jv_null());
    j = jv_object_set(j, jv_string("output"),
                      s->answer ? jv_string_sized(s->answer, (int)s->answer_len) : jv_null());
    o = jv_object_set(o, jv_string("reject"), j);
    if (r->rej) {
        if (put(r, s, r->rej, o) < 0) return;
    } else {
        jv_free(o);
    }
    note(r, "%s: id %s rejected: %s", s->where, s->key, s->reason);
    r->st->rejected++;
    count_retried(r, s);
    slot_release(s);
}

/* A server or transport error: try again later, or give up on the record for
 * this run (it stays unwritten, so the next run redoes it). */
static void retry_later(run *r, slot *s, double retry_after) {
    s->retries++;
    if (s->retries > r->cfg->max_retries) {
        note(r, "%s: id %s failed after %d tries (last: %s); a rerun will retry it", s->where,
             s->key, s->retries, s->reason);
        r->st->failed++;
        count_retried(r, s);
        slot_release(s);
        return;
    }
    r->st->server_retries++;
    double d = synth_backoff(s->retries, r->cfg->backoff_base, r->cfg->backoff_max, retry_after, &r->rng);
    s->ready_at = now_s() + d;
    s->state = SLOT_WAITING;
}

/* ---- HTTP --------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    slot *s = ud;
    size_t k = size * n;
    if (s->resp.len + k > REPLY_MAX) {
        s->overflow = 1;
        return 0; /* aborts the transfer */
    }
    gr_buf_append(&s->resp, p, k);
    return k;
}

static int slot_start(run *r, slot *s) {
    synth_config *c = r->cfg;
    if (!s->easy && !(s->easy = curl_easy_init())) {
        set_fatal(r, "cannot create a curl handle");
        return -1;
    }
    CURL *e = s->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->timeout * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_timeout * 1000));
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "gr-synth/" GR_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    s->resp.len = 0;
    s->overflow = 0;
    CURLMcode mc = curl_multi_add_handle(r->multi, e);
    if (mc != CURLM_OK) {
        set_fatal(r, "curl: %s", curl_multi_strerror(mc));
        return -1;
    }
    double t = now_s();
    synth_bucket_take(&r->rpm, 1, t);
    synth_bucket_take(&r->tpm, s->est_tokens, t);
    s->state = SLOT_RUNNING;
    return 0;
}

static int transient_curl_error(CURLcode c) {
    switch (c) {
    case CURLE_OPERATION_TIMEDOUT: case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE: case CURLE_RECV_ERROR: case CURLE_SEND_ERROR:
    case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_WRITE_ERROR: case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

static void slot_finish(run *r, slot *s, CURLcode code) {
    synth_config *c = r->cfg;
    curl_multi_remove_handle(r->multi, s->easy);
    r->st->requests++;
    /* Even when the run is ending (a fatal error elsewhere), a reply that came
     * is handled: an answer already paid for is written. Retries are not
     * started then: the loop drops waiting records. */
    if (code != CURLE_OK) {
        if (s->overflow)
            snprintf(s->reason, sizeof s->reason, "reply larger than %zu MiB", REPLY_MAX >> 20);
        else
            snprintf(s->reason, sizeof s->reason, "%s", curl_easy_strerror(code));
        if (!s->overflow && !transient_curl_error(code)) {
            set_fatal(r, "%s: %s", r->url_shown, s->reason);
            r->st->unstarted++;
            slot_release(s);
            return;
        }
        retry_later(r, s, -1);
        return;
    }
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    char msg[300] = "";
    if (status < 200 || status >= 300) {
        synth_error_message(s->resp.data ? s->resp.data : "", s->resp.len, msg, sizeof msg);
        redact(r, msg);
        snprintf(s->reason, sizeof s->reason, "HTTP %ld%s%s", status, msg[0] ? ": " : "", msg);
    }
    if (status == 429 || status == 408 || status == 409 || status >= 500) {
        curl_off_t ra = 0;
        double after = -1;
        if (curl_easy_getinfo(s->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            after = (double)ra;
        if (status == 429) { /* the key is over its limit: hold every new request */
            double d = synth_backoff(s->retries + 1, c->backoff_base, c->backoff_max, after, &r->rng);
            if (now_s() + d > r->pause_until) r->pause_until = now_s() + d;
        }
        retry_later(r, s, after);
        return;
    }
    if (status == 400 || status == 413 || status == 422) { /* this record is the problem */
        reject(r, s, status);
        return;
    }
    if (status < 200 || status >= 300) {
        set_fatal(r, "%s: %s", r->url_shown, s->reason);
        r->st->unstarted++;
        slot_release(s);
        return;
    }
    synth_reply rep;
    gr_err perr;
    if (synth_reply_parse(s->resp.data ? s->resp.data : "", s->resp.len, &rep, &perr) < 0) {
        snprintf(s->reason, sizeof s->reason, "%.300s", perr.msg);
        redact(r, s->reason);
        synth_reply_free(&rep);
        retry_later(r, s, -1);
        return;
    }
    long used = 0;
    if (rep.prompt_tokens >= 0) r->st->prompt_tokens += rep.prompt_tokens, used += rep.prompt_tokens;
    if (rep.completion_tokens >= 0)
        r->st->completion_tokens += rep.completion_tokens, used += rep.completion_tokens;
    if (rep.prompt_tokens >= 0 && rep.completion_tokens >= 0)
        synth_bucket_adjust(&r->tpm, (double)used - s->est_tokens);
    if (rep.content) { /* a server may echo the key or the URL's secrets: cut them
                        * before the answer is checked, quoted, written or rejected */
        gr_buf a = {rep.content, rep.content_len, rep.content_len + 1};
        synth_secrets_redact(&r->secrets, &a);
        rep.content_len = a.len;
        rep.content[a.len] = 0;
    }
    synth_check chk;
    if (synth_answer_check(rep.content, rep.content_len, &s->labels, &chk) == 0) {
        accept_answer(r, s, &rep, &chk);
        synth_reply_free(&rep);
        return;
    }
    if (strcmp(rep.finish_reason, "length") == 0)
        snprintf(s->reason, sizeof s->reason, "%s (the answer was cut at max_tokens)", chk.reason);
    else
        snprintf(s->reason, sizeof s->reason, "%s", chk.reason);
    free(s->answer);
    s->answer = rep.content;
    s->answer_len = rep.content_len;
    rep.content = NULL;
    synth_reply_free(&rep);
    s->attempts++;
    if (s->attempts >= c->max_attempts) {
        reject(r, s, 0);
        return;
    }
    r->st->answer_retries++;
    s->ready_at = now_s();
    s->state = SLOT_WAITING;
}

/* ---- the loop ----------------------------------------------------------- */

static int setup_outputs(run *r) {
    synth_config *c = r->cfg;
    int to_file = c->output && strcmp(c->output, "-") != 0;
    /* (a dry run locks too: it may cut a torn tail, which must not be a line
     * that a running gr-synth is writing) */
    if (to_file) {
        int lrc = synth_resume_lock(c->output, c->dry_run, &r->lock_fd, r->err);
        if (lrc == GR_LOCK_BUSY) r->st->locked = 1;
        if (lrc < 0) return -1;
    }
    if (c->resume && to_file && load_done(r, c->output) < 0) return -1;
    if (c->resume && c->rejects && load_done(r, c->rejects) < 0) return -1;
    if (c->dry_run) return 0;
    gr_writer_opts o = {0};
    o.append = to_file;
    if (!(r->out = gr_writer_open(c->output, &o, r->err))) return -1;
    if (c->rejects) {
        gr_writer_opts ro = {0};
        ro.append = 1;
        if (!(r->rej = gr_writer_open(c->rejects, &ro, r->err))) return -1;
    }
    return 0;
}

static void build_url(run *r) {
    r->url = synth_url_build(r->cfg->endpoint);
    r->url_shown = synth_url_redacted(r->url);
}

static int dry_run(run *r) {
    jv rec;
    int rc = 0;
    slot s;
    memset(&s, 0, sizeof s);
    s.rec = s.id = jv_invalid();
    while (!r->fatal && (rc = next_input(r, &rec)) == 1) {
        r->st->read++;
        if (slot_prepare(r, &s, rec) != 1) continue;
        r->st->planned++;
        r->st->est_prompt_tokens += (long)(s.body_len / 4);
        if (!r->cfg->dry_first_body) r->cfg->dry_first_body = gr_xstrndup(s.body, s.body_len);
        slot_release(&s);
    }
    gr_buf_free(&s.resp);
    if (r->fatal) return -1;
    return rc < 0 ? -1 : 0;
}

/* Milliseconds until something could start, capped so that a signal is seen
 * within 200 ms. */
static int poll_timeout(run *r, double t) {
    double next = t + 0.2;
    for (int i = 0; i < r->nslots; i++) {
        slot *s = &r->slots[i];
        if (s->state != SLOT_WAITING) continue;
        double at = s->ready_at > r->pause_until ? s->ready_at : r->pause_until;
        double w1 = synth_bucket_wait(&r->rpm, 1, t), w2 = synth_bucket_wait(&r->tpm, s->est_tokens, t);
        double lim = t + (w1 > w2 ? w1 : w2);
        if (lim > at) at = lim;
        if (at < next) next = at;
    }
    double ms = (next - t) * 1000;
    return ms < 0 ? 0 : (int)ms + 1;
}

static void loop(run *r) {
    synth_config *c = r->cfg;
    for (;;) {
        double t = now_s();
        int stop = c->stop ? (int)*c->stop : 0;
        if (stop && !r->st->stopped) r->st->stopped = 1;
        int running = 0, waiting = 0;
        /* 1. fill free slots from the input */
        for (int i = 0; i < r->nslots && !stop && !r->fatal && !r->eof; i++) {
            slot *s = &r->slots[i];
            while (s->state == SLOT_FREE && !r->eof && !r->fatal) {
                jv rec;
                int rc = next_input(r, &rec);
                if (rc < 0) { r->fatal = 1; break; }
                if (rc == 0) { r->eof = 1; break; }
                r->st->read++;
                if (slot_prepare(r, s, rec) == 1) {
                    s->state = SLOT_WAITING;
                    s->ready_at = t;
                }
            }
        }
        /* 2. start what is due and allowed; drop waiting records when stopping */
        for (int i = 0; i < r->nslots; i++) {
            slot *s = &r->slots[i];
            if (s->state == SLOT_WAITING && (stop || r->fatal)) {
                r->st->unstarted++;
                slot_release(s);
                continue;
            }
            if (s->state == SLOT_WAITING && s->ready_at <= t && r->pause_until <= t &&
                synth_bucket_wait(&r->rpm, 1, t) == 0 && synth_bucket_wait(&r->tpm, s->est_tokens, t) == 0)
                slot_start(r, s);
            running += s->state == SLOT_RUNNING;
            waiting += s->state == SLOT_WAITING;
        }
        if (stop >= 2 && running) { /* abandon what is in flight; it is redone next time */
            for (int i = 0; i < r->nslots; i++)
                if (r->slots[i].state == SLOT_RUNNING) {
                    curl_multi_remove_handle(r->multi, r->slots[i].easy);
                    r->st->unstarted++;
                    slot_release(&r->slots[i]);
                }
            running = 0;
        }
        if (!running && !waiting && (r->eof || stop || r->fatal)) break;
        /* 3. move the transfers on and collect what finished */
        int still;
        curl_multi_perform(r->multi, &still);
        CURLMsg *m;
        int left, finished = 0;
        while ((m = curl_multi_info_read(r->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            slot *s = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            CURLcode code = m->data.result;
            if (s) slot_finish(r, s, code), finished++;
        }
        if (c->progress && t - r->last_progress >= 1.0) {
            r->last_progress = t;
            r->st->seconds = t - r->t0;
            c->progress(c->ctx, r->st, running);
        }
        /* a finished transfer freed a slot or queued a retry: refill first */
        if (!finished) curl_multi_poll(r->multi, NULL, 0, poll_timeout(r, now_s()), NULL);
    }
}

int synth_run(synth_config *cfg, synth_stats *st, gr_err *err) {
    memset(st, 0, sizeof *st);
    run R;
    memset(&R, 0, sizeof R);
    run *r = &R;
    r->cfg = cfg;
    r->st = st;
    r->err = err;
    r->t0 = now_s();
    r->lock_fd = -1;
    r->rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ULL;
    synth_secrets_add(&r->secrets, cfg->api_key);
    synth_secrets_add_url(&r->secrets, cfg->endpoint);
    int rc = -1;
    if (setup_outputs(r) < 0) goto done;
    if (cfg->dry_run) {
        rc = dry_run(r);
        goto done;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        gr_errf(err, "curl: global initialisation failed");
        goto done;
    }
    build_url(r);
    r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/json");
    r->hdrs = curl_slist_append(r->hdrs, "Expect:"); /* no 100-continue round trip */
    if (cfg->api_key) {
        gr_buf h = {0};
        gr_buf_printf(&h, "Authorization: Bearer %s", cfg->api_key);
        r->hdrs = curl_slist_append(r->hdrs, gr_buf_cstr(&h));
        memset(h.data, 0, h.len);
        gr_buf_free(&h);
    }
    r->multi = curl_multi_init();
    curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, (long)cfg->concurrency);
    synth_bucket_init(&r->rpm, cfg->rpm, r->t0);
    synth_bucket_init(&r->tpm, cfg->tpm, r->t0);
    r->nslots = cfg->concurrency;
    r->slots = gr_xcalloc((size_t)r->nslots, sizeof *r->slots);
    for (int i = 0; i < r->nslots; i++) r->slots[i].rec = r->slots[i].id = jv_invalid();
    loop(r);
    for (int i = 0; i < r->nslots; i++) {
        slot *s = &r->slots[i];
        if (s->state == SLOT_RUNNING) curl_multi_remove_handle(r->multi, s->easy);
        if (s->state != SLOT_FREE) slot_release(s);
        if (s->easy) curl_easy_cleanup(s->easy);
        gr_buf_free(&s->resp);
    }
    free(r->slots);
    curl_multi_cleanup(r->multi);
    curl_slist_free_all(r->hdrs);
    curl_global_cleanup();
    rc = r->fatal ? -1 : 0;
done:
    if (r->out) {
        gr_err e2;
        if (gr_writer_commit(r->out, rc < 0 ? &e2 : err) < 0 && rc == 0) rc = -1;
    }
    if (r->rej) {
        gr_err e2;
        if (gr_writer_commit(r->rej, rc < 0 ? &e2 : err) < 0 && rc == 0) rc = -1;
    }
    if (r->reader) gr_reader_close(r->reader);
    synth_idset_free(&r->done);
    synth_idset_free(&r->seen);
    gr_buf_free(&r->scratch);
    free(r->url);
    free(r->url_shown);
    synth_secrets_free(&r->secrets);
    if (r->lock_fd >= 0) close(r->lock_fd);
    st->seconds = now_s() - r->t0;
    return rc;
}
