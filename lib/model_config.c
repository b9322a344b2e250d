/* config.json of a LlamaForCausalLM checkpoint -> gr_model_config. */
#include "model.h"
#include <jv.h>
#include "gr_utf8.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Field lookup: returns the value (consumed by the caller) or invalid. */
static jv field(jv obj, const char *key) {
    jv v = jv_object_get(jv_copy(obj), jv_string(key));
    if (jv_get_kind(v) == JV_KIND_NULL) {
        jv_free(v);
        return jv_invalid();
    }
    return v;
}

/* Reads an integer field into *out. required: a missing field is an error. */
static int get_int(jv obj, const char *key, int required, int lo, int hi, int *out,
                   const char *name, gr_err *err) {
    jv v = field(obj, key);
    if (!jv_is_valid(v)) {
        jv_free(v);
        return required ? gr_errf(err, "%s: missing field '%s'", name, key) : 1;
    }
    double d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : NAN;
    jv_free(v);
    if (!(d == floor(d)) || d < lo || d > hi)
        return gr_errf(err, "%s: field '%s' must be an integer in [%d, %d]", name, key, lo, hi);
    *out = (int)d;
    return 0;
}

static int get_num(jv obj, const char *key, int required, double *out, const char *name,
                   gr_err *err) {
    jv v = field(obj, key);
    if (!jv_is_valid(v)) {
        jv_free(v);
        return required ? gr_errf(err, "%s: missing field '%s'", name, key) : 1;
    }
    if (jv_get_kind(v) != JV_KIND_NUMBER || !isfinite(jv_number_value(v))) {
        jv_free(v);
        return gr_errf(err, "%s: field '%s' must be a number", name, key);
    }
    *out = jv_number_value(v);
    jv_free(v);
    return 0;
}

static int parse_rope_scaling(jv cfgj, gr_model_config *c, const char *name, gr_err *err) {
    jv rs = field(cfgj, "rope_scaling");
    if (!jv_is_valid(rs)) {
        jv_free(rs);
        rs = field(cfgj, "rope_parameters"); /* the transformers 5 form */
    }
    if (!jv_is_valid(rs)) {
        jv_free(rs);
        return 0;
    }
    int rc = 0;
    if (jv_get_kind(rs) != JV_KIND_OBJECT) {
        rc = gr_errf(err, "%s: rope_scaling must be an object or null", name);
        goto out;
    }
    jv t = field(rs, "rope_type");
    if (!jv_is_valid(t)) {
        jv_free(t);
        t = field(rs, "type"); /* older configs */
    }
    if (jv_get_kind(t) != JV_KIND_STRING) {
        jv_free(t);
        rc = gr_errf(err, "%s: rope_scaling has no rope_type", name);
        goto out;
    }
    if (strcmp(jv_string_value(t), "default") == 0) {
        jv_free(t);
        goto out;
    }
    if (strcmp(jv_string_value(t), "llama3") != 0) {
        rc = gr_errf(err, "%s: unsupported rope_scaling type '%s' (llama3 is supported)", name,
                     jv_string_value(t));
        jv_free(t);
        goto out;
    }
    jv_free(t);
    double f, lf, hf;
    int orig;
    if (get_num(rs, "factor", 1, &f, name, err) || get_num(rs, "low_freq_factor", 1, &lf, name, err) ||
        get_num(rs, "high_freq_factor", 1, &hf, name, err) ||
        get_int(rs, "original_max_position_embeddings", 1, 1, 1 << 30, &orig, name, err)) {
        rc = -1;
        goto out;
    }
    if (f <= 0 || lf <= 0 || hf <= lf) {
        rc = gr_errf(err, "%s: rope_scaling needs factor > 0 and high_freq_factor > "
                     "low_freq_factor > 0", name);
        goto out;
    }
    c->rope_llama3 = 1;
    c->rope_factor = (float)f;
    c->rope_low_freq = (float)lf;
    c->rope_high_freq = (float)hf;
    c->rope_orig_max = orig;
out:
    jv_free(rs);
    return rc;
}

