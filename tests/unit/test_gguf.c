/* GGUF parser: reads a file written by the `gguf` Python package
 * (scripts/make-gguf-fixtures.py) and rejects truncated and hostile files. */
#include <stdlib.h> /* before test.h, which uses getenv */
#include "test.h"
#include "gguf.h"
#include <unistd.h>

static char *fixture(const char *rel) {
    static char buf[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)sz + 1);
    *n = fread(p, 1, (size_t)sz, f);
    fclose(f);
    return p;
}

TEST(reads_python_written_file) {
    gr_err err = {{0}};
    gguf_file *f = gguf_open(fixture("testdata/gguf/meta.gguf"), &err);
    CHECK_MSG(f, "%s", err.msg);
    CHECK(f->version == 3);
    CHECK(f->n_tensors == 3);
    int64_t i;
    double d;
    const char *s;
    CHECK(gguf_get_int(f, "t.u8", &i, &err) == 0 && i == 200);
    CHECK(gguf_get_int(f, "t.i8", &i, &err) == 0 && i == -100);
    CHECK(gguf_get_int(f, "t.u16", &i, &err) == 0 && i == 60000);
    CHECK(gguf_get_int(f, "t.i16", &i, &err) == 0 && i == -30000);
    CHECK(gguf_get_int(f, "t.u32", &i, &err) == 0 && i == 4000000000LL);
    CHECK(gguf_get_int(f, "t.i32", &i, &err) == 0 && i == -2000000000LL);
    CHECK(gguf_get_int(f, "t.u64", &i, &err) == 0 && i == (1LL << 40));
    CHECK(gguf_get_int(f, "t.i64", &i, &err) == 0 && i == -(1LL << 40));
    CHECK(gguf_get_int(f, "t.bool", &i, &err) == 0 && i == 1);
    CHECK(gguf_get_float(f, "t.f32", &d, &err) == 0 && d == 0.15625);
    CHECK(gguf_get_float(f, "t.f64", &d, &err) == 0 && d == 1e-300);
    CHECK(gguf_get_str(f, "t.str", &s, &err) == 0);
    CHECK_STR(s, "h\xc3\xa9llo");
    CHECK(gguf_get_str(f, "general.architecture", &s, &err) == 0);
    CHECK_STR(s, "llama");
    CHECK(gguf_get_int(f, "absent", &i, &err) == 1);
    CHECK(gguf_get_int(f, "t.str", &i, &err) == -1);
    CHECK(gguf_get_str(f, "t.u8", &s, &err) == -1);
    const gguf_kv *kv;
    CHECK(gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_T_STRING, &kv, &err) == 0);
    CHECK(kv->arr_n == 6);
    CHECK_STR(kv->arr_str[3].s, "\xc4\xa0the");
    CHECK_STR(kv->arr_str[4].s, "\xe6\x97\xa5\xe6\x9c\xac");
    CHECK(kv->arr_str[5].len == 0);
    CHECK(gguf_get_arr(f, "t.arr_i32", GGUF_T_INT64, &kv, &err) == 0);
    CHECK(kv->arr_n == 3 && gguf_arr_int(kv, 1) == -2 && gguf_arr_int(kv, 2) == 3);
    CHECK(gguf_get_arr(f, "t.arr_f32", GGUF_T_FLOAT64, &kv, &err) == 0);
    CHECK(gguf_arr_float(kv, 1) == -1.25);
    CHECK(gguf_get_arr(f, "t.arr_f32", GGUF_T_STRING, &kv, &err) == -1);

    const gguf_tensor *a = gguf_find_tensor(f, "a"), *b = gguf_find_tensor(f, "b"),
                      *c = gguf_find_tensor(f, "c");
    CHECK(a && b && c && !gguf_find_tensor(f, "d"));
    CHECK(a->type == GGML_F32 && a->n_dims == 2 && a->ne[0] == 8 && a->ne[1] == 3);
    CHECK(a->nbytes == 96);
    CHECK(b->type == GGML_F16 && b->ne[0] == 4 && b->ne[1] == 2 && b->nbytes == 16);
    CHECK(c->type == GGML_Q8_0 && c->ne[0] == 64 && c->ne[1] == 2 && c->nbytes == 4 * 34);
    CHECK(((const unsigned char *)a->data - f->base) % f->alignment == 0);
    /* the first float of "a" as the Python side wrote it */
    unsigned char *json;
    size_t jn;
    json = slurp(fixture("testdata/gguf/meta.json"), &jn);
    CHECK(json);
    json[jn] = 0;
    float a0;
    memcpy(&a0, a->data, 4);
    const char *p = strstr((char *)json, "\"a\": [");
    CHECK(p);
    CHECK_NEAR(a0, strtod(p + 6, NULL), 1e-7);
    free(json);
    gguf_close(f);
}

