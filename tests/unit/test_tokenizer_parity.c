/* Parity of our tokenizer with the reference implementations, on fixtures
 * made by scripts/make-tokenizer-fixtures.py (tiktoken and Hugging Face
 * tokenizers): the hand-made adversarial set with full ids, and every text of
 * ../shared/data/guardreasoner by hash of its ids. Each source (LLaMA 3's
 * tiktoken file, its tokenizer.json, SmolLM2's tokenizer.json, its GGUF's
 * tokenizer in a committed vocabulary-only GGUF, and the real GGUF when cached)
 * must give the reference ids, and decode(encode(x)) == x. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "test.h"
#include "tok_fixture.h"
#include "gr_io.h"
#include "gr_utf8.h"

#if defined(__SANITIZE_ADDRESS__)
#define CORPUS_STRIDE 23 /* sanitizer builds check every 23rd text: same code, less time */
#else
#define CORPUS_STRIDE 1
#endif

static gr_tokenizer *tk_l3_tt, *tk_l3_json, *tk_sm_json, *tk_sm_gguf, *tk_sm_vgguf;

static gr_tokenizer *load(const char *path) {
    gr_err err = {{0}};
    gr_tokenizer *t = gr_tokenizer_load(path, &err);
    if (!t) printf("# load %s: %s\n", path, err.msg);
    return t;
}

TEST(load_sources) {
    const char *m = tf_llama3_model();
    if (m) CHECK((tk_l3_tt = load(m)) != NULL);
    CHECK((tk_l3_json = load(tf_path("testdata/tokenizer/llama3/tokenizer.json.zst"))) != NULL);
    CHECK((tk_sm_json = load(tf_path("testdata/tokenizer/smollm2/tokenizer.json.zst"))) != NULL);
    CHECK((tk_sm_vgguf = load(tf_path("testdata/tokenizer/smollm2/vocab.gguf.zst"))) != NULL);
    CHECK(gr_tokenizer_vocab_size(tk_sm_vgguf) == 49152);
    CHECK_STR(gr_tokenizer_pretok_name(tk_sm_vgguf), "smollm");
    CHECK(gr_tokenizer_bos(tk_sm_vgguf) == 1 && gr_tokenizer_eos(tk_sm_vgguf) == 2);
    const char *g = tf_smollm2_gguf();
    if (g) CHECK((tk_sm_gguf = load(g)) != NULL);
    if (!m) printf("# no ../shared LLaMA 3 tokenizer.model: tiktoken source not tested\n");
    if (!g) printf("# no SmolLM2 GGUF (scripts/fetch-test-model, or GR_TEST_GGUF): GGUF source not tested\n");
    CHECK(gr_tokenizer_vocab_size(tk_l3_json) == 128256);
    CHECK(gr_tokenizer_vocab_size(tk_sm_json) == 49152);
    CHECK_STR(gr_tokenizer_pretok_name(tk_l3_json), "llama3");
    CHECK_STR(gr_tokenizer_pretok_name(tk_sm_json), "smollm");
    CHECK(gr_tokenizer_bos(tk_l3_json) == 128000 && gr_tokenizer_adds_bos(tk_l3_json));
    CHECK(gr_tokenizer_eos(tk_l3_json) == 128001);
    CHECK(gr_tokenizer_bos(tk_sm_json) == 1 && !gr_tokenizer_adds_bos(tk_sm_json));
    CHECK(gr_tokenizer_eos(tk_sm_json) == 2);
    if (tk_l3_tt) {
        CHECK(gr_tokenizer_vocab_size(tk_l3_tt) == 128256);
        CHECK(gr_tokenizer_bos(tk_l3_tt) == 128000 && gr_tokenizer_adds_bos(tk_l3_tt));
        /* same vocabulary, id by id */
        for (int32_t id = 0; id < 128256; id++) {
            size_t a, b;
            const char *pa = gr_tokenizer_token_bytes(tk_l3_tt, id, &a);
            const char *pb = gr_tokenizer_token_bytes(tk_l3_json, id, &b);
            CHECK_MSG(pa && pb && a == b && !memcmp(pa, pb, a), "token %d differs", id);
        }
    }
    if (tk_sm_gguf) {
        CHECK(gr_tokenizer_vocab_size(tk_sm_gguf) == 49152);
        CHECK_STR(gr_tokenizer_pretok_name(tk_sm_gguf), "smollm");
        CHECK(gr_tokenizer_bos(tk_sm_gguf) == 1 && gr_tokenizer_eos(tk_sm_gguf) == 2);
        CHECK(!gr_tokenizer_adds_bos(tk_sm_gguf));
    }
}

