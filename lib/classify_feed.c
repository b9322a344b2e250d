/* Lines -> records or rejects, with done keys: see classify_feed.h. */
#include "classify_feed.h"
#include "gr_utf8.h"
#include "guard.h"
#include <errno.h>
#include <jq.h>
#include <stdlib.h>
#include <string.h>

enum { REJECT_TEXT_MAX = 65536 }; /* bytes of a rejected line kept in its reject record */

/* ---- done keys: a set of (log, gen, offset, index) -------------------------
 * (log, gen) held as one 64-bit hash (log_gen_hash). */
typedef struct dkey {
    uint64_t lg, off;
    uint32_t idx;
    int used;
} dkey;

struct gr_feed {
    gr_feed_opts o;
    jq_state *jq;
    jv map_err;
    dkey *keys;
    size_t cap, n;
};

/* Offsets and generations travel as JSON numbers (doubles): a key is made of
 * the value as it reads back, so a number above 2^53 still matches itself. */
static uint64_t as_json(uint64_t x) { return (uint64_t)(double)x; }

static uint64_t log_gen_hash(const char *log, uint64_t gen) {
    return gr_fnv1a64(GR_FNV_INIT, log, strlen(log)) ^ (as_json(gen) + 1) * 0x9E3779B97F4A7C15ull;
}

