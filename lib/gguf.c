/* GGUF parser: see gguf.h. A cursor walks the header; every read checks the
 * bytes left first, so no input can make it read past the end. */
#include "gguf.h"
#include "gr_mmap.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Strings are copied into arena blocks so their pointers stay put. */
typedef struct gguf_block_ {
    struct gguf_block_ *next;
    size_t used, cap;
    char data[];
} gguf_block_;
struct gguf_arena_ {
    gguf_block_ *head;
};

static char *arena_copy(struct gguf_arena_ *a, const uint8_t *p, size_t n) {
    if (!a->head || a->head->cap - a->head->used < n + 1) {
        size_t cap = n + 1 > (1u << 20) ? n + 1 : (1u << 20);
        gguf_block_ *b = gr_xmalloc(sizeof *b + cap);
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    char *s = a->head->data + a->head->used;
    if (n) memcpy(s, p, n);
    s[n] = 0;
    a->head->used += n + 1;
    return s;
}

typedef struct cursor {
    const uint8_t *p;
    size_t pos, size;
    const char *name;
    gr_err *err;
} cursor;

static int need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return gr_errf(c->err, "%s: truncated at byte %zu (reading %s)", c->name, c->pos, what);
    return 0;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return -1;
    *v = (uint32_t)le(c->p + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return -1;
    *v = le(c->p + c->pos, 8);
    c->pos += 8;
    return 0;
}

static int rd_str(cursor *c, struct gguf_arena_ *a, gguf_str *s, const char *what) {
    uint64_t n;
    if (rd_u64(c, &n, what) || need(c, n, what)) return -1;
    s->s = arena_copy(a, c->p + c->pos, (size_t)n);
    s->len = n;
    c->pos += (size_t)n;
    return 0;
}

/* Bytes of one scalar value; 0 for STRING/ARRAY/unknown. */
static size_t vtype_size(uint32_t t) {
    switch (t) {
    case GGUF_T_UINT8: case GGUF_T_INT8: case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16: case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32: case GGUF_T_INT32: case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64: case GGUF_T_INT64: case GGUF_T_FLOAT64: return 8;
    default: return 0;
    }
}

static int vtype_is_signed(uint32_t t) {
    return t == GGUF_T_INT8 || t == GGUF_T_INT16 || t == GGUF_T_INT32 || t == GGUF_T_INT64;
}
static int vtype_is_float(uint32_t t) { return t == GGUF_T_FLOAT32 || t == GGUF_T_FLOAT64; }

/* Decodes one numeric scalar at p into kv->v. */
static void scalar_decode(uint32_t t, const uint8_t *p, gguf_kv *kv) {
    size_t n = vtype_size(t);
    uint64_t raw = le(p, (int)n);
    if (t == GGUF_T_FLOAT32) {
        uint32_t u = (uint32_t)raw;
        float f;
        memcpy(&f, &u, 4);
        kv->v.f = f;
    } else if (t == GGUF_T_FLOAT64) {
        double d;
        memcpy(&d, &raw, 8);
        kv->v.f = d;
    } else if (vtype_is_signed(t)) {
        int sh = 64 - 8 * (int)n; /* sign-extend */
        kv->v.i = (int64_t)(raw << sh) >> sh;
    } else {
        kv->v.u = raw;
    }
}

static const struct { int64_t blk, bytes; const char *name; } ggml_types[GGML_TYPE_COUNT_] = {
    [GGML_F32] = {1, 4, "F32"},       [GGML_F16] = {1, 2, "F16"},
    [GGML_Q4_0] = {32, 18, "Q4_0"},   [GGML_Q4_1] = {32, 20, "Q4_1"},
    [GGML_Q5_0] = {32, 22, "Q5_0"},   [GGML_Q5_1] = {32, 24, "Q5_1"},
    [GGML_Q8_0] = {32, 34, "Q8_0"},   [GGML_Q8_1] = {32, 36, "Q8_1"},
    [GGML_Q2_K] = {256, 84, "Q2_K"},  [GGML_Q3_K] = {256, 110, "Q3_K"},
    [GGML_Q4_K] = {256, 144, "Q4_K"}, [GGML_Q5_K] = {256, 176, "Q5_K"},
    [GGML_Q6_K] = {256, 210, "Q6_K"}, [GGML_Q8_K] = {256, 292, "Q8_K"},
    [GGML_I8] = {1, 1, "I8"},         [GGML_I16] = {1, 2, "I16"},
    [GGML_I32] = {1, 4, "I32"},       [GGML_I64] = {1, 8, "I64"},
    [GGML_F64] = {1, 8, "F64"},       [GGML_BF16] = {1, 2, "BF16"},
};

int64_t ggml_type_block(uint32_t t) { return t < GGML_TYPE_COUNT_ ? ggml_types[t].blk : 0; }
int64_t ggml_type_block_bytes(uint32_t t) { return t < GGML_TYPE_COUNT_ ? ggml_types[t].bytes : 0; }
const char *ggml_type_name(uint32_t t) {
    return t < GGML_TYPE_COUNT_ && ggml_types[t].name ? ggml_types[t].name : "unknown";
}

const char *gguf_vtype_name(uint32_t t) {
    static const char *names[GGUF_T_COUNT_] = {"uint8", "int8", "uint16", "int16", "uint32",
        "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"};
    return t < GGUF_T_COUNT_ ? names[t] : "unknown";
}

static int parse_kv(cursor *c, gguf_file *f, gguf_kv *kv) {
    if (rd_str(c, f->arena_, &kv->key, "metadata key") || rd_u32(c, &kv->type, "value type"))
        return -1;
    const char *k = kv->key.s;
    if (kv->type >= GGUF_T_COUNT_)
        return gr_errf(c->err, "%s: key '%s': unknown value type %u", c->name, k, kv->type);
    if (kv->type == GGUF_T_STRING) return rd_str(c, f->arena_, &kv->v.str, k);
    if (kv->type != GGUF_T_ARRAY) {
        size_t n = vtype_size(kv->type);
        if (need(c, n, k)) return -1;
        scalar_decode(kv->type, c->p + c->pos, kv);
        c->pos += n;
        return 0;
    }
    uint64_t n;
    if (rd_u32(c, &kv->arr_type, k) || rd_u64(c, &n, k)) return -1;
    if (kv->arr_type >= GGUF_T_COUNT_ || kv->arr_type == GGUF_T_ARRAY)
        return gr_errf(c->err, "%s: key '%s': unsupported array element type %u", c->name, k,
                       kv->arr_type);
    /* Every element takes at least 1 byte (8 for a string's length), so a count
     * larger than the bytes left is a lie; checking first bounds the allocation. */
    size_t esz = kv->arr_type == GGUF_T_STRING ? 8 : vtype_size(kv->arr_type);
    if (n > (c->size - c->pos) / esz)
        return gr_errf(c->err, "%s: key '%s': array count %llu exceeds the file size", c->name,
                       k, (unsigned long long)n);
    kv->arr_n = n;
    if (kv->arr_type != GGUF_T_STRING) {
        kv->arr_raw = c->p + c->pos;
        c->pos += (size_t)(n * esz);
        return 0;
    }
    kv->arr_str = gr_xcalloc(n ? (size_t)n : 1, sizeof *kv->arr_str);
    for (uint64_t i = 0; i < n; i++)
        if (rd_str(c, f->arena_, &kv->arr_str[i], k)) return -1;
    return 0;
}

static int parse_tensor(cursor *c, gguf_file *f, gguf_tensor *t) {
    if (rd_str(c, f->arena_, &t->name, "tensor name") || rd_u32(c, &t->n_dims, "tensor n_dims"))
        return -1;
    const char *nm = t->name.s;
    if (t->n_dims < 1 || t->n_dims > 4)
        return gr_errf(c->err, "%s: tensor '%s': %u dimensions (1 to 4 allowed)", c->name, nm,
                       t->n_dims);
    uint64_t nel = 1;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (rd_u64(c, &t->ne[d], nm)) return -1;
        /* No dimension can exceed the file size: each element is at least a bit.
         * Checking the running product against 2^60 keeps it from overflowing. */
        if (t->ne[d] == 0 || t->ne[d] > ((uint64_t)1 << 60) / nel)
            return gr_errf(c->err, "%s: tensor '%s': bad dimension %u: %llu", c->name, nm, d,
                           (unsigned long long)t->ne[d]);
        nel *= t->ne[d];
    }
    if (rd_u32(c, &t->type, nm) || rd_u64(c, &t->offset, nm)) return -1;
    int64_t blk = ggml_type_block(t->type), bb = ggml_type_block_bytes(t->type);
    if (blk == 0)
        return gr_errf(c->err, "%s: tensor '%s': unsupported ggml type %u", c->name, nm, t->type);
    if (t->ne[0] % (uint64_t)blk)
        return gr_errf(c->err, "%s: tensor '%s': row of %llu elements is not a multiple of the "
                       "%s block size %lld", c->name, nm, (unsigned long long)t->ne[0],
                       ggml_type_name(t->type), (long long)blk);
    t->nbytes = nel / (uint64_t)blk * (uint64_t)bb; /* nel < 2^60, bb < 2^9: no overflow */
    return 0;
}

