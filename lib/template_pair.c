/* Preference-pair encoding (template.h: gr_template_pair), shared by gr-tokenize
 * and gr-dpo so that both cut pairs the same way. */
#include "template.h"

int gr_template_pair(const gr_tokenizer *t, gr_template_kind kind, const char *system,
                     const char *instruction, const char *input, const char *chosen,
                     const char *rejected, size_t cutoff, gr_ids *prompt, gr_ids *c, gr_ids *r,
                     int *truncated, gr_err *err) {
    gr_ids p = {0}, a = {0}, b = {0};
    int rc = gr_template_prompt(t, kind, system, instruction, input, &p, err);
    if (rc == 0) rc = gr_template_response(t, kind, chosen, &a, err);
    if (rc == 0) rc = gr_template_response(t, kind, rejected, &b, err);
    if (rc == 0) {
        size_t S, T, longest = a.n > b.n ? a.n : b.n;
        gr_infer_seqlen(p.n, longest, cutoff, &S, &T);
        *truncated = S < p.n || T < longest;
        gr_ids_append(prompt, p.v, S);
        gr_ids_append(c, a.v, T < a.n ? T : a.n);
        gr_ids_append(r, b.v, T < b.n ? T : b.n);
    }
    gr_ids_free(&p);
    gr_ids_free(&a);
    gr_ids_free(&b);
    return rc < 0 ? -1 : 0;
}
