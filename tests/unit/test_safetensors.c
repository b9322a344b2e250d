/* safetensors and config.json: hostile and broken inputs are clear errors. */
#include <stdlib.h>
#include "test.h"
#include "model.h"
#include "safetensors.h"

/* header JSON + data bytes -> a safetensors image in buf */
static size_t build(unsigned char *buf, const char *hdr, size_t data_len) {
    uint64_t n = strlen(hdr);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, hdr, n);
    for (size_t i = 0; i < data_len; i++) buf[8 + n + i] = (unsigned char)i;
    return 8 + n + data_len;
}

static const char *open_err(const char *hdr, size_t data_len, gr_err *err) {
    static unsigned char buf[8192];
    size_t n = build(buf, hdr, data_len);
    unsigned char *exact = malloc(n);
    memcpy(exact, buf, n);
    st_file *f = st_open_mem(exact, n, "t.safetensors", err);
    const char *r = f ? NULL : err->msg;
    st_close(f);
    free(exact);
    return r;
}

TEST(valid_file) {
    unsigned char buf[256];
    gr_err err;
    size_t n = build(buf, "{\"__metadata__\":{\"format\":\"pt\"},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                     "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]}}", 22);
    st_file *f = st_open_mem(buf, n, "t", &err);
    CHECK_MSG(f, "%s", err.msg);
    CHECK(f->n_tensors == 2);
    const st_tensor *a = st_find(f, "a"), *b = st_find(f, "b");
    CHECK(a && b && a->dtype == ST_F32 && a->n_dims == 2 && a->shape[1] == 2 && a->nbytes == 16);
    CHECK(b->dtype == ST_BF16 && b->nbytes == 6 && (const unsigned char *)b->data - (const unsigned char *)a->data == 16);
    st_close(f);
}