static int parse_eos(jv cfgj, gr_model_config *c, const char *name, gr_err *err) {
    jv e = field(cfgj, "eos_token_id");
    c->n_eos = 0;
    int rc = 0;
    if (!jv_is_valid(e)) {
        jv_free(e);
        return 0;
    }
    if (jv_get_kind(e) == JV_KIND_NUMBER) e = jv_array_append(jv_array(), e);
    if (jv_get_kind(e) != JV_KIND_ARRAY) {
        jv_free(e);
        return gr_errf(err, "%s: eos_token_id must be a number or a list", name);
    }
    int n = jv_array_length(jv_copy(e));
    if (n > GR_MAX_EOS) n = -1;
    for (int i = 0; i < n && !rc; i++) {
        jv x = jv_array_get(jv_copy(e), i);
        double d = jv_get_kind(x) == JV_KIND_NUMBER ? jv_number_value(x) : -1;
        jv_free(x);
        if (d != floor(d) || d < 0 || d > 1e9) rc = -1;
        else c->eos_ids[c->n_eos++] = (int)d;
    }
    jv_free(e);
    if (n < 0) return gr_errf(err, "%s: more than %d eos_token_id values", name, GR_MAX_EOS);
    if (rc) return gr_errf(err, "%s: eos_token_id values must be non-negative integers", name);
    return 0;
}

/* The model must be a LLaMA: `architectures` (when given) names
 * LlamaForCausalLM and `model_type` (when given) is "llama". Another model
 * with the same field names (Qwen2's biases, Gemma's norms, GPT-2's layout)
 * would otherwise load and compute wrong logits without a word. */
static int check_architecture(jv j, const char *name, gr_err *err) {
    jv a = field(j, "architectures");
    int rc = 0;
    if (jv_get_kind(a) == JV_KIND_ARRAY) {
        int llama = 0, n = jv_array_length(jv_copy(a));
        jv_array_foreach(a, i, e) {
            if (jv_get_kind(e) == JV_KIND_STRING && !strcmp(jv_string_value(e), "LlamaForCausalLM")) llama = 1;
            jv_free(e);
        }
        if (!llama && n > 0) {
            jv e = jv_array_get(jv_copy(a), 0);
            rc = gr_errf(err, "%s: architecture %s is not supported (LlamaForCausalLM is)", name,
                         jv_get_kind(e) == JV_KIND_STRING ? jv_string_value(e) : "(not a string)");
            jv_free(e);
        }
    } else if (jv_is_valid(a) && jv_get_kind(a) != JV_KIND_NULL) {
        rc = gr_errf(err, "%s: architectures must be a list of names", name);
    }
    jv_free(a);
    if (rc) return rc;
    jv t = field(j, "model_type");
    if (jv_get_kind(t) == JV_KIND_STRING && strcmp(jv_string_value(t), "llama") != 0)
        rc = gr_errf(err, "%s: model_type '%s' is not supported (llama is)", name, jv_string_value(t));
    jv_free(t);
    return rc;
}

