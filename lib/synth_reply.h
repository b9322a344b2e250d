/* gr-synth, step 2: what came back from POST /chat/completions. The body is
 * untrusted input (any server, any proxy in between): every field is checked
 * for kind and size before use. */
#ifndef SYNTH_REPLY_H
#define SYNTH_REPLY_H
#include <stddef.h>
#include "gr_common.h"

typedef struct synth_reply {
    char *content;          /* choices[0].message.content (malloc'ed; may hold NULs) */
    size_t content_len;
    char *model;            /* "model", or NULL when absent */
    long prompt_tokens;     /* usage.prompt_tokens, -1 when absent */
    long completion_tokens; /* usage.completion_tokens, -1 when absent */
    char finish_reason[32]; /* choices[0].finish_reason, "" when absent */
} synth_reply;

/* Parses a successful (HTTP 2xx) reply body. -1 with the reason when it is not
 * JSON, not a completion, or has no text content. r is zeroed first and must
 * be released with synth_reply_free in every case. */
int synth_reply_parse(const char *body, size_t n, synth_reply *r, gr_err *err);
void synth_reply_free(synth_reply *r);

/* The server's message from an error body ({"error":{"message":...}},
 * {"error":"..."}, {"message":...} or plain text), made printable: control
 * characters become spaces, at most cap-1 bytes, never split inside a UTF-8
 * sequence. out gets "" when the body says nothing. */
void synth_error_message(const char *body, size_t n, char *out, size_t cap);
#endif