TEST(bad_files) {
    gr_err err;
    const char *m;
    CHECK((m = open_err("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12, &err)) &&
          strstr(m, "larger than the file"));
    CHECK((m = open_err("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 12, &err)) &&
          strstr(m, "past the end"));
    CHECK((m = open_err("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, &err)) &&
          strstr(m, "overlap"));
    CHECK((m = open_err("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16, &err)) &&
          strstr(m, "bytes for a"));
    CHECK((m = open_err("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 16, &err)) &&
          strstr(m, "past the end"));
    CHECK((m = open_err("{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, &err)) &&
          strstr(m, "dtype"));
    CHECK((m = open_err("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 16, &err)) &&
          strstr(m, "shape"));
    CHECK((m = open_err("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                        "\"data_offsets\":[0,8]}}", 16, &err)) && strstr(m, "shape"));
    CHECK((m = open_err("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 16, &err)) &&
          strstr(m, "data_offsets"));
    CHECK((m = open_err("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 16, &err)));
    CHECK((m = open_err("[1,2]", 0, &err)) && strstr(m, "not a JSON object"));
    CHECK((m = open_err("{\"a\":", 0, &err)));
    /* a header length beyond the file */
    unsigned char hb[16] = {0xff, 0xff, 0xff, 0, 0, 0, 0, 0, '{', '}'};
    st_file *f = st_open_mem(hb, 10, "t", &err);
    CHECK(!f && strstr(err.msg, "header length"));
    f = st_open_mem(hb, 5, "t", &err);
    CHECK(!f && strstr(err.msg, "truncated"));
}

TEST(truncated_model_file) {
    const char *root = getenv("GR_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/testdata/models/tiny-llama3-bf16/model.safetensors", root ? root : ".");
    FILE *fp = fopen(path, "rb");
    CHECK(fp);
    fseek(fp, 0, SEEK_END);
    size_t n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc(n);
    CHECK(fread(buf, 1, n, fp) == n);
    fclose(fp);
    gr_err err;
    st_file *full = st_open_mem(buf, n, "t", &err);
    CHECK_MSG(full, "%s", err.msg);
    st_close(full);
    for (size_t len = 0; len < n; len += (len < 4096 ? 1 : 997)) {
        unsigned char *cp = malloc(len + 1);
        memcpy(cp, buf, len);
        st_file *f = st_open_mem(cp, len, "t", &err);
        int bad = f == NULL;
        st_close(f);
        free(cp);
        CHECK_MSG(bad, "prefix of %zu bytes accepted", len);
    }
    free(buf);
}

static const char *cfg_err(const char *json, gr_model_config *c, gr_err *err) {
    return gr_config_parse(json, strlen(json), "config.json", c, err) ? err->msg : NULL;
}

#define BASE "\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":300"

TEST(config_json) {
    gr_model_config c;
    gr_err err;
    const char *m;
    CHECK_MSG(!(m = cfg_err("{" BASE ",\"eos_token_id\":7,\"bos_token_id\":1}", &c, &err)), "%s", m);
    CHECK(c.n_eos == 1 && c.eos_ids[0] == 7 && c.n_kv_heads == 4 && c.head_dim == 16 && !c.tie_embeddings);
    CHECK(!cfg_err("{" BASE ",\"eos_token_id\":[7,9],\"tie_word_embeddings\":true}", &c, &err));
    CHECK(c.n_eos == 2 && c.eos_ids[1] == 9 && c.tie_embeddings);
    CHECK(!cfg_err("{" BASE ",\"rope_theta\":500000.0,\"rope_scaling\":{\"factor\":8.0,\"low_freq_factor\":1.0,"
                   "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"}}", &c, &err));
    CHECK(c.rope_llama3 && c.rope_factor == 8.0f && c.rope_theta == 500000.0f && c.rope_orig_max == 8192);
    CHECK((m = cfg_err("{\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":300}", &c, &err)) &&
          strstr(m, "missing field 'hidden_size'"));
    CHECK((m = cfg_err("{" BASE ",\"num_key_value_heads\":3}", &c, &err)) && strstr(m, "multiple"));
    CHECK((m = cfg_err("{" BASE ",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":2}}", &c, &err)) && strstr(m, "yarn"));
    CHECK((m = cfg_err("{" BASE ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":2}}", &c, &err)) && strstr(m, "low_freq_factor"));
    CHECK((m = cfg_err("{" BASE ",\"eos_token_id\":\"x\"}", &c, &err)) && strstr(m, "eos_token_id"));
    CHECK((m = cfg_err("{" BASE ",\"eos_token_id\":300}", &c, &err)) && strstr(m, "outside"));
    CHECK((m = cfg_err("{" BASE ",\"hidden_size\":-1}", &c, &err)));
    CHECK((m = cfg_err("{" BASE ",\"hidden_act\":\"gelu\"}", &c, &err)) && strstr(m, "gelu"));
    CHECK((m = cfg_err("{" BASE ",\"head_dim\":15}", &c, &err)) && strstr(m, "even"));
    CHECK((m = cfg_err("{\"hidden_size\":", &c, &err)));
    /* another architecture is refused by name, also when its fields look like LLaMA's */
    CHECK(!cfg_err("{" BASE ",\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\"}", &c, &err));
    CHECK((m = cfg_err("{\"architectures\":[\"GPT2LMHeadModel\"],\"model_type\":\"gpt2\",\"n_embd\":768}", &c, &err)) &&
          strstr(m, "architecture GPT2LMHeadModel is not supported"));
    CHECK((m = cfg_err("{" BASE ",\"architectures\":[\"Qwen2ForCausalLM\"]}", &c, &err)) && strstr(m, "Qwen2ForCausalLM"));
    CHECK((m = cfg_err("{" BASE ",\"model_type\":\"gemma\"}", &c, &err)) && strstr(m, "model_type 'gemma'"));
    CHECK((m = cfg_err("{" BASE ",\"architectures\":\"LlamaForCausalLM\"}", &c, &err)) && strstr(m, "list"));
}

TEST(missing_folder_pieces) {
    gr_err err;
    gr_model *m = gr_model_load("/nonexistent-model-dir", &err);
    CHECK(!m && strstr(err.msg, "/nonexistent-model-dir"));
    const char *root = getenv("GR_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/testdata", root ? root : ".");
    m = gr_model_load(path, &err);
    CHECK(!m && strstr(err.msg, "config.json"));
}

int main(void) {
    (void)test_shared_dir;
    RUN(valid_file);
    RUN(bad_files);
    RUN(truncated_model_file);
    RUN(config_json);
    RUN(missing_folder_pieces);
    return TEST_EXIT();
}
