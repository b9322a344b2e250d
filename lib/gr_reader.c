/* The record reader: bytes (file or stdin, plain or zstd) -> JSON objects.
 *
 * Layers: a byte source that undoes zstd (src_*), a structural scanner that
 * finds where each top-level object starts and ends without parsing it (so a
 * JSON array of any size streams one element at a time, and a torn JSONL line
 * is caught at the line where it starts), a UTF-8 check of the record's bytes,
 * then libjq's parser on one record, then the optional --map program. */
#include "gr_io.h"
#include "gr_utf8.h"
#include <errno.h>
#include <jq.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* ---- byte source -------------------------------------------------------- */
typedef struct src {
    FILE *f;
    int own;            /* fclose at the end */
    int zstd;
    ZSTD_DStream *ds;
    unsigned char *in;  /* compressed input buffer */
    size_t in_cap;
    ZSTD_inBuffer zin;
    size_t zret;        /* last ZSTD_decompressStream result: 0 = frame complete */
    int feof;
    unsigned char head[4]; /* bytes read while sniffing the magic number */
    size_t head_len, head_pos;
} src;

static size_t src_raw_read(src *s, void *buf, size_t n) {
    size_t k = 0;
    unsigned char *b = buf;
    while (s->head_pos < s->head_len && k < n) b[k++] = s->head[s->head_pos++];
    if (k < n) k += fread(b + k, 1, n - k, s->f);
    return k;
}

/* Fills buf with up to cap decompressed bytes: >0 bytes, 0 at the end, -1 error. */
static long src_read(src *s, const char *name, unsigned char *buf, size_t cap, gr_err *err) {
    if (!s->zstd) {
        size_t k = src_raw_read(s, buf, cap);
        if (k == 0 && ferror(s->f)) return gr_errf(err, "%s: read error: %s", name, strerror(errno));
        return (long)k;
    }
    ZSTD_outBuffer out = {buf, cap, 0};
    while (out.pos == 0) {
        if (s->zin.pos == s->zin.size) {
            if (s->feof) {
                if (s->zret != 0)
                    return gr_errf(err, "%s: truncated zstd frame (the file ends inside a frame)", name);
                return 0;
            }
            size_t k = src_raw_read(s, s->in, s->in_cap);
            if (k == 0) {
                if (ferror(s->f)) return gr_errf(err, "%s: read error: %s", name, strerror(errno));
                s->feof = 1;
                continue;
            }
            s->zin = (ZSTD_inBuffer){s->in, k, 0};
        }
        size_t r = ZSTD_decompressStream(s->ds, &out, &s->zin);
        if (ZSTD_isError(r)) return gr_errf(err, "%s: corrupt zstd data: %s", name, ZSTD_getErrorName(r));
        s->zret = r;
    }
    return (long)out.pos;
}

/* ---- the reader --------------------------------------------------------- */
struct gr_reader {
    char *name;
    src s;
    gr_reader_opts opts;
    unsigned char *buf; /* decompressed bytes not yet scanned */
    size_t buf_len, buf_pos;
    int at_start;       /* BOM not yet checked */
    int eof;
    long line;          /* current line (1-based) of the scanner */
    long rec_line;      /* line where the last record began */
    int in_array;       /* 0: before any content; 1: sequence of objects; 2: inside [..]; 3: after ] */
    int need_comma;     /* inside an array: an element was read, expect , or ] */
    gr_buf rec;         /* bytes of the record being scanned */
    jq_state *jq;       /* --map program */
    jv map_err;         /* message captured by the jq error callback */
    int map_active;     /* jq_start'ed and not yet exhausted */
    long replaced;
    int failed;
};

static void map_err_cb(void *data, jv msg) {
    gr_reader *r = data;
    jv_free(r->map_err);
    r->map_err = msg;
}

static void jq_err_collect(void *data, jv msg) {
    gr_buf *b = data;
    if (jv_get_kind(msg) == JV_KIND_STRING) {
        if (b->len) gr_buf_append(b, "; ", 2);
        gr_buf_append(b, jv_string_value(msg), strlen(jv_string_value(msg)));
    }
    jv_free(msg);
}

int gr_map_check(const char *program, gr_err *err) {
    jq_state *jq = jq_init();
    if (!jq) return gr_errf(err, "cannot initialise jq");
    gr_buf msgs = {0};
    jq_set_error_cb(jq, jq_err_collect, &msgs);
    int ok = jq_compile(jq, program);
    if (!ok) gr_errf(err, "--map: %s", msgs.len ? gr_buf_cstr(&msgs) : "jq program does not compile");
    gr_buf_free(&msgs);
    jq_teardown(&jq);
    return ok ? 0 : -1;
}

