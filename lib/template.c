/* Prompt templates (see template.h for the layouts). */
#include <string.h>
#include "template.h"

static const char *const NAMES[] = {"raw", "llama3", "chatml"};

int gr_template_parse(const char *name, gr_template_kind *kind, gr_err *err) {
    for (int k = 0; k < 3; k++)
        if (!strcmp(name, NAMES[k])) { *kind = (gr_template_kind)k; return 0; }
    return gr_errf(err, "unknown template \"%s\" (raw, llama3, chatml)", name);
}

const char *gr_template_name(gr_template_kind kind) {
    return (unsigned)kind < 3 ? NAMES[kind] : "?";
}

static int need(const gr_tokenizer *t, const char *tok, int32_t *id, gr_err *err) {
    *id = gr_tokenizer_token_id(t, tok);
    if (*id < 0) return gr_errf(err, "the tokenizer has no %s token, which this template needs", tok);
    return 0;
}

/* Encodes the concatenation a + b as one text run. */
static void enc2(const gr_tokenizer *t, const char *a, const char *b, gr_ids *out, gr_err *err) {
    gr_buf s = {0};
    gr_buf_append(&s, a, strlen(a));
    if (b) gr_buf_append(&s, b, strlen(b));
    gr_tokenizer_encode(t, s.data ? s.data : "", s.len, out, err);
    gr_buf_free(&s);
}

/* LLaMA-Factory's alpaca join: non-empty parts joined by "\n". */
static void user_text(const char *instruction, const char *input, gr_buf *u) {
    int hi = instruction && *instruction, hn = input && *input;
    if (hi) gr_buf_append(u, instruction, strlen(instruction));
    if (hi && hn) gr_buf_putc(u, '\n');
    if (hn) gr_buf_append(u, input, strlen(input));
}

int gr_template_prompt(const gr_tokenizer *t, gr_template_kind kind, const char *system,
                       const char *instruction, const char *input, gr_ids *out, gr_err *err) {
    int has_sys = system && *system;
    if (kind == GR_TEMPLATE_RAW) {
        /* generate.py: instruction + "\n" + input, always with the "\n" */
        if (gr_tokenizer_adds_bos(t)) gr_ids_push(out, gr_tokenizer_bos(t));
        gr_buf s = {0};
        if (instruction) gr_buf_append(&s, instruction, strlen(instruction));
        gr_buf_putc(&s, '\n');
        if (input) gr_buf_append(&s, input, strlen(input));
        gr_tokenizer_encode(t, s.data, s.len, out, err);
        gr_buf_free(&s);
        return 0;
    }
    gr_buf u = {0};
    user_text(instruction, input, &u);
    const char *U = gr_buf_cstr(&u);
    int rc = 0;
    if (kind == GR_TEMPLATE_LLAMA3) {
        int32_t sh, eh, eot, bos = gr_tokenizer_bos(t);
        if (need(t, "<|start_header_id|>", &sh, err) || need(t, "<|end_header_id|>", &eh, err) ||
            need(t, "<|eot_id|>", &eot, err)) { rc = -1; goto out; }
        if (bos < 0) { rc = gr_errf(err, "the tokenizer has no BOS token, which llama3 needs"); goto out; }
        gr_ids_push(out, bos);
        if (has_sys) {
            gr_ids_push(out, sh);
            enc2(t, "system", NULL, out, err);
            gr_ids_push(out, eh);
            enc2(t, "\n\n", system, out, err);
            gr_ids_push(out, eot);
        }
        gr_ids_push(out, sh);
        enc2(t, "user", NULL, out, err);
        gr_ids_push(out, eh);
        enc2(t, "\n\n", U, out, err);
        gr_ids_push(out, eot);
        gr_ids_push(out, sh);
        enc2(t, "assistant", NULL, out, err);
        gr_ids_push(out, eh);
        enc2(t, "\n\n", NULL, out, err);
    } else if (kind == GR_TEMPLATE_CHATML) {
        int32_t st, en;
        if (need(t, "<|im_start|>", &st, err) || need(t, "<|im_end|>", &en, err)) { rc = -1; goto out; }
        if (has_sys) {
            gr_ids_push(out, st);
            enc2(t, "system\n", system, out, err);
            gr_ids_push(out, en);
            enc2(t, "\n", NULL, out, err);
        }
        gr_ids_push(out, st);
        enc2(t, "user\n", U, out, err);
        gr_ids_push(out, en);
        enc2(t, "\n", NULL, out, err);
        gr_ids_push(out, st);
        enc2(t, "assistant\n", NULL, out, err);
    } else {
        rc = gr_errf(err, "unknown template kind %d", (int)kind);
    }
out:
    gr_buf_free(&u);
    return rc;
}

int32_t gr_template_eot(const gr_tokenizer *t, gr_template_kind kind) {
    switch (kind) {
    case GR_TEMPLATE_LLAMA3: return gr_tokenizer_token_id(t, "<|eot_id|>");
    case GR_TEMPLATE_CHATML: return gr_tokenizer_token_id(t, "<|im_end|>");
    case GR_TEMPLATE_RAW: return gr_tokenizer_eos(t);
    }
    return -1;
}

int gr_template_response(const gr_tokenizer *t, gr_template_kind kind, const char *response,
                         gr_ids *out, gr_err *err) {
    int32_t eot = gr_template_eot(t, kind);
    if (eot < 0) return gr_errf(err, "the tokenizer has no end-of-turn token for template %s",
                                gr_template_name(kind));
    if (response) gr_tokenizer_encode(t, response, strlen(response), out, err);
    gr_ids_push(out, eot);
    return 0;
}

void gr_infer_seqlen(size_t source_len, size_t target_len, size_t cutoff, size_t *source_keep,
                     size_t *target_keep) {
    size_t max_target;
    if (target_len * 2 < cutoff) max_target = cutoff;
    else if (source_len * 2 < cutoff) max_target = cutoff - source_len;
    else if (source_len + target_len == 0) max_target = 0; /* only with cutoff 0 */
    else max_target = (size_t)((double)cutoff * ((double)target_len / (double)(source_len + target_len)));
    size_t nt = max_target < target_len ? max_target : target_len;
    size_t max_source = cutoff > nt ? cutoff - nt : 0;
    *target_keep = nt;
    *source_keep = max_source < source_len ? max_source : source_len;
}
