/* The guard query and its verdict: what gr-classify and gr-sample share.
 *
 * Query. A record is either
 *   alpaca       (instruction, input): the benchmark / training form, used as is;
 *   interaction  (prompt, response):  instruction = the GuardReasoner guard
 *                instruction, input = "Human user:\n{prompt}\n\nAI assistant:\n
 *                {response}\n\n" with "None" for a missing or null response.
 * The prompt template (raw, llama3, chatml; template.h) then turns the pair into ids.
 *
 * Verdict. The generated ids are decoded (special tokens skipped), the answer
 * block parsed with gr_labels (the last 300 characters, as gr-eval reads it),
 * and for each task answered, the score is the probability the model gave the
 * positive word (harmful, or refusal) against the other (unharmful,
 * compliance) at the step where it wrote the answer word: the softmax over the
 * two words' first tokens' logits at that position. */
#ifndef GR_GUARD_H
#define GR_GUARD_H
#include <jv.h>
#include "gr_labels.h"
#include "tokenizer.h"

/* instruction and input of the record's guard query (malloc'd); -1 with err
 * when the record is neither kind or a field has the wrong type. */
int gr_guard_query(jv rec, char **instruction, char **input, gr_err *err);

#define GR_GUARD_MAX_WATCH 16
/* The candidate first tokens whose logits generation must keep at every step. */
typedef struct gr_guard_watch {
    int ids[GR_GUARD_MAX_WATCH];
    int n;
} gr_guard_watch;
int gr_guard_watch_init(const gr_tokenizer *t, gr_guard_watch *w, gr_err *err);

typedef struct gr_verdict {
    gr_buf text;                 /* the decoded generation */
    gr_answers ans;
    double score[GR_NTASKS];     /* NaN when not available */
    int parse_ok;                /* the Request answer was found */
} gr_verdict;

/* ids[0..n) generated, watch_logits (n, w->n) the kept logits. */
int gr_verdict_build(const gr_tokenizer *t, const int *ids, int n, const float *watch_logits,
                     const gr_guard_watch *w, gr_verdict *v, gr_err *err);
void gr_verdict_free(gr_verdict *v);
/* Adds reasoning, pred, scores and parse_ok to rec (consumed, returned). */
jv gr_verdict_to_json(const gr_verdict *v, jv rec);
#endif
