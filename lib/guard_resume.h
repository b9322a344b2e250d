/* What a resumed gr-classify / gr-sample run has already written.
 *
 * A record is done only if the output holds the same record: every output
 * record carries the `fingerprint` of its input record, the first 128 bits of
 * SHA-256 over the record's canonical JSON (keys sorted, as read after --map)
 * and, for a record without an `id`, over its source too (the file as named on
 * the command line and the line it starts on): records without ids in two
 * files, or at two lines of one file, never match. In sample mode the key is
 * (fingerprint, k).
 *
 * Keys are counted, not merely present: when one input holds the same record
 * twice (same id and content, or two id-less records on one line of an
 * array), the output must hold it twice for both to be done; the first n
 * occurrences in input order are the n written. So duplicate ids never make a
 * record skipped silently: different content is a different key, the same
 * content an occurrence of its own. */
#ifndef GR_GUARD_RESUME_H
#define GR_GUARD_RESUME_H
#include <jv.h>
#include "gr_common.h"

#define GR_FINGERPRINT_HEX 32

typedef struct gr_resume gr_resume;

/* rec as read (not consumed), before any default id is set; has_id: rec has a
 * non-null `id`; file and line: where it was read. out gets 32 hex digits. */
void gr_record_fingerprint(jv rec, int has_id, const char *file, long line,
                           char out[GR_FINGERPRINT_HEX + 1]);

/* Reads the keys of an existing output (a missing file is empty). An output
 * record without a `fingerprint` (written by an older version), or, in sample
 * mode, without a numeric `k`, is an error naming its line: resuming it could
 * not tell its records apart. */
gr_resume *gr_resume_load(const char *path, int sample_mode, gr_err *err);
/* An empty set (nothing done). */
gr_resume *gr_resume_empty(void);
/* 1 when one more occurrence of (fp, k) is in the output, and takes it; 0 when
 * the record is still to do. k is -1 in classify mode. */
int gr_resume_take(gr_resume *r, const char *fp, int k);
long gr_resume_size(const gr_resume *r);
void gr_resume_free(gr_resume *r);
#endif