static size_t dkey_slot(const gr_feed *f, uint64_t lg, uint64_t off, uint32_t idx) {
    uint64_t h = lg * 0x9E3779B97F4A7C15ull ^ (off + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full ^ idx;
    h ^= h >> 29;
    size_t i = (size_t)h & (f->cap - 1);
    while (f->keys[i].used && !(f->keys[i].lg == lg && f->keys[i].off == off && f->keys[i].idx == idx))
        i = (i + 1) & (f->cap - 1);
    return i;
}

static int dkey_has(const gr_feed *f, uint64_t lg, uint64_t off, uint32_t idx) {
    return f->cap && f->keys[dkey_slot(f, lg, as_json(off), idx)].used;
}

static void dkey_add(gr_feed *f, uint64_t lg, uint64_t off, uint32_t idx) {
    if (2 * (f->n + 1) > f->cap) {
        dkey *old = f->keys;
        size_t oc = f->cap;
        f->cap = oc ? 2 * oc : 256;
        f->keys = gr_xcalloc(f->cap, sizeof *f->keys);
        f->n = 0;
        for (size_t i = 0; i < oc; i++)
            if (old[i].used) {
                f->keys[dkey_slot(f, old[i].lg, old[i].off, old[i].idx)] = old[i];
                f->n++;
            }
        free(old);
    }
    size_t i = dkey_slot(f, lg, off, idx);
    if (!f->keys[i].used) {
        f->keys[i] = (dkey){lg, off, idx, 1};
        f->n++;
    }
}

long gr_feed_done_known(const gr_feed *f) { return (long)f->n; }

static void map_err_cb(void *data, jv msg) {
    gr_feed *f = data;
    jv_free(f->map_err);
    f->map_err = msg;
}

gr_feed *gr_feed_new(const gr_feed_opts *o, gr_err *err) {
    gr_feed *f = gr_xcalloc(1, sizeof *f);
    f->o = *o;
    f->map_err = jv_null();
    if (o->map) {
        f->jq = jq_init();
        if (!f->jq || !jq_compile(f->jq, o->map)) {
            gr_errf(err, "--map: the jq program does not compile");
            gr_feed_free(f);
            return NULL;
        }
        jq_set_error_cb(f->jq, map_err_cb, f);
    }
    return f;
}

void gr_feed_free(gr_feed *f) {
    if (!f) return;
    if (f->jq) jq_teardown(&f->jq);
    jv_free(f->map_err);
    free(f->keys);
    free(f);
}

/* A non-negative whole JSON number field of obj, or -1. */
static int num_field(jv obj, const char *key, uint64_t *v) {
    jv x = jv_object_get(jv_copy(obj), jv_string(key));
    int ok = jv_get_kind(x) == JV_KIND_NUMBER && jv_number_value(x) >= 0 && jv_number_value(x) < 1.8446744073709552e19;
    if (ok) *v = (uint64_t)jv_number_value(x);
    jv_free(x);
    return ok ? 0 : -1;
}

int gr_feed_learn_done(gr_feed *f, const char *path, uint64_t from, gr_err *err) {
    FILE *in = fopen(path, "rb");
    if (!in) return errno == ENOENT ? 0 : gr_errf(err, "%s: %s", path, strerror(errno));
    if (fseeko(in, (off_t)from, SEEK_SET) != 0) {
        fclose(in);
        return gr_errf(err, "%s: cannot seek to byte %llu: %s", path, (unsigned long long)from, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) > 0) {
        if (n > 0x7fffffff) continue;
        jv rec = jv_parse_sized(line, (int)n);
        if (jv_get_kind(rec) == JV_KIND_OBJECT) {
            jv src = jv_object_get(jv_copy(rec), jv_string("source"));
            uint64_t gen, off, idx = 0;
            const char *log = gr_jv_str(src, "log");
            if (log && num_field(src, "gen", &gen) == 0 && num_field(src, "offset", &off) == 0) {
                jv ix = jv_object_get(jv_copy(src), jv_string("index"));
                if (jv_get_kind(ix) == JV_KIND_NUMBER && jv_number_value(ix) >= 0 && jv_number_value(ix) < 4e9)
                    idx = (uint64_t)jv_number_value(ix);
                jv_free(ix);
                dkey_add(f, log_gen_hash(log, gen), off, (uint32_t)idx);
            }
            jv_free(src);
        }
        jv_free(rec);
    }
    int bad = ferror(in);
    free(line);
    fclose(in);
    return bad ? gr_errf(err, "%s: read error", path) : 0;
}

/* ---- one line ------------------------------------------------------------ */
typedef struct feed_ctx {
    gr_feed *f;
    gr_log_plan *p;
    gr_writer *records, *rejects;
    gr_feed_warn warn;
    void *ud;
    gr_feed_stats *st;
} feed_ctx;

static jv source_of(const feed_ctx *c, const gr_line *l, int index) {
    jv s = jv_object();
    s = jv_object_set(s, jv_string("log"), jv_string(c->p->log));
    s = jv_object_set(s, jv_string("gen"), jv_number((double)l->seg->gen));
    s = jv_object_set(s, jv_string("file"), jv_string(l->seg->file));
    s = jv_object_set(s, jv_string("line"), jv_number((double)l->line));
    s = jv_object_set(s, jv_string("offset"), jv_number((double)l->offset));
    s = jv_object_set(s, jv_string("inode"), jv_number((double)l->seg->ino));
    if (index >= 0) s = jv_object_set(s, jv_string("index"), jv_number(index));
    return s;
}

/* "LOG:GEN:OFFSET", "#INDEX" from the second record of a line on. */
static jv derived_id(const feed_ctx *c, const gr_line *l, int index) {
    char tail[80];
    snprintf(tail, sizeof tail, ":%llu:%llu", (unsigned long long)l->seg->gen, (unsigned long long)l->offset);
    gr_buf b = {0};
    gr_buf_printf(&b, "%s%s", c->p->log, tail);
    if (index > 0) gr_buf_printf(&b, "#%d", index);
    jv id = jv_string(gr_buf_cstr(&b));
    gr_buf_free(&b);
    return id;
}

static int reject(feed_ctx *c, const gr_line *l, const char *reason, gr_err *err) {
    jv id = derived_id(c, l, 0);
    int mine = gr_shard_mine(c->f->o.shard, id);
    jv_free(id);
    if (!mine) {
        c->st->other_shard++;
        return 0;
    }
    if (dkey_has(c->f, log_gen_hash(c->p->log, l->seg->gen), l->offset, 0)) {
        c->st->done_before++;
        return 0;
    }
    c->st->rejects++;
    if (c->warn) {
        char m[3000];
        snprintf(m, sizeof m, "%.400s:%llu: %.2300s (rejected)", l->seg->file, (unsigned long long)l->line, reason);
        c->warn(c->ud, m);
    }
    if (!c->rejects) return 0;
    size_t n = l->n < REJECT_TEXT_MAX ? l->n : REJECT_TEXT_MAX;
    jv r = jv_object();
    r = jv_object_set(r, jv_string("source"), source_of(c, l, -1));
    r = jv_object_set(r, jv_string("reason"), jv_string(reason));
    /* jv_string_sized turns invalid UTF-8 into U+FFFD: the rejects file stays JSON */
    r = jv_object_set(r, jv_string("text"), jv_string_sized(l->text, (int)n));
    if (n < l->n || l->too_long) r = jv_object_set(r, jv_string("text_truncated"), jv_true());
    return gr_writer_put(c->rejects, r, err);
}

/* The first problem with the line's text as JSON text: invalid UTF-8, or a
 * \u escape of a lone UTF-16 surrogate (libjq would silently replace both).
 * NULL when fine; *at gets the byte. */
static const char *text_problem(const char *s, size_t n, size_t *at) {
    size_t bad = gr_utf8_check(s, n);
    if (bad < n) {
        *at = bad;
        return "invalid UTF-8";
    }
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] != 'u' || i + 6 > n) {
            i++;
            continue;
        }
        unsigned v = (unsigned)strtoul((char[5]){s[i + 2], s[i + 3], s[i + 4], s[i + 5], 0}, NULL, 16);
        if (v >= 0xD800 && v <= 0xDBFF) {
            if (i + 12 <= n && s[i + 6] == '\\' && s[i + 7] == 'u') {
                unsigned w = (unsigned)strtoul((char[5]){s[i + 8], s[i + 9], s[i + 10], s[i + 11], 0}, NULL, 16);
                if (w >= 0xDC00 && w <= 0xDFFF) {
                    i += 11;
                    continue;
                }
            }
            *at = i;
            return "a \\u escape of a lone UTF-16 surrogate";
        }
        if (v >= 0xDC00 && v <= 0xDFFF) {
            *at = i;
            return "a \\u escape of a lone UTF-16 surrogate";
        }
        i += 5;
    }
    return NULL;
}

