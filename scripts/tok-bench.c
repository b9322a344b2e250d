/* Tokenizer throughput, one thread: used by scripts/bench-tokenizer.
 * Usage: tok-bench TOKENIZER TEXTS [REPEATS]
 * TEXTS holds records "u32 length (little-endian), bytes". Prints
 * "tokens N bytes N seconds S" for the fastest of REPEATS passes (load time
 * excluded, printed apart as "load S"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: tok-bench TOKENIZER TEXTS [REPEATS]\n"); return 2; }
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    double t0 = now();
    gr_err err = {{0}};
    gr_tokenizer *t = gr_tokenizer_load(argv[1], &err);
    if (!t) { fprintf(stderr, "tok-bench: %s\n", err.msg); return 1; }
    double load = now() - t0;
    FILE *f = fopen(argv[2], "rb");
    if (!f) { fprintf(stderr, "tok-bench: cannot open %s\n", argv[2]); return 1; }
    gr_buf b = {0};
    char tmp[1 << 16];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) gr_buf_append(&b, tmp, k);
    fclose(f);
    double best = 1e30;
    size_t tokens = 0;
    gr_ids ids = {0};
    for (int r = 0; r < (reps < 1 ? 1 : reps); r++) {
        tokens = 0;
        double s = now();
        for (size_t i = 0; i + 4 <= b.len;) {
            const unsigned char *p = (const unsigned char *)b.data + i;
            size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
            if (i + 4 + n > b.len) break;
            ids.n = 0;
            gr_tokenizer_encode(t, (const char *)p + 4, n, &ids, &err);
            tokens += ids.n;
            i += 4 + n;
        }
        double e = now() - s;
        if (e < best) best = e;
    }
    printf("tokens %zu bytes %zu seconds %.6f load %.3f\n", tokens, b.len, best, load);
    gr_ids_free(&ids);
    gr_buf_free(&b);
    gr_tokenizer_free(t);
    return 0;
}
