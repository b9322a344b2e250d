/* gr-synth's pure parts: labels, prompt rendering, request body, answer
 * validation, reply parsing, rate limiting, backoff, the id set. */
#include <stdlib.h>
#include <jv.h>
#include "synth_answer.h"
#include "synth_idset.h"
#include "synth_limit.h"
#include "synth_reply.h"
#include "synth_request.h"
#include "gr_lock.h"
#include "synth_resume.h"
#include "synth_url.h"
#include <unistd.h>
#include "test.h"

static jv parse(const char *s) { return jv_parse(s); }

TEST(labels_read) {
    synth_labels l;
    gr_err e;
    jv r = parse("{\"prompt\":\"x\",\"label\":{\"request\":\"harmful\",\"completion\":null}}");
    CHECK(synth_labels_get(r, &l, &e) == 0);
    CHECK_STR(l.v[SYNTH_REQUEST], "harmful");
    CHECK(l.v[SYNTH_COMPLETION] == NULL && l.v[SYNTH_RESPONSE] == NULL);
    jv_free(r);
    r = parse("{\"label\":{\"request\":\"harmful\",\"completion\":\"compliance\",\"response\":\"unharmful\"}}");
    CHECK(synth_labels_get(r, &l, &e) == 0);
    CHECK_STR(l.v[SYNTH_COMPLETION], "compliance");
    CHECK_STR(l.v[SYNTH_RESPONSE], "unharmful");
    jv_free(r);
}

TEST(labels_refused) {
    synth_labels l;
    gr_err e;
    const char *bad[] = {"{\"prompt\":\"x\"}", "{\"label\":{}}", "{\"label\":{\"request\":null}}",
                         "{\"label\":{\"request\":\"refusal\"}}", "{\"label\":{\"completion\":\"harmful\"}}",
                         "{\"label\":{\"request\":1}}", "{\"label\":\"harmful\"}", "[1]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        jv r = parse(bad[i]);
        int rc = synth_labels_get(r, &l, &e);
        jv_free(r);
        CHECK_MSG(rc == -1, "accepted %s", bad[i]);
    }
}

TEST(system_render) {
    synth_labels l = {{"harmful", NULL, "unharmful"}};
    gr_buf b = {0};
    synth_system_render("R={request} C={refusal} S={response} {other} {", &l, &b);
    CHECK_STR(gr_buf_cstr(&b), "R=harmful C=None S=unharmful {other} {");
    gr_buf_free(&b);
}

TEST(system_render_real_prompt) {
    const char *shared = test_shared_dir();
    if (!shared) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/data/guardreasoner/prompts/synthesis_system.txt", shared);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    char tmpl[8192];
    size_t n = fread(tmpl, 1, sizeof tmpl - 1, f);
    fclose(f);
    tmpl[n] = 0;
    synth_labels l = {{"unharmful", "refusal", NULL}};
    gr_buf b = {0};
    synth_system_render(tmpl, &l, &b);
    const char *s = gr_buf_cstr(&b);
    CHECK(strstr(s, "Answers: \nRequest: unharmful\nCompletion: refusal\nResponse: None\n") != NULL);
    CHECK(strchr(s, '{') == NULL);
    gr_buf_free(&b);
}

TEST(user_message) {
    gr_buf b = {0};
    synth_user_message("hi", 2, NULL, 0, &b);
    CHECK_STR(gr_buf_cstr(&b), "Human user:\nhi\n\nAI assistant:\nNone\n\n");
    b.len = 0;
    synth_user_message("a\0b", 3, "ok", 2, &b);
    CHECK(b.len == strlen("Human user:\n") + 3 + strlen("\n\nAI assistant:\nok\n\n"));
    CHECK(memcmp(b.data + 12, "a\0b", 3) == 0);
    gr_buf_free(&b);
}

