/* gr-classify --state: moderate what each log gained since the last run.
 *
 * One run, in this order (each step only after the one before succeeded):
 *   1. lock STATE.lock, then the output's and the rejects file's locks
 *      (gr_lock; busy: GR_LOCK_BUSY at once, or wait);
 *   2. load STATE; cut a torn last line off the output and the rejects file
 *      (a run killed mid-write); learn the done keys of what they gained since
 *      the sizes STATE recorded (a run killed before saving its state);
 *   3. plan and read every log (classify_source.h), writing its new records
 *      to STATE.input and its rejects to the rejects file (classify_feed.h);
 *   4. moderate STATE.input into the output (appended, flushed per verdict),
 *      when there is anything to moderate -- a run with nothing new never
 *      loads the model;
 *   5. fsync the output and the rejects file, then replace STATE atomically
 *      with the new offsets and both files' sizes; remove STATE.input.
 * A run killed at any point leaves STATE as it was, or as new and covered by
 * verdicts already on disk; what it wrote after the old state is recognised
 * by its source keys in step 2, so no line gets a second verdict or reject. */
#ifndef GR_CLASSIFY_INCR_H
#define GR_CLASSIFY_INCR_H
#include "classify_feed.h"
#include "guard_run.h"

typedef struct gr_incr_opts {
    const char *state_path;
    const char *out_path;      /* the verdicts file (required; appended to) */
    const char *rejects_path;  /* NULL: rejects only reported on stderr */
    const char *rotated_glob;  /* NULL: LOG.1 */
    int wait;                  /* wait for the locks instead of GR_LOCK_BUSY */
    gr_feed_opts feed;
} gr_incr_opts;

typedef struct gr_incr_stats {
    gr_feed_stats feed;
    gr_run_stats run;
    long logs;
    long lost;                 /* logs whose rotated content could not be found */
    long done_known;           /* records a killed run had written (keys learnt) */
} gr_incr_stats;

/* Runs steps 1-5 over logs[0..n_logs). ro: the generation options (its
 * reader must not carry a --map: the feed applies it). warn gets each reject
 * ("FILE:LINE: reason (rejected)"), each rotation warning and each record
 * the guard run skips. 0; GR_LOCK_BUSY (err says who holds it); GR_RUN_STOPPED
 * (*ro->stop was set: the verdicts written are kept, the state is not
 * replaced, and the next run knows them done); -1. */
int gr_classify_incremental(const gr_run_opts *ro, const gr_incr_opts *io, char *const *logs, int n_logs,
                            gr_run_warn warn, void *ud, gr_incr_stats *st, gr_err *err);
#endif
