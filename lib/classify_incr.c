/* gr-classify --state: see classify_incr.h for the steps and why their order. */
#include "classify_incr.h"
#include "gr_lock.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct warn_fwd {
    gr_run_warn warn;
    void *ud;
} warn_fwd;

static void fwd(void *ud, const char *msg) {
    warn_fwd *w = ud;
    if (w->warn) w->warn(w->ud, msg);
}

/* Where to start learning done keys in path: the size STATE recorded when it
 * is still the same file and not shorter; otherwise the whole file. */
static uint64_t learn_from(const gr_cstate_file *f, const char *path) {
    struct stat st;
    if (!f->set || strcmp(f->path, path) != 0 || stat(path, &st) != 0) return 0;
    if ((uint64_t)st.st_dev != f->dev || (uint64_t)st.st_ino != f->ino || (uint64_t)st.st_size < f->size) return 0;
    return f->size;
}

static void note_file(gr_cstate_file *f, const char *path) {
    struct stat st;
    if (stat(path, &st) == 0) gr_cstate_file_set(f, (uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size, path);
}

static int lock_one(gr_lock *lk, const char *path, int wait, gr_err *err) {
    int r = gr_lock_output(lk, path, 0, wait, err);
    return r == GR_LOCK_BUSY ? GR_LOCK_BUSY : r ? -1 : 0;
}

int gr_classify_incremental(const gr_run_opts *ro, const gr_incr_opts *io, char *const *logs, int n_logs,
                            gr_run_warn warn, void *ud, gr_incr_stats *st, gr_err *err) {
    memset(st, 0, sizeof *st);
    gr_lock lk_state = GR_LOCK_INIT, lk_out = GR_LOCK_INIT, lk_rej = GR_LOCK_INIT;
    gr_cstate state = {0};
    gr_feed *feed = NULL;
    gr_writer *records = NULL, *rejects = NULL, *out = NULL;
    gr_log_plan *plans = gr_xcalloc((size_t)n_logs, sizeof *plans);
    int n_plans = 0, made_input = 0, rc;
    warn_fwd wf = {warn, ud};
    gr_buf input_path = {0};
    gr_buf_printf(&input_path, "%s.input", io->state_path);

    /* 1. locks */
    if ((rc = lock_one(&lk_state, io->state_path, io->wait, err)) != 0) goto out;
    if ((rc = lock_one(&lk_out, io->out_path, io->wait, err)) != 0) goto out;
    if (io->rejects_path && (rc = lock_one(&lk_rej, io->rejects_path, io->wait, err)) != 0) goto out;
    rc = -1;

    /* 2. state, torn tails, done keys */
    if (gr_cstate_load(io->state_path, &state, err)) goto out;
    size_t cut;
    if (gr_jsonl_cut_torn_tail(io->out_path, &cut, err)) goto out;
    if (io->rejects_path && gr_jsonl_cut_torn_tail(io->rejects_path, &cut, err)) goto out;
    feed = gr_feed_new(&io->feed, err);
    if (!feed) goto out;
    if (gr_feed_learn_done(feed, io->out_path, learn_from(&state.output, io->out_path), err)) goto out;
    if (io->rejects_path &&
        gr_feed_learn_done(feed, io->rejects_path, learn_from(&state.rejects, io->rejects_path), err))
        goto out;
    st->done_known = gr_feed_done_known(feed);

    /* 3. new lines -> STATE.input and rejects */
    gr_writer_opts app = {.append = 1};
    /* STATE.input: a fixed name under the lock, emptied and rewritten each run
     * (no temporary that a killed run could leave behind) */
    if (truncate(gr_buf_cstr(&input_path), 0) != 0 && errno != ENOENT) {
        gr_errf(err, "%s: %s", gr_buf_cstr(&input_path), strerror(errno));
        goto out;
    }
    records = gr_writer_open(gr_buf_cstr(&input_path), &app, err);
    if (!records) goto out;
    made_input = 1;
    if (io->rejects_path && !(rejects = gr_writer_open(io->rejects_path, &app, err))) goto out;
    for (int i = 0; i < n_logs; i++) {
        gr_log_plan *p = &plans[n_plans];
        if (gr_log_plan_make(logs[i], gr_cstate_find(&state, logs[i]), io->rotated_glob, p, err)) goto out;
        n_plans++;
        st->logs++;
        if (p->warning[0]) {
            st->lost++;
            if (warn) warn(ud, p->warning);
        }
        if (gr_feed_log(feed, p, records, rejects, fwd, &wf, &st->feed, err)) goto out;
    }
    int rc_rec = gr_writer_commit(records, err);
    records = NULL;
    if (rc_rec) goto out;

    /* 4. moderate */
    if (st->feed.records > 0) {
        out = gr_writer_open(io->out_path, &app, err);
        if (!out) goto out;
        char *in[1] = {input_path.data};
        gr_run_opts o = *ro;
        gr_reader_opts no_map = {0};
        if (o.reader) no_map.replace_invalid_utf8 = o.reader->replace_invalid_utf8;
        o.reader = &no_map; /* the feed applied --map */
        int r = gr_run(&o, in, 1, NULL, out, warn, ud, &st->run, err);
        gr_err ignored;
        /* keep what was written either way: the next run learns it (step 2) */
        int c = gr_writer_commit(out, r ? &ignored : err);
        out = NULL;
        if (r == GR_RUN_STOPPED) {
            rc = GR_RUN_STOPPED;
            goto out;
        }
        if (r || c) goto out;
    }

    /* 5. fsync'd (the writers' commit), then the new state */
    if (rejects) {
        int c = gr_writer_commit(rejects, err);
        rejects = NULL;
        if (c) goto out;
    }
    for (int i = 0; i < n_plans; i++)
        if (gr_log_plan_state(&plans[i], gr_cstate_get(&state, plans[i].log), err)) goto out;
    note_file(&state.output, io->out_path);
    if (io->rejects_path) note_file(&state.rejects, io->rejects_path);
    if (gr_cstate_save(io->state_path, &state, err)) goto out;
    rc = 0;
out:
    if (records) {
        gr_err ignored;
        gr_writer_commit(records, &ignored);
    }
    if (made_input) unlink(gr_buf_cstr(&input_path)); /* ours: we hold the state's lock */
    if (rejects) {
        gr_err ignored;
        gr_writer_commit(rejects, &ignored); /* appended in place: keep what was written */
    }
    if (out) {
        gr_err ignored;
        gr_writer_commit(out, &ignored);
    }
    for (int i = 0; i < n_plans; i++) gr_log_plan_free(&plans[i]);
    free(plans);
    gr_feed_free(feed);
    gr_cstate_free(&state);
    gr_buf_free(&input_path);
    gr_lock_release(&lk_rej);
    gr_lock_release(&lk_out);
    gr_lock_release(&lk_state);
    return rc;
}
