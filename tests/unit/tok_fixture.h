/* Helpers shared by the tokenizer tests: fixture paths, FNV hashing as
 * scripts/make-tokenizer-fixtures.py does it, and ids from a jv array. */
#ifndef TOK_FIXTURE_H
#define TOK_FIXTURE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <jv.h>
#include "tokenizer.h"

static __attribute__((unused)) const char *tf_root(void) {
    const char *r = getenv("GR_ROOT");
    return r ? r : ".";
}

static __attribute__((unused)) char *tf_path(const char *rel) {
    static char buf[8][4096];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 4096, "%s/%s", tf_root(), rel);
    return b;
}

static __attribute__((unused)) int tf_exists(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

static __attribute__((unused)) uint64_t tf_fnv(const void *p, size_t n, uint64_t h) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}
#define TF_FNV0 0xcbf29ce484222325ull

static __attribute__((unused)) uint64_t tf_ids_hash(const int32_t *ids, size_t n) {
    uint64_t h = TF_FNV0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                              (unsigned char)(v >> 24)};
        h = tf_fnv(b, 4, h);
    }
    return h;
}

/* jv array of numbers (borrowed) -> ids (appended). */
static __attribute__((unused)) void tf_jv_ids(jv arr, gr_ids *out) {
    int n = jv_array_length(jv_copy(arr));
    for (int i = 0; i < n; i++) {
        jv x = jv_array_get(jv_copy(arr), i);
        gr_ids_push(out, (int32_t)jv_number_value(x));
        jv_free(x);
    }
}

static __attribute__((unused)) int tf_ids_eq(const gr_ids *a, const gr_ids *b, size_t *at) {
    size_t i = 0;
    while (i < a->n && i < b->n && a->v[i] == b->v[i]) i++;
    *at = i;
    return a->n == b->n && i == a->n;
}

/* The LLaMA 3 rank file in ../shared, or NULL. */
static __attribute__((unused)) const char *tf_llama3_model(void) {
    const char *p = tf_path("../shared/data/tokenizers/llama3/tokenizer.model");
    return tf_exists(p) ? p : NULL;
}

/* The SmolLM2 GGUF: $GR_TEST_GGUF, or the cache of scripts/fetch-test-model. */
static __attribute__((unused)) const char *tf_smollm2_gguf(void) {
    static char buf[4096];
    const char *e = getenv("GR_TEST_GGUF");
    if (e && tf_exists(e)) return e;
    const char *home = getenv("HOME");
    const char *pats[3] = {"%s/.cache/guardreasoner-c/SmolLM2-135M-Instruct.Q4_1.gguf",
                           "%s/.cache/guardreasoner-c/*SmolLM2*.gguf",
                           "%s/.cache/guardreasoner-c/*/*SmolLM2*.gguf"};
    for (int k = 0; k < 3; k++) {
        char pat[4096];
        snprintf(pat, sizeof pat, pats[k], home ? home : "");
        glob_t g;
        if (glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
            snprintf(buf, sizeof buf, "%s", g.gl_pathv[0]);
            globfree(&g);
            return buf;
        }
        globfree(&g);
    }
    return NULL;
}
#endif