/* Compares enc(text) with want; on mismatch prints where. 1 when equal. */
static int same_ids(const char *who, const char *name, gr_tokenizer *t, const char *text, size_t len,
                    const gr_ids *want) {
    gr_ids got = {0};
    gr_err err = {{0}};
    gr_tokenizer_encode(t, text, len, &got, &err);
    size_t at;
    int ok = tf_ids_eq(&got, want, &at);
    if (!ok)
        printf("# %s %s: %zu ids vs %zu expected, first difference at %zu (got %d, want %d)\n", who,
               name, got.n, want->n, at, at < got.n ? got.v[at] : -1, at < want->n ? want->v[at] : -1);
    gr_ids_free(&got);
    return ok;
}

static int round_trip(gr_tokenizer *t, const char *text, size_t len) {
    gr_ids ids = {0};
    gr_err err = {{0}};
    gr_buf b = {0};
    gr_tokenizer_encode(t, text, len, &ids, &err);
    int ok = gr_tokenizer_decode(t, ids.v, ids.n, 0, &b, &err) == 0 && b.len == len &&
             (len == 0 || memcmp(b.data, text, len) == 0);
    gr_ids_free(&ids);
    gr_buf_free(&b);
    return ok;
}

/* 1 when every byte of text has a single-byte token. */
static int all_bytes(gr_tokenizer *t, const char *text, size_t len) {
    static uint8_t has[256];
    static gr_tokenizer *for_t;
    if (for_t != t) {
        memset(has, 0, sizeof has);
        for (int32_t id = 0; (size_t)id < gr_tokenizer_vocab_size(t); id++) {
            size_t n;
            const char *p = gr_tokenizer_token_bytes(t, id, &n);
            if (p && n == 1) has[(unsigned char)p[0]] = 1;
        }
        for_t = t;
    }
    for (size_t i = 0; i < len; i++)
        if (!has[(unsigned char)text[i]]) return 0;
    return 1;
}

TEST(adversarial) {
    gr_err err = {{0}};
    gr_reader *r = gr_reader_open(tf_path("testdata/tokenizer/adversarial.jsonl.zst"), NULL, &err);
    CHECK_MSG(r != NULL, "%s", err.msg);
    jv rec;
    int n = 0, bad = 0, rc;
    while ((rc = gr_reader_next(r, &rec, &err)) == 1) {
        const char *name = gr_jv_str(rec, "name");
        jv text = jv_object_get(jv_copy(rec), jv_string("text"));
        const char *s = jv_string_value(text);
        size_t len = (size_t)jv_string_length_bytes(jv_copy(text));
        gr_ids l3 = {0}, l3tt = {0}, sm = {0};
        jv a = jv_object_get(jv_copy(rec), jv_string("llama3"));
        tf_jv_ids(a, &l3);
        jv_free(a);
        a = jv_object_get(jv_copy(rec), jv_string("llama3_tiktoken"));
        if (jv_get_kind(a) == JV_KIND_ARRAY) tf_jv_ids(a, &l3tt);
        else gr_ids_append(&l3tt, l3.v, l3.n);
        jv_free(a);
        a = jv_object_get(jv_copy(rec), jv_string("smollm2"));
        tf_jv_ids(a, &sm);
        jv_free(a);
        bad += !same_ids("llama3-json", name, tk_l3_json, s, len, &l3);
        /* where the references disagree (Unicode versions), we follow tokenizers */
        if (tk_l3_tt) bad += !same_ids("llama3-tiktoken", name, tk_l3_tt, s, len, &l3);
        bad += !same_ids("smollm2-json", name, tk_sm_json, s, len, &sm);
        if (tk_sm_gguf) bad += !same_ids("smollm2-gguf", name, tk_sm_gguf, s, len, &sm);
        bad += !same_ids("smollm2-vocab-gguf", name, tk_sm_vgguf, s, len, &sm);
        /* SmolLM2 has no token for a few bytes (they are dropped, as the
         * reference drops them), so only LLaMA 3 round-trips everything */
        if (!round_trip(tk_l3_json, s, len) || (all_bytes(tk_sm_json, s, len) && !round_trip(tk_sm_json, s, len))) {
            printf("# %s: decode(encode(x)) != x\n", name);
            bad++;
        }
        gr_ids_free(&l3);
        gr_ids_free(&l3tt);
        gr_ids_free(&sm);
        jv_free(text);
        jv_free(rec);
        n++;
        if (bad > 20) break;
    }
    gr_reader_close(r);
    CHECK_MSG(rc >= 0, "%s", err.msg);
    CHECK_MSG(bad == 0, "%d mismatches over %d texts", bad, n);
    CHECK(n > 4000 || bad);
}

