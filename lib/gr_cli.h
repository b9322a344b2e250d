/* Helpers shared by the command-line programs in cmd/: messages and checked
 * numeric flags. (The library proper never prints; these are for main().) */
#ifndef GR_CLI_H
#define GR_CLI_H
#include <signal.h>
#include "gr_common.h"

/* The exit status of every tool, documented in each man page's EXIT STATUS:
 *   0   ok
 *   1   runtime failure (I/O, a bad model, a bad record under --strict, ...)
 *   2   usage error (a bad option or value)
 *   3   flagged: a verdict matched --fail-on (gr-classify)
 *   4   locked: another run holds the lock on this output, folder or state file
 *   130 stopped by SIGINT, 143 by SIGTERM (128 + the signal, as the shells
 *       report a process killed by it), after flushing what was complete. */
enum {
    GR_EXIT_OK = 0,
    GR_EXIT_FAIL = 1,
    GR_EXIT_USAGE = 2,
    GR_EXIT_FLAGGED = 3,
    GR_EXIT_LOCKED = 4,
    GR_EXIT_SIGINT = 130,
    GR_EXIT_SIGTERM = 143,
};

extern const char *gr_prog; /* set by main: "gr-eval", ... */

/* "gr-NAME: message\n" on stderr. */
void gr_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "gr-NAME: msg" and exits with status (a GR_EXIT_* value). */
_Noreturn void gr_die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Usage error that also points to --help. */
_Noreturn void gr_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Checked conversions for option values: whole string, range checked; a bad
 * value is a usage error naming the option. */
long gr_parse_long(const char *opt, const char *s, long min, long max);
double gr_parse_double(const char *opt, const char *s, double min, double max);

/* SIGINT and SIGTERM set gr_stop_signal (to the signal's number) instead of
 * killing the process, so that a long run can stop at its next step, keep what
 * is complete, remove its temporaries and exit gr_exit_for_signal(). A second
 * signal of either kind kills at once (the default action). */
extern volatile sig_atomic_t gr_stop_signal;
void gr_catch_stop_signals(void);
/* GR_EXIT_SIGINT or GR_EXIT_SIGTERM (128 + sig otherwise). */
int gr_exit_for_signal(int sig);

/* A usage error when out (a file, not "-") names the same file as one of the
 * inputs (by device and inode, or by name when out does not exist yet). */
void gr_refuse_output_as_input(const char *out, char *const *inputs, int n_inputs);

/* Locks an output file or folder (gr_lock.h) for the rest of the process,
 * released (its lock file removed) at exit; exits GR_EXIT_LOCKED when another
 * run holds it, GR_EXIT_FAIL when it cannot be taken. */
void gr_lock_output_or_die(const char *path, int is_folder);

/* Closes stdout, checking for write errors (a full disk, a closed pipe); exits 1
 * on error. Call before returning 0 from main. */
void gr_close_stdout(void);
#endif
