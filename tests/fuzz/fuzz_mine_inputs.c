/* libFuzzer target: gr-mine's inputs on arbitrary bytes: the script-regex reader
 * (the span it returns lies inside the text and is all \w), and the miner on the
 * bytes as a sample file (as H_self and as another source, both answer modes). */
#include "mine.h"
#include "mine_answers.h"
#include "gr_utf8.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check_reader(const char *s, size_t n, const char *key) {
    size_t off = 0, len = 0;
    if (!gr_mine_re_word(s, n, key, &off, &len)) return;
    if (len == 0 || off > n || len > n - off) abort();
    for (size_t i = off; i < off + len;) {
        uint32_t cp;
        int k = gr_utf8_decode((const unsigned char *)s + i, off + len - i, &cp);
        if (k <= 0 || gr_pyre_class(cp) != GR_PYRE_WORD) abort();
        i += (size_t)k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *keys[] = {"Request:", "Completion:", "Response:", "AI assistant:", "x"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) check_reader((const char *)data, size, keys[i]);
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz-mine-%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    for (int mode = 0; mode < 2; mode++) {
        gr_mine_opts o = {.gamma = 0.2, .label_task = -1, .answers = mode ? GR_ANSWERS_EVAL : GR_ANSWERS_SCRIPT,
                          .replace_invalid_utf8 = mode};
        gr_miner *m = gr_miner_new(&o);
        gr_err err;
        if (gr_miner_add_file(m, path, "self", &err) == 0 && gr_miner_add_file(m, path, "other", &err) == 0) {
            gr_mine_stats st;
            jv pairs = gr_miner_pairs(m, &st);
            if (jv_array_length(jv_copy(pairs)) != st.pairs) abort();
            jv_free(pairs);
        }
        gr_miner_free(m);
    }
    return 0;
}
