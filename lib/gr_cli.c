#include "gr_cli.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
