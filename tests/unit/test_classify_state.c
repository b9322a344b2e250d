/* gr-classify --state pieces: the state file (format, parser, atomic save),
 * the per-log plan (append, copytruncate, rename rotation, partial lines), the
 * feed (records, rejects, derived ids, done keys) and --shard's hash. */
#include "test.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "classify_feed.h"
#include "classify_source.h"
#include "classify_state.h"
#include "record_shard.h"

static char dir[] = "/tmp/gr-test-state-XXXXXX";

/* dir/name, in one of 256 static buffers (enough for every path a test holds) */
static const char *path_in(const char *name) {
    static char buf[256][512];
    static int k;
    k = (k + 1) % 256;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_file(const char *path, const char *mode, const char *text) {
    FILE *f = fopen(path, mode);
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    gr_buf b = {0};
    char tmp[4096];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) gr_buf_append(&b, tmp, k);
    fclose(f);
    gr_buf_putc(&b, 0);
    return b.data;
}

/* ---- the state file -------------------------------------------------------- */
static void sample_state(gr_cstate *s) {
    memset(s, 0, sizeof *s);
    gr_cstate_file_set(&s->output, 2049, 77, 5000, "out dir/verdicts.jsonl");
    gr_cstate_log *l = gr_cstate_get(s, "/var/log/app.jsonl");
    *l = (gr_cstate_log){l->path, 2049, 1304, 3, 1834, 12, 1024, 0x8c3f0a9d1e2b4c57ull};
    l = gr_cstate_get(s, "weird name\n%25 é.log");
    *l = (gr_cstate_log){l->path, UINT64_MAX, 0, 0, 5, 1, 5, 1};
}

TEST(state_roundtrip) {
    gr_cstate s, t;
    sample_state(&s);
    gr_buf a = {0}, b = {0};
    gr_cstate_format(&s, &a);
    gr_err err;
    CHECK_MSG(gr_cstate_parse(a.data, a.len, "S", &t, &err) == 0, "%s", err.msg);
    gr_cstate_format(&t, &b);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    CHECK(t.n_logs == 2 && t.output.set && !t.rejects.set);
    CHECK_STR(t.logs[1].path, "weird name\n%25 é.log");
    CHECK(t.logs[1].dev == UINT64_MAX && t.logs[0].fp == 0x8c3f0a9d1e2b4c57ull);
    CHECK_STR(t.output.path, "out dir/verdicts.jsonl");
    CHECK(strstr(a.data, "path=weird%20name%0A%2525%20%C3%A9.log\n") != NULL);
    gr_buf_free(&a);
    gr_buf_free(&b);
    gr_cstate_free(&s);
    gr_cstate_free(&t);
}