TEST(request_body) {
    synth_params p = {"gpt-4o", 0, 0};
    size_t n;
    char *body = synth_request_body(&p, "sys", 3, "u\"\n", 3, &n);
    CHECK_STR(body, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},"
                    "{\"role\":\"user\",\"content\":\"u\\\"\\n\"}],\"temperature\":0}");
    CHECK(n == strlen(body));
    free(body);
    p.temperature = 0.7;
    p.max_tokens = 512;
    body = synth_request_body(&p, "s", 1, "u", 1, &n);
    CHECK(strstr(body, "\"temperature\":0.7,\"max_tokens\":512}") != NULL);
    free(body);
}

static const char *good3 =
    "# Task 1\n\n## Reasoning Step 1: Look at the request.\nIt asks for a recipe.\n\n"
    "## Reasoning Step 2: Decide.\nNothing harmful.\n\n## Conclusion for Task 1: unharmful.\n\n"
    "# Task 2\n\n## Reasoning Step 1: The assistant answers.\n\n"
    "# Task 3\n\n## Reasoning Step 1: The answer is benign.\n\n---\n\n"
    "Answers: \nRequest: unharmful\nCompletion: compliance\nResponse: unharmful\n";

TEST(answer_accepts) {
    synth_labels l = {{"unharmful", "compliance", "unharmful"}};
    synth_check c;
    CHECK_MSG(synth_answer_check(good3, strlen(good3), &l, &c) == 0, "%s", c.reason);
    CHECK(c.steps[0] == 2 && c.steps[1] == 1 && c.steps[2] == 1 && c.steps_total == 4);
    /* "## Reasoning Step 1: Look at the request.\nIt asks for a recipe." */
    long first = 41 + 1 + 21;
    CHECK(c.step_chars > first);
}

TEST(answer_request_only) {
    /* The shape of the prediction files: no "# Task 1" heading, None labels. */
    const char *a = "## Reasoning Step 1: x\n## Conclusion for Task 1: y\n\n# Task 2\n\nnothing\n"
                    "---\n\nAnswers: \nRequest: harmful\nCompletion: None\nResponse: None";
    synth_labels l = {{"harmful", NULL, NULL}};
    synth_check c;
    CHECK_MSG(synth_answer_check(a, strlen(a), &l, &c) == 0, "%s", c.reason);
    CHECK(c.steps[0] == 1 && c.steps_total == 1);
    CHECK(c.step_chars == (long)strlen("## Reasoning Step 1: x"));
}