/* ---- the corpus -------------------------------------------------------------- */
typedef struct expect { uint64_t text_hash, ids_hash; size_t n; } expect;

static expect *read_tsv(const char *path, size_t *n, char *files, size_t files_cap) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char line[1 << 16];
    expect *e = NULL;
    size_t cap = 0;
    *n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') {
            char *p = strstr(line, " from ");
            if (p) snprintf(files, files_cap, "%s", p + 6);
            continue;
        }
        if (*n == cap) { cap = cap ? cap * 2 : 1024; e = realloc(e, cap * sizeof *e); }
        unsigned long long th, ih;
        unsigned long cnt;
        if (sscanf(line, "%llx %lu %llx", &th, &cnt, &ih) != 3) continue;
        e[*n].text_hash = th;
        e[*n].ids_hash = ih;
        e[*n].n = cnt;
        (*n)++;
    }
    fclose(f);
    return e;
}

/* Set of text hashes seen (open addressing). */
typedef struct hset { uint64_t *v; size_t mask; } hset;
static int hset_add(hset *s, uint64_t h) {
    if (!h) h = 1;
    size_t i = (size_t)(h * 0x9E3779B97F4A7C15ull) & s->mask;
    while (s->v[i]) {
        if (s->v[i] == h) return 0;
        i = (i + 1) & s->mask;
    }
    s->v[i] = h;
    return 1;
}

static const char *FIELDS[] = {"instruction", "input", "output", "prompt", "predict", "label"};

static void corpus_check(const char *test_name_, const char *tsv, gr_tokenizer **toks,
                         const char **names, int ntok) {
    const char *shared = test_shared_dir();
    if (!shared) { printf("# no ../shared: corpus parity not tested\n"); return; }
    size_t ne;
    static char files[1 << 16];
    expect *e = read_tsv(tf_path(tsv), &ne, files, sizeof files);
    CHECK_MSG(e != NULL, "cannot read %s", tsv);
    hset seen = {calloc(1 << 16, sizeof(uint64_t)), (1 << 16) - 1};
    size_t k = 0, bad = 0, checked = 0;
    gr_ids ids = {0};
    char *save, *tok = strtok_r(files, " \n", &save);
    for (; tok; tok = strtok_r(NULL, " \n", &save)) {
        char path[8192];
        snprintf(path, sizeof path, "%.4000s/%.4000s", shared, tok);
        gr_err err = {{0}};
        gr_reader *r = gr_reader_open(path, NULL, &err);
        CHECK_MSG(r != NULL, "%s", err.msg);
        jv rec;
        int rc;
        while ((rc = gr_reader_next(r, &rec, &err)) == 1) {
            for (size_t fi = 0; fi < sizeof FIELDS / sizeof *FIELDS; fi++) {
                jv v = jv_object_get(jv_copy(rec), jv_string(FIELDS[fi]));
                if (jv_get_kind(v) == JV_KIND_STRING) {
                    const char *s = jv_string_value(v);
                    size_t len = (size_t)jv_string_length_bytes(jv_copy(v));
                    uint64_t th = tf_fnv(s, len, TF_FNV0);
                    if (hset_add(&seen, th)) {
                        if (k >= ne || e[k].text_hash != th) {
                            printf("# %s: text %zu of the corpus is not the fixture's (data changed?)\n", tsv, k);
                            bad++;
                        } else if (k % CORPUS_STRIDE == 0) {
                            for (int t = 0; t < ntok; t++) {
                                if (!toks[t]) continue;
                                ids.n = 0;
                                gr_tokenizer_encode(toks[t], s, len, &ids, &err);
                                if (ids.n != e[k].n || tf_ids_hash(ids.v, ids.n) != e[k].ids_hash) {
                                    if (bad < 10)
                                        printf("# %s: %s differs on text %zu (%s:%ld %s): %zu ids vs %zu\n",
                                               names[t], tsv, k, tok, gr_reader_line(r), FIELDS[fi],
                                               ids.n, e[k].n);
                                    bad++;
                                }
                            }
                            checked++;
                        }
                        k++;
                    }
                }
                jv_free(v);
            }
            jv_free(rec);
            if (bad > 50) break;
        }
        gr_reader_close(r);
        CHECK_MSG(rc >= 0 || bad > 50, "%s", err.msg);
    }
    gr_ids_free(&ids);
    free(seen.v);
    free(e);
    CHECK_MSG(k == ne, "%zu corpus texts, the fixture has %zu", k, ne);
    CHECK_MSG(bad == 0, "%zu mismatches (%zu texts checked)", bad, checked);
}

