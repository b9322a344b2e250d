#include "synth_url.h"
#include <stdlib.h>
#include <string.h>

/* Offsets into url: [0, auth) scheme and "//", [auth, host) userinfo with its
 * "@" (empty when none), [host, path_end) host and path, then "?query" and/or
 * "#fragment" to the end. */
typedef struct url_parts {
    size_t auth, host, path_end, len;
} url_parts;

static url_parts split(const char *url) {
    url_parts p = {0, 0, 0, strlen(url)};
    const char *ss = strstr(url, "://");
    p.auth = ss ? (size_t)(ss - url) + 3 : 0;
    size_t auth_end = p.auth + strcspn(url + p.auth, "/?#");
    p.host = p.auth;
    for (size_t i = auth_end; i > p.auth; i--) /* the last '@' of the authority */
        if (url[i - 1] == '@') {
            p.host = i;
            break;
        }
    p.path_end = p.host + strcspn(url + p.host, "?#");
    return p;
}

char *synth_url_build(const char *endpoint) {
    url_parts p = split(endpoint);
    size_t n = p.path_end;
    while (n > p.host && endpoint[n - 1] == '/') n--;
    gr_buf b = {0};
    gr_buf_append(&b, endpoint, n);
    static const char suffix[] = "/chat/completions";
    size_t k = sizeof suffix - 1;
    if (!(n - p.host >= k && memcmp(endpoint + n - k, suffix, k) == 0)) gr_buf_append(&b, suffix, k);
    gr_buf_append(&b, endpoint + p.path_end, p.len - p.path_end);
    gr_buf_cstr(&b);
    return b.data;
}

char *synth_url_redacted(const char *url) {
    url_parts p = split(url);
    gr_buf b = {0};
    gr_buf_append(&b, url, p.auth);
    if (p.host > p.auth) gr_buf_printf(&b, "***@");
    gr_buf_append(&b, url + p.host, p.path_end - p.host);
    /* the query: names kept, values hidden; the fragment is never sent, cut it */
    const char *q = url + p.path_end;
    if (*q == '?') {
        q++;
        gr_buf_putc(&b, '?');
        while (*q && *q != '#') {
            size_t item = strcspn(q, "&#");
            const char *eq = memchr(q, '=', item);
            if (eq) {
                gr_buf_append(&b, q, (size_t)(eq - q) + 1);
                gr_buf_printf(&b, "***");
            } else if (item) {
                gr_buf_printf(&b, "***"); /* a bare value ("?KEY") */
            }
            q += item;
            if (*q == '&') gr_buf_putc(&b, '&'), q++;
        }
    }
    gr_buf_cstr(&b);
    return b.data;
}

static void add_min(synth_secrets *s, const char *str, size_t n, size_t min) {
    if (n < min) return;
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->v[i]) == n && memcmp(s->v[i], str, n) == 0) return;
    s->v = gr_xrealloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n++] = gr_xstrndup(str, n);
}

static void add_n(synth_secrets *s, const char *str, size_t n) { add_min(s, str, n, 4); }

void synth_secrets_add(synth_secrets *s, const char *str) {
    if (str) add_n(s, str, strlen(str));
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* str[0..n) as written and percent-decoded ('+' as a space too), when it has
 * at least min bytes. */
static void add_both(synth_secrets *s, const char *str, size_t n, size_t min) {
    add_min(s, str, n, min);
    char *d = gr_xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (str[i] == '%' && i + 2 < n && hexval(str[i + 1]) >= 0 && hexval(str[i + 2]) >= 0) {
            d[k++] = (char)(hexval(str[i + 1]) * 16 + hexval(str[i + 2]));
            i += 2;
        } else {
            d[k++] = str[i] == '+' ? ' ' : str[i];
        }
    }
    add_min(s, d, k, min);
    free(d);
}

void synth_secrets_add_url(synth_secrets *s, const char *url) {
    url_parts p = split(url);
    if (p.host > p.auth) { /* "user:password@" */
        const char *ui = url + p.auth;
        size_t n = p.host - p.auth - 1;
        const char *colon = memchr(ui, ':', n);
        if (colon) {
            add_both(s, ui, (size_t)(colon - ui), 8);
            add_both(s, colon + 1, n - (size_t)(colon - ui) - 1, 4);
        } else {
            add_both(s, ui, n, 4); /* a lone userinfo is a token */
        }
    }
    const char *q = url + p.path_end;
    if (*q != '?') return;
    q++;
    while (*q && *q != '#') {
        size_t item = strcspn(q, "&#");
        const char *eq = memchr(q, '=', item);
        if (eq) add_both(s, eq + 1, item - (size_t)(eq - q) - 1, 8);
        else add_both(s, q, item, 8);
        q += item;
        if (*q == '&') q++;
    }
}

static int longer_first(const void *a, const void *b) {
    size_t x = strlen(*(char *const *)a), y = strlen(*(char *const *)b);
    return x < y ? 1 : x > y ? -1 : 0;
}

void synth_secrets_redact(const synth_secrets *s, gr_buf *b) {
    if (!s->n || !b->len) return;
    char **v = gr_xmalloc(s->n * sizeof *v);
    memcpy(v, s->v, s->n * sizeof *v);
    qsort(v, s->n, sizeof *v, longer_first);
    for (size_t i = 0; i < s->n; i++) {
        size_t k = strlen(v[i]), r = 0, w = 0;
        /* in place: the text only shrinks (every secret has at least 4 bytes) */
        while (r < b->len) {
            if (b->len - r >= k && memcmp(b->data + r, v[i], k) == 0) {
                memcpy(b->data + w, "***", 3);
                w += 3;
                r += k;
            } else {
                b->data[w++] = b->data[r++];
            }
        }
        b->len = w;
    }
    free(v);
}

void synth_secrets_redact_str(const synth_secrets *s, char *msg) {
    gr_buf b = {msg, strlen(msg), strlen(msg) + 1};
    synth_secrets_redact(s, &b);
    msg[b.len] = 0;
}

void synth_secrets_free(synth_secrets *s) {
    for (size_t i = 0; i < s->n; i++) {
        memset(s->v[i], 0, strlen(s->v[i]));
        free(s->v[i]);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}
