/* gr-synth, step 1: from an interaction record to a chat-completions request
 * (paper §2.1, the prompt of its Figure 9 in
 * ../shared/data/guardreasoner/prompts/synthesis_system.txt). */
#ifndef SYNTH_REQUEST_H
#define SYNTH_REQUEST_H
#include <jv.h>
#include "gr_common.h"

/* The three guardrail tasks, in the order of the answer block. */
enum { SYNTH_REQUEST = 0, SYNTH_COMPLETION = 1, SYNTH_RESPONSE = 2, SYNTH_NTASKS = 3 };

/* Ground-truth labels of one record: each points to a static string
 * ("harmful", "unharmful", "refusal", "compliance") or is NULL (unlabelled). */
typedef struct synth_labels {
    const char *v[SYNTH_NTASKS];
} synth_labels;

/* The task names as the answer block spells them: "Request", "Completion",
 * "Response"; and as the record's `label` keys: "request", ... */
extern const char *const synth_task_answer_name[SYNTH_NTASKS];
extern const char *const synth_task_key[SYNTH_NTASKS];

/* Reads rec.label (rec not consumed). Each of request/response must be
 * "harmful"/"unharmful"/null/absent, completion "refusal"/"compliance"/null/
 * absent; at least one must be set. -1 with a reason otherwise. */
int synth_labels_get(jv rec, synth_labels *out, gr_err *err);

/* The system message: tmpl with every "{request}", "{refusal}" and
 * "{response}" replaced by the label, or "None" where it is absent (as the
 * reference does for seeds that lack a task). Other text is copied as is. */
void synth_system_render(const char *tmpl, const synth_labels *labels, gr_buf *out);

/* The user message, also the alpaca `input`:
 * "Human user:\n{prompt}\n\nAI assistant:\n{response}\n\n", with "None" for a
 * NULL response. */
void synth_user_message(const char *prompt, size_t plen, const char *response, size_t rlen,
                        gr_buf *out);

typedef struct synth_params {
    const char *model;
    double temperature;
    long max_tokens;        /* 0: not sent */
} synth_params;

/* The JSON body of POST /chat/completions (malloc'ed, NUL-terminated; *n
 * gets its length). The messages may hold NUL bytes, hence the lengths. */
char *synth_request_body(const synth_params *p, const char *system, size_t slen,
                         const char *user, size_t ulen, size_t *n);
#endif