/* Invalid UTF-8 replaced by U+FFFD (the replacement libjq makes). */
static void replace_invalid(const char *s, size_t n, gr_buf *out) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = (unsigned char)s[i] < 0x80 ? 1 : gr_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (k) {
            gr_buf_append(out, s + i, (size_t)k);
            i += (size_t)k;
        } else {
            gr_buf_append(out, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
}

/* The --map outputs of v (consumed) into *outs (an array); NULL, or the reason
 * of the first problem. The program runs to its end or its first error (where
 * jq itself stops, and libjq must not be asked for more): libjq leaks its
 * stack when a program is abandoned half-way, so a non-object output does not
 * stop it. */
static const char *map_apply(gr_feed *f, jv v, jv *outs, char *why, size_t why_n) {
    *outs = jv_array();
    const char *bad = NULL;
    jq_start(f->jq, v, 0);
    for (;;) {
        jv out = jq_next(f->jq);
        if (jv_is_valid(out)) {
            if (!bad && jv_get_kind(out) != JV_KIND_OBJECT) {
                snprintf(why, why_n, "--map produced %s, not an object", gr_jv_kind(out));
                bad = why;
            }
            if (bad) jv_free(out);
            else *outs = jv_array_append(*outs, out);
            continue;
        }
        if (jv_invalid_has_msg(jv_copy(out))) {
            jv msg = jv_invalid_get_msg(out);
            if (!bad) {
                snprintf(why, why_n, "--map: %s", jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "jq error");
                bad = why;
            }
            jv_free(msg);
            break;
        }
        jv_free(out);
        break;
    }
    if (jv_get_kind(f->map_err) == JV_KIND_STRING) {
        if (!bad) {
            snprintf(why, why_n, "--map: %s", jv_string_value(f->map_err));
            bad = why;
        }
        jv_free(f->map_err);
        f->map_err = jv_null();
    }
    return bad;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

static int on_line(void *ud, const gr_line *l, gr_err *err) {
    feed_ctx *c = ud;
    gr_feed *f = c->f;
    char why[2300];
    c->st->lines++;
    if (l->too_long) {
        snprintf(why, sizeof why, "line longer than %u bytes", GR_LINE_MAX);
        return reject(c, l, why, err);
    }
    if (l->partial) return reject(c, l, "unterminated last line of a rotated log (the writer never finished it)", err);
    if (is_blank(l->text, l->n)) {
        c->st->blank++;
        return 0;
    }
    gr_buf fixed = {0};
    const char *text = l->text;
    size_t n = l->n, at;
    const char *prob = text_problem(text, n, &at);
    if (prob && f->o.replace_invalid && prob[0] == 'i') {
        replace_invalid(text, n, &fixed);
        text = fixed.data;
        n = fixed.len;
        c->st->replaced++;
        prob = text_problem(text, n, &at);
    }
    if (prob) {
        gr_buf_free(&fixed);
        snprintf(why, sizeof why, "%s at byte %zu of the line%s", prob, at,
                 prob[0] == 'i' ? " (--replace-invalid replaces it with U+FFFD)" : "");
        return reject(c, l, why, err);
    }
    jv v = n > 0x7fffffff ? jv_invalid() : jv_parse_sized(text, (int)n);
    gr_buf_free(&fixed);
    if (!jv_is_valid(v)) {
        jv msg = jv_invalid_get_msg(v);
        const char *m = jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "invalid JSON";
        const char *cut = strstr(m, " (while parsing");
        snprintf(why, sizeof why, "not JSON: %.*s", cut ? (int)(cut - m) : (int)strlen(m), m);
        jv_free(msg);
        return reject(c, l, why, err);
    }
    jv outs;
    if (f->jq) {
        if (map_apply(f, v, &outs, why, sizeof why)) {
            jv_free(outs);
            return reject(c, l, why, err);
        }
    } else if (jv_get_kind(v) != JV_KIND_OBJECT) {
        snprintf(why, sizeof why, "%s, not a JSON object (records are objects, one per line)", gr_jv_kind(v));
        jv_free(v);
        return reject(c, l, why, err);
    } else {
        outs = jv_array_append(jv_array(), v);
    }
    int m = jv_array_length(jv_copy(outs));
    if (m == 0) {
        jv_free(outs);
        c->st->dropped++;
        return 0;
    }
    /* every record must be readable by the guard, or the line is rejected whole */
    for (int i = 0; i < m; i++) {
        jv rec = jv_array_get(jv_copy(outs), i);
        char *instr = NULL, *input = NULL;
        gr_err qerr;
        int bad = gr_guard_query(rec, &instr, &input, &qerr);
        jv_free(rec);
        free(instr);
        free(input);
        if (bad) {
            jv_free(outs);
            if (m > 1) snprintf(why, sizeof why, "record %d of %d made by --map: %.2000s", i + 1, m, qerr.msg);
            else snprintf(why, sizeof why, "%.2000s", qerr.msg);
            return reject(c, l, why, err);
        }
    }
    int rc = 0;
    for (int i = 0; i < m && !rc; i++) {
        jv rec = jv_array_get(jv_copy(outs), i);
        int index = m > 1 ? i : -1;
        if (!gr_jv_has(rec, "id")) rec = jv_object_set(rec, jv_string("id"), derived_id(c, l, i));
        jv id = jv_object_get(jv_copy(rec), jv_string("id"));
        int mine = gr_shard_mine(f->o.shard, id);
        jv_free(id);
        if (!mine) {
            c->st->other_shard++;
            jv_free(rec);
            continue;
        }
        if (dkey_has(f, log_gen_hash(c->p->log, l->seg->gen), l->offset, (uint32_t)(index < 0 ? 0 : index))) {
            c->st->done_before++;
            jv_free(rec);
            continue;
        }
        rec = jv_object_set(rec, jv_string("source"), source_of(c, l, index));
        rc = gr_writer_put(c->records, rec, err);
        if (!rc) c->st->records++;
    }
    jv_free(outs);
    return rc;
}

int gr_feed_log(gr_feed *f, gr_log_plan *p, gr_writer *records, gr_writer *rejects, gr_feed_warn warn,
                void *ud, gr_feed_stats *st, gr_err *err) {
    feed_ctx c = {f, p, records, rejects, warn, ud, st};
    return gr_log_plan_read(p, on_line, &c, err);
}
