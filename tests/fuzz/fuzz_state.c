/* libFuzzer target: gr-classify --state's inputs on arbitrary bytes.
 * 1. The state parser: what parses must format back to text that parses to
 *    the same state (the writer and the parser agree on every field, escapes
 *    included).
 * 2. The same bytes as a log: the line reader and the feed (UTF-8 and \u
 *    escape checks, libjq, a --map) turn every line into records or rejects. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "classify_feed.h"
#include "classify_state.h"

static void feed_bytes(const unsigned char *data, size_t size) {
    char log[] = "/tmp/gr-fuzz-state-log-XXXXXX";
    int fd = mkstemp(log);
    if (fd < 0) return;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(log);
        return;
    }
    close(fd);
    /* compiled once: jq's compiler is slow, and a feed that learns no done
     * keys carries nothing from one input to the next */
    static gr_feed *feeds[2];
    for (int m = 0; m < 2; m++) {
        gr_err err;
        gr_feed_opts fo = {.map = m ? ".[]? // . | objects" : NULL, .replace_invalid = m};
        if (!feeds[m]) feeds[m] = gr_feed_new(&fo, &err);
        gr_feed *f = feeds[m];
        gr_log_plan p;
        if (f && gr_log_plan_make(log, NULL, NULL, &p, &err) == 0) {
            gr_writer_opts wo = {0};
            gr_writer *rw = gr_writer_open("/dev/null", &wo, &err);
            gr_feed_stats st = {0};
            if (rw) {
                gr_feed_log(f, &p, rw, NULL, NULL, NULL, &st, &err);
                gr_writer_abort(rw);
            }
            gr_log_plan_free(&p);
        }
    }
    unlink(log);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    feed_bytes(data, size);
    gr_cstate s, t;
    gr_err err;
    if (gr_cstate_parse((const char *)data, size, "fuzz", &s, &err) != 0) return 0;
    gr_buf a = {0}, b = {0};
    gr_cstate_format(&s, &a);
    if (gr_cstate_parse(a.data, a.len, "formatted", &t, &err) != 0) abort();
    gr_cstate_format(&t, &b);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0 || s.n_logs != t.n_logs) abort();
    for (size_t i = 0; i < s.n_logs; i++)
        if (strcmp(s.logs[i].path, t.logs[i].path) != 0 || s.logs[i].offset != t.logs[i].offset ||
            s.logs[i].fp != t.logs[i].fp || s.logs[i].ino != t.logs[i].ino || s.logs[i].gen != t.logs[i].gen)
            abort();
    gr_buf_free(&a);
    gr_buf_free(&b);
    gr_cstate_free(&s);
    gr_cstate_free(&t);
    return 0;
}
