/* Planning and reading one log for gr-classify --state: see classify_source.h. */
#include "classify_source.h"
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct cand {
    char *path;
    int fd;
    struct stat st;
} cand;

static void cands_free(cand *c, int n) {
    for (int i = 0; i < n; i++) {
        if (c[i].fd >= 0) close(c[i].fd);
        free(c[i].path);
    }
    free(c);
}

/* The rotated candidates: regular files, other than the log itself. */
static int cands_open(const char *log, const char *pattern, const struct stat *cur, cand **out, gr_err *err) {
    char **names = NULL;
    size_t n = 0;
    glob_t g;
    int have_glob = 0;
    if (pattern) {
        int r = glob(pattern, 0, NULL, &g);
        if (r != 0 && r != GLOB_NOMATCH) return gr_errf(err, "--rotated-glob '%s': glob failed", pattern);
        have_glob = r == 0;
        if (have_glob) {
            names = g.gl_pathv;
            n = g.gl_pathc;
        }
    }
    gr_buf def = {0};
    char *one[1];
    if (!pattern) {
        gr_buf_printf(&def, "%s.1", log);
        one[0] = def.data;
        names = one;
        n = 1;
    }
    cand *c = gr_xcalloc(n ? n : 1, sizeof *c);
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        int fd = open(names[i], O_RDONLY);
        if (fd < 0) continue; /* LOG.1 absent: nothing rotated */
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
            (cur && st.st_dev == cur->st_dev && st.st_ino == cur->st_ino)) {
            close(fd);
            continue;
        }
        c[k].path = gr_xstrdup(names[i]);
        c[k].fd = fd;
        c[k].st = st;
        k++;
    }
    if (have_glob) globfree(&g);
    gr_buf_free(&def);
    *out = c;
    return k;
}

/* 1 when the file's first fp_len bytes have prev's fingerprint. */
static int same_fp(int fd, const struct stat *st, const gr_cstate_log *prev) {
    if (prev->fp_len == 0 || (uint64_t)st->st_size < prev->fp_len) return 0;
    gr_err e;
    uint64_t h;
    return gr_fingerprint_fd(fd, prev->fp_len, &h, &e) == 0 && h == prev->fp;
}

/* Adds the old content's tail: the candidate with prev's inode, else a copy
 * with prev's fingerprint. by_inode 0: a copy only (copytruncate). */
static void add_old_tail(gr_log_plan *p, const gr_cstate_log *prev, cand *c, int n, int by_inode) {
    int pick = -1;
    for (int i = 0; by_inode && i < n && pick < 0; i++)
        if ((uint64_t)c[i].st.st_dev == prev->dev && (uint64_t)c[i].st.st_ino == prev->ino) pick = i;
    for (int i = 0; i < n && pick < 0; i++)
        if ((uint64_t)c[i].st.st_size >= prev->offset && same_fp(c[i].fd, &c[i].st, prev)) pick = i;
    if (pick < 0) {
        snprintf(p->warning, sizeof p->warning,
                 "%s: %s, and its old content (inode %llu) is not among the rotated files%s: "
                 "what it gained after byte %llu (line %llu) was not moderated",
                 p->log, by_inode ? "rotated" : "truncated in place", (unsigned long long)prev->ino,
                 by_inode ? "" : " (no copy with its fingerprint)", (unsigned long long)prev->offset,
                 (unsigned long long)prev->line);
        return;
    }
    if ((uint64_t)c[pick].st.st_size < prev->offset) {
        snprintf(p->warning, sizeof p->warning,
                 "%s: its rotated file %s is shorter (%lld bytes) than the offset reached (%llu): not read",
                 p->log, c[pick].path, (long long)c[pick].st.st_size, (unsigned long long)prev->offset);
        return;
    }
    gr_segment *s = &p->seg[p->n_seg++];
    *s = (gr_segment){gr_xstrdup(c[pick].path), c[pick].fd, (uint64_t)c[pick].st.st_dev,
                      (uint64_t)c[pick].st.st_ino, prev->gen, prev->offset, (uint64_t)c[pick].st.st_size,
                      prev->line, 1};
    c[pick].fd = -1; /* the segment owns it now */
}

int gr_log_plan_make(const char *log, const gr_cstate_log *prev, const char *rotated_glob,
                     gr_log_plan *p, gr_err *err) {
    memset(p, 0, sizeof *p);
    p->log = gr_xstrdup(log);
    p->seg[0].fd = p->seg[1].fd = -1;
    int fd = open(log, O_RDONLY);
    struct stat st;
    if (fd < 0 && (errno != ENOENT || !prev)) {
        gr_errf(err, "%s: %s", log, strerror(errno));
        gr_log_plan_free(p);
        return -1;
    }
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        gr_errf(err, "%s: %s", log, S_ISREG(st.st_mode) ? strerror(errno) : "not a regular file");
        close(fd);
        gr_log_plan_free(p);
        return -1;
    }
    if (!prev) {
        p->seg[p->n_seg++] = (gr_segment){gr_xstrdup(log), fd, (uint64_t)st.st_dev, (uint64_t)st.st_ino,
                                          0, 0, (uint64_t)st.st_size, 0, 0};
        return 0;
    }
    int same = fd >= 0 && (uint64_t)st.st_dev == prev->dev && (uint64_t)st.st_ino == prev->ino;
    if (same && (uint64_t)st.st_size >= prev->offset && (prev->fp_len == 0 || same_fp(fd, &st, prev))) {
        p->seg[p->n_seg++] = (gr_segment){gr_xstrdup(log), fd, prev->dev, prev->ino, prev->gen, prev->offset,
                                          (uint64_t)st.st_size, prev->line, 0};
        return 0;
    }
    /* rotated (another file, or none now) or truncated in place */
    cand *c = NULL;
    int n = cands_open(log, rotated_glob, fd >= 0 ? &st : NULL, &c, err);
    if (n < 0) {
        if (fd >= 0) close(fd);
        gr_log_plan_free(p);
        return -1;
    }
    add_old_tail(p, prev, c, n, !same);
    cands_free(c, n);
    if (fd >= 0)
        p->seg[p->n_seg++] = (gr_segment){gr_xstrdup(log), fd, (uint64_t)st.st_dev, (uint64_t)st.st_ino,
                                          prev->gen + 1, 0, (uint64_t)st.st_size, 0, 0};
    if (p->n_seg == 0) { /* the log is gone and nothing was found: keep the entry as it was */
        p->next_offset = prev->offset;
        p->next_line = prev->line;
    }
    return 0;
}

