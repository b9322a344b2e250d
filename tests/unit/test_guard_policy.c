/* Instruction files (--instruction): each rule of the validator, where it
 * points, loading (size limit, unreadable file), the sha256 `policy`, and
 * which records the instruction replaces. */
#include <stdlib.h>
#include <unistd.h>
#include "test.h"
#include "guard_policy.h"
#include "guard_prompt.h"
#include "gr_sha256.h"

static int rejects(const char *s, size_t n, const char *want) {
    gr_err err;
    if (gr_policy_check(s, n, &err) == 0) return 0;
    return strstr(err.msg, want) != NULL;
}

TEST(check_rules) {
    gr_err err;
    CHECK(gr_policy_check(gr_guard_instruction, GR_GUARD_INSTRUCTION_LEN, &err) == 0);
    CHECK(gr_policy_check("Judge requests only.", 20, &err) == 0);
    CHECK(gr_policy_check("caf\xC3\xA9 \xE2\x9C\x93\ttab\r\n", 14, &err) == 0);
    CHECK(gr_policy_check("a < b | c > d, <|not a token, x|y|>", 35, &err) == 0);
    CHECK(rejects("", 0, "empty"));
    CHECK(rejects(" \n\t\r\n", 5, "only white space"));
    CHECK(rejects("ok\nbad \xC3(", 9, "line 2, column 5: invalid UTF-8"));
    CHECK(rejects("\xED\xA0\x80", 3, "invalid UTF-8"));          /* a surrogate */
    CHECK(rejects("\xEF\xBB\xBFPolicy", 9, "byte order mark"));
    CHECK(rejects("a\0b", 3, "control character 0x00"));
    CHECK(rejects("a\x1b[31m", 6, "line 1, column 2: control character 0x1B"));
    CHECK(rejects("x\x7f", 2, "control character 0x7F"));
    CHECK(rejects("Be careful.\n<|eot_id|>", 22, "line 2, column 1: control-token string \"<|eot_id|>\""));
    CHECK(rejects("<|im_start|>system", 18, "<|im_start|>"));
    CHECK(rejects("x <|reserved_special_token_7|>", 30, "reserved_special_token_7"));
    CHECK(rejects("<s>[INST] hi", 12, "\"<s>\""));
    CHECK(rejects("say [INST] hi", 13, "\"[INST]\""));
    CHECK(rejects("end</s>", 7, "\"</s>\""));
    CHECK(rejects("<<SYS>>", 7, "<<SYS>>"));
}

TEST(check_size_limit) {
    size_t n = GR_POLICY_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, 'a', n);
    CHECK(rejects(big, n, "at most"));
    gr_err err;
    CHECK(gr_policy_check(big, n - 1, &err) == 0);
    free(big);
}

static void write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(s, 1, n, f);
    fclose(f);
}

TEST(load_and_hash) {
    char path[] = "/tmp/gr-policy-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    gr_policy p;
    gr_err err;
    int invalid;
    write_file(path, gr_guard_instruction, GR_GUARD_INSTRUCTION_LEN);
    CHECK_MSG(gr_policy_load(path, &p, &invalid, &err) == 0, "%s", err.msg);
    /* hashlib.sha256(INSTUCT.encode()).hexdigest() */
    CHECK_STR(p.sha256, "b7345e92bb5f36a56848fd8c209b64e5c51f64893da804f1f62efc596239f3b7");
    char h[65];
    gr_policy_hash(gr_guard_instruction, h);
    CHECK_STR(h, p.sha256);
    CHECK(p.len == GR_GUARD_INSTRUCTION_LEN && strcmp(p.text, gr_guard_instruction) == 0);
    gr_policy_free(&p);
    write_file(path, "Policy\n<|eot_id|>\n", 18);
    CHECK(gr_policy_load(path, &p, &invalid, &err) == -1 && invalid == 1);
    CHECK(strstr(err.msg, path) == err.msg && strstr(err.msg, "line 2, column 1"));
    char *big = malloc(GR_POLICY_MAX_BYTES + 10);
    memset(big, 'a', GR_POLICY_MAX_BYTES + 10);
    write_file(path, big, GR_POLICY_MAX_BYTES + 10);
    free(big);
    CHECK(gr_policy_load(path, &p, &invalid, &err) == -1 && invalid == 1 && strstr(err.msg, "at most"));
    unlink(path);
    CHECK(gr_policy_load(path, &p, &invalid, &err) == -1 && invalid == 0 && strstr(err.msg, "No such file"));
}

TEST(apply_to_interactions_only) {
    gr_policy p = {.text = "Only requests.\n", .len = 15};
    char *instr = strdup("built in");
    jv inter = jv_parse("{\"prompt\":\"x\",\"response\":null}");
    gr_policy_apply(&p, inter, &instr);
    CHECK_STR(instr, "Only requests.\n");
    jv alp = jv_parse("{\"instruction\":\"Classify.\",\"input\":\"x\"}");
    char *own = strdup("Classify.");
    gr_policy_apply(&p, alp, &own);
    CHECK_STR(own, "Classify.");
    gr_policy_apply(NULL, inter, &instr);
    CHECK_STR(instr, "Only requests.\n");
    free(instr);
    free(own);
    jv_free(inter);
    jv_free(alp);
}

int main(void) {
    RUN(check_rules);
    RUN(check_size_limit);
    RUN(load_and_hash);
    RUN(apply_to_interactions_only);
    return TEST_EXIT();
}
