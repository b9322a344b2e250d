/* Guard policies: the instruction text the model reads before the interaction
 * (gr-classify --instruction FILE), validated when loaded, and the `policy`
 * field of every verdict: the SHA-256 of the instruction the record was
 * classified with, so verdicts of different policies are never mixed silently.
 *
 * An instruction is valid when it is non-empty (not only white space), at most
 * GR_POLICY_MAX_BYTES, valid UTF-8 without a byte order mark, free of control
 * characters other than tab, line feed and carriage return, and free of
 * control-token strings ("<|eot_id|>", "<|im_start|>", "<s>", "[INST]", ...):
 * gr_tokenizer_encode keeps such strings as text, so they would never act as
 * the control tokens their author meant. The file's bytes are used as they
 * are (the built-in instruction ends in "\n", the raw template adds another
 * between instruction and input). */
#ifndef GR_GUARD_POLICY_H
#define GR_GUARD_POLICY_H
#include <jv.h>
#include <stddef.h>
#include "gr_common.h"

#define GR_POLICY_MAX_BYTES (1u << 20)

/* 0 when text[0..n) is a valid instruction; else -1 with err saying why and
 * where ("line L, column C: ..."; columns count bytes from 1). */
int gr_policy_check(const char *text, size_t n, gr_err *err);

typedef struct gr_policy {
    char *text;        /* NUL-terminated (checked: no NUL inside) */
    size_t len;
    char sha256[65];   /* hex digest of text[0..len) */
} gr_policy;

/* Reads and checks path. -1 with err "PATH: why" (err->msg), and *invalid set
 * to 1 when the file was read but its contents are not a valid instruction. */
int gr_policy_load(const char *path, gr_policy *p, int *invalid, gr_err *err);
void gr_policy_free(gr_policy *p);

/* The hex SHA-256 of an instruction (the `policy` field). */
void gr_policy_hash(const char *instruction, char hex[65]);

/* With p non-NULL and rec an interaction record (no instruction/input field:
 * alpaca records carry their own instruction and keep it), *instruction
 * (malloc'd, from gr_guard_query) is replaced by a copy of p's text. */
void gr_policy_apply(const gr_policy *p, jv rec, char **instruction);
#endif
