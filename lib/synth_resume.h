/* gr-synth's resume: what an earlier run already wrote, and one run per
 * output at a time. */
#ifndef SYNTH_RESUME_H
#define SYNTH_RESUME_H
#include <stddef.h>
#include "gr_common.h"
#include "synth_idset.h"

/* Takes an exclusive lock on path (created unless dry; a dry run on a missing
 * file locks nothing and *fd is -1). Two runs appending to one output would
 * both pay for the records neither has written yet, so a second is refused.
 * The lock lasts until *fd is closed. */
/* -1 with err set on failure, GR_LOCK_BUSY (-2) when another run holds the lock. */
int synth_resume_lock(const char *path, int dry, int *fd, gr_err *err);

/* Cuts a torn last line (a SIGKILL mid-write) off path, *cut getting its
 * size, then adds the id of every record of path to done. A missing file is
 * empty; a record without an id is an error naming its line. */
int synth_resume_load(const char *path, synth_idset *done, size_t *cut, gr_err *err);

/* The rejects path used when none is given: OUTPUT without ".jsonl" plus
 * ".rejects.jsonl" (malloc'ed). */
char *synth_default_rejects(const char *output);
#endif
