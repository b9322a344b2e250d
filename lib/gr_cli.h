/* Helpers shared by the command-line programs in cmd/: messages and checked
 * numeric flags. (The library proper never prints; these are for main().) */
#ifndef GR_CLI_H
#define GR_CLI_H
#include "gr_common.h"

extern const char *gr_prog; /* set by main: "gr-eval", ... */

/* "gr-NAME: message\n" on stderr. */
void gr_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "gr-NAME: msg" and exits with status (1 runtime, 2 usage). */
_Noreturn void gr_die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Usage error that also points to --help. */
_Noreturn void gr_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Checked conversions for option values: whole string, range checked; a bad
 * value is a usage error naming the option. */
long gr_parse_long(const char *opt, const char *s, long min, long max);
double gr_parse_double(const char *opt, const char *s, double min, double max);

/* Closes stdout, checking for write errors (a full disk, a closed pipe); exits 1
 * on error. Call before returning 0 from main. */
void gr_close_stdout(void);
#endif