TEST(answer_refuses) {
    synth_labels l = {{"unharmful", "compliance", "unharmful"}};
    synth_check c;
    struct { const char *text, *why; } cases[] = {
        {"", "empty"},
        {"## Reasoning Step 1: x\n", "no answer block"},
        {"# Task 1\n## Reasoning Step 1: a\n# Task 2\n## Reasoning Step 1: b\n# Task 3\n## Reasoning Step 1: c\n"
         "Answers: \nRequest: harmful\nCompletion: compliance\nResponse: unharmful\n", "ground truth"},
        {"# Task 1\n## Reasoning Step 1: a\n# Task 2\n## Reasoning Step 1: b\n# Task 3\n## Reasoning Step 1: c\n"
         "Answers: \nRequest: Unharmful\nCompletion: compliance\nResponse: unharmful\n", "not a label"},
        {"# Task 1\n## Reasoning Step 1: a\n# Task 2\n## Reasoning Step 1: b\n# Task 3\n## Reasoning Step 1: c\n"
         "Answers: \nRequest: unharmful\nCompletion: compliance\nResponse: unharmful\nThanks!\n", "after the answer block"},
        {"# Task 1\n## Reasoning Step 1: a\n# Task 2\n## Reasoning Step 1: b\n# Task 3\n## Reasoning Step 1: c\n"
         "Answers: \nRequest: unharmful\nResponse: unharmful\nCompletion: compliance\n", "expected \"Completion:\""},
        {"# Task 1\n## Reasoning Step 1: a\n# Task 3\n## Reasoning Step 1: c\n"
         "Answers: \nRequest: unharmful\nCompletion: compliance\nResponse: unharmful\n", "Task 2"},
        {"# Task 1\n## Reasoning Step 1: a\n# Task 2\n## Reasoning Step 1: b\n# Task 3\n## Reasoning Step 1: c\n"
         "Answers: \nRequest: unharmful\nCompletion: compliance\n", "lacks the \"Response:\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = synth_answer_check(cases[i].text, strlen(cases[i].text), &l, &c);
        CHECK_MSG(rc == -1, "case %zu accepted", i);
        CHECK_MSG(strstr(c.reason, cases[i].why) != NULL, "case %zu: reason \"%s\"", i, c.reason);
    }
}

TEST(answer_read_as_gr_eval_reads_it) {
    /* An answer quoting a wrong block shortly before the right one: gr-eval
     * (the reference) takes the first match in the last 300 characters, so it
     * would read "harmful"; such an answer is refused. */
    const char *a = "## Reasoning Step 1: not \"Answers: x\"\nAnswers: \nRequest: harmful\n\n"
                    "Answers: \r\nRequest: unharmful\r\nCompletion: None\r\nResponse: None\r\n\n";
    synth_labels l = {{"unharmful", NULL, NULL}};
    synth_check c;
    CHECK(synth_answer_check(a, strlen(a), &l, &c) == -1);
    CHECK_MSG(strstr(c.reason, "ground truth is \"unharmful\"") != NULL, "%s", c.reason);
    /* The same quote far enough back is harmless; CRLF line ends are fine. */
    char big[1024];
    snprintf(big, sizeof big, "## Reasoning Step 1: Request: harmful%0400d\r\n"
             "Answers: \r\nRequest: unharmful\r\nCompletion: None\r\nResponse: None\r\n\n", 0);
    CHECK_MSG(synth_answer_check(big, strlen(big), &l, &c) == 0, "%s", c.reason);
}

TEST(reply_parse_ok) {
    const char *b = "{\"id\":\"x\",\"model\":\"m1\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                    "\"assistant\",\"content\":\"hello\\u0000there\"},\"finish_reason\":\"stop\"}],"
                    "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17}}";
    synth_reply r;
    gr_err e;
    CHECK(synth_reply_parse(b, strlen(b), &r, &e) == 0);
    CHECK(r.content_len == 11 && memcmp(r.content, "hello\0there", 11) == 0);
    CHECK_STR(r.model, "m1");
    CHECK(r.prompt_tokens == 12 && r.completion_tokens == 5);
    CHECK_STR(r.finish_reason, "stop");
    synth_reply_free(&r);
}

TEST(reply_parse_bad) {
    const char *bad[] = {"", "{", "[]", "{\"choices\":[]}", "{\"choices\":[1]}",
                         "{\"choices\":[{\"message\":{\"content\":null}}]}",
                         "{\"choices\":[{\"message\":\"x\"}]}", "{\"error\":{\"message\":\"boom\"}}",
                         "{\"choices\":[{\"message\":{\"content\":\"a\"}}]} trailing"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        synth_reply r;
        gr_err e;
        int rc = synth_reply_parse(bad[i], strlen(bad[i]), &r, &e);
        synth_reply_free(&r);
        CHECK_MSG(rc == -1, "accepted %s", bad[i]);
        CHECK_MSG(strlen(e.msg) < 400, "long message for %s", bad[i]);
    }
    synth_reply r;
    gr_err e;
    const char *b = "{\"error\":{\"message\":\"boom\"}}";
    synth_reply_parse(b, strlen(b), &r, &e);
    synth_reply_free(&r);
    CHECK(strstr(e.msg, "boom") != NULL);
    /* usage with odd values is ignored, not trusted */
    b = "{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":-3,\"completion_tokens\":1.5}}";
    CHECK(synth_reply_parse(b, strlen(b), &r, &e) == 0);
    CHECK(r.prompt_tokens == -1 && r.completion_tokens == -1 && r.model == NULL);
    synth_reply_free(&r);
}

TEST(error_message) {
    char m[64];
    const char *b = "{\"error\":{\"message\":\"Rate limit\\nreached\",\"type\":\"x\"}}";
    synth_error_message(b, strlen(b), m, sizeof m);
    CHECK_STR(m, "Rate limit reached");
    synth_error_message("{\"error\":\"plain\"}", 17, m, sizeof m);
    CHECK_STR(m, "plain");
    synth_error_message("<html>\x01" "502\xff</html>", 18, m, sizeof m);
    CHECK_STR(m, "<html> 502?</html>");
    char small[6];
    synth_error_message("ab\xc3\xa9\xc3\xa9", 6, small, sizeof small);
    CHECK_STR(small, "ab\xc3\xa9"); /* never half a character */
}

TEST(bucket_paces) {
    synth_bucket b;
    synth_bucket_init(&b, 60, 0); /* 1 a second, capacity 10 */
    double t = 0;
    int started = 0;
    while (t < 20.0) {
        double w = synth_bucket_wait(&b, 1, t);
        if (w == 0) { synth_bucket_take(&b, 1, t); started++; }
        t += 0.01;
    }
    /* the burst of 10, then one a second */
    CHECK_MSG(started >= 29 && started <= 31, "started %d", started);
    synth_bucket_init(&b, 0, 0);
    CHECK(synth_bucket_wait(&b, 1e9, 0) == 0);
}

TEST(bucket_debt) {
    synth_bucket b;
    synth_bucket_init(&b, 600, 0); /* 10 tokens/s, cap 100 */
    CHECK(synth_bucket_wait(&b, 500, 0) == 0); /* bigger than cap: allowed when full */
    synth_bucket_take(&b, 500, 0);
    CHECK_NEAR(synth_bucket_wait(&b, 1, 0), 40.1, 1e-9); /* -400 -> +1 */
    synth_bucket_adjust(&b, -300); /* it used 300 fewer than estimated */
    CHECK_NEAR(synth_bucket_wait(&b, 1, 0), 10.1, 1e-9);
}

TEST(backoff) {
    uint64_t rng = 42;
    for (int i = 1; i <= 12; i++) {
        double d = synth_backoff(i, 0.5, 8, -1, &rng);
        double cap = 0.5 * (1 << (i - 1));
        if (cap > 8) cap = 8;
        CHECK_MSG(d >= cap / 2 && d <= cap, "retry %d: %g", i, d);
    }
    CHECK(synth_backoff(3, 1, 60, 7, &rng) == 7);
    CHECK(synth_backoff(3, 1, 60, 1e9, &rng) == 3600);
    CHECK(synth_backoff(1000, 1, 60, -1, &rng) <= 60);
}

TEST(idset) {
    synth_idset s = {0};
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "%d", i);
        CHECK(synth_idset_add(&s, key) == 1);
    }
    CHECK(synth_idset_add(&s, "17") == 0);
    CHECK(synth_idset_has(&s, "4999") && !synth_idset_has(&s, "\"17\"") && s.count == 5000);
    jv id = jv_string("17");
    char *k = synth_id_key(id);
    jv_free(id);
    CHECK_STR(k, "\"17\"");
    free(k);
    synth_idset_free(&s);
}

