#include "train_data.h"
#include "gr_io.h"
#include <stdlib.h>

static int get_int(jv v, long lo, long hi, long *out) {
    if (jv_get_kind(v) != JV_KIND_NUMBER) return 0;
    double x = jv_number_value(v);
    if (x != (double)(long)x || x < (double)lo || x > (double)hi) return 0;
    *out = (long)x;
    return 1;
}

static void tdata_push(gr_tdata *d, int *cap, int *ids, int len, int np) {
    if (d->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        d->ids = gr_xrealloc(d->ids, sizeof(int *) * (size_t)*cap);
        d->len = gr_xrealloc(d->len, sizeof(int) * (size_t)*cap);
        d->n_prompt = gr_xrealloc(d->n_prompt, sizeof(int) * (size_t)*cap);
    }
    d->ids[d->n] = ids;
    d->len[d->n] = len;
    d->n_prompt[d->n] = np;
    d->n++;
    d->n_tokens += len;
    int first = np > 1 ? np : 1;
    if (len > first) d->n_targets += len - first;
}

int gr_tdata_load(const char *path, int vocab, int cutoff, gr_tdata *d, gr_err *err) {
    *d = (gr_tdata){0};
    gr_reader *r = gr_reader_open(path, NULL, err);
    if (!r) return -1;
    int cap = 0, rc;
    jv rec;
    while ((rc = gr_reader_next(r, &rec, err)) == 1) {
        const char *nm = gr_reader_name(r);
        long line = gr_reader_line(r);
        jv ids = jv_object_get(jv_copy(rec), jv_string("ids"));
        jv npv = jv_object_get(rec, jv_string("n_prompt"));
        long np = 0, len = 0;
        const char *bad = NULL;
        if (jv_get_kind(ids) != JV_KIND_ARRAY) bad = "`ids` is not an array";
        else if ((len = jv_array_length(jv_copy(ids))) < 1) bad = "`ids` is empty";
        else if (len > cutoff) {
            gr_errf(err, "%s:%ld: %ld tokens, more than the cutoff %d (gr-tokenize --cutoff)", nm,
                    line, len, cutoff);
            jv_free(ids);
            jv_free(npv);
            rc = -1;
            break;
        } else if (!get_int(jv_copy(npv), 0, len, &np))
            bad = "`n_prompt` is missing or not an integer in 0..len(ids)";
        int *v = NULL;
        if (!bad) {
            v = gr_xmalloc(sizeof(int) * (size_t)len);
            for (long i = 0; i < len && !bad; i++) {
                long x;
                if (!get_int(jv_array_get(jv_copy(ids), (int)i), 0, vocab - 1, &x))
                    bad = "`ids` holds a value that is not a token id of this model";
                else
                    v[i] = (int)x;
            }
        }
        jv_free(ids);
        jv_free(npv);
        if (bad) {
            free(v);
            gr_errf(err, "%s:%ld: %s", nm, line, bad);
            rc = -1;
            break;
        }
        tdata_push(d, &cap, v, (int)len, (int)np);
    }
    gr_reader_close(r);
    if (rc < 0) {
        gr_tdata_free(d);
        return -1;
    }
    return 0;
}

void gr_tdata_free(gr_tdata *d) {
    for (int i = 0; i < d->n; i++) free(d->ids[i]);
    free(d->ids);
    free(d->len);
    free(d->n_prompt);
    *d = (gr_tdata){0};
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void gr_tdata_shuffle(uint64_t seed, int64_t epoch, int n, int *perm) {
    uint64_t s = seed * 0x2545F4914F6CDD1DULL ^ (uint64_t)epoch * 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        /* unbiased: rejection on the top of the 64-bit range */
        uint64_t bound = (uint64_t)i + 1, lim = UINT64_MAX - UINT64_MAX % bound, x;
        do x = splitmix64(&s); while (x >= lim);
        int j = (int)(x % bound);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
