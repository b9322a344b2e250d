/* libFuzzer target: the GGUF parser on arbitrary bytes, then every accessor on
 * whatever it accepted (tensor data is touched end to end so ASan checks the
 * bounds the parser promised). */
#include "gguf.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gr_err err;
    gguf_file *f = gguf_open_mem(data, size, "fuzz", &err);
    if (!f) return 0;
    unsigned sum = 0;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        sum += (unsigned)strlen(kv->key.s);
        int64_t iv;
        double dv;
        const char *s;
        gguf_get_int(f, kv->key.s, &iv, &err);
        gguf_get_float(f, kv->key.s, &dv, &err);
        gguf_get_str(f, kv->key.s, &s, &err);
        if (kv->type == GGUF_T_ARRAY) {
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                if (kv->arr_type == GGUF_T_STRING) sum += (unsigned)kv->arr_str[j].len;
                else sum += (unsigned)gguf_arr_int(kv, j) + (gguf_arr_float(kv, j) > 0);
            }
        }
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        const uint8_t *p = t->data;
        if (t->nbytes) sum += p[0] + p[t->nbytes - 1];
        if (gguf_find_tensor(f, t->name.s) == NULL) abort();
    }
    gguf_close(f);
    return (int)(sum & 0);
}
