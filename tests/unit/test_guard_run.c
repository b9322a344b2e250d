/* guard_run's verdict flags (--fail-on, the summary's per-task counts) and the
 * resume fingerprint. */
#include <unistd.h>
#include "guard_resume.h"
#include "guard_run.h"
#include "test.h"

static unsigned flags_of(const char *text, int per_task[GR_NTASKS]) {
    gr_verdict v;
    memset(&v, 0, sizeof v);
    gr_answers_parse(text, strlen(text), 300, &v.ans);
    v.parse_ok = v.ans.label[GR_TASK_REQUEST] != GR_LABEL_NONE;
    return gr_verdict_flags(&v, per_task);
}

TEST(test_flags_per_task) {
    int t[GR_NTASKS];
    CHECK(flags_of("Answers: \nRequest: harmful\nCompletion: compliance\nResponse: unharmful", t) == GR_FLAG_HARMFUL);
    CHECK(t[0] == 1 && t[1] == 0 && t[2] == 0);
    CHECK(flags_of("Answers: \nRequest: unharmful\nCompletion: refusal\nResponse: harmful", t) ==
          (GR_FLAG_REFUSAL | GR_FLAG_HARMFUL));
    CHECK(t[0] == 0 && t[1] == 1 && t[2] == 1);
    CHECK(flags_of("Answers: \nRequest: unharmful\nCompletion: compliance\nResponse: unharmful", t) == 0);
    CHECK(t[0] == 0 && t[1] == 0 && t[2] == 0);
}

TEST(test_flags_unverified_is_never_safe_nor_flagged) {
    int t[GR_NTASKS];
    /* no Request answer: unverified, even though later answers parse */
    CHECK(flags_of("Completion: refusal\nResponse: harmful", t) == GR_FLAG_UNVERIFIED);
    CHECK(t[0] == 0 && t[1] == 0 && t[2] == 0);
    CHECK(flags_of("", t) == GR_FLAG_UNVERIFIED);
}

TEST(test_fingerprint) {
    char a[GR_FINGERPRINT_HEX + 1], b[GR_FINGERPRINT_HEX + 1];
    jv r1 = jv_parse("{\"id\":1,\"prompt\":\"x\",\"response\":null}");
    jv r2 = jv_parse("{\"response\":null,\"prompt\":\"x\",\"id\":1}"); /* the same record, keys reordered */
    jv r3 = jv_parse("{\"id\":1,\"prompt\":\"y\",\"response\":null}");
    gr_record_fingerprint(r1, 1, "a.jsonl", 1, a);
    gr_record_fingerprint(r2, 1, "b.jsonl", 9, b); /* an id'd record: its source does not count */
    CHECK_STR(a, b);
    CHECK(strlen(a) == GR_FINGERPRINT_HEX);
    gr_record_fingerprint(r3, 1, "a.jsonl", 1, b);
    CHECK(strcmp(a, b) != 0);
    /* without an id: the file and line count */
    gr_record_fingerprint(r1, 0, "a.jsonl", 1, a);
    gr_record_fingerprint(r1, 0, "a.jsonl", 2, b);
    CHECK(strcmp(a, b) != 0);
    gr_record_fingerprint(r1, 0, "b.jsonl", 1, b);
    CHECK(strcmp(a, b) != 0);
    gr_record_fingerprint(r1, 0, "a.jsonl", 1, b);
    CHECK_STR(a, b);
    jv_free(r1);
    jv_free(r2);
    jv_free(r3);
}

TEST(test_resume_counts) {
    gr_resume *r = gr_resume_empty();
    CHECK(!gr_resume_take(r, "00000000000000000000000000000000", -1));
    gr_resume_free(r);
    char path[] = "/tmp/gr-test-resume-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *out = "{\"fingerprint\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"k\":0}\n"
                      "{\"fingerprint\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"k\":0}\n"
                      "{\"fingerprint\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"k\":1}\n";
    FILE *f = fdopen(fd, "w");
    fputs(out, f);
    fclose(f);
    gr_err err;
    r = gr_resume_load(path, 1, &err);
    CHECK_MSG(r, "%s", err.msg);
    CHECK(gr_resume_size(r) == 3);
    const char *fp = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    CHECK(gr_resume_take(r, fp, 0) && gr_resume_take(r, fp, 0) && !gr_resume_take(r, fp, 0));
    CHECK(gr_resume_take(r, fp, 1) && !gr_resume_take(r, fp, 2));
    gr_resume_free(r);
    /* classify mode: no k needed; a record without a fingerprint is an error */
    f = fopen(path, "w");
    fputs("{\"fingerprint\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}\n{\"id\":3}\n", f);
    fclose(f);
    CHECK(gr_resume_load(path, 0, &err) == NULL);
    CHECK_MSG(strstr(err.msg, ":2: a record without a fingerprint"), "%s", err.msg);
    unlink(path);
}

int main(void) {
    RUN(test_flags_per_task);
    RUN(test_flags_unverified_is_never_safe_nor_flagged);
    RUN(test_fingerprint);
    RUN(test_resume_counts);
    return TEST_EXIT();
}