TEST(every_truncation_is_an_error) {
    size_t n;
    unsigned char *buf = slurp(fixture("testdata/gguf/meta.gguf"), &n);
    CHECK(buf);
    gr_err err;
    /* the writer pads after the last tensor; cutting only padding is fine */
    gguf_file *full = gguf_open_mem(buf, n, "t", &err);
    CHECK(full);
    size_t end = 0;
    for (uint64_t i = 0; i < full->n_tensors; i++) {
        size_t e = (size_t)(full->data_offset + full->tensors[i].offset + full->tensors[i].nbytes);
        if (e > end) end = e;
    }
    gguf_close(full);
    CHECK(end > 800 && end <= n);
    for (size_t len = 0; len < end; len++) {
        unsigned char *copy = malloc(len + 1); /* exact size: ASan sees any overread */
        memcpy(copy, buf, len);
        gguf_file *f = gguf_open_mem(copy, len, "t", &err);
        int ok = f == NULL;
        gguf_close(f);
        free(copy);
        CHECK_MSG(ok, "prefix of %zu bytes accepted", len);
    }
    free(buf);
}

/* A tiny writer for hand-made hostile files. */
typedef struct { unsigned char b[4096]; size_t n; } wbuf;
static void w_u32(wbuf *w, uint32_t v) { for (int i = 0; i < 4; i++) w->b[w->n++] = (unsigned char)(v >> (8 * i)); }
static void w_u64(wbuf *w, uint64_t v) { for (int i = 0; i < 8; i++) w->b[w->n++] = (unsigned char)(v >> (8 * i)); }
static void w_str(wbuf *w, const char *s) { w_u64(w, strlen(s)); memcpy(w->b + w->n, s, strlen(s)); w->n += strlen(s); }
static void w_head(wbuf *w, uint32_t ver, uint64_t nt, uint64_t nkv) { w->n = 0; memcpy(w->b, "GGUF", 4); w->n = 4; w_u32(w, ver); w_u64(w, nt); w_u64(w, nkv); }
static void w_tensor(wbuf *w, const char *name, uint64_t ne0, uint64_t ne1, uint32_t type, uint64_t off) {
    w_str(w, name); w_u32(w, 2); w_u64(w, ne0); w_u64(w, ne1); w_u32(w, type); w_u64(w, off);
}
static void w_pad(wbuf *w, size_t data_bytes) { while (w->n % 32) w->b[w->n++] = 0; memset(w->b + w->n, 0, data_bytes); w->n += data_bytes; }

static const char *try_open(wbuf *w, gr_err *err) {
    gguf_file *f = gguf_open_mem(w->b, w->n, "h", err);
    if (f) { gguf_close(f); return NULL; }
    return err->msg;
}