TEST(state_parse_errors) {
    static const char H[] = "gr-classify-state 1\n";
    static const struct { const char *body; const char *want; } cases[] = {
        {"", "empty state"},
        {"gr-classify-state 2\n", "not a gr-classify state"},
        {"gr-classify-state 1", "no newline"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 fp=3:0000000000000000 path=a", "no newline"},
        {"#H\nnope\n", ":2: unknown line"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 path=a\n", "expected the field fp="},
        {"#H\nlog ino=2 dev=1 gen=0 offset=3 line=1 fp=3:0000000000000000 path=a\n", "expected the field dev="},
        {"#H\nlog dev=01 ino=2 gen=0 offset=3 line=1 fp=3:0000000000000000 path=a\n", "leading zero"},
        {"#H\nlog dev=18446744073709551616 ino=2 gen=0 offset=3 line=1 fp=3:0000000000000000 path=a\n", "larger than 2^64-1"},
        {"#H\nlog dev=-1 ino=2 gen=0 offset=3 line=1 fp=3:0000000000000000 path=a\n", "unsigned decimal"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 fp=2:0000000000000000 path=a\n", "min(offset, 1024)"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=5000 line=1 fp=1025:0000000000000000 path=a\n", "larger than 1024"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 fp=3:000000000000000A path=a\n", "16 lowercase hex"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 fp=3:000000000000000 path=a\n", "16 lowercase hex"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=4 fp=3:0000000000000000 path=a\n", "more lines than bytes"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 fp=3:0000000000000000 path=\n", "empty path"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 fp=3:0000000000000000 path=a b\n", "outside '!'..'~'"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 fp=3:0000000000000000 path=a%2\n", "bad percent"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 fp=3:0000000000000000 path=a%2f\n", "bad percent"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 fp=3:0000000000000000 path=a%00\n", "NUL byte in the path"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 fp=3:0000000000000000 path=%41\n", "printable byte escaped"},
        {"#H\nlog dev=1 ino=2 gen=0 offset=3 line=1 fp=3:0000000000000000 path=a\n"
         "log dev=1 ino=5 gen=0 offset=0 line=0 fp=0:0000000000000000 path=a\n", ":3: a second `log` line"},
        {"#H\noutput dev=1 ino=2 size=3 path=o\noutput dev=1 ino=2 size=3 path=o\n", ":3: given twice"},
        {"#H\noutput dev=1 ino=2 size=3\n", ":2: the line ends early"},
        {"#H\noutput dev=1 ino=2 size=3x path=o\n", "unexpected text after a number"},
        {"#H\nrejects dev=1 ino=2 size=3 path=o\0x\n", "NUL byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gr_buf t = {0};
        const char *body = cases[i].body;
        size_t n = strlen(body);
        if (strncmp(body, "#H\n", 3) == 0) {
            gr_buf_append(&t, H, strlen(H));
            body += 3;
            n -= 3;
            /* the NUL case: the literal holds bytes after the NUL */
            if (strstr(cases[i].want, "NUL byte") && !strstr(cases[i].want, "path")) n += 3;
        }
        gr_buf_append(&t, body, n);
        gr_cstate s;
        gr_err err;
        int rc = gr_cstate_parse(t.data ? t.data : "", t.len, "S", &s, &err);
        CHECK_MSG(rc == -1, "case %zu parsed", i);
        CHECK_MSG(strstr(err.msg, cases[i].want) != NULL, "case %zu: '%s' lacks '%s'", i, err.msg, cases[i].want);
        CHECK(s.n_logs == 0 && !s.output.set);
        gr_buf_free(&t);
    }
    /* comments, the largest number, an empty-offset log */
    const char *good = "gr-classify-state 1\n# c\n#\nlog dev=18446744073709551615 ino=0 gen=7 offset=0 line=0 "
                       "fp=0:cbf29ce484222325 path=%25\n";
    gr_cstate s;
    gr_err err;
    CHECK_MSG(gr_cstate_parse(good, strlen(good), "S", &s, &err) == 0, "%s", err.msg);
    CHECK(s.n_logs == 1 && s.logs[0].dev == UINT64_MAX && s.logs[0].gen == 7);
    CHECK_STR(s.logs[0].path, "%");
    gr_cstate_free(&s);
}

TEST(state_save_load) {
    gr_cstate s, t;
    sample_state(&s);
    gr_err err;
    const char *p = path_in("st");
    CHECK_MSG(gr_cstate_save(p, &s, &err) == 0, "%s", err.msg);
    CHECK_MSG(gr_cstate_load(p, &t, &err) == 0, "%s", err.msg);
    CHECK(t.n_logs == 2 && t.logs[0].offset == 1834);
    gr_cstate_free(&t);
    /* saved again over itself: no temporary left beside it */
    CHECK(gr_cstate_save(p, &s, &err) == 0);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s | grep -v '^st$')\"", dir);
    CHECK(system(cmd) == 0);
    CHECK(gr_cstate_load(path_in("missing"), &t, &err) == 0 && t.n_logs == 0);
    write_file(path_in("bad"), "w", "gr-classify-state 1\nlog x\n");
    CHECK(gr_cstate_load(path_in("bad"), &t, &err) == -1 && strstr(err.msg, "/bad:2: "));
    gr_cstate_free(&s);
    unlink(p);
    unlink(path_in("bad"));
}

TEST(fnv_and_shard) {
    CHECK(gr_fnv1a64(GR_FNV_INIT, "", 0) == 0xcbf29ce484222325ull);
    CHECK(gr_fnv1a64(GR_FNV_INIT, "a", 1) == 0xaf63dc4c8601ec8cull);
    CHECK(gr_fnv1a64(GR_FNV_INIT, "foobar", 6) == 0x85944171f73967e8ull);
    /* shard numbers computed by Python (json.dumps compact, FNV-1a 64, mod N + 1) */
    static const struct { const char *json; unsigned s2, s3, s7; } ids[] = {
        {"\"abc\"", 2, 2, 2}, {"7", 1, 3, 3}, {"\"app.log:1234:0\"", 1, 1, 1},
        {"\"h\xc3\xa9llo\"", 1, 3, 5}, {"0", 2, 3, 5}, {"123456789", 1, 1, 1}};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        jv id = jv_parse(ids[i].json);
        CHECK_MSG(gr_shard_of(id, 2) == ids[i].s2 && gr_shard_of(id, 3) == ids[i].s3 && gr_shard_of(id, 7) == ids[i].s7,
                  "id %s: %u %u %u", ids[i].json, gr_shard_of(id, 2), gr_shard_of(id, 3), gr_shard_of(id, 7));
        CHECK(gr_shard_of(id, 1) == 1);
        jv_free(id);
    }
    gr_shard s;
    gr_err err;
    CHECK(gr_shard_parse("2/3", &s, &err) == 0 && s.k == 2 && s.n == 3);
    CHECK(gr_shard_parse("1/1", &s, &err) == 0);
    const char *bad[] = {"0/3", "4/3", "1/0", "1", "1/", "/3", "a/3", "1/3x", "01/3", "1/1000001", " 1/3", "1/-3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK_MSG(gr_shard_parse(bad[i], &s, &err) == -1, "%s", bad[i]);
    /* every id in exactly one shard */
    for (unsigned n = 1; n <= 4; n++)
        for (int i = 0; i < 200; i++) {
            jv id = jv_number(i);
            int hits = 0;
            for (unsigned k = 1; k <= n; k++) hits += gr_shard_mine(&(gr_shard){k, n}, id);
            jv_free(id);
            CHECK(hits == 1);
        }
}

/* ---- plans --------------------------------------------------------------- */
typedef struct seen {
    gr_buf text;  /* "FILE|LINE|OFFSET|flags|TEXT\n" per line */
    int n;
} seen;

static int collect(void *ud, const gr_line *l, gr_err *err) {
    (void)err;
    seen *s = ud;
    const char *base = strrchr(l->seg->file, '/');
    gr_buf_printf(&s->text, "%s|%llu|%llu|%s%s|%.*s\n", base + 1, (unsigned long long)l->line,
                  (unsigned long long)l->offset, l->partial ? "P" : "", l->too_long ? "L" : "", (int)l->n, l->text);
    s->n++;
    return 0;
}

/* Plans log against *st, reads, updates *st; the lines seen in out. */
static int run_plan(const char *log, gr_cstate *st, const char *glob, seen *out, char *warning, gr_err *err) {
    gr_log_plan p;
    out->text.len = 0;
    out->n = 0;
    if (gr_log_plan_make(log, gr_cstate_find(st, log), glob, &p, err)) return -1;
    if (warning) snprintf(warning, 2300, "%s", p.warning);
    int rc = gr_log_plan_read(&p, collect, out, err);
    if (!rc) rc = gr_log_plan_state(&p, gr_cstate_get(st, log), err);
    gr_log_plan_free(&p);
    gr_buf_putc(&out->text, 0);
    out->text.len--;
    return rc;
}

TEST(plan_append_and_partial) {
    const char *log = path_in("a.log");
    gr_cstate st = {0};
    seen s = {0};
    gr_err err;
    write_file(log, "w", "one\r\ntwo\n\nthr");
    CHECK_MSG(run_plan(log, &st, NULL, &s, NULL, &err) == 0, "%s", err.msg);
    CHECK_STR(s.text.data, "a.log|1|0||one\na.log|2|5||two\na.log|3|9||\n");
    gr_cstate_log *l = gr_cstate_find(&st, log);
    CHECK(l && l->offset == 10 && l->line == 3 && l->fp_len == 10);
    /* nothing new: nothing read, the partial line stays */
    CHECK(run_plan(log, &st, NULL, &s, NULL, &err) == 0 && s.n == 0);
    write_file(log, "a", "ee\nfour\n");
    CHECK(run_plan(log, &st, NULL, &s, NULL, &err) == 0);
    CHECK_STR(s.text.data, "a.log|4|10||three\na.log|5|16||four\n");
    l = gr_cstate_find(&st, log);
    CHECK(l->offset == 21 && l->line == 5);
    gr_cstate_free(&st);
    gr_buf_free(&s.text);
    unlink(log);
}

TEST(plan_copytruncate) {
    const char *log = path_in("c.log"), *rot = path_in("c.log.1");
    gr_cstate st = {0};
    seen s = {0};
    gr_err err;
    write_file(log, "w", "a1\na2\n");
    CHECK(run_plan(log, &st, NULL, &s, NULL, &err) == 0 && s.n == 2);
    write_file(log, "a", "a3\npar");
    /* copytruncate: copy, then truncate in place and go on writing */
    char *old = read_all(log);
    write_file(rot, "w", old);
    free(old);
    write_file(log, "w", "b1\nb2 longer than the old content was\n");
    char warning[2300];
    CHECK_MSG(run_plan(log, &st, NULL, &s, warning, &err) == 0, "%s", err.msg);
    CHECK_MSG(warning[0] == 0, "%s", warning);
    CHECK_STR(s.text.data, "c.log.1|3|6||a3\nc.log.1|4|9|P|par\n"
                           "c.log|1|0||b1\nc.log|2|3||b2 longer than the old content was\n");
    CHECK(gr_cstate_find(&st, log)->gen == 1);
    /* truncated to something shorter than the offset, no copy: a warning, then from 0 */
    write_file(log, "w", "c1\n");
    unlink(rot);
    CHECK(run_plan(log, &st, NULL, &s, warning, &err) == 0);
    CHECK_MSG(strstr(warning, "truncated in place") && strstr(warning, "after byte 38 (line 2)"), "%s", warning);
    CHECK_STR(s.text.data, "c.log|1|0||c1\n");
    gr_cstate_free(&st);
    gr_buf_free(&s.text);
    unlink(log);
}

TEST(plan_rename_rotation) {
    const char *log = path_in("r.log"), *rot = path_in("r.log.1"), *rot2 = path_in("r.log-2026");
    gr_cstate st = {0};
    seen s = {0};
    gr_err err;
    char warning[2300];
    write_file(log, "w", "x1\n");
    CHECK(run_plan(log, &st, NULL, &s, NULL, &err) == 0 && s.n == 1);
    write_file(log, "a", "x2\n");
    CHECK(rename(log, rot) == 0);
    write_file(rot, "a", "x3\n"); /* the writer still had the old file open */
    write_file(log, "w", "y1\n");
    CHECK_MSG(run_plan(log, &st, NULL, &s, warning, &err) == 0, "%s", err.msg);
    CHECK_STR(s.text.data, "r.log.1|2|3||x2\nr.log.1|3|6||x3\nr.log|1|0||y1\n");
    CHECK(warning[0] == 0 && gr_cstate_find(&st, log)->gen == 1);
    /* the log gone between rotation and re-creation: the old tail, and the
     * entry follows the old file */
    write_file(log, "a", "y2\n");
    CHECK(rename(log, rot2) == 0);
    CHECK(run_plan(log, &st, path_in("r.log-*"), &s, warning, &err) == 0);
    CHECK_STR(s.text.data, "r.log-2026|2|3||y2\n");
    CHECK(gr_cstate_find(&st, log)->gen == 1); /* still the old file's */
    write_file(log, "w", "z1\n");
    CHECK(run_plan(log, &st, path_in("r.log-*"), &s, warning, &err) == 0);
    CHECK_STR(s.text.data, "r.log|1|0||z1\n");
    CHECK(gr_cstate_find(&st, log)->gen == 2);
    /* rotated away and deleted: a warning naming what was lost */
    write_file(log, "a", "z2\n");
    unlink(log);
    write_file(log, "w", "w1\n");
    CHECK(run_plan(log, &st, NULL, &s, warning, &err) == 0);
    CHECK_MSG(strstr(warning, "rotated") && strstr(warning, "after byte 3 (line 1)"), "%s", warning);
    CHECK_STR(s.text.data, "r.log|1|0||w1\n");
    /* no state entry and no file: an error */
    gr_cstate none = {0};
    CHECK(run_plan(path_in("nope.log"), &none, NULL, &s, NULL, &err) == -1 && strstr(err.msg, "nope.log"));
    gr_cstate_free(&st);
    gr_buf_free(&s.text);
    unlink(log);
    unlink(rot);
    unlink(rot2);
}

/* ---- the feed ------------------------------------------------------------ */
static char *feed_file(const char *log, const char *map, const gr_shard *shard, const char *done_file,
                       char **rejects_out, gr_feed_stats *fs) {
    gr_err err;
    gr_feed_opts fo = {.map = map, .shard = shard};
    gr_feed *f = gr_feed_new(&fo, &err);
    if (!f) return NULL;
    if (done_file) gr_feed_learn_done(f, done_file, 0, &err);
    gr_log_plan p;
    gr_log_plan_make(log, NULL, NULL, &p, &err);
    gr_writer_opts wo = {0};
    static char recs[512], rejs[512];
    snprintf(recs, sizeof recs, "%s/recs", dir);
    snprintf(rejs, sizeof rejs, "%s/rejs", dir);
    gr_writer *rw = gr_writer_open(recs, &wo, &err), *jw = gr_writer_open(rejs, &wo, &err);
    memset(fs, 0, sizeof *fs);
    int rc = gr_feed_log(f, &p, rw, jw, NULL, NULL, fs, &err);
    gr_writer_commit(rw, &err);
    gr_writer_commit(jw, &err);
    gr_log_plan_free(&p);
    gr_feed_free(f);
    if (rc) return NULL;
    *rejects_out = read_all(rejs);
    return read_all(recs);
}

/* The value of the jq-style path in every line of text, joined by spaces. */
static void field_list(const char *text, const char *k1, const char *k2, gr_buf *out) {
    out->len = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        jv v = jv_parse_sized(p, (int)(nl - p));
        jv x = jv_object_get(v, jv_string(k1));
        if (k2) x = jv_object_get(x, jv_string(k2));
        jv d = jv_dump_string(x, 0);
        gr_buf_printf(out, "%s%s", out->len ? " " : "", jv_string_value(d));
        jv_free(d);
        p = nl + 1;
    }
    gr_buf_putc(out, 0);
}

TEST(feed_records_and_rejects) {
    const char *log = path_in("f.log");
    write_file(log, "w",
               "{\"prompt\":\"hi\",\"response\":\"yo\"}\n"        /* 0 */
               "not json\n"                                        /* 32 */
               "\n"                                                /* 41 */
               "[1,2]\n"                                           /* 42 */
               "{\"id\":\"mine\",\"instruction\":\"I\",\"input\":\"x\",\"source\":\"theirs\"}\n" /* 48 */
               "{\"text\":\"no prompt\"}\n"                        /* 110 */
               "{\"prompt\":\"\xff\"}\n"                           /* 131 */
               "{\"prompt\":\"\\ud800\"}\n"                        /* 146 */
               "{\"prompt\":\"last\"}\n");                         /* 166 */
    gr_feed_stats fs;
    char *rej = NULL, *rec = feed_file(log, NULL, NULL, NULL, &rej, &fs);
    CHECK(rec && rej);
    gr_buf b = {0};
    field_list(rec, "id", NULL, &b);
    char want[1024];
    snprintf(want, sizeof want, "\"%s:0:0\" \"mine\" \"%s:0:166\"", log, log);
    CHECK_STR(b.data, want);
    field_list(rec, "source", "line", &b);
    CHECK_STR(b.data, "1 5 9");
    field_list(rec, "source", "offset", &b);
    CHECK_STR(b.data, "0 48 166");
    field_list(rej, "source", "line", &b);
    CHECK_STR(b.data, "2 4 6 7 8");
    field_list(rej, "reason", NULL, &b);
    CHECK_MSG(strstr(b.data, "\"not JSON: ") && strstr(b.data, "\"an array, not a JSON object") &&
              strstr(b.data, "neither instruction/input nor prompt") && strstr(b.data, "invalid UTF-8 at byte 11") &&
              strstr(b.data, "lone UTF-16 surrogate"), "%s", b.data);
    field_list(rej, "text", NULL, &b);
    CHECK(strncmp(b.data, "\"not json\" \"[1,2]\"", 18) == 0);
    CHECK(fs.lines == 9 && fs.blank == 1 && fs.records == 3 && fs.rejects == 5 && fs.dropped == 0);
    free(rec);
    free(rej);
    /* --map: several records from one line (index), empty, errors */
    write_file(log, "w",
               "{\"turns\":[\"a\",\"b\"]}\n{\"turns\":[]}\n{\"turns\":3}\n{\"turns\":[1]}\n");
    rec = feed_file(log, ".turns[] | if type == \"string\" then {prompt: .} else . end", NULL, NULL, &rej, &fs);
    CHECK(rec && rej);
    field_list(rec, "source", "index", &b);
    CHECK_STR(b.data, "0 1");
    field_list(rec, "id", NULL, &b);
    CHECK(strstr(b.data, ":0\" ") && strstr(b.data, ":0#1\""));
    field_list(rej, "reason", NULL, &b);
    CHECK_MSG(strstr(b.data, "--map: Cannot iterate over number") && strstr(b.data, "--map produced a number"), "%s", b.data);
    CHECK(fs.records == 2 && fs.dropped == 1 && fs.rejects == 2);
    free(rec);
    free(rej);
    gr_buf_free(&b);
    unlink(log);
}

TEST(feed_done_keys_and_shard) {
    const char *log = path_in("d.log");
    gr_buf t = {0};
    for (int i = 0; i < 30; i++) gr_buf_printf(&t, "{\"prompt\":\"p%d\"}\n", i);
    gr_buf_printf(&t, "junk %d\n", 1);
    write_file(log, "w", gr_buf_cstr(&t));
    gr_feed_stats fs;
    char *rej, *all = feed_file(log, NULL, NULL, NULL, &rej, &fs);
    CHECK(all && fs.records == 30 && fs.rejects == 1);
    /* a killed run wrote the first 10 verdicts and the reject: they are skipped */
    const char *done = path_in("done.jsonl");
    FILE *f = fopen(done, "w");
    int n = 0;
    for (const char *p = all; *p && n < 10; n++) {
        const char *nl = strchr(p, '\n');
        fprintf(f, "%.*s\n", (int)(nl - p), p);
        p = nl + 1;
    }
    fprintf(f, "%s", rej);
    fprintf(f, "{\"no\":\"source\"}\nnot even json\n");
    fclose(f);
    free(rej);
    char *rest = feed_file(log, NULL, NULL, done, &rej, &fs);
    CHECK(rest && fs.records == 20 && fs.done_before == 11 && fs.rejects == 0 && rej[0] == 0);
    CHECK(strcmp(rest, strstr(all, "\"p10\"") - 10) == 0);
    free(rest);
    free(rej);
    /* shards: disjoint, union the whole */
    for (unsigned nsh = 1; nsh <= 3; nsh++) {
        long total = 0, rejects = 0;
        gr_buf u = {0};
        for (unsigned k = 1; k <= nsh; k++) {
            gr_shard sh = {k, nsh};
            char *part = feed_file(log, NULL, &sh, NULL, &rej, &fs);
            CHECK(part);
            total += fs.records;
            rejects += fs.rejects;
            CHECK_MSG(fs.records + fs.rejects + fs.other_shard == 31, "%u/%u: %ld %ld %ld %ld", k, nsh, fs.records, fs.rejects, fs.other_shard, fs.done_before);
            gr_buf_append(&u, part, strlen(part));
            free(part);
            free(rej);
        }
        CHECK(total == 30 && rejects == 1 && u.len == strlen(all));
        gr_buf_free(&u);
    }
    free(all);
    gr_buf_free(&t);
    unlink(log);
    unlink(done);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    RUN(state_roundtrip);
    RUN(state_parse_errors);
    RUN(state_save_load);
    RUN(fnv_and_shard);
    RUN(plan_append_and_partial);
    RUN(plan_copytruncate);
    RUN(plan_rename_rotation);
    RUN(feed_records_and_rejects);
    RUN(feed_done_keys_and_shard);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return TEST_EXIT();
}
