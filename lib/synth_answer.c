#include "synth_answer.h"
#include <stdio.h>
#include <string.h>
#include "gr_labels.h"

typedef struct line {
    const char *s;
    size_t n; /* without the "\n" (and a "\r" before it) */
} line;

static int next_line(const char *text, size_t n, size_t *pos, line *l) {
    if (*pos >= n) return 0;
    const char *s = text + *pos;
    const char *e = memchr(s, '\n', n - *pos);
    size_t len = e ? (size_t)(e - s) : n - *pos;
    *pos += len + (e ? 1 : 0);
    if (len && s[len - 1] == '\r') len--;
    l->s = s;
    l->n = len;
    return 1;
}

static void trim(line *l) {
    while (l->n && (*l->s == ' ' || *l->s == '\t')) l->s++, l->n--;
    while (l->n && (l->s[l->n - 1] == ' ' || l->s[l->n - 1] == '\t')) l->n--;
}

static int starts(const line *l, const char *p) {
    size_t k = strlen(p);
    return l->n >= k && memcmp(l->s, p, k) == 0;
}

/* "# Task 2..." (one '#') -> 1; -1 when l is not such a heading. */
static int task_heading(line l) {
    if (l.n < 2 || l.s[0] != '#' || l.s[1] == '#') return -1;
    l.s++, l.n--;
    trim(&l);
    if (!starts(&l, "Task")) return -1;
    l.s += 4, l.n -= 4;
    trim(&l);
    if (l.n >= 1 && l.s[0] >= '1' && l.s[0] <= '3' && (l.n == 1 || l.s[1] < '0' || l.s[1] > '9'))
        return l.s[0] - '1';
    return -1;
}

static int step_heading(line l) {
    if (l.n < 2 || l.s[0] != '#' || l.s[1] != '#' || (l.n > 2 && l.s[2] == '#')) return 0;
    l.s += 2, l.n -= 2;
    trim(&l);
    return starts(&l, "Reasoning Step");
}

static long code_points(const char *s, size_t n) {
    long c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* The answer block: the last "Answers:" line, then the three task lines in
 * order, each with a value spelled exactly ("harmful", ..., or "None": the
 * answer becomes a training target, so "Harmful" is refused), then only blank
 * lines. Whether the values agree with the ground truth is then read with
 * gr_answers_parse, the parser gr-eval uses, so an accepted answer is one the
 * evaluation reads as correct. */
static int check_block(const char *text, size_t n, const synth_labels *gt, synth_check *out) {
    size_t pos = 0, block = (size_t)-1;
    line l;
    while (1) {
        size_t at = pos;
        if (!next_line(text, n, &pos, &l)) break;
        trim(&l);
        if (starts(&l, "Answers:")) block = at;
    }
    if (block == (size_t)-1) {
        snprintf(out->reason, sizeof out->reason, "no answer block (\"Answers:\") in the answer");
        return -1;
    }
    pos = block;
    next_line(text, n, &pos, &l);
    trim(&l);
    l.s += 8, l.n -= 8;
    trim(&l);
    if (l.n) {
        snprintf(out->reason, sizeof out->reason, "text after \"Answers:\" on its line");
        return -1;
    }
    for (int t = 0; t < SYNTH_NTASKS; t++) {
        const char *name = synth_task_answer_name[t];
        do {
            if (!next_line(text, n, &pos, &l)) {
                snprintf(out->reason, sizeof out->reason, "answer block lacks the \"%s:\" line", name);
                return -1;
            }
            trim(&l);
        } while (l.n == 0); /* blank lines inside the block are tolerated */
        size_t k = strlen(name);
        if (l.n < k + 1 || memcmp(l.s, name, k) != 0 || l.s[k] != ':') {
            snprintf(out->reason, sizeof out->reason, "answer block: expected \"%s:\", got \"%.*s\"",
                     name, (int)(l.n > 60 ? 60 : l.n), l.s);
            return -1;
        }
        l.s += k + 1, l.n -= k + 1;
        trim(&l);
        int spelled = l.n == 4 && memcmp(l.s, "None", 4) == 0;
        for (int v = GR_LABEL_HARMFUL; v <= GR_LABEL_COMPLIANCE; v++) {
            const char *w = gr_label_name((gr_label)v);
            if (gr_label_fits((gr_task)t, (gr_label)v) && l.n == strlen(w) && memcmp(l.s, w, l.n) == 0)
                spelled = 1;
        }
        if (!spelled) {
            snprintf(out->reason, sizeof out->reason, "%s is \"%.*s\", not a label of that task", name,
                     (int)(l.n > 40 ? 40 : l.n), l.s);
            return -1;
        }
    }
    while (next_line(text, n, &pos, &l)) {
        trim(&l);
        if (l.n) {
            snprintf(out->reason, sizeof out->reason, "text after the answer block: \"%.*s\"",
                     (int)(l.n > 60 ? 60 : l.n), l.s);
            return -1;
        }
    }
    gr_answers a;
    gr_answers_parse(text, n, 300, &a);
    for (int t = 0; t < SYNTH_NTASKS; t++) {
        const char *got = gr_label_name(a.label[t]);
        const char *want = gt->v[t];
        if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0)) {
            snprintf(out->reason, sizeof out->reason, "%s is \"%s\", the ground truth is \"%s\"",
                     synth_task_answer_name[t], got ? got : "None", want ? want : "None");
            return -1;
        }
    }
    return 0;
}

int synth_answer_check(const char *text, size_t n, const synth_labels *gt, synth_check *out) {
    memset(out, 0, sizeof *out);
    /* Steps: a step runs from its heading to the next heading, "---" or
     * "Answers:". */
    size_t pos = 0, step_start = 0;
    int task = 0, in_step = 0;
    line l;
    while (1) {
        size_t at = pos;
        int more = next_line(text, n, &pos, &l);
        line t = l;
        if (more) trim(&t);
        int boundary = !more || (t.n && t.s[0] == '#') || starts(&t, "---") || starts(&t, "Answers:");
        if (boundary && in_step) {
            size_t end = at;
            while (end > step_start && (text[end - 1] == '\n' || text[end - 1] == '\r' ||
                                        text[end - 1] == ' ' || text[end - 1] == '\t'))
                end--;
            out->step_chars += code_points(text + step_start, end - step_start);
            in_step = 0;
        }
        if (!more) break;
        int th = task_heading(t);
        if (th >= 0) task = th;
        if (step_heading(t)) {
            out->steps[task]++;
            out->steps_total++;
            in_step = 1;
            step_start = at + (size_t)(t.s - l.s);
        }
    }
    if (n == 0) {
        snprintf(out->reason, sizeof out->reason, "empty answer");
        return -1;
    }
    if (check_block(text, n, gt, out) < 0) return -1;
    for (int t = 0; t < SYNTH_NTASKS; t++)
        if (gt->v[t] && out->steps[t] == 0) {
            snprintf(out->reason, sizeof out->reason, "no reasoning step for Task %d (%s)", t + 1,
                     synth_task_key[t]);
            return -1;
        }
    return 0;
}
