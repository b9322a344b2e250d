/* The --state file of gr-classify: where each log was left by the last run.
 *
 * A text file, one fact per line, every field named and in a fixed order:
 *
 *   gr-classify-state 1
 *   # comment lines start with '#'
 *   output dev=2049 ino=1311 size=52817 path=verdicts.jsonl
 *   rejects dev=2049 ino=1312 size=0 path=rejects.jsonl
 *   log dev=2049 ino=1304 gen=3 offset=1834 line=12 fp=1024:8c3f0a9d1e2b4c57 path=/var/log/app.jsonl
 *
 * `log`: one per log named on the command line (path exactly as given): the
 * file moderated last (st_dev, st_ino), its generation (`gen`: 0 for the first
 * file of the log, one more for each rotation or truncation seen, so that
 * (log, gen, offset) names one line for the state's whole life, whatever
 * inode numbers the filesystem reuses), the byte just past the last complete
 * line moderated (`offset`) and the number of lines before it (`line`), and a
 * fingerprint of the file's first bytes, `fp=LEN:HASH` (FNV-1a 64 of the first
 * LEN = min(offset, 1024) bytes, 16 lowercase hex digits): a log truncated in
 * place (logrotate's copytruncate) shows as a shorter file or another
 * fingerprint, and its rotated copy is recognised by the same fingerprint.
 * `output` and `rejects`: the verdict and rejects files as they were when the
 * state was written (size after the fsync), so that a run killed after writing
 * verdicts but before writing the state is recognised: the next run reads only
 * what those files gained since `size` to learn which lines are done.
 *
 * Numbers are unsigned decimal (no sign, no leading zero, at most 2^64-1);
 * paths are percent-encoded: every byte outside '!'..'~' and '%' itself as
 * %XX (two uppercase hex digits), so a path with spaces or newlines survives.
 * The parser checks every field, names the line of the first error, and
 * refuses duplicates (two `log` lines for one path, two `output` lines).
 *
 * The file is replaced atomically (STATE.tmp beside it, fsync, rename, fsync
 * of the folder): a reader sees the old state or the new one, never a mix. */
#ifndef GR_CLASSIFY_STATE_H
#define GR_CLASSIFY_STATE_H
#include "gr_common.h"

#define GR_CSTATE_FP_MAX 1024 /* bytes a fingerprint covers at most */

typedef struct gr_cstate_log {
    char *path;              /* the log as named on the command line (the key) */
    uint64_t dev, ino;       /* the file moderated last */
    uint64_t gen;            /* its generation: rotations and truncations seen before it */
    uint64_t offset;         /* just past the last complete line moderated */
    uint64_t line;           /* lines before offset */
    uint32_t fp_len;         /* bytes the fingerprint covers: min(offset, GR_CSTATE_FP_MAX) */
    uint64_t fp;             /* FNV-1a 64 of the first fp_len bytes */
} gr_cstate_log;

typedef struct gr_cstate_file {
    int set;                 /* 0: not recorded */
    uint64_t dev, ino, size;
    char *path;
} gr_cstate_file;

typedef struct gr_cstate {
    gr_cstate_file output, rejects;
    gr_cstate_log *logs;
    size_t n_logs, cap_logs;
} gr_cstate;

/* Parses text[0..n) (name is used in messages). 0, or -1 with "NAME:LINE: why";
 * on failure *s is left empty. */
int gr_cstate_parse(const char *text, size_t n, const char *name, gr_cstate *s, gr_err *err);
/* Appends the file's text to out. */
void gr_cstate_format(const gr_cstate *s, gr_buf *out);

/* Reads and parses path; a missing file is an empty state (0). */
int gr_cstate_load(const char *path, gr_cstate *s, gr_err *err);
/* Writes path atomically: PATH.tmp, fsync, rename, fsync of the folder. The
 * caller holds the state's lock (PATH.tmp is a fixed name). */
int gr_cstate_save(const char *path, const gr_cstate *s, gr_err *err);

gr_cstate_log *gr_cstate_find(gr_cstate *s, const char *path);
/* The entry for path, added (zeroed) when missing. */
gr_cstate_log *gr_cstate_get(gr_cstate *s, const char *path);
/* Sets f to (dev, ino, size, path). */
void gr_cstate_file_set(gr_cstate_file *f, uint64_t dev, uint64_t ino, uint64_t size, const char *path);
void gr_cstate_free(gr_cstate *s);

/* FNV-1a 64 of p[0..n), continuing from h (start with GR_FNV_INIT). */
#define GR_FNV_INIT 14695981039346656037ull
uint64_t gr_fnv1a64(uint64_t h, const void *p, size_t n);
/* The fingerprint of an open file: FNV-1a 64 of its first len bytes (pread;
 * -1 when the file is shorter or cannot be read). */
int gr_fingerprint_fd(int fd, uint32_t len, uint64_t *fp, gr_err *err);
#endif
