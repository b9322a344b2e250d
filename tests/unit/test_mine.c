/* gr-mine's reading of answers as the mining script reads them (Python re). */
#include "test.h"
#include "gr_io.h"
#include "mine_answers.h"

static const char *fixture(const char *name) {
    static char buf[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(buf, sizeof buf, "%s/testdata/mine/%s", root ? root : ".", name);
    return buf;
}

/* Code points whose class is easy to get wrong: Python's \w is isalnum() or
 * "_" (so digits of every script, superscripts, Roman numerals, but not
 * combining marks), its \s is isspace() (so U+001C..U+001F and U+0085, but not
 * U+200B or U+FEFF). */
TEST(pyre_classes) {
    static const struct { uint32_t cp; int cls; } cases[] = {
        {'a', GR_PYRE_WORD},    {'Z', GR_PYRE_WORD},     {'7', GR_PYRE_WORD},     {'_', GR_PYRE_WORD},
        {'-', 0},               {':', 0},                {'*', 0},                {' ', GR_PYRE_SPACE},
        {'\n', GR_PYRE_SPACE},  {0x0B, GR_PYRE_SPACE},   {0x1C, GR_PYRE_SPACE},   {0x1F, GR_PYRE_SPACE},
        {0x85, GR_PYRE_SPACE},  {0xA0, GR_PYRE_SPACE},   {0x2028, GR_PYRE_SPACE}, {0x3000, GR_PYRE_SPACE},
        {0x200B, 0},            {0xFEFF, 0},             {0x0301, 0},             {0xE9, GR_PYRE_WORD},
        {0xB2, GR_PYRE_WORD},   {0xBD, GR_PYRE_WORD},    {0x2167, GR_PYRE_WORD},  {0xFF12, GR_PYRE_WORD},
        {0x4E00, GR_PYRE_WORD}, {0x1D400, GR_PYRE_WORD}, {0x1F600, 0},            {0x10FFFF, 0},
        {0x110000, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK_MSG(gr_pyre_class(cases[i].cp) == cases[i].cls, "U+%04X: class %d, want %d", (unsigned)cases[i].cp,
                  gr_pyre_class(cases[i].cp), cases[i].cls);
}

/* The first match of `KEY:\s*(\w+)`, against what Python's re found in the
 * same texts (testdata/mine/answers-cases.jsonl, scripts/make-mine-fixture.py). */
TEST(re_word_matches_python) {
    static const char *keys[] = {"Request", "Completion", "Response", "AI assistant"};
    gr_err err;
    gr_reader *r = gr_reader_open(fixture("answers-cases.jsonl"), NULL, &err);
    CHECK_MSG(r, "%s", err.msg);
    jv rec;
    int k, n = 0, found = 0;
    while ((k = gr_reader_next(r, &rec, &err)) == 1) {
        jv text = jv_object_get(jv_copy(rec), jv_string("text"));
        jv words = jv_object_get(jv_copy(rec), jv_string("words"));
        const char *s = jv_string_value(text);
        size_t len = (size_t)jv_string_length_bytes(jv_copy(text));
        for (int i = 0; i < 4; i++) {
            char key[32];
            snprintf(key, sizeof key, "%s:", keys[i]);
            jv want = jv_object_get(jv_copy(words), jv_string(keys[i]));
            size_t off = 0, wl = 0;
            int got = gr_mine_re_word(s, len, key, &off, &wl);
            int ok = jv_get_kind(want) == JV_KIND_NULL
                         ? !got
                         : got && (size_t)jv_string_length_bytes(jv_copy(want)) == wl &&
                               memcmp(jv_string_value(want), s + off, wl) == 0;
            if (!ok) {
                jv d = jv_dump_string(jv_copy(text), 0);
                printf("not ok %s: line %ld, key %s: got %s%.*s%s for %s\n", test_name_, gr_reader_line(r), key,
                       got ? "\"" : "", got ? (int)wl : 4, got ? s + off : "none", got ? "\"" : "",
                       jv_string_value(d));
                jv_free(d);
                test_failed_++;
            }
            found += got;
            jv_free(want);
        }
        n++;
        jv_free(words);
        jv_free(text);
        jv_free(rec);
        if (test_failed_ > 5) break;
    }
    gr_reader_close(r);
    CHECK_MSG(k >= 0, "%s", err.msg);
    CHECK(n > 400 && found > 200);
}

int main(void) {
    RUN(pyre_classes);
    RUN(re_word_matches_python);
    return TEST_EXIT();
}
