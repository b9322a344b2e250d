/* The built-in system prompt of gr-synth (--system-file replaces it). It holds
 * the placeholders {request}, {refusal} and {response}. */
#ifndef SYNTH_PROMPT_H
#define SYNTH_PROMPT_H
extern const char synth_default_system[];
#endif