/* --replace-invalid for every reader of the process (see gr_io.h). */
static int replace_invalid_all;
void gr_reader_replace_invalid_all(int on) { replace_invalid_all = on != 0; }

gr_reader *gr_reader_open(const char *path, const gr_reader_opts *opts, gr_err *err) {
    gr_reader *r = gr_xcalloc(1, sizeof *r);
    int is_stdin = !path || strcmp(path, "-") == 0;
    r->name = gr_xstrdup(is_stdin ? "stdin" : path);
    if (opts) r->opts = *opts;
    if (replace_invalid_all) r->opts.replace_invalid_utf8 = 1;
    r->map_err = jv_null();
    r->line = 1;
    r->at_start = 1;
    if (is_stdin) {
        r->s.f = stdin;
    } else {
        r->s.f = fopen(path, "rb");
        if (!r->s.f) {
            gr_errf(err, "%s: %s", path, strerror(errno));
            goto fail;
        }
        r->s.own = 1;
    }
    r->s.head_len = fread(r->s.head, 1, 4, r->s.f);
    if (r->s.head_len < 4 && ferror(r->s.f)) {
        gr_errf(err, "%s: read error: %s", r->name, strerror(errno));
        goto fail;
    }
    static const unsigned char zmagic[4] = {0x28, 0xB5, 0x2F, 0xFD};
    if (r->s.head_len == 4 && memcmp(r->s.head, zmagic, 4) == 0) {
        r->s.zstd = 1;
        r->s.ds = ZSTD_createDStream();
        r->s.in_cap = ZSTD_DStreamInSize();
        r->s.in = gr_xmalloc(r->s.in_cap);
        ZSTD_initDStream(r->s.ds);
    } else if (r->s.head_len >= 2 && r->s.head[0] == 0x1F && r->s.head[1] == 0x8B) {
        gr_errf(err, "%s: gzip input is not supported; decompress it or recompress with zstd", r->name);
        goto fail;
    }
    r->buf = gr_xmalloc(1 << 16);
    if (r->opts.map) {
        r->jq = jq_init();
        gr_buf msgs = {0};
        jq_set_error_cb(r->jq, jq_err_collect, &msgs);
        if (!jq_compile(r->jq, r->opts.map)) {
            gr_errf(err, "--map: %s", msgs.len ? gr_buf_cstr(&msgs) : "jq program does not compile");
            gr_buf_free(&msgs);
            goto fail;
        }
        gr_buf_free(&msgs);
        jq_set_error_cb(r->jq, map_err_cb, r);
    }
    return r;
fail:
    gr_reader_close(r);
    return NULL;
}

const char *gr_reader_name(const gr_reader *r) { return r->name; }
long gr_reader_line(const gr_reader *r) { return r->rec_line; }
long gr_reader_replaced(const gr_reader *r) { return r->replaced; }

void gr_reader_close(gr_reader *r) {
    if (!r) return;
    if (r->s.own && r->s.f) fclose(r->s.f);
    ZSTD_freeDStream(r->s.ds);
    free(r->s.in);
    free(r->buf);
    gr_buf_free(&r->rec);
    if (r->jq) jq_teardown(&r->jq);
    jv_free(r->map_err);
    free(r->name);
    free(r);
}

static int fill(gr_reader *r, gr_err *err) {
    if (r->buf_pos < r->buf_len) return 1;
    if (r->eof) return 0;
    long k = src_read(&r->s, r->name, r->buf, 1 << 16, err);
    if (k < 0) return -1;
    if (k == 0) { r->eof = 1; return 0; }
    r->buf_len = (size_t)k;
    r->buf_pos = 0;
    if (r->at_start) {
        if (r->buf_len < 3 && !r->eof) {
            /* need 3 bytes to see a BOM: read more */
            long k2 = src_read(&r->s, r->name, r->buf + r->buf_len, (1 << 16) - r->buf_len, err);
            if (k2 < 0) return -1;
            r->buf_len += (size_t)k2;
        }
        r->at_start = 0;
        if (r->buf_len >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0) r->buf_pos = 3;
        if (r->buf_pos == r->buf_len) return fill(r, err);
    }
    return 1;
}

