/* Record reader and writer. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include "test.h"
#include "gr_io.h"
#include "gr_labels.h"
#include "gr_utf8.h"

static char tmpdir[] = "/tmp/gr-test-io-XXXXXX";

static const char *path_of(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *name, const void *data, size_t n) {
    FILE *f = fopen(path_of(name), "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

static void write_zstd(const char *name, const char *text) {
    size_t n = strlen(text), cap = ZSTD_compressBound(n);
    void *z = malloc(cap);
    size_t k = ZSTD_compress(z, cap, text, n, 3);
    write_file(name, z, k);
    free(z);
}

/* Reads every record of a file: count, last error (or ""), and the value of
 * field "a" of each record concatenated as text. */
typedef struct {
    int n, rc;
    char err[2048];
    char joined[4096];
    long lines[64];
} readall;

static readall read_all(const char *name, const gr_reader_opts *o) {
    readall ra = {0};
    gr_err err = {{0}};
    gr_reader *r = gr_reader_open(name[0] == '-' ? name : path_of(name), o, &err);
    if (!r) {
        ra.rc = -1;
        snprintf(ra.err, sizeof ra.err, "%s", err.msg);
        return ra;
    }
    jv rec;
    int k;
    while ((k = gr_reader_next(r, &rec, &err)) > 0) {
        jv a = jv_object_get(jv_copy(rec), jv_string("a"));
        if (jv_get_kind(a) == JV_KIND_STRING) strncat(ra.joined, jv_string_value(a), sizeof ra.joined - strlen(ra.joined) - 1);
        else if (jv_get_kind(a) == JV_KIND_NUMBER) {
            char num[32];
            snprintf(num, sizeof num, "%g,", jv_number_value(a));
            strncat(ra.joined, num, sizeof ra.joined - strlen(ra.joined) - 1);
        }
        jv_free(a);
        jv_free(rec);
        if (ra.n < 64) ra.lines[ra.n] = gr_reader_line(r);
        ra.n++;
    }
    ra.rc = k;
    if (k < 0) snprintf(ra.err, sizeof ra.err, "%s", err.msg);
    gr_reader_close(r);
    return ra;
}

TEST(reads_jsonl) {
    const char *t = "{\"a\":\"x\"}\n\n{\"a\":\"y\"}\n   \n{\"a\":\"z\"}";
    write_file("a.jsonl", t, strlen(t));
    readall ra = read_all("a.jsonl", NULL);
    CHECK(ra.rc == 0);
    CHECK(ra.n == 3);
    CHECK_STR(ra.joined, "xyz");
    CHECK(ra.lines[0] == 1 && ra.lines[1] == 3 && ra.lines[2] == 5);
}

TEST(reads_crlf_and_bom) {
    const char *t = "\xEF\xBB\xBF{\"a\":\"x\"}\r\n{\"a\":\"y\"}\r\n";
    write_file("b.jsonl", t, strlen(t));
    readall ra = read_all("b.jsonl", NULL);
    CHECK(ra.rc == 0);
    CHECK_STR(ra.joined, "xy");
}

TEST(reads_json_array) {
    const char *t = "[\n  {\n    \"a\": \"x\",\n    \"b\": [1, {\"c\": \"]}\"}]\n  },\n  {\"a\": \"y\"}\n]\n";
    write_file("c.json", t, strlen(t));
    readall ra = read_all("c.json", NULL);
    CHECK_MSG(ra.rc == 0, "%s", ra.err);
    CHECK(ra.n == 2);
    CHECK_STR(ra.joined, "xy");
    CHECK(ra.lines[0] == 2 && ra.lines[1] == 6);
}

TEST(reads_empty_inputs) {
    write_file("e1.jsonl", "", 0);
    readall ra = read_all("e1.jsonl", NULL);
    CHECK(ra.rc == 0 && ra.n == 0);
    write_file("e2.json", "[ ]", 3);
    ra = read_all("e2.json", NULL);
    CHECK(ra.rc == 0 && ra.n == 0);
    write_file("e3.jsonl", "\n\n  \n", 5);
    ra = read_all("e3.jsonl", NULL);
    CHECK(ra.rc == 0 && ra.n == 0);
}

