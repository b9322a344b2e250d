/* The record writer: JSON Lines, optionally zstd, committed atomically. */
#include "gr_io.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

struct gr_writer {
    FILE *f;
    char *final;     /* final path, NULL for stdout */
    char *tmp;       /* temporary path, NULL for stdout and append mode */
    ZSTD_CStream *cs;
    unsigned char *zout;
    size_t zout_cap;
    int failed;
};

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

gr_writer *gr_writer_open(const char *path, const gr_writer_opts *opts, gr_err *err) {
    gr_writer_opts o = {0};
    if (opts) o = *opts;
    int is_stdout = !path || strcmp(path, "-") == 0;
    int zstd = o.zstd || (!is_stdout && ends_with(path, ".zst"));
    if (zstd && o.append) {
        gr_errf(err, "%s: appending to a zstd file is not supported (resume needs an uncompressed output)", path);
        return NULL;
    }
    if (zstd && is_stdout && !o.force_tty && isatty(STDOUT_FILENO)) {
        gr_errf(err, "stdout: refusing to write compressed data to a terminal");
        return NULL;
    }
    gr_writer *w = gr_xcalloc(1, sizeof *w);
    if (is_stdout) {
        w->f = stdout;
    } else if (o.append) {
        w->final = gr_xstrdup(path);
        w->f = fopen(path, "ab");
        if (!w->f) {
            gr_errf(err, "%s: %s", path, strerror(errno));
            free(w->final);
            free(w);
            return NULL;
        }
    } else {
        w->final = gr_xstrdup(path);
        char *dcopy = gr_xstrdup(path), *bcopy = gr_xstrdup(path);
        gr_buf t = {0};
        gr_buf_printf(&t, "%s/.%s.tmp.XXXXXX", dirname(dcopy), basename(bcopy));
        free(dcopy);
        free(bcopy);
        w->tmp = gr_xstrdup(gr_buf_cstr(&t));
        gr_buf_free(&t);
        int fd = mkstemp(w->tmp);
        if (fd < 0) {
            gr_errf(err, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
            free(w->tmp);
            free(w->final);
            free(w);
            return NULL;
        }
        mode_t um = umask(0);
        umask(um);
        fchmod(fd, 0666 & ~um);
        w->f = fdopen(fd, "wb");
    }
    if (zstd) {
        w->cs = ZSTD_createCStream();
        ZSTD_CCtx_setParameter(w->cs, ZSTD_c_compressionLevel, o.level ? o.level : 3);
        ZSTD_CCtx_setParameter(w->cs, ZSTD_c_checksumFlag, 1);
        w->zout_cap = ZSTD_CStreamOutSize();
        w->zout = gr_xmalloc(w->zout_cap);
    }
    return w;
}

static int write_bytes(gr_writer *w, const void *p, size_t n, ZSTD_EndDirective end, gr_err *err) {
    const char *name = w->final ? w->final : "stdout";
    if (!w->cs) {
        if (n && fwrite(p, 1, n, w->f) != n) {
            w->failed = 1;
            return gr_errf(err, "%s: write error: %s", name, strerror(errno));
        }
        return 0;
    }
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->zout, w->zout_cap, 0};
        size_t r = ZSTD_compressStream2(w->cs, &out, &in, end);
        if (ZSTD_isError(r)) {
            w->failed = 1;
            return gr_errf(err, "%s: zstd: %s", name, ZSTD_getErrorName(r));
        }
        if (out.pos && fwrite(w->zout, 1, out.pos, w->f) != out.pos) {
            w->failed = 1;
            return gr_errf(err, "%s: write error: %s", name, strerror(errno));
        }
        if (end == ZSTD_e_continue ? in.pos == in.size : r == 0) return 0;
    }
}

int gr_writer_put_line(gr_writer *w, const char *s, size_t n, gr_err *err) {
    if (w->failed) return gr_errf(err, "%s: writer already failed", w->final ? w->final : "stdout");
    if (write_bytes(w, s, n, ZSTD_e_continue, err) < 0) return -1;
    return write_bytes(w, "\n", 1, ZSTD_e_continue, err);
}

