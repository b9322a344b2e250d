#include "gr_common.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gr_errf(gr_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void oom(size_t n) {
    fprintf(stderr, "out of memory (%zu bytes)\n", n);
    abort();
}

void *gr_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *gr_xmalloc_aligned(size_t align, size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, align, n ? n : 1) != 0) oom(n);
    return p;
}

void *gr_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *gr_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *gr_xstrdup(const char *s) { return gr_xstrndup(s, strlen(s)); }

char *gr_xstrndup(const char *s, size_t n) {
    char *p = gr_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void gr_buf_reserve(gr_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    b->data = gr_xrealloc(b->data, cap);
    b->cap = cap;
}

void gr_buf_append(gr_buf *b, const void *p, size_t n) {
    gr_buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

void gr_buf_putc(gr_buf *b, char c) { gr_buf_append(b, &c, 1); }

void gr_buf_printf(gr_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    gr_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *gr_buf_cstr(gr_buf *b) {
    gr_buf_reserve(b, 0);
    b->data[b->len] = 0;
    return b->data;
}

void gr_buf_free(gr_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
