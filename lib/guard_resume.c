/* The done set of a resumed run: see guard_resume.h. */
#include "guard_resume.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gr_io.h"
#include "gr_sha256.h"

typedef struct slot {
    char *key; /* fingerprint, or fingerprint + "/k" */
    long count;
} slot;

struct gr_resume {
    slot *s;
    size_t cap, n; /* cap a power of two, n < cap / 2 */
    long total;
};

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static slot *find(gr_resume *r, const char *key, int insert) {
    if (insert && 2 * (r->n + 1) > r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        slot *s = gr_xcalloc(cap, sizeof *s);
        for (size_t i = 0; i < r->cap; i++) {
            if (!r->s[i].key) continue;
            size_t j = hash_str(r->s[i].key) & (cap - 1);
            while (s[j].key) j = (j + 1) & (cap - 1);
            s[j] = r->s[i];
        }
        free(r->s);
        r->s = s;
        r->cap = cap;
    }
    if (!r->cap) return NULL;
    size_t i = hash_str(key) & (r->cap - 1);
    for (; r->s[i].key; i = (i + 1) & (r->cap - 1))
        if (strcmp(r->s[i].key, key) == 0) return &r->s[i];
    if (!insert) return NULL;
    r->s[i].key = gr_xstrdup(key);
    r->s[i].count = 0;
    r->n++;
    return &r->s[i];
}

static void make_key(char *buf, size_t n, const char *fp, int k) {
    if (k >= 0) snprintf(buf, n, "%s/%d", fp, k);
    else snprintf(buf, n, "%s", fp);
}

void gr_record_fingerprint(jv rec, int has_id, const char *file, long line, char out[GR_FINGERPRINT_HEX + 1]) {
    jv d = jv_dump_string(jv_copy(rec), JV_PRINT_SORTED);
    gr_sha256 s;
    gr_sha256_init(&s);
    if (has_id) {
        gr_sha256_update(&s, "record", 7); /* with the NUL: never a prefix of the source form */
    } else {
        char ln[32];
        int k = snprintf(ln, sizeof ln, "%ld", line);
        gr_sha256_update(&s, "source", 7);
        gr_sha256_update(&s, file, strlen(file) + 1);
        gr_sha256_update(&s, ln, (size_t)k + 1);
    }
    gr_sha256_update(&s, jv_string_value(d), (size_t)jv_string_length_bytes(jv_copy(d)));
    jv_free(d);
    unsigned char dig[32];
    gr_sha256_final(&s, dig);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < GR_FINGERPRINT_HEX / 2; i++) {
        out[2 * i] = hex[dig[i] >> 4];
        out[2 * i + 1] = hex[dig[i] & 15];
    }
    out[GR_FINGERPRINT_HEX] = 0;
}

gr_resume *gr_resume_empty(void) { return gr_xcalloc(1, sizeof(gr_resume)); }

gr_resume *gr_resume_load(const char *path, int sample_mode, gr_err *err) {
    gr_resume *r = gr_resume_empty();
    FILE *f = fopen(path, "rb");
    if (!f) return r; /* nothing written yet */
    fclose(f);
    gr_reader *rd = gr_reader_open(path, NULL, err);
    if (!rd) {
        gr_resume_free(r);
        return NULL;
    }
    jv rec;
    int rc;
    while ((rc = gr_reader_next(rd, &rec, err)) == 1) {
        const char *fp = gr_jv_str(rec, "fingerprint");
        int k = -1, bad = !fp || strlen(fp) != GR_FINGERPRINT_HEX;
        if (sample_mode && !bad) {
            jv kv = jv_object_get(jv_copy(rec), jv_string("k"));
            if (jv_get_kind(kv) == JV_KIND_NUMBER && jv_number_value(kv) >= 0 && jv_number_value(kv) < 1e6)
                k = (int)jv_number_value(kv);
            else
                bad = 1;
            jv_free(kv);
        }
        if (bad) {
            gr_errf(err, "%s:%ld: a record without %s: --resume cannot tell which input record it "
                    "answers (written by an older version?); move the file aside or finish it without --resume",
                    path, gr_reader_line(rd), fp ? "a numeric k" : "a fingerprint");
            jv_free(rec);
            rc = -1;
            break;
        }
        char key[GR_FINGERPRINT_HEX + 16];
        make_key(key, sizeof key, fp, k);
        find(r, key, 1)->count++;
        r->total++;
        jv_free(rec);
    }
    gr_reader_close(rd);
    if (rc < 0) {
        gr_resume_free(r);
        return NULL;
    }
    return r;
}

int gr_resume_take(gr_resume *r, const char *fp, int k) {
    char key[GR_FINGERPRINT_HEX + 16];
    make_key(key, sizeof key, fp, k);
    slot *s = find(r, key, 0);
    if (!s || s->count == 0) return 0;
    s->count--;
    return 1;
}

long gr_resume_size(const gr_resume *r) { return r->total; }

void gr_resume_free(gr_resume *r) {
    if (!r) return;
    for (size_t i = 0; i < r->cap; i++) free(r->s[i].key);
    free(r->s);
    free(r);
}