static int cmp_offset(const void *a, const void *b) {
    const gguf_tensor *x = *(gguf_tensor *const *)a, *y = *(gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_name(const void *a, const void *b) {
    const gguf_tensor *x = *(gguf_tensor *const *)a, *y = *(gguf_tensor *const *)b;
    return strcmp(x->name.s, y->name.s);
}

static int cmp_key(const void *a, const void *b) {
    const gguf_kv *x = *(gguf_kv *const *)a, *y = *(gguf_kv *const *)b;
    return strcmp(x->key.s, y->key.s);
}

static int parse(gguf_file *f, const char *name, gr_err *err) {
    cursor c = {f->base, 0, f->size, name, err};
    if (f->size < 4 || memcmp(f->base, "GGUF", 4) != 0)
        return gr_errf(err, "%s: not a GGUF file (bad magic)", name);
    c.pos = 4;
    if (rd_u32(&c, &f->version, "version")) return -1;
    if (f->version != 2 && f->version != 3) {
        if ((f->version & 0xffff) == 0 && f->version)
            return gr_errf(err, "%s: big-endian GGUF files are not supported", name);
        return gr_errf(err, "%s: unsupported GGUF version %u (2 and 3 are)", name, f->version);
    }
    if (rd_u64(&c, &f->n_tensors, "tensor count") || rd_u64(&c, &f->n_kv, "metadata count"))
        return -1;
    /* A key/value takes at least 13 bytes and a tensor info 32: counts beyond what
     * the file can hold are rejected before anything is allocated. */
    if (f->n_kv > (c.size - c.pos) / 13)
        return gr_errf(err, "%s: metadata count %llu exceeds the file size", name,
                       (unsigned long long)f->n_kv);
    if (f->n_tensors > (c.size - c.pos) / 32)
        return gr_errf(err, "%s: tensor count %llu exceeds the file size", name,
                       (unsigned long long)f->n_tensors);
    f->kv = gr_xcalloc(f->n_kv ? (size_t)f->n_kv : 1, sizeof *f->kv);
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (parse_kv(&c, f, &f->kv[i])) return -1;
    f->tensors = gr_xcalloc(f->n_tensors ? (size_t)f->n_tensors : 1, sizeof *f->tensors);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (parse_tensor(&c, f, &f->tensors[i])) return -1;

    size_t nsort = (size_t)(f->n_kv > f->n_tensors ? f->n_kv : f->n_tensors);
    void **sorted = gr_xcalloc(nsort ? nsort : 1, sizeof *sorted);
    int rc = 0;
    for (uint64_t i = 0; i < f->n_kv; i++) sorted[i] = &f->kv[i];
    qsort(sorted, (size_t)f->n_kv, sizeof *sorted, cmp_key);
    for (uint64_t i = 1; i < f->n_kv && !rc; i++)
        if (!cmp_key(&sorted[i - 1], &sorted[i]))
            rc = gr_errf(err, "%s: duplicate metadata key '%s'", name,
                         ((gguf_kv *)sorted[i])->key.s);
    if (rc) goto out;

    f->alignment = 32;
    const gguf_kv *al = gguf_find(f, "general.alignment");
    if (al) {
        if (al->type != GGUF_T_UINT32 || al->v.u == 0 || (al->v.u & (al->v.u - 1)) ||
            al->v.u > (1u << 20)) {
            rc = gr_errf(err, "%s: general.alignment must be a uint32 power of two", name);
            goto out;
        }
        f->alignment = (uint32_t)al->v.u;
    }
    uint64_t data = (c.pos + f->alignment - 1) / f->alignment * f->alignment;
    if (data > f->size) {
        /* A file with no tensors may end without padding. */
        if (f->n_tensors) {
            rc = gr_errf(err, "%s: truncated before the tensor data", name);
            goto out;
        }
        data = f->size;
    }
    f->data_offset = data;
    uint64_t room = f->size - data;

    for (uint64_t i = 0; i < f->n_tensors; i++) sorted[i] = &f->tensors[i];
    qsort(sorted, (size_t)f->n_tensors, sizeof *sorted, cmp_name);
    for (uint64_t i = 1; i < f->n_tensors && !rc; i++)
        if (!cmp_name(&sorted[i - 1], &sorted[i]))
            rc = gr_errf(err, "%s: duplicate tensor name '%s'", name,
                         ((gguf_tensor *)sorted[i])->name.s);
    if (rc) goto out;
    qsort(sorted, (size_t)f->n_tensors, sizeof *sorted, cmp_offset);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = sorted[i];
        if (t->offset % f->alignment) {
            rc = gr_errf(err, "%s: tensor '%s': offset %llu is not aligned to %u", name,
                         t->name.s, (unsigned long long)t->offset, f->alignment);
            goto out;
        }
        if (t->offset > room || t->nbytes > room - t->offset) {
            rc = gr_errf(err, "%s: tensor '%s': data [%llu, +%llu) runs past the end of the "
                         "file", name, t->name.s, (unsigned long long)t->offset,
                         (unsigned long long)t->nbytes);
            goto out;
        }
        if (i > 0) {
            gguf_tensor *p = sorted[i - 1];
            if (p->offset + p->nbytes > t->offset) {
                rc = gr_errf(err, "%s: tensors '%s' and '%s' overlap", name, p->name.s,
                             t->name.s);
                goto out;
            }
        }
        t->data = f->base + data + t->offset;
    }
out:
    free(sorted);
    return rc;
}

gguf_file *gguf_open_mem(const void *data, size_t size, const char *name, gr_err *err) {
    gguf_file *f = gr_xcalloc(1, sizeof *f);
    f->arena_ = gr_xcalloc(1, sizeof *f->arena_);
    f->base = data;
    f->size = size;
    if (parse(f, name ? name : "gguf", err)) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

gguf_file *gguf_open(const char *path, gr_err *err) {
    size_t size;
    void *map = gr_mmap_file(path, &size, err);
    if (!map) return NULL;
    gguf_file *f = gguf_open_mem(map, size, path, err);
    if (!f) {
        gr_munmap_file(map, size);
        return NULL;
    }
    f->map_ = size ? map : NULL;
    return f;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++) free(f->kv[i].arr_str);
    free(f->kv);
    free(f->tensors);
    if (f->arena_) {
        for (gguf_block_ *b = f->arena_->head, *n; b; b = n) {
            n = b->next;
            free(b);
        }
        free(f->arena_);
    }
    gr_munmap_file(f->map_, f->size);
    free(f);
}

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (strcmp(f->kv[i].key.s, key) == 0) return &f->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name.s, name) == 0) return &f->tensors[i];
    return NULL;
}

