/* Lines of a log -> records to moderate, or rejects (gr-classify --state).
 *
 * Each complete line is checked (UTF-8, JSON, an object, or what --map makes
 * of it: objects, each with a prompt the guard can read). A line passes as a
 * whole or is rejected as a whole, with its source and the reason; a reject
 * never stops the lines after it. Every record gets
 *     source: {log, gen, file, line, offset, inode}   (+ index when --map made several)
 * (an input field named `source` is replaced): the log as named on the
 * command line, its generation (classify_state.h), the file the line was read
 * from (the log or its rotated name), the line number and byte offset in that
 * file, and its inode. When it has no `id` it gets "LOG:GEN:OFFSET" ("#INDEX"
 * appended for the second and later records --map made of one line): unique
 * for the state's life, and the same when a rerun reads the line again from a
 * rotated copy. (Not the inode: copytruncate keeps it, so one inode and
 * offset can name two lines.)
 *
 * Done keys. A run killed after writing some verdicts but before saving the
 * state leaves verdicts (and rejects) that the next run would write again.
 * gr_feed_learn_done reads the records a file gained after a byte offset and
 * remembers their (source.log, source.gen, source.offset, source.index): a line whose
 * key is known is skipped (counted as done_before), so no line is written
 * twice. */
#ifndef GR_CLASSIFY_FEED_H
#define GR_CLASSIFY_FEED_H
#include "classify_source.h"
#include "gr_io.h"
#include "record_shard.h"

typedef struct gr_feed_opts {
    const char *map;            /* jq program applied to each line's object, or NULL */
    int replace_invalid;        /* replace invalid UTF-8 by U+FFFD instead of rejecting */
    const gr_shard *shard;      /* NULL: every record */
} gr_feed_opts;

typedef struct gr_feed_stats {
    long lines;                 /* complete lines read */
    long blank;                 /* empty (or whitespace-only) lines, ignored */
    long records;               /* records handed on to be moderated */
    long rejects;               /* lines rejected */
    long dropped;               /* lines --map turned into no record */
    long done_before;           /* lines a killed run had already written */
    long other_shard;           /* records (and rejects) of other shards */
    long replaced;              /* lines with invalid UTF-8 replaced */
} gr_feed_stats;

typedef struct gr_feed gr_feed;

/* Called with "FILE:LINE: reason" for every reject (the rejects file, when
 * there is one, gets the full record). */
typedef void (*gr_feed_warn)(void *ud, const char *msg);

gr_feed *gr_feed_new(const gr_feed_opts *o, gr_err *err);
void gr_feed_free(gr_feed *f);

/* Learns the done keys of the records path holds after byte `from` (a
 * missing file holds none). Lines without a source are ignored. */
int gr_feed_learn_done(gr_feed *f, const char *path, uint64_t from, gr_err *err);
long gr_feed_done_known(const gr_feed *f);

/* Reads the plan's lines: records to `records`, rejects to `rejects` (NULL:
 * only reported through warn). Counts into st. */
int gr_feed_log(gr_feed *f, gr_log_plan *p, gr_writer *records, gr_writer *rejects, gr_feed_warn warn,
                void *ud, gr_feed_stats *st, gr_err *err);
#endif
