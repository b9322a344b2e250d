/* libFuzzer target: the safetensors header parser and config.json parser on
 * arbitrary bytes; accepted tensors are touched end to end (ASan checks bounds). */
#include "model.h"
#include "safetensors.h"
#include <stdint.h>

/* libjq 1.6 leaks a string inside jv_parser_next on some syntax errors
 * ({"a": 1, "b"  "c": 2}); that is jq's bug, not ours, so LSan ignores leaks allocated inside libjq. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:jv_parser_next\nleak:libjq.so\n"; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gr_err err;
    st_file *f = st_open_mem(data, size, "fuzz", &err);
    unsigned sum = 0;
    if (f) {
        for (int i = 0; i < f->n_tensors; i++) {
            const uint8_t *p = f->tensors[i].data;
            if (f->tensors[i].nbytes) sum += p[0] + p[f->tensors[i].nbytes - 1];
        }
        st_close(f);
    }
    gr_model_config c;
    gr_config_parse((const char *)data, size, "fuzz", &c, &err);
    return (int)(sum & 0);
}
