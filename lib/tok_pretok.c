/* Pre-tokenizers: split text into the pieces BPE runs on.
 *
 * The two patterns every supported model uses are scanned by hand (much faster
 * than a backtracking regex, and exact: each branch below is one alternative
 * of the pattern, tried in the pattern's order). Any other Split pattern runs
 * through Oniguruma, the engine Hugging Face tokenizers uses. */
#include <string.h>
#include <oniguruma.h>
#include "tok_internal.h"

int tok_next_char(const unsigned char *s, size_t n, size_t i, int *cls, uint32_t *cp) {
    unsigned c = s[i];
    if (c < 0x80) {
        *cp = c;
        /* ASCII: the classes the patterns care about */
        if ((c | 0x20) - 'a' < 26) *cls = TOK_C_L;
        else if (c - '0' < 10) *cls = TOK_C_N;
        else if (c == ' ' || (c >= 9 && c <= 13)) *cls = TOK_C_S;
        else *cls = TOK_C_OTHER;
        return 1;
    }
    uint32_t v, min;
    int len;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else goto invalid;
    if (n - i < (size_t)len) goto invalid;
    for (int k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80) goto invalid;
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto invalid;
    *cp = v;
    *cls = tok_uclass(v);
    return len;
invalid:
    *cp = 0xFFFFFFFFu;
    *cls = TOK_C_OTHER;
    return 1;
}

/* Class of the character at i, or -1 at the end. */
static inline int cls_at(const unsigned char *s, size_t n, size_t i, int *len) {
    if (i >= n) { *len = 0; return -1; }
    uint32_t cp;
    int c;
    *len = tok_next_char(s, n, i, &c, &cp);
    return c;
}

static inline int is_crlf(unsigned char c) { return c == '\r' || c == '\n'; }

/* End of the run of characters of class cls starting at i. */
static size_t run_of(const unsigned char *s, size_t n, size_t i, int cls) {
    while (i < n) {
        int l, c = cls_at(s, n, i, &l);
        if (c != cls) break;
        i += (size_t)l;
    }
    return i;
}

/* s[i] is '\''. Length of a contraction there, or 0. LLaMA 3's is
 * case-insensitive: ASCII letters of either case, and U+017F (long s), which
 * Unicode case folding makes equal to 's'. */
