/* safetensors reader: see safetensors.h. */
#include "safetensors.h"
#include "gr_mmap.h"
#include <errno.h>
#include <fcntl.h>
#include <jv.h>
#include "gr_utf8.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { const char *name; int size; } dtypes[] = {
    [ST_F64] = {"F64", 8}, [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *st_dtype_name(int d) { return d >= 0 && d < N_DTYPES ? dtypes[d].name : "?"; }
int st_dtype_size(int d) { return d >= 0 && d < N_DTYPES ? dtypes[d].size : 0; }

/* An integer-valued JSON number in [0, 2^53]. Consumes v. */
static int as_u64(jv v, uint64_t *out) {
    double d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : -1;
    jv_free(v);
    if (!(d >= 0 && d <= 9007199254740992.0 && d == floor(d))) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_entry(const char *fname, const char *key, jv e, st_tensor *t, uint64_t room,
                       const uint8_t *data, gr_err *err) {
    if (jv_get_kind(e) != JV_KIND_OBJECT)
        return gr_errf(err, "%s: tensor '%s': entry is not an object", fname, key);
    jv dt = jv_object_get(jv_copy(e), jv_string("dtype"));
    jv sh = jv_object_get(jv_copy(e), jv_string("shape"));
    jv off = jv_object_get(jv_copy(e), jv_string("data_offsets"));
    int rc = -1;
    t->dtype = -1;
    if (jv_get_kind(dt) == JV_KIND_STRING)
        for (int i = 0; i < N_DTYPES; i++)
            if (strcmp(jv_string_value(dt), dtypes[i].name) == 0) t->dtype = i;
    if (t->dtype < 0) {
        gr_errf(err, "%s: tensor '%s': unknown or missing dtype", fname, key);
        goto out;
    }
    if (jv_get_kind(sh) != JV_KIND_ARRAY || jv_array_length(jv_copy(sh)) > ST_MAX_DIMS) {
        gr_errf(err, "%s: tensor '%s': shape must be a list of at most %d integers", fname, key,
                ST_MAX_DIMS);
        goto out;
    }
    t->n_dims = jv_array_length(jv_copy(sh));
    /* Byte size, with every multiplication checked against the bytes available:
     * the product can never exceed `room`, so it cannot overflow. */
    uint64_t nbytes = (uint64_t)dtypes[t->dtype].size;
    int zero = 0;
    for (int i = 0; i < t->n_dims; i++) {
        uint64_t d;
        if (as_u64(jv_array_get(jv_copy(sh), i), &d)) {
            gr_errf(err, "%s: tensor '%s': bad shape", fname, key);
            goto out;
        }
        t->shape[i] = (int64_t)d;
        if (d == 0) zero = 1;
        else if (!zero && nbytes > room / d) {
            gr_errf(err, "%s: tensor '%s': shape larger than the file", fname, key);
            goto out;
        } else if (!zero) nbytes *= d;
    }
    if (zero) nbytes = 0;
    uint64_t b, en;
    if (jv_get_kind(off) != JV_KIND_ARRAY || jv_array_length(jv_copy(off)) != 2 ||
        as_u64(jv_array_get(jv_copy(off), 0), &b) || as_u64(jv_array_get(jv_copy(off), 1), &en)) {
        gr_errf(err, "%s: tensor '%s': data_offsets must be [begin, end]", fname, key);
        goto out;
    }
    if (b > en || en > room) {
        gr_errf(err, "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data "
                "(%llu bytes)", fname, key, (unsigned long long)b, (unsigned long long)en,
                (unsigned long long)room);
        goto out;
    }
    if (en - b != nbytes) {
        gr_errf(err, "%s: tensor '%s': %llu bytes for a %s tensor of %llu bytes", fname, key,
                (unsigned long long)(en - b), dtypes[t->dtype].name, (unsigned long long)nbytes);
        goto out;
    }
    t->nbytes = nbytes;
    t->data = data + b;
    rc = 0;
out:
    jv_free(dt);
    jv_free(sh);
    jv_free(off);
    return rc;
}

static int cmp_data(const void *a, const void *b) {
    const st_tensor *x = a, *y = b;
    const uint8_t *px = x->data, *py = y->data;
    return px < py ? -1 : px > py;
}

st_file *st_open_mem(const void *data, size_t size, const char *name, gr_err *err) {
    const uint8_t *p = data;
    if (size < 8) {
        gr_errf(err, "%s: truncated (no header length)", name);
        return NULL;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > size - 8) {
        gr_errf(err, "%s: header length %llu runs past the end of the file", name,
                (unsigned long long)hlen);
        return NULL;
    }
    if (hlen > (100u << 20)) {
        gr_errf(err, "%s: header larger than 100 MB", name);
        return NULL;
    }
    /* checked here: libjq 1.6 leaks on invalid UTF-8 */
    size_t bad = gr_utf8_check((const char *)p + 8, (size_t)hlen);
    if (bad != hlen) {
        gr_errf(err, "%s: header: invalid UTF-8 at byte %zu", name, 8 + bad);
        return NULL;
    }
    jv j = jv_parse_sized((const char *)p + 8, (int)hlen);
    if (!jv_is_valid(j)) {
        jv msg = jv_invalid_get_msg(j);
        gr_errf(err, "%s: header: %s", name,
                jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "invalid JSON");
        jv_free(msg);
        return NULL;
    }
    if (jv_get_kind(j) != JV_KIND_OBJECT) {
        jv_free(j);
        gr_errf(err, "%s: header is not a JSON object", name);
        return NULL;
    }
    st_file *f = gr_xcalloc(1, sizeof *f);
    f->path = gr_xstrdup(name);
    f->base = p;
    f->size = size;
    int n = jv_object_length(jv_copy(j));
    f->tensors = gr_xcalloc((size_t)(n > 0 ? n : 1), sizeof *f->tensors);
    const uint8_t *dbase = p + 8 + hlen;
    uint64_t room = size - 8 - hlen;
    int rc = 0;
    jv_object_foreach(j, k, v) {
        if (!rc && strcmp(jv_string_value(k), "__metadata__") != 0) {
            st_tensor *t = &f->tensors[f->n_tensors];
            t->name = gr_xstrdup(jv_string_value(k));
            f->n_tensors++;
            rc = parse_entry(name, t->name, v, t, room, dbase, err);
        }
        jv_free(k);
        jv_free(v);
    }
    jv_free(j);
    if (!rc) {
        /* Overlap check on a copy sorted by data position (empty tensors skip). */
        st_tensor *s = gr_xmalloc(sizeof *s * (size_t)(f->n_tensors ? f->n_tensors : 1));
        memcpy(s, f->tensors, sizeof *s * (size_t)f->n_tensors);
        qsort(s, (size_t)f->n_tensors, sizeof *s, cmp_data);
        const st_tensor *prev = NULL;
        for (int i = 0; i < f->n_tensors && !rc; i++) {
            if (!s[i].nbytes) continue;
            if (prev && (const uint8_t *)prev->data + prev->nbytes > (const uint8_t *)s[i].data)
                rc = gr_errf(err, "%s: tensors '%s' and '%s' overlap", name, prev->name, s[i].name);
            prev = &s[i];
        }
        free(s);
    }
    if (rc) {
        st_close(f);
        return NULL;
    }
    return f;
}

st_file *st_open(const char *path, gr_err *err) {
    size_t size;
    void *map = gr_mmap_file(path, &size, err);
    if (!map) return NULL;
    st_file *f = st_open_mem(map, size, path, err);
    if (!f) {
        gr_munmap_file(map, size);
        return NULL;
    }
    f->map_ = size ? map : NULL;
    return f;
}

void st_close(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    gr_munmap_file(f->map_, f->size);
    free(f->path);
    free(f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static char *slurp(const char *path, size_t *n, gr_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        gr_errf(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    gr_buf b = {0};
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        gr_buf_append(&b, chunk, k);
        if (b.len > (64u << 20)) break;
    }
    int bad = ferror(fp) || b.len > (64u << 20);
    fclose(fp);
    if (bad) {
        gr_buf_free(&b);
        gr_errf(err, "%s: read error or file too large", path);
        return NULL;
    }
    *n = b.len;
    gr_buf_putc(&b, 0);
    return b.data;
}

st_set *st_set_open(const char *dir, gr_err *err) {
    char path[4096];
    st_set *s = gr_xcalloc(1, sizeof *s);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (access(path, F_OK) != 0) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st_file *f = st_open(path, err);
        if (!f) {
            free(s);
            return NULL;
        }
        s->files = gr_xmalloc(sizeof *s->files);
        s->files[0] = f;
        s->n_files = 1;
        return s;
    }
    size_t n;
    char *txt = slurp(path, &n, err);
    if (!txt) {
        free(s);
        return NULL;
    }
    jv j = jv_parse_sized(txt, (int)n);
    free(txt);
    jv wm = jv_get_kind(j) == JV_KIND_OBJECT ? jv_object_get(jv_copy(j), jv_string("weight_map"))
                                              : jv_invalid();
    jv_free(j);
    if (jv_get_kind(wm) != JV_KIND_OBJECT) {
        jv_free(wm);
        free(s);
        gr_errf(err, "%s: no weight_map object", path);
        return NULL;
    }
    /* Distinct shard names, each a plain file name inside dir. */
    int rc = 0;
    char **names = NULL;
    int nn = 0;
    jv_object_foreach(wm, k, v) {
        if (!rc) {
            const char *fn = jv_get_kind(v) == JV_KIND_STRING ? jv_string_value(v) : NULL;
            if (!fn || !*fn || strchr(fn, '/') || strcmp(fn, "..") == 0 || strcmp(fn, ".") == 0) {
                rc = gr_errf(err, "%s: tensor '%s': bad shard file name", path, jv_string_value(k));
            } else {
                int seen = 0;
                for (int i = 0; i < nn; i++) seen |= strcmp(names[i], fn) == 0;
                if (!seen) {
                    names = gr_xrealloc(names, sizeof *names * (size_t)(nn + 1));
                    names[nn++] = gr_xstrdup(fn);
                }
            }
        }
        jv_free(k);
        jv_free(v);
    }
    jv_free(wm);
    s->files = gr_xcalloc((size_t)(nn ? nn : 1), sizeof *s->files);
    for (int i = 0; i < nn && !rc; i++) {
        char sp[4096];
        snprintf(sp, sizeof sp, "%s/%s", dir, names[i]);
        s->files[i] = st_open(sp, err);
        if (!s->files[i]) rc = -1;
        else s->n_files++;
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    if (!rc && nn == 0) rc = gr_errf(err, "%s: empty weight_map", path);
    if (rc) {
        st_set_close(s);
        return NULL;
    }
    return s;
}

void st_set_close(st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) st_close(s->files[i]);
    free(s->files);
    free(s);
}

const st_tensor *st_set_find(const st_set *s, const char *name) {
    for (int i = 0; i < s->n_files; i++) {
        const st_tensor *t = st_find(s->files[i], name);
        if (t) return t;
    }
    return NULL;
}
