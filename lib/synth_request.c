#include "synth_request.h"
#include <string.h>

const char *const synth_task_answer_name[SYNTH_NTASKS] = {"Request", "Completion", "Response"};
const char *const synth_task_key[SYNTH_NTASKS] = {"request", "completion", "response"};

/* Allowed values per task; the first two entries of each row. */
static const char *const allowed[SYNTH_NTASKS][2] = {
    {"harmful", "unharmful"}, {"refusal", "compliance"}, {"harmful", "unharmful"}};

int synth_labels_get(jv rec, synth_labels *out, gr_err *err) {
    memset(out, 0, sizeof *out);
    if (jv_get_kind(rec) != JV_KIND_OBJECT) return gr_errf(err, "record is not an object");
    jv lab = jv_object_get(jv_copy(rec), jv_string("label"));
    if (jv_get_kind(lab) != JV_KIND_OBJECT) {
        int absent = jv_get_kind(lab) == JV_KIND_INVALID || jv_get_kind(lab) == JV_KIND_NULL;
        jv_free(lab);
        return absent ? gr_errf(err, "no \"label\" (synthesis needs the ground truth)")
                      : gr_errf(err, "\"label\" is not an object");
    }
    int any = 0;
    for (int t = 0; t < SYNTH_NTASKS; t++) {
        jv v = jv_object_get(jv_copy(lab), jv_string(synth_task_key[t]));
        jv_kind k = jv_get_kind(v);
        if (k == JV_KIND_INVALID || k == JV_KIND_NULL) { jv_free(v); continue; }
        if (k != JV_KIND_STRING) {
            jv_free(v);
            jv_free(lab);
            return gr_errf(err, "label.%s is not a string or null", synth_task_key[t]);
        }
        const char *s = jv_string_value(v);
        for (int i = 0; i < 2; i++)
            if (strcmp(s, allowed[t][i]) == 0) out->v[t] = allowed[t][i];
        if (!out->v[t]) {
            gr_errf(err, "label.%s is \"%.40s\"; expected \"%s\", \"%s\" or null", synth_task_key[t],
                    s, allowed[t][0], allowed[t][1]);
            jv_free(v);
            jv_free(lab);
            return -1;
        }
        any = 1;
        jv_free(v);
    }
    jv_free(lab);
    if (!any) return gr_errf(err, "every label is null (nothing to reason about)");
    return 0;
}

void synth_system_render(const char *tmpl, const synth_labels *labels, gr_buf *out) {
    static const char *const ph[SYNTH_NTASKS] = {"{request}", "{refusal}", "{response}"};
    const char *p = tmpl;
    while (*p) {
        int hit = -1;
        if (*p == '{')
            for (int t = 0; t < SYNTH_NTASKS; t++)
                if (strncmp(p, ph[t], strlen(ph[t])) == 0) hit = t;
        if (hit >= 0) {
            const char *v = labels->v[hit] ? labels->v[hit] : "None";
            gr_buf_append(out, v, strlen(v));
            p += strlen(ph[hit]);
        } else {
            gr_buf_putc(out, *p++);
        }
    }
}

void synth_user_message(const char *prompt, size_t plen, const char *response, size_t rlen,
                        gr_buf *out) {
    if (!response) response = "None", rlen = 4;
    gr_buf_append(out, "Human user:\n", 12);
    gr_buf_append(out, prompt, plen);
    gr_buf_append(out, "\n\nAI assistant:\n", 16);
    gr_buf_append(out, response, rlen);
    gr_buf_append(out, "\n\n", 2);
}

static jv message(const char *role, const char *content, size_t n) {
    jv m = jv_object();
    m = jv_object_set(m, jv_string("role"), jv_string(role));
    return jv_object_set(m, jv_string("content"), jv_string_sized(content, (int)n));
}

char *synth_request_body(const synth_params *p, const char *system, size_t slen,
                         const char *user, size_t ulen, size_t *n) {
    jv b = jv_object();
    b = jv_object_set(b, jv_string("model"), jv_string(p->model ? p->model : ""));
    jv msgs = jv_array();
    msgs = jv_array_append(msgs, message("system", system, slen));
    msgs = jv_array_append(msgs, message("user", user, ulen));
    b = jv_object_set(b, jv_string("messages"), msgs);
    b = jv_object_set(b, jv_string("temperature"), jv_number(p->temperature));
    if (p->max_tokens > 0)
        b = jv_object_set(b, jv_string("max_tokens"), jv_number((double)p->max_tokens));
    jv s = jv_dump_string(b, 0);
    *n = (size_t)jv_string_length_bytes(jv_copy(s));
    char *r = gr_xstrndup(jv_string_value(s), *n);
    jv_free(s);
    return r;
}