TEST(reads_zstd_by_magic) {
    write_zstd("d.dat", "{\"a\":\"p\"}\n{\"a\":\"q\"}\n");
    readall ra = read_all("d.dat", NULL);
    CHECK_MSG(ra.rc == 0, "%s", ra.err);
    CHECK_STR(ra.joined, "pq");
    write_zstd("d2.json.zst", "[{\"a\":\"r\"},{\"a\":\"s\"}]");
    ra = read_all("d2.json.zst", NULL);
    CHECK_MSG(ra.rc == 0, "%s", ra.err);
    CHECK_STR(ra.joined, "rs");
}

TEST(truncated_zstd_is_an_error) {
    char big[20000];
    size_t n = 0;
    for (int i = 0; n < sizeof big - 64; i++) n += (size_t)snprintf(big + n, sizeof big - n, "{\"a\":%d}\n", i);
    size_t cap = ZSTD_compressBound(n);
    char *z = malloc(cap);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    size_t k = ZSTD_compress2(cc, z, cap, big, n);
    ZSTD_freeCCtx(cc);
    write_file("t.zst", z, k - 7);
    readall ra = read_all("t.zst", NULL);
    CHECK(ra.rc == -1);
    CHECK_MSG(strstr(ra.err, "truncated zstd frame") != NULL, "%s", ra.err);
    z[k / 2] ^= 0x55; /* corrupt the middle */
    z[k / 2 + 1] ^= 0x55;
    write_file("c.zst", z, k);
    ra = read_all("c.zst", NULL);
    CHECK(ra.rc == -1);
    CHECK_MSG(strstr(ra.err, "zstd") != NULL, "%s", ra.err);
    free(z);
}

TEST(reads_stdin) {
    const char *t = "{\"a\":\"s\"}\n{\"a\":\"t\"}\n";
    write_file("in.jsonl", t, strlen(t));
    CHECK(freopen(path_of("in.jsonl"), "rb", stdin) != NULL);
    readall ra = read_all("-", NULL);
    CHECK(ra.rc == 0);
    CHECK_STR(ra.joined, "st");
}

TEST(reads_very_long_lines) {
    size_t n = 8u << 20;
    char *t = malloc(n + 64);
    size_t k = (size_t)sprintf(t, "{\"b\":\"");
    memset(t + k, 'x', n);
    k += n;
    k += (size_t)sprintf(t + k, "\",\"a\":\"L\"}\n{\"a\":\"M\"}\n");
    write_file("long.jsonl", t, k);
    free(t);
    readall ra = read_all("long.jsonl", NULL);
    CHECK_MSG(ra.rc == 0, "%s", ra.err);
    CHECK_STR(ra.joined, "LM");
}

TEST(malformed_json_names_the_line) {
    const char *t = "{\"a\":\"x\"}\n{\"a\":\"y\"}\n{\"a\": 1,,}\n{\"a\":\"z\"}\n";
    write_file("m.jsonl", t, strlen(t));
    readall ra = read_all("m.jsonl", NULL);
    CHECK(ra.rc == -1 && ra.n == 2);
    CHECK_MSG(strstr(ra.err, "m.jsonl:3: malformed JSON") != NULL, "%s", ra.err);
    const char *t2 = "{\"a\":\"x\"}\n[1,2]\n";
    write_file("m2.jsonl", t2, strlen(t2));
    ra = read_all("m2.jsonl", NULL);
    CHECK_MSG(ra.rc == -1 && strstr(ra.err, "m2.jsonl:2: not a JSON object") != NULL, "%s", ra.err);
    const char *t3 = "[{\"a\":\"x\"}\n,\n 3]";
    write_file("m3.json", t3, strlen(t3));
    ra = read_all("m3.json", NULL);
    CHECK_MSG(ra.rc == -1 && strstr(ra.err, "m3.json:3: array element is not a JSON object") != NULL, "%s", ra.err);
    const char *t4 = "[{\"a\":\"x\"}";
    write_file("m4.json", t4, strlen(t4));
    ra = read_all("m4.json", NULL);
    CHECK_MSG(ra.rc == -1 && strstr(ra.err, "unterminated JSON array") != NULL, "%s", ra.err);
}