void gr_log_plan_free(gr_log_plan *p) {
    for (int i = 0; i < p->n_seg; i++) {
        if (p->seg[i].fd >= 0) close(p->seg[i].fd);
        free(p->seg[i].file);
    }
    free(p->log);
    memset(p, 0, sizeof *p);
}

/* ---- reading ------------------------------------------------------------- */
enum { CHUNK = 1 << 16, LONG_KEEP = 4096 };

static int emit(gr_line_fn fn, void *ud, const gr_segment *s, gr_buf *b, uint64_t line, uint64_t off,
                int too_long, int partial, gr_err *err) {
    size_t n = b->len;
    if (!too_long && !partial && n && b->data[n - 1] == '\r') n--;
    gr_line l = {s, b->data ? b->data : "", n, line, off, too_long, partial};
    return fn(ud, &l, err);
}

static int read_segment(gr_log_plan *p, gr_segment *s, gr_line_fn fn, void *ud, gr_err *err) {
    unsigned char *chunk = gr_xmalloc(CHUNK);
    gr_buf cur = {0};
    uint64_t pos = s->start, line_start = s->start, line = s->line;
    size_t cur_len = 0; /* bytes of the current line seen (cur keeps at most GR_LINE_MAX) */
    int rc = 0;
    while (pos < s->end && !rc) {
        size_t want = s->end - pos < CHUNK ? (size_t)(s->end - pos) : CHUNK;
        ssize_t k = pread(s->fd, chunk, want, (off_t)pos);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            rc = gr_errf(err, "%s: read error: %s", s->file, strerror(errno));
            break;
        }
        if (k == 0) { /* shorter than when opened: truncated meanwhile; the next run sees it */
            s->end = pos;
            break;
        }
        size_t i = 0;
        while (i < (size_t)k && !rc) {
            unsigned char *nl = memchr(chunk + i, '\n', (size_t)k - i);
            size_t take = nl ? (size_t)(nl - (chunk + i)) : (size_t)k - i;
            /* keep the line's bytes up to the limit, then only a prefix for the reject */
            if (cur_len + take <= GR_LINE_MAX) gr_buf_append(&cur, chunk + i, take);
            else if (cur.len < LONG_KEEP) gr_buf_append(&cur, chunk + i, take < LONG_KEEP - cur.len ? take : LONG_KEEP - cur.len);
            if (cur_len + take > GR_LINE_MAX && cur.len > LONG_KEEP) cur.len = LONG_KEEP;
            cur_len += take;
            i += take;
            if (nl) {
                i++;
                line++;
                rc = emit(fn, ud, s, &cur, line, line_start, cur_len > GR_LINE_MAX, 0, err);
                line_start = pos + i;
                cur.len = 0;
                cur_len = 0;
            }
        }
        pos += (size_t)k;
    }
    if (!rc && cur_len && s->rotated) {
        /* a rotated file's unterminated last line will never be finished */
        line++;
        rc = emit(fn, ud, s, &cur, line, line_start, cur_len > GR_LINE_MAX, 1, err);
        line_start = pos;
    }
    p->next_offset = line_start;
    p->next_line = line;
    gr_buf_free(&cur);
    free(chunk);
    return rc;
}

int gr_log_plan_read(gr_log_plan *p, gr_line_fn fn, void *ud, gr_err *err) {
    for (int i = 0; i < p->n_seg; i++)
        if (read_segment(p, &p->seg[i], fn, ud, err)) return -1;
    return 0;
}

int gr_log_plan_state(const gr_log_plan *p, gr_cstate_log *out, gr_err *err) {
    if (p->n_seg == 0) return 0;
    const gr_segment *s = &p->seg[p->n_seg - 1];
    out->dev = s->dev;
    out->ino = s->ino;
    out->gen = s->gen;
    out->offset = p->next_offset;
    out->line = p->next_line;
    out->fp_len = (uint32_t)(p->next_offset < GR_CSTATE_FP_MAX ? p->next_offset : GR_CSTATE_FP_MAX);
    if (gr_fingerprint_fd(s->fd, out->fp_len, &out->fp, err)) {
        char m[1500];
        snprintf(m, sizeof m, "%.1400s", err->msg);
        return gr_errf(err, "%.500s: %s", s->file, m);
    }
    return 0;
}
