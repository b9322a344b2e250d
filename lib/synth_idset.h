/* A set of record ids (their compact JSON text, so 7 and "7" differ), for
 * --resume and for spotting duplicate ids in the input. Open addressing. */
#ifndef SYNTH_IDSET_H
#define SYNTH_IDSET_H
#include <stddef.h>
#include <jv.h>

typedef struct synth_idset {
    char **slot;
    size_t cap, count;
} synth_idset;

/* The key of an id value (id not consumed; malloc'ed). */
char *synth_id_key(jv id);
/* 1 if key was added, 0 if it was already there. key is copied. */
int synth_idset_add(synth_idset *s, const char *key);
int synth_idset_has(const synth_idset *s, const char *key);
void synth_idset_free(synth_idset *s);
#endif