TEST(torn_last_line_is_an_error) {
    const char *t = "{\"a\":\"x\"}\n{\"a\":\"y\"}\n{\"a\":\"tor";
    write_file("torn.jsonl", t, strlen(t));
    readall ra = read_all("torn.jsonl", NULL);
    CHECK(ra.rc == -1 && ra.n == 2);
    CHECK_MSG(strstr(ra.err, "torn.jsonl:3: record is cut off") != NULL, "%s", ra.err);
    const char *t2 = "{\"a\":\"x\n{\"a\":\"y\"}\n";
    write_file("torn2.jsonl", t2, strlen(t2));
    ra = read_all("torn2.jsonl", NULL);
    CHECK_MSG(ra.rc == -1 && strstr(ra.err, "torn2.jsonl:1: unterminated string") != NULL, "%s", ra.err);
}

TEST(invalid_utf8_is_reported_or_replaced) {
    const char *t = "{\"a\":\"ok\"}\n{\"a\":\"b\xC3\x28z\"}\n";
    write_file("u.jsonl", t, strlen(t));
    readall ra = read_all("u.jsonl", NULL);
    CHECK(ra.rc == -1 && ra.n == 1);
    CHECK_MSG(strstr(ra.err, "u.jsonl:2: invalid UTF-8") != NULL, "%s", ra.err);
    gr_reader_opts o = {.replace_invalid_utf8 = 1};
    ra = read_all("u.jsonl", &o);
    CHECK(ra.rc == 0);
    CHECK_STR(ra.joined, "okb\xEF\xBF\xBD(z");
    const char *s = "{\"a\":\"x\\ud800y\"}\n{\"a\":\"\\ud83d\\ude00\"}\n";
    write_file("s.jsonl", s, strlen(s));
    ra = read_all("s.jsonl", NULL);
    CHECK_MSG(ra.rc == -1 && strstr(ra.err, "s.jsonl:1: a lone UTF-16 surrogate") != NULL, "%s", ra.err);
    ra = read_all("s.jsonl", &o);
    CHECK(ra.rc == 0);
    CHECK_STR(ra.joined, "x\xEF\xBF\xBDy\xF0\x9F\x98\x80");
}

TEST(map_transforms_records) {
    const char *t = "{\"req\":{\"text\":\"q1\"},\"n\":2}\n{\"req\":{\"text\":\"q2\"},\"n\":0}\n{\"req\":{\"text\":\"q3\"},\"n\":1}\n";
    write_file("map.jsonl", t, strlen(t));
    gr_reader_opts o = {.map = "select(.n > 0) | {a: .req.text}"};
    readall ra = read_all("map.jsonl", &o);
    CHECK_MSG(ra.rc == 0, "%s", ra.err);
    CHECK_STR(ra.joined, "q1q3");
    CHECK(ra.lines[0] == 1 && ra.lines[1] == 3);
    gr_reader_opts o2 = {.map = "{a: .req.text}, {a: \"+\"}"};
    ra = read_all("map.jsonl", &o2);
    CHECK_STR(ra.joined, "q1+q2+q3+");
    gr_reader_opts o3 = {.map = "if .n == 0 then error(\"no n\") else {a: \"k\"} end"};
    ra = read_all("map.jsonl", &o3);
    CHECK_MSG(ra.rc == -1 && strstr(ra.err, "map.jsonl:2: --map: no n") != NULL, "%s", ra.err);
    gr_reader_opts o4 = {.map = ".n"};
    ra = read_all("map.jsonl", &o4);
    CHECK_MSG(ra.rc == -1 && strstr(ra.err, "map.jsonl:1: --map produced a number") != NULL, "%s", ra.err);
}