static int is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Scans the next top-level object into r->rec. 1 found, 0 end, -1 error. */
static int scan_record(gr_reader *r, gr_err *err) {
    r->rec.len = 0;
    /* skip whitespace and array punctuation up to the start of an object */
    for (;;) {
        int f = fill(r, err);
        if (f < 0) return -1;
        if (f == 0) {
            if (r->in_array == 2) return gr_errf(err, "%s:%ld: unterminated JSON array at end of input", r->name, r->line);
            return 0;
        }
        int c = r->buf[r->buf_pos];
        if (is_ws(c)) {
            if (c == '\n') r->line++;
            r->buf_pos++;
            continue;
        }
        if (r->in_array == 3)
            return gr_errf(err, "%s:%ld: unexpected data after the top-level JSON array", r->name, r->line);
        if (r->in_array == 0 && c == '[') {
            r->in_array = 2;
            r->buf_pos++;
            continue;
        }
        if (r->in_array == 0) r->in_array = 1;
        if (r->in_array == 2) {
            if (c == ']') { r->in_array = 3; r->buf_pos++; continue; }
            if (r->need_comma) {
                if (c != ',') return gr_errf(err, "%s:%ld: expected ',' or ']' between array elements", r->name, r->line);
                r->need_comma = 0;
                r->buf_pos++;
                continue;
            }
        }
        if (c != '{') {
            if (r->in_array == 2)
                return gr_errf(err, "%s:%ld: array element is not a JSON object (records are objects)", r->name, r->line);
            return gr_errf(err, "%s:%ld: not a JSON object (records are objects, one per line)", r->name, r->line);
        }
        break;
    }
    r->rec_line = r->line;
    int depth = 0, in_str = 0, esc = 0;
    for (;;) {
        int f = fill(r, err);
        if (f < 0) return -1;
        if (f == 0)
            return gr_errf(err, "%s:%ld: record is cut off at end of input (unterminated %s)", r->name, r->rec_line,
                           in_str ? "string" : "object");
        unsigned char *p = r->buf + r->buf_pos, *e = r->buf + r->buf_len;
        unsigned char *q = p;
        int done = 0;
        for (; q < e; q++) {
            int c = *q;
            if (c == '\n') r->line++;
            if (in_str) {
                if (esc) esc = 0;
                else if (c == '\\') esc = 1;
                else if (c == '"') in_str = 0;
                else if (c == '\n') {
                    gr_buf_append(&r->rec, p, (size_t)(q - p));
                    r->buf_pos += (size_t)(q - p);
                    return gr_errf(err, "%s:%ld: unterminated string (a line break inside a string: torn or malformed line)",
                                   r->name, r->rec_line);
                }
            } else if (c == '"') in_str = 1;
            else if (c == '{' || c == '[') depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0) { q++; done = 1; break; }
            }
        }
        gr_buf_append(&r->rec, p, (size_t)(q - p));
        r->buf_pos += (size_t)(q - p);
        if (done) break;
    }
    if (r->in_array == 2) r->need_comma = 1;
    return 1;
}

/* Checks the record's bytes: UTF-8 and \u escapes of lone surrogates (libjq
 * would silently turn both into U+FFFD). Replaces them when asked. */
static int check_text(gr_reader *r, gr_err *err) {
    const char *s = r->rec.data;
    size_t n = r->rec.len;
    gr_buf fixed = {0};
    int fixing = 0;
    size_t copied = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t bad = 0; /* length of an invalid stretch at i */
        const char *what = NULL;
        if (c >= 0x80) {
            uint32_t cp;
            int k = gr_utf8_decode((const unsigned char *)s + i, n - i, &cp);
            if (k) { i += (size_t)k; continue; }
            bad = 1;
            what = "invalid UTF-8";
        } else if (c == '\\' && i + 1 < n) {
            if (s[i + 1] != 'u' || i + 6 > n) { i += 2; continue; }
            unsigned v = (unsigned)strtoul((char[5]){s[i + 2], s[i + 3], s[i + 4], s[i + 5], 0}, NULL, 16);
            if (v >= 0xD800 && v <= 0xDBFF) {
                if (i + 12 <= n && s[i + 6] == '\\' && s[i + 7] == 'u') {
                    unsigned w = (unsigned)strtoul((char[5]){s[i + 8], s[i + 9], s[i + 10], s[i + 11], 0}, NULL, 16);
                    if (w >= 0xDC00 && w <= 0xDFFF) { i += 12; continue; }
                }
                bad = 6;
            } else if (v >= 0xDC00 && v <= 0xDFFF) {
                bad = 6;
            } else {
                i += 6;
                continue;
            }
            what = "a lone UTF-16 surrogate escape";
        } else {
            i++;
            continue;
        }
        if (!r->opts.replace_invalid_utf8) {
            long line = r->rec_line;
            for (size_t j = 0; j < i; j++) line += s[j] == '\n';
            gr_buf_free(&fixed);
            return gr_errf(err, "%s:%ld: %s at byte %zu of the record (use --replace-invalid to replace it with U+FFFD)",
                           r->name, line, what, i);
        }
        fixing = 1;
        gr_buf_append(&fixed, s + copied, i - copied);
        gr_buf_append(&fixed, bad == 6 ? "\\ufffd" : "\xEF\xBF\xBD", bad == 6 ? 6 : 3);
        i += bad;
        copied = i;
        r->replaced++;
    }
    if (fixing) {
        gr_buf_append(&fixed, s + copied, n - copied);
        gr_buf_free(&r->rec);
        r->rec = fixed;
    }
    return 0;
}

