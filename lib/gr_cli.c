#include "gr_cli.h"
#include "gr_lock.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *gr_prog = "gr";

static void vmsg(const char *fmt, va_list ap) {
    fprintf(stderr, "%s: ", gr_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void gr_msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void gr_die(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    exit(status);
}

void gr_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", gr_prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", gr_prog);
    va_end(ap);
    exit(GR_EXIT_USAGE);
}

long gr_parse_long(const char *opt, const char *s, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        gr_usage_error("%s: '%s' is not an integer in [%ld, %ld]", opt, s, min, max);
    return v;
}

double gr_parse_double(const char *opt, const char *s, double min, double max) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        gr_usage_error("%s: '%s' is not a number in [%g, %g]", opt, s, min, max);
    return v;
}

void gr_close_stdout(void) {
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0)
        gr_die(GR_EXIT_FAIL, "stdout: write error: %s", strerror(errno));
}

volatile sig_atomic_t gr_stop_signal;

static void on_stop_signal(int sig) {
    if (gr_stop_signal) {
        signal(sig, SIG_DFL); /* a second one: stop now */
        raise(sig);
        return;
    }
    gr_stop_signal = sig;
}

void gr_catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* SA_RESTART: a write interrupted half-way must not tear an output line */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int gr_exit_for_signal(int sig) {
    return sig == SIGINT ? GR_EXIT_SIGINT : sig == SIGTERM ? GR_EXIT_SIGTERM : 128 + sig;
}

void gr_refuse_output_as_input(const char *out, char *const *inputs, int n_inputs) {
    if (!out || strcmp(out, "-") == 0) return;
    struct stat so;
    int have = stat(out, &so) == 0;
    for (int i = 0; i < n_inputs; i++) {
        struct stat si;
        if (strcmp(inputs[i], "-") == 0) continue;
        if (strcmp(inputs[i], out) == 0 ||
            (have && stat(inputs[i], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino))
            gr_usage_error("-o %s: the output is also an input (%s)", out, inputs[i]);
    }
}

static gr_lock held_lock = GR_LOCK_INIT;
static void release_held_lock(void) { gr_lock_release(&held_lock); }

void gr_lock_output_or_die(const char *path, int is_folder) {
    gr_err err;
    int rc = gr_lock_output(&held_lock, path, is_folder, 0, &err);
    if (rc == GR_LOCK_BUSY) gr_die(GR_EXIT_LOCKED, "%s", err.msg);
    if (rc) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    atexit(release_held_lock);
}
