/* gr-classify's --state file: see classify_state.h for the format. */
#include "classify_state.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char magic[] = "gr-classify-state 1";

uint64_t gr_fnv1a64(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

int gr_fingerprint_fd(int fd, uint32_t len, uint64_t *fp, gr_err *err) {
    unsigned char buf[GR_CSTATE_FP_MAX];
    if (len > sizeof buf) return gr_errf(err, "fingerprint of %u bytes: at most %d", len, GR_CSTATE_FP_MAX);
    size_t got = 0;
    while (got < len) {
        ssize_t k = pread(fd, buf + got, len - got, (off_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return gr_errf(err, "read error: %s", strerror(errno));
        if (k == 0) return gr_errf(err, "file shorter than its fingerprint (%zu of %u bytes)", got, len);
        got += (size_t)k;
    }
    *fp = gr_fnv1a64(GR_FNV_INIT, buf, len);
    return 0;
}

/* ---- entries ------------------------------------------------------------- */
gr_cstate_log *gr_cstate_find(gr_cstate *s, const char *path) {
    for (size_t i = 0; i < s->n_logs; i++)
        if (strcmp(s->logs[i].path, path) == 0) return &s->logs[i];
    return NULL;
}

gr_cstate_log *gr_cstate_get(gr_cstate *s, const char *path) {
    gr_cstate_log *l = gr_cstate_find(s, path);
    if (l) return l;
    if (s->n_logs == s->cap_logs) {
        s->cap_logs = s->cap_logs ? 2 * s->cap_logs : 8;
        s->logs = gr_xrealloc(s->logs, s->cap_logs * sizeof *s->logs);
    }
    l = &s->logs[s->n_logs++];
    memset(l, 0, sizeof *l);
    l->path = gr_xstrdup(path);
    return l;
}

void gr_cstate_file_set(gr_cstate_file *f, uint64_t dev, uint64_t ino, uint64_t size, const char *path) {
    char *p = gr_xstrdup(path);
    free(f->path);
    *f = (gr_cstate_file){1, dev, ino, size, p};
}

void gr_cstate_free(gr_cstate *s) {
    for (size_t i = 0; i < s->n_logs; i++) free(s->logs[i].path);
    free(s->logs);
    free(s->output.path);
    free(s->rejects.path);
    memset(s, 0, sizeof *s);
}

/* ---- writing ------------------------------------------------------------- */
static void put_path(gr_buf *b, const char *p) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)p; *c; c++) {
        if (*c > ' ' && *c < 0x7f && *c != '%') {
            gr_buf_putc(b, (char)*c);
        } else {
            char e[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            gr_buf_append(b, e, 3);
        }
    }
}

static void put_file(gr_buf *b, const char *kw, const gr_cstate_file *f) {
    if (!f->set) return;
    gr_buf_printf(b, "%s dev=%llu ino=%llu size=%llu path=", kw, (unsigned long long)f->dev,
                  (unsigned long long)f->ino, (unsigned long long)f->size);
    put_path(b, f->path);
    gr_buf_putc(b, '\n');
}

void gr_cstate_format(const gr_cstate *s, gr_buf *out) {
    gr_buf_printf(out, "%s\n# written by gr-classify --state; the format is in gr-classify(1)\n", magic);
    put_file(out, "output", &s->output);
    put_file(out, "rejects", &s->rejects);
    for (size_t i = 0; i < s->n_logs; i++) {
        const gr_cstate_log *l = &s->logs[i];
        gr_buf_printf(out, "log dev=%llu ino=%llu gen=%llu offset=%llu line=%llu fp=%u:%016llx path=",
                      (unsigned long long)l->dev, (unsigned long long)l->ino, (unsigned long long)l->gen,
                      (unsigned long long)l->offset,
                      (unsigned long long)l->line, l->fp_len, (unsigned long long)l->fp);
        put_path(out, l->path);
        gr_buf_putc(out, '\n');
    }
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int gr_cstate_save(const char *path, const gr_cstate *s, gr_err *err) {
    gr_buf text = {0}, tmp = {0};
    gr_cstate_format(s, &text);
    /* a fixed name: the caller holds the state's lock, so no one else writes it,
     * and a run killed here leaves one file the next run overwrites */
    gr_buf_printf(&tmp, "%s.tmp", path);
    char *tname = gr_xstrdup(gr_buf_cstr(&tmp));
    gr_buf_free(&tmp);
    int rc = 0, fd = open(tname, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        rc = gr_errf(err, "%s: cannot create %s beside it: %s", path, tname, strerror(errno));
        goto out;
    }
    if (write_all(fd, text.data, text.len) != 0 || fsync(fd) != 0)
        rc = gr_errf(err, "%s: cannot write the state: %s", tname, strerror(errno));
    if (close(fd) != 0 && rc == 0) rc = gr_errf(err, "%s: close: %s", tname, strerror(errno));
    if (rc == 0 && rename(tname, path) != 0)
        rc = gr_errf(err, "%s: cannot rename the new state into place: %s", path, strerror(errno));
    if (rc != 0) {
        unlink(tname);
        goto out;
    }
    /* the rename itself lasts only once the folder is on disk */
    char *dir = gr_xstrdup(path), *slash = strrchr(dir, '/');
    if (slash) slash[slash == dir ? 1 : 0] = 0;
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL) rc = gr_errf(err, "%s: fsync of its folder: %s", path, strerror(errno));
        close(dfd);
    }
    free(dir);
out:
    free(tname);
    gr_buf_free(&text);
    return rc;
}

