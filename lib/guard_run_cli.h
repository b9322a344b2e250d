/* What gr-classify and gr-sample print around gr_run_to_path (for main() only:
 * this prints): the progress line, the --log step records, the summary line,
 * --summary-json, and the exit status (gr_cli.h). */
#ifndef GR_GUARD_RUN_CLI_H
#define GR_GUARD_RUN_CLI_H
#include <jv.h>
#include <stdio.h>
#include "guard_run.h"

typedef struct gr_run_cli {
    int sample_mode;
    int quiet;                /* no progress, no summary */
    int progress;             /* 1: a progress line (default: stderr is a terminal) */
    const char *log_path;     /* --log FILE: one JSON line per forward step, or NULL */
    const char *summary_json; /* --summary-json FILE, or NULL */
    const char *preface;      /* printed at the head of the summary line (gr-classify --state: what the logs held), or NULL */
    /* gr-classify --state: what the logs held, for --summary-json ("state"; an object,
     * owned and freed by gr_run_cli_finish; 0 = none) and the input lines no verdict
     * covers (rejected lines: --fail-on unverified flags them too) */
    jv summary_state;
    int has_summary_state;
    long unverified_lines;
    /* internal */
    FILE *log;
    long total;               /* outputs expected (-1: unknown) */
    double last_print, first_step;
    int tty, printed;
    int rate_shown;           /* a line with a measured rate (and so an ETA) has been printed */
} gr_run_cli;

/* Parses a --fail-on value (harmful, refusal, unverified, any; a comma list
 * too) into GR_FLAG_* bits; a usage error otherwise. */
unsigned gr_run_cli_fail_on(const char *s);

/* Before the run: opens --log (exit 1 when it cannot be written), counts the
 * records to come when the inputs allow it (uncompressed JSON Lines files,
 * no --map), and points o->on_step at the progress / log hook. */
void gr_run_cli_start(gr_run_cli *c, gr_run_opts *o, char *const *files, int n_files);

/* After gr_run_to_path returned rc: prints what happened, writes
 * --summary-json, and returns the exit status: 0, GR_EXIT_FLAGGED (verdicts
 * matched --fail-on), GR_EXIT_LOCKED, GR_EXIT_SIGINT / GR_EXIT_SIGTERM,
 * GR_EXIT_FAIL. */
int gr_run_cli_finish(gr_run_cli *c, const gr_run_opts *o, int rc, const gr_err *err,
                      const gr_run_stats *st, const char *out_path, int resume);
#endif
