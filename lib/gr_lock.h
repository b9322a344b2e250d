/* Advisory locks: one run per output, output folder or state file at a time.
 *
 * An flock(2) on a lock file, never a pid file: the kernel drops the lock when
 * the holder exits, however it exits (SIGKILL included), so a crashed run never
 * blocks the next one. The lock file sits beside what it guards -- "OUT.lock"
 * for a file, "DIR/.lock" for a folder -- and not on the output itself, because
 * the atomic writer renames a new file over the output (a lock on the old inode
 * would guard nothing). It is removed on release; a run that takes the lock
 * checks that the file it locked is still the one under that name (a releasing
 * run may have removed it meanwhile), so removal is race-free. */
#ifndef GR_LOCK_H
#define GR_LOCK_H
#include "gr_common.h"

/* gr_lock_* return this (with a message in err) when another process holds
 * the lock; tools exit GR_EXIT_LOCKED (gr_cli.h) on it. */
#define GR_LOCK_BUSY (-2)

typedef struct gr_lock {
    int fd;     /* -1: not held */
    char *path; /* the lock file (owned) */
    int unlink_on_release;
} gr_lock;

#define GR_LOCK_INIT {-1, NULL, 0}

/* The lock file for an output file ("PATH.lock") or folder ("PATH/.lock"),
 * malloc'd. */
char *gr_lock_path_for(const char *path, int is_folder);

/* Takes the exclusive lock on lock_path (created if missing). wait: block until
 * it is free (a signal caught without SA_RESTART ends the wait with -1; the
 * tools' handlers restart it, and a second signal kills); otherwise a held lock
 * returns GR_LOCK_BUSY at once with "what: another run (pid N) holds LOCK".
 * `what` names the guarded thing in messages (the output path). 0 when held;
 * -1 on another error. The pid written into the file is for people only. */
int gr_lock_take(gr_lock *lk, const char *lock_path, const char *what, int wait, gr_err *err);

/* gr_lock_take on gr_lock_path_for(path, is_folder). */
int gr_lock_output(gr_lock *lk, const char *path, int is_folder, int wait, gr_err *err);

/* Locks an existing (or created, with create) file itself rather than a file
 * beside it, for outputs only ever appended to in place (gr-synth). The file is
 * never removed on release. Same returns as gr_lock_take. */
int gr_lock_file(gr_lock *lk, const char *path, int create, int wait, gr_err *err);

/* Releases the lock (and removes its lock file); safe on a lock never taken. */
void gr_lock_release(gr_lock *lk);
#endif
