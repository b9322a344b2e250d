#include "synth_reply.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <jv.h>
#include "gr_utf8.h"

/* Copies s[0..n) into out as printable text (see the header). */
static void printable(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0, i = 0;
    while (i < n && o + 1 < cap) {
        uint32_t cp;
        int k = gr_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (k <= 0) { out[o++] = '?'; i++; continue; }
        if (cp < 0x20 || cp == 0x7f) { out[o++] = ' '; i++; continue; }
        if (o + (size_t)k + 1 > cap) break;
        memcpy(out + o, s + i, (size_t)k);
        o += (size_t)k;
        i += (size_t)k;
    }
    while (o && out[o - 1] == ' ') o--;
    out[o] = 0;
}

void synth_reply_free(synth_reply *r) {
    free(r->content);
    free(r->model);
    memset(r, 0, sizeof *r);
}

/* Non-negative integer field, or -1. */
static long count_field(jv obj, const char *key) {
    if (jv_get_kind(obj) != JV_KIND_OBJECT) return -1;
    jv v = jv_object_get(jv_copy(obj), jv_string(key));
    long r = -1;
    if (jv_get_kind(v) == JV_KIND_NUMBER) {
        double d = jv_number_value(v);
        if (d >= 0 && d < 1e15 && d == (double)(long)d) r = (long)d;
    }
    jv_free(v);
    return r;
}

int synth_reply_parse(const char *body, size_t n, synth_reply *r, gr_err *err) {
    memset(r, 0, sizeof *r);
    r->prompt_tokens = r->completion_tokens = -1;
    if (n > INT_MAX) return gr_errf(err, "reply of %zu bytes is too large", n);
    jv v = jv_parse_sized(body, (int)n);
    if (!jv_is_valid(v)) {
        jv m = jv_invalid_get_msg(v);
        /* jq quotes the whole input in its message: keep only the reason. */
        char why[128] = "not JSON";
        if (jv_get_kind(m) == JV_KIND_STRING) {
            const char *s = jv_string_value(m);
            const char *cut = strstr(s, " (while parsing");
            printable(s, cut ? (size_t)(cut - s) : strlen(s), why, sizeof why);
        }
        jv_free(m);
        return gr_errf(err, "reply is not valid JSON: %s", why);
    }
    int rc = -1;
    if (jv_get_kind(v) != JV_KIND_OBJECT) {
        gr_errf(err, "reply is a JSON %s, not an object", jv_kind_name(jv_get_kind(v)));
        goto done;
    }
    jv model = jv_object_get(jv_copy(v), jv_string("model"));
    if (jv_get_kind(model) == JV_KIND_STRING && jv_string_length_bytes(jv_copy(model)) < 256)
        r->model = gr_xstrdup(jv_string_value(model));
    jv_free(model);
    jv usage = jv_object_get(jv_copy(v), jv_string("usage"));
    r->prompt_tokens = count_field(usage, "prompt_tokens");
    r->completion_tokens = count_field(usage, "completion_tokens");
    jv_free(usage);
    jv choices = jv_object_get(jv_copy(v), jv_string("choices"));
    if (jv_get_kind(choices) != JV_KIND_ARRAY || jv_array_length(jv_copy(choices)) < 1) {
        jv_free(choices);
        jv e = jv_object_get(jv_copy(v), jv_string("error"));
        int has_error = jv_get_kind(e) != JV_KIND_INVALID && jv_get_kind(e) != JV_KIND_NULL;
        jv_free(e);
        if (has_error) {
            char msg[300];
            synth_error_message(body, n, msg, sizeof msg);
            gr_errf(err, "reply is an error: %s", msg);
        } else {
            gr_errf(err, "reply has no \"choices\"");
        }
        goto done;
    }
    jv c0 = jv_array_get(choices, 0);
    if (jv_get_kind(c0) != JV_KIND_OBJECT) {
        jv_free(c0);
        gr_errf(err, "reply choices[0] is not an object");
        goto done;
    }
    jv fin = jv_object_get(jv_copy(c0), jv_string("finish_reason"));
    if (jv_get_kind(fin) == JV_KIND_STRING) {
        const char *s = jv_string_value(fin);
        size_t k = strlen(s);
        if (k >= sizeof r->finish_reason) k = sizeof r->finish_reason - 1;
        for (size_t i = 0; i < k; i++)
            r->finish_reason[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    }
    jv_free(fin);
    jv msg = jv_object_get(c0, jv_string("message"));
    jv content = jv_get_kind(msg) == JV_KIND_OBJECT
                     ? jv_object_get(jv_copy(msg), jv_string("content"))
                     : jv_invalid();
    jv_free(msg);
    if (jv_get_kind(content) != JV_KIND_STRING) {
        jv_free(content);
        gr_errf(err, "reply has no text in choices[0].message.content");
        goto done;
    }
    r->content_len = (size_t)jv_string_length_bytes(jv_copy(content));
    r->content = gr_xstrndup(jv_string_value(content), r->content_len);
    jv_free(content);
    rc = 0;
done:
    jv_free(v);
    return rc;
}

void synth_error_message(const char *body, size_t n, char *out, size_t cap) {
    if (!cap) return;
    out[0] = 0;
    jv v = n <= INT_MAX ? jv_parse_sized(body, (int)n) : jv_invalid();
    if (jv_get_kind(v) == JV_KIND_OBJECT) {
        jv e = jv_object_get(jv_copy(v), jv_string("error"));
        jv m = jv_invalid();
        if (jv_get_kind(e) == JV_KIND_OBJECT) m = jv_object_get(jv_copy(e), jv_string("message"));
        else if (jv_get_kind(e) == JV_KIND_STRING) m = jv_copy(e);
        else m = jv_object_get(jv_copy(v), jv_string("message"));
        jv_free(e);
        if (jv_get_kind(m) == JV_KIND_STRING) {
            printable(jv_string_value(m), (size_t)jv_string_length_bytes(jv_copy(m)), out, cap);
            jv_free(m);
            jv_free(v);
            return;
        }
        jv_free(m);
    }
    jv_free(v);
    printable(body, n, out, cap);
}
