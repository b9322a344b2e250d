/* libFuzzer target: gr-dpo's inputs from files, on arbitrary bytes: pair records
 * (gr_pdata_load: pre-tokenized ids in the vocabulary, raw records through the
 * byte-level test tokenizer and the pair template, weights, the cutoff) and the
 * stored reference log-probabilities (gr_dpo_ref_read: magic, version, sizes,
 * checksums). Both readers take a path, so the bytes go through a temporary
 * file. Run from the repository root (the tokenizer is a test fixture). */
#include "dpo.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    static gr_tokenizer *tok;
    static int tried;
    gr_err err;
    if (!tried) {
        tried = 1;
        tok = gr_tokenizer_load("testdata/dpo/byte-tokenizer", &err); /* NULL: raw records refused */
    }
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz-dpo-%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    gr_pdata d;
    gr_pdata_opts o = {300, 64, tok, GR_TEMPLATE_RAW, NULL, 0};
    if (gr_pdata_load(path, &o, &d, &err) == 0) {
        volatile int64_t s = 0;
        for (int i = 0; i < d.n; i++) {
            for (int t = 0; t < d.len_c[i]; t++) s += d.chosen[i][t];
            for (int t = 0; t < d.len_r[i]; t++) s += d.rejected[i][t] + d.n_prompt[i];
        }
        gr_pdata_free(&d);
    }
    /* the reference file, for two fixed pairs */
    int c0[] = {1, 5, 2}, r0[] = {1, 6, 7, 2}, *cs[] = {c0, c0}, *rs[] = {r0, r0};
    int lc[] = {3, 3}, lr[] = {4, 4}, np[] = {1, 1};
    double w[] = {1, 0.8}, rc[2], rr[2];
    gr_pdata two = {.n = 2, .chosen = cs, .rejected = rs, .len_c = lc, .len_r = lr, .n_prompt = np, .weight = w};
    gr_dpo s;
    memset(&s, 0, sizeof s);
    s.data = &two;
    s.ref_c = rc;
    s.ref_r = rr;
    gr_dpo_ref_read(&s, path, 42, &err);
    unlink(path);
    return 0;
}
