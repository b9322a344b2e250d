/* Common definitions of libgr: errors, allocation. (Exit codes: gr_cli.h.)
 *
 * Error rule (as ggml and jq do it): the library never exits the process and
 * never prints. A function that can fail takes a `gr_err *` and returns -1 (or
 * NULL) after writing a one-line message into it, already prefixed with the
 * file and line it concerns ("preds.jsonl:12: ..."); the caller prefixes the
 * program name and prints. The one exception is running out of memory, which
 * aborts in gr_xmalloc (as llm.c does): there is nothing useful to return. */
#ifndef GR_COMMON_H
#define GR_COMMON_H
#include <stddef.h>
#include <stdint.h>

typedef struct gr_err {
    char msg[2048];
} gr_err;

/* printf into e->msg; returns -1 so that `return gr_errf(e, ...)` reads well. */
int gr_errf(gr_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void *gr_xmalloc(size_t n);
void *gr_xcalloc(size_t n, size_t size);
void *gr_xrealloc(void *p, size_t n);
/* n bytes aligned to `align` (a power of two, a multiple of sizeof(void *)); free() it. */
void *gr_xmalloc_aligned(size_t align, size_t n);
char *gr_xstrdup(const char *s);
char *gr_xstrndup(const char *s, size_t n);

/* A growable byte buffer. */
typedef struct gr_buf {
    char *data;
    size_t len, cap;
} gr_buf;
void gr_buf_reserve(gr_buf *b, size_t extra);
void gr_buf_append(gr_buf *b, const void *p, size_t n);
void gr_buf_putc(gr_buf *b, char c);
void gr_buf_printf(gr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *gr_buf_cstr(gr_buf *b); /* NUL-terminated view (does not change len) */
void gr_buf_free(gr_buf *b);
#endif
