/* Guard policies: see guard_policy.h. */
#include "guard_policy.h"
#include "gr_io.h"
#include "gr_utf8.h"
#include "gr_sha256.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Strings that name a control token in the templates and models we know. A
 * "<|word|>" of letters, digits and '_' is any LLaMA 3 / ChatML / GPT-2 style
 * added token (<|begin_of_text|>, <|eot_id|>, <|im_start|>, <|endoftext|>,
 * <|reserved_special_token_7|>); the others are SentencePiece and LLaMA 2's. */
static const char *const FIXED_TOKENS[] = {"<s>", "</s>", "<unk>", "<pad>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"};

/* Length of a "<|[A-Za-z0-9_]+|>" at s[0..n), or 0. */
static size_t angle_bar_token(const char *s, size_t n) {
    if (n < 5 || s[0] != '<' || s[1] != '|') return 0;
    size_t i = 2;
    while (i < n && (s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                     (s[i] >= '0' && s[i] <= '9')))
        i++;
    if (i == 2 || i + 1 >= n || s[i] != '|' || s[i + 1] != '>') return 0;
    return i + 2;
}

static int where(gr_err *err, const char *text, size_t at, const char *fmt, const char *what) {
    long line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[200];
    snprintf(msg, sizeof msg, fmt, what);
    return gr_errf(err, "line %ld, column %ld: %s", line, col, msg);
}

int gr_policy_check(const char *text, size_t n, gr_err *err) {
    if (n > GR_POLICY_MAX_BYTES)
        return gr_errf(err, "%zu bytes: an instruction is at most %u bytes", n, GR_POLICY_MAX_BYTES);
    size_t bad = gr_utf8_check(text, n);
    if (bad < n) return where(err, text, bad, "%s", "invalid UTF-8");
    if (n >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        return where(err, text, 0, "%s", "a UTF-8 byte order mark (it would be read as text)");
    int blank = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
            char what[64];
            snprintf(what, sizeof what, "control character 0x%02X", c);
            return where(err, text, i, "%s", what);
        }
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') blank = 0;
        size_t k = angle_bar_token(text + i, n - i);
        if (k) {
            char what[96];
            snprintf(what, sizeof what, "%.*s", k > 60 ? 60 : (int)k, text + i);
            return where(err, text, i, "control-token string \"%s\" (it would stay text, never a control token)", what);
        }
        for (size_t t = 0; t < sizeof FIXED_TOKENS / sizeof *FIXED_TOKENS; t++) {
            size_t tl = strlen(FIXED_TOKENS[t]);
            if (tl <= n - i && memcmp(text + i, FIXED_TOKENS[t], tl) == 0)
                return where(err, text, i, "control-token string \"%s\" (it would stay text, never a control token)",
                             FIXED_TOKENS[t]);
        }
    }
    if (blank) return gr_errf(err, "%s", n ? "the instruction is only white space" : "the instruction is empty");
    return 0;
}

int gr_policy_load(const char *path, gr_policy *p, int *invalid, gr_err *err) {
    memset(p, 0, sizeof *p);
    *invalid = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return gr_errf(err, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > GR_POLICY_MAX_BYTES) {
        fclose(f);
        *invalid = 1;
        return gr_errf(err, "%s: %lld bytes: an instruction is at most %u bytes", path, (long long)sb.st_size,
                       GR_POLICY_MAX_BYTES);
    }
    /* read at most one byte past the limit (a pipe or /dev/stdin has no size) */
    gr_buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        gr_buf_append(&b, chunk, got);
        if (b.len > GR_POLICY_MAX_BYTES) break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        gr_buf_free(&b);
        return gr_errf(err, "%s: read error", path);
    }
    gr_err why;
    if (gr_policy_check(b.data ? b.data : "", b.len, &why)) {
        gr_buf_free(&b);
        *invalid = 1;
        return gr_errf(err, "%s: %s", path, why.msg);
    }
    p->len = b.len;
    p->text = gr_xstrndup(b.data, b.len);
    gr_buf_free(&b);
    gr_sha256_hex(p->text, p->len, 32, p->sha256);
    return 0;
}

void gr_policy_free(gr_policy *p) {
    free(p->text);
    memset(p, 0, sizeof *p);
}

void gr_policy_hash(const char *instruction, char hex[65]) { gr_sha256_hex(instruction, strlen(instruction), 32, hex); }

void gr_policy_apply(const gr_policy *p, jv rec, char **instruction) {
    if (!p || gr_jv_has(rec, "instruction") || gr_jv_has(rec, "input")) return;
    free(*instruction);
    *instruction = gr_xstrndup(p->text, p->len);
}
