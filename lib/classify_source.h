/* What gr-classify --state reads of one log this run, and the reading itself.
 *
 * Planning compares the log as it is now with its state entry:
 *   - no entry: the whole file, from byte 0;
 *   - the same file (device + inode), not shorter than the offset and with
 *     the same fingerprint: from the offset (what was appended);
 *   - the same file, shorter or with another fingerprint: truncated in place
 *     (copytruncate). The old content's tail is finished from its copy, a
 *     rotated candidate with the same fingerprint and at least `offset`
 *     bytes; then the file from 0;
 *   - another file (rename rotation): the old file's tail is finished from
 *     the candidate with the old device + inode (or, failing that, a copy
 *     with the old fingerprint), then the new file from 0.
 * Rotated candidates are LOG.1, or the files --rotated-glob matches. When the
 * old content cannot be found, the plan carries a warning naming the bytes
 * that could not be moderated.
 *
 * Each segment is read from its start up to the file's size when it was
 * opened (lines appended meanwhile wait for the next run). Only complete
 * lines are read: the current file's unterminated last line is left for the
 * next run; a rotated file's unterminated last line will never be finished
 * and is handed over as `partial`, to be rejected. */
#ifndef GR_CLASSIFY_SOURCE_H
#define GR_CLASSIFY_SOURCE_H
#include "classify_state.h"

#define GR_LINE_MAX (64u << 20) /* longest line read; a longer one is rejected unread */

typedef struct gr_segment {
    char *file;              /* path the bytes are read from (the log, or its rotated name) */
    int fd;
    uint64_t dev, ino;
    uint64_t gen;            /* the log's generation this content belongs to (classify_state.h) */
    uint64_t start, end;     /* bytes [start, end) to read; end: the size when opened */
    uint64_t line;           /* lines before start */
    int rotated;             /* 1: an old file being finished */
} gr_segment;

typedef struct gr_log_plan {
    char *log;               /* the log as named on the command line */
    gr_segment seg[2];
    int n_seg;
    char warning[2300];      /* non-empty: something could not be moderated (said why) */
    /* filled in by reading: where the last segment was left */
    uint64_t next_offset, next_line;
} gr_log_plan;

/* Plans the reads of log against prev (NULL: no state entry). rotated_glob:
 * NULL for "LOG.1". 0, or -1 with the reason (the log cannot be opened and
 * there is nothing rotated to finish). */
int gr_log_plan_make(const char *log, const gr_cstate_log *prev, const char *rotated_glob,
                     gr_log_plan *p, gr_err *err);
void gr_log_plan_free(gr_log_plan *p);

/* One line handed to the reader's callback: bytes [0, n) without the "\n" (a
 * "\r" before it is removed too), line number (1-based), byte offset of its
 * first byte. too_long: longer than GR_LINE_MAX (text holds its first bytes
 * only). partial: a rotated file's unterminated last line. Return 0 to go on,
 * -1 to stop (err set). */
typedef struct gr_line {
    const gr_segment *seg;
    const char *text;
    size_t n;
    uint64_t line, offset;
    int too_long, partial;
} gr_line;
typedef int (*gr_line_fn)(void *ud, const gr_line *l, gr_err *err);

/* Reads every segment in order, calling fn for each complete line; sets
 * p->next_offset / next_line to where the last segment was left. */
int gr_log_plan_read(gr_log_plan *p, gr_line_fn fn, void *ud, gr_err *err);

/* The state entry after a successful read: the last segment's file, offset
 * and line, and its fingerprint. (With no segment, prev is kept.) */
int gr_log_plan_state(const gr_log_plan *p, gr_cstate_log *out, gr_err *err);
#endif