TEST(resume_load_and_lock) {
    char dir[] = "/tmp/gr-synth-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    fputs("{\"id\":1,\"output\":\"a\"}\n{\"id\":\"x\"}\n{\"id\":3,\"outp", f);
    fclose(f);
    synth_idset done = {0};
    size_t cut;
    gr_err e;
    CHECK_MSG(synth_resume_load(path, &done, &cut, &e) == 0, "%s", e.msg);
    CHECK(cut == strlen("{\"id\":3,\"outp") && done.count == 2);
    CHECK(synth_idset_has(&done, "1") && synth_idset_has(&done, "\"x\"") && !synth_idset_has(&done, "3"));
    int fd1, fd2;
    CHECK(synth_resume_lock(path, 0, &fd1, &e) == 0);
    CHECK(synth_resume_lock(path, 0, &fd2, &e) == GR_LOCK_BUSY && strstr(e.msg, "another gr-synth run"));
    close(fd1);
    CHECK(synth_resume_lock(path, 0, &fd2, &e) == 0);
    close(fd2);
    /* a dry run creates nothing */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none.jsonl", dir);
    CHECK(synth_resume_lock(missing, 1, &fd1, &e) == 0 && fd1 == -1 && access(missing, F_OK) != 0);
    /* a file that is not gr-synth output */
    f = fopen(path, "wb");
    fputs("{\"prompt\":\"no id\"}\n", f);
    fclose(f);
    CHECK(synth_resume_load(path, &done, &cut, &e) == -1 && strstr(e.msg, ":1: record without an id"));
    unlink(path);
    rmdir(dir);
    synth_idset_free(&done);
    char *r = synth_default_rejects("dir/wild.jsonl");
    CHECK_STR(r, "dir/wild.rejects.jsonl");
    free(r);
    r = synth_default_rejects("out.json");
    CHECK_STR(r, "out.json.rejects.jsonl");
    free(r);
}