static int is_int_type(uint32_t t) { return vtype_size(t) && !vtype_is_float(t); }

int gguf_get_int(const gguf_file *f, const char *key, int64_t *out, gr_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return 1;
    if (!is_int_type(kv->type))
        return gr_errf(err, "GGUF key '%s' is %s, not an integer", key, gguf_vtype_name(kv->type));
    if (!vtype_is_signed(kv->type) && kv->v.u > INT64_MAX)
        return gr_errf(err, "GGUF key '%s': value out of range", key);
    *out = vtype_is_signed(kv->type) ? kv->v.i : (int64_t)kv->v.u;
    return 0;
}

int gguf_get_float(const gguf_file *f, const char *key, double *out, gr_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return 1;
    if (vtype_is_float(kv->type)) *out = kv->v.f;
    else if (kv->type != GGUF_T_BOOL && is_int_type(kv->type))
        *out = vtype_is_signed(kv->type) ? (double)kv->v.i : (double)kv->v.u;
    else return gr_errf(err, "GGUF key '%s' is %s, not a number", key, gguf_vtype_name(kv->type));
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, const char **out, gr_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return 1;
    if (kv->type != GGUF_T_STRING)
        return gr_errf(err, "GGUF key '%s' is %s, not a string", key, gguf_vtype_name(kv->type));
    *out = kv->v.str.s;
    return 0;
}