TEST(map_compile_errors) {
    gr_err err = {{0}};
    CHECK(gr_map_check("{a: .b}", &err) == 0);
    CHECK(gr_map_check("{a: .b", &err) == -1);
    CHECK_MSG(strncmp(err.msg, "--map: ", 7) == 0 && strlen(err.msg) > 10, "%s", err.msg);
    CHECK(gr_map_check("nosuchfunction(1)", &err) == -1);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int count_temps(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -a %s | grep -c '\\.tmp\\.' > %s/count 2>/dev/null", tmpdir, tmpdir);
    if (system(cmd)) { /* grep exits 1 on zero matches */ }
    FILE *f = fopen(path_of("count"), "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = -1;
        fclose(f);
    }
    return n;
}

TEST(writer_is_atomic) {
    gr_err err = {{0}};
    const char *p = path_of("out.jsonl");
    gr_writer *w = gr_writer_open(p, NULL, &err);
    CHECK(w != NULL);
    jv r = jv_object_set(jv_object(), jv_string("a"), jv_string("w1"));
    CHECK(gr_writer_put(w, r, &err) == 0);
    CHECK(gr_writer_flush(w, &err) == 0);
    CHECK(!exists(p)); /* nothing under the final name before commit */
    CHECK(count_temps() == 1);
    CHECK(gr_writer_commit(w, &err) == 0);
    CHECK(exists(p));
    CHECK(count_temps() == 0);
    readall ra = read_all("out.jsonl", NULL);
    CHECK_STR(ra.joined, "w1");
    /* an aborted run leaves the previous file untouched */
    w = gr_writer_open(p, NULL, &err);
    gr_writer_put(w, jv_object_set(jv_object(), jv_string("a"), jv_string("w2")), &err);
    gr_writer_abort(w);
    ra = read_all("out.jsonl", NULL);
    CHECK_STR(ra.joined, "w1");
    CHECK(count_temps() == 0);
}

TEST(writer_zstd_roundtrip) {
    gr_err err = {{0}};
    gr_writer *w = gr_writer_open(path_of("out.jsonl.zst"), NULL, &err);
    CHECK(w != NULL);
    for (int i = 0; i < 1000; i++) gr_writer_put(w, jv_object_set(jv_object(), jv_string("a"), jv_number(i)), &err);
    CHECK(gr_writer_commit(w, &err) == 0);
    FILE *f = fopen(path_of("out.jsonl.zst"), "rb");
    unsigned char m[4] = {0};
    CHECK(fread(m, 1, 4, f) == 4);
    fclose(f);
    CHECK(m[0] == 0x28 && m[1] == 0xB5 && m[2] == 0x2F && m[3] == 0xFD);
    readall ra = read_all("out.jsonl.zst", NULL);
    CHECK(ra.rc == 0 && ra.n == 1000);
    gr_writer_opts o = {.zstd = 1};
    w = gr_writer_open(path_of("forced.jsonl"), &o, &err);
    gr_writer_put(w, jv_object_set(jv_object(), jv_string("a"), jv_string("z")), &err);
    CHECK(gr_writer_commit(w, &err) == 0);
    ra = read_all("forced.jsonl", NULL);
    CHECK_STR(ra.joined, "z");
    gr_writer_opts bad = {.append = 1};
    CHECK(gr_writer_open(path_of("x.jsonl.zst"), &bad, &err) == NULL);
}

TEST(writer_append_and_torn_tail) {
    gr_err err = {{0}};
    const char *p = path_of("app.jsonl");
    write_file("app.jsonl", "{\"a\":\"1\"}\n{\"a\":\"2", 18);
    size_t cut = 0;
    CHECK(gr_jsonl_cut_torn_tail(p, &cut, &err) == 0);
    CHECK(cut == 8);
    gr_writer_opts o = {.append = 1};
    gr_writer *w = gr_writer_open(p, &o, &err);
    CHECK(w != NULL);
    gr_writer_put(w, jv_object_set(jv_object(), jv_string("a"), jv_string("3")), &err);
    CHECK(gr_writer_commit(w, &err) == 0);
    readall ra = read_all("app.jsonl", NULL);
    CHECK(ra.rc == 0);
    CHECK_STR(ra.joined, "13");
    CHECK(gr_jsonl_cut_torn_tail(p, &cut, &err) == 0 && cut == 0);
    CHECK(gr_jsonl_cut_torn_tail(path_of("absent.jsonl"), &cut, &err) == 0);
}

TEST(large_array_streams) {
    /* 200k elements, read one at a time */
    FILE *f = fopen(path_of("big.json"), "wb");
    fputs("[", f);
    for (int i = 0; i < 200000; i++) fprintf(f, "%s{\"a\": %d, \"pad\": \"%064d\"}", i ? ",\n" : "", i, i);
    fputs("]", f);
    fclose(f);
    gr_err err = {{0}};
    gr_reader *r = gr_reader_open(path_of("big.json"), NULL, &err);
    jv rec;
    long n = 0, sum = 0;
    while (gr_reader_next(r, &rec, &err) > 0) {
        jv a = jv_object_get(rec, jv_string("a"));
        sum += (long)jv_number_value(a);
        jv_free(a);
        n++;
    }
    CHECK(n == 200000);
    CHECK(sum == 199999L * 200000L / 2);
    CHECK(gr_reader_line(r) == 200000);
    gr_reader_close(r);
}

TEST(utf8_helpers) {
    CHECK(gr_utf8_check("abc", 3) == 3);
    CHECK(gr_utf8_check("a\xC0\x80", 3) == 1);       /* overlong */
    CHECK(gr_utf8_check("\xED\xA0\x80", 3) == 0);     /* surrogate */
    CHECK(gr_utf8_check("\xF4\x90\x80\x80", 4) == 0); /* > U+10FFFF */
    const char *s = "h\xC3\xA9llo\xF0\x9F\x98\x80!";
    size_t n = strlen(s);
    CHECK(gr_utf8_tail(s, n, 2) == n - 5);
    CHECK(gr_utf8_tail(s, n, 100) == 0);
    char out[4];
    CHECK(gr_utf8_encode(0x1F600, out) == 4 && memcmp(out, "\xF0\x9F\x98\x80", 4) == 0);
}

TEST(answer_parsing_follows_python_re) {
    const char *t = "...\nAnswers: \nRequest: harmful\nCompletion: refusal\nResponse: unharmful\n";
    gr_answers a;
    gr_answers_parse(t, strlen(t), 300, &a);
    CHECK(a.label[GR_TASK_REQUEST] == GR_LABEL_HARMFUL);
    CHECK(a.label[GR_TASK_COMPLETION] == GR_LABEL_REFUSAL);
    CHECK(a.label[GR_TASK_RESPONSE] == GR_LABEL_UNHARMFUL);
    /* case-insensitive, Unicode whitespace, Python's extra case folds */
    const char *u = "REQUEST:\xC2\xA0\t UNHARMFUL; reque\xC5\xBFt:harmful";
    CHECK(gr_answer_find(u, strlen(u), GR_TASK_REQUEST) == GR_LABEL_UNHARMFUL);
    CHECK(gr_answer_find(u + 22, strlen(u + 22), GR_TASK_REQUEST) == GR_LABEL_HARMFUL);
    const char *c = "Complet\xC4\xB1on: Compl\xC4\xB0" "ance";
    CHECK(gr_answer_find(c, strlen(c), GR_TASK_COMPLETION) == GR_LABEL_COMPLIANCE);
    /* only the tail is read: an early decoy is not */
    char buf[1000];
    snprintf(buf, sizeof buf, "Request: harmful %0400d Request: none", 0);
    gr_answers_parse(buf, strlen(buf), 300, &a);
    CHECK(a.label[GR_TASK_REQUEST] == GR_LABEL_NONE);
    gr_answers_parse(buf, strlen(buf), 0, &a);
    CHECK(a.label[GR_TASK_REQUEST] == GR_LABEL_HARMFUL);
    CHECK(gr_task_from_name("prompt") == GR_TASK_REQUEST && gr_task_from_name("refusal") == GR_TASK_COMPLETION);
    CHECK(gr_task_from_name("toxicity") == -1);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 1;
    RUN(reads_jsonl);
    RUN(reads_crlf_and_bom);
    RUN(reads_json_array);
    RUN(reads_empty_inputs);
    RUN(reads_zstd_by_magic);
    RUN(truncated_zstd_is_an_error);
    RUN(reads_stdin);
    RUN(reads_very_long_lines);
    RUN(malformed_json_names_the_line);
    RUN(torn_last_line_is_an_error);
    RUN(invalid_utf8_is_reported_or_replaced);
    RUN(map_transforms_records);
    RUN(map_compile_errors);
    RUN(writer_is_atomic);
    RUN(writer_zstd_roundtrip);
    RUN(writer_append_and_torn_tail);
    RUN(large_array_streams);
    RUN(utf8_helpers);
    RUN(answer_parsing_follows_python_re);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) { }
    return TEST_EXIT();
}