int gr_writer_put(gr_writer *w, jv rec, gr_err *err) {
    jv s = jv_dump_string(rec, 0);
    int rc = gr_writer_put_line(w, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)), err);
    jv_free(s);
    return rc;
}

int gr_writer_flush(gr_writer *w, gr_err *err) {
    if (w->cs && write_bytes(w, "", 0, ZSTD_e_flush, err) < 0) return -1;
    if (fflush(w->f) != 0) {
        w->failed = 1;
        return gr_errf(err, "%s: write error: %s", w->final ? w->final : "stdout", strerror(errno));
    }
    return 0;
}

static void writer_free(gr_writer *w) {
    ZSTD_freeCStream(w->cs);
    free(w->zout);
    free(w->final);
    free(w->tmp);
    free(w);
}

int gr_writer_commit(gr_writer *w, gr_err *err) {
    const char *name = w->final ? w->final : "stdout";
    int rc = 0;
    if (!w->failed && w->cs) rc = write_bytes(w, "", 0, ZSTD_e_end, err);
    if (rc == 0 && w->failed) rc = gr_errf(err, "%s: earlier write error", name);
    if (rc == 0 && fflush(w->f) != 0) rc = gr_errf(err, "%s: write error: %s", name, strerror(errno));
    if (rc == 0 && ferror(w->f)) rc = gr_errf(err, "%s: write error", name);
    if (w->final) {
        if (rc == 0 && fsync(fileno(w->f)) != 0 && errno != EINVAL)
            rc = gr_errf(err, "%s: fsync: %s", name, strerror(errno));
        if (fclose(w->f) != 0 && rc == 0) rc = gr_errf(err, "%s: close: %s", name, strerror(errno));
        if (w->tmp) {
            if (rc == 0 && rename(w->tmp, w->final) != 0)
                rc = gr_errf(err, "%s: cannot rename the temporary file into place: %s", name, strerror(errno));
            if (rc != 0) unlink(w->tmp);
        }
    }
    writer_free(w);
    return rc;
}

void gr_writer_abort(gr_writer *w) {
    if (!w) return;
    if (w->final) {
        fclose(w->f);
        if (w->tmp) unlink(w->tmp);
    } else {
        fflush(w->f);
    }
    writer_free(w);
}

int gr_jsonl_cut_torn_tail(const char *path, size_t *cut, gr_err *err) {
    *cut = 0;
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        return gr_errf(err, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return gr_errf(err, "%s: %s", path, strerror(errno));
    }
    off_t end = st.st_size, pos = end;
    char buf[4096];
    /* walk back to the last newline */
    while (pos > 0) {
        size_t k = pos >= (off_t)sizeof buf ? sizeof buf : (size_t)pos;
        if (pread(fd, buf, k, pos - (off_t)k) != (ssize_t)k) {
            close(fd);
            return gr_errf(err, "%s: read error: %s", path, strerror(errno));
        }
        size_t i = k;
        while (i > 0 && buf[i - 1] != '\n') i--;
        if (i > 0) { pos = pos - (off_t)k + (off_t)i; break; }
        pos -= (off_t)k;
    }
    if (pos < end) {
        if (ftruncate(fd, pos) != 0) {
            close(fd);
            return gr_errf(err, "%s: cannot cut the torn last line: %s", path, strerror(errno));
        }
        *cut = (size_t)(end - pos);
    }
    close(fd);
    return 0;
}

int gr_write_file_atomic(const char *path, const void *data, size_t n, gr_err *err) {
    gr_writer_opts o = {0};
    gr_writer *w = gr_writer_open(path, &o, err);
    if (!w) return -1;
    /* the writer compresses by name; a report is plain text whatever its name */
    if (w->cs) {
        ZSTD_freeCStream(w->cs);
        w->cs = NULL;
    }
    if (write_bytes(w, data, n, ZSTD_e_continue, err) < 0) {
        gr_writer_abort(w);
        return -1;
    }
    return gr_writer_commit(w, err);
}