static size_t contraction(const unsigned char *s, size_t n, size_t i, int icase) {
    size_t r = n - i;
    if (r < 2) return 0;
    unsigned a = s[i + 1], b = r >= 3 ? s[i + 2] : 0;
    if (icase) {
        if (a == 0xC5 && b == 0xBF) return 3; /* 'ſ */
        if (a < 0x80) a |= 0x20;
        if (b < 0x80) b |= 0x20;
        if (r < 3) b = 0;
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* The whitespace run starting at i (s[i] is whitespace): the end of the match of
 * `\s+(?!\S)|\s+` there. */
static size_t space_tail(const unsigned char *s, size_t n, size_t i, size_t *run_end,
                         size_t *last_nl) {
    size_t j = i, prev = i;
    *last_nl = (size_t)-1;
    while (j < n) {
        int l, c = cls_at(s, n, j, &l);
        if (c != TOK_C_S) break;
        if (is_crlf(s[j])) *last_nl = j;
        prev = j;
        j += (size_t)l;
    }
    *run_end = j;
    if (j == n) return j;          /* \s+ up to the end: (?!\S) holds */
    if (prev > i) return prev;     /* back off one character */
    return j;                      /* a single character: plain \s+ */
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
size_t tok_scan_llama3(const unsigned char *s, size_t n, size_t i) {
    int l0, c0 = cls_at(s, n, i, &l0);
    if (s[i] == '\'') {
        size_t k = contraction(s, n, i, 1);
        if (k) return i + k;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c0 == TOK_C_L) return run_of(s, n, i, TOK_C_L);
    if (c0 != TOK_C_N && !is_crlf(s[i])) {
        int l1, c1 = cls_at(s, n, i + (size_t)l0, &l1);
        if (c1 == TOK_C_L) return run_of(s, n, i + (size_t)l0, TOK_C_L);
    }
    /* \p{N}{1,3} */
    if (c0 == TOK_C_N) {
        size_t j = i;
        for (int k = 0; k < 3 && j < n; k++) {
            int l, c = cls_at(s, n, j, &l);
            if (c != TOK_C_N) break;
            j += (size_t)l;
        }
        return j;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    {
        size_t j = i;
        if (s[j] == ' ') j++;
        size_t k = run_of(s, n, j, TOK_C_OTHER);
        if (k > j) {
            while (k < n && is_crlf(s[k])) k++;
            return k;
        }
    }
    /* c0 is whitespace here */
    size_t run_end, last_nl;
    size_t e = space_tail(s, n, i, &run_end, &last_nl);
    if (last_nl != (size_t)-1) return last_nl + 1;   /* \s*[\r\n]+ */
    return e;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
size_t tok_scan_gpt2(const unsigned char *s, size_t n, size_t i) {
    if (s[i] == '\'') {
        size_t k = contraction(s, n, i, 0);
        if (k) return i + k;
    }
    size_t j = i;
    if (s[i] == ' ' && i + 1 < n) j = i + 1;
    int l, c = cls_at(s, n, j, &l);
    if (c == TOK_C_L || c == TOK_C_N || c == TOK_C_OTHER) return run_of(s, n, j, c);
    /* j == i + 1 and s[j] is whitespace, or s[i] is whitespace */
    size_t run_end, last_nl;
    return space_tail(s, n, i, &run_end, &last_nl);
}

/* ---- the pipeline --------------------------------------------------------- */
typedef struct pipe_ctx {
    const gr_tokenizer *t;
    tok_piece_fn fn;
    void *ctx;
} pipe_ctx;

static void run_step(const pipe_ctx *p, int step, const unsigned char *s, size_t a, size_t b);

static void run_regex(const pipe_ctx *p, int step, const tok_pre *pre, const unsigned char *s,
                      size_t a, size_t b) {
    /* Oniguruma sees only valid UTF-8: an invalid byte is a piece of its own. */
    size_t i = a;
    while (i < b) {
        size_t j = i;
        while (j < b) {
            int c;
            uint32_t cp;
            int l = tok_next_char(s, b, j, &c, &cp);
            if (cp == 0xFFFFFFFFu) break;
            j += (size_t)l;
        }
        if (j > i) {
            OnigRegion *reg = onig_region_new();
            size_t pos = i, last = i;
            while (pos < j) {
                int r = onig_search((OnigRegex)pre->onig, s + i, s + j, s + pos, s + j, reg,
                                    ONIG_OPTION_NONE);
                if (r < 0) break;
                /* region offsets count from the string start, s + i */
                size_t ms = i + (size_t)reg->beg[0], me = i + (size_t)reg->end[0];
                if (ms > last) run_step(p, step + 1, s, last, ms);
                if (me > ms) run_step(p, step + 1, s, ms, me);
                last = me;
                if (me > pos) pos = me;
                else { /* empty match: step one character */
                    int c;
                    uint32_t cp;
                    pos += (size_t)tok_next_char(s, j, pos, &c, &cp);
                }
            }
            if (last < j) run_step(p, step + 1, s, last, j);
            onig_region_free(reg, 1);
        }
        if (j < b) { run_step(p, step + 1, s, j, j + 1); j++; }
        i = j;
    }
}

static void run_step(const pipe_ctx *p, int step, const unsigned char *s, size_t a, size_t b) {
    if (a >= b) return;
    if (step == p->t->n_pre) { p->fn(s, a, b, p->ctx); return; }
    const tok_pre *pre = &p->t->pre[step];
    switch (pre->kind) {
    case TOK_PRE_LLAMA3:
    case TOK_PRE_GPT2: {
        /* the scanners look at s[a..b) only */
        const unsigned char *base = s + a;
        size_t n = b - a, i = 0;
        while (i < n) {
            size_t e = pre->kind == TOK_PRE_LLAMA3 ? tok_scan_llama3(base, n, i)
                                                   : tok_scan_gpt2(base, n, i);
            if (e <= i) e = i + 1; /* cannot happen; never loop */
            run_step(p, step + 1, s, a + i, a + e);
            i = e;
        }
        break;
    }
    case TOK_PRE_DIGITS: {
        size_t i = a, start = a;
        while (i < b) {
            int c;
            uint32_t cp;
            int l = tok_next_char(s, b, i, &c, &cp);
            if (c == TOK_C_N) {
                if (i > start) run_step(p, step + 1, s, start, i);
                size_t e = pre->individual ? i + (size_t)l : run_of(s, b, i, TOK_C_N);
                run_step(p, step + 1, s, i, e);
                i = start = e;
            } else {
                i += (size_t)l;
            }
        }
        if (i > start) run_step(p, step + 1, s, start, i);
        break;
    }
    case TOK_PRE_REGEX:
        run_regex(p, step, pre, s, a, b);
        break;
    }
}

void tok_pretokenize(const gr_tokenizer *t, const unsigned char *s, size_t n,
                     tok_piece_fn fn, void *ctx) {
    pipe_ctx p = {t, fn, ctx};
    run_step(&p, 0, s, 0, n);
}

void tok_pre_free(tok_pre *p) {
    if (p->kind == TOK_PRE_REGEX && p->onig) onig_free((OnigRegex)p->onig);
    p->onig = NULL;
}
