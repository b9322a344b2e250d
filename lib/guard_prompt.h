/* The guard instruction shared by gr-synth (its alpaca `instruction`) and
 * gr-classify (the prompt it asks the guard model with). */
#ifndef GUARD_PROMPT_H
#define GUARD_PROMPT_H

/* Exactly the `instruction` string of the GuardReasoner benchmark files:
 * 490 bytes, ending in "\n". */
extern const char gr_guard_instruction[491];
/* Its length without the terminating NUL (490). */
#define GR_GUARD_INSTRUCTION_LEN 490
#endif