/* ---- parsing ------------------------------------------------------------- */
typedef struct cursor {
    const char *p, *e; /* the rest of the current line (no '\n') */
    const char *name;
    long line;
    gr_err *err;
} cursor;

static int bad(cursor *c, const char *what) {
    return gr_errf(c->err, "%s:%ld: %s", c->name, c->line, what);
}

/* Expects the literal key "NAME=" at the cursor. */
static int expect_key(cursor *c, const char *key) {
    size_t k = strlen(key);
    if ((size_t)(c->e - c->p) < k + 1 || memcmp(c->p, key, k) != 0 || c->p[k] != '=') {
        char m[96];
        snprintf(m, sizeof m, "expected the field %s=", key);
        return bad(c, m);
    }
    c->p += k + 1;
    return 0;
}

/* An unsigned decimal up to the next space (or end of line when last). */
static int get_u64(cursor *c, const char *key, int last, uint64_t *v) {
    if (expect_key(c, key)) return -1;
    const char *s = c->p;
    uint64_t x = 0;
    while (c->p < c->e && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p - '0');
        if (x > (UINT64_MAX - d) / 10) return bad(c, "number larger than 2^64-1");
        x = x * 10 + d;
        c->p++;
    }
    if (c->p == s) return bad(c, "expected an unsigned decimal number");
    if (*s == '0' && c->p - s > 1) return bad(c, "number with a leading zero");
    if (!last && c->p == c->e) return bad(c, "the line ends early (expected more fields)");
    if (last ? c->p != c->e : *c->p != ' ') return bad(c, "unexpected text after a number");
    if (!last) c->p++;
    *v = x;
    return 0;
}

static int hexval(char h) {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
}

/* path=... to the end of the line, percent-decoded. */
static int get_path(cursor *c, char **out) {
    if (expect_key(c, "path")) return -1;
    if (c->p == c->e) return bad(c, "empty path");
    gr_buf b = {0};
    while (c->p < c->e) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '%') {
            int hi = c->e - c->p >= 3 ? hexval(c->p[1]) : -1, lo = hi >= 0 ? hexval(c->p[2]) : -1;
            if (lo < 0) {
                gr_buf_free(&b);
                return bad(c, "bad percent escape in the path (%XX, uppercase hex)");
            }
            int v = hi * 16 + lo;
            if (v == 0) {
                gr_buf_free(&b);
                return bad(c, "a NUL byte in the path");
            }
            if (v > ' ' && v < 0x7f && v != '%') {
                gr_buf_free(&b);
                return bad(c, "a printable byte escaped in the path (the writer never does that)");
            }
            gr_buf_putc(&b, (char)v);
            c->p += 3;
        } else if (ch > ' ' && ch < 0x7f) {
            gr_buf_putc(&b, (char)ch);
            c->p++;
        } else {
            gr_buf_free(&b);
            return bad(c, "a byte outside '!'..'~' in the path (it must be percent-encoded)");
        }
    }
    *out = gr_xstrdup(gr_buf_cstr(&b));
    gr_buf_free(&b);
    return 0;
}

static int parse_file(cursor *c, gr_cstate_file *f) {
    if (f->set) return bad(c, "given twice");
    uint64_t dev, ino, size;
    char *path;
    if (get_u64(c, "dev", 0, &dev) || get_u64(c, "ino", 0, &ino) || get_u64(c, "size", 0, &size) ||
        get_path(c, &path))
        return -1;
    *f = (gr_cstate_file){1, dev, ino, size, path};
    return 0;
}

