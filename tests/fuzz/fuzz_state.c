/* libFuzzer target: the gr-classify --state parser on arbitrary bytes. What
 * parses must format back to text that parses to the same state (the writer
 * and the parser agree on every field, escapes included). */
#include <stdlib.h>
#include <string.h>
#include "classify_state.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
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
            s.logs[i].fp != t.logs[i].fp || s.logs[i].ino != t.logs[i].ino)
            abort();
    gr_buf_free(&a);
    gr_buf_free(&b);
    gr_cstate_free(&s);
    gr_cstate_free(&t);
    return 0;
}
