/* libFuzzer target: the two inputs of training that come from files, on
 * arbitrary bytes: the training-state file (gr_state_read: magic, version,
 * sizes, checksum) and token records (gr_tdata_load: ids in the vocabulary,
 * n_prompt in range, the cutoff). Both readers take a path, so the bytes go
 * through a temporary file. */
#include "checkpoint.h"
#include "train_data.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz-train-%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    gr_err err;
    gr_train_state st;
    if (gr_state_read(path, &st, &err) == 0) {
        volatile float s = 0;
        for (int64_t i = 0; i < st.n_params; i++) s += st.params[i] + st.m[i] + st.v[i];
        gr_state_free(&st);
    }
    gr_tdata d;
    if (gr_tdata_load(path, 300, 64, &d, &err) == 0) {
        volatile int64_t s = 0;
        for (int i = 0; i < d.n; i++)
            for (int t = 0; t < d.len[i]; t++) s += d.ids[i][t] + d.n_prompt[i];
        gr_tdata_free(&d);
    }
    unlink(path);
    return 0;
}