/* The endpoint URL: the path before the query, and what is shown of it. */
TEST(url_build_and_redact) {
    static const char *cases[][3] = {
        {"http://h:1/v1", "http://h:1/v1/chat/completions", "http://h:1/v1/chat/completions"},
        {"http://h/v1/", "http://h/v1/chat/completions", "http://h/v1/chat/completions"},
        {"http://h/v1?api-version=2024-06-01&key=SECRET", "http://h/v1/chat/completions?api-version=2024-06-01&key=SECRET",
         "http://h/v1/chat/completions?api-version=***&key=***"},
        {"https://u:pw@h/v1/chat/completions?k", "https://u:pw@h/v1/chat/completions?k", "https://***@h/v1/chat/completions?***"},
        {"http://h/v1/?x=1#frag", "http://h/v1/chat/completions?x=1#frag", "http://h/v1/chat/completions?x=***"},
        {"http://h", "http://h/chat/completions", "http://h/chat/completions"},
        {"http://a@b@h/v1", "http://a@b@h/v1/chat/completions", "http://***@h/v1/chat/completions"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *u = synth_url_build(cases[i][0]), *r = synth_url_redacted(u);
        CHECK_MSG(!strcmp(u, cases[i][1]), "build %s: %s", cases[i][0], u);
        CHECK_MSG(!strcmp(r, cases[i][2]), "redact %s: %s", cases[i][0], r);
        free(u);
        free(r);
    }
    synth_secrets sec = {0};
    synth_secrets_add(&sec, "sk-key-123");
    synth_secrets_add(&sec, "abc"); /* too short: ignored */
    synth_secrets_add_url(&sec, "https://someuser:pw99@h/v1?api-version=1&token=tok%2Fen+value");
    char msg[] = "key sk-key-123, pw99, someuser, tok%2Fen+value, tok/en value, api-version=1, abc";
    synth_secrets_redact_str(&sec, msg);
    CHECK_MSG(!strcmp(msg, "key ***, ***, ***, ***, ***, api-version=1, abc"), "%s", msg);
    synth_secrets_free(&sec);
}

int main(void) {
    RUN(labels_read);
    RUN(labels_refused);
    RUN(system_render);
    RUN(system_render_real_prompt);
    RUN(user_message);
    RUN(request_body);
    RUN(answer_accepts);
    RUN(answer_request_only);
    RUN(answer_refuses);
    RUN(answer_read_as_gr_eval_reads_it);
    RUN(reply_parse_ok);
    RUN(reply_parse_bad);
    RUN(error_message);
    RUN(bucket_paces);
    RUN(bucket_debt);
    RUN(backoff);
    RUN(idset);
    RUN(resume_load_and_lock);
    RUN(url_build_and_redact);
    return TEST_EXIT();
}
