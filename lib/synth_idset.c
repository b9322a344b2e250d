#include "synth_idset.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gr_common.h"

char *synth_id_key(jv id) {
    jv s = jv_dump_string(jv_copy(id), 0);
    char *k = gr_xstrdup(jv_string_value(s));
    jv_free(s);
    return k;
}

static uint64_t hash(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static size_t find(char **slot, size_t cap, const char *key) {
    size_t i = (size_t)hash(key) & (cap - 1);
    while (slot[i] && strcmp(slot[i], key) != 0) i = (i + 1) & (cap - 1);
    return i;
}

int synth_idset_has(const synth_idset *s, const char *key) {
    return s->cap && s->slot[find(s->slot, s->cap, key)] != NULL;
}

int synth_idset_add(synth_idset *s, const char *key) {
    if ((s->count + 1) * 2 > s->cap) { /* keep the load under one half */
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **slot = gr_xcalloc(cap, sizeof *slot);
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) slot[find(slot, cap, s->slot[i])] = s->slot[i];
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    size_t i = find(s->slot, s->cap, key);
    if (s->slot[i]) return 0;
    s->slot[i] = gr_xstrdup(key);
    s->count++;
    return 1;
}

void synth_idset_free(synth_idset *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->slot[i]);
    free(s->slot);
    memset(s, 0, sizeof *s);
}
