/* The guard's fast tiers (gr-classify --mode verdict|tiered).
 *
 * Verdict mode writes no reasoning. After the record's prompt it feeds the
 * answer block's fixed text as the GuardReasoner models write it
 * ("Answers: \nRequest:"; the predictions in testdata/predictions end in
 * "---\n\nAnswers: \nRequest: harmful\nCompletion: compliance\nResponse: harmful")
 * and reads, at that position, the logits of the candidate answer words' first
 * tokens: " harmful"/" unharmful" for Request, " refusal"/" compliance"/" None"
 * for Completion, " harmful"/" unharmful"/" None" for Response (the models
 * write None where there is no response). The highest candidate is the answer;
 * its ids and the next line's title ("\nCompletion:", "\nResponse:") are fed,
 * and the next task is read the same way: three forward calls per batch of
 * records after the prompt, a dozen positions, no sampling.
 *
 * The result is a generation like any other (gr_gen_req: the answer block's
 * ids, and the watched logits at the steps where the answer words were read),
 * so gr_verdict_build turns it into the verdict exactly as in reason mode: the
 * same fields, `scores` the same two-word softmax at the same kind of step.
 *
 * Tiered mode runs verdict mode first; a record with a score for any task in
 * [lo, hi] is cleared and generated again in reason mode (gr_generate_some). */
#ifndef GR_GUARD_VERDICT_H
#define GR_GUARD_VERDICT_H
#include "generate.h"
#include "guard.h"

typedef enum { GR_GUARD_REASON = 0, GR_GUARD_VERDICT, GR_GUARD_TIERED } gr_guard_mode;

/* "reason", "verdict", "tiered" -> mode; -1 if unknown. */
int gr_guard_mode_parse(const char *s, gr_guard_mode *mode);
const char *gr_guard_mode_name(gr_guard_mode mode);
/* "LO:HI" with 0 <= LO <= HI <= 1; -1 with err otherwise. */
int gr_escalate_parse(const char *s, double *lo, double *hi, gr_err *err);

#define GR_FAST_MAX_CAND 3
typedef struct gr_fast_plan {
    gr_ids head;                                /* "Answers: \nRequest:" */
    int n_cand[GR_NTASKS];
    int cand[GR_NTASKS][GR_FAST_MAX_CAND];      /* first id of each candidate word */
    gr_label label[GR_NTASKS][GR_FAST_MAX_CAND]; /* its label (GR_LABEL_NONE for None) */
    gr_ids feed[GR_NTASKS][GR_FAST_MAX_CAND];   /* " word\nNextTitle:" (the last task: " word") */
    int max_tail;                               /* most positions after the prompt */
} gr_fast_plan;
int gr_fast_plan_init(const gr_tokenizer *t, gr_fast_plan *p, gr_err *err);
void gr_fast_plan_free(gr_fast_plan *p);

/* Verdict mode for reqs[0..n): sets each req's out, n_out, watch (with g's
 * watch ids), stop (GR_STOP_EOS; GR_STOP_TOO_LONG and nothing out when the
 * prompt and the answer block do not fit the model's context). Uses g's
 * max_batch, max_len, prefix and watch; ignores its sampler. */
int gr_fast_run(gr_ctx *c, const gr_fast_plan *p, gr_gen_req *reqs, int n, const gr_gen_opts *g, gr_err *err);

/* 1 when any task's score of v lies in [lo, hi]. */
int gr_fast_in_band(const gr_verdict *v, double lo, double hi);

/* gr_fast_run, then decided[i] = 1 for each verdict that stands: all of them
 * in verdict mode (tiered 0); in tiered mode those without a score in
 * [lo, hi], and prompts too long for the context. The others are cleared
 * (gr_gen_req_free) for reason mode. */
int gr_fast_window(gr_ctx *c, const gr_tokenizer *t, const gr_fast_plan *p, const gr_guard_watch *w,
                   const gr_gen_opts *g, int tiered, double lo, double hi, gr_gen_req *reqs, int n,
                   unsigned char *decided, gr_err *err);

/* gr_generate over the reqs with decided[i] == 0 (all with decided NULL), in
 * their order; the others are left as they are. done (may be NULL) gets each
 * finished request with its index in reqs. */
int gr_generate_some(gr_ctx *c, gr_gen_req *reqs, int n, const unsigned char *decided, const gr_gen_opts *g,
                     gr_gen_done done, void *ud, gr_err *err);
#endif
