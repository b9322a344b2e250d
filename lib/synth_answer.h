/* gr-synth, step 3: is a synthesized answer usable as training data?
 *
 * It must end with the answer block (the one GuardReasonerTrain uses):
 *     Answers: 
 *     Request: harmful
 *     Completion: refusal
 *     Response: unharmful
 * agreeing with the ground truth ("None" where the seed has no label), and it
 * must contain at least one reasoning step ("## Reasoning Step N") in the
 * section of every labelled task ("# Task 1" request, "# Task 2" completion,
 * "# Task 3" response; steps before the first "# Task" heading count for
 * Task 1, as in answers that omit that first heading). */
#ifndef SYNTH_ANSWER_H
#define SYNTH_ANSWER_H
#include <stddef.h>
#include "synth_request.h"

typedef struct synth_check {
    int steps[SYNTH_NTASKS]; /* reasoning steps found per task */
    int steps_total;
    long step_chars;         /* code points over all steps, headings included */
    char reason[256];        /* why the answer was refused ("" when accepted) */
} synth_check;

/* 0 when text[0..n) is acceptable for gt; -1 with out->reason otherwise.
 * out->steps* are filled in both cases. */
int synth_answer_check(const char *text, size_t n, const synth_labels *gt, synth_check *out);
#endif