static int parse_log(cursor *c, gr_cstate *s) {
    gr_cstate_log l = {0};
    uint64_t fp_len;
    if (get_u64(c, "dev", 0, &l.dev) || get_u64(c, "ino", 0, &l.ino) || get_u64(c, "gen", 0, &l.gen) ||
        get_u64(c, "offset", 0, &l.offset) ||
        get_u64(c, "line", 0, &l.line) || expect_key(c, "fp"))
        return -1;
    /* fp=LEN:HASH */
    const char *s0 = c->p;
    fp_len = 0;
    while (c->p < c->e && *c->p >= '0' && *c->p <= '9' && fp_len <= GR_CSTATE_FP_MAX) fp_len = fp_len * 10 + (uint64_t)(*c->p++ - '0');
    if (c->p == s0 || c->p == c->e || *c->p != ':') return bad(c, "fp: expected LEN:HASH");
    if (*s0 == '0' && c->p - s0 > 1) return bad(c, "fp: length with a leading zero");
    if (fp_len > GR_CSTATE_FP_MAX) return bad(c, "fp: the length is larger than 1024");
    c->p++;
    uint64_t h = 0;
    for (int i = 0; i < 16; i++, c->p++) {
        char ch = c->p < c->e ? *c->p : 0;
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0) return bad(c, "fp: the hash is not 16 lowercase hex digits");
        h = h << 4 | (uint64_t)v;
    }
    if (c->p == c->e || *c->p != ' ') return bad(c, "fp: unexpected text after the hash");
    c->p++;
    uint64_t want = l.offset < GR_CSTATE_FP_MAX ? l.offset : GR_CSTATE_FP_MAX;
    if (fp_len != want) return bad(c, "fp: the length must be min(offset, 1024)");
    if (l.line > l.offset) return bad(c, "more lines than bytes before the offset");
    l.fp_len = (uint32_t)fp_len;
    l.fp = h;
    if (get_path(c, &l.path)) return -1;
    if (gr_cstate_find(s, l.path)) {
        free(l.path);
        return bad(c, "a second `log` line for the same path");
    }
    gr_cstate_log *slot = gr_cstate_get(s, l.path);
    free(slot->path);
    *slot = l;
    return 0;
}

int gr_cstate_parse(const char *text, size_t n, const char *name, gr_cstate *s, gr_err *err) {
    memset(s, 0, sizeof *s);
    cursor c = {.name = name, .line = 0, .err = err};
    const char *p = text, *end = text + n;
    if (n == 0) return gr_errf(err, "%s: empty state file (expected the line \"%s\")", name, magic);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        c.line++;
        if (!nl) {
            gr_errf(err, "%s:%ld: the last line has no newline (a torn file)", name, c.line);
            goto fail;
        }
        c.p = p;
        c.e = nl;
        p = nl + 1;
        if (memchr(c.p, 0, (size_t)(c.e - c.p))) {
            bad(&c, "a NUL byte");
            goto fail;
        }
        if (c.line == 1) {
            if ((size_t)(c.e - c.p) != strlen(magic) || memcmp(c.p, magic, strlen(magic)) != 0) {
                gr_errf(err, "%s:1: not a gr-classify state file (expected \"%s\")", name, magic);
                goto fail;
            }
            continue;
        }
        if (c.p < c.e && *c.p == '#') continue;
        int rc;
        if (c.e - c.p > 7 && memcmp(c.p, "output ", 7) == 0) {
            c.p += 7;
            rc = parse_file(&c, &s->output);
        } else if (c.e - c.p > 8 && memcmp(c.p, "rejects ", 8) == 0) {
            c.p += 8;
            rc = parse_file(&c, &s->rejects);
        } else if (c.e - c.p > 4 && memcmp(c.p, "log ", 4) == 0) {
            c.p += 4;
            rc = parse_log(&c, s);
        } else {
            rc = bad(&c, "unknown line (expected output, rejects, log or a # comment)");
        }
        if (rc) goto fail;
    }
    return 0;
fail:
    gr_cstate_free(s);
    return -1;
}

int gr_cstate_load(const char *path, gr_cstate *s, gr_err *err) {
    memset(s, 0, sizeof *s);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        return gr_errf(err, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return gr_errf(err, "%s: %s", path, strerror(errno));
    }
    /* a state holds a few lines per log; refuse to allocate for anything else */
    if (st.st_size > (64 << 20)) {
        close(fd);
        return gr_errf(err, "%s: %lld bytes: too large for a state file", path, (long long)st.st_size);
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = gr_xmalloc(n + 1);
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    int rc = got == n ? gr_cstate_parse(buf, n, path, s, err) : gr_errf(err, "%s: read error", path);
    free(buf);
    return rc;
}