TEST(corpus_llama3) {
    gr_tokenizer *t[2] = {tk_l3_json, tk_l3_tt};
    const char *n[2] = {"llama3-json", "llama3-tiktoken"};
    corpus_check(test_name_, "testdata/tokenizer/corpus-llama3.tsv", t, n, 2);
}

TEST(corpus_smollm2) {
    gr_tokenizer *t[3] = {tk_sm_json, tk_sm_gguf, tk_sm_vgguf};
    const char *n[3] = {"smollm2-json", "smollm2-gguf", "smollm2-vocab-gguf"};
    corpus_check(test_name_, "testdata/tokenizer/corpus-smollm2.tsv", t, n, 3);
}

/* Every code point, as scripts/make-tokenizer-fixtures.py's unicode_texts. */
static void unicode_text(size_t first_cp_index, gr_buf *b, uint32_t *next_cp) {
    uint32_t cp = *next_cp;
    (void)first_cp_index;
    b->len = 0;
    for (int k = 0; k < 64 && cp < 0x110000; k++) {
        char u[4];
        int l = gr_utf8_encode(cp, u);
        gr_buf_putc(b, 'x');
        gr_buf_append(b, u, (size_t)l);
        gr_buf_append(b, "y 1", 3);
        gr_buf_append(b, u, (size_t)l);
        gr_buf_append(b, "2 ", 2);
        gr_buf_append(b, u, (size_t)l);
        gr_buf_putc(b, '\n');
        cp++;
        if (cp == 0xD800) cp = 0xE000;
    }
    *next_cp = cp;
}

TEST(all_of_unicode) {
    FILE *f = fopen(tf_path("testdata/tokenizer/unicode.tsv"), "r");
    CHECK(f != NULL);
    char line[256];
    uint32_t cp = 0;
    gr_buf text = {0};
    gr_ids a = {0}, b = {0}, c = {0}, d = {0};
    gr_err err = {{0}};
    int lines = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        unsigned long na, nb;
        unsigned long long ha, hb;
        if (sscanf(line, "%lu %llx %lu %llx", &na, &ha, &nb, &hb) != 4) continue;
        a.n = b.n = c.n = d.n = 0;
        for (int k = 0; k < 16 && cp < 0x110000; k++) {
            unicode_text(0, &text, &cp);
            /* the class tables are shared by every source: one per model is enough;
             * the other sources take turns */
            if (lines % CORPUS_STRIDE) continue;
            gr_tokenizer_encode(tk_l3_json, text.data, text.len, &a, &err);
            gr_tokenizer_encode(tk_sm_json, text.data, text.len, &b, &err);
            if (lines % 8 == 0 && tk_l3_tt) gr_tokenizer_encode(tk_l3_tt, text.data, text.len, &c, &err);
            if (lines % 8 == 4) gr_tokenizer_encode(tk_sm_vgguf, text.data, text.len, &d, &err);
        }
        if (lines % CORPUS_STRIDE == 0) {
            if (a.n != na || tf_ids_hash(a.v, a.n) != ha) { printf("# llama3-json: block %d differs\n", lines); bad++; }
            if (b.n != nb || tf_ids_hash(b.v, b.n) != hb) { printf("# smollm2-json: block %d differs\n", lines); bad++; }
            if (lines % 8 == 0 && tk_l3_tt && (c.n != na || tf_ids_hash(c.v, c.n) != ha)) {
                printf("# llama3-tiktoken: block %d differs\n", lines);
                bad++;
            }
            if (lines % 8 == 4 && (d.n != nb || tf_ids_hash(d.v, d.n) != hb)) {
                printf("# smollm2-vocab-gguf: block %d differs\n", lines);
                bad++;
            }
        }
        lines++;
        if (bad > 10) break;
    }
    fclose(f);
    gr_buf_free(&text);
    gr_ids_free(&a); gr_ids_free(&b); gr_ids_free(&c); gr_ids_free(&d);
    CHECK_MSG(bad == 0, "%d blocks differ", bad);
    CHECK_MSG(cp == 0x110000 && lines == 1086, "covered up to U+%04X in %d lines", (unsigned)cp, lines);
}

int main(void) {
    RUN(load_sources);
    if (!tk_l3_json || !tk_sm_json) return 1;
    RUN(adversarial);
    RUN(all_of_unicode);
    RUN(corpus_llama3);
    RUN(corpus_smollm2);
    gr_tokenizer_free(tk_l3_tt);
    gr_tokenizer_free(tk_l3_json);
    gr_tokenizer_free(tk_sm_json);
    gr_tokenizer_free(tk_sm_gguf);
    gr_tokenizer_free(tk_sm_vgguf);
    return TEST_EXIT();
}