static int map_next(gr_reader *r, jv *rec, gr_err *err) {
    for (;;) {
        jv out = jq_next(r->jq);
        if (jv_is_valid(out)) {
            if (jv_get_kind(out) != JV_KIND_OBJECT) {
                const char *kind = gr_jv_kind(out);
                jv_free(out);
                return gr_errf(err, "%s:%ld: --map produced %s, not an object", r->name, r->rec_line, kind);
            }
            *rec = out;
            return 1;
        }
        r->map_active = 0;
        if (jv_invalid_has_msg(jv_copy(out))) {
            jv msg = jv_invalid_get_msg(out);
            gr_errf(err, "%s:%ld: --map: %s", r->name, r->rec_line,
                    jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "jq error");
            jv_free(msg);
            return -1;
        }
        jv_free(out);
        if (jv_get_kind(r->map_err) == JV_KIND_STRING) {
            gr_errf(err, "%s:%ld: --map: %s", r->name, r->rec_line, jv_string_value(r->map_err));
            jv_free(r->map_err);
            r->map_err = jv_null();
            return -1;
        }
        return 0;
    }
}

int gr_reader_next(gr_reader *r, jv *rec, gr_err *err) {
    if (r->failed) return gr_errf(err, "%s: reader already failed", r->name);
    for (;;) {
        if (r->map_active) {
            int m = map_next(r, rec, err);
            if (m < 0) { r->failed = 1; return -1; }
            if (m > 0) return 1;
        }
        int k = scan_record(r, err);
        if (k <= 0) {
            if (k < 0) r->failed = 1;
            return k;
        }
        if (check_text(r, err) < 0) { r->failed = 1; return -1; }
        if (r->rec.len > (size_t)0x7fffffff) {
            r->failed = 1;
            return gr_errf(err, "%s:%ld: record larger than 2 GiB", r->name, r->rec_line);
        }
        jv v = jv_parse_sized(r->rec.data, (int)r->rec.len);
        if (!jv_is_valid(v)) {
            jv msg = jv_invalid_get_msg(v);
            const char *m = jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "invalid JSON";
            /* libjq appends the whole text ("(while parsing '...')"): keep the message only */
            const char *cut = strstr(m, " (while parsing");
            gr_errf(err, "%s:%ld: malformed JSON: %.*s", r->name, r->rec_line, cut ? (int)(cut - m) : (int)strlen(m), m);
            jv_free(msg);
            r->failed = 1;
            return -1;
        }
        if (!r->jq) {
            *rec = v;
            return 1;
        }
        jq_start(r->jq, v, 0);
        r->map_active = 1;
    }
}

/* ---- jv helpers --------------------------------------------------------- */
const char *gr_jv_str(jv obj, const char *key) {
    if (jv_get_kind(obj) != JV_KIND_OBJECT) return NULL;
    jv v = jv_object_get(jv_copy(obj), jv_string(key));
    const char *s = NULL;
    /* the string stays alive inside obj, which the caller holds */
    if (jv_get_kind(v) == JV_KIND_STRING) s = jv_string_value(v);
    jv_free(v);
    return s;
}

int gr_jv_has(jv obj, const char *key) {
    if (jv_get_kind(obj) != JV_KIND_OBJECT) return 0;
    jv v = jv_object_get(jv_copy(obj), jv_string(key));
    int has = jv_is_valid(v) && jv_get_kind(v) != JV_KIND_NULL;
    jv_free(v);
    return has;
}

const char *gr_jv_kind(jv v) {
    switch (jv_get_kind(v)) {
    case JV_KIND_INVALID: return "invalid";
    case JV_KIND_NULL: return "null";
    case JV_KIND_FALSE: return "false";
    case JV_KIND_TRUE: return "true";
    case JV_KIND_NUMBER: return "a number";
    case JV_KIND_STRING: return "a string";
    case JV_KIND_ARRAY: return "an array";
    case JV_KIND_OBJECT: return "an object";
    }
    return "?";
}