int gguf_get_arr(const gguf_file *f, const char *key, uint32_t want, const gguf_kv **out,
                 gr_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return 1;
    int ok = kv->type == GGUF_T_ARRAY;
    if (ok && want == GGUF_T_STRING) ok = kv->arr_type == GGUF_T_STRING;
    else if (ok && want == GGUF_T_INT64) ok = is_int_type(kv->arr_type);
    else if (ok && want == GGUF_T_FLOAT64) ok = vtype_size(kv->arr_type) > 0 && kv->arr_type != GGUF_T_BOOL;
    else if (ok) ok = kv->arr_type == want;
    if (!ok)
        return gr_errf(err, "GGUF key '%s' is not an array of %s", key,
                       want == GGUF_T_INT64 ? "integers" : want == GGUF_T_FLOAT64 ? "numbers"
                       : gguf_vtype_name(want));
    *out = kv;
    return 0;
}

int64_t gguf_arr_int(const gguf_kv *kv, uint64_t i) {
    size_t n = vtype_size(kv->arr_type);
    gguf_kv tmp;
    scalar_decode(kv->arr_type, kv->arr_raw + i * n, &tmp);
    if (vtype_is_float(kv->arr_type)) { /* saturating: out-of-range casts are undefined */
        double f = tmp.v.f;
        if (!(f == f)) return 0;
        if (f >= 9.2233720368547758e18) return INT64_MAX;
        if (f <= -9.2233720368547758e18) return INT64_MIN;
        return (int64_t)f;
    }
    return vtype_is_signed(kv->arr_type) ? tmp.v.i : (int64_t)tmp.v.u;
}

double gguf_arr_float(const gguf_kv *kv, uint64_t i) {
    size_t n = vtype_size(kv->arr_type);
    gguf_kv tmp;
    scalar_decode(kv->arr_type, kv->arr_raw + i * n, &tmp);
    if (vtype_is_float(kv->arr_type)) return tmp.v.f;
    return vtype_is_signed(kv->arr_type) ? (double)tmp.v.i : (double)tmp.v.u;
}
