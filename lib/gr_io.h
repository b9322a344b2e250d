/* Record I/O: every tool reads and writes JSON records through this.
 *
 * Reading. A source is a file or stdin ("-" or NULL), optionally compressed
 * with zstd (detected by the magic number, never by the name). Its content is
 * either a sequence of JSON objects (JSON Lines; any whitespace between objects
 * is accepted, so a pretty-printed object works too) or one top-level JSON
 * array of objects. Both are streamed: memory holds one record at a time, so a
 * 1 GB array is never loaded whole. A UTF-8 BOM and CRLF line ends are accepted.
 * Invalid UTF-8 (and JSON escapes of lone surrogates) is an error naming the
 * line, unless `replace_invalid_utf8` asks for U+FFFD replacement.
 *
 * Ownership: values follow libjq's jv rule — every jv passed to a function is
 * consumed by it, every jv returned belongs to the caller (jv_copy to keep one).
 *
 * Writing. One JSON object per line. `-o FILE` is written to a temporary file in
 * the same folder and renamed over FILE by gr_writer_commit, so a killed run never
 * leaves a half file under the final name. Compressed with zstd when the name ends
 * in ".zst" or opts->zstd is 1. Append mode (for resumable tools) writes straight
 * to FILE, flushing whole lines. */
#ifndef GR_IO_H
#define GR_IO_H
#include <stdio.h>
#include <jv.h>
#include "gr_common.h"

/* ---- reading ------------------------------------------------------------ */
typedef struct gr_reader gr_reader;

typedef struct gr_reader_opts {
    int replace_invalid_utf8; /* 1: replace invalid UTF-8 by U+FFFD (counted) */
    const char *map;          /* jq program applied to each record, or NULL. Each
                                 output of the program is one record (`empty`
                                 drops it); outputs must be objects. */
} gr_reader_opts;

/* NULL opts means defaults. NULL on failure (err: "FILE: why"). */
gr_reader *gr_reader_open(const char *path, const gr_reader_opts *opts, gr_err *err);
/* 1: *rec is the next record (an object, owned by the caller); 0: end of input;
 * -1: error, err holds "FILE:LINE: why". After -1 the reader is done. */
int gr_reader_next(gr_reader *r, jv *rec, gr_err *err);
const char *gr_reader_name(const gr_reader *r); /* the path, or "stdin" */
long gr_reader_line(const gr_reader *r);        /* line where the last record began */
long gr_reader_replaced(const gr_reader *r);    /* invalid UTF-8 sequences replaced */
void gr_reader_close(gr_reader *r);

/* --replace-invalid: every reader opened afterwards replaces invalid UTF-8 by
 * U+FFFD, whatever its opts say. Tools whose records are read deep inside a
 * library (training data, raw pairs, resume files) set it once in main(). */
void gr_reader_replace_invalid_all(int on);

/* Checks that a --map program compiles: 0, or -1 with jq's message in err.
 * Tools call it while parsing options, so a bad program is a usage error. */
int gr_map_check(const char *program, gr_err *err);

/* ---- writing ------------------------------------------------------------ */
typedef struct gr_writer gr_writer;

typedef struct gr_writer_opts {
    int zstd;       /* 1: compress; 0: by name (".zst") */
    int level;      /* zstd level, 0 = default (3) */
    int append;     /* 1: append to FILE directly (no temporary; not with zstd) */
    int force_tty;  /* 1: allow compressed bytes on a terminal */
} gr_writer_opts;

/* path NULL or "-" writes stdout. */
gr_writer *gr_writer_open(const char *path, const gr_writer_opts *opts, gr_err *err);
/* Writes rec (consumed) as one line. -1 on a write error. */
int gr_writer_put(gr_writer *w, jv rec, gr_err *err);
/* Writes the bytes s[0..n) followed by "\n" (s must be one line of JSON). */
int gr_writer_put_line(gr_writer *w, const char *s, size_t n, gr_err *err);
int gr_writer_flush(gr_writer *w, gr_err *err);
/* Finishes: flushes, fsyncs and renames the temporary over the final name.
 * Frees w in every case; -1 (and the temporary removed) on failure. */
int gr_writer_commit(gr_writer *w, gr_err *err);
/* Discards: removes the temporary, frees w. The final name is untouched. */
void gr_writer_abort(gr_writer *w);

/* Writes data[0..n) to path through a temporary file and a rename (path NULL
 * or "-": stdout). For reports and other non-record outputs. */
int gr_write_file_atomic(const char *path, const void *data, size_t n, gr_err *err);

/* For resumable outputs written in append mode: if FILE ends in a torn line
 * (no final "\n", as a SIGKILL mid-write can leave), cut it off. *cut gets the
 * number of bytes removed. A missing file is not an error. */
int gr_jsonl_cut_torn_tail(const char *path, size_t *cut, gr_err *err);

/* ---- jv helpers --------------------------------------------------------- */
/* The string field `key` of obj (borrowed pointer valid while obj lives), or
 * NULL when absent, null or not a string. obj is not consumed. */
const char *gr_jv_str(jv obj, const char *key);
/* 1 when obj has `key` and it is not null. obj is not consumed. */
int gr_jv_has(jv obj, const char *key);
/* A short name of the jv kind ("string", "object", ...). */
const char *gr_jv_kind(jv v);
#endif