int gr_config_parse(const char *json, size_t len, const char *name, gr_model_config *c,
                    gr_err *err) {
    memset(c, 0, sizeof *c);
    if (len > (1u << 24)) return gr_errf(err, "%s: config larger than 16 MB", name);
    size_t bad = gr_utf8_check(json, len); /* libjq 1.6 leaks on invalid UTF-8 */
    if (bad != len) return gr_errf(err, "%s: invalid UTF-8 at byte %zu", name, bad);
    jv j = jv_parse_sized(json, (int)len);
    if (!jv_is_valid(j)) {
        jv msg = jv_invalid_get_msg(j);
        gr_errf(err, "%s: %s", name,
                jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "invalid JSON");
        jv_free(msg);
        return -1;
    }
    int rc = -1;
    if (jv_get_kind(j) != JV_KIND_OBJECT) {
        gr_errf(err, "%s: not a JSON object", name);
        goto out;
    }
    if (check_architecture(j, name, err)) goto out;
    const int big = 1 << 30;
    if (get_int(j, "hidden_size", 1, 1, 1 << 20, &c->dim, name, err) ||
        get_int(j, "intermediate_size", 1, 1, 1 << 22, &c->hidden_dim, name, err) ||
        get_int(j, "num_hidden_layers", 1, 1, 4096, &c->n_layers, name, err) ||
        get_int(j, "num_attention_heads", 1, 1, 4096, &c->n_heads, name, err) ||
        get_int(j, "vocab_size", 1, 1, 1 << 24, &c->vocab_size, name, err))
        goto out;
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->dim / c->n_heads;
    c->bos_id = -1;
    c->max_pos = 2048;
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-6f;
    double d;
    int r;
    if (get_int(j, "num_key_value_heads", 0, 1, 4096, &c->n_kv_heads, name, err) < 0 ||
        get_int(j, "head_dim", 0, 1, 1 << 16, &c->head_dim, name, err) < 0 ||
        get_int(j, "max_position_embeddings", 0, 1, big, &c->max_pos, name, err) < 0 ||
        get_int(j, "bos_token_id", 0, 0, big, &c->bos_id, name, err) < 0)
        goto out;
    if ((r = get_num(j, "rms_norm_eps", 0, &d, name, err)) < 0) goto out;
    if (r == 0) c->norm_eps = (float)d;
    if ((r = get_num(j, "rope_theta", 0, &d, name, err)) < 0) goto out;
    if (r == 0) c->rope_theta = (float)d;
    jv rp = field(j, "rope_parameters"); /* transformers 5 moves rope_theta here */
    if (r == 1 && jv_get_kind(rp) == JV_KIND_OBJECT) {
        r = get_num(rp, "rope_theta", 0, &d, name, err);
        if (r == 0) c->rope_theta = (float)d;
    }
    jv_free(rp);
    if (r < 0) goto out;
    jv t = field(j, "tie_word_embeddings");
    c->tie_embeddings = 0; /* transformers' LlamaConfig default is False */
    if (jv_get_kind(t) == JV_KIND_TRUE) c->tie_embeddings = 1;
    else if (jv_is_valid(t) && jv_get_kind(t) != JV_KIND_FALSE) {
        jv_free(t);
        gr_errf(err, "%s: tie_word_embeddings must be true or false", name);
        goto out;
    }
    jv_free(t);
    jv dt = field(j, "torch_dtype");
    if (!jv_is_valid(dt)) {
        jv_free(dt);
        dt = field(j, "dtype"); /* transformers >= 4.56 writes "dtype" */
    }
    if (jv_get_kind(dt) == JV_KIND_STRING)
        snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", jv_string_value(dt));
    jv_free(dt);
    jv act = field(j, "hidden_act");
    if (jv_get_kind(act) == JV_KIND_STRING && strcmp(jv_string_value(act), "silu") != 0) {
        gr_errf(err, "%s: hidden_act '%s' is not supported (silu is)", name, jv_string_value(act));
        jv_free(act);
        goto out;
    }
    jv_free(act);
    if (parse_rope_scaling(j, c, name, err) || parse_eos(j, c, name, err)) goto out;
    rc = gr_config_check(c, name, err);
out:
    jv_free(j);
    return rc;
}

int gr_config_check(const gr_model_config *c, const char *name, gr_err *err) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->head_dim <= 0 || c->vocab_size <= 0 || c->max_pos <= 0)
        return gr_errf(err, "%s: model dimensions must be positive", name);
    if (c->n_heads % c->n_kv_heads)
        return gr_errf(err, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                       name, c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2)
        return gr_errf(err, "%s: head_dim %d must be even (RoPE rotates pairs)", name, c->head_dim);
    if (!(c->norm_eps > 0) || !(c->rope_theta > 0))
        return gr_errf(err, "%s: rms_norm_eps and rope_theta must be positive", name);
    if ((int64_t)c->n_heads * c->head_dim > (1 << 20))
        return gr_errf(err, "%s: attention width too large", name);
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] >= c->vocab_size)
            return gr_errf(err, "%s: eos_token_id %d is outside the vocabulary", name, c->eos_ids[i]);
    if (c->bos_id >= c->vocab_size)
        return gr_errf(err, "%s: bos_token_id %d is outside the vocabulary", name, c->bos_id);
    return 0;
}

/* transformers' _compute_llama3_parameters, in double then rounded to float. */
void gr_rope_inv_freq(const gr_model_config *c, float *inv) {
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        /* torch computes base ** (arange(0, d, 2).float() / d) in float32 */
        float expo = (float)(2 * i) / (float)c->head_dim;
        float f = 1.0f / powf(c->rope_theta, expo);
        if (c->rope_llama3) {
            double L0 = c->rope_orig_max, lf = c->rope_low_freq, hf = c->rope_high_freq;
            double wavelen = 2 * M_PI / f;
            if (wavelen < L0 / hf) {
                /* keep */
            } else if (wavelen > L0 / lf) {
                f = f / c->rope_factor;
            } else {
                double s = (L0 / wavelen - lf) / (hf - lf);
                f = (float)((1 - s) * f / c->rope_factor + s * f);
            }
        }
        inv[i] = f;
    }
}