TEST(hostile_headers) {
    wbuf w;
    gr_err err;
    const char *m;
    /* a valid baseline: two F32 tensors of 8 floats each */
    w_head(&w, 3, 2, 0);
    w_tensor(&w, "x", 4, 2, GGML_F32, 0);
    w_tensor(&w, "y", 4, 2, GGML_F32, 32);
    w_pad(&w, 64);
    CHECK_MSG(try_open(&w, &err) == NULL, "%s", err.msg);
    /* version 2 is accepted as well */
    w.b[4] = 2;
    CHECK_MSG(try_open(&w, &err) == NULL, "%s", err.msg);

    w_head(&w, 3, UINT64_C(1) << 62, 0);
    w_pad(&w, 64);
    CHECK((m = try_open(&w, &err)) && strstr(m, "tensor count"));

    w_head(&w, 3, 0, UINT64_C(0xffffffffffff));
    w_pad(&w, 64);
    CHECK((m = try_open(&w, &err)) && strstr(m, "metadata count"));

    w_head(&w, 3, 1, 0);
    w_tensor(&w, "x", UINT64_C(1) << 40, UINT64_C(1) << 40, GGML_F32, 0);
    w_pad(&w, 64);
    CHECK((m = try_open(&w, &err)) && strstr(m, "dimension"));

    w_head(&w, 3, 1, 0);
    w_tensor(&w, "x", 1024, 1024, GGML_F32, 0);
    w_pad(&w, 64);
    CHECK((m = try_open(&w, &err)) && strstr(m, "past the end"));

    w_head(&w, 3, 2, 0);
    w_tensor(&w, "x", 4, 2, GGML_F32, 0);
    w_tensor(&w, "y", 4, 2, GGML_F32, 0);
    w_pad(&w, 64);
    CHECK((m = try_open(&w, &err)) && strstr(m, "overlap"));

    w_head(&w, 3, 1, 0);
    w_tensor(&w, "x", 4, 2, GGML_F32, 4);
    w_pad(&w, 64);
    CHECK((m = try_open(&w, &err)) && strstr(m, "aligned"));

    w_head(&w, 3, 2, 0);
    w_tensor(&w, "x", 4, 2, GGML_F32, 0);
    w_tensor(&w, "x", 4, 2, GGML_F32, 32);
    w_pad(&w, 64);
    CHECK((m = try_open(&w, &err)) && strstr(m, "duplicate tensor"));

    w_head(&w, 3, 1, 0);
    w_tensor(&w, "x", 31, 1, GGML_Q8_0, 0);
    w_pad(&w, 64);
    CHECK((m = try_open(&w, &err)) && strstr(m, "block size"));

    w_head(&w, 3, 1, 0);
    w_tensor(&w, "x", 4, 1, 99, 0);
    w_pad(&w, 64);
    CHECK((m = try_open(&w, &err)) && strstr(m, "unsupported ggml type"));

    w_head(&w, 1, 0, 0);
    CHECK((m = try_open(&w, &err)) && strstr(m, "version"));

    w_head(&w, 3, 0, 1);
    w_str(&w, "k"); w_u32(&w, GGUF_T_ARRAY); w_u32(&w, GGUF_T_STRING); w_u64(&w, UINT64_C(1) << 50);
    w_pad(&w, 64);
    CHECK((m = try_open(&w, &err)) && strstr(m, "array count"));

    w_head(&w, 3, 0, 1);
    w_str(&w, "k"); w_u32(&w, GGUF_T_ARRAY); w_u32(&w, GGUF_T_ARRAY); w_u64(&w, 1);
    w_pad(&w, 64);
    CHECK((m = try_open(&w, &err)) && strstr(m, "element type"));

    w_head(&w, 3, 0, 2);
    w_str(&w, "k"); w_u32(&w, GGUF_T_UINT8); w.b[w.n++] = 1;
    w_str(&w, "k"); w_u32(&w, GGUF_T_UINT8); w.b[w.n++] = 2;
    w_pad(&w, 0);
    CHECK((m = try_open(&w, &err)) && strstr(m, "duplicate metadata"));

    w_head(&w, 3, 0, 1);
    w_str(&w, "general.alignment"); w_u32(&w, GGUF_T_UINT32); w_u32(&w, 24);
    w_pad(&w, 0);
    CHECK((m = try_open(&w, &err)) && strstr(m, "alignment"));

    w_head(&w, 3, 0, 1);
    w_str(&w, "k"); w_u32(&w, 77); w_u32(&w, 0);
    CHECK((m = try_open(&w, &err)) && strstr(m, "value type"));

    memcpy(w.b, "GGUX", 4);
    CHECK((m = try_open(&w, &err)) && strstr(m, "magic"));

    gguf_file *f = gguf_open("/nonexistent/x.gguf", &err);
    CHECK(!f && strstr(err.msg, "/nonexistent/x.gguf"));
}

#include "model.h"
/* Model loading from a GGUF that is not a complete llama model: clear errors. */
TEST(model_load_errors) {
    gr_err err;
    gr_model *m = gr_model_load(fixture("testdata/gguf/meta.gguf"), &err);
    CHECK(!m && strstr(err.msg, "llama.embedding_length"));
    wbuf w;
    w_head(&w, 3, 0, 6);
    w_str(&w, "general.architecture"); w_u32(&w, GGUF_T_STRING); w_str(&w, "llama");
    w_str(&w, "llama.embedding_length"); w_u32(&w, GGUF_T_UINT32); w_u32(&w, 64);
    w_str(&w, "llama.feed_forward_length"); w_u32(&w, GGUF_T_UINT32); w_u32(&w, 64);
    w_str(&w, "llama.block_count"); w_u32(&w, GGUF_T_UINT32); w_u32(&w, 1u << 30);
    w_str(&w, "llama.attention.head_count"); w_u32(&w, GGUF_T_UINT32); w_u32(&w, 4);
    w_str(&w, "general.alignment"); w_u32(&w, GGUF_T_UINT32); w_u32(&w, 32);
    w_pad(&w, 0);
    char path[] = "/tmp/gr-test-gguf-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, w.b, w.n) == (ssize_t)w.n);
    close(fd);
    m = gr_model_load(path, &err);
    unlink(path);
    CHECK_MSG(!m && strstr(err.msg, "block_count"), "%s", err.msg);
}

int main(void) {
    (void)test_shared_dir;
    RUN(reads_python_written_file);
    RUN(every_truncation_is_an_error);
    RUN(hostile_headers);
    RUN(model_load_errors);
    return TEST_EXIT();
}
